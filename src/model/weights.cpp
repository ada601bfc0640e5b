#include "model/weights.h"

#include <sys/mman.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "gguf/gguf.h"
#include "kernels/rows_x8.h"
#include "slm/error.h"

namespace slm {

namespace {

std::string shape_str(const int64_t* ne, int n) {
  std::string s = "[";
  for (int i = 0; i < n; ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

class Binder {
 public:
  explicit Binder(const GgufFile& f) : f_(f) {}

  const GgufTensor* find(const std::string& name) const { return f_.find_tensor(name); }

  // The tensor with exactly this shape (ne0 first), or an error naming it.
  const GgufTensor& get(const std::string& name, std::vector<int64_t> shape) const {
    const GgufTensor* t = f_.find_tensor(name);
    if (!t) throw Error("missing tensor " + name + " (expected shape " + shape_str(shape.data(), (int)shape.size()) + ")");
    check(*t, shape);
    return *t;
  }

  void check(const GgufTensor& t, const std::vector<int64_t>& shape) const {
    bool ok = true;
    for (int i = 0; i < 4; ++i) {
      int64_t want = i < static_cast<int>(shape.size()) ? shape[i] : 1;
      if (t.ne[i] != want) ok = false;
    }
    if (!ok)
      throw Error("tensor " + t.name + " has shape " + shape_str(t.ne, std::max<int>(1, t.n_dims)) +
                  ", expected " + shape_str(shape.data(), (int)shape.size()));
    const TypeInfo* ti = type_info(static_cast<uint32_t>(t.type));
    if (!ti || !ti->can_dequantize)
      throw Error("tensor " + t.name + " has type " + (ti ? ti->name : "unknown") + ", which slm cannot compute with");
    if (t.ne[0] % ti->block_size != 0)
      throw Error("tensor " + t.name + ": row of " + std::to_string(t.ne[0]) + " values is not a multiple of the " +
                  ti->name + " block size");
  }

  WeightView matrix(const std::string& name, int64_t in, int64_t out) const {
    return view(get(name, {in, out}));
  }
  WeightView optional_matrix(const std::string& name, int64_t in, int64_t out) const {
    return find(name) ? matrix(name, in, out) : WeightView{};
  }
  const float* vec(const std::string& name, int64_t n) const {
    const GgufTensor& t = get(name, {n});
    if (t.type != GgmlType::F32) throw Error("tensor " + name + " must be F32, it is " + type_name(t.type));
    return reinterpret_cast<const float*>(t.data);
  }
  const float* optional_vec(const std::string& name, int64_t n) const {
    return find(name) ? vec(name, n) : nullptr;
  }
  ExpertWeights experts(const std::string& name, int64_t in, int64_t out, int64_t n_expert) const {
    const GgufTensor& t = get(name, {in, out, n_expert});
    ExpertWeights e;
    e.all = view(t);
    e.all.rows = out * n_expert;
    e.rows_per_expert = out;
    return e;
  }

  static WeightView view(const GgufTensor& t) {
    return {t.type, t.ne[0], t.n_rows(), t.data, t.row_size()};
  }

 private:
  const GgufFile& f_;
};

}  // namespace

Weights Weights::bind(const GgufFile& f, const ModelConfig& c) {
  Binder b(f);
  Weights w;
  const int64_t E = c.n_embd;
  w.token_embd = b.matrix("token_embd.weight", E, c.n_vocab);
  w.output = c.tied_output ? w.token_embd : b.matrix("output.weight", E, c.n_vocab);
  w.output_norm = b.vec("output_norm.weight", E);
  if (c.has_rope_freqs) w.rope_freqs = b.vec("rope_freqs.weight", c.n_rot / 2);
  if (c.has_longrope) {
    w.rope_long = b.vec("rope_factors_long.weight", c.n_rot / 2);
    w.rope_short = b.vec("rope_factors_short.weight", c.n_rot / 2);
  }

  for (int il = 0; il < c.n_layer; ++il) {
    const LayerConfig& L = c.layers[il];
    const std::string p = "blk." + std::to_string(il) + ".";
    const int64_t q_rows = int64_t(L.n_head) * c.head_dim_k;
    const int64_t k_rows = int64_t(L.n_head_kv) * c.head_dim_k;
    const int64_t v_rows = int64_t(L.n_head_kv) * c.head_dim_v;
    LayerWeights lw;
    lw.attn_norm = b.vec(p + "attn_norm.weight", E);
    if (c.fused_qkv) {
      lw.wqkv = b.matrix(p + "attn_qkv.weight", E, q_rows + k_rows + v_rows);
    } else {
      lw.wq = b.matrix(p + "attn_q.weight", E, q_rows);
      lw.wk = b.matrix(p + "attn_k.weight", E, k_rows);
      lw.wv = b.matrix(p + "attn_v.weight", E, v_rows);
    }
    if (c.qk_norm) {
      lw.q_norm = b.vec(p + "attn_q_norm.weight", c.head_dim_k);
      lw.k_norm = b.vec(p + "attn_k_norm.weight", c.head_dim_k);
    }
    lw.wo = b.matrix(p + "attn_output.weight", int64_t(L.n_head) * c.head_dim_v, E);
    lw.ffn_norm = b.vec(p + "ffn_norm.weight", E);
    if (c.post_norms) {
      lw.post_attn_norm = b.vec(p + "post_attention_norm.weight", E);
      lw.post_ffn_norm = b.vec(p + "post_ffw_norm.weight", E);
    }
    if (c.n_expert > 0) {
      lw.router = b.matrix(p + "ffn_gate_inp.weight", E, c.n_expert);
      lw.gate_exps = b.experts(p + "ffn_gate_exps.weight", E, L.n_ff, c.n_expert);
      lw.up_exps = b.experts(p + "ffn_up_exps.weight", E, L.n_ff, c.n_expert);
      lw.down_exps = b.experts(p + "ffn_down_exps.weight", L.n_ff, E, c.n_expert);
      if (c.n_ff_shared > 0) {
        lw.gate_shexp = b.matrix(p + "ffn_gate_shexp.weight", E, c.n_ff_shared);
        lw.up_shexp = b.matrix(p + "ffn_up_shexp.weight", E, c.n_ff_shared);
        lw.down_shexp = b.matrix(p + "ffn_down_shexp.weight", c.n_ff_shared, E);
      }
    } else if (c.fused_gate_up) {
      lw.up = b.matrix(p + "ffn_up.weight", E, 2 * int64_t(L.n_ff));
      lw.down = b.matrix(p + "ffn_down.weight", L.n_ff, E);
    } else {
      lw.gate = b.matrix(p + "ffn_gate.weight", E, L.n_ff);
      lw.up = b.matrix(p + "ffn_up.weight", E, L.n_ff);
      lw.down = b.matrix(p + "ffn_down.weight", L.n_ff, E);
    }
    w.layers.push_back(lw);
  }
  return w;
}

void Weights::repack_for_cpu(bool release_file_pages) {
  if (!rows_x8_available()) return;
  const long page = sysconf(_SC_PAGESIZE);
  auto pack = [&](WeightView& v) {
    if (v.empty() || v.packed || v.rows % 8 != 0) return;
    const size_t group_bytes = rows_x8_group_bytes(v.type, v.cols);
    if (group_bytes == 0) return;
    const size_t bytes = static_cast<size_t>(v.rows) * v.row_stride;
    std::unique_ptr<uint8_t[]> buf(new uint8_t[static_cast<size_t>(v.rows / 8) * group_bytes]);
    repack_rows_x8(v.type, v.data, v.row_stride, v.rows, v.cols, buf.get());
    v.packed_group_bytes = group_bytes;
    v.packed = buf.get();
    packed_.push_back(std::move(buf));
    if (release_file_pages && page > 0) {
      // Whole pages inside the tensor only: a neighbour sharing an edge page keeps it.
      const uintptr_t b = (reinterpret_cast<uintptr_t>(v.data) + page - 1) / page * page;
      const uintptr_t e = (reinterpret_cast<uintptr_t>(v.data) + bytes) / page * page;
      if (e > b) madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
    }
  };
  for (LayerWeights& l : layers) {
    for (WeightView* v : {&l.wq, &l.wk, &l.wv, &l.wqkv, &l.wo, &l.gate, &l.up, &l.down, &l.gate_shexp, &l.up_shexp,
                          &l.down_shexp})
      pack(*v);
    for (ExpertWeights* e : {&l.gate_exps, &l.up_exps, &l.down_exps})
      if (e->rows_per_expert % 8 == 0) pack(e->all);
  }
  // A tied output is the embedding: the matmul reads the packed copy, and the embedding
  // lookups keep reading the file's rows (released pages fault back in one row at a time).
  pack(output);
}

}  // namespace slm

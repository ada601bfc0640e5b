// Folding adapters into the base (`slm lora merge`), as llama.cpp's export-lora computes it:
// the base tensor dequantized to F32, delta = B·A in F32 scaled by the adapter's scale and
// added, then stored in the output type.
#include <algorithm>
#include <memory>
#include <vector>

#include "gguf/gguf.h"
#include "kernels/thread_pool.h"
#include "model/lora.h"
#include "quant/mixture.h"
#include "quant/quant.h"
#include "slm/error.h"
#include "slm/model.h"

namespace slm {

namespace {

std::vector<float> to_f32(const WeightView& v) {
  std::vector<float> out(static_cast<size_t>(v.rows * v.cols), 0.0f);
  for (int64_t r = 0; r < v.rows; ++r) dequantize_row(v.type, v.data + size_t(r) * v.row_stride, &out[size_t(r * v.cols)], v.cols);
  return out;
}

// w[rows][cols] += scale · B·A: B [rows][rank], A [rank][cols] (one expert's block).
void add_product(ThreadPool& pool, float* w, int64_t rows, int64_t cols, const float* b, const float* a, int64_t rank,
                 float scale) {
  pool.parallel_for(rows, [&](int64_t r0, int64_t r1, int) {
    std::vector<float> delta(static_cast<size_t>(cols), 0.0f);
    for (int64_t o = r0; o < r1; ++o) {
      std::fill(delta.begin(), delta.end(), 0.0f);
      for (int64_t k = 0; k < rank; ++k) {
        const float bk = b[o * rank + k];
        const float* ak = a + k * cols;
        for (int64_t i = 0; i < cols; ++i) delta[size_t(i)] += bk * ak[i];
      }
      float* wo = w + o * cols;
      for (int64_t i = 0; i < cols; ++i) wo[i] = scale * delta[size_t(i)] + wo[i];
    }
  });
}

// token_embd: w[v][d] += scale · Σ_k A[v][k]·B[d][k] (A one row of rank values per token).
void add_embedding_product(ThreadPool& pool, float* w, int64_t n_vocab, int64_t n_embd, const float* a,
                           const float* b, int64_t rank, float scale) {
  pool.parallel_for(n_vocab, [&](int64_t v0, int64_t v1, int) {
    for (int64_t v = v0; v < v1; ++v)
      for (int64_t d = 0; d < n_embd; ++d) {
        float sum = 0;
        for (int64_t k = 0; k < rank; ++k) sum += a[v * rank + k] * b[d * rank + k];
        w[v * n_embd + d] = scale * sum + w[v * n_embd + d];
      }
  });
}

}  // namespace

void merge_lora(const Model& base, const LoraSet& set, const std::string& out_path, const LoraMergeOptions& opt) {
  if (set.adapters.empty()) throw Error("lora merge: no adapters given");
  for (const auto& [adapter, scale] : set.adapters)
    if (!adapter || !adapter->impl().bound) throw Error("lora merge: an adapter was not loaded for this base");
  GgmlType forced = GgmlType::F32;
  const bool force = !opt.out_type.empty();
  if (force) {
    const QuantTarget t = parse_quant_target(opt.out_type);
    if (t.k_mixture) throw Error("lora merge: --type takes one tensor type (e.g. Q4_K, Q8_0, F16), not the mixture " + t.name);
    forced = t.base;
  }
  const GgufFile& in = base.file();
  ThreadPool pool(std::max(1, opt.n_threads));
  GgufWriter w(in.alignment());
  for (const auto& [key, value] : in.metadata()) w.set(key, value);
  if (force) w.set("general.file_type", GgufValue::make_u32(parse_quant_target(opt.out_type).file_type));

  std::vector<std::unique_ptr<uint8_t[]>> merged;  // kept until write()
  const size_t total = in.tensors().size();
  size_t done = 0;
  for (const GgufTensor& t : in.tensors()) {
    std::vector<std::pair<const LoraPair*, float>> terms;
    for (const auto& [adapter, user_scale] : set.adapters) {
      auto it = adapter->impl().by_target.find(t.name);
      if (it != adapter->impl().by_target.end() && user_scale != 0.0f) terms.push_back({it->second, user_scale});
    }
    const std::vector<int64_t> ne(t.ne, t.ne + std::max<uint32_t>(1, t.n_dims));
    if (terms.empty()) {
      w.add_tensor(t.name, t.type, ne, t.data, t.nbytes);
    } else {
      const GgmlType out_type = force ? forced : t.type;
      const TypeInfo* ti = type_info(uint32_t(out_type));
      if (!ti || !ti->can_quantize) throw Error("lora merge: cannot write " + t.name + " as " + type_name(out_type));
      if (t.ne[0] % ti->block_size != 0)
        throw Error("lora merge: " + t.name + " rows of " + std::to_string(t.ne[0]) + " values do not fill " +
                    ti->name + " blocks");
      const int64_t cols = t.ne[0], rows = t.n_rows();
      std::vector<float> weights = to_f32({t.type, cols, rows, t.data, t.row_size()});
      for (const auto& [pair, user_scale] : terms) {
        const float scale = user_scale * pair->scale;
        const std::vector<float> a = to_f32(pair->a), b = to_f32(pair->b);
        if (t.name == "token_embd.weight") {
          add_embedding_product(pool, weights.data(), rows, cols, a.data(), b.data(), pair->rank, scale);
        } else {
          const int64_t experts = std::max<int64_t>(1, pair->n_expert), per = rows / experts;
          for (int64_t e = 0; e < experts; ++e)
            add_product(pool, weights.data() + e * per * cols, per, cols, b.data() + e * per * pair->rank,
                        a.data() + e * pair->rank * cols, pair->rank, scale);
        }
      }
      const size_t row_size = row_bytes(out_type, cols);
      std::unique_ptr<uint8_t[]> bytes(new uint8_t[row_size * size_t(rows)]);
      pool.parallel_for(rows, [&](int64_t r0, int64_t r1, int) {
        for (int64_t r = r0; r < r1; ++r) quantize_row(out_type, &weights[size_t(r * cols)], bytes.get() + size_t(r) * row_size, cols);
      });
      w.add_tensor(t.name, out_type, ne, bytes.get(), row_size * size_t(rows));
      merged.push_back(std::move(bytes));
    }
    if (opt.progress) opt.progress(++done, total);
  }
  w.write(out_path);
}

}  // namespace slm

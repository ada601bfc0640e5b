// Loading and checking LoRA adapters (format: include/slm/adapter.h). Every check names the
// adapter file, the tensor and both shapes, so a user can tell a wrong base from a broken
// file at a glance.
#include "model/lora.h"

#include <cmath>
#include <cstdlib>
#include <iterator>
#include <map>

#include "gguf/gguf.h"
#include "model/config.h"
#include "quant/quant.h"
#include "slm/error.h"
#include "slm/model.h"

namespace slm {

namespace {

constexpr const char* kTargetNames[] = {
    "attn_q",        "attn_k",       "attn_v",         "attn_qkv",     "attn_output",   "ffn_gate",
    "ffn_up",        "ffn_down",     "ffn_gate_inp",   "ffn_gate_exps", "ffn_up_exps",  "ffn_down_exps",
    "ffn_gate_shexp", "ffn_up_shexp", "ffn_down_shexp",
};
static_assert(std::size(kTargetNames) == size_t(LoraTarget::count));

std::string shape_of(const GgufTensor& t) {
  std::string s = "[";
  for (uint32_t i = 0; i < std::max<uint32_t>(1, t.n_dims); ++i) s += (i ? ", " : "") + std::to_string(t.ne[i]);
  return s + "]";
}

// "blk.N.NAME.weight" -> (N, target); false for any other name.
bool parse_layer_tensor(const std::string& name, int* layer, LoraTarget* target) {
  if (name.rfind("blk.", 0) != 0) return false;
  const size_t dot = name.find('.', 4);
  if (dot == std::string::npos || dot == 4 || dot - 4 > 6) return false;
  for (size_t i = 4; i < dot; ++i)
    if (name[i] < '0' || name[i] > '9') return false;
  const std::string rest = name.substr(dot + 1);
  if (rest.size() < 8 || rest.compare(rest.size() - 7, 7, ".weight") != 0) return false;
  const std::string kind = rest.substr(0, rest.size() - 7);
  for (size_t k = 0; k < size_t(LoraTarget::count); ++k)
    if (kind == kTargetNames[k]) {
      *layer = std::atoi(name.substr(4, dot - 4).c_str());
      *target = LoraTarget(k);
      return true;
    }
  return false;
}

bool is_experts(LoraTarget t) {
  return t == LoraTarget::ffn_gate_exps || t == LoraTarget::ffn_up_exps || t == LoraTarget::ffn_down_exps;
}

struct AB {
  const GgufTensor* a = nullptr;
  const GgufTensor* b = nullptr;
};

WeightView view_of(const GgufTensor& t, int64_t cols, int64_t rows) {
  return {t.type, cols, rows, t.data, row_bytes(t.type, cols)};
}

}  // namespace

const char* lora_target_name(LoraTarget t) { return kTargetNames[size_t(t)]; }

LoraAdapter::~LoraAdapter() = default;
const std::string& LoraAdapter::path() const { return impl_->path; }
const std::string& LoraAdapter::architecture() const { return impl_->architecture; }
float LoraAdapter::alpha() const { return impl_->alpha; }
int LoraAdapter::max_rank() const { return impl_->max_rank; }
size_t LoraAdapter::bytes() const { return impl_->bytes; }
std::vector<std::string> LoraAdapter::targets() const { return impl_->targets; }
double LoraAdapter::flops_per_token() const { return impl_->flops_per_token; }

namespace {
void bind_to_base(LoraAdapter::Impl& impl, const Model& base, const std::map<std::string, AB>& pairs);
}

std::vector<LoraAdapter::PairInfo> LoraAdapter::pairs() const { return impl_->pair_info; }

std::vector<std::pair<std::string, std::string>> LoraAdapter::metadata() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [key, v] : impl_->file->metadata()) {
    std::string text;
    if (v.type == GgufType::STRING) text = v.str;
    else if (v.type == GgufType::ARRAY) text = "[" + std::to_string(v.arr.size()) + " values]";
    else if (v.type == GgufType::BOOL) text = v.u ? "true" : "false";
    else if (v.is_float()) text = std::to_string(v.as_double());
    else text = std::to_string(v.as_int());
    out.emplace_back(key, text);
  }
  return out;
}

std::unique_ptr<LoraAdapter> LoraAdapter::load(const std::string& path, const Model& base) {
  return open_checked(path, &base);
}

std::unique_ptr<LoraAdapter> LoraAdapter::inspect(const std::string& path) { return open_checked(path, nullptr); }

std::unique_ptr<LoraAdapter> LoraAdapter::open_checked(const std::string& path, const Model* base) {
  return from_file(GgufFile::open(path), base);
}

std::unique_ptr<LoraAdapter> LoraAdapter::from_file(std::unique_ptr<GgufFile> file, const Model* base) {
  auto impl = std::make_unique<Impl>();
  impl->path = file->path();
  const std::string path = impl->path;
  impl->file = std::move(file);
  const GgufFile& f = *impl->file;
  auto fail = [&](const std::string& what) -> Error { return Error(path + ": " + what); };

  const std::string type = f.get_string_or("general.type", "");
  if (type != "adapter")
    throw fail("not an adapter (general.type is '" + type + "', expected 'adapter')");
  const std::string adapter_type = f.get_string_or("adapter.type", "");
  if (adapter_type != "lora")
    throw fail("adapter.type is '" + adapter_type + "'; only 'lora' adapters are supported");
  impl->architecture = f.get_string_or("general.architecture", "");
  if (base && impl->architecture != base->config().arch)
    throw fail("adapter for architecture '" + impl->architecture + "', but the base model is '" +
               base->config().arch + "'");
  impl->alpha = f.get_f32_or("adapter.lora.alpha", 0.0f);
  if (!std::isfinite(impl->alpha)) throw fail("adapter.lora.alpha is not a finite number");

  // Pair up NAME.lora_a and NAME.lora_b, keeping the file's order of first appearance.
  std::vector<std::string> order;
  std::map<std::string, AB> pairs;
  for (const GgufTensor& t : f.tensors()) {
    const bool is_a = t.name.size() > 7 && t.name.compare(t.name.size() - 7, 7, ".lora_a") == 0;
    const bool is_b = t.name.size() > 7 && t.name.compare(t.name.size() - 7, 7, ".lora_b") == 0;
    if (!is_a && !is_b) throw fail("tensor " + t.name + " is neither a .lora_a nor a .lora_b");
    const std::string target = t.name.substr(0, t.name.size() - 7);
    if (!pairs.count(target)) order.push_back(target);
    AB& ab = pairs[target];
    (is_a ? ab.a : ab.b) = &t;
  }
  if (order.empty()) throw fail("the adapter holds no tensors");

  for (const std::string& name : order) {
    const AB& ab = pairs[name];
    if (!ab.a || !ab.b) throw fail(name + " has a " + (ab.a ? "lora_a" : "lora_b") + " but no " + (ab.a ? "lora_b" : "lora_a"));
    const GgufTensor& A = *ab.a;
    const GgufTensor& B = *ab.b;
    const bool embd = name == "token_embd.weight";
    LoraAdapter::PairInfo info;
    info.target = name;
    info.rank = int(embd ? A.ne[0] : A.ne[1]);
    info.a_shape.assign(A.ne, A.ne + std::max<uint32_t>(1, A.n_dims));
    info.b_shape.assign(B.ne, B.ne + std::max<uint32_t>(1, B.n_dims));
    info.a_type = type_name(A.type);
    info.b_type = type_name(B.type);
    if (info.rank <= 0 || B.ne[0] != info.rank)
      throw fail(name + ": lora_a " + shape_of(A) + " and lora_b " + shape_of(B) + " do not share one rank");
    impl->pair_info.push_back(info);
    impl->targets.push_back(name);
    impl->max_rank = std::max(impl->max_rank, info.rank);
    impl->bytes += A.nbytes + B.nbytes;
  }
  if (base) bind_to_base(*impl, *base, pairs);
  std::unique_ptr<LoraAdapter> adapter(new LoraAdapter());
  adapter->impl_ = std::move(impl);
  return adapter;
}

namespace {

// Checks every pair against the base tensor it adapts and fills the per-layer table.
void bind_to_base(LoraAdapter::Impl& impl_ref, const Model& base, const std::map<std::string, AB>& pairs) {
  LoraAdapter::Impl* impl = &impl_ref;
  auto fail = [&](const std::string& what) -> Error { return Error(impl->path + ": " + what); };
  const ModelConfig& config = base.config();
  impl->layers.resize(size_t(config.n_layer));
  for (const std::string& name : impl->targets) {
    const auto& ab = pairs.at(name);
    const GgufTensor& A = *ab.a;
    const GgufTensor& B = *ab.b;
    const GgufTensor* W = base.file().find_tensor(name);
    if (!W) throw fail("adapts " + name + ", which the base model does not have");

    int layer = -1;
    LoraTarget target = LoraTarget::count;
    const bool is_embd = name == "token_embd.weight";
    const bool is_output = name == "output.weight";
    if (!is_embd && !is_output && !parse_layer_tensor(name, &layer, &target))
      throw fail("adapts " + name + ", which is not a matrix slm applies adapters to");
    if (layer >= config.n_layer) throw fail(name + ": layer " + std::to_string(layer) + " is past the base's " +
                                            std::to_string(config.n_layer) + " layers");
    const bool experts = target != LoraTarget::count && is_experts(target);

    // Shapes (ggml order, ne[0] innermost). token_embd's pair is stored the other way round.
    const std::string shapes = " (" + name + " " + shape_of(*W) + ", lora_a " + shape_of(A) + ", lora_b " + shape_of(B) + ")";
    int64_t rank = 0;
    if (is_embd) {
      rank = A.ne[0];
      if (A.n_dims != 2 || B.n_dims != 2 || B.ne[0] != rank || A.ne[1] != W->ne[1] || B.ne[1] != W->ne[0])
        throw fail("token_embd pair does not fit the embedding: expected lora_a [r, n_vocab] and lora_b [r, n_embd]" + shapes);
    } else {
      rank = A.ne[1];
      const uint32_t dims = experts ? 3 : 2;
      bool ok = A.n_dims == dims && B.n_dims == dims && A.ne[0] == W->ne[0] && B.ne[1] == W->ne[1] && B.ne[0] == rank;
      if (experts) ok = ok && A.ne[2] == W->ne[2] && B.ne[2] == W->ne[2];
      if (!ok)
        throw fail(name + ": expected lora_a [n_in, r" + std::string(experts ? ", n_expert" : "") + "] and lora_b [r, n_out" +
                   (experts ? ", n_expert" : "") + "] matching the base" + shapes);
    }
    if (rank <= 0) throw fail(name + ": rank 0" + shapes);
    for (const GgufTensor* t : {&A, &B}) {
      const TypeInfo* ti = type_info(static_cast<uint32_t>(t->type));
      if (!ti || !ti->can_dequantize) throw fail(t->name + " has a type slm cannot compute with");
      if (t->ne[0] % ti->block_size != 0)
        throw fail(t->name + ": rows of " + std::to_string(t->ne[0]) + " values do not fill " + ti->name + " blocks");
    }

    LoraPair p;
    p.rank = rank;
    p.scale = impl->alpha != 0.0f ? impl->alpha / float(rank) : 1.0f;
    if (is_embd) {
      p.a = view_of(A, rank, A.ne[1]);
      p.b = view_of(B, rank, B.ne[1]);
      impl->token_embd = p;
      impl->flops_per_token += double(rank) * double(B.ne[1]);
    } else {
      p.n_expert = experts ? W->ne[2] : 0;
      p.a = view_of(A, A.ne[0], A.ne[1] * A.ne[2]);
      p.b = view_of(B, rank, B.ne[1] * B.ne[2]);
      const double per_expert = double(rank) * double(A.ne[0] + B.ne[1]);
      impl->flops_per_token += experts ? per_expert * std::max(1, config.n_expert_used) : per_expert;
      if (is_output) {
        if (config.tied_output) throw fail("adapts output.weight, but the base ties its output to token_embd");
        impl->output = p;
      } else {
        impl->layers[size_t(layer)][size_t(target)] = p;
      }
    }
  }
  if (config.tied_output && impl->token_embd.present() && !impl->output.present()) {
    const LoraPair& e = impl->token_embd;
    const int64_t n_embd = e.b.rows, rank = e.rank;
    std::vector<float> b(size_t(n_embd * rank));
    for (int64_t d = 0; d < n_embd; ++d) dequantize_row(e.b.type, e.b.data + size_t(d) * e.b.row_stride, &b[size_t(d * rank)], rank);
    impl->tied_output_bt.resize(b.size());
    for (int64_t d = 0; d < n_embd; ++d)
      for (int64_t k = 0; k < rank; ++k) impl->tied_output_bt[size_t(k * n_embd + d)] = b[size_t(d * rank + k)];
    LoraPair out;
    out.rank = rank;
    out.scale = e.scale;
    out.a = {GgmlType::F32, n_embd, rank, reinterpret_cast<const uint8_t*>(impl->tied_output_bt.data()),
             size_t(n_embd) * sizeof(float)};
    out.b = e.a;  // n_vocab rows of rank values
    impl->output = out;
  }
  // Pointers into the layer table only once it is complete (no more reallocation).
  for (const std::string& name : impl->targets) {
    int layer = -1;
    LoraTarget target = LoraTarget::count;
    if (name == "token_embd.weight") impl->by_target[name] = &impl->token_embd;
    else if (name == "output.weight") impl->by_target[name] = &impl->output;
    else if (parse_layer_tensor(name, &layer, &target)) impl->by_target[name] = &impl->layers[size_t(layer)][size_t(target)];
  }
  impl->bound = true;
}

}  // namespace

}  // namespace slm

namespace slm {

void write_lora_adapter(const std::string& path, const std::string& architecture, float alpha,
                        const std::vector<LoraPairData>& pairs,
                        const std::vector<std::pair<std::string, std::string>>& metadata, const std::string& type) {
  const GgmlType stored = type == "F32" ? GgmlType::F32
                          : type == "F16" ? GgmlType::F16
                                          : throw Error("adapter tensors are written as F32 or F16, not " + type);
  GgufWriter w;
  w.set("general.architecture", GgufValue::make_string(architecture));
  w.set("general.type", GgufValue::make_string("adapter"));
  w.set("adapter.type", GgufValue::make_string("lora"));
  w.set("adapter.lora.alpha", GgufValue::make_f32(alpha));
  for (const auto& [key, value] : metadata) w.set(key, GgufValue::make_string(value));
  std::vector<std::vector<uint8_t>> bytes;  // kept alive until write()
  bytes.reserve(pairs.size() * 2);
  for (const LoraPairData& p : pairs) {
    for (int which = 0; which < 2; ++which) {
      const std::vector<int64_t>& shape = which == 0 ? p.a_shape : p.b_shape;
      const std::vector<float>& values = which == 0 ? p.a : p.b;
      int64_t count = 1;
      for (int64_t d : shape) count *= d;
      if (shape.empty() || count != int64_t(values.size()))
        throw Error(path + ": " + p.target + (which ? ".lora_b" : ".lora_a") + ": shape and values disagree");
      const int64_t row = shape[0];
      std::vector<uint8_t> data(row_bytes(stored, row) * size_t(count / row));
      for (int64_t r = 0; r < count / row; ++r)
        quantize_row(stored, values.data() + r * row, data.data() + size_t(r) * row_bytes(stored, row), row);
      bytes.push_back(std::move(data));
      w.add_tensor(p.target + (which ? ".lora_b" : ".lora_a"), stored, shape, bytes.back().data(), bytes.back().size());
    }
  }
  w.write(path);
}

}  // namespace slm

// PEFT LoRA adapters → llama.cpp's GGUF adapter format. A PEFT pair for module M is
// M.lora_A.weight [r, n_in] and M.lora_B.weight [n_out, r] (W' = W + (alpha/r)·B·A); the GGUF
// pair is NAME.lora_a (ne [n_in, r]) and NAME.lora_b (ne [r, n_out]) for the base's GGUF tensor
// NAME — the same bytes, once the base family's transforms are applied to the pair as they
// are to W: a row permutation of W is a row permutation of B, a split of W's rows splits B's
// and keeps A, stacked experts stack both.
#include <cmath>
#include <filesystem>
#include <map>

#include "convert/convert.h"
#include "convert/hf_families.h"
#include "convert/safetensors.h"
#include "gguf/gguf.h"
#include "model/config.h"
#include "slm/adapter.h"
#include "slm/error.h"

namespace slm::convert {
namespace {

namespace fs = std::filesystem;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The base's family and the sizes its transforms need, from a GGUF file or an HF folder.
struct Base {
  const HfFamily* family = nullptr;
  HfDims dims;
};

Base read_base(const std::string& base) {
  Base b;
  std::error_code ec;
  if (fs::is_directory(base, ec)) {
    const std::string cfg_path = (fs::path(base) / "config.json").string();
    const json cfg = read_hf_json(cfg_path, true);
    b.family = &find_hf_family(cfg, cfg_path);
    b.dims = b.family->dims(cfg);
    return b;
  }
  auto f = GgufFile::open(base);
  const ModelConfig c = ModelConfig::from_gguf(*f);
  b.family = find_hf_family_by_arch(c.arch);
  if (!b.family) throw Error(base + ": architecture '" + c.arch + "' has no Hugging Face mapping in slm convert");
  b.dims.n_embd = c.n_embd;
  b.dims.n_vocab = c.n_vocab;
  b.dims.n_layer = c.n_layer;
  b.dims.head_dim = c.head_dim_k;
  b.dims.n_expert = c.n_expert;
  for (const LayerConfig& l : c.layers) {
    b.dims.n_head.push_back(l.n_head);
    b.dims.n_head_kv.push_back(l.n_head_kv);
    b.dims.n_ff.push_back(l.n_ff);
  }
  return b;
}

std::vector<float> values_of(const StTensor& t) {
  std::vector<float> v(static_cast<size_t>(t.n_elements()));
  SafetensorsSet::to_f32(t, v.data());
  return v;
}

// Rows of a row-major [rows, cols] matrix moved from HF's per-head half-split rotary order to
// GGUF's interleaved pairs (the transform the base's q_proj / k_proj rows get).
std::vector<float> permute_rows(const std::vector<float>& m, int64_t rows, int64_t cols, int64_t n_head) {
  std::vector<float> out(m.size());
  const int64_t per_head = rows / n_head, half = per_head / 2;
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t j = 0; j < 2; ++j)
        std::copy_n(m.begin() + (h * per_head + j * half + i) * cols, cols, out.begin() + (h * per_head + 2 * i + j) * cols);
  return out;
}

}  // namespace

LoraConvertResult convert_peft_lora(const LoraConvertOptions& o) {
  const fs::path dir(o.adapter_dir);
  const std::string cfg_path = (dir / "adapter_config.json").string();
  const json ac = read_hf_json(cfg_path, true);
  if (!ac.is_object()) throw Error(cfg_path + ": not a JSON object");
  const std::string peft_type = ac.contains("peft_type") && ac["peft_type"].is_string() ? ac["peft_type"].get<std::string>() : "";
  if (peft_type != "LORA") throw Error(cfg_path + ": peft_type is '" + peft_type + "'; only LORA adapters convert");
  if (ac.contains("use_dora") && ac["use_dora"].is_boolean() && ac["use_dora"].get<bool>())
    throw Error(cfg_path + ": a DoRA adapter (use_dora) has magnitude vectors llama.cpp's format cannot hold");
  for (const char* k : {"rank_pattern", "alpha_pattern"})
    if (ac.contains(k) && !ac[k].is_null() && !(ac[k].is_object() && ac[k].empty()))
      throw Error(cfg_path + ": " + k + " gives modules their own rank or alpha; the GGUF adapter holds one alpha");
  if (!ac.contains("r") || !ac["r"].is_number_integer() || ac["r"].get<int64_t>() <= 0 || ac["r"].get<int64_t>() > 65536)
    throw Error(cfg_path + ": 'r' (the rank) must be a positive integer");
  if (!ac.contains("lora_alpha") || !ac["lora_alpha"].is_number())
    throw Error(cfg_path + ": 'lora_alpha' must be a number");
  const int64_t r = ac["r"].get<int64_t>();
  double alpha = ac["lora_alpha"].get<double>();
  // rsLoRA scales by alpha/√r; the GGUF adapter's scale is alpha/r, so the same scale is
  // alpha·√r written as alpha.
  if (ac.contains("use_rslora") && ac["use_rslora"].is_boolean() && ac["use_rslora"].get<bool>())
    alpha *= std::sqrt(static_cast<double>(r));
  if (o.outtype != "f32" && o.outtype != "f16" && o.outtype != "F32" && o.outtype != "F16")
    throw Error("convert --lora: --outtype must be f32 or f16 for an adapter, not '" + o.outtype + "'");
  const std::string type = (o.outtype == "f32" || o.outtype == "F32") ? "F32" : "F16";

  const Base base = read_base(o.base);
  const HfFamily& fam = *base.family;
  const std::string weights = (dir / "adapter_model.safetensors").string();
  std::error_code ec;
  if (!fs::is_regular_file(weights, ec))
    throw Error(o.adapter_dir + ": no adapter_model.safetensors (adapter_model.bin is PyTorch pickle: re-save with safetensors)");
  auto set = SafetensorsSet::open_dir(o.adapter_dir, "adapter_model.safetensors");

  // Pair up module.lora_A / module.lora_B.
  struct Pair {
    const StTensor* a = nullptr;
    const StTensor* b = nullptr;
  };
  std::map<std::string, Pair> pairs;
  std::vector<std::string> order;
  for (const StTensor& t : set->tensors()) {
    std::string name = t.name;
    if (name.rfind("base_model.model.", 0) == 0) name = name.substr(17);
    const std::string where = weights + ": tensor '" + t.name + "'";
    if (name.find("lora_magnitude_vector") != std::string::npos)
      throw Error(where + ": a DoRA magnitude vector; DoRA adapters do not convert");
    if (name.find("lora_embedding_") != std::string::npos)
      throw Error(where + ": LoRA on the embedding is not supported by this converter");
    const bool is_a = ends_with(name, ".lora_A.weight"), is_b = ends_with(name, ".lora_B.weight");
    if (!is_a && !is_b) throw Error(where + ": neither a lora_A nor a lora_B weight (modules_to_save is not supported)");
    const std::string module = name.substr(0, name.size() - 14) + ".weight";
    if (!pairs.count(module)) order.push_back(module);
    Pair& p = pairs[module];
    (is_a ? p.a : p.b) = &t;
    if (t.shape.size() != 2) throw Error(where + ": must be 2-D, it has " + std::to_string(t.shape.size()) + " dimensions");
    const int64_t rank = is_a ? t.shape[0] : t.shape[1];
    if (rank != r)
      throw Error(where + ": rank " + std::to_string(rank) + " differs from adapter_config.json's r = " + std::to_string(r));
  }
  if (order.empty()) throw Error(weights + ": holds no LoRA pairs");

  std::vector<LoraPairData> out;
  std::map<std::string, size_t> stacks;  // GGUF name → index in out, for experts
  std::map<std::string, int64_t> stack_fill;
  for (const std::string& module : order) {
    const Pair& p = pairs[module];
    if (!p.a || !p.b) throw Error(weights + ": " + module + " has only one of lora_A and lora_B");
    const int64_t n_in = p.a->shape[1], n_out = p.b->shape[0];
    const NameParts np = split_hf_name(module, fam.layer_prefix);
    if (np.layer >= base.dims.n_layer)
      throw Error(weights + ": " + module + " is in layer " + std::to_string(np.layer) + ", the base has " +
                  std::to_string(base.dims.n_layer));
    bool matched = false;
    for (const TensorRule& rule : fam.rules) {
      if (rule.layer != (np.layer >= 0) || np.key != rule.hf || !*rule.gguf) continue;
      matched = true;
      const std::string gname = np.layer >= 0 ? "blk." + std::to_string(np.layer) + "." + rule.gguf : rule.gguf;
      std::vector<float> a = values_of(*p.a), b = values_of(*p.b);
      LoraPairData d;
      d.target = gname;
      d.a_shape = {n_in, r};
      switch (rule.op) {
        case Op::Copy: d.b_shape = {r, n_out}; break;
        case Op::PermuteQ:
        case Op::PermuteK: {
          const int64_t heads = rule.op == Op::PermuteQ ? base.dims.n_head[np.layer] : base.dims.n_head_kv[np.layer];
          if (n_out % (2 * heads) != 0)
            throw Error(weights + ": " + module + ".lora_B has " + std::to_string(n_out) + " rows, not " +
                        std::to_string(heads) + " heads of rotary pairs");
          b = permute_rows(b, n_out, r, heads);
          d.b_shape = {r, n_out};
          break;
        }
        case Op::SplitFirst:
        case Op::SplitSecond: {
          const int64_t F = base.dims.n_ff[np.layer];
          if (n_out != 2 * F)
            throw Error(weights + ": " + module + ".lora_B has " + std::to_string(n_out) + " rows, not gate and up rows of " +
                        std::to_string(F));
          const int64_t first = rule.op == Op::SplitFirst ? 0 : F;
          b = std::vector<float>(b.begin() + first * r, b.begin() + (first + F) * r);
          d.b_shape = {r, F};
          break;
        }
        case Op::Stack: {
          if (np.expert < 0 || np.expert >= base.dims.n_expert)
            throw Error(weights + ": " + module + ": expert outside the base's " + std::to_string(base.dims.n_expert));
          auto [it, fresh] = stacks.emplace(gname, out.size());
          if (fresh) {
            d.a_shape = {n_in, r, base.dims.n_expert};
            d.b_shape = {r, n_out, base.dims.n_expert};
            d.a.assign(static_cast<size_t>(n_in * r * base.dims.n_expert), 0.0f);
            d.b.assign(static_cast<size_t>(r * n_out * base.dims.n_expert), 0.0f);
            out.push_back(std::move(d));
          }
          LoraPairData& s = out[it->second];
          if (s.a_shape[0] != n_in || s.b_shape[1] != n_out)
            throw Error(weights + ": " + module + ": experts of one layer differ in shape");
          std::copy(a.begin(), a.end(), s.a.begin() + np.expert * n_in * r);
          std::copy(b.begin(), b.end(), s.b.begin() + np.expert * r * n_out);
          ++stack_fill[gname];
          continue;
        }
        case Op::AddOne:
          throw Error(weights + ": " + module + ": LoRA on a norm weight is not supported");
      }
      d.a = std::move(a);
      d.b = std::move(b);
      out.push_back(std::move(d));
    }
    if (!matched)
      throw Error(weights + ": " + module + " is not a matrix of the " + fam.arch + " family slm can adapt");
  }
  for (const auto& [name, n] : stack_fill)
    if (n != base.dims.n_expert)
      throw Error(weights + ": " + name + " has LoRA pairs for " + std::to_string(n) + " of " +
                  std::to_string(base.dims.n_expert) + " experts");
  std::vector<std::pair<std::string, std::string>> meta;
  meta.emplace_back("general.name", dir.lexically_normal().filename().string());
  write_lora_adapter(o.out, fam.arch, static_cast<float>(alpha), out, meta, type);
  LoraConvertResult res;
  res.arch = fam.arch;
  res.n_pairs = out.size();
  res.rank = r;
  res.alpha = static_cast<float>(alpha);
  return res;
}

}  // namespace slm::convert

#include "convert/convert.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <thread>
#include <unistd.h>

#include "convert/bpe_pre.h"
#include "convert/hf_families.h"
#include "convert/hf_vocab.h"
#include "convert/safetensors.h"
#include "gguf/gguf.h"
#include "quant/mixture.h"
#include "quant/quant.h"
#include "slm/error.h"

namespace slm::convert {
namespace {

namespace fs = std::filesystem;

std::string shape_str(const std::vector<int64_t>& ne) {
  std::string s = "[";
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

// One tensor of the output and how to make it.
struct Planned {
  std::string name;                   // GGUF name
  Op op = Op::Copy;
  std::vector<const StTensor*> src;   // one, or the experts of a Stack
  const GeneratedTensor* gen = nullptr;
  std::vector<int64_t> ne;            // GGUF order (ne[0] innermost)
  int64_t layer = -1;
  int64_t split_rows = 0;             // n_ff of a split
  int64_t n_head = 0;                 // heads of a permutation
  int64_t keep_rows = 0;              // Gemma 3: embedding rows kept (0 = all)
  GgmlType type = GgmlType::F32;
  int64_t n_elements() const {
    int64_t n = 1;
    for (int64_t x : ne) n *= x;
    return n;
  }
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The shape config.json implies for a GGUF tensor (ne order), when slm knows it.
std::optional<std::vector<int64_t>> expected_shape(const Planned& p, const HfDims& d, bool fused_gate_up) {
  const std::string n = p.layer >= 0 ? p.name.substr(p.name.find('.', 4) + 1) : p.name;
  const int64_t E = d.n_embd, hd = d.head_dim;
  if (n == "token_embd.weight" || n == "output.weight")
    return std::vector<int64_t>{E, p.keep_rows ? p.keep_rows : d.n_vocab};
  if (n == "output_norm.weight") return std::vector<int64_t>{E};
  if (p.layer < 0) return std::nullopt;
  const int64_t l = p.layer, nh = d.n_head[l], nkv = d.n_head_kv[l], ff = d.n_ff[l];
  if (n == "attn_norm.weight" || n == "ffn_norm.weight" || n == "post_attention_norm.weight" ||
      n == "post_ffw_norm.weight")
    return std::vector<int64_t>{E};
  if (n == "attn_q.weight") return std::vector<int64_t>{E, nh * hd};
  if (n == "attn_k.weight" || n == "attn_v.weight") return std::vector<int64_t>{E, nkv * hd};
  if (n == "attn_qkv.weight") return std::vector<int64_t>{E, (nh + 2 * nkv) * hd};
  if (n == "attn_output.weight") return std::vector<int64_t>{nh * hd, E};
  if (n == "attn_q_norm.weight" || n == "attn_k_norm.weight") return std::vector<int64_t>{hd};
  if (n == "ffn_gate.weight") return std::vector<int64_t>{E, ff};
  if (n == "ffn_up.weight") return std::vector<int64_t>{E, fused_gate_up ? 2 * ff : ff};
  if (n == "ffn_down.weight") return std::vector<int64_t>{ff, E};
  if (n == "ffn_gate_inp.weight") return std::vector<int64_t>{E, d.n_expert};
  if (n == "ffn_gate_exps.weight" || n == "ffn_up_exps.weight") return std::vector<int64_t>{E, ff, d.n_expert};
  if (n == "ffn_down_exps.weight") return std::vector<int64_t>{ff, E, d.n_expert};
  return std::nullopt;
}

std::vector<int64_t> reversed(const std::vector<int64_t>& shape) { return {shape.rbegin(), shape.rend()}; }

// The reference's GGUF types for a float outtype: 1-D tensors and norms F32, MoE routers F32,
// everything else the outtype (Q8_0 falls back to F16 for rows that are not whole blocks).
GgmlType reference_type(const Planned& p, GgmlType base) {
  if (p.ne.size() <= 1 || ends_with(p.name, "_norm.weight") || p.name.find("ffn_gate_inp") != std::string::npos ||
      !ends_with(p.name, ".weight"))
    return GgmlType::F32;
  if (base == GgmlType::Q8_0 && p.ne[0] % 32 != 0) return GgmlType::F16;
  return base;
}

// Where row r of a planned tensor (ne[0] values, GGUF order) comes from: a source tensor
// and its row. Every op maps whole rows, so a tensor is made row by row and no copy of it
// in float32 is ever held.
std::pair<const StTensor*, int64_t> source_row(const Planned& p, int64_t r, int64_t cols) {
  switch (p.op) {
    case Op::Stack: {  // experts one after the other
      const int64_t per = p.src[0]->n_elements() / cols;
      return {p.src[static_cast<size_t>(r / per)], r % per};
    }
    case Op::PermuteQ:
    case Op::PermuteK: {
      // Per head, HF keeps the first element of every rotary pair, then the second ones;
      // GGUF interleaves them: row (h, i, j) of the output is row (h, j, i) of the input.
      const int64_t per_head = p.src[0]->shape[0] / p.n_head, half = per_head / 2;
      const int64_t h = r / per_head, k = r % per_head;
      return {p.src[0], h * per_head + (k % 2) * half + k / 2};
    }
    case Op::SplitFirst:
    case Op::SplitSecond: {
      // rows [0, F) or [F, 2F) of every [2F, cols] block (one block per expert when 3-D)
      const int64_t F = p.split_rows, first = p.op == Op::SplitFirst ? 0 : F;
      return {p.src[0], (r / F) * 2 * F + first + r % F};
    }
    case Op::Copy:
    case Op::AddOne: break;
  }
  return {p.src[0], r};  // Copy (Gemma 3's trimmed embedding keeps the first rows)
}

// Makes the planned tensor into dst in its GGUF type, rows split over threads; each thread
// holds one float32 row.
void make_tensor(const Planned& p, uint8_t* dst, int threads) {
  const int64_t cols = p.ne[0];
  int64_t rows = 1;
  for (size_t i = 1; i < p.ne.size(); ++i) rows *= p.ne[i];
  const size_t rb = row_bytes(p.type, cols);
  auto run = [&](int64_t r0, int64_t r1) {
    std::vector<float> row(static_cast<size_t>(cols));
    for (int64_t r = r0; r < r1; ++r) {
      if (p.gen) {
        std::memcpy(row.data(), p.gen->values.data() + r * cols, static_cast<size_t>(cols) * 4);
      } else {
        const auto [src, src_row] = source_row(p, r, cols);
        SafetensorsSet::to_f32(*src, src_row * cols, cols, row.data());
        if (p.op == Op::AddOne)
          for (float& v : row) v += 1.0f;
      }
      if (p.type == GgmlType::F32) std::memcpy(dst + r * rb, row.data(), rb);
      else quantize_row(p.type, row.data(), dst + r * rb, cols);
    }
  };
  const int n_thr = rows < 64 ? 1 : std::max(1, std::min<int>(threads, static_cast<int>(rows / 16)));
  if (n_thr == 1) {
    run(0, rows);
    return;
  }
  std::vector<std::thread> pool;
  std::vector<std::exception_ptr> errors(n_thr);
  for (int t = 0; t < n_thr; ++t)
    pool.emplace_back([&, t] {
      try {
        run(rows * t / n_thr, rows * (t + 1) / n_thr);
      } catch (...) {
        errors[t] = std::current_exception();
      }
    });
  for (auto& th : pool) th.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}


// "tiny-random-llama3-bpe" → "Tiny Random Llama3 Bpe": the reference's model name from the
// folder or the config's _name_or_path.
std::string model_name(const json& cfg, const std::string& dir) {
  std::string base = fs::path(dir).lexically_normal().filename().string();
  if (base.empty() || base == ".") base = fs::absolute(dir).lexically_normal().parent_path().filename().string();
  if (cfg.contains("_name_or_path") && cfg["_name_or_path"].is_string() && !cfg["_name_or_path"].get<std::string>().empty())
    base = fs::path(cfg["_name_or_path"].get<std::string>()).filename().string();
  std::string out;
  bool start = true;
  for (char c : base) {
    if (c == '-' || c == '_' || c == ' ') {
      if (!out.empty() && out.back() != ' ') out += ' ';
      start = true;
      continue;
    }
    out += start ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
    start = false;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::string size_label(uint64_t params) {
  const char* suffix = "K";
  double scaled = params * 1e-3;
  if (params > 1e12) suffix = "T", scaled = params * 1e-12;
  else if (params > 1e9) suffix = "B", scaled = params * 1e-9;
  else if (params > 1e6) suffix = "M", scaled = params * 1e-6;
  const int digits = std::max(0, 2 - static_cast<int>(std::to_string(static_cast<int64_t>(std::round(scaled))).size()));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f%s", std::max(digits, 1), scaled, suffix);
  return buf;
}

void write_sampling(const json& gen, GgufWriter& w) {
  if (!gen.is_object()) return;
  if (gen.contains("top_k") && gen["top_k"].is_number_integer())
    w.set("general.sampling.top_k", GgufValue::make_i32(gen["top_k"].get<int32_t>()));
  if (gen.contains("top_p") && gen["top_p"].is_number())
    w.set("general.sampling.top_p", GgufValue::make_f32(gen["top_p"].get<float>()));
  if (gen.contains("temperature") && gen["temperature"].is_number())
    w.set("general.sampling.temp", GgufValue::make_f32(gen["temperature"].get<float>()));
}

void write_vocab(const HfVocab& v, GgufWriter& w) {
  auto strings = [](const std::vector<std::string>& s) {
    std::vector<GgufValue> a;
    a.reserve(s.size());
    for (const std::string& x : s) a.push_back(GgufValue::make_string(x));
    return GgufValue::make_array(GgufType::STRING, std::move(a));
  };
  w.set("tokenizer.ggml.model", GgufValue::make_string(v.model));
  w.set("tokenizer.ggml.pre", GgufValue::make_string(v.pre));
  w.set("tokenizer.ggml.tokens", strings(v.tokens));
  if (!v.scores.empty()) {
    std::vector<GgufValue> a;
    for (float s : v.scores) a.push_back(GgufValue::make_f32(s));
    w.set("tokenizer.ggml.scores", GgufValue::make_array(GgufType::FLOAT32, std::move(a)));
  }
  std::vector<GgufValue> types;
  for (int32_t t : v.types) types.push_back(GgufValue::make_i32(t));
  w.set("tokenizer.ggml.token_type", GgufValue::make_array(GgufType::INT32, std::move(types)));
  if (!v.merges.empty()) w.set("tokenizer.ggml.merges", strings(v.merges));
  for (const auto& [typ, id] : v.special_ids)
    w.set("tokenizer.ggml." + typ + "_token_id", GgufValue::make_u32(static_cast<uint32_t>(id)));
  for (const auto& [typ, on] : v.add_special) w.set("tokenizer.ggml.add_" + typ + "_token", GgufValue::make_bool(on));
  // A list of named templates: the named ones under their own keys plus the list of names
  // (llama.cpp reads tokenizer.chat_template.NAME), "default" as the plain key.
  std::vector<std::string> names;
  for (const auto& [name, text] : v.named_chat_templates) {
    w.set("tokenizer.chat_template." + name, GgufValue::make_string(text));
    names.push_back(name);
  }
  if (!names.empty()) w.set("tokenizer.chat_templates", strings(names));
  if (v.chat_template) w.set("tokenizer.chat_template", GgufValue::make_string(*v.chat_template));
}

// The reference names a BPE pre-tokenizer after the hash of one check text's ids; where the
// split regexes fit several names, that hash says which one it would write.
void name_pre_by_check_hash(HfVocab& v) {
  if (v.model != "gpt2") return;
  const fs::path tmp = fs::temp_directory_path() / ("slm-convert-vocab-" + std::to_string(getpid()) + ".gguf");
  std::string hash;
  try {
    GgufWriter w;
    w.set("general.architecture", GgufValue::make_string("llama"));
    write_vocab(v, w);
    w.write(tmp.string());
    hash = check_hash_of(tmp.string());
  } catch (const std::exception&) {
    // slm cannot tokenize with these regexes: the regex match stands.
  }
  std::error_code ec;
  fs::remove(tmp, ec);
  if (const char* name = pre_for_check_hash(hash)) {
    v.pre = name;
    return;
  }
  if (!v.pre_alternatives.empty())
    std::fprintf(stderr, "note: pre-tokenizer written as %s, the first of the names with its regexes (also %s); "
                 "pass --pre NAME to choose\n", v.pre.c_str(), v.pre_alternatives.c_str());
}

void check_destination(const std::string& out) {
  if (out.empty()) throw Error("convert: give -o OUT.gguf");
  std::error_code ec;
  if (fs::is_directory(out, ec)) throw Error(out + ": is a folder; give a file name");
  FILE* f = std::fopen((out + ".tmp").c_str(), "wb");
  if (!f) throw Error(out + ": cannot write here (" + std::strerror(errno) + ")");
  std::fclose(f);
  std::remove((out + ".tmp").c_str());
}

}  // namespace

ConvertResult convert_hf(const ConvertOptions& o) {
  const fs::path dir(o.dir);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(o.dir + ": not a folder (give a Hugging Face model folder)");
  check_destination(o.out);
  const std::string config_path = (dir / "config.json").string();
  json cfg = read_hf_json((dir / "config.json").string(), true);
  // Multimodal configs keep the language model's keys under text_config.
  if (cfg.is_object() && cfg.contains("text_config") && cfg["text_config"].is_object())
    for (auto& [k, v] : cfg["text_config"].items())
      if (!cfg.contains(k)) cfg[k] = v;
  const HfFamily& fam = find_hf_family(cfg, config_path);
  const HfDims dims = fam.dims(cfg);

  QuantTarget target;
  const bool auto_type = o.outtype.empty() || o.outtype == "auto" || o.outtype == "AUTO";
  std::unique_ptr<SafetensorsSet> st;
  if (!o.vocab_only) st = SafetensorsSet::open_dir(o.dir);
  if (auto_type) {
    bool bf16 = false;
    if (st)
      for (const StTensor& t : st->tensors()) bf16 |= t.dtype == StDtype::BF16 && t.shape.size() >= 2;
    target = parse_quant_target(bf16 ? "bf16" : "f16");
  } else {
    target = parse_quant_target(o.outtype);
  }
  const bool reference_rules = !target.k_mixture && (target.base == GgmlType::F32 || target.base == GgmlType::F16 ||
                                                     target.base == GgmlType::BF16 || target.base == GgmlType::Q8_0);

  HfVocab vocab = read_hf_vocab(o.dir, cfg, dims.n_vocab, o.pre);
  if (o.pre.empty()) name_pre_by_check_hash(vocab);

  // ---- plan every output tensor ----
  std::vector<GeneratedTensor> generated = fam.generated(cfg, dims);
  std::vector<Planned> plan;
  for (const GeneratedTensor& g : generated) {
    Planned p;
    p.name = g.name;
    p.gen = &g;
    p.ne = {static_cast<int64_t>(g.values.size())};
    plan.push_back(p);
  }
  if (st) {
    std::map<std::string, size_t> stacks;  // GGUF name → plan index of a Stack being filled
    for (const StTensor& t : st->tensors()) {
      if (ends_with(t.name, ".rotary_emb.inv_freq") || ends_with(t.name, ".attention.masked_bias") ||
          ends_with(t.name, ".attention.bias"))
        continue;  // recomputed at run time
      const NameParts np = split_hf_name(t.name, fam.layer_prefix);
      if (np.layer >= dims.n_layer)
        throw Error(t.file + ": tensor '" + t.name + "' belongs to layer " + std::to_string(np.layer) +
                    ", but config.json has " + std::to_string(dims.n_layer) + " layers");
      bool matched = false;
      for (const TensorRule& r : fam.rules) {
        if (r.layer != (np.layer >= 0) || np.key != r.hf) continue;
        matched = true;
        if (!*r.gguf) break;  // dropped on purpose
        const std::string gname = np.layer >= 0 ? "blk." + std::to_string(np.layer) + "." + r.gguf : r.gguf;
        const std::string where = t.file + ": tensor '" + t.name + "'";
        if (r.op == Op::Stack) {
          if (t.shape.size() != 2) throw Error(where + ": an expert matrix must be 2-D, it is " + shape_str(t.shape));
          if (np.expert < 0 || np.expert >= dims.n_expert)
            throw Error(where + ": expert " + std::to_string(np.expert) + " outside the config's " +
                        std::to_string(dims.n_expert) + " experts");
          auto [it, fresh] = stacks.emplace(gname, plan.size());
          if (fresh) {
            Planned p;
            p.name = gname;
            p.op = Op::Stack;
            p.layer = np.layer;
            p.src.assign(static_cast<size_t>(dims.n_expert), nullptr);
            p.ne = {t.shape[1], t.shape[0], dims.n_expert};
            plan.push_back(p);
          }
          Planned& p = plan[it->second];
          if (p.src[np.expert]) throw Error(where + ": expert given twice");
          if (t.shape[1] != p.ne[0] || t.shape[0] != p.ne[1])
            throw Error(where + ": shape " + shape_str(t.shape) + " differs from the layer's other experts");
          p.src[np.expert] = &t;
          break;
        }
        Planned p;
        p.name = gname;
        p.op = r.op;
        p.layer = np.layer;
        p.src = {&t};
        p.ne = reversed(t.shape);
        if (p.ne.empty()) throw Error(where + ": is a scalar, not a weight");
        if (r.op == Op::PermuteQ || r.op == Op::PermuteK) {
          p.n_head = r.op == Op::PermuteQ ? dims.n_head[np.layer] : dims.n_head_kv[np.layer];
          if (t.shape[0] % (2 * p.n_head) != 0)
            throw Error(where + ": " + std::to_string(t.shape[0]) + " rows do not split into " +
                        std::to_string(p.n_head) + " heads of rotary pairs");
        }
        if (r.op == Op::SplitFirst || r.op == Op::SplitSecond) {
          const bool shared = std::string(r.gguf).find("shexp") != std::string::npos;
          p.split_rows = shared ? cfg_int(cfg, "shared_intermediate_size") : dims.n_ff[np.layer];
          if (t.shape.size() < 2 || t.shape[t.shape.size() - 2] != 2 * p.split_rows)
            throw Error(where + ": shape " + shape_str(t.shape) + " is not gate and up rows of " +
                        std::to_string(p.split_rows) + " each");
          p.ne[1] = p.split_rows;
        }
        if (fam.trim_embd_to_vocab && p.name == "token_embd.weight" && t.shape[0] > static_cast<int64_t>(vocab.tokens.size())) {
          p.keep_rows = static_cast<int64_t>(vocab.tokens.size());
          p.ne[1] = p.keep_rows;
        }
        plan.push_back(p);
      }
      if (!matched)
        throw Error(t.file + ": tensor '" + t.name + "' has no GGUF counterpart in the " + fam.arch +
                    " family (an unsupported variant or a foreign checkpoint)");
    }
    for (const Planned& p : plan) {
      if (p.op == Op::Stack)
        for (size_t e = 0; e < p.src.size(); ++e)
          if (!p.src[e])
            throw Error(o.dir + ": expert " + std::to_string(e) + " of " + p.name + " is missing from the checkpoint");
      if (p.gen) continue;
      const bool fused_gate_up = p.src[0]->name.find("gate_up_proj") != std::string::npos;
      if (auto want = expected_shape(p, dims, fused_gate_up); want && *want != p.ne)
        throw Error(p.src[0]->file + ": tensor '" + p.src[0]->name + "' has shape " + shape_str(reversed(p.src[0]->shape)) +
                    " (GGUF order), but config.json implies " + shape_str(*want) + " for " + p.name);
    }
    // Every layer needs its attention and FFN; a checkpoint missing one is truncated or foreign.
    auto has = [&](const std::string& n) {
      return std::any_of(plan.begin(), plan.end(), [&](const Planned& p) { return p.name == n; });
    };
    for (const char* n : {"token_embd.weight", "output_norm.weight"})
      if (!has(n)) throw Error(o.dir + ": the checkpoint has no tensor for " + std::string(n));
    for (int64_t l = 0; l < dims.n_layer; ++l) {
      const std::string b = "blk." + std::to_string(l) + ".";
      const bool attn = has(b + "attn_qkv.weight") || (has(b + "attn_q.weight") && has(b + "attn_k.weight") && has(b + "attn_v.weight"));
      const bool ffn = has(b + "ffn_down.weight") || has(b + "ffn_down_exps.weight");
      for (auto [ok, what] : {std::pair{attn, "attention projections"}, std::pair{ffn, "FFN"},
                              std::pair{has(b + "attn_norm.weight"), "attention norm"},
                              std::pair{has(b + "attn_output.weight"), "attention output"}})
        if (!ok) throw Error(o.dir + ": layer " + std::to_string(l) + " has no " + what + " in the checkpoint");
    }
  }

  // ---- types ----
  if (reference_rules) {
    for (Planned& p : plan) p.type = reference_type(p, target.base);
  } else {
    std::vector<TensorDesc> descs;
    for (const Planned& p : plan) descs.push_back({p.name, static_cast<uint32_t>(p.ne.size()), p.ne[0], GgmlType::F32});
    ModelFacts facts;
    facts.n_expert = static_cast<int>(dims.n_expert);
    facts.n_gqa = static_cast<int>(dims.n_head[0] / dims.n_head_kv[0]);
    const std::vector<TensorPlan> tp = plan_quantization(target, descs, facts);
    for (size_t i = 0; i < plan.size(); ++i) plan[i].type = tp[i].convert ? tp[i].type : GgmlType::F32;
  }

  // ---- metadata ----
  GgufWriter w;
  w.set("general.architecture", GgufValue::make_string(fam.arch));
  w.set("general.type", GgufValue::make_string("model"));
  write_sampling(read_hf_json((dir / "generation_config.json").string(), false), w);
  w.set("general.name", GgufValue::make_string(model_name(cfg, o.dir)));
  uint64_t params = 0;
  for (const Planned& p : plan) {
    uint64_t n = 1;
    for (int64_t x : p.ne) n *= static_cast<uint64_t>(x);
    params += n;
  }
  if (params) w.set("general.size_label", GgufValue::make_string(size_label(params)));
  fam.hparams(cfg, dims, target.file_type, w);
  w.set("general.quantization_version", GgufValue::make_u32(2));
  write_vocab(vocab, w);
  fam.vocab_quirks(cfg, read_hf_json((dir / "tokenizer_config.json").string(), false), w);

  // ---- tensors, made as the writer reaches them ----
  ConvertResult res;
  res.arch = fam.arch;
  res.outtype = target.name;
  res.n_tensors = plan.size();
  uint64_t total = 0, done = 0;
  for (const Planned& p : plan) {
    uint64_t n = 1;
    for (int64_t x : p.ne) n *= static_cast<uint64_t>(x);
    total += n;
    for (const StTensor* s : p.src) res.bytes_in += s->nbytes;
  }
  const int threads = o.threads > 0 ? o.threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  for (const Planned& p : plan) {
    int64_t rows = 1;
    for (size_t i = 1; i < p.ne.size(); ++i) rows *= p.ne[i];
    res.bytes_out += row_bytes(p.type, p.ne[0]) * static_cast<uint64_t>(rows);
    const Planned* pp = &p;
    const SafetensorsSet* set = st.get();
    w.add_tensor(p.name, p.type, p.ne, [pp, set, &o, &done, total, threads](uint8_t* dst) {
      if (o.progress) o.progress(done, total, pp->name + " -> " + type_name(pp->type));
      make_tensor(*pp, dst, threads);
      for (const StTensor* s : pp->src) set->release(*s);
      done += static_cast<uint64_t>(pp->n_elements());
    });
  }
  w.write(o.out);
  if (o.progress) o.progress(total, total, "wrote " + o.out);
  return res;
}

}  // namespace slm::convert

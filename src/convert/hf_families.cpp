#include "convert/hf_families.h"
#include "convert/json_depth.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "slm/error.h"

namespace slm::convert {
namespace {

namespace fs = std::filesystem;

using V = GgufValue;

// ---- config.json access -----------------------------------------------------------------

const json& need(const json& cfg, const char* key) {
  if (!cfg.is_object() || !cfg.contains(key) || cfg[key].is_null())
    throw Error(std::string("config.json: missing key '") + key + "'");
  return cfg[key];
}

int64_t positive(const json& cfg, const char* key, int64_t max) {
  const int64_t v = cfg_int(cfg, key);
  if (v <= 0 || v > max)
    throw Error(std::string("config.json: '") + key + "' is " + std::to_string(v) + ", outside 1.." + std::to_string(max));
  return v;
}

std::vector<int64_t> int_list(const json& cfg, const char* key, int64_t n, int64_t max) {
  const json& a = need(cfg, key);
  if (!a.is_array() || static_cast<int64_t>(a.size()) != n)
    throw Error(std::string("config.json: '") + key + "' must be a list of " + std::to_string(n) + " integers");
  std::vector<int64_t> out;
  for (const json& x : a) {
    if (!x.is_number_integer() || x.get<int64_t>() <= 0 || x.get<int64_t>() > max)
      throw Error(std::string("config.json: '") + key + "' holds a value that is not in 1.." + std::to_string(max));
    out.push_back(x.get<int64_t>());
  }
  return out;
}

// rope_scaling (or rope_parameters) with its type under one name and rope_theta folded in,
// as the reference reads them.
json rope_params(const json& cfg) {
  json r = json::object();
  for (const char* k : {"rope_parameters", "rope_scaling"})
    if (cfg.contains(k) && cfg[k].is_object()) {
      r = cfg[k];
      break;
    }
  if (r.contains("full_attention") && r["full_attention"].is_object()) r = r["full_attention"];
  if (!r.contains("rope_type") && r.contains("type")) r["rope_type"] = r["type"];
  if (!r.contains("rope_theta") && cfg_has(cfg, "rope_theta")) r["rope_theta"] = cfg["rope_theta"];
  return r;
}

std::string rope_type(const json& cfg) {
  json r = rope_params(cfg);
  if (!r.contains("rope_type") || !r["rope_type"].is_string()) return "";
  std::string t = r["rope_type"].get<std::string>();
  for (char& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return t;
}

// First of several config keys that is present (the reference's find_hparam).
const json* find_key(const json& cfg, std::initializer_list<const char*> keys) {
  for (const char* k : keys)
    if (cfg_has(cfg, k)) return &cfg[k];
  return nullptr;
}

V u32(int64_t v) { return V::make_u32(static_cast<uint32_t>(v)); }
V f32(double v) { return V::make_f32(static_cast<float>(v)); }
V u32_or_list(const std::vector<int64_t>& v) {
  for (int64_t x : v)
    if (x != v[0]) {
      std::vector<GgufValue> a;
      for (int64_t y : v) a.push_back(V::make_i32(static_cast<int32_t>(y)));
      return V::make_array(GgufType::INT32, std::move(a));
    }
  return u32(v[0]);
}

// ---- dimensions -------------------------------------------------------------------------

HfDims standard_dims(const json& cfg) {
  HfDims d;
  d.n_embd = positive(cfg, "hidden_size", 1 << 20);
  d.n_layer = positive(cfg, "num_hidden_layers", 1024);
  d.n_vocab = positive(cfg, "vocab_size", 1 << 24);
  const int64_t n_head = positive(cfg, "num_attention_heads", 4096);
  const int64_t n_kv = cfg_has(cfg, "num_key_value_heads") ? positive(cfg, "num_key_value_heads", 4096) : n_head;
  if (n_head % n_kv != 0)
    throw Error("config.json: num_key_value_heads (" + std::to_string(n_kv) + ") does not divide num_attention_heads (" +
                std::to_string(n_head) + ")");
  d.head_dim = cfg_has(cfg, "head_dim") ? positive(cfg, "head_dim", 1 << 16) : d.n_embd / n_head;
  if (d.head_dim <= 0) throw Error("config.json: hidden_size is smaller than num_attention_heads");
  const int64_t n_ff = positive(cfg, "intermediate_size", 1 << 22);
  d.n_head.assign(d.n_layer, n_head);
  d.n_head_kv.assign(d.n_layer, n_kv);
  d.n_ff.assign(d.n_layer, n_ff);
  if (const json* e = find_key(cfg, {"num_local_experts", "num_experts"})) {
    if (!e->is_number_integer() || e->get<int64_t>() < 0 || e->get<int64_t>() > 4096)
      throw Error("config.json: num_local_experts is not an expert count");
    d.n_expert = e->get<int64_t>();
  }
  return d;
}

// Granite ignores head_dim (the reference drops it): heads are hidden_size / num_attention_heads.
HfDims granite_dims(const json& cfg) {
  json c = cfg;
  c.erase("head_dim");
  return standard_dims(c);
}

// OpenELM's FFN width rounding (make_divisible of its configuration file).
int64_t make_divisible(double v, int64_t divisor) {
  int64_t n = std::max<int64_t>(divisor, static_cast<int64_t>(v + divisor / 2.0) / divisor * divisor);
  if (n < 0.9 * v) n += divisor;
  return n;
}

HfDims openelm_dims(const json& cfg) {
  HfDims d;
  d.n_embd = positive(cfg, "model_dim", 1 << 20);
  d.n_layer = positive(cfg, "num_transformer_layers", 1024);
  d.n_vocab = positive(cfg, "vocab_size", 1 << 24);
  d.head_dim = positive(cfg, "head_dim", 1 << 16);
  d.n_head = int_list(cfg, "num_query_heads", d.n_layer, 4096);
  d.n_head_kv = int_list(cfg, "num_kv_heads", d.n_layer, 4096);
  const int64_t divisor = positive(cfg, "ffn_dim_divisor", 1 << 20);
  const json& mult = need(cfg, "ffn_multipliers");
  if (!mult.is_array() || static_cast<int64_t>(mult.size()) != d.n_layer)
    throw Error("config.json: 'ffn_multipliers' must be a list of " + std::to_string(d.n_layer) + " numbers");
  for (const json& m : mult) {
    if (!m.is_number() || !(m.get<double>() > 0) || m.get<double>() > 1024)
      throw Error("config.json: 'ffn_multipliers' holds a value that is not a positive number");
    d.n_ff.push_back(make_divisible(m.get<double>() * static_cast<double>(d.n_embd), divisor));
  }
  for (int64_t l = 0; l < d.n_layer; ++l)
    if (d.n_head[l] % d.n_head_kv[l] != 0)
      throw Error("config.json: num_kv_heads does not divide num_query_heads at layer " + std::to_string(l));
  return d;
}

// ---- hyperparameters --------------------------------------------------------------------

// The keys every text model gets from its config (the reference's base set_gguf_parameters).
void base_hparams(const json& cfg, const HfDims& d, uint32_t file_type, GgufWriter& w, const std::string& a) {
  const std::string p = a + ".";
  w.set(p + "block_count", u32(d.n_layer));
  if (const json* n = find_key(cfg, {"max_position_embeddings", "n_ctx", "n_positions", "max_length",
                                     "max_sequence_length", "model_max_length"}))
    if (n->is_number_integer()) w.set(p + "context_length", u32(n->get<int64_t>()));
  w.set(p + "embedding_length", u32(d.n_embd));
  w.set(p + "feed_forward_length", u32(d.n_ff[0]));
  w.set(p + "attention.head_count", u32(d.n_head[0]));
  if (cfg_has(cfg, "num_key_value_heads")) w.set(p + "attention.head_count_kv", u32(d.n_head_kv[0]));
  const json r = rope_params(cfg);
  const std::string type = rope_type(cfg);
  auto factor = [&]() -> const json* { return r.contains("factor") && r["factor"].is_number() ? &r["factor"] : nullptr; };
  if (type == "linear" && factor()) {
    w.set(p + "rope.scaling.type", V::make_string("linear"));
    w.set(p + "rope.scaling.factor", f32(factor()->get<double>()));
  } else if (type == "yarn" && factor()) {
    w.set(p + "rope.scaling.type", V::make_string("yarn"));
    w.set(p + "rope.scaling.factor", f32(factor()->get<double>()));
    if (r.contains("original_max_position_embeddings") && r["original_max_position_embeddings"].is_number_integer())
      w.set(p + "rope.scaling.original_context_length", u32(r["original_max_position_embeddings"].get<int64_t>()));
  } else if (type == "su" || type == "longrope") {
    w.set(p + "rope.scaling.type", V::make_string("longrope"));
  } else if (!type.empty() && type != "llama3" && type != "default" && type != "dynamic") {
    throw Error("config.json: rope_scaling type '" + type + "' is not supported");
  }
  if (r.contains("rope_theta") && r["rope_theta"].is_number()) w.set(p + "rope.freq_base", f32(r["rope_theta"].get<double>()));
  if (cfg_has(cfg, "rope_local_base_freq")) w.set(p + "rope.freq_base_swa", f32(cfg_num(cfg, "rope_local_base_freq")));
  if (const json* e = find_key(cfg, {"rms_norm_eps", "norm_eps"}))
    if (e->is_number()) w.set(p + "attention.layer_norm_rms_epsilon", f32(e->get<double>()));
  if (d.n_expert > 0) w.set(p + "expert_count", u32(d.n_expert));
  if (const json* k = find_key(cfg, {"num_experts_per_tok", "num_experts_per_token", "top_k_experts"}))
    if (k->is_number_integer()) w.set(p + "expert_used_count", u32(k->get<int64_t>()));
  if (cfg_has(cfg, "head_dim")) {
    w.set(p + "attention.key_length", u32(d.head_dim));
    w.set(p + "attention.value_length", u32(d.head_dim));
  }
  w.set("general.file_type", u32(file_type));
}

void llama_hparams(const json& cfg, const HfDims& d, uint32_t ft, GgufWriter& w) {
  base_hparams(cfg, d, ft, w, "llama");
  w.set("llama.vocab_size", u32(d.n_vocab));
  w.set("llama.rope.dimension_count", u32(d.head_dim));
}

void granite_common(const json& cfg, const HfDims& d, uint32_t ft, GgufWriter& w, const std::string& a) {
  json c = cfg;
  c.erase("head_dim");
  base_hparams(c, d, ft, w, a);
  w.set(a + ".vocab_size", u32(d.n_vocab));
  w.set(a + ".rope.dimension_count", u32(d.head_dim));
  const std::pair<const char*, const char*> scales[] = {{"attention_multiplier", "attention.scale"},
                                                        {"embedding_multiplier", "embedding_scale"},
                                                        {"residual_multiplier", "residual_scale"},
                                                        {"logits_scaling", "logit_scale"}};
  for (auto [from, to] : scales)
    if (cfg_has(cfg, from) && cfg_num(cfg, from) != 0) w.set(a + "." + to, f32(cfg_num(cfg, from)));
}

void granite_hparams(const json& cfg, const HfDims& d, uint32_t ft, GgufWriter& w) {
  granite_common(cfg, d, ft, w, "granite");
}

void granitemoe_hparams(const json& cfg, const HfDims& d, uint32_t ft, GgufWriter& w) {
  granite_common(cfg, d, ft, w, "granitemoe");
  if (cfg_has(cfg, "shared_intermediate_size") && cfg_int(cfg, "shared_intermediate_size") > 0)
    w.set("granitemoe.expert_shared_feed_forward_length", u32(cfg_int(cfg, "shared_intermediate_size")));
}

void gemma_common(const json& cfg, const HfDims& d, uint32_t ft, GgufWriter& w, const std::string& a) {
  w.set(a + ".context_length", u32(cfg_int(cfg, "max_position_embeddings")));
  w.set(a + ".embedding_length", u32(d.n_embd));
  w.set(a + ".block_count", u32(d.n_layer));
  w.set(a + ".feed_forward_length", u32(d.n_ff[0]));
  w.set(a + ".attention.head_count", u32(d.n_head[0]));
  w.set(a + ".attention.head_count_kv", u32(d.n_head_kv[0]));
  w.set(a + ".attention.layer_norm_rms_epsilon", f32(cfg_num(cfg, "rms_norm_eps")));
  w.set(a + ".attention.key_length", u32(cfg_int(cfg, "head_dim")));
  w.set(a + ".attention.value_length", u32(cfg_int(cfg, "head_dim")));
  w.set("general.file_type", u32(ft));
}

void gemma_hparams(const json& cfg, const HfDims& d, uint32_t ft, GgufWriter& w) {
  gemma_common(cfg, d, ft, w, "gemma");
}

void gemma2_hparams(const json& cfg, const HfDims& d, uint32_t ft, GgufWriter& w) {
  gemma_common(cfg, d, ft, w, "gemma2");
  w.set("gemma2.attn_logit_softcapping", f32(cfg_num(cfg, "attn_logit_softcapping")));
  w.set("gemma2.final_logit_softcapping", f32(cfg_num(cfg, "final_logit_softcapping")));
  w.set("gemma2.attention.sliding_window", u32(cfg_int(cfg, "sliding_window")));
}

void gemma3_hparams(const json& cfg, const HfDims& d, uint32_t ft, GgufWriter& w) {
  base_hparams(cfg, d, ft, w, "gemma3");
  // Gemma 3's own defaults where the config leaves a key out.
  w.set("gemma3.context_length", u32(cfg_int_or(cfg, "max_position_embeddings", 131072)));
  w.set("gemma3.attention.head_count", u32(d.n_head[0]));
  w.set("gemma3.attention.layer_norm_rms_epsilon", f32(cfg_has(cfg, "rms_norm_eps") ? cfg_num(cfg, "rms_norm_eps") : 1e-6));
  w.set("gemma3.attention.key_length", u32(d.head_dim));
  w.set("gemma3.attention.value_length", u32(d.head_dim));
  const json r = rope_params(cfg);
  w.set("gemma3.rope.freq_base", f32(r.contains("rope_theta") && r["rope_theta"].is_number() ? r["rope_theta"].get<double>() : 1e6));
  if (cfg_has(cfg, "attn_logit_softcapping"))
    throw Error("config.json: Gemma 3 has no attn_logit_softcapping, but this config sets it");
  if (cfg_has(cfg, "final_logit_softcapping") && cfg_num(cfg, "final_logit_softcapping") != 0)
    w.set("gemma3.final_logit_softcapping", f32(cfg_num(cfg, "final_logit_softcapping")));
  if (cfg_int_or(cfg, "sliding_window_pattern", 6) != 1)
    w.set("gemma3.attention.sliding_window", u32(cfg_int(cfg, "sliding_window")));
  w.set("gemma3.attention.head_count_kv", u32(d.n_head_kv[0]));
}

int64_t phi3_rope_dims(const json& cfg, const HfDims& d) {
  const json r = rope_params(cfg);
  const double pct = r.contains("partial_rotary_factor") && r["partial_rotary_factor"].is_number()
                         ? r["partial_rotary_factor"].get<double>()
                         : (cfg_has(cfg, "partial_rotary_factor") ? cfg_num(cfg, "partial_rotary_factor") : 1.0);
  return static_cast<int64_t>(pct * static_cast<double>(d.n_embd)) / d.n_head[0];
}

int64_t phi3_orig_ctx(const json& cfg) {
  const json r = rope_params(cfg);
  if (r.contains("original_max_position_embeddings") && r["original_max_position_embeddings"].is_number_integer())
    return r["original_max_position_embeddings"].get<int64_t>();
  return cfg_int_or(cfg, "original_max_position_embeddings", cfg_int(cfg, "max_position_embeddings"));
}

void phi3_hparams(const json& cfg, const HfDims& d, uint32_t ft, GgufWriter& w) {
  const json r = rope_params(cfg);
  const int64_t n_ctx = cfg_int(cfg, "max_position_embeddings"), orig = phi3_orig_ctx(cfg);
  if (r.contains("long_factor")) {
    const double s = static_cast<double>(n_ctx) / static_cast<double>(orig);
    const std::string type = rope_type(cfg);
    double attn_factor = 1.0;
    if (type == "su" || type == "longrope")
      attn_factor = s > 1.0 ? std::sqrt(1 + std::log(s) / std::log(static_cast<double>(orig))) : 1.0;
    else if (type == "yarn")
      attn_factor = s > 1.0 ? 0.1 * std::log(s) + 1.0 : 1.0;
    else
      throw Error("config.json: rope_scaling type '" + type + "' with long_factor is not supported");
    w.set("phi3.rope.scaling.attn_factor", f32(attn_factor));
  }
  w.set("phi3.context_length", u32(n_ctx));
  w.set("phi3.rope.scaling.original_context_length", u32(orig));
  w.set("phi3.embedding_length", u32(d.n_embd));
  w.set("phi3.feed_forward_length", u32(d.n_ff[0]));
  w.set("phi3.block_count", u32(d.n_layer));
  w.set("phi3.attention.head_count", u32(d.n_head[0]));
  w.set("phi3.attention.head_count_kv", u32(d.n_head_kv[0]));
  w.set("phi3.attention.layer_norm_rms_epsilon", f32(cfg_num(cfg, "rms_norm_eps")));
  w.set("phi3.rope.dimension_count", u32(phi3_rope_dims(cfg, d)));
  w.set("phi3.rope.freq_base", f32(r.contains("rope_theta") ? r["rope_theta"].get<double>() : 10000.0));
  w.set("general.file_type", u32(ft));
  w.set("phi3.attention.sliding_window", u32(cfg_int_or(cfg, "sliding_window", 0)));
}

void openelm_hparams(const json& cfg, const HfDims& d, uint32_t ft, GgufWriter& w) {
  w.set("openelm.block_count", u32(d.n_layer));
  w.set("openelm.context_length", u32(cfg_int(cfg, "max_context_length")));
  w.set("openelm.embedding_length", u32(d.n_embd));
  w.set("openelm.feed_forward_length", u32_or_list(d.n_ff));
  w.set("openelm.attention.head_count", u32_or_list(d.n_head));
  w.set("openelm.attention.head_count_kv", u32_or_list(d.n_head_kv));
  w.set("openelm.rope.freq_base", f32(cfg_num(cfg, "rope_freq_constant")));
  w.set("openelm.attention.layer_norm_rms_epsilon", f32(1e-6));  // fixed by OpenELM's modelling code
  w.set("openelm.rope.dimension_count", u32(d.head_dim));
  w.set("openelm.attention.key_length", u32(d.head_dim));
  w.set("openelm.attention.value_length", u32(d.head_dim));
  w.set("general.file_type", u32(ft));
}

// ---- generated tensors --------------------------------------------------------------------

// Llama 3.1 rope scaling as per-frequency divisors, computed in float32 as the reference does.
std::vector<GeneratedTensor> llama_generated(const json& cfg, const HfDims& d) {
  if (rope_type(cfg) != "llama3") return {};
  const json r = rope_params(cfg);
  auto num = [&](const char* k, double def) { return r.contains(k) && r[k].is_number() ? r[k].get<double>() : def; };
  const float base = static_cast<float>(num("rope_theta", 10000.0));
  const float factor = static_cast<float>(num("factor", 8.0));
  const float low = static_cast<float>(num("low_freq_factor", 1.0));
  const float high = static_cast<float>(num("high_freq_factor", 4.0));
  const float old_ctx = static_cast<float>(num("original_max_position_embeddings", 8192));
  const double low_wavelen = static_cast<double>(old_ctx) / low, high_wavelen = static_cast<double>(old_ctx) / high;
  const int64_t dim = d.head_dim;
  GeneratedTensor t{"rope_freqs.weight", {}};
  for (int64_t i = 0; i < dim; i += 2) {
    const float freq = 1.0f / std::pow(base, static_cast<float>(i) / static_cast<float>(dim));
    const float wavelen = (1.0f / freq) * static_cast<float>(2 * M_PI);
    if (wavelen < high_wavelen) {
      t.values.push_back(1.0f);
    } else if (wavelen > low_wavelen) {
      t.values.push_back(factor);
    } else {
      const float smooth = ((1.0f / wavelen) * old_ctx - low) / (high - low);
      t.values.push_back(1.0f / ((1.0f - smooth) / factor + smooth));
    }
  }
  return {t};
}

std::vector<GeneratedTensor> phi3_generated(const json& cfg, const HfDims& d) {
  const json r = rope_params(cfg);
  if (!r.contains("long_factor") || r["long_factor"].is_null()) return {};
  const size_t half = static_cast<size_t>(phi3_rope_dims(cfg, d) / 2);
  std::vector<GeneratedTensor> out;
  for (auto [key, name] : {std::pair{"long_factor", "rope_factors_long.weight"}, std::pair{"short_factor", "rope_factors_short.weight"}}) {
    if (!r.contains(key) || !r[key].is_array() || r[key].size() != half)
      throw Error(std::string("config.json: rope_scaling.") + key + " must be a list of " + std::to_string(half) +
                  " numbers (half the rotary dimensions)");
    GeneratedTensor t{name, {}};
    for (const json& x : r[key]) {
      if (!x.is_number()) throw Error(std::string("config.json: rope_scaling.") + key + " holds a non-number");
      t.values.push_back(x.get<float>());
    }
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<GeneratedTensor> none_generated(const json&, const HfDims&) { return {}; }

// ---- vocabulary quirks --------------------------------------------------------------------

void llama_vocab_quirks(const json& cfg, const json& tc, GgufWriter& w) {
  if (tc.is_object() && tc.contains("add_prefix_space") && tc["add_prefix_space"].is_boolean())
    w.set("tokenizer.ggml.add_space_prefix", V::make_bool(tc["add_prefix_space"].get<bool>()));
  if (cfg_int_or(cfg, "vocab_size", 32000) == 49152)  // Granite's small models: no BOS
    w.set("tokenizer.ggml.add_bos_token", V::make_bool(false));
}

void gemma_vocab_quirks(const json&, const json&, GgufWriter& w) {
  w.set("tokenizer.ggml.eot_token_id", u32(107));  // Gemma's <end_of_turn>, fixed by the family
  w.set("tokenizer.ggml.add_space_prefix", V::make_bool(false));
}

void gemma2_vocab_quirks(const json&, const json&, GgufWriter& w) {
  w.set("tokenizer.ggml.add_space_prefix", V::make_bool(false));
}

void no_vocab_quirks(const json&, const json&, GgufWriter&) {}

// ---- tensor names -------------------------------------------------------------------------

const std::vector<TensorRule> kLlamaRules = {
    {"model.embed_tokens.weight", "token_embd.weight", Op::Copy, false},
    {"model.norm.weight", "output_norm.weight", Op::Copy, false},
    {"lm_head.weight", "output.weight", Op::Copy, false},
    {"input_layernorm.weight", "attn_norm.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight", Op::PermuteQ},
    {"self_attn.k_proj.weight", "attn_k.weight", Op::PermuteK},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
    {"block_sparse_moe.gate.weight", "ffn_gate_inp.weight"},
    {"block_sparse_moe.experts.*.w1.weight", "ffn_gate_exps.weight", Op::Stack},
    {"block_sparse_moe.experts.*.w2.weight", "ffn_down_exps.weight", Op::Stack},
    {"block_sparse_moe.experts.*.w3.weight", "ffn_up_exps.weight", Op::Stack},
};

std::vector<TensorRule> granite_rules() {
  std::vector<TensorRule> r = kLlamaRules;
  r.insert(r.end(), {
                        {"block_sparse_moe.router.layer.weight", "ffn_gate_inp.weight"},
                        {"block_sparse_moe.input_linear.weight", "ffn_gate_exps.weight", Op::SplitFirst},
                        {"block_sparse_moe.input_linear.weight", "ffn_up_exps.weight", Op::SplitSecond},
                        {"block_sparse_moe.output_linear.weight", "ffn_down_exps.weight"},
                        {"shared_mlp.input_linear.weight", "ffn_gate_shexp.weight", Op::SplitFirst},
                        {"shared_mlp.input_linear.weight", "ffn_up_shexp.weight", Op::SplitSecond},
                        {"shared_mlp.output_linear.weight", "ffn_down_shexp.weight"},
                    });
  return r;
}

const std::vector<TensorRule> kGemmaRules = {
    {"model.embed_tokens.weight", "token_embd.weight", Op::Copy, false},
    {"model.norm.weight", "output_norm.weight", Op::AddOne, false},
    {"lm_head.weight", "", Op::Copy, false},  // tied: llama.cpp uses token_embd
    {"input_layernorm.weight", "attn_norm.weight", Op::AddOne},
    {"post_attention_layernorm.weight", "ffn_norm.weight", Op::AddOne},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
};

const std::vector<TensorRule> kGemma2Rules = {
    {"model.embed_tokens.weight", "token_embd.weight", Op::Copy, false},
    {"model.norm.weight", "output_norm.weight", Op::AddOne, false},
    {"lm_head.weight", "", Op::Copy, false},
    {"input_layernorm.weight", "attn_norm.weight", Op::AddOne},
    {"post_attention_layernorm.weight", "post_attention_norm.weight", Op::AddOne},
    {"pre_feedforward_layernorm.weight", "ffn_norm.weight", Op::AddOne},
    {"post_feedforward_layernorm.weight", "post_ffw_norm.weight", Op::AddOne},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.q_norm.weight", "attn_q_norm.weight", Op::AddOne},
    {"self_attn.k_norm.weight", "attn_k_norm.weight", Op::AddOne},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
};

const std::vector<TensorRule> kPhi3Rules = {
    {"model.embed_tokens.weight", "token_embd.weight", Op::Copy, false},
    {"model.norm.weight", "output_norm.weight", Op::Copy, false},
    {"lm_head.weight", "output.weight", Op::Copy, false},
    {"input_layernorm.weight", "attn_norm.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"self_attn.qkv_proj.weight", "attn_qkv.weight"},  // stays fused: rows Q, K, V
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"mlp.gate_up_proj.weight", "ffn_up.weight"},  // stays fused: gate rows then up rows
    {"mlp.down_proj.weight", "ffn_down.weight"},
};

const std::vector<TensorRule> kOpenElmRules = {
    {"transformer.token_embeddings.weight", "token_embd.weight", Op::Copy, false},
    {"transformer.norm.weight", "output_norm.weight", Op::Copy, false},
    {"attn_norm.weight", "attn_norm.weight"},
    {"ffn_norm.weight", "ffn_norm.weight"},
    {"attn.qkv_proj.weight", "attn_qkv.weight"},
    {"attn.q_norm.weight", "attn_q_norm.weight"},
    {"attn.k_norm.weight", "attn_k_norm.weight"},
    {"attn.out_proj.weight", "attn_output.weight"},
    {"ffn.proj_1.weight", "ffn_gate.weight", Op::SplitFirst},
    {"ffn.proj_1.weight", "ffn_up.weight", Op::SplitSecond},
    {"ffn.proj_2.weight", "ffn_down.weight"},
};

const std::vector<HfFamily>& families() {
  static const std::vector<HfFamily> kFamilies = {
      {{"LlamaForCausalLM", "LLaMAForCausalLM", "MistralForCausalLM", "MixtralForCausalLM"}, "llama", "model.layers.",
       kLlamaRules, standard_dims, llama_hparams, llama_generated, llama_vocab_quirks},
      {{"GraniteForCausalLM"}, "granite", "model.layers.", granite_rules(), granite_dims, granite_hparams,
       llama_generated, llama_vocab_quirks},
      {{"GraniteMoeForCausalLM", "GraniteMoeSharedForCausalLM"}, "granitemoe", "model.layers.", granite_rules(),
       granite_dims, granitemoe_hparams, llama_generated, llama_vocab_quirks},
      {{"Phi3ForCausalLM"}, "phi3", "model.layers.", kPhi3Rules, standard_dims, phi3_hparams, phi3_generated,
       no_vocab_quirks},
      {{"GemmaForCausalLM"}, "gemma", "model.layers.", kGemmaRules, standard_dims, gemma_hparams, none_generated,
       gemma_vocab_quirks},
      {{"Gemma2ForCausalLM"}, "gemma2", "model.layers.", kGemma2Rules, standard_dims, gemma2_hparams, none_generated,
       gemma2_vocab_quirks},
      {{"Gemma3ForCausalLM"}, "gemma3", "model.layers.", kGemma2Rules, standard_dims, gemma3_hparams, none_generated,
       gemma2_vocab_quirks, true},
      {{"OpenELMForCausalLM"}, "openelm", "transformer.layers.", kOpenElmRules, openelm_dims, openelm_hparams,
       none_generated, no_vocab_quirks},
  };
  return kFamilies;
}

bool parse_index(const std::string& s, size_t& pos, int64_t& out) {
  size_t end = pos;
  while (end < s.size() && std::isdigit(static_cast<unsigned char>(s[end]))) ++end;
  if (end == pos || end - pos > 6 || end >= s.size() || s[end] != '.') return false;
  out = std::stoll(s.substr(pos, end - pos));
  pos = end + 1;
  return true;
}

}  // namespace

NameParts split_hf_name(const std::string& name, const std::string& layer_prefix) {
  NameParts p;
  p.key = name;
  if (name.rfind(layer_prefix, 0) != 0) return p;
  size_t pos = layer_prefix.size();
  if (!parse_index(name, pos, p.layer)) return p;
  p.key = name.substr(pos);
  const std::string experts = "experts.";
  const size_t e = p.key.find(experts);
  if (e != std::string::npos) {
    size_t q = e + experts.size();
    int64_t idx;
    if (parse_index(p.key, q, idx)) {
      p.expert = idx;
      p.key = p.key.substr(0, e + experts.size()) + "*." + p.key.substr(q);
    }
  }
  return p;
}

json read_hf_json(const std::string& path, bool required) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    if (required) throw Error(path + ": not found");
    return json();
  }
  const auto size = fs::file_size(path, ec);
  if (ec || size > (64u << 20)) throw Error(path + ": too large for a configuration file");
  std::ifstream in(path, std::ios::binary);
  std::string text(static_cast<size_t>(size), '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  if (!in) throw Error(path + ": read failed");
  try {
    return json::parse(text, json_depth_guard());
  } catch (const json::exception& e) {
    throw Error(path + ": not valid JSON: " + e.what());
  }
}

const HfFamily* find_hf_family_by_arch(const std::string& arch) {
  for (const HfFamily& f : families())
    if (f.arch == arch) return &f;
  return nullptr;
}

bool cfg_has(const json& cfg, const char* key) { return cfg.is_object() && cfg.contains(key) && !cfg[key].is_null(); }

int64_t cfg_int(const json& cfg, const char* key) {
  const json& v = need(cfg, key);
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() && std::abs(v.get<double>()) < 9e15)
    return static_cast<int64_t>(v.get<double>());
  throw Error(std::string("config.json: '") + key + "' is not an integer");
}

int64_t cfg_int_or(const json& cfg, const char* key, int64_t def) { return cfg_has(cfg, key) ? cfg_int(cfg, key) : def; }

double cfg_num(const json& cfg, const char* key) {
  const json& v = need(cfg, key);
  if (!v.is_number()) throw Error(std::string("config.json: '") + key + "' is not a number");
  return v.get<double>();
}

const HfFamily& find_hf_family(const json& cfg, const std::string& config_path) {
  if (!cfg.is_object() || !cfg.contains("architectures") || !cfg["architectures"].is_array() ||
      cfg["architectures"].empty() || !cfg["architectures"][0].is_string())
    throw Error(config_path + ": no \"architectures\" list naming the model class");
  const std::string arch = cfg["architectures"][0].get<std::string>();
  std::string known;
  for (const HfFamily& f : families())
    for (const std::string& a : f.hf_archs) {
      if (a == arch) return f;
      known += (known.empty() ? "" : ", ") + a;
    }
  throw Error(config_path + ": architecture " + arch + " is not one slm converts (it knows " + known + ")");
}

}  // namespace slm::convert

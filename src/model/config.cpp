#include "model/config.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "gguf/gguf.h"
#include "slm/error.h"

namespace slm {

namespace {

const char* const kArchs[] = {"llama", "phi3", "gemma", "gemma2", "gemma3",
                              "openelm", "granite", "granitemoe"};

// A hyperparameter that is either one integer for every layer or an array of per-layer values.
std::vector<int> per_layer(const GgufFile& f, const std::string& key, int n_layer,
                           const std::vector<int>* fallback) {
  const GgufValue* v = f.find(key);
  if (!v) {
    if (fallback) return *fallback;
    throw Error("missing metadata key " + key);
  }
  std::vector<int> out;
  if (v->type == GgufType::ARRAY) {
    std::vector<int64_t> a = f.get_int_array(key);
    if (static_cast<int>(a.size()) != n_layer)
      throw Error("metadata key " + key + " has " + std::to_string(a.size()) +
                  " values, expected one per layer (" + std::to_string(n_layer) + ")");
    for (int64_t x : a) out.push_back(static_cast<int>(x));
  } else {
    out.assign(n_layer, static_cast<int>(f.get_int(key)));
  }
  return out;
}

int positive(int64_t v, const std::string& key) {
  if (v <= 0 || v > (1 << 24)) throw Error("metadata key " + key + " has invalid value " + std::to_string(v));
  return static_cast<int>(v);
}

}  // namespace

ModelConfig ModelConfig::from_gguf(const GgufFile& f) {
  ModelConfig c;
  c.arch = f.get_string("general.architecture");
  if (std::find(std::begin(kArchs), std::end(kArchs), c.arch) == std::end(kArchs))
    throw Error("unsupported architecture '" + c.arch + "'");
  c.name = f.get_string_or("general.name", "");
  const std::string p = c.arch + ".";
  const std::string& a = c.arch;
  const bool gemma_family = a == "gemma" || a == "gemma2" || a == "gemma3";
  const bool granite_family = a == "granite" || a == "granitemoe";

  c.n_embd = positive(f.get_int(p + "embedding_length"), p + "embedding_length");
  c.n_layer = positive(f.get_int(p + "block_count"), p + "block_count");
  c.n_ctx_train = positive(f.get_int(p + "context_length"), p + "context_length");
  c.rms_eps = f.get_f32(p + "attention.layer_norm_rms_epsilon");

  const GgufTensor* embd = f.find_tensor("token_embd.weight");
  if (!embd) throw Error("missing tensor token_embd.weight");
  c.n_vocab = static_cast<int>(f.get_int_or(p + "vocab_size", embd->ne[1]));

  std::vector<int> n_head = per_layer(f, p + "attention.head_count", c.n_layer, nullptr);
  std::vector<int> n_head_kv = per_layer(f, p + "attention.head_count_kv", c.n_layer, &n_head);
  std::vector<int> n_ff = per_layer(f, p + "feed_forward_length", c.n_layer, nullptr);
  for (int il = 0; il < c.n_layer; ++il) {
    std::string at = " at layer " + std::to_string(il);
    if (n_head[il] <= 0) throw Error("metadata key " + p + "attention.head_count is not positive" + at);
    if (n_head_kv[il] <= 0 || n_head[il] % n_head_kv[il] != 0)
      throw Error("metadata key " + p + "attention.head_count_kv (" + std::to_string(n_head_kv[il]) +
                  ") does not divide head_count (" + std::to_string(n_head[il]) + ")" + at);
    if (n_ff[il] <= 0) throw Error("metadata key " + p + "feed_forward_length is not positive" + at);
  }

  // Head dims: explicit key/value lengths win; never derive them when the keys exist.
  int hd_default = c.n_embd / n_head[0];
  c.head_dim_k = positive(f.get_int_or(p + "attention.key_length", hd_default), p + "attention.key_length");
  c.head_dim_v = positive(f.get_int_or(p + "attention.value_length", c.head_dim_k), p + "attention.value_length");
  c.n_rot = positive(f.get_int_or(p + "rope.dimension_count", c.head_dim_k), p + "rope.dimension_count");
  if (c.n_rot > c.head_dim_k || c.n_rot % 2 != 0)
    throw Error("metadata key " + p + "rope.dimension_count (" + std::to_string(c.n_rot) +
                ") must be even and at most the head size (" + std::to_string(c.head_dim_k) + ")");

  // RoPE: layout by family, base and scaling from the keys.
  c.rope_mode = (a == "llama" || granite_family) ? RopeMode::Norm : RopeMode::Neox;
  const float rope_base = f.get_f32_or(p + "rope.freq_base", 10000.0f);
  float freq_scale = 1;
  const std::string scaling = f.get_string_or(p + "rope.scaling.type", "linear");
  if (scaling == "linear") {
    float factor = f.get_f32_or(p + "rope.scaling.factor", 1.0f);
    if (factor > 0) freq_scale = 1.0f / factor;
  } else if (scaling == "yarn") {
    throw Error("metadata key " + p + "rope.scaling.type: 'yarn' is not supported");
  } else if (scaling != "none" && scaling != "longrope" && scaling != "su" && scaling != "llama3") {
    // longrope/su: the factor tensors carry it; llama3: the rope_freqs tensor does.
    throw Error("metadata key " + p + "rope.scaling.type has unknown value '" + scaling + "'");
  }
  c.rope_attn_factor = f.get_f32_or(p + "rope.scaling.attn_factor", 1.0f);
  c.rope_orig_ctx = static_cast<int>(f.get_int_or(p + "rope.scaling.original_context_length", c.n_ctx_train));
  c.has_rope_freqs = f.find_tensor("rope_freqs.weight") != nullptr;
  c.has_longrope = f.find_tensor("rope_factors_long.weight") && f.find_tensor("rope_factors_short.weight");
  if (granite_family) c.use_rope = f.get_bool_or(p + "rope.scaling.finetuned", true);

  // Sliding-window layers: gemma2 every 2nd layer global, gemma3 every 6th (il % n < n - 1 is local).
  int swa_pattern = 0;
  float rope_base_swa = rope_base;
  if (a == "gemma2" || a == "gemma3") {
    c.sliding_window = positive(f.get_int_or(p + "attention.sliding_window", 4096), p + "attention.sliding_window");
    swa_pattern = a == "gemma2" ? 2 : 6;
    rope_base_swa = f.get_f32_or(p + "rope.freq_base_swa", a == "gemma2" ? rope_base : 10000.0f);
  }
  std::vector<bool> swa_layers(c.n_layer, false);
  if (const GgufValue* v = f.find(p + "attention.sliding_window_pattern"); v && c.sliding_window > 0) {
    if (v->type == GgufType::ARRAY) {
      if (static_cast<int>(v->arr.size()) != c.n_layer)
        throw Error("metadata key " + p + "attention.sliding_window_pattern needs one value per layer");
      for (int il = 0; il < c.n_layer; ++il) {
        const GgufValue& e = v->arr[il];
        swa_layers[il] = e.type == GgufType::BOOL ? e.u != 0 : e.as_int() != 0;
      }
      swa_pattern = 0;
    } else {
      swa_pattern = positive(v->as_int(), p + "attention.sliding_window_pattern");
    }
  }
  for (int il = 0; il < c.n_layer; ++il)
    if (swa_pattern > 0) swa_layers[il] = il % swa_pattern < swa_pattern - 1;

  for (int il = 0; il < c.n_layer; ++il) {
    LayerConfig L;
    L.n_head = n_head[il];
    L.n_head_kv = n_head_kv[il];
    L.n_ff = n_ff[il];
    L.sliding = swa_layers[il];
    // Gemma 3 local layers use their own base and no linear scaling; global layers the file's.
    L.rope_base = L.sliding ? rope_base_swa : rope_base;
    L.rope_freq_scale = (L.sliding && a == "gemma3") ? 1.0f : freq_scale;
    c.layers.push_back(L);
  }

  c.activation = gemma_family ? FfnActivation::GeLU : FfnActivation::SiLU;
  c.fused_qkv = f.find_tensor("blk.0.attn_qkv.weight") && !f.find_tensor("blk.0.attn_q.weight");
  c.fused_gate_up = a == "phi3" && !f.find_tensor("blk.0.ffn_gate.weight");
  c.qk_norm = a == "gemma3" || a == "openelm";
  c.post_norms = a == "gemma2" || a == "gemma3";
  c.tied_output = f.find_tensor("output.weight") == nullptr;

  // Multipliers.
  if (gemma_family) c.embd_scale = std::sqrt(static_cast<float>(c.n_embd));
  c.attn_scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim_k));
  // Gemma 2 27B and Gemma 3 27B scale queries by 1/√(n_embd/n_head) (HF query_pre_attn_scalar).
  if ((a == "gemma2" && c.n_layer == 46) || (a == "gemma3" && c.n_layer == 62))
    c.attn_scale = 1.0f / std::sqrt(static_cast<float>(c.n_embd / n_head[0]));
  if (const GgufValue* v = f.find(p + "attention.scale"); v && v->as_double() != 0.0)
    c.attn_scale = static_cast<float>(v->as_double());
  if (granite_family) {
    c.embd_scale = f.get_f32_or(p + "embedding_scale", 1.0f);
    c.residual_scale = f.get_f32_or(p + "residual_scale", 1.0f);
    c.logit_scale = f.get_f32(p + "logit_scale");
    if (c.logit_scale == 0) throw Error("metadata key " + p + "logit_scale is 0");
  }
  if (a == "gemma2") {
    c.attn_softcap = f.get_f32_or(p + "attn_logit_softcapping", 50.0f);
    c.final_softcap = f.get_f32_or(p + "final_logit_softcapping", 30.0f);
  }

  c.n_expert = static_cast<int>(f.get_int_or(p + "expert_count", 0));
  if (c.n_expert > 0) {
    c.n_expert_used = static_cast<int>(f.get_int(p + "expert_used_count"));
    if (c.n_expert_used <= 0 || c.n_expert_used > c.n_expert)
      throw Error("metadata key " + p + "expert_used_count (" + std::to_string(c.n_expert_used) +
                  ") must be in 1.." + std::to_string(c.n_expert));
    c.n_ff_shared = static_cast<int>(f.get_int_or(p + "expert_shared_feed_forward_length", 0));
    if (c.n_ff_shared == 0 && f.find_tensor("blk.0.ffn_up_shexp.weight"))
      c.n_ff_shared = static_cast<int>(f.find_tensor("blk.0.ffn_up_shexp.weight")->ne[1]);
  }
  return c;
}

int ModelConfig::max_head_kv_width() const {
  int w = 0;
  for (const LayerConfig& L : layers) w = std::max(w, L.n_head_kv * std::max(head_dim_k, head_dim_v));
  return w;
}

std::string ModelConfig::describe() const {
  std::ostringstream o;
  o << arch << ": " << n_layer << " layers, n_embd " << n_embd << ", vocab " << n_vocab;
  bool uniform = std::all_of(layers.begin(), layers.end(), [&](const LayerConfig& L) {
    return L.n_head == layers[0].n_head && L.n_head_kv == layers[0].n_head_kv && L.n_ff == layers[0].n_ff;
  });
  if (uniform) {
    o << ", " << layers[0].n_head << " heads / " << layers[0].n_head_kv << " KV heads";
  } else {
    o << ", per-layer heads/KV heads/FFN";
    for (const LayerConfig& L : layers) o << " " << L.n_head << "/" << L.n_head_kv << "/" << L.n_ff;
  }
  o << " (head " << head_dim_k;
  if (head_dim_v != head_dim_k) o << "/" << head_dim_v;
  o << ")";
  if (n_expert > 0) {
    o << ", MoE " << n_expert << " experts (" << n_expert_used << " used) of FFN " << layers[0].n_ff;
    if (n_ff_shared > 0) o << " + shared expert of " << n_ff_shared;
  } else if (uniform) {
    o << ", FFN " << layers[0].n_ff;
  }
  o << (activation == FfnActivation::GeLU ? ", GeGLU" : ", SwiGLU");
  if (fused_qkv) o << ", fused QKV";
  if (fused_gate_up) o << ", fused gate/up";
  if (!use_rope) o << ", no RoPE";
  else {
    o << ", RoPE " << (rope_mode == RopeMode::Norm ? "NORM" : "NEOX") << " over " << n_rot
      << " dims base " << layers[0].rope_base;
    if (layers[0].rope_freq_scale != 1.0f) o << " linear scale " << 1.0f / layers[0].rope_freq_scale;
    if (has_rope_freqs) o << " with rope_freqs factors";
    if (has_longrope)
      o << " LongRoPE (long factors when n_ctx > " << rope_orig_ctx << ", attn factor " << rope_attn_factor << ")";
  }
  if (qk_norm) o << ", QK norm";
  if (post_norms) o << ", post-attention/FFN norms";
  if (embd_scale != 1.0f) o << ", embeddings x" << embd_scale;
  if (residual_scale != 1.0f) o << ", residual x" << residual_scale;
  o << ", attention scale " << attn_scale;
  if (attn_softcap > 0 || final_softcap > 0)
    o << ", softcap attn " << attn_softcap << " / final " << final_softcap;
  if (sliding_window > 0) {
    o << ", sliding window " << sliding_window << " on layers";
    for (int il = 0; il < n_layer; ++il)
      if (layers[il].sliding) o << " " << il;
    for (int il = 0; il < n_layer; ++il)
      if (layers[il].sliding && layers[il].rope_base != layers[n_layer - 1].rope_base) {
        o << " (local rope base " << layers[il].rope_base << ")";
        break;
      }
  }
  if (logit_scale != 1.0f) o << ", logits /" << logit_scale;
  o << (tied_output ? ", tied output" : ", separate output");
  o << ", rms eps " << rms_eps << ", trained context " << n_ctx_train;
  return o.str();
}

}  // namespace slm

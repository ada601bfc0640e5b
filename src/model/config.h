// ModelConfig: everything the forward pass needs to know about a model, read from GGUF
// metadata (and the presence of a few optional tensors). Families differ only in these
// switches; there is one forward pass for all of them.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/kernels.h"

namespace slm {

class GgufFile;

enum class FfnActivation { SiLU, GeLU };  // SwiGLU or GeGLU (tanh GELU)

struct LayerConfig {
  int n_head = 0;
  int n_head_kv = 0;
  int n_ff = 0;             // dense FFN width (MoE: width of one expert)
  bool sliding = false;     // attends only to the last `sliding_window` positions
  float rope_base = 10000;  // this layer's RoPE base (gemma2/3 local layers differ)
  float rope_freq_scale = 1;
};

struct ModelConfig {
  std::string arch;  // general.architecture
  std::string name;  // general.name (informational)
  int n_vocab = 0;
  int n_embd = 0;
  int n_layer = 0;
  int n_ctx_train = 0;
  int head_dim_k = 0;  // per-head width of queries and keys
  int head_dim_v = 0;  // per-head width of values
  std::vector<LayerConfig> layers;

  // RoPE
  bool use_rope = true;  // granite's rope.scaling.finetuned may switch it off
  RopeMode rope_mode = RopeMode::Norm;
  int n_rot = 0;
  float rope_attn_factor = 1;   // multiplies cos/sin (LongRoPE)
  int rope_orig_ctx = 0;        // LongRoPE: long factors when n_ctx > this
  bool has_rope_freqs = false;  // llama3-style per-frequency divisors (rope_freqs tensor)
  bool has_longrope = false;    // rope_factors_long / rope_factors_short tensors

  float rms_eps = 1e-5f;
  FfnActivation activation = FfnActivation::SiLU;

  // Layout switches (from tensor presence and the family)
  bool fused_qkv = false;      // attn_qkv: rows Q, then K, then V
  bool fused_gate_up = false;  // ffn_up holds gate rows then up rows (phi3)
  bool qk_norm = false;        // per-head RMS norm of q and k before RoPE
  bool post_norms = false;     // post_attention_norm and post_ffw_norm (gemma2/3)
  bool tied_output = false;    // no output.weight: logits use token_embd

  // Multipliers
  float embd_scale = 1;      // embeddings × this (gemma: √n_embd, granite: embedding_scale)
  float residual_scale = 1;  // each branch output × this before the residual add (granite)
  float attn_scale = 0;      // scores × this (1/√head_dim unless the family says otherwise)
  float attn_softcap = 0;    // 0 = off; else scores = cap·tanh(scores/cap)
  float final_softcap = 0;   // 0 = off; same on the logits
  float logit_scale = 1;     // logits ÷ this (granite)
  int sliding_window = 0;    // window of layers with `sliding` set

  // Mixture of experts (0 = dense)
  int n_expert = 0;
  int n_expert_used = 0;
  int n_ff_shared = 0;  // shared expert width (granitemoe "shared" variant), 0 = none

  // Throws slm::Error naming an unsupported architecture or a missing/invalid key.
  static ModelConfig from_gguf(const GgufFile& f);

  int max_head_kv_width() const;  // largest n_head_kv·head_dim over layers (KV rows)
  // The family and its switches in words, for `slm info`.
  std::string describe() const;
};

}  // namespace slm

// The Hugging Face side of each family slm runs: which config.json architectures it covers,
// how its tensor names map to GGUF's, what has to happen to the values on the way (the
// Q/K row permutation of Llama-style checkpoints, Gemma's norm + 1, fused tensors split,
// experts stacked) and which GGUF hyperparameter keys its config becomes. One row per family
// in hf_families.cpp, beside src/model/config.cpp which reads those keys back.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gguf/gguf.h"

namespace slm::convert {

using nlohmann::json;

// What happens to a tensor's values between the checkpoint and the GGUF.
enum class Op {
  Copy,
  PermuteQ,     // Llama-style q_proj rows: HF's half-split rotary order → GGUF's interleaved pairs
  PermuteK,     // the same with the KV head count
  AddOne,       // Gemma stores norm weights as w − 1
  SplitFirst,   // rows [0, n_ff) of a fused gate|up matrix (per expert when 3-D)
  SplitSecond,  // rows [n_ff, 2·n_ff)
  Stack,        // experts.E.NAME of one layer, stacked into one 3-D tensor (expert-major)
};

struct TensorRule {
  const char* hf;    // name after "PREFIX.N." for layer tensors ("self_attn.q_proj.weight"),
                     // with "*" for the expert index; the whole name otherwise
  const char* gguf;  // "attn_q.weight" (becomes blk.N.attn_q.weight) or a whole name;
                     // "" drops the tensor (lm_head of a tied Gemma)
  Op op = Op::Copy;
  bool layer = true;
};

// The sizes the checkpoint's tensors must have, from config.json.
struct HfDims {
  int64_t n_embd = 0, n_vocab = 0, n_layer = 0, head_dim = 0;
  std::vector<int64_t> n_head, n_head_kv, n_ff;  // per layer
  int64_t n_expert = 0;
};

struct GeneratedTensor {
  std::string name;
  std::vector<float> values;  // F32, 1-D
};

struct HfFamily {
  std::vector<std::string> hf_archs;  // config.json "architectures" entries it converts
  std::string arch;                   // general.architecture
  std::string layer_prefix;           // "model.layers." or "transformer.layers."
  std::vector<TensorRule> rules;
  HfDims (*dims)(const json& cfg);
  // The family's hyperparameter keys, in the order the reference converter writes them.
  void (*hparams)(const json& cfg, const HfDims& d, uint32_t file_type, GgufWriter& w);
  // Tensors made from config.json (Llama 3.1 rope_freqs, LongRoPE factors).
  std::vector<GeneratedTensor> (*generated)(const json& cfg, const HfDims& d);
  // Keys the family adds after the vocabulary (Gemma's fixed EOT id, add_space_prefix).
  void (*vocab_quirks)(const json& cfg, const json& tokenizer_config, GgufWriter& w);
  // Gemma 3 drops embedding rows beyond the vocabulary.
  bool trim_embd_to_vocab = false;
};

// The family for config.json's architectures; throws naming what it found and what is known.
const HfFamily& find_hf_family(const json& cfg, const std::string& config_path);

// "model.layers.12.block_sparse_moe.experts.3.w1.weight" with prefix "model.layers." →
// layer 12, expert 3, key "block_sparse_moe.experts.*.w1.weight"; other names keep layer -1
// and themselves as the key.
struct NameParts {
  int64_t layer = -1, expert = -1;
  std::string key;
};
NameParts split_hf_name(const std::string& name, const std::string& layer_prefix);

// A JSON file of the folder (config.json, tokenizer_config.json ...), size-bounded; null when
// absent and not required. Throws naming the file when it is not valid JSON.
json read_hf_json(const std::string& path, bool required);

// The family whose GGUF architecture is `arch` (for a base given as a GGUF file).
const HfFamily* find_hf_family_by_arch(const std::string& arch);

// Typed config.json access: a missing key or a value of the wrong type is one line naming it.
int64_t cfg_int(const json& cfg, const char* key);
int64_t cfg_int_or(const json& cfg, const char* key, int64_t def);
double cfg_num(const json& cfg, const char* key);
bool cfg_has(const json& cfg, const char* key);  // present and not null

}  // namespace slm::convert

// What `slm quantize` turns each tensor into: a target ("Q8_0", "Q4_K_M" ...) and the per-
// tensor plan derived from it. Kept apart from the CLI so the rules can be tested against
// the types llama.cpp chose in the shared fixtures.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "quant/types.h"

namespace slm {

struct QuantTarget {
  std::string name;        // as given, upper-cased: "Q4_K_M", "Q8_0"
  GgmlType base;           // the type most matrices get
  bool k_mixture = false;  // a _M mixture: some matrices get more bits (see plan_quantization)
  uint32_t file_type = 0;  // llama_ftype id written to general.file_type
  // Plain 4/5-bit targets: give the output matrix Q6_K as llama-quantize does without
  // --pure (a Llama-3.2-1B "Q4_0" from llama.cpp is 727 MiB for this reason). Off by
  // default: `slm quantize` with a plain type is --pure, like the shared fixtures.
  bool output_q6_k = false;
};

// llama.cpp's name for a general.file_type id ("Q4_K - Medium", "F16", "all F32" ...);
// "unknown (N)" for an id it does not know.
std::string file_type_name(uint32_t file_type);

// Parses a target: any ggml type slm can quantize to (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1,
// Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS) or a mixture Q3_K_S, Q3_K_M, Q3_K_L,
// Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M.
// Case-insensitive. Throws slm::Error naming the choices otherwise.
QuantTarget parse_quant_target(const std::string& name);

struct TensorDesc {
  std::string name;
  uint32_t n_dims = 0;
  int64_t ne0 = 0;  // row length
  GgmlType type = GgmlType::F32;
};

struct TensorPlan {
  GgmlType type;      // the type to write
  bool convert;       // false: copy the source bytes unchanged
  std::string note;   // why a tensor did not get the target's type ("" otherwise)
};

// One plan per tensor, in order. Rules:
// * kept as they are: tensors of rank < 2, names containing "norm", rope frequency/factor
//   tensors ("rope_freqs", "rope_factors") and MoE router weights ("ffn_gate_inp");
// * a plain type: every other tensor gets it (like llama-quantize --pure);
// * a K mixture (_S, _M, _L: llama-quantize's rules for the families slm runs): the output
//   matrix (output.weight, or token_embd.weight when tied) gets Q6_K; the i-th attn_v/attn_qkv
//   gets Q5_K for i < 2 then Q4_K (Q3_K_M), Q5_K (Q3_K_L), Q6_K where use_more_bits(i) (Q4_K_M,
//   Q5_K_M; the first and last eighth and every third in between), Q5_K for i < 4 (Q4_K_S);
//   ffn_down of layer i: Q5_K in the first sixteenth then Q4_K (Q3_K_M), Q5_K (Q3_K_L), Q6_K
//   where use_more_bits(i) (Q4_K_M, Q5_K_M), Q5_K in the first eighth (Q4_K_S); attn_output Q4_K
//   (Q3_K_M) or Q5_K (Q3_K_L); with 8 experts attn_v and attn_k get Q8_0 and attn_output Q5_K
//   (Q3_K_S/M, Q4_K_S/M); everything else the base type;
// * a row length that is not a multiple of the chosen type's block size falls back, as
//   llama.cpp does, to a 32-block type (Q4_K→Q5_0, Q5_K→Q5_1, Q6_K→Q8_0, Q2_K/Q3_K→Q4_0,
//   IQ4_XS→IQ4_NL); if that does not divide either, F16.
//
// What the K mixtures' rules look at besides the tensors: the expert count and the ratio of
// query to KV heads.
struct ModelFacts {
  int n_expert = 0;
  int n_gqa = 1;
};

std::vector<TensorPlan> plan_quantization(const QuantTarget& target, const std::vector<TensorDesc>& tensors,
                                          const ModelFacts& model = {});

}  // namespace slm

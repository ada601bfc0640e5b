// What the forward pass needs of a LoraAdapter: for each layer and each adaptable matrix,
// the A/B pair (views into the adapter's mapped file, in its own type) and its scale.
#pragma once
#include <array>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "slm/adapter.h"

namespace slm {

class GgufFile;

// The matrices of a layer that adapters may target, by their GGUF names (blk.N.NAME.weight).
enum class LoraTarget : int {
  attn_q, attn_k, attn_v, attn_qkv, attn_output,
  ffn_gate, ffn_up, ffn_down,
  ffn_gate_inp,
  ffn_gate_exps, ffn_up_exps, ffn_down_exps,
  ffn_gate_shexp, ffn_up_shexp, ffn_down_shexp,
  count
};
const char* lora_target_name(LoraTarget t);

// A: rank rows of n_in values; B: n_out rows of rank values (for stacked experts, expert e's
// A and B are the e-th blocks of rank and n_out rows). scale = alpha/rank, or 1 without alpha.
struct LoraPair {
  WeightView a, b;
  int64_t rank = 0;
  int64_t n_expert = 0;  // > 0: a stacked expert tensor
  float scale = 1.0f;
  bool present() const { return !a.empty(); }
  WeightView expert_a(int e) const { return a.slice_rows(e * rank, rank); }
  WeightView expert_b(int e) const { return b.slice_rows(e * (b.rows / n_expert), b.rows / n_expert); }
};

struct LoraAdapter::Impl {
  std::unique_ptr<GgufFile> file;
  std::string path, architecture;
  float alpha = 0;
  std::vector<std::array<LoraPair, size_t(LoraTarget::count)>> layers;
  LoraPair output;
  LoraPair token_embd;  // A [n_vocab rows of rank], B [n_embd rows of rank]
  std::map<std::string, const LoraPair*> by_target;  // base tensor name → its pair
  // A base whose output matrix is token_embd sees the token_embd pair there too, as the
  // merged weights would: logits += s·A·(Bᵀ·x), with Bᵀ kept here as F32 [rank][n_embd].
  std::vector<float> tied_output_bt;
  std::vector<std::string> targets;
  std::vector<LoraAdapter::PairInfo> pair_info;
  bool bound = false;  // checked against a base and ready to apply
  int max_rank = 0;
  size_t bytes = 0;
  double flops_per_token = 0;

  const LoraPair* pair(int layer, LoraTarget t) const {
    const LoraPair& p = layers[size_t(layer)][size_t(t)];
    return p.present() ? &p : nullptr;
  }
};

}  // namespace slm

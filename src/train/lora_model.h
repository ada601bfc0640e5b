// The trainable side of fine-tuning: LoRA pairs (A, B in F32) over a frozen base, with their
// gradients. Layout as in the adapter format: for a matrix W with n_in inputs and n_out
// outputs, A is rank rows of n_in values and B is n_out rows of rank values; the adapted
// product is W·x + scale·B·(A·x), scale = alpha / rank.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/lora.h"
#include "slm/adapter.h"

namespace slm {
class Model;
}

namespace slm::train {

struct LoraParam {
  std::string target;  // the base tensor, e.g. "blk.3.attn_q.weight"
  int layer = 0;
  LoraTarget kind = LoraTarget::attn_q;
  int64_t n_in = 0, n_out = 0, rank = 0;
  float scale = 1.0f;
  std::vector<float> a, b;            // A [rank][n_in], B [n_out][rank]
  std::vector<float> grad_a, grad_b;  // same shapes
};

// The matrix kinds `--targets` may name (the adapter format's names).
const std::vector<std::string>& trainable_kinds();

class LoraModel {
 public:
  // One pair per matrix of the base whose kind is in `kinds` (e.g. {"attn_q", "ffn_down"};
  // empty: every attention and FFN matrix). A is drawn as PEFT does (uniform in
  // ±1/√n_in, from `seed`), B starts at zero, so training starts from the base model.
  LoraModel(const Model& base, int rank, float alpha, std::vector<std::string> kinds, uint64_t seed);

  std::vector<LoraParam>& params() { return params_; }
  const std::vector<LoraParam>& params() const { return params_; }
  const LoraParam* find(int layer, LoraTarget kind) const {
    const int i = index_[size_t(layer) * size_t(LoraTarget::count) + size_t(kind)];
    return i < 0 ? nullptr : &params_[size_t(i)];
  }
  LoraParam* find(int layer, LoraTarget kind) {
    const int i = index_[size_t(layer) * size_t(LoraTarget::count) + size_t(kind)];
    return i < 0 ? nullptr : &params_[size_t(i)];
  }
  void zero_grad();
  size_t n_parameters() const;
  float alpha() const { return alpha_; }
  int rank() const { return rank_; }
  // The pairs in the adapter file's shapes (ggml order), for write_lora_adapter.
  std::vector<LoraPairData> export_pairs() const;

 private:
  std::vector<LoraParam> params_;
  std::vector<int> index_;  // (layer, kind) → params_ index or -1
  float alpha_ = 0;
  int rank_ = 0;
};

}  // namespace slm::train

#include "train/lora_model.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "gguf/gguf.h"
#include "model/config.h"
#include "slm/error.h"
#include "slm/model.h"

namespace slm::train {

const std::vector<std::string>& trainable_kinds() {
  // Stacked experts (ffn_*_exps) are not trained yet: their gradients still flow through.
  static const std::vector<std::string> kinds = {"attn_q",   "attn_k",     "attn_v",        "attn_qkv",
                                                 "attn_output", "ffn_gate", "ffn_up",       "ffn_down",
                                                 "ffn_gate_inp", "ffn_gate_shexp", "ffn_up_shexp", "ffn_down_shexp"};
  return kinds;
}

LoraModel::LoraModel(const Model& base, int rank, float alpha, std::vector<std::string> kinds, uint64_t seed)
    : alpha_(alpha), rank_(rank) {
  if (rank < 1 || rank > 4096) throw Error("LoRA rank must be in 1..4096, got " + std::to_string(rank));
  if (!std::isfinite(alpha) || alpha < 0) throw Error("LoRA alpha must be a non-negative number");
  const std::vector<std::string>& all = trainable_kinds();
  if (kinds.empty()) kinds = {"attn_q", "attn_k", "attn_v", "attn_qkv", "attn_output", "ffn_gate", "ffn_up", "ffn_down",
                              "ffn_gate_shexp", "ffn_up_shexp", "ffn_down_shexp"};
  for (const std::string& k : kinds)
    if (std::find(all.begin(), all.end(), k) == all.end()) {
      std::string list;
      for (const std::string& a : all) list += (list.empty() ? "" : ", ") + a;
      throw Error("--targets: '" + k + "' is not a matrix slm trains (choose from " + list + ")");
    }
  const ModelConfig& config = base.config();
  index_.assign(size_t(config.n_layer) * size_t(LoraTarget::count), -1);
  std::mt19937_64 rng(seed);
  for (int il = 0; il < config.n_layer; ++il)
    for (int k = 0; k < int(LoraTarget::count); ++k) {
      const std::string kind = lora_target_name(LoraTarget(k));
      if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) continue;
      const std::string name = "blk." + std::to_string(il) + "." + kind + ".weight";
      const GgufTensor* w = base.file().find_tensor(name);
      if (!w || w->n_dims != 2) continue;
      LoraParam p;
      p.target = name;
      p.layer = il;
      p.kind = LoraTarget(k);
      p.n_in = w->ne[0];
      p.n_out = w->ne[1];
      p.rank = rank;
      p.scale = alpha != 0 ? alpha / float(rank) : 1.0f;
      p.a.resize(size_t(rank * p.n_in));
      p.b.assign(size_t(p.n_out * rank), 0.0f);
      const float bound = 1.0f / std::sqrt(float(p.n_in));
      std::uniform_real_distribution<float> u(-bound, bound);
      for (float& x : p.a) x = u(rng);
      p.grad_a.assign(p.a.size(), 0.0f);
      p.grad_b.assign(p.b.size(), 0.0f);
      index_[size_t(il) * size_t(LoraTarget::count) + size_t(k)] = int(params_.size());
      params_.push_back(std::move(p));
    }
  if (params_.empty()) throw Error("the base model has none of the matrices given by --targets");
}

void LoraModel::zero_grad() {
  for (LoraParam& p : params_) {
    std::fill(p.grad_a.begin(), p.grad_a.end(), 0.0f);
    std::fill(p.grad_b.begin(), p.grad_b.end(), 0.0f);
  }
}

size_t LoraModel::n_parameters() const {
  size_t n = 0;
  for (const LoraParam& p : params_) n += p.a.size() + p.b.size();
  return n;
}

std::vector<LoraPairData> LoraModel::export_pairs() const {
  std::vector<LoraPairData> out;
  for (const LoraParam& p : params_) {
    LoraPairData d;
    d.target = p.target;
    d.a_shape = {p.n_in, p.rank};
    d.b_shape = {p.rank, p.n_out};
    d.a = p.a;
    d.b = p.b;
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace slm::train

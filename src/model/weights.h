// Weights: the model's tensors bound by name, with every shape checked at load against
// the config. Views point into the memory-mapped file; nothing is copied.
#pragma once
#include <memory>
#include <vector>

#include "kernels/kernels.h"
#include "model/config.h"

namespace slm {

class GgufFile;

// A stacked expert tensor [in, out, n_expert]: expert e is rows [e·out, (e+1)·out).
struct ExpertWeights {
  WeightView all;  // rows = out · n_expert
  int64_t rows_per_expert = 0;
  WeightView expert(int e) const { return all.slice_rows(e * rows_per_expert, rows_per_expert); }
};

struct LayerWeights {
  const float* attn_norm = nullptr;
  WeightView wq, wk, wv;  // separate projections, or
  WeightView wqkv;        // fused: rows Q, then K, then V
  const float* q_norm = nullptr;  // head_dim, shared by all heads
  const float* k_norm = nullptr;
  WeightView wo;
  const float* post_attn_norm = nullptr;

  const float* ffn_norm = nullptr;
  WeightView gate, up, down;  // dense FFN (fused gate/up: `up` holds both)
  WeightView router;          // MoE: ffn_gate_inp [n_embd, n_expert]
  ExpertWeights gate_exps, up_exps, down_exps;
  WeightView gate_shexp, up_shexp, down_shexp;
  const float* post_ffn_norm = nullptr;
};

struct Weights {
  WeightView token_embd;
  WeightView output;  // token_embd when tied
  const float* output_norm = nullptr;
  const float* rope_freqs = nullptr;  // n_rot/2 divisors (llama3 scaling)
  const float* rope_long = nullptr;   // LongRoPE factors
  const float* rope_short = nullptr;
  std::vector<LayerWeights> layers;

  // Throws slm::Error naming a missing tensor, or a misshaped/mistyped one with the
  // expected and actual shapes.
  static Weights bind(const GgufFile& f, const ModelConfig& c);

  // Gives Q4_0, Q8_0, Q4_K, Q5_K and Q6_K matrices an interleaved copy (WeightView::packed) when this
  // build has a kernel for it; the embedding table stays as it is (lookups read plain rows). With
  // release_file_pages, each repacked tensor's pages of the file mapping are dropped from
  // memory afterwards (they are re-read from the file if ever needed), so the copy does not
  // double the resident size.
  void repack_for_cpu(bool release_file_pages);

 private:
  std::vector<std::unique_ptr<uint8_t[]>> packed_;
};

// Layer il's RoPE: its base and scaling, and the frequency factors it uses (rope_freqs, or
// LongRoPE's long or short set as chosen for a context of n_ctx tokens).
RopeParams layer_rope(const ModelConfig& c, const Weights& w, int il, int n_ctx);

}  // namespace slm

// LoRA adapters: low-rank corrections to a base model's matrices, W' = W + s·B·A, read from
// llama.cpp's GGUF adapter format and applied on the fly (the base stays untouched and
// mapped): y = W·x + s·B·(A·x). Several adapters on one sequence add their terms; each
// sequence of a batch may carry its own set.
//
// File format (as llama.cpp reads and writes it): general.type = "adapter",
// general.architecture = the base's, adapter.type = "lora", adapter.lora.alpha (float; 0
// means "no alpha"), and for every adapted matrix W (ggml shape [n_in, n_out]) the pair
// W.lora_a [n_in, r] and W.lora_b [r, n_out] — stacked expert tensors add a third dimension,
// and token_embd.weight has A and B the other way round (A [r, n_vocab], B [r, n_embd], the
// embedding row of a token being B·A[token]). The scale of an adapter given the user scale u
// is u·alpha/r, or u when alpha is 0.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace slm {

class Model;

class LoraAdapter {
 public:
  // Opens the file and checks it against the base: architecture, every target present in
  // the base with the matching shapes, complete A/B pairs, one rank per pair. Throws
  // slm::Error naming the adapter file, the tensor and the shapes at fault.
  static std::unique_ptr<LoraAdapter> load(const std::string& path, const Model& base);
  ~LoraAdapter();

  const std::string& path() const;
  const std::string& architecture() const;
  float alpha() const;
  int max_rank() const;               // the largest rank over its pairs
  size_t bytes() const;               // tensor data of the adapter
  std::vector<std::string> targets() const;  // adapted base tensors, in file order
  // Multiply-adds the adapter costs per token (A·x and B·(A·x) over every pair, experts
  // counted once per expert a token is routed to).
  double flops_per_token() const;

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  LoraAdapter() = default;
  std::unique_ptr<Impl> impl_;
};

// The adapters one sequence runs with, each with its user scale (llama.cpp's --lora-scaled).
struct LoraSet {
  std::vector<std::pair<const LoraAdapter*, float>> adapters;
  bool empty() const {
    for (const auto& a : adapters)
      if (a.first && a.second != 0.0f) return false;
    return true;
  }
};

}  // namespace slm

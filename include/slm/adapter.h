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
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace slm {

class GgufFile;
class Model;

class LoraAdapter {
 public:
  // Opens the file and checks it against the base: architecture, every target present in
  // the base with the matching shapes, complete A/B pairs, one rank per pair. Throws
  // slm::Error naming the adapter file, the tensor and the shapes at fault.
  static std::unique_ptr<LoraAdapter> load(const std::string& path, const Model& base);
  // The file alone, for inspection (`slm lora info`): the format and the pairs are checked,
  // nothing is bound to a base; such an adapter cannot be applied.
  static std::unique_ptr<LoraAdapter> inspect(const std::string& path);
  // An already opened file (fuzzing, tests); base may be null as for inspect.
  static std::unique_ptr<LoraAdapter> from_file(std::unique_ptr<GgufFile> file, const Model* base);
  ~LoraAdapter();

  const std::string& path() const;
  const std::string& architecture() const;
  float alpha() const;
  int max_rank() const;               // the largest rank over its pairs
  size_t bytes() const;               // tensor data of the adapter
  std::vector<std::string> targets() const;  // adapted base tensors, in file order
  // Per target: its rank and the ggml shapes and type names of lora_a and lora_b.
  struct PairInfo {
    std::string target;
    int rank = 0;
    std::vector<int64_t> a_shape, b_shape;
    std::string a_type, b_type;
  };
  std::vector<PairInfo> pairs() const;
  // Metadata of the file as key → text (strings as they are, numbers printed), for the
  // training.* keys and the like.
  std::vector<std::pair<std::string, std::string>> metadata() const;
  // Multiply-adds the adapter costs per token (A·x and B·(A·x) over every pair, experts
  // counted once per expert a token is routed to).
  double flops_per_token() const;

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  LoraAdapter() = default;
  static std::unique_ptr<LoraAdapter> open_checked(const std::string& path, const Model* base);
  std::unique_ptr<Impl> impl_;
};

// One A/B pair to write: the base tensor it adapts, both matrices as float32 in ggml's
// shape order (ne[0] innermost, as in the file), and their stored type (F32 or F16).
struct LoraPairData {
  std::string target;  // e.g. "blk.0.attn_q.weight"
  std::vector<int64_t> a_shape, b_shape;
  std::vector<float> a, b;
};
// Writes an adapter in llama.cpp's format, atomically (temporary file, then rename).
// `metadata`: extra string keys (general.name, training.* ...). type: "F32" or "F16".
void write_lora_adapter(const std::string& path, const std::string& architecture, float alpha,
                        const std::vector<LoraPairData>& pairs,
                        const std::vector<std::pair<std::string, std::string>>& metadata = {},
                        const std::string& type = "F32");

struct LoraSet;

// `slm lora merge`: the base with the adapters folded in, W' = W + Σ s·B·A computed in F32
// (each adapted tensor dequantized, the products added, then stored in out_type, or in the
// tensor's own type when out_type is empty); every other tensor and all metadata are
// copied. Written atomically. progress(done, total) is called after each tensor.
struct LoraMergeOptions {
  std::string out_type;  // "F32", "F16", "Q8_0", "Q4_K" ... ("" keeps each tensor's type)
  int n_threads = 1;
  std::function<void(size_t done, size_t total)> progress;
};
void merge_lora(const Model& base, const LoraSet& set, const std::string& out_path, const LoraMergeOptions& options);

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

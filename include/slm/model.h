// Model: a GGUF file's config and weights (memory-mapped), and the forward pass that turns
// tokens at positions of one sequence into logits, reading and extending that sequence's
// KvCache. A Model is immutable after load and may serve many sequences (one KvCache each)
// from several threads.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "slm/types.h"

namespace slm {

class GgufFile;
class ThreadPool;
struct LoraSet;
struct ModelConfig;
struct Weights;

// Keys and values of every layer for positions [0, n_ctx) of one sequence. Rows are stored
// post-RoPE; the element type is F32 or F16. Per-layer widths may differ (OpenELM).
class KvCache {
 public:
  // Element types of keys and values: F32, F16, Q8_0 or Q4_0 (the quantized ones need head
  // sizes that are multiples of 32, as in llama.cpp). Throws slm::Error for another type or
  // when the cache would not fit the machine's memory.
  KvCache(const ModelConfig& config, int n_ctx, GgmlType type = GgmlType::F32);
  KvCache(const ModelConfig& config, int n_ctx, GgmlType k_type, GgmlType v_type);
  // The memory a cache of n_ctx positions takes.
  static size_t bytes_for(const ModelConfig& config, int64_t n_ctx, GgmlType type);
  static size_t bytes_for(const ModelConfig& config, int64_t n_ctx, GgmlType k_type, GgmlType v_type);
  int n_ctx() const { return n_ctx_; }
  GgmlType k_type() const { return k_type_; }
  GgmlType v_type() const { return v_type_; }
  size_t bytes() const;  // memory held by the cache

  // Stores one position's keys/values of layer il (widths as the layer has them).
  void store(int il, int pos, const float* k, const float* v);
  // Values [first, first + count) of a position's key/value row as f32: a pointer into the
  // cache (F32), or into tmp[count] (converted; for Q8_0/Q4_0, first is a multiple of 32).
  const float* key(int il, int pos, int first, int count, float* tmp) const;
  const float* value(int il, int pos, int first, int count, float* tmp) const;
  int k_width(int il) const { return layers_[il].k_width; }
  int v_width(int il) const { return layers_[il].v_width; }
  // KV head h of layer il as stored (elements of k_type() / v_type()), head-major: position
  // j's keys of the head start head_dim_k elements after position j−1's (values likewise),
  // so attention over one head reads one contiguous run. For the attention kernel, which
  // converts as it reads.
  const void* key_data(int il, int head) const;
  const void* value_data(int il, int head) const;
  // Moves the rows of positions [from, from + n) down to [to, to + n) (to < from), keys and
  // values of every layer; each moved key row of layer il goes through rekey(il, row) as
  // f32 on the way (the caller re-rotates it by RoPE to its new position).
  void move_rows(int from, int to, int n, const std::function<void(int il, float* key_row)>& rekey);

 private:
  struct Layer {
    int k_width = 0, v_width = 0;
    std::vector<uint8_t> k, v;  // [head][position][head_dim]
  };
  // One position's row of a layer's keys or values (n_head heads of head_dim each).
  void put(std::vector<uint8_t>& data, GgmlType type, int head_dim, int n_head, int pos, const float* src);
  const float* row(const std::vector<uint8_t>& data, GgmlType type, int head_dim, int pos, int first, int count,
                   float* tmp) const;
  int n_ctx_;
  GgmlType k_type_, v_type_;
  int head_dim_k_, head_dim_v_;
  std::vector<Layer> layers_;
};

// One sequence's share of a batched forward pass: n tokens at positions pos0.. of the
// sequence held in `cache`, and where its logits go.
struct SequenceBatch {
  KvCache* cache = nullptr;
  const int32_t* tokens = nullptr;
  int n = 0;
  int pos0 = 0;
  float* logits = nullptr;  // n·n_vocab values (all_logits) or n_vocab (the last token)
  bool all_logits = false;
  const LoraSet* lora = nullptr;  // adapters of this sequence (none: the base model)
};

class Model {
 public:
  // Opens and maps the file, reads the config and binds the weights. Throws slm::Error
  // naming the file and the key/tensor at fault.
  static std::unique_ptr<Model> load(const std::string& path);
  static std::unique_ptr<Model> from_gguf(std::shared_ptr<const GgufFile> file);
  ~Model();

  const ModelConfig& config() const { return *config_; }
  const Weights& weights() const { return *weights_; }
  const GgufFile& file() const { return *file_; }
  int n_vocab() const;
  size_t weight_bytes() const;  // bytes of tensor data mapped

  // Evaluates tokens[0..n) at positions pos0..pos0+n-1 of the sequence held in `cache`
  // (positions < pos0 must already be there). Writes n·n_vocab logits (all_logits) or the
  // last position's n_vocab logits. Throws slm::Error for an out-of-range token id or a
  // position past the cache's context.
  void forward(ThreadPool& pool, KvCache& cache, const int32_t* tokens, int n, int pos0,
               float* logits, bool all_logits, const LoraSet* lora = nullptr) const;

  // Several sequences (distinct caches) in one pass: every matrix product runs over all
  // their tokens at once, so the weights are read once per step for all of them
  // (continuous batching). Results equal separate forward() calls.
  void forward(ThreadPool& pool, const std::vector<SequenceBatch>& batch) const;

  // Context shift: of the n_past positions in `cache`, keeps [0, n_keep), drops the next
  // n_discard and moves the rest down to follow the kept ones, re-rotating each moved key by
  // RoPE (every layer with its own base, scaling and frequency factors) to its new position —
  // as llama.cpp's context shift does. Values and unrotated dims move as they are.
  void shift_cache(KvCache& cache, int n_keep, int n_discard, int n_past) const;

 private:
  Model() = default;
  std::shared_ptr<const GgufFile> file_;
  std::unique_ptr<ModelConfig> config_;
  std::unique_ptr<Weights> weights_;
};

}  // namespace slm

// Safetensors checkpoints: one `model.safetensors`, or shards listed by
// `model.safetensors.index.json`. Each file is memory-mapped and its header validated as the
// GGUF reader validates GGUF (sizes, offsets inside the file, no overlaps), so a bad checkpoint
// is refused with one line naming the file and the tensor before any conversion starts.
// Layout of a file: u64 little-endian N, N bytes of JSON {name: {dtype, shape, data_offsets}},
// then the data; offsets count from byte 8 + N.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace slm::convert {

enum class StDtype { F32, F16, BF16 };

struct StTensor {
  std::string name;
  StDtype dtype = StDtype::F32;
  std::vector<int64_t> shape;  // outermost first, as PyTorch writes it
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  std::string file;  // the shard it lies in (for messages)
  int64_t n_elements() const;
};

class SafetensorsSet {
 public:
  // Opens DIR/NAME.index.json and its shards, or DIR/NAME (NAME: model.safetensors, or
  // adapter_model.safetensors for a PEFT adapter). Throws slm::Error("FILE: ...") on any problem.
  static std::unique_ptr<SafetensorsSet> open_dir(const std::string& dir, const std::string& name = "model.safetensors");
  // One file image already in memory (the caller keeps it alive). Used by fuzzing and tests.
  static std::unique_ptr<SafetensorsSet> from_memory(const uint8_t* data, size_t size, const std::string& name);
  ~SafetensorsSet();
  SafetensorsSet(const SafetensorsSet&) = delete;
  SafetensorsSet& operator=(const SafetensorsSet&) = delete;

  const std::vector<StTensor>& tensors() const { return tensors_; }  // in file order, shard by shard
  const StTensor* find(const std::string& name) const;
  uint64_t total_bytes() const;
  // The tensor's values widened to float32 (exact for F16 and BF16): all of them, or `count`
  // from element `first` (the caller keeps the range inside the tensor).
  static void to_f32(const StTensor& t, float* dst);
  static void to_f32(const StTensor& t, int64_t first, int64_t count, float* dst);
  // Done with a tensor: drop its mapped pages from this process (the page cache keeps them),
  // so a conversion's resident memory follows the tensor in hand, not the checkpoint.
  void release(const StTensor& t) const;

 private:
  SafetensorsSet() = default;
  void add_file(const uint8_t* base, size_t size, const std::string& name);
  struct Mapping {
    const uint8_t* base;
    size_t size;
  };
  std::vector<Mapping> mappings_;
  std::vector<StTensor> tensors_;
  std::map<std::string, size_t> index_;
};

}  // namespace slm::convert

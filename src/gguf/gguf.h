// GgufFile: a validated, read-only, memory-mapped GGUF file (versions 2 and 3).
// GgufWriter: writes metadata and tensors with correct alignment, atomically (temp + rename).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "quant/types.h"
#include "slm/error.h"

namespace slm {

enum class GgufType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* gguf_type_name(GgufType t);  // "UINT32", "STRING", "ARRAY" ...

// One metadata value. Scalars live in the field their kind needs; arrays hold elements of
// one type (which may itself be ARRAY, for nested arrays).
struct GgufValue {
  GgufType type = GgufType::UINT8;
  uint64_t u = 0;       // UINT8/16/32/64 and BOOL (0/1)
  int64_t i = 0;        // INT8/16/32/64
  double f = 0;         // FLOAT32 (exact float value) / FLOAT64
  std::string str;      // STRING
  GgufType elem_type = GgufType::UINT8;  // ARRAY
  std::vector<GgufValue> arr;            // ARRAY

  bool is_integer() const;
  bool is_float() const { return type == GgufType::FLOAT32 || type == GgufType::FLOAT64; }
  // Integer value of any integer type (throws for others); floats via as_double.
  int64_t as_int() const;
  double as_double() const;  // any numeric type

  static GgufValue make_u32(uint32_t v);
  static GgufValue make_i32(int32_t v);
  static GgufValue make_u64(uint64_t v);
  static GgufValue make_f32(float v);
  static GgufValue make_bool(bool v);
  static GgufValue make_string(std::string v);
  static GgufValue make_array(GgufType elem, std::vector<GgufValue> v);
};

struct GgufTensor {
  std::string name;
  uint32_t n_dims = 0;
  int64_t ne[4] = {1, 1, 1, 1};  // ne[0] innermost (contiguous)
  GgmlType type = GgmlType::F32;
  uint64_t offset = 0;           // from the start of the data section
  uint64_t nbytes = 0;
  const uint8_t* data = nullptr; // inside the mapping
  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
  size_t row_size() const { return row_bytes(type, ne[0]); }
};

class GgufFile {
 public:
  // Opens, maps and validates the whole header. Throws slm::Error("FILE: ...") on any problem.
  static std::unique_ptr<GgufFile> open(const std::string& path);
  // Parses a file image already in memory (the caller keeps it alive). Used by fuzzing.
  static std::unique_ptr<GgufFile> from_memory(const uint8_t* data, size_t size,
                                               const std::string& name);
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  uint64_t file_size() const { return size_; }
  bool mapped() const { return mapped_; }  // tensor data lies in a read-only file mapping

  // Metadata in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* find(const std::string& key) const;  // nullptr when absent
  bool has(const std::string& key) const { return find(key) != nullptr; }

  // Typed access. Missing key or wrong type: slm::Error naming the key, the wanted type and
  // the actual one. Integer getters accept any integer type whose value fits.
  const GgufValue& get(const std::string& key) const;
  std::string get_string(const std::string& key) const;
  int64_t get_int(const std::string& key) const;
  uint32_t get_u32(const std::string& key) const;
  float get_f32(const std::string& key) const;   // FLOAT32 or FLOAT64
  bool get_bool(const std::string& key) const;
  const std::vector<GgufValue>& get_array(const std::string& key) const;
  std::vector<std::string> get_string_array(const std::string& key) const;
  std::vector<float> get_f32_array(const std::string& key) const;
  std::vector<int64_t> get_int_array(const std::string& key) const;
  // Defaults when absent (a present key of the wrong type still throws).
  std::string get_string_or(const std::string& key, const std::string& def) const;
  int64_t get_int_or(const std::string& key, int64_t def) const;
  float get_f32_or(const std::string& key, float def) const;
  bool get_bool_or(const std::string& key, bool def) const;

  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* find_tensor(const std::string& name) const;  // nullptr when absent

 private:
  GgufFile() = default;
  void parse();
  std::string path_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, size_t> kv_index_;
  std::vector<GgufTensor> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

class GgufWriter {
 public:
  explicit GgufWriter(uint32_t alignment = 32) : alignment_(alignment) {}
  // Sets (or replaces, keeping its position) a metadata key.
  void set(const std::string& key, GgufValue value);
  // Adds a tensor; `data` must hold row_bytes(type, ne[0]) * rows bytes and stay alive
  // until write() returns.
  void add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne,
                  const void* data, size_t nbytes);
  // Adds a tensor whose bytes are made only when write() reaches it: `fill` writes exactly
  // row_bytes(type, ne[0]) * rows bytes into the buffer it is given. One buffer (the largest
  // such tensor) is reused, so writing a converted model needs memory for one tensor, not all.
  using Fill = std::function<void(uint8_t* dst)>;
  void add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne, Fill fill);
  // Writes PATH.tmp then renames it to PATH. Throws slm::Error on I/O failure.
  void write(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> ne;
    const void* data;
    size_t nbytes;
    Fill fill;  // set when data is made at write time
  };
  uint32_t alignment_;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<Tensor> tensors_;
};

}  // namespace slm

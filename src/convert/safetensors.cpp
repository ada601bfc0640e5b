#include "convert/safetensors.h"
#include "convert/json_depth.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "quant/types.h"
#include "slm/error.h"

namespace slm::convert {
namespace {

using nlohmann::json;

// A header is a few hundred bytes per tensor; 100 MiB covers a million tensors and keeps a
// corrupt length from asking for gigabytes.
constexpr uint64_t kMaxHeader = 100ull << 20;

size_t dtype_size(StDtype d) { return d == StDtype::F32 ? 4 : 2; }

StDtype parse_dtype(const std::string& s, const std::string& where) {
  if (s == "F32") return StDtype::F32;
  if (s == "F16") return StDtype::F16;
  if (s == "BF16") return StDtype::BF16;
  if (s.rfind("F8", 0) == 0)
    throw Error(where + ": dtype " + s + " (FP8) is not supported; convert from the F32/F16/BF16 checkpoint");
  throw Error(where + ": dtype " + s + " is not supported (F32, F16 and BF16 are)");
}

std::string read_small_file(const std::string& path, size_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open: " + std::strerror(errno));
  in.seekg(0, std::ios::end);
  const std::streamoff n = in.tellg();
  if (n < 0 || static_cast<uint64_t>(n) > limit) throw Error(path + ": too large for a JSON index");
  std::string s(static_cast<size_t>(n), '\0');
  in.seekg(0);
  in.read(s.data(), n);
  if (!in) throw Error(path + ": read failed");
  return s;
}

}  // namespace

int64_t StTensor::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsSet::~SafetensorsSet() {
  for (const Mapping& m : mappings_) munmap(const_cast<uint8_t*>(m.base), m.size);
}

const StTensor* SafetensorsSet::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

uint64_t SafetensorsSet::total_bytes() const {
  uint64_t n = 0;
  for (const StTensor& t : tensors_) n += t.nbytes;
  return n;
}

void SafetensorsSet::to_f32(const StTensor& t, float* dst) { to_f32(t, 0, t.n_elements(), dst); }

void SafetensorsSet::to_f32(const StTensor& t, int64_t first, int64_t count, float* dst) {
  const uint8_t* src = t.data + static_cast<size_t>(first) * dtype_size(t.dtype);
  switch (t.dtype) {
    case StDtype::F32: std::memcpy(dst, src, static_cast<size_t>(count) * 4); break;
    case StDtype::F16:
      for (int64_t i = 0; i < count; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = fp16_to_f32(h);
      }
      break;
    case StDtype::BF16:
      for (int64_t i = 0; i < count; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = bf16_to_f32(h);
      }
      break;
  }
}

void SafetensorsSet::release(const StTensor& t) const {
  if (mappings_.empty() || t.nbytes == 0) return;  // an image in memory is the caller's
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(t.data) & ~(page - 1);
  const uintptr_t end = reinterpret_cast<uintptr_t>(t.data) + t.nbytes;
  // A read-only file mapping refaults from the file if a page shared with a neighbour is
  // needed again, so dropping whole pages around the tensor is safe.
  madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

void SafetensorsSet::add_file(const uint8_t* base, size_t size, const std::string& name) {
  if (size < 8) throw Error(name + ": too short for a safetensors file (" + std::to_string(size) + " bytes)");
  uint64_t n = 0;
  std::memcpy(&n, base, 8);
  if (n < 2 || n > kMaxHeader || n > size - 8)
    throw Error(name + ": header length " + std::to_string(n) + " does not fit the file (" +
                std::to_string(size) + " bytes)");
  json header;
  try {
    header = json::parse(reinterpret_cast<const char*>(base) + 8, reinterpret_cast<const char*>(base) + 8 + n,
                         json_depth_guard());
  } catch (const json::exception& e) {
    throw Error(name + ": header is not valid JSON: " + e.what());
  }
  if (!header.is_object()) throw Error(name + ": header is not a JSON object");
  const uint8_t* data = base + 8 + n;
  const uint64_t data_size = size - 8 - n;

  struct Span {
    uint64_t begin, end;
    size_t tensor;
  };
  std::vector<Span> spans;
  for (auto& [key, v] : header.items()) {
    if (key == "__metadata__") continue;
    const std::string where = name + ": tensor '" + key + "'";
    if (!v.is_object() || !v.contains("dtype") || !v["dtype"].is_string() || !v.contains("shape") ||
        !v["shape"].is_array() || !v.contains("data_offsets") || !v["data_offsets"].is_array() ||
        v["data_offsets"].size() != 2)
      throw Error(where + ": needs dtype (string), shape (array) and data_offsets ([begin, end])");
    StTensor t;
    t.name = key;
    t.file = name;
    t.dtype = parse_dtype(v["dtype"].get<std::string>(), where);
    if (v["shape"].size() > 4) throw Error(where + ": has " + std::to_string(v["shape"].size()) + " dimensions (at most 4)");
    uint64_t count = 1;
    for (const json& d : v["shape"]) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > (1ull << 40))
        throw Error(where + ": shape holds a value that is not a size");
      t.shape.push_back(d.get<int64_t>());
      count *= d.get<uint64_t>();
      if (count > (1ull << 40)) throw Error(where + ": shape is too large");
    }
    const json& off = v["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw Error(where + ": data_offsets must be two non-negative integers");
    const uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
    if (b > e || e > data_size)
      throw Error(where + ": data_offsets [" + std::to_string(b) + ", " + std::to_string(e) +
                  "] lie outside the data (" + std::to_string(data_size) + " bytes)");
    if (e - b != count * dtype_size(t.dtype))
      throw Error(where + ": holds " + std::to_string(e - b) + " bytes, its shape and dtype need " +
                  std::to_string(count * dtype_size(t.dtype)));
    t.data = data + b;
    t.nbytes = static_cast<size_t>(e - b);
    if (index_.count(key)) throw Error(where + ": appears twice (also in " + tensors_[index_[key]].file + ")");
    index_[key] = tensors_.size();
    spans.push_back({b, e, tensors_.size()});
    tensors_.push_back(std::move(t));
  }
  std::sort(spans.begin(), spans.end(), [](const Span& x, const Span& y) { return x.begin < y.begin; });
  for (size_t i = 1; i < spans.size(); ++i)
    if (spans[i].begin < spans[i - 1].end)
      throw Error(name + ": tensors '" + tensors_[spans[i - 1].tensor].name + "' and '" +
                  tensors_[spans[i].tensor].name + "' overlap");
}

std::unique_ptr<SafetensorsSet> SafetensorsSet::from_memory(const uint8_t* data, size_t size, const std::string& name) {
  std::unique_ptr<SafetensorsSet> s(new SafetensorsSet());
  s->add_file(data, size, name);
  return s;
}

std::unique_ptr<SafetensorsSet> SafetensorsSet::open_dir(const std::string& dir, const std::string& name) {
  namespace fs = std::filesystem;
  std::unique_ptr<SafetensorsSet> s(new SafetensorsSet());
  const std::string index_path = (fs::path(dir) / (name + ".index.json")).string();
  std::vector<std::string> files;                       // shard names, in order
  std::map<std::string, std::vector<std::string>> listed;  // shard -> tensors the index puts there
  std::error_code ec;
  if (fs::is_regular_file(index_path, ec)) {
    json idx;
    try {
      idx = json::parse(read_small_file(index_path, 256u << 20), json_depth_guard());
    } catch (const json::exception& e) {
      throw Error(index_path + ": not valid JSON: " + e.what());
    }
    if (!idx.is_object() || !idx.contains("weight_map") || !idx["weight_map"].is_object())
      throw Error(index_path + ": has no weight_map object");
    for (auto& [tensor, file] : idx["weight_map"].items()) {
      if (!file.is_string()) throw Error(index_path + ": weight_map entry '" + tensor + "' is not a file name");
      const std::string f = file.get<std::string>();
      if (f.empty() || f.find('/') != std::string::npos || f.find('\\') != std::string::npos || f == "." || f == "..")
        throw Error(index_path + ": weight_map entry '" + tensor + "' names '" + f + "', not a file in the folder");
      if (!listed.count(f)) files.push_back(f);
      listed[f].push_back(tensor);
    }
    if (files.empty()) throw Error(index_path + ": weight_map is empty");
    std::sort(files.begin(), files.end());  // the reference reads shards in name order
  } else if (fs::is_regular_file(fs::path(dir) / name, ec)) {
    files.push_back(name);
  } else {
    if (!fs::is_directory(dir, ec)) throw Error(dir + ": not a folder");
    throw Error(dir + ": no " + name + " or " + name + ".index.json");
  }
  for (const std::string& f : files) {
    const std::string path = (fs::path(dir) / f).string();
    const int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
    struct stat st {};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      throw Error(path + ": not a regular file");
    }
    const size_t size = static_cast<size_t>(st.st_size);
    void* p = size ? mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0) : nullptr;
    ::close(fd);
    if (size && p == MAP_FAILED) throw Error(path + ": cannot map: " + std::strerror(errno));
    if (size) s->mappings_.push_back({static_cast<const uint8_t*>(p), size});
    s->add_file(static_cast<const uint8_t*>(p), size, path);
    for (const std::string& t : listed[f]) {
      const StTensor* found = s->find(t);
      if (!found || found->file != path)
        throw Error(index_path + ": tensor '" + t + "' is listed in " + f + " but is not there");
    }
  }
  return s;
}

}  // namespace slm::convert

// GGUF reader. Trusts nothing: every count, length, shape and offset is checked against the
// file size with overflow-safe arithmetic before it is used or sized into an allocation.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <utility>

#include "gguf/gguf.h"

namespace slm {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as little-endian u32
constexpr int kMaxArrayDepth = 8;        // nested arrays deeper than this are rejected
constexpr uint64_t kMaxNameLen = 64;     // ggml's GGML_MAX_NAME

std::string hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// A bounds-checked cursor over the file image. Every read names the offset it failed at.
class Cursor {
 public:
  Cursor(const uint8_t* base, size_t size, const std::string& name)
      : base_(base), size_(size), name_(name) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  [[noreturn]] void fail(const std::string& what, uint64_t at) const {
    throw Error(name_ + ": at offset " + std::to_string(at) + ": " + what);
  }
  [[noreturn]] void fail(const std::string& what) const { fail(what, pos_); }

  void need(uint64_t n, const char* what) const {
    if (n > remaining())
      fail(std::string("unexpected end of file reading ") + what + " (need " +
           std::to_string(n) + " bytes, " + std::to_string(remaining()) + " left)");
  }
  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, base_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string read_string(const char* what) {
    uint64_t at = pos_;
    uint64_t len = read<uint64_t>(what);
    if (len > remaining())
      fail(std::string(what) + " length " + std::to_string(len) + " runs past the end of file", at);
    std::string s(reinterpret_cast<const char*>(base_ + pos_), len);
    pos_ += len;
    return s;
  }

 private:
  const uint8_t* base_;
  size_t size_;
  const std::string& name_;
  uint64_t pos_ = 0;
};

// Minimum bytes one element of a type occupies in the file: used to reject element counts
// that cannot possibly fit before allocating for them.
uint64_t min_value_bytes(GgufType t) {
  switch (t) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::BOOL: return 1;
    case GgufType::UINT16: case GgufType::INT16: return 2;
    case GgufType::UINT32: case GgufType::INT32: case GgufType::FLOAT32: return 4;
    case GgufType::UINT64: case GgufType::INT64: case GgufType::FLOAT64: return 8;
    case GgufType::STRING: return 8;
    case GgufType::ARRAY: return 12;
  }
  return 1;
}

bool valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::FLOAT64); }

GgufValue read_value(Cursor& c, GgufType type, const std::string& key, int depth) {
  GgufValue v;
  v.type = type;
  switch (type) {
    case GgufType::UINT8: v.u = c.read<uint8_t>("value"); break;
    case GgufType::INT8: v.i = c.read<int8_t>("value"); break;
    case GgufType::UINT16: v.u = c.read<uint16_t>("value"); break;
    case GgufType::INT16: v.i = c.read<int16_t>("value"); break;
    case GgufType::UINT32: v.u = c.read<uint32_t>("value"); break;
    case GgufType::INT32: v.i = c.read<int32_t>("value"); break;
    case GgufType::UINT64: v.u = c.read<uint64_t>("value"); break;
    case GgufType::INT64: v.i = c.read<int64_t>("value"); break;
    case GgufType::FLOAT32: v.f = c.read<float>("value"); break;
    case GgufType::FLOAT64: v.f = c.read<double>("value"); break;
    case GgufType::BOOL: {
      uint64_t at = c.pos();
      uint8_t b = c.read<uint8_t>("value");
      if (b > 1) c.fail("key '" + key + "': bool value " + std::to_string(b) + " is not 0 or 1", at);
      v.u = b;
      break;
    }
    case GgufType::STRING: v.str = c.read_string("string value"); break;
    case GgufType::ARRAY: {
      if (depth >= kMaxArrayDepth) c.fail("key '" + key + "': arrays nested too deeply");
      uint64_t at = c.pos();
      uint32_t et = c.read<uint32_t>("array element type");
      if (!valid_value_type(et))
        c.fail("key '" + key + "': unknown array element type " + std::to_string(et), at);
      uint64_t n = c.read<uint64_t>("array length");
      v.elem_type = static_cast<GgufType>(et);
      if (n > c.remaining() / min_value_bytes(v.elem_type))
        c.fail("key '" + key + "': array of " + std::to_string(n) +
                   " elements cannot fit in the rest of the file", at);
      v.arr.reserve(n);
      for (uint64_t k = 0; k < n; ++k) v.arr.push_back(read_value(c, v.elem_type, key, depth + 1));
      break;
    }
  }
  return v;
}

bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_mul_overflow(a, b, out); }
bool checked_add(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_add_overflow(a, b, out); }

}  // namespace

std::unique_ptr<GgufFile> GgufFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw Error(path + ": cannot stat: " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file");
  }
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->path_ = path;
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ > 0) {
    void* p = mmap(nullptr, f->size_, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      throw Error(path + ": cannot mmap: " + std::strerror(e));
    }
    f->base_ = static_cast<const uint8_t*>(p);
    f->mapped_ = true;
  }
  ::close(fd);
  f->parse();
  return f;
}

std::unique_ptr<GgufFile> GgufFile::from_memory(const uint8_t* data, size_t size,
                                                const std::string& name) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->path_ = name;
  f->base_ = data;
  f->size_ = size;
  f->parse();
  return f;
}

GgufFile::~GgufFile() {
  if (mapped_ && base_) munmap(const_cast<uint8_t*>(base_), size_);
}

void GgufFile::parse() {
  Cursor c(base_, size_, path_);
  uint32_t magic = c.read<uint32_t>("magic");
  if (magic != kMagic) c.fail("not a GGUF file (magic " + hex(magic) + ", want 0x46554747 \"GGUF\")", 0);
  version_ = c.read<uint32_t>("version");
  if (version_ != 2 && version_ != 3) {
    std::string why = "unsupported GGUF version " + std::to_string(version_) + " (supported: 2, 3)";
    if (version_ != 0 && (version_ & 0xFFFF) == 0) why += "; the file may be big-endian";
    c.fail(why, 4);
  }
  uint64_t at = c.pos();
  int64_t n_tensors = c.read<int64_t>("tensor count");
  int64_t n_kv = c.read<int64_t>("metadata count");
  if (n_tensors < 0) c.fail("negative tensor count " + std::to_string(n_tensors), at);
  if (n_kv < 0) c.fail("negative metadata count " + std::to_string(n_kv), at + 8);
  // A metadata record takes at least 8 (key length) + 4 (type) + 1 bytes; a tensor info at
  // least 8 + 4 + 8 + 4 + 8. Counts beyond what fits are rejected before any allocation.
  if (static_cast<uint64_t>(n_kv) > c.remaining() / 13)
    c.fail("metadata count " + std::to_string(n_kv) + " cannot fit in a file of " +
               std::to_string(size_) + " bytes", at + 8);
  if (static_cast<uint64_t>(n_tensors) > c.remaining() / 32)
    c.fail("tensor count " + std::to_string(n_tensors) + " cannot fit in a file of " +
               std::to_string(size_) + " bytes", at);

  kv_.reserve(static_cast<size_t>(n_kv));
  for (int64_t k = 0; k < n_kv; ++k) {
    uint64_t kat = c.pos();
    std::string key = c.read_string("metadata key");
    if (key.empty()) c.fail("metadata key #" + std::to_string(k) + " is empty", kat);
    if (kv_index_.count(key)) c.fail("duplicate metadata key '" + key + "'", kat);
    uint64_t tat = c.pos();
    uint32_t t = c.read<uint32_t>("value type");
    if (!valid_value_type(t))
      c.fail("key '" + key + "': unknown value type " + std::to_string(t), tat);
    GgufValue v = read_value(c, static_cast<GgufType>(t), key, 0);
    kv_index_[key] = kv_.size();
    kv_.emplace_back(std::move(key), std::move(v));
  }

  if (const GgufValue* a = find("general.alignment")) {
    if (a->type != GgufType::UINT32)
      throw Error(path_ + ": general.alignment has type " + gguf_type_name(a->type) +
                  ", want UINT32");
    if (a->u == 0 || (a->u & (a->u - 1)) != 0)
      throw Error(path_ + ": general.alignment " + std::to_string(a->u) + " is not a power of two");
    alignment_ = static_cast<uint32_t>(a->u);
  }

  tensors_.reserve(static_cast<size_t>(n_tensors));
  for (int64_t k = 0; k < n_tensors; ++k) {
    uint64_t tat = c.pos();
    GgufTensor t;
    t.name = c.read_string("tensor name");
    std::string who = "tensor '" + t.name + "'";
    if (t.name.empty()) c.fail("tensor #" + std::to_string(k) + " has an empty name", tat);
    if (t.name.size() >= kMaxNameLen)
      c.fail(who + ": name longer than " + std::to_string(kMaxNameLen - 1) + " bytes", tat);
    if (tensor_index_.count(t.name)) c.fail("duplicate " + who, tat);
    uint64_t dat = c.pos();
    t.n_dims = c.read<uint32_t>("tensor n_dims");
    if (t.n_dims < 1 || t.n_dims > 4)
      c.fail(who + ": n_dims " + std::to_string(t.n_dims) + " not in 1..4", dat);
    uint64_t n_el = 1;
    for (uint32_t d = 0; d < t.n_dims; ++d) {
      uint64_t nat = c.pos();
      int64_t ne = c.read<int64_t>("tensor dimension");
      if (ne < 1) c.fail(who + ": dimension " + std::to_string(d) + " is " + std::to_string(ne) + " (must be ≥ 1)", nat);
      if (!checked_mul(n_el, static_cast<uint64_t>(ne), &n_el) || n_el > (uint64_t{1} << 62))
        c.fail(who + ": element count overflows", nat);
      t.ne[d] = ne;
    }
    uint64_t yat = c.pos();
    uint32_t type = c.read<uint32_t>("tensor type");
    const TypeInfo* ti = type_info(type);
    if (!ti) c.fail(who + ": unknown ggml type id " + std::to_string(type), yat);
    t.type = static_cast<GgmlType>(type);
    if (t.ne[0] % ti->block_size != 0)
      c.fail(who + ": row length " + std::to_string(t.ne[0]) + " is not a multiple of " +
                 ti->name + "'s block size " + std::to_string(ti->block_size), dat);
    uint64_t oat = c.pos();
    t.offset = c.read<uint64_t>("tensor offset");
    if (t.offset % alignment_ != 0)
      c.fail(who + ": data offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
                 std::to_string(alignment_), oat);
    uint64_t rows = n_el / static_cast<uint64_t>(t.ne[0]);
    uint64_t rb;
    if (!checked_mul(static_cast<uint64_t>(t.ne[0] / ti->block_size), static_cast<uint64_t>(ti->type_size), &rb) ||
        !checked_mul(rows, rb, &t.nbytes))
      c.fail(who + ": byte size overflows", dat);
    tensor_index_[t.name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }

  // The data section starts at the next multiple of the alignment.
  uint64_t end = c.pos();
  uint64_t data = end + (alignment_ - end % alignment_) % alignment_;
  if (tensors_.empty()) {
    data_offset_ = std::min<uint64_t>(data, size_);
    return;
  }
  if (data > size_)
    throw Error(path_ + ": tensor data section at offset " + std::to_string(data) +
                " starts past the end of the file (" + std::to_string(size_) + " bytes)");
  data_offset_ = data;
  uint64_t data_size = size_ - data;

  // Every tensor inside the file, and no two overlapping.
  std::vector<size_t> order(tensors_.size());
  for (size_t k = 0; k < order.size(); ++k) {
    GgufTensor& t = tensors_[k];
    uint64_t tend;
    if (!checked_add(t.offset, t.nbytes, &tend) || tend > data_size)
      throw Error(path_ + ": tensor '" + t.name + "': data [" + std::to_string(t.offset) + ", +" +
                  std::to_string(t.nbytes) + ") runs past the end of the file (data section is " +
                  std::to_string(data_size) + " bytes)");
    t.data = base_ + data + t.offset;
    order[k] = k;
  }
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return tensors_[a].offset < tensors_[b].offset; });
  for (size_t k = 1; k < order.size(); ++k) {
    const GgufTensor& a = tensors_[order[k - 1]];
    const GgufTensor& b = tensors_[order[k]];
    if (a.offset + a.nbytes > b.offset)
      throw Error(path_ + ": tensors '" + a.name + "' and '" + b.name + "' overlap (offsets " +
                  std::to_string(a.offset) + " and " + std::to_string(b.offset) + ")");
  }
}

const GgufTensor* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace slm

// GGUF writer: version 3, little-endian, tensors padded to the alignment. Written to a
// temporary file in the destination directory and renamed into place, so a crash or a full
// disk never leaves a half-written model under the final name.
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "gguf/gguf.h"

namespace slm {
namespace {

class Out {
 public:
  explicit Out(const std::string& path) : path_(path), f_(std::fopen(path.c_str(), "wb")) {
    if (!f_) throw Error(path + ": cannot create: " + std::strerror(errno));
  }
  ~Out() {
    if (f_) std::fclose(f_);
  }
  void bytes(const void* p, size_t n) {
    if (n && std::fwrite(p, 1, n, f_) != n) throw Error(path_ + ": write failed: " + std::strerror(errno));
    pos_ += n;
  }
  template <typename T>
  void pod(T v) { bytes(&v, sizeof v); }
  void str(const std::string& s) {
    pod<uint64_t>(s.size());
    bytes(s.data(), s.size());
  }
  void pad_to(uint64_t align) {
    static const uint8_t zeros[256] = {};
    uint64_t n = (align - pos_ % align) % align;
    while (n) {
      size_t k = n < sizeof zeros ? n : sizeof zeros;
      bytes(zeros, k);
      n -= k;
    }
  }
  void close() {
    if (std::fflush(f_) != 0 || std::fclose(f_) != 0) {
      f_ = nullptr;
      throw Error(path_ + ": write failed: " + std::strerror(errno));
    }
    f_ = nullptr;
  }
  uint64_t pos() const { return pos_; }

 private:
  std::string path_;
  FILE* f_;
  uint64_t pos_ = 0;
};

void write_value(Out& o, const GgufValue& v) {
  switch (v.type) {
    case GgufType::UINT8: o.pod<uint8_t>(static_cast<uint8_t>(v.u)); break;
    case GgufType::INT8: o.pod<int8_t>(static_cast<int8_t>(v.i)); break;
    case GgufType::UINT16: o.pod<uint16_t>(static_cast<uint16_t>(v.u)); break;
    case GgufType::INT16: o.pod<int16_t>(static_cast<int16_t>(v.i)); break;
    case GgufType::UINT32: o.pod<uint32_t>(static_cast<uint32_t>(v.u)); break;
    case GgufType::INT32: o.pod<int32_t>(static_cast<int32_t>(v.i)); break;
    case GgufType::UINT64: o.pod<uint64_t>(v.u); break;
    case GgufType::INT64: o.pod<int64_t>(v.i); break;
    case GgufType::FLOAT32: o.pod<float>(static_cast<float>(v.f)); break;
    case GgufType::FLOAT64: o.pod<double>(v.f); break;
    case GgufType::BOOL: o.pod<uint8_t>(v.u ? 1 : 0); break;
    case GgufType::STRING: o.str(v.str); break;
    case GgufType::ARRAY:
      o.pod<uint32_t>(static_cast<uint32_t>(v.elem_type));
      o.pod<uint64_t>(v.arr.size());
      for (const GgufValue& e : v.arr) {
        if (e.type != v.elem_type) throw Error("GGUF writer: array element of the wrong type");
        write_value(o, e);
      }
      break;
  }
}

}  // namespace

void GgufWriter::set(const std::string& key, GgufValue value) {
  for (auto& kv : kv_)
    if (kv.first == key) {
      kv.second = std::move(value);
      return;
    }
  kv_.emplace_back(key, std::move(value));
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne, Fill fill) {
  if (ne.empty() || ne.size() > 4) throw Error("GGUF writer: tensor '" + name + "' must have 1..4 dims");
  int64_t rows = 1;
  for (size_t d = 1; d < ne.size(); ++d) rows *= ne[d];
  const size_t nbytes = row_bytes(type, ne[0]) * static_cast<size_t>(rows);
  add_tensor(name, type, std::move(ne), nullptr, nbytes);
  tensors_.back().fill = std::move(fill);
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne,
                            const void* data, size_t nbytes) {
  if (ne.empty() || ne.size() > 4) throw Error("GGUF writer: tensor '" + name + "' must have 1..4 dims");
  int64_t rows = 1;
  for (size_t d = 1; d < ne.size(); ++d) rows *= ne[d];
  if (ne[0] % type_info(type).block_size != 0)
    throw Error("GGUF writer: tensor '" + name + "' row length is not a multiple of the block size");
  if (row_bytes(type, ne[0]) * static_cast<size_t>(rows) != nbytes)
    throw Error("GGUF writer: tensor '" + name + "' has " + std::to_string(nbytes) +
                " bytes, its shape needs " + std::to_string(row_bytes(type, ne[0]) * rows));
  for (const Tensor& t : tensors_)
    if (t.name == name) throw Error("GGUF writer: duplicate tensor '" + name + "'");
  tensors_.push_back({name, type, std::move(ne), data, nbytes, nullptr});
}

void GgufWriter::write(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  try {
    Out o(tmp);
    o.pod<uint32_t>(0x46554747);
    o.pod<uint32_t>(3);
    o.pod<int64_t>(static_cast<int64_t>(tensors_.size()));
    // general.alignment is written when it differs from the default, as readers assume 32.
    bool has_align = false;
    for (auto& kv : kv_) has_align |= kv.first == "general.alignment";
    bool write_align = !has_align && alignment_ != 32;
    o.pod<int64_t>(static_cast<int64_t>(kv_.size() + (write_align ? 1 : 0)));
    for (auto& [key, v] : kv_) {
      o.str(key);
      o.pod<uint32_t>(static_cast<uint32_t>(v.type));
      write_value(o, v);
    }
    if (write_align) {
      o.str("general.alignment");
      o.pod<uint32_t>(static_cast<uint32_t>(GgufType::UINT32));
      o.pod<uint32_t>(alignment_);
    }
    uint64_t offset = 0;
    for (const Tensor& t : tensors_) {
      o.str(t.name);
      o.pod<uint32_t>(static_cast<uint32_t>(t.ne.size()));
      for (int64_t d : t.ne) o.pod<int64_t>(d);
      o.pod<uint32_t>(static_cast<uint32_t>(t.type));
      o.pod<uint64_t>(offset);
      offset += t.nbytes + (alignment_ - t.nbytes % alignment_) % alignment_;
    }
    o.pad_to(alignment_);
    std::vector<uint8_t> made;  // reused by every tensor made at write time
    for (const Tensor& t : tensors_) {
      if (t.fill) {
        made.resize(t.nbytes);
        t.fill(made.data());
        o.bytes(made.data(), t.nbytes);
      } else {
        o.bytes(t.data, t.nbytes);
      }
      o.pad_to(alignment_);
    }
    o.close();
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    std::remove(tmp.c_str());
    throw Error(path + ": cannot rename temporary file into place: " + std::strerror(e));
  }
}

}  // namespace slm

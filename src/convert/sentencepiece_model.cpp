#include "convert/sentencepiece_model.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_set>

#include "slm/error.h"

namespace slm::convert {

bool is_valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int len = 0;
    unsigned cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3, cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4, cp = c & 0x07;
    } else {
      return false;  // continuation byte, overlong 2-byte lead (C0/C1) or above F4
    }
    if (end - p < len) return false;
    for (int k = 1; k < len; ++k) {
      if ((p[k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[k] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return false;  // overlong
    if (cp >= 0xD800 && cp <= 0xDFFF) return false;                            // surrogate
    if (cp > 0x10FFFF) return false;
    p += len;
  }
  return true;
}

namespace {

enum WireType : unsigned { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kGroupStart = 3, kGroupEnd = 4, kFixed32 = 5 };

// A bounded cursor over one protobuf message. Offsets in errors count from the file start,
// so a message nested in another reports where the problem is in the file.
class ProtoReader {
 public:
  ProtoReader(const uint8_t* data, size_t size, size_t base, const std::string& name)
      : p_(data), end_(data + size), base_(base), start_(data), name_(name) {}

  bool done() const { return p_ == end_; }
  size_t offset() const { return base_ + static_cast<size_t>(p_ - start_); }

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(name_ + ": " + what + " at byte " + std::to_string(offset()));
  }

  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) fail("truncated varint");
      const uint8_t b = *p_++;
      // The 10th byte holds bit 63 only; more would overflow 64 bits.
      if (shift == 63 && b > 1) fail("varint longer than 64 bits");
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("varint longer than 10 bytes");
  }

  uint32_t fixed32() {
    if (end_ - p_ < 4) fail("truncated fixed32 field");
    const uint32_t v = uint32_t{p_[0]} | uint32_t{p_[1]} << 8 | uint32_t{p_[2]} << 16 | uint32_t{p_[3]} << 24;
    p_ += 4;
    return v;
  }

  // The bytes of a length-delimited field; *at (if given) gets the file offset they start at.
  std::string_view bytes(size_t* at = nullptr) {
    const uint64_t n = varint();
    if (n > static_cast<uint64_t>(end_ - p_)) fail("length " + std::to_string(n) + " runs past the end");
    if (at) *at = offset();
    std::string_view s(reinterpret_cast<const char*>(p_), static_cast<size_t>(n));
    p_ += n;
    return s;
  }

  // Reads a tag; returns the field number and sets *wire.
  uint32_t tag(unsigned* wire) {
    const uint64_t t = varint();
    *wire = static_cast<unsigned>(t & 7);
    const uint64_t field = t >> 3;
    if (field == 0 || field > 0x1FFFFFFF) fail("invalid field number " + std::to_string(field));
    if (*wire == kGroupStart || *wire == kGroupEnd) fail("group field (wire type " + std::to_string(*wire) + ") not supported");
    if (*wire > kFixed32) fail("invalid wire type " + std::to_string(*wire));
    return static_cast<uint32_t>(field);
  }

  void skip(unsigned wire) {
    switch (wire) {
      case kVarint: varint(); break;
      case kFixed64:
        if (end_ - p_ < 8) fail("truncated fixed64 field");
        p_ += 8;
        break;
      case kLengthDelimited: bytes(); break;
      case kFixed32: fixed32(); break;
      default: fail("invalid wire type " + std::to_string(wire));
    }
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
  size_t base_;
  const uint8_t* start_;
  const std::string& name_;
};

// Fields of ModelProto.SentencePiece.
enum PieceField : uint32_t { kPieceText = 1, kPieceScore = 2, kPieceType = 3 };
constexpr uint32_t kModelPieces = 1;  // ModelProto.pieces

SpPiece parse_piece(std::string_view msg, size_t at, size_t index, const std::string& name) {
  ProtoReader r(reinterpret_cast<const uint8_t*>(msg.data()), msg.size(), at, name);
  const std::string which = "piece " + std::to_string(index);
  SpPiece piece;
  while (!r.done()) {
    unsigned wire = 0;
    const uint32_t field = r.tag(&wire);
    const auto want = [&](unsigned w) {
      if (wire != w) r.fail(which + ": field " + std::to_string(field) + " has wire type " + std::to_string(wire));
    };
    if (field == kPieceText) {
      want(kLengthDelimited);
      piece.piece = std::string(r.bytes());
    } else if (field == kPieceScore) {
      want(kFixed32);
      const uint32_t bits = r.fixed32();
      std::memcpy(&piece.score, &bits, 4);
    } else if (field == kPieceType) {
      want(kVarint);
      const uint64_t t = r.varint();
      // proto2 enums are closed: a value outside the enum means a file we do not understand.
      if (t < kSpNormal || t > kSpByte) r.fail(which + ": unknown piece type " + std::to_string(static_cast<int64_t>(t)));
      piece.type = static_cast<int>(t);
    } else {
      r.skip(wire);
    }
  }
  if (piece.piece.empty()) throw Error(name + ": " + which + " is empty");
  if (!is_valid_utf8(piece.piece)) throw Error(name + ": " + which + " is not valid UTF-8");
  return piece;
}

// Walks the top-level fields once, checking their framing and counting the pieces, so that
// a file claiming millions of pieces is refused before anything is allocated for them.
size_t count_pieces(const uint8_t* data, size_t size, const std::string& name) {
  ProtoReader r(data, size, 0, name);
  size_t n = 0;
  while (!r.done()) {
    unsigned wire = 0;
    const uint32_t field = r.tag(&wire);
    if (field == kModelPieces) {
      if (wire != kLengthDelimited) r.fail("pieces field has wire type " + std::to_string(wire));
      if (++n > kMaxSentencePieces) throw Error(name + ": more than " + std::to_string(kMaxSentencePieces) + " pieces");
    }
    r.skip(wire);
  }
  return n;
}

}  // namespace

std::vector<SpPiece> parse_sentencepiece_model(const uint8_t* data, size_t size, const std::string& name) {
  if (size == 0) throw Error(name + ": empty file, not a SentencePiece model");
  const size_t count = count_pieces(data, size, name);
  if (count == 0) throw Error(name + ": no pieces, not a SentencePiece model");
  std::vector<SpPiece> pieces;
  pieces.reserve(count);
  // SentencePiece refuses a model that defines one piece twice; so do we, since the
  // vocabulary would then map one text to two ids.
  std::unordered_set<std::string_view> seen;
  seen.reserve(count);
  ProtoReader r(data, size, 0, name);
  while (!r.done()) {
    unsigned wire = 0;
    const uint32_t field = r.tag(&wire);
    if (field != kModelPieces) {
      r.skip(wire);
      continue;
    }
    size_t at = 0;
    const std::string_view msg = r.bytes(&at);
    pieces.push_back(parse_piece(msg, at, pieces.size(), name));
  }
  // Views into `pieces`, which no longer grows.
  for (size_t i = 0; i < pieces.size(); ++i)
    if (!seen.insert(pieces[i].piece).second)
      throw Error(name + ": piece " + std::to_string(i) + " repeats an earlier piece");
  return pieces;
}

namespace {
struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};
}  // namespace

std::vector<SpPiece> read_sentencepiece_model(const std::string& path) {
  std::unique_ptr<FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
  std::string data;
  char buf[1 << 16];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) {
    if (data.size() + n > kMaxSentencePieceFileBytes)
      throw Error(path + ": larger than " + std::to_string(kMaxSentencePieceFileBytes >> 20) +
                  " MiB, not a SentencePiece model");
    data.append(buf, n);
  }
  if (std::ferror(f.get())) throw Error(path + ": read error (" + std::strerror(errno) + ")");
  return parse_sentencepiece_model(reinterpret_cast<const uint8_t*>(data.data()), data.size(), path);
}

}  // namespace slm::convert

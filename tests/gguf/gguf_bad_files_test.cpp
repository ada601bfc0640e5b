// Hand-made bad files, each rejected with a message that says what is wrong; and a
// deterministic mutation run over a real fixture: every variant is read or rejected with an
// slm::Error, never a crash (the CI sanitizer build runs this under ASan + UBSan).
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "common/shared.h"
#include "gguf/gguf.h"

using namespace slm;

namespace {

// Builds GGUF images byte by byte.
struct Bytes {
  std::vector<uint8_t> b;
  template <typename T>
  Bytes& pod(T v) {
    size_t n = b.size();
    b.resize(n + sizeof v);
    std::memcpy(b.data() + n, &v, sizeof v);
    return *this;
  }
  Bytes& str(const std::string& s) {
    pod<uint64_t>(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& header(int64_t n_tensors, int64_t n_kv) {
    return pod<uint32_t>(0x46554747).pod<uint32_t>(3).pod<int64_t>(n_tensors).pod<int64_t>(n_kv);
  }
  Bytes& tensor(const std::string& name, std::vector<int64_t> ne, uint32_t type, uint64_t off) {
    str(name).pod<uint32_t>(static_cast<uint32_t>(ne.size()));
    for (int64_t d : ne) pod<int64_t>(d);
    return pod<uint32_t>(type).pod<uint64_t>(off);
  }
  Bytes& pad(size_t align) {
    while (b.size() % align) b.push_back(0);
    return *this;
  }
  Bytes& zeros(size_t n) {
    b.resize(b.size() + n, 0);
    return *this;
  }
};

std::string error_of(const Bytes& x) {
  try {
    GgufFile::from_memory(x.b.data(), x.b.size(), "bad.gguf");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void expect_error(const Bytes& x, const std::string& needle) {
  std::string m = error_of(x);
  ASSERT_FALSE(m.empty()) << "accepted a bad file; wanted an error containing: " << needle;
  EXPECT_NE(m.find(needle), std::string::npos) << "message: " << m;
  EXPECT_EQ(m.rfind("bad.gguf", 0), 0u) << "message should start with the file name: " << m;
  EXPECT_EQ(m.find('\n'), std::string::npos) << "one line: " << m;
}

}  // namespace

TEST(GgufBadFiles, GoodMinimalFileIsRead) {
  Bytes x;
  x.header(1, 1).str("general.architecture").pod<uint32_t>(8).str("llama");
  x.tensor("w", {32, 2}, 0, 0).pad(32).zeros(32 * 2 * 4);
  auto f = GgufFile::from_memory(x.b.data(), x.b.size(), "good.gguf");
  EXPECT_EQ(f->tensors().size(), 1u);
  EXPECT_EQ(f->find_tensor("w")->nbytes, 256u);
}

TEST(GgufBadFiles, Messages) {
  { Bytes x; x.pod<uint32_t>(0x46554747).pod<uint16_t>(3); expect_error(x, "unexpected end of file reading version"); }
  { Bytes x; x.pod<uint32_t>(0x12345678).pod<uint32_t>(3); expect_error(x, "not a GGUF file"); }
  { Bytes x; x.pod<uint32_t>(0x46554747).pod<uint32_t>(1).pod<int64_t>(0).pod<int64_t>(0); expect_error(x, "unsupported GGUF version 1"); }
  { Bytes x; x.pod<uint32_t>(0x46554747).pod<uint32_t>(0x03000000).pod<int64_t>(0).pod<int64_t>(0); expect_error(x, "big-endian"); }
  { Bytes x; x.header(0, 1000000000); expect_error(x, "metadata count 1000000000 cannot fit"); }
  { Bytes x; x.header(1ll << 40, 0); expect_error(x, "tensor count"); }
  { Bytes x; x.header(0, -1); expect_error(x, "negative metadata count"); }
  { Bytes x; x.header(0, 1).pod<uint64_t>(1ull << 40).zeros(16); expect_error(x, "metadata key length 1099511627776 runs past the end of file"); }
  { Bytes x; x.header(0, 1).str("k").pod<uint32_t>(8).pod<uint64_t>(999).zeros(8); expect_error(x, "string value length 999 runs past"); }
  { Bytes x; x.header(0, 1).str("k").pod<uint32_t>(13).zeros(8); expect_error(x, "key 'k': unknown value type 13"); }
  { Bytes x; x.header(0, 1).str("k").pod<uint32_t>(9).pod<uint32_t>(4).pod<uint64_t>(1ull << 61); expect_error(x, "key 'k': array of 2305843009213693952 elements cannot fit"); }
  { Bytes x; x.header(0, 1).str("k").pod<uint32_t>(9).pod<uint32_t>(99).pod<uint64_t>(0); expect_error(x, "unknown array element type 99"); }
  { Bytes x; x.header(0, 2).str("k").pod<uint32_t>(4).pod<uint32_t>(1).str("k").pod<uint32_t>(4).pod<uint32_t>(1); expect_error(x, "duplicate metadata key 'k'"); }
  { Bytes x; x.header(0, 1).str("general.alignment").pod<uint32_t>(4).pod<uint32_t>(48); expect_error(x, "not a power of two"); }
  { Bytes x; x.header(1, 0).tensor("w", {32}, 77, 0).pad(32).zeros(128); expect_error(x, "tensor 'w': unknown ggml type id 77"); }
  { Bytes x; x.header(1, 0).tensor("w", {32, 1, 1, 1, 1}, 0, 0).pad(32).zeros(128); expect_error(x, "tensor 'w': n_dims 5 not in 1..4"); }
  { Bytes x; x.header(1, 0).tensor("w", {32, 0}, 0, 0).pad(32).zeros(128); expect_error(x, "tensor 'w': dimension 1 is 0"); }
  { Bytes x; x.header(1, 0).tensor("w", {33}, 2, 0).pad(32).zeros(128); expect_error(x, "not a multiple of Q4_0's block size 32"); }
  { Bytes x; x.header(1, 0).tensor("w", {8}, 0, 16).pad(32).zeros(128); expect_error(x, "tensor 'w': data offset 16 is not a multiple of the alignment 32"); }
  { Bytes x; x.header(1, 0).tensor("w", {64}, 0, 0).pad(32).zeros(100); expect_error(x, "tensor 'w': data [0, +256) runs past the end of the file"); }
  { Bytes x; x.header(1, 0).tensor("w", {8}, 0, 1ull << 62).pad(32).zeros(32); expect_error(x, "runs past the end of the file"); }
  { Bytes x; x.header(2, 0).tensor("a", {16}, 0, 0).tensor("b", {16}, 0, 32).pad(32).zeros(128); expect_error(x, "tensors 'a' and 'b' overlap"); }
  { Bytes x; x.header(2, 0).tensor("a", {8}, 0, 0).tensor("a", {8}, 0, 32).pad(32).zeros(64); expect_error(x, "duplicate tensor 'a'"); }
  { Bytes x; x.header(1, 0).tensor("w", {1ll << 40, 1ll << 40}, 0, 0).pad(32); expect_error(x, "element count overflows"); }
  { Bytes x; x.header(1, 0).tensor(std::string(80, 'n'), {8}, 0, 0).pad(32).zeros(32); expect_error(x, "name longer than 63 bytes"); }
  { Bytes x; x.header(1, 0).tensor("w", {8}, 0, 0); expect_error(x, "tensor data section at offset 64 starts past the end of the file"); }
}

TEST(GgufBadFiles, OpenNamesTheFile) {
  try {
    GgufFile::open("/nonexistent/model.gguf");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model.gguf: cannot open"), std::string::npos);
  }
  EXPECT_THROW(GgufFile::open("/tmp"), Error);
}

// Reads every byte of every tensor so a bad offset would show as an out-of-bounds read under
// ASan (the image lives in a heap buffer of exactly the file's size).
static uint64_t touch(const GgufFile& f) {
  uint64_t sum = 0;
  for (const GgufTensor& t : f.tensors())
    for (uint64_t k = 0; k < t.nbytes; k += 61) sum += t.data[k];
  for (const auto& kv : f.metadata()) sum += kv.first.size();
  return sum;
}

TEST(GgufMutation, TwentyThousandCorruptVariantsReadOrRejected) {
  std::string orig = test::read_file(test::shared("fixtures/llama-q2_k.gguf"));
  auto good = GgufFile::from_memory(reinterpret_cast<const uint8_t*>(orig.data()), orig.size(), "orig");
  const uint64_t header_end = good->data_offset();
  // Section boundaries: where truncation is most interesting.
  std::vector<uint64_t> cuts = {0, 3, 4, 7, 8, 15, 16, 23, 24, header_end - 1, header_end, orig.size() - 1};
  std::mt19937_64 rng(12345);
  int read_ok = 0, rejected = 0;
  int truncated = 0, truncated_rejected = 0;
  std::vector<uint8_t> buf;
  const int kVariants = 20000;
  for (int v = 0; v < kVariants; ++v) {
    buf.assign(orig.begin(), orig.end());
    int kind = v % 5;
    if (kind == 0) {  // bit flips in the header
      int flips = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < flips; ++k) buf[rng() % header_end] ^= static_cast<uint8_t>(1u << (rng() % 8));
    } else if (kind == 1) {  // truncation, at section boundaries and at random points
      uint64_t cut = (v / 5) < static_cast<int>(cuts.size()) ? cuts[v / 5] : rng() % (header_end + 64);
      buf.resize(std::min<uint64_t>(cut, buf.size()));
    } else if (kind == 2) {  // a huge count or length at a random 8-aligned header position
      uint64_t pos = (rng() % (header_end / 8)) * 8;
      uint64_t huge[] = {~0ull, 1ull << 63, 1ull << 32, 0xFFFFFFFFull, 1ull << 40};
      uint64_t val = huge[rng() % 5];
      std::memcpy(&buf[pos], &val, std::min<uint64_t>(8, buf.size() - pos));
    } else if (kind == 3) {  // random byte overwrites anywhere before the data
      int n = 1 + static_cast<int>(rng() % 8);
      for (int k = 0; k < n; ++k) buf[rng() % header_end] = static_cast<uint8_t>(rng());
    } else {  // unaligned 4-byte garbage, then truncation
      uint64_t pos = rng() % (header_end - 4);
      uint32_t val = static_cast<uint32_t>(rng());
      std::memcpy(&buf[pos], &val, 4);
      buf.resize(header_end + rng() % (buf.size() - header_end));
    }
    std::vector<uint8_t> exact(buf.begin(), buf.end());  // heap block of exactly this size
    try {
      truncated += kind == 1;
      auto f = GgufFile::from_memory(exact.data(), exact.size(), "mutant");
      touch(*f);
      // What is accepted must describe a file that fits the bytes it was read from.
      for (const GgufTensor& t : f->tensors()) {
        ASSERT_GE(t.data, exact.data()) << t.name;
        ASSERT_LE(t.data + t.nbytes, exact.data() + exact.size()) << t.name;
      }
      ++read_ok;
    } catch (const Error&) {
      ++rejected;
      truncated_rejected += kind == 1;
    }
  }
  // A file cut anywhere before its last tensor's end is never valid: every one is refused.
  EXPECT_EQ(truncated_rejected, truncated);
  EXPECT_EQ(truncated, kVariants / 5);
  EXPECT_GT(rejected, kVariants / 4);  // the mutations do bite
  std::printf("mutation: %d read, %d rejected\n", read_ok, rejected);
}

// `slm quantize` end to end on the shared fixtures.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/shared.h"
#include "gguf/gguf.h"
#include "quant/quant.h"

namespace slm {
namespace {

namespace fs = std::filesystem;

class QuantizeCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("slm-quant-test-" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs slm quantize; returns its exit status, stderr+stdout in *out.
  int quantize(const std::string& in, const std::string& out, const std::string& type,
               const std::string& extra = "", std::string* log = nullptr) {
    int rc = -1;
    std::string s = test::run_cmd(test::slm_bin() + " quantize '" + in + "' '" + out + "' " + type +
                                      " " + extra + " 2>&1",
                                  &rc);
    if (log) *log = s;
    return rc;
  }
  std::string tmp(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

std::vector<float> dequantize_all(const GgufTensor& t) {
  std::vector<float> v(static_cast<size_t>(t.n_elements()));
  for (int64_t r = 0; r < t.n_rows(); ++r)
    dequantize_row(t.type, t.data + r * t.row_size(), v.data() + r * t.ne[0], t.ne[0]);
  return v;
}

bool same_value(const GgufValue& a, const GgufValue& b) {
  if (a.type != b.type || a.u != b.u || a.i != b.i || a.str != b.str || a.arr.size() != b.arr.size())
    return false;
  if (!(a.f == b.f || (std::isnan(a.f) && std::isnan(b.f)))) return false;
  for (size_t k = 0; k < a.arr.size(); ++k)
    if (!same_value(a.arr[k], b.arr[k])) return false;
  return true;
}

// Q8_0 from the F32 model reproduces llama.cpp's Q8_0 file tensor for tensor, byte for byte,
// and keeps every metadata key.
TEST_F(QuantizeCli, Q8_0MatchesLlamaCppFile) {
  const std::string out = tmp("llama-q8_0.gguf");
  std::string log;
  ASSERT_EQ(quantize(test::shared("fixtures/llama-f32.gguf"), out, "q8_0", "--threads 2", &log), 0) << log;
  auto got = GgufFile::open(out);
  auto ref = GgufFile::open(test::shared("fixtures/llama-q8_0.gguf"));
  auto src = GgufFile::open(test::shared("fixtures/llama-f32.gguf"));
  ASSERT_EQ(got->tensors().size(), ref->tensors().size());
  for (const GgufTensor& rt : ref->tensors()) {
    SCOPED_TRACE(rt.name);
    const GgufTensor* t = got->find_tensor(rt.name);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->type, rt.type);
    ASSERT_EQ(t->nbytes, rt.nbytes);
    EXPECT_EQ(std::memcmp(t->data, rt.data, rt.nbytes), 0);
  }
  EXPECT_EQ(got->get_int("general.file_type"), 7);
  EXPECT_EQ(got->get_int("general.quantization_version"), 2);
  for (const auto& [key, value] : src->metadata()) {
    if (key == "general.file_type") continue;
    const GgufValue* v = got->find(key);
    ASSERT_NE(v, nullptr) << key;
    EXPECT_TRUE(same_value(*v, value)) << key;
  }
}

// A mixture: the types are those llama.cpp chose, the bytes are llama.cpp's, and the values
// stay close to the source.
TEST_F(QuantizeCli, Q4_K_MTypesAndValues) {
  for (const char* fam : {"llama", "granitemoe", "gemma"}) {
    SCOPED_TRACE(fam);
    const std::string out = tmp(std::string(fam) + "-q4_k_m.gguf");
    std::string log;
    ASSERT_EQ(quantize(test::shared(std::string("fixtures/") + fam + "-f32.gguf"), out, "Q4_K_M", "", &log), 0)
        << log;
    auto want = nlohmann::json::parse(
        test::read_file(test::shared(std::string("fixtures/") + fam + "-q4_k_m.json")))["tensor_types"];
    auto got = GgufFile::open(out);
    auto src = GgufFile::open(test::shared(std::string("fixtures/") + fam + "-f32.gguf"));
    auto ref = GgufFile::open(test::shared(std::string("fixtures/") + fam + "-q4_k_m.gguf"));
    EXPECT_EQ(got->get_int("general.file_type"), 15);
    ASSERT_EQ(got->tensors().size(), want.size());
    for (const GgufTensor& t : got->tensors()) {
      SCOPED_TRACE(t.name);
      EXPECT_EQ(type_name(t.type), want[t.name].get<std::string>());
      const GgufTensor* r = ref->find_tensor(t.name);
      ASSERT_NE(r, nullptr);
      ASSERT_EQ(r->nbytes, t.nbytes);
      EXPECT_EQ(std::memcmp(r->data, t.data, t.nbytes), 0) << "bytes differ from llama.cpp's";
      const GgufTensor* s = src->find_tensor(t.name);
      ASSERT_NE(s, nullptr);
      ASSERT_EQ(s->n_elements(), t.n_elements());
      const auto a = dequantize_all(*s), b = dequantize_all(t);
      double err = 0, energy = 0;
      for (size_t i = 0; i < a.size(); ++i) {
        err += double(a[i] - b[i]) * (a[i] - b[i]);
        energy += double(a[i]) * a[i];
      }
      // 4-bit formats lose ~7% rms on random weights (see test_roundtrip); F32 tensors nothing.
      EXPECT_LE(std::sqrt(err / energy), t.type == GgmlType::F32 ? 0.0 : 0.1);
    }
  }
}

// A quantized source is decoded first: Q8_0 → F32 gives exactly the Q8_0 values, and
// Q8_0 → Q4_0 works.
TEST_F(QuantizeCli, QuantizedSourceAndThreadsAgree) {
  const std::string src_path = test::shared("fixtures/llama-q8_0.gguf");
  ASSERT_EQ(quantize(src_path, tmp("f32.gguf"), "F32"), 0);
  auto src = GgufFile::open(src_path);
  auto f32 = GgufFile::open(tmp("f32.gguf"));
  for (const GgufTensor& t : src->tensors()) {
    const GgufTensor* o = f32->find_tensor(t.name);
    ASSERT_NE(o, nullptr);
    EXPECT_EQ(o->type, GgmlType::F32);
    const auto a = dequantize_all(t);
    ASSERT_EQ(o->nbytes, a.size() * 4);
    EXPECT_EQ(std::memcmp(o->data, a.data(), o->nbytes), 0) << t.name;
  }
  // Requantizing stacks two roundings: refused unless asked for.
  std::string log;
  EXPECT_EQ(quantize(src_path, tmp("q4_0.gguf"), "q4_0", "", &log), 1);
  EXPECT_NE(log.find("already quantized"), std::string::npos) << log;
  EXPECT_NE(log.find("--allow-requantize"), std::string::npos) << log;
  ASSERT_EQ(quantize(src_path, tmp("q4_1.gguf"), "q4_0", "-t 1 --allow-requantize"), 0);
  ASSERT_EQ(quantize(src_path, tmp("q4_2.gguf"), "q4_0", "-t 3 --allow-requantize"), 0);
  EXPECT_EQ(test::read_file(tmp("q4_1.gguf")), test::read_file(tmp("q4_2.gguf")));
  EXPECT_EQ(GgufFile::open(tmp("q4_1.gguf"))->find_tensor("blk.0.ffn_up.weight")->type, GgmlType::Q4_0);
}

TEST_F(QuantizeCli, Errors) {
  std::string log;
  EXPECT_NE(quantize(test::shared("fixtures/llama-f32.gguf"), tmp("x.gguf"), "q4_k_x", "", &log), 0);
  EXPECT_NE(log.find("q4_k_x"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(tmp("x.gguf")));
  EXPECT_NE(quantize(tmp("missing.gguf"), tmp("x.gguf"), "q8_0"), 0);
  // Not a GGUF file: the reader's error, one line, non-zero exit.
  { std::ofstream(tmp("bad.gguf")) << "not a gguf"; }
  EXPECT_NE(quantize(tmp("bad.gguf"), tmp("x.gguf"), "q8_0", "", &log), 0);
  EXPECT_NE(log.find("bad.gguf"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(tmp("x.gguf")));
}

}  // namespace
}  // namespace slm

// Our dequantization and reference quantization against llama.cpp's own outputs, taken
// from the shared fixtures (see /work/shared/fixtures/README.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "common/shared.h"
#include "gguf/gguf.h"
#include "quant/quant.h"

namespace slm {
namespace {

namespace fs = std::filesystem;

struct DequantCase {
  std::string gguf, tensor, type, f32;
};

// Every fixture .json that names a dequantized tensor, one case per model file.
std::vector<DequantCase> dequant_cases() {
  std::map<std::string, DequantCase> by_file;
  for (const auto& e : fs::directory_iterator(test::shared("fixtures"))) {
    const std::string name = e.path().filename().string();
    if (e.path().extension() != ".json" || name.find(".info.") != std::string::npos) continue;
    auto j = nlohmann::json::parse(test::read_file(e.path().string()));
    if (!j.contains("dequant")) continue;
    const auto& dq = j["dequant"];
    by_file[j["file"]] = {j["file"], dq["tensor"], dq["type"], dq["file"]};
  }
  std::vector<DequantCase> v;
  for (auto& [k, c] : by_file) v.push_back(c);
  return v;
}

std::vector<float> dequantize_tensor(const GgufTensor& t) {
  std::vector<float> out(static_cast<size_t>(t.n_elements()));
  for (int64_t r = 0; r < t.n_rows(); ++r)
    dequantize_row(t.type, t.data + r * t.row_size(), out.data() + r * t.ne[0], t.ne[0]);
  return out;
}

TEST(QuantFixtures, DequantizeMatchesReferenceBitForBit) {
  auto cases = dequant_cases();
  // Every *.dequant.ffn_down.f32 file in the folder must be covered by some .json.
  size_t f32_files = 0;
  for (const auto& e : fs::directory_iterator(test::shared("fixtures")))
    if (e.path().filename().string().ends_with(".dequant.ffn_down.f32")) ++f32_files;
  ASSERT_EQ(cases.size(), f32_files);
  ASSERT_GE(cases.size(), 20u);

  std::set<std::string> types_seen;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.gguf + " " + c.tensor + " " + c.type);
    auto f = GgufFile::open(test::shared("fixtures/" + c.gguf));
    const GgufTensor* t = f->find_tensor(c.tensor);
    ASSERT_NE(t, nullptr);
    EXPECT_STREQ(type_name(t->type), c.type.c_str());
    std::vector<float> ref = test::read_f32(test::shared("fixtures/" + c.f32));
    ASSERT_EQ(ref.size(), static_cast<size_t>(t->n_elements()));
    std::vector<float> got = dequantize_tensor(*t);
    // Compare bits, not values: -0 vs +0 or a last-ulp difference would be a format bug.
    size_t mismatches = 0, first = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      if (std::memcmp(&ref[i], &got[i], 4) != 0) {
        if (!mismatches) first = i;
        ++mismatches;
      }
    }
    EXPECT_EQ(mismatches, 0u) << "first at " << first << ": got " << got[first] << " want "
                              << ref[first];
    types_seen.insert(c.type);
  }
  // The fixtures exercise these formats; if one disappeared the test would silently weaken.
  for (const char* ty : {"F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q4_K",
                         "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS"})
    EXPECT_TRUE(types_seen.count(ty)) << ty;
}

// Quantizing the F32 model's tensors must give llama.cpp's blocks byte for byte, for the
// formats whose reference quantizer slm reproduces exactly.
void expect_byte_identical(const std::string& f32_file, const std::string& q_file, GgmlType type) {
  auto src = GgufFile::open(test::shared("fixtures/" + f32_file));
  auto ref = GgufFile::open(test::shared("fixtures/" + q_file));
  int checked = 0;
  for (const GgufTensor& rt : ref->tensors()) {
    if (rt.type != type) continue;
    SCOPED_TRACE(q_file + ": " + rt.name);
    const GgufTensor* st = src->find_tensor(rt.name);
    ASSERT_NE(st, nullptr);
    ASSERT_EQ(st->type, GgmlType::F32);
    ASSERT_EQ(st->n_elements(), rt.n_elements());
    std::vector<uint8_t> got(rt.nbytes);
    const auto* x = reinterpret_cast<const float*>(st->data);
    for (int64_t r = 0; r < rt.n_rows(); ++r)
      quantize_row(type, x + r * rt.ne[0], got.data() + r * rt.row_size(), rt.ne[0]);
    size_t diff = 0;
    for (size_t i = 0; i < got.size(); ++i) diff += got[i] != rt.data[i];
    EXPECT_EQ(diff, 0u) << "bytes differ";
    ++checked;
  }
  EXPECT_GE(checked, 1) << q_file << " holds no " << type_name(type) << " tensor";
}

TEST(QuantFixtures, Q8_0QuantizationIsByteIdentical) {
  for (const char* fam : {"llama", "llama-tied", "mixtral", "phi3", "gemma", "gemma2", "gemma3",
                          "openelm", "granite", "granitemoe"})
    expect_byte_identical(std::string(fam) + "-f32.gguf", std::string(fam) + "-q8_0.gguf",
                          GgmlType::Q8_0);
}

TEST(QuantFixtures, Q4_0QuantizationIsByteIdentical) {
  expect_byte_identical("llama-f32.gguf", "llama-q4_0.gguf", GgmlType::Q4_0);
}

TEST(QuantFixtures, Q4_1QuantizationIsByteIdentical) {
  expect_byte_identical("llama-f32.gguf", "llama-q4_1.gguf", GgmlType::Q4_1);
}

TEST(QuantFixtures, Q5_0QuantizationIsByteIdentical) {
  expect_byte_identical("llama-f32.gguf", "llama-q5_0.gguf", GgmlType::Q5_0);
}

TEST(QuantFixtures, Q5_1QuantizationIsByteIdentical) {
  expect_byte_identical("llama-f32.gguf", "llama-q5_1.gguf", GgmlType::Q5_1);
}

}  // namespace
}  // namespace slm

namespace slm {
namespace {

double sq_err(const float* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(a[i] - b[i]) * (a[i] - b[i]);
  return s;
}

// For every quantized tensor of a fixture file: (1) llama.cpp's blocks, dequantized by us,
// are close to the F32 model's values (a wrong bit layout gives errors as large as the
// values themselves; this covers Q3_K and every other type in the files); (2) quantizing
// the same F32 values ourselves loses at most 2% more (relative rms) than llama.cpp did.
struct QualityCase {
  const char* family;
  const char* type_suffix;
};

void compare_with_reference_quantization(const std::string& fam, const std::string& suffix) {
  auto src = GgufFile::open(test::shared("fixtures/" + fam + "-f32.gguf"));
  auto ref = GgufFile::open(test::shared("fixtures/" + fam + "-" + suffix + ".gguf"));
  std::map<GgmlType, std::pair<double, double>> err;  // type → (ours, reference)
  std::map<GgmlType, double> energy;
  for (const GgufTensor& rt : ref->tensors()) {
    if (rt.type == GgmlType::F32) continue;
    SCOPED_TRACE(fam + "-" + suffix + ": " + rt.name);
    const GgufTensor* st = src->find_tensor(rt.name);
    ASSERT_NE(st, nullptr);
    const auto* x = reinterpret_cast<const float*>(st->data);
    const int64_t n = rt.ne[0];
    std::vector<float> theirs(n), ours(n);
    std::vector<uint8_t> q(rt.row_size());
    for (int64_t r = 0; r < rt.n_rows(); ++r) {
      dequantize_row(rt.type, rt.data + r * rt.row_size(), theirs.data(), n);
      quantize_row(rt.type, x + r * n, q.data(), n);
      dequantize_row(rt.type, q.data(), ours.data(), n);
      err[rt.type].first += sq_err(x + r * n, ours.data(), n);
      err[rt.type].second += sq_err(x + r * n, theirs.data(), n);
      energy[rt.type] += sq_err(x + r * n, std::vector<float>(n, 0.f).data(), n);
    }
  }
  ASSERT_FALSE(err.empty());
  for (auto& [t, e] : err) {
    const double ours = std::sqrt(e.first / energy[t]), theirs = std::sqrt(e.second / energy[t]);
    SCOPED_TRACE(fam + "-" + suffix + " " + type_name(t) + ": ours " + std::to_string(ours) +
                 " llama.cpp " + std::to_string(theirs));
    EXPECT_LT(theirs, 0.4);  // even 2-bit keeps well under the signal; bad layout is ~1
    EXPECT_LE(ours, theirs * 1.02 + 1e-7);
  }
}

TEST(QuantFixtures, OurQuantizationIsAsGoodAsLlamaCpp) {
  for (const char* s : {"q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k_m", "q4_k_m",
                        "q5_k_m", "q6_k", "iq4_nl", "iq4_xs", "f16", "bf16"})
    compare_with_reference_quantization("llama", s);
  for (const char* fam : {"gemma", "openelm", "granitemoe", "phi3", "mixtral"})
    compare_with_reference_quantization(fam, "q4_k_m");
}

}  // namespace
}  // namespace slm

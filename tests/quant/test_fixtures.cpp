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

// Quantizing the F32 model's tensors must give llama.cpp's blocks byte for byte. Returns
// the number of tensors compared per type.
std::map<std::string, int> expect_byte_identical(const std::string& f32_file, const std::string& q_file) {
  auto src = GgufFile::open(test::shared("fixtures/" + f32_file));
  auto ref = GgufFile::open(test::shared("fixtures/" + q_file));
  std::map<std::string, int> checked;
  for (const GgufTensor& rt : ref->tensors()) {
    if (rt.type == GgmlType::F32) continue;
    SCOPED_TRACE(q_file + ": " + rt.name + " " + type_name(rt.type));
    const GgufTensor* st = src->find_tensor(rt.name);
    if (st == nullptr || st->type != GgmlType::F32 || st->n_elements() != rt.n_elements()) {
      ADD_FAILURE() << "no matching F32 tensor in " << f32_file;
      continue;
    }
    std::vector<uint8_t> got(rt.nbytes);
    const auto* x = reinterpret_cast<const float*>(st->data);
    for (int64_t r = 0; r < rt.n_rows(); ++r)
      quantize_row(rt.type, x + r * rt.ne[0], got.data() + r * rt.row_size(), rt.ne[0]);
    size_t diff = 0, first = 0;
    for (size_t i = 0; i < got.size(); ++i)
      if (got[i] != rt.data[i] && !diff++) first = i;
    EXPECT_EQ(diff, 0u) << "bytes differ, first at byte " << first << " (block "
                        << first / type_info(rt.type).type_size << ")";
    ++checked[type_name(rt.type)];
  }
  return checked;
}

// Every quantized fixture file, every tensor: our quantizers reproduce llama.cpp's
// reference quantizers exactly (F16, BF16, all legacy, K and IQ4 formats).
TEST(QuantFixtures, QuantizationIsByteIdenticalToLlamaCpp) {
  std::set<std::string> files;
  std::map<std::string, int> per_type;
  for (const auto& e : fs::directory_iterator(test::shared("fixtures"))) {
    const std::string name = e.path().filename().string();
    if (e.path().extension() != ".json" || name.find(".info.") != std::string::npos) continue;
    auto j = nlohmann::json::parse(test::read_file(e.path().string()));
    const std::string file = j["file"];
    if (j["type"] == "F32" || !files.insert(file).second) continue;
    const std::string f32_file = file.substr(0, file.rfind('-')) + "-f32.gguf";
    for (auto& [t, n] : expect_byte_identical(f32_file, file)) per_type[t] += n;
  }
  EXPECT_GE(files.size(), 25u);
  for (const char* t : {"F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K",
                        "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS"})
    EXPECT_GT(per_type[t], 0) << "no fixture tensor of type " << t;
}

}  // namespace
}  // namespace slm

namespace slm {
namespace {

// llama.cpp's blocks, dequantized by us, stay close to the F32 model's values for every
// type in the fixtures. A wrong bit layout gives errors as large as the values themselves;
// this covers Q3_K, which no .dequant.ffn_down.f32 file holds. The expected relative rms
// error per format is that of test_roundtrip (gaussian weights).
void expect_decodes_close(const std::string& fam, const std::string& suffix) {
  auto src = GgufFile::open(test::shared("fixtures/" + fam + "-f32.gguf"));
  auto ref = GgufFile::open(test::shared("fixtures/" + fam + "-" + suffix + ".gguf"));
  std::map<GgmlType, std::pair<double, double>> err;  // type → (error², signal²)
  for (const GgufTensor& rt : ref->tensors()) {
    if (rt.type == GgmlType::F32) continue;
    const GgufTensor* st = src->find_tensor(rt.name);
    ASSERT_NE(st, nullptr) << rt.name;
    const auto* x = reinterpret_cast<const float*>(st->data);
    const std::vector<float> y = dequantize_tensor(rt);
    for (size_t i = 0; i < y.size(); ++i) {
      err[rt.type].first += double(x[i] - y[i]) * (x[i] - y[i]);
      err[rt.type].second += double(x[i]) * x[i];
    }
  }
  ASSERT_FALSE(err.empty());
  for (auto& [t, e] : err) {
    const double rel = std::sqrt(e.first / e.second);
    // Max's bound for 4 levels (Q2_K) is 0.345; every other format is far below it.
    const double bound = t == GgmlType::Q2_K ? 0.345 : t == GgmlType::Q3_K ? 0.194 : 0.108;
    EXPECT_LT(rel, bound) << fam << "-" << suffix << " " << type_name(t);
  }
}

TEST(QuantFixtures, ReferenceBlocksDecodeCloseToSource) {
  for (const char* s : {"q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k_m", "q4_k_m",
                        "q5_k_m", "q6_k", "iq4_nl", "iq4_xs", "f16", "bf16"})
    expect_decodes_close("llama", s);
}

}  // namespace
}  // namespace slm

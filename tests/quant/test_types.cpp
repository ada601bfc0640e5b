// The type table and the half-precision conversions, against hand-computed values.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

#include "quant/blocks.h"
#include "quant/types.h"
#include "slm/error.h"

namespace slm {
namespace {

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

TEST(QuantTypes, UnpackAllScalesMinsK4EqualsOneAtATime) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 2000; ++trial) {
    uint8_t packed[12], all[16];
    for (uint8_t& b : packed) b = static_cast<uint8_t>(rng());
    quant::unpack_scales_mins_k4(packed, all);
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      quant::unpack_scale_min_k4(j, packed, &sc, &m);
      ASSERT_EQ(all[j], sc) << "scale " << j;
      ASSERT_EQ(all[8 + j], m) << "min " << j;
    }
  }
}

TEST(QuantTypes, TableMatchesDocumentedSizes) {
  // docs/architectures.md §1.7: id, block, bytes per block.
  struct Row {
    uint32_t id;
    const char* name;
    int64_t block, bytes;
  };
  const Row rows[] = {{0, "F32", 1, 4},      {1, "F16", 1, 2},      {2, "Q4_0", 32, 18},
                      {3, "Q4_1", 32, 20},   {6, "Q5_0", 32, 22},   {7, "Q5_1", 32, 24},
                      {8, "Q8_0", 32, 34},   {9, "Q8_1", 32, 36},   {10, "Q2_K", 256, 84},
                      {11, "Q3_K", 256, 110}, {12, "Q4_K", 256, 144}, {13, "Q5_K", 256, 176},
                      {14, "Q6_K", 256, 210}, {15, "Q8_K", 256, 292}, {20, "IQ4_NL", 32, 18},
                      {23, "IQ4_XS", 256, 136}, {24, "I8", 1, 1},    {25, "I16", 1, 2},
                      {26, "I32", 1, 4},     {27, "I64", 1, 8},     {28, "F64", 1, 8},
                      {29, "IQ1_M", 256, 56}, {30, "BF16", 1, 2},   {39, "MXFP4", 32, 17},
                      // grid/ternary formats: sizes of ggml's block structs, so such tensors
                      // can at least be sized and skipped
                      {16, "IQ2_XXS", 256, 66}, {17, "IQ2_XS", 256, 74}, {18, "IQ3_XXS", 256, 98},
                      {19, "IQ1_S", 256, 50},  {21, "IQ3_S", 256, 110}, {22, "IQ2_S", 256, 82},
                      {34, "TQ1_0", 256, 54},  {35, "TQ2_0", 256, 66}};
  for (const Row& r : rows) {
    const TypeInfo* ti = type_info(r.id);
    ASSERT_NE(ti, nullptr) << r.name;
    EXPECT_STREQ(ti->name, r.name);
    EXPECT_EQ(ti->block_size, r.block) << r.name;
    EXPECT_EQ(ti->type_size, r.bytes) << r.name;
  }
  // Retired and unassigned ids are unknown.
  for (uint32_t id : {4u, 5u, 31u, 32u, 33u, 40u, 1000u, 0xFFFFFFFFu})
    EXPECT_EQ(type_info(id), nullptr) << id;
  // bits per weight of the K formats as the docs give them
  EXPECT_DOUBLE_EQ(8.0 * 210 / 256, 6.5625);
  EXPECT_EQ(row_bytes(GgmlType::Q4_K, 4096), 16u * 144u);
}

TEST(QuantTypes, CapabilitiesCoverTheBriefedFormats) {
  for (const char* n : {"F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K",
                        "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ4_NL", "IQ4_XS"}) {
    const TypeInfo& ti = type_info(parse_type_name(n));
    EXPECT_TRUE(ti.can_dequantize) << n;
    EXPECT_TRUE(ti.can_quantize) << n;
  }
  for (const char* n : {"IQ2_XXS", "IQ3_S", "IQ1_M", "TQ1_0"})
    EXPECT_FALSE(type_info(parse_type_name(n)).can_dequantize) << n;
}

TEST(QuantTypes, ParseTypeName) {
  EXPECT_EQ(parse_type_name("q4_0"), GgmlType::Q4_0);
  EXPECT_EQ(parse_type_name("Q4_K"), GgmlType::Q4_K);
  EXPECT_EQ(parse_type_name("f16"), GgmlType::F16);
  EXPECT_EQ(parse_type_name("bf16"), GgmlType::BF16);
  EXPECT_EQ(parse_type_name("iq4_xs"), GgmlType::IQ4_XS);
  EXPECT_THROW(parse_type_name("q4_k_m"), Error);  // a file-type mixture, not a ggml type
  EXPECT_THROW(parse_type_name(""), Error);
  EXPECT_THROW(parse_type_name("q4"), Error);
}

TEST(QuantTypes, Fp16ToF32HandValues) {
  EXPECT_EQ(fp16_to_f32(0x0000), 0.f);
  EXPECT_TRUE(std::signbit(fp16_to_f32(0x8000)));
  EXPECT_EQ(fp16_to_f32(0x3C00), 1.f);
  EXPECT_EQ(fp16_to_f32(0xC000), -2.f);
  EXPECT_EQ(fp16_to_f32(0x3555), 0.333251953125f);  // 1/3 rounded: 0x555/1024 · 2^-2 + 2^-2
  EXPECT_EQ(fp16_to_f32(0x7BFF), 65504.f);           // largest finite
  EXPECT_EQ(fp16_to_f32(0x0400), std::ldexp(1.f, -14));  // smallest normal
  EXPECT_EQ(fp16_to_f32(0x0001), std::ldexp(1.f, -24));  // smallest subnormal
  EXPECT_EQ(fp16_to_f32(0x03FF), 1023 * std::ldexp(1.f, -24));  // largest subnormal
  EXPECT_EQ(fp16_to_f32(0x8001), -std::ldexp(1.f, -24));
  EXPECT_EQ(fp16_to_f32(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(fp16_to_f32(0xFC00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(fp16_to_f32(0x7E00)));
  EXPECT_TRUE(std::isnan(fp16_to_f32(0x7C01)));  // signalling-pattern NaN stays NaN
}

TEST(QuantTypes, F32ToFp16HandValues) {
  EXPECT_EQ(f32_to_fp16(0.f), 0x0000);
  EXPECT_EQ(f32_to_fp16(-0.f), 0x8000);
  EXPECT_EQ(f32_to_fp16(1.f), 0x3C00);
  EXPECT_EQ(f32_to_fp16(-2.f), 0xC000);
  EXPECT_EQ(f32_to_fp16(1.f / 3), 0x3555);
  EXPECT_EQ(f32_to_fp16(65504.f), 0x7BFF);
  // Ties to even: 1 + 2^-11 lies halfway between 1 (even mantissa) and 1 + 2^-10.
  EXPECT_EQ(f32_to_fp16(1.f + std::ldexp(1.f, -11)), 0x3C00);
  // 1 + 3·2^-11 lies halfway between 1 + 2^-10 (odd) and 1 + 2^-9 (even): goes up.
  EXPECT_EQ(f32_to_fp16(1.f + 3 * std::ldexp(1.f, -11)), 0x3C02);
  // Just above a tie rounds up.
  EXPECT_EQ(f32_to_fp16(from_bits(bits(1.f + std::ldexp(1.f, -11)) + 1)), 0x3C01);
  // Overflow: 65519.99 rounds down to 65504, 65520 (a tie with an odd mantissa) goes to inf.
  EXPECT_EQ(f32_to_fp16(65519.f), 0x7BFF);
  EXPECT_EQ(f32_to_fp16(65520.f), 0x7C00);
  EXPECT_EQ(f32_to_fp16(1e10f), 0x7C00);
  EXPECT_EQ(f32_to_fp16(-1e10f), 0xFC00);
  EXPECT_EQ(f32_to_fp16(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_EQ(f32_to_fp16(-std::numeric_limits<float>::infinity()), 0xFC00);
  // NaN stays NaN (exponent all ones, non-zero mantissa), sign kept.
  const uint16_t n = f32_to_fp16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(n & 0x7C00, 0x7C00);
  EXPECT_NE(n & 0x3FF, 0);
  const uint16_t sn = f32_to_fp16(from_bits(0xFF800001));  // NaN whose payload is in low bits
  EXPECT_EQ(sn & 0xFC00, 0xFC00);
  EXPECT_NE(sn & 0x3FF, 0);
  // Subnormals: 2^-24 is the unit; 2^-25 is a tie between 0 and 2^-24 (even: 0).
  EXPECT_EQ(f32_to_fp16(std::ldexp(1.f, -24)), 0x0001);
  EXPECT_EQ(f32_to_fp16(std::ldexp(1.f, -25)), 0x0000);
  EXPECT_EQ(f32_to_fp16(std::ldexp(1.f, -25) * 1.0001f), 0x0001);
  EXPECT_EQ(f32_to_fp16(3 * std::ldexp(1.f, -25)), 0x0002);  // 1.5 units: tie to even 2
  EXPECT_EQ(f32_to_fp16(5 * std::ldexp(1.f, -25)), 0x0002);  // 2.5 units: tie to even 2
  EXPECT_EQ(f32_to_fp16(-std::ldexp(1.f, -24)), 0x8001);
  EXPECT_EQ(f32_to_fp16(1023 * std::ldexp(1.f, -24)), 0x03FF);
  // The largest subnormal plus a half unit rounds up into the smallest normal.
  EXPECT_EQ(f32_to_fp16(1023.5f * std::ldexp(1.f, -24)), 0x0400);
  EXPECT_EQ(f32_to_fp16(std::ldexp(1.f, -14)), 0x0400);
  EXPECT_EQ(f32_to_fp16(from_bits(0x00000001)), 0x0000);  // f32 subnormal
  EXPECT_EQ(f32_to_fp16(std::ldexp(1.f, -30)), 0x0000);
}

TEST(QuantTypes, Fp16RoundTripsEveryHalf) {
  // Every finite half converts to f32 and back unchanged (NaNs stay NaN).
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = fp16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(fp16_to_f32(f32_to_fp16(f))));
      continue;
    }
    ASSERT_EQ(f32_to_fp16(f), h) << std::hex << h;
  }
}

TEST(QuantTypes, F32ToFp16IsNearest) {
  // For values between consecutive halves, the result is the nearer one (ties: even).
  for (uint32_t h = 0; h < 0x7BFF; h += 7) {
    const float a = fp16_to_f32(static_cast<uint16_t>(h));
    const float b = fp16_to_f32(static_cast<uint16_t>(h + 1));
    const float mid = a + (b - a) / 2;  // exact: both halves fit in f32 with bits to spare
    EXPECT_EQ(f32_to_fp16(mid), (h & 1) ? h + 1 : h) << std::hex << h;
    EXPECT_EQ(f32_to_fp16(from_bits(bits(mid) - 1)), h) << std::hex << h;
    EXPECT_EQ(f32_to_fp16(from_bits(bits(mid) + 1)), h + 1) << std::hex << h;
  }
}

#if defined(__x86_64__)
// The F16C instructions, whatever the build targets (run only where the CPU has them).
__attribute__((target("f16c"))) uint16_t f16c_from_f32(float f) {
  return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
}
__attribute__((target("f16c"))) float f16c_to_f32(uint16_t h) { return _cvtsh_ss(h); }

bool cpu_has_f16c() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  return __get_cpuid(1, &a, &b, &c, &d) && ((c >> 29) & 1u);
}

// The F16C instruction (round to nearest even) is an independent implementation of the
// same conversion: agree with it on random bit patterns and on every value near a tie.
TEST(QuantTypes, F32ToFp16MatchesF16C) {
  if (!cpu_has_f16c()) GTEST_SKIP() << "this CPU has no F16C";
  std::mt19937 rng(42);
  for (int i = 0; i < 2000000; ++i) {
    const float f = from_bits(rng());
    const uint16_t hw = f16c_from_f32(f);
    const uint16_t sw = f32_to_fp16(f);
    if (std::isnan(f)) {
      ASSERT_TRUE(std::isnan(fp16_to_f32(sw)));
      continue;
    }
    ASSERT_EQ(sw, hw) << std::hex << bits(f);
    ASSERT_EQ(bits(fp16_to_f32(hw)), bits(f16c_to_f32(hw)));
  }
}
#endif

TEST(QuantTypes, Bf16HandValues) {
  EXPECT_EQ(f32_to_bf16(1.f), 0x3F80);
  EXPECT_EQ(bf16_to_f32(0x3F80), 1.f);
  EXPECT_EQ(f32_to_bf16(-2.f), 0xC000);
  EXPECT_EQ(f32_to_bf16(0.f), 0x0000);
  EXPECT_EQ(f32_to_bf16(-0.f), 0x8000);
  // 1 + 2^-8 is halfway between 1 (0x3F80, even) and 1 + 2^-7 (0x3F81): stays 1.
  EXPECT_EQ(f32_to_bf16(1.f + std::ldexp(1.f, -8)), 0x3F80);
  // 1 + 3·2^-8 is halfway between 0x3F81 (odd) and 0x3F82: goes up to even.
  EXPECT_EQ(f32_to_bf16(1.f + 3 * std::ldexp(1.f, -8)), 0x3F82);
  EXPECT_EQ(f32_to_bf16(from_bits(0x3F808001)), 0x3F81);  // above the tie
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(f32_to_bf16(-std::numeric_limits<float>::infinity()), 0xFF80);
  // Largest finite f32 rounds up to inf, as round-to-nearest-even does.
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7F80);
  // f32 subnormals keep their top bits (bf16 has the same exponent range).
  EXPECT_EQ(f32_to_bf16(from_bits(0x00010000)), 0x0001);
  // NaN stays NaN even when its payload sits only in the low 16 bits.
  const uint16_t n = f32_to_bf16(from_bits(0x7F800001));
  EXPECT_EQ(n & 0x7F80, 0x7F80);
  EXPECT_NE(n & 0x7F, 0);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(QuantTypes, KScalePackingRoundTrips) {
  uint8_t sc[8], m[8], packed[12];
  for (int trial = 0; trial < 64; ++trial) {
    for (int j = 0; j < 8; ++j) {
      sc[j] = static_cast<uint8_t>((trial * 7 + j * 13) & 63);
      m[j] = static_cast<uint8_t>((trial * 11 + j * 5 + 3) & 63);
    }
    quant::pack_scale_min_k4(sc, m, packed);
    for (int j = 0; j < 8; ++j) {
      uint8_t s2, m2;
      quant::unpack_scale_min_k4(j, packed, &s2, &m2);
      EXPECT_EQ(s2, sc[j]);
      EXPECT_EQ(m2, m[j]);
    }
  }
}

TEST(QuantTypes, NearestIntTiesToEven) {
  EXPECT_EQ(quant::nearest_int(0.5f), 0);
  EXPECT_EQ(quant::nearest_int(1.5f), 2);
  EXPECT_EQ(quant::nearest_int(2.5f), 2);
  EXPECT_EQ(quant::nearest_int(-0.5f), 0);
  EXPECT_EQ(quant::nearest_int(-1.5f), -2);
  EXPECT_EQ(quant::nearest_int(-2.4f), -2);
  EXPECT_EQ(quant::nearest_int(126.6f), 127);
}

}  // namespace
}  // namespace slm

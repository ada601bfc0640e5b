// quantize_row → dequantize_row on synthetic data stays within each format's error bound.
// Bounds come from the format's arithmetic, not from measuring our own output:
// * exact-rounding formats (Q8_0, Q8_1, Q8_K, Q4_0, Q4_1, Q5_0, Q5_1): a per-value bound from
//   the step size d, widened by what storing d (and m) in fp16 can add;
// * searched-scale formats (K and IQ4): a uniform quantizer with step Δ has rms error Δ/√12.
//   Δ follows from the levels and the spread of a group (derivations beside each bound).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <vector>

#include "quant/blocks.h"
#include "quant/quant.h"
#include "slm/error.h"

namespace slm {
namespace {

std::vector<float> roundtrip(GgmlType t, const std::vector<float>& x) {
  std::vector<uint8_t> q(row_bytes(t, static_cast<int64_t>(x.size())));
  quantize_row(t, x.data(), q.data(), static_cast<int64_t>(x.size()));
  std::vector<float> y(x.size());
  dequantize_row(t, q.data(), y.data(), static_cast<int64_t>(x.size()));
  return y;
}

std::vector<float> gaussian(size_t n, uint32_t seed, float sigma = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = g(rng);
  return v;
}

std::vector<float> uniform(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

float rms(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += double(x) * x;
  return float(std::sqrt(s / v.size()));
}

float rms_error(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += double(a[i] - b[i]) * (a[i] - b[i]);
  return float(std::sqrt(s / a.size()));
}

// |d − fp16(d)|: what storing a scale in half precision moves it by.
float fp16_loss(float d) { return std::fabs(d - fp16_to_f32(f32_to_fp16(d))); }

// Awkward but valid lengths: 1, 3 and 7 blocks of 32 (for 256-blocks: 1, 3, 5 super-blocks).
std::vector<int64_t> lengths(GgmlType t) {
  const int64_t b = type_info(t).block_size;
  return b == 32 ? std::vector<int64_t>{32, 96, 224, 4096 + 32} : std::vector<int64_t>{256, 768, 1280};
}

// --- exact-rounding formats: per-value bounds ---------------------------------------------

// Per block of 32 (or 256), the largest error each value may have, from the format's rule.
float block_bound(GgmlType t, const float* x, int n) {
  float amax = 0, mn = x[0], mx = x[0];
  for (int i = 0; i < n; ++i) {
    amax = std::max(amax, std::fabs(x[i]));
    mn = std::min(mn, x[i]);
    mx = std::max(mx, x[i]);
  }
  const float tiny = 1e-6f * amax;  // float arithmetic in x·(1/d)
  switch (t) {
    case GgmlType::Q8_0:
    case GgmlType::Q8_1: {  // round to nearest of d = amax/127; codes up to 127 times the fp16 loss
      const float d = amax / 127;
      return 0.5f * d + 127 * fp16_loss(d) + tiny;
    }
    case GgmlType::Q8_K:  // f32 scale: only the rounding half-step
      return 0.5f * amax / 127 + tiny;
    case GgmlType::Q4_0: {  // extreme at −8d; the far end may clamp from +8d to +7d: one full step
      const float d = amax / 8;
      return d + 8 * fp16_loss(d) + tiny;
    }
    case GgmlType::Q5_0: {
      const float d = amax / 16;
      return d + 16 * fp16_loss(d) + tiny;
    }
    case GgmlType::Q4_1: {  // round half up on [min, max] in 15 steps, plus fp16 of d and m
      const float d = (mx - mn) / 15;
      return 0.5f * d + 15 * fp16_loss(d) + fp16_loss(mn) + tiny + 1e-6f * (mx - mn);
    }
    case GgmlType::Q5_1: {
      const float d = (mx - mn) / 31;
      return 0.5f * d + 31 * fp16_loss(d) + fp16_loss(mn) + tiny + 1e-6f * (mx - mn);
    }
    default: return 0;
  }
}

void expect_within_block_bounds(GgmlType t, const std::vector<float>& x) {
  const auto y = roundtrip(t, x);
  const int b = static_cast<int>(type_info(t).block_size);
  for (size_t i0 = 0; i0 < x.size(); i0 += b) {
    const float bound = block_bound(t, x.data() + i0, b);
    for (int j = 0; j < b; ++j)
      ASSERT_LE(std::fabs(x[i0 + j] - y[i0 + j]), bound)
          << type_name(t) << " value " << i0 + j << " x=" << x[i0 + j] << " y=" << y[i0 + j];
  }
}

const GgmlType kExact[] = {GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q8_K, GgmlType::Q4_0,
                           GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1};

TEST(QuantRoundTrip, ExactFormatsGaussianAndUniform) {
  uint32_t seed = 1;
  for (GgmlType t : kExact)
    for (int64_t n : lengths(t)) {
      expect_within_block_bounds(t, gaussian(n, seed++));
      expect_within_block_bounds(t, gaussian(n, seed++, 0.02f));  // weight-like magnitudes
      expect_within_block_bounds(t, uniform(n, seed++, -1.f, 1.f));
      expect_within_block_bounds(t, uniform(n, seed++, 0.5f, 3.f));  // all positive
    }
}

TEST(QuantRoundTrip, ExactFormatsOneHugeValue) {
  for (GgmlType t : kExact) {
    auto x = gaussian(1024, 77);
    x[37] = 1000.f;
    x[600] = -5000.f;
    expect_within_block_bounds(t, x);
  }
}

// --- all formats: zeros, constants, outliers --------------------------------------------

const GgmlType kAll[] = {GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q8_K, GgmlType::Q4_0,
                         GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q2_K,
                         GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K,
                         GgmlType::IQ4_NL, GgmlType::IQ4_XS};

TEST(QuantRoundTrip, AllZeroBlocksStayZero) {
  for (GgmlType t : kAll) {
    std::vector<float> x(512, 0.f);
    const auto y = roundtrip(t, x);
    for (float v : y) ASSERT_EQ(v, 0.f) << type_name(t);
  }
}

TEST(QuantRoundTrip, ZeroBlockNextToDataIsUnaffected) {
  for (GgmlType t : kAll) {
    auto x = gaussian(512, 5);
    std::fill(x.begin(), x.begin() + 256, 0.f);  // first block(s) zero, the rest data
    const auto y = roundtrip(t, x);
    for (int i = 0; i < 256; ++i) ASSERT_EQ(y[i], 0.f) << type_name(t) << " at " << i;
  }
}

TEST(QuantRoundTrip, RejectsNonFiniteAndBadLengths) {
  for (GgmlType t : kAll) {
    const int64_t b = type_info(t).block_size;
    std::vector<float> x(b, 1.f);
    std::vector<uint8_t> q(row_bytes(t, b) + 64);
    x[3] = NAN;
    EXPECT_THROW(quantize_row(t, x.data(), q.data(), b), Error) << type_name(t);
    x[3] = INFINITY;
    EXPECT_THROW(quantize_row(t, x.data(), q.data(), b), Error) << type_name(t);
    x[3] = 1.f;
    EXPECT_THROW(quantize_row(t, x.data(), q.data(), b + 1), Error) << type_name(t);
    std::vector<float> y(b + 1);
    EXPECT_THROW(dequantize_row(t, q.data(), y.data(), b - 1), Error) << type_name(t);
  }
  std::vector<float> x(256, 1.f), y(256);
  std::vector<uint8_t> q(1024);
  EXPECT_THROW(quantize_row(GgmlType::IQ2_XXS, x.data(), q.data(), 256), Error);
  EXPECT_THROW(dequantize_row(GgmlType::IQ2_XXS, q.data(), y.data(), 256), Error);
  EXPECT_THROW(dequantize_row(static_cast<GgmlType>(4), q.data(), y.data(), 32), Error);
}

// --- searched-scale formats: relative rms error -----------------------------------------

// The rms error of the best fixed-step quantizer with `levels` levels (mid-rise, levels at
// (k + 1/2)·Δ) for a standard gaussian, found by numerical integration over Δ (Max, 1960:
// 4 levels 0.345, 8 levels 0.193, 16 levels 0.107 ...). A format that picks a scale per group
// of 16 or 32 values sees a smaller range than the whole distribution, so it must do at least
// this well relative to σ; this bound is independent of our code.
float best_uniform_gaussian_rms(int levels) {
  const double dx = 2e-3;
  double best = 1e9;
  for (double step = 0.01; step < 2.0; step += 0.004) {
    double mse = 0;
    for (double x = -8; x < 8; x += dx) {
      double k = std::floor(x / step);
      k = std::clamp(k, -levels / 2.0, levels / 2.0 - 1);
      const double q = (k + 0.5) * step;
      mse += (x - q) * (x - q) * std::exp(-0.5 * x * x) * dx;
    }
    best = std::min(best, mse / std::sqrt(2 * M_PI));
  }
  return static_cast<float>(std::sqrt(best));
}

int levels_of(GgmlType t) {
  switch (t) {
    case GgmlType::Q2_K: return 4;
    case GgmlType::Q3_K: return 8;
    case GgmlType::Q5_K: return 32;
    case GgmlType::Q6_K: return 64;
    default: return 16;  // Q4_K, IQ4_NL, IQ4_XS
  }
}

float gaussian_bound(GgmlType t) {
  static std::map<int, float> cache;
  const int levels = levels_of(t);
  if (!cache.count(levels)) cache[levels] = best_uniform_gaussian_rms(levels);
  return cache[levels];
}

TEST(QuantRoundTrip, BestUniformGaussianMatchesMaxTable) {
  // Sanity of the reference itself against the published values.
  EXPECT_NEAR(best_uniform_gaussian_rms(4), std::sqrt(0.1188), 2e-3);
  EXPECT_NEAR(best_uniform_gaussian_rms(8), std::sqrt(0.03744), 2e-3);
  EXPECT_NEAR(best_uniform_gaussian_rms(16), std::sqrt(0.01154), 2e-3);
}

const GgmlType kSearched[] = {GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K,
                              GgmlType::Q6_K, GgmlType::IQ4_NL, GgmlType::IQ4_XS};

TEST(QuantRoundTrip, SearchedFormatsGaussian) {
  uint32_t seed = 100;
  for (GgmlType t : kSearched)
    for (int64_t n : lengths(t))
      for (float sigma : {1.f, 0.02f}) {
        const auto x = gaussian(n, seed++, sigma);
        const float rel = rms_error(x, roundtrip(t, x)) / rms(x);
        EXPECT_LE(rel, gaussian_bound(t)) << type_name(t) << " n=" << n << " sigma=" << sigma;
        RecordProperty(std::string(type_name(t)) + "_rel_rmse", std::to_string(rel));
      }
}

// Uniform data: a uniform quantizer with step Δ has error rms Δ/√12; allow 15% for the
// scales' own rounding (6-bit sub-scales, fp16 super-scale).
TEST(QuantRoundTrip, SearchedFormatsUniform) {
  uint32_t seed = 200;
  for (GgmlType t : kSearched) {
    const int levels = levels_of(t);
    const bool nonlinear = t == GgmlType::IQ4_NL || t == GgmlType::IQ4_XS;
    const bool affine = t == GgmlType::Q2_K || t == GgmlType::Q4_K || t == GgmlType::Q5_K;
    for (auto [lo, hi] : {std::pair{-1.f, 1.f}, std::pair{-0.3f, 1.7f}}) {
      const auto x = uniform(1280, seed++, lo, hi);
      // Affine formats put levels−1 steps across [lo, hi]; symmetric ones must cover
      // ±max(|lo|, |hi|) with all their levels.
      const float step = affine ? (hi - lo) / (levels - 1)
                                : 2 * std::max(std::fabs(lo), std::fabs(hi)) / levels;
      const float expect = step / std::sqrt(12.f);
      // IQ4's codebook is denser near zero and up to 1.9x sparser at its ends.
      const float bound = expect * (nonlinear ? 1.9f : 1.15f);
      EXPECT_LE(rms_error(x, roundtrip(t, x)), bound) << type_name(t) << " [" << lo << "," << hi << "]";
    }
  }
}

// One value 1000σ in a super-block: it must come back within one step of its own scale,
// every other block must keep its normal accuracy, and nothing may turn non-finite.
TEST(QuantRoundTrip, SearchedFormatsOneHugeValue) {
  for (GgmlType t : kSearched) {
    auto x = gaussian(1024, 9);
    x[300] = 1000.f;
    const auto y = roundtrip(t, x);
    for (float v : y) ASSERT_TRUE(std::isfinite(v)) << type_name(t);
    int levels = t == GgmlType::Q2_K ? 3 : t == GgmlType::Q3_K ? 4 : t == GgmlType::Q6_K ? 32 : 15;
    EXPECT_LE(std::fabs(y[300] - 1000.f), 1000.f / levels) << type_name(t);
    // Blocks not holding the outlier (256 values from index 512) are unaffected.
    std::vector<float> xs(x.begin() + 512, x.end()), ys(y.begin() + 512, y.end());
    EXPECT_LE(rms_error(xs, ys) / rms(xs), gaussian_bound(t)) << type_name(t);
  }
}

// Q8_K also carries bsums, which the K dot products rely on.
TEST(QuantRoundTrip, Q8KBlockSumsMatchCodes) {
  const auto x = gaussian(512, 3);
  std::vector<quant::block_q8_K> b(2);
  quantize_row(GgmlType::Q8_K, x.data(), b.data(), 512);
  for (const auto& blk : b)
    for (int g = 0; g < 16; ++g) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += blk.qs[16 * g + l];
      EXPECT_EQ(blk.bsums[g], s);
    }
}

}  // namespace
}  // namespace slm

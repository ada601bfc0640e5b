// vec_dot against independent truth: activation rows byte-identical to src/quant's
// quantize_row, the scalar reference against a double-precision dot of dequantize_row
// outputs, and every SIMD kernel against the scalar reference (exactly, where all scales are
// 1 so the whole sum is an integer; within float rounding otherwise).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/vec_dot.h"
#include "kernels/vec_dot_kernels.h"
#include "quant/blocks.h"
#include "quant/quant.h"
#include "slm/error.h"

namespace slm {
namespace {

using namespace slm::quant;

const GgmlType kWeightTypes[] = {
    GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1,
    GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::IQ4_NL, GgmlType::Q2_K,
    GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_XS,
};

// Awkward lengths: one block, odd block counts, and a long row.
std::vector<int64_t> lengths(GgmlType t) {
  const int64_t bs = type_info(t).block_size;
  if (bs == 1) return {1, 7, 8, 31, 33, 100, 257, 1000, 4099};
  if (bs == 32) return {32, 64, 96, 224, 352, 4096 + 32};
  return {256, 512, 768, 2816, 4096 + 256};
}

std::vector<float> random_floats(std::mt19937& rng, int64_t n, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

std::vector<uint8_t> encode(GgmlType t, const float* x, int64_t n) {
  std::vector<uint8_t> out(row_bytes(t, n));
  quantize_row(t, x, out.data(), n);
  return out;
}

std::vector<uint8_t> encode_act(GgmlType wt, const std::vector<float>& x) {
  std::vector<uint8_t> out(act_row_bytes(wt, static_cast<int64_t>(x.size())));
  quantize_act_row(wt, x.data(), out.data(), static_cast<int64_t>(x.size()));
  return out;
}

std::vector<float> decode(GgmlType t, const void* p, int64_t n) {
  std::vector<float> out(n);
  dequantize_row(t, p, out.data(), n);
  return out;
}

// Overwrites every fp16 scale/min field of a row of blocks with `half(block index)`.
template <typename F>
void patch_scales(GgmlType t, uint8_t* row, int64_t n, F half) {
  const int64_t nb = n / type_info(t).block_size;
  for (int64_t i = 0; i < nb; ++i) {
    const uint16_t h = half(i);
    switch (t) {
      case GgmlType::Q4_0: reinterpret_cast<block_q4_0*>(row)[i].d = h; break;
      case GgmlType::Q4_1: reinterpret_cast<block_q4_1*>(row)[i].d = h; reinterpret_cast<block_q4_1*>(row)[i].m = h; break;
      case GgmlType::Q5_0: reinterpret_cast<block_q5_0*>(row)[i].d = h; break;
      case GgmlType::Q5_1: reinterpret_cast<block_q5_1*>(row)[i].d = h; reinterpret_cast<block_q5_1*>(row)[i].m = h; break;
      case GgmlType::Q8_0: reinterpret_cast<block_q8_0*>(row)[i].d = h; break;
      case GgmlType::IQ4_NL: reinterpret_cast<block_iq4_nl*>(row)[i].d = h; break;
      case GgmlType::Q2_K: reinterpret_cast<block_q2_K*>(row)[i].d = h; reinterpret_cast<block_q2_K*>(row)[i].dmin = h; break;
      case GgmlType::Q3_K: reinterpret_cast<block_q3_K*>(row)[i].d = h; break;
      case GgmlType::Q4_K: reinterpret_cast<block_q4_K*>(row)[i].d = h; reinterpret_cast<block_q4_K*>(row)[i].dmin = h; break;
      case GgmlType::Q5_K: reinterpret_cast<block_q5_K*>(row)[i].d = h; reinterpret_cast<block_q5_K*>(row)[i].dmin = h; break;
      case GgmlType::Q6_K: reinterpret_cast<block_q6_K*>(row)[i].d = h; break;
      case GgmlType::IQ4_XS: reinterpret_cast<block_iq4_xs*>(row)[i].d = h; break;
      default: break;
    }
  }
}

// A weight row of random bytes (every code, scale and bit pattern reachable) with sane
// fp16 scales; float types get random values.
std::vector<uint8_t> random_weight_row(std::mt19937& rng, GgmlType t, int64_t n, bool unit_scales) {
  const TypeInfo& ti = type_info(t);
  if (ti.block_size == 1) {
    auto x = random_floats(rng, n);
    if (unit_scales)  // small integers: every product and partial sum is exact
      for (auto& v : x) v = std::round(v * 4);
    return encode(t, x.data(), n);
  }
  std::vector<uint8_t> row(row_bytes(t, n));
  for (auto& b : row) b = static_cast<uint8_t>(rng());
  std::uniform_real_distribution<float> sd(0.001f, 0.05f);
  patch_scales(t, row.data(), n, [&](int64_t) { return unit_scales ? f32_to_fp16(1.0f) : f32_to_fp16(sd(rng)); });
  return row;
}

// An encoded activation row with unit scales and small codes, built by hand, so that any
// dot product with unit-scale weights is an integer well inside float's exact range.
std::vector<uint8_t> unit_act_row(std::mt19937& rng, GgmlType wt, int64_t n) {
  const GgmlType at = act_type(wt);
  std::uniform_int_distribution<int> code(-15, 15);
  std::vector<uint8_t> row(row_bytes(at, n));
  if (at == GgmlType::Q8_0 || at == GgmlType::Q8_1) {
    for (int64_t i = 0; i < n / QK; ++i) {
      int sum = 0;
      int8_t qs[QK];
      for (auto& q : qs) sum += (q = static_cast<int8_t>(code(rng)));
      if (at == GgmlType::Q8_0) {
        auto& b = reinterpret_cast<block_q8_0*>(row.data())[i];
        b.d = f32_to_fp16(1.0f);
        std::memcpy(b.qs, qs, QK);
      } else {
        auto& b = reinterpret_cast<block_q8_1*>(row.data())[i];
        b.d = f32_to_fp16(1.0f);
        b.s = f32_to_fp16(static_cast<float>(sum));
        std::memcpy(b.qs, qs, QK);
      }
    }
  } else if (at == GgmlType::Q8_K) {
    for (int64_t i = 0; i < n / QK_K; ++i) {
      auto& b = reinterpret_cast<block_q8_K*>(row.data())[i];
      b.d = 1.0f;
      for (int g = 0; g < 16; ++g) {
        int sum = 0;
        for (int l = 0; l < 16; ++l) sum += (b.qs[16 * g + l] = static_cast<int8_t>(code(rng)));
        b.bsums[g] = static_cast<int16_t>(sum);
      }
    }
  } else {
    std::vector<float> x(n);
    for (auto& v : x) v = static_cast<float>(code(rng));
    quantize_act_row(wt, x.data(), row.data(), n);
  }
  return row;
}

TEST(VecDot, ActivationRowsMatchQuantizeRowByteForByte) {
  std::mt19937 rng(1);
  for (GgmlType wt : kWeightTypes) {
    const GgmlType at = act_type(wt);
    for (int64_t n : lengths(wt)) {
      auto x = random_floats(rng, n, 3.0f);
      if (n >= 64 && type_info(at).block_size > 1) {
        // A zero block, and a block whose codes land exactly on ties (amax 127 → x·id = k.5).
        const int64_t bs = type_info(at).block_size;
        std::fill(x.begin(), x.begin() + bs, 0.0f);
        if (n >= 2 * bs) {
          for (int64_t j = 0; j < bs; ++j) x[bs + j] = static_cast<float>(j % 50) - 24.5f;
          x[bs] = -127.0f;
        }
      }
      const auto got = encode_act(wt, x);
      const auto want = encode(at, x.data(), n);
      ASSERT_EQ(got, want) << type_name(wt) << " activations (" << type_name(at) << "), n=" << n;
    }
  }
}

TEST(VecDot, ScalarReferenceEqualsDequantizedDot) {
  std::mt19937 rng(2);
  for (GgmlType wt : kWeightTypes) {
    const GgmlType at = act_type(wt);
    for (int64_t n : lengths(wt)) {
      const auto wf = random_floats(rng, n);
      const auto w = encode(wt, wf.data(), n);
      const auto a = encode_act(wt, random_floats(rng, n));
      const auto wd = decode(wt, w.data(), n);
      const auto ad = decode(at, a.data(), n);
      double exact = 0, mag = 0;
      for (int64_t i = 0; i < n; ++i) {
        exact += static_cast<double>(wd[i]) * ad[i];
        mag += std::fabs(static_cast<double>(wd[i]) * ad[i]);
      }
      const double tol = 1e-5 * mag + 1e-6;
      EXPECT_NEAR(vec_dot_scalar(wt, n, w.data(), a.data()), exact, tol) << type_name(wt) << " n=" << n;
    }
  }
}

TEST(VecDot, SimdEqualsScalarExactlyOnIntegerSums) {
  std::mt19937 rng(3);
  for (GgmlType wt : kWeightTypes) {
    for (int64_t n : lengths(wt)) {
      for (int rep = 0; rep < 4; ++rep) {
        const auto w = random_weight_row(rng, wt, n, /*unit_scales=*/true);
        const auto a = unit_act_row(rng, wt, n);
        const float ref = vec_dot_scalar(wt, n, w.data(), a.data());
        ASSERT_LT(std::fabs(ref), 1 << 24) << "test sums must stay exact in float";
        ASSERT_EQ(vec_dot(wt, n, w.data(), a.data()), ref) << type_name(wt) << " n=" << n;
        // Every compiled kernel on its own, also the AVX2 ones the tiles shadow in dispatch.
        for (slm::vdot::DotFn f : {slm::vdot::tiled_kernel(wt), slm::vdot::simd_kernel(wt)})
          if (f) ASSERT_EQ(f(n, w.data(), a.data()), ref) << type_name(wt) << " n=" << n;
      }
    }
  }
}

TEST(VecDot, SimdEqualsScalarOnRandomBlocks) {
  std::mt19937 rng(4);
  for (GgmlType wt : kWeightTypes) {
    const GgmlType at = act_type(wt);
    for (int64_t n : lengths(wt)) {
      for (int rep = 0; rep < 4; ++rep) {
        const auto w = random_weight_row(rng, wt, n, /*unit_scales=*/false);
        const auto a = encode_act(wt, random_floats(rng, n));
        const auto wd = decode(wt, w.data(), n);
        const auto ad = decode(at, a.data(), n);
        double mag = 0;
        for (int64_t i = 0; i < n; ++i) mag += std::fabs(static_cast<double>(wd[i]) * ad[i]);
        const float ref = vec_dot_scalar(wt, n, w.data(), a.data());
        EXPECT_NEAR(vec_dot(wt, n, w.data(), a.data()), ref, 1e-5 * mag + 1e-6)
            << type_name(wt) << " n=" << n;
        for (slm::vdot::DotFn f : {slm::vdot::tiled_kernel(wt), slm::vdot::simd_kernel(wt)})
          if (f) EXPECT_NEAR(f(n, w.data(), a.data()), ref, 1e-5 * mag + 1e-6) << type_name(wt) << " n=" << n;
      }
    }
  }
}

TEST(VecDot, RowsEqualsOneRowAtATime) {
  std::mt19937 rng(5);
  for (GgmlType wt : kWeightTypes) {
    const int64_t n = lengths(wt)[2];
    const int64_t rows = 7;
    const size_t stride = row_bytes(wt, n) + 64;  // rows need not be packed
    std::vector<uint8_t> w(stride * rows);
    for (int64_t r = 0; r < rows; ++r) {
      auto row = random_weight_row(rng, wt, n, false);
      std::memcpy(w.data() + r * stride, row.data(), row.size());
    }
    const auto a = encode_act(wt, random_floats(rng, n));
    std::vector<float> out(rows);
    vec_dot_rows(wt, n, w.data(), stride, rows, a.data(), out.data());
    for (int64_t r = 0; r < rows; ++r)
      EXPECT_EQ(out[r], vec_dot(wt, n, w.data() + r * stride, a.data())) << type_name(wt);
  }
}

TEST(VecDot, RefusesTypesWithoutKernel) {
  EXPECT_FALSE(vec_dot_supported(GgmlType::IQ2_XXS));
  EXPECT_TRUE(vec_dot_supported(GgmlType::Q4_K));
  EXPECT_THROW(act_type(GgmlType::IQ2_XXS), Error);
  float x[32] = {};
  uint8_t act[64];
  EXPECT_THROW(quantize_act_row(GgmlType::Q4_0, x, act, 31), Error);
}

}  // namespace
}  // namespace slm

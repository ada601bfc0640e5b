// Kernels against naive references computed here in double precision, on awkward sizes.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <random>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/thread_pool.h"
#include "quant/quant.h"

namespace slm {
namespace {

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

TEST(ThreadPool, ParallelForCoversEveryIndexOnce) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 7, 1000}) {
      std::vector<std::atomic<int>> hits(n);
      for (int rep = 0; rep < 50; ++rep)
        pool.parallel_for(n, [&](int64_t b, int64_t e, int t) {
          ASSERT_GE(t, 0);
          ASSERT_LT(t, threads);
          for (int64_t i = b; i < e; ++i) hits[i]++;
        });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 50) << "n=" << n << " threads=" << threads;
      std::vector<std::atomic<int>> each(n);
      pool.for_each(n, [&](int64_t i, int) { each[i]++; });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(each[i].load(), 1);
    }
  }
}

TEST(Kernels, DotMatchesDouble) {
  for (int n : {1, 7, 8, 9, 63, 257}) {
    auto a = randn(n, 1), b = randn(n, 2);
    double ref = 0;
    for (int i = 0; i < n; ++i) ref += double(a[i]) * b[i];
    EXPECT_NEAR(dot_f32(a.data(), b.data(), n), ref, 1e-5 * std::sqrt(double(n)));
  }
}

TEST(Kernels, MatmulF32MatchesNaive) {
  ThreadPool pool(2);
  const int K = 67, N = 13, T = 5;
  auto w = randn(K * N, 3), x = randn(K * T, 4);
  WeightView W{GgmlType::F32, K, N, reinterpret_cast<const uint8_t*>(w.data()), K * sizeof(float)};
  std::vector<float> y(N * T);
  matmul(pool, W, x.data(), T, y.data());
  for (int t = 0; t < T; ++t)
    for (int o = 0; o < N; ++o) {
      double ref = 0;
      for (int k = 0; k < K; ++k) ref += double(w[o * K + k]) * x[t * K + k];
      EXPECT_NEAR(y[t * N + o], ref, 1e-4) << t << "," << o;
    }
}

// Quantized weights: the product equals dot(dequantized row, rounded activations).
TEST(Kernels, MatmulQuantizedMatchesDequantizedReference) {
  ThreadPool pool(2);
  const int K = 512, N = 9, T = 3;
  auto w = randn(K * N, 5), x = randn(K * T, 6);
  for (GgmlType type : {GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1,
                        GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
    const size_t rb = row_bytes(type, K);
    std::vector<uint8_t> q(rb * N);
    for (int o = 0; o < N; ++o) quantize_row(type, &w[o * K], q.data() + o * rb, K);
    WeightView W{type, K, N, q.data(), rb};
    std::vector<float> y(N * T);
    matmul(pool, W, x.data(), T, y.data());
    std::vector<float> xr = x, row(K);
    for (int t = 0; t < T; ++t) round_activations(type, &xr[t * K], K);
    for (int o = 0; o < N; ++o) {
      dequantize_row(type, q.data() + o * rb, row.data(), K);
      for (int t = 0; t < T; ++t) {
        double ref = 0, mag = 0;
        for (int k = 0; k < K; ++k) {
          ref += double(row[k]) * xr[t * K + k];
          mag += std::fabs(double(row[k]) * xr[t * K + k]);
        }
        EXPECT_NEAR(y[t * N + o], ref, 1e-6 * mag + 1e-6) << type_name(type);
      }
    }
  }
}

// Activation rounding equals encoding with the quant module's own Q8_K / F16 / BF16 and
// decoding again (an independent implementation of the same formats).
TEST(Kernels, ActivationRoundingMatchesQuantModule) {
  auto x = randn(1024, 7, 3.0f);
  for (auto [wtype, atype] : {std::pair{GgmlType::Q4_K, GgmlType::Q8_K}, std::pair{GgmlType::F16, GgmlType::F16},
                              std::pair{GgmlType::BF16, GgmlType::BF16}}) {
    std::vector<float> mine = x, theirs(x.size());
    round_activations(wtype, mine.data(), int64_t(mine.size()));
    std::vector<uint8_t> buf(row_bytes(atype, int64_t(x.size())));
    quantize_row(atype, x.data(), buf.data(), int64_t(x.size()));
    dequantize_row(atype, buf.data(), theirs.data(), int64_t(x.size()));
    for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(mine[i], theirs[i]) << type_name(atype) << " at " << i;
  }
  // Q8_0: codes may differ from a roundf encoder only at exact .5 ties (nearest-even here).
  std::vector<float> mine = x, theirs(x.size());
  round_activations(GgmlType::Q4_0, mine.data(), int64_t(mine.size()));
  std::vector<uint8_t> buf(row_bytes(GgmlType::Q8_0, int64_t(x.size())));
  quantize_row(GgmlType::Q8_0, x.data(), buf.data(), int64_t(x.size()));
  dequantize_row(GgmlType::Q8_0, buf.data(), theirs.data(), int64_t(x.size()));
  int differ = 0;
  for (size_t i = 0; i < x.size(); ++i) differ += mine[i] != theirs[i];
  EXPECT_LE(differ, 2);
}

TEST(Kernels, RmsNormHandComputed) {
  const float x[4] = {1, 2, 3, 4}, w[4] = {1, 0.5f, 2, -1};
  float y[4];
  rmsnorm(x, w, y, 4, 0.0f);
  const double r = std::sqrt((1 + 4 + 9 + 16) / 4.0);  // 2.7386
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(y[i], x[i] / r * w[i], 1e-6);
}

TEST(Kernels, RopeNormAndNeoxMatchFormula) {
  const int hd = 16, heads = 3, n_rot = 12;
  const float factors[6] = {1, 2, 4, 1.5f, 8, 1};
  for (RopeMode mode : {RopeMode::Norm, RopeMode::Neox}) {
    auto x = randn(hd * heads, 8);
    std::vector<float> y = x;
    RopeParams p;
    p.mode = mode;
    p.n_rot = n_rot;
    p.base = 500000;
    p.freq_scale = 0.25f;
    p.attn_factor = 1.1f;
    p.freq_factors = factors;
    const int pos = 37;
    rope(y.data(), heads, hd, pos, p);
    for (int h = 0; h < heads; ++h)
      for (int i = 0; i < n_rot / 2; ++i) {
        double theta = pos * std::pow(500000.0, -2.0 * i / n_rot) / factors[i] * 0.25;
        double c = std::cos(theta) * 1.1, s = std::sin(theta) * 1.1;
        int a = mode == RopeMode::Norm ? 2 * i : i, b = mode == RopeMode::Norm ? 2 * i + 1 : i + n_rot / 2;
        double x0 = x[h * hd + a], x1 = x[h * hd + b];
        EXPECT_NEAR(y[h * hd + a], x0 * c - x1 * s, 2e-5);
        EXPECT_NEAR(y[h * hd + b], x0 * s + x1 * c, 2e-5);
      }
    for (int h = 0; h < heads; ++h)  // dims past n_rot untouched
      for (int d = n_rot; d < hd; ++d) EXPECT_EQ(y[h * hd + d], x[h * hd + d]);
  }
}

TEST(Kernels, SoftmaxSumsToOneAndMatches) {
  std::vector<float> x = {1.0f, 2.0f, 3.0f, -1000.0f};
  softmax(x.data(), 4);
  double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  EXPECT_NEAR(x[0], std::exp(1.0) / z, 1e-7);
  EXPECT_NEAR(x[2], std::exp(3.0) / z, 1e-7);
  EXPECT_EQ(x[3], 0.0f);
}

TEST(Kernels, ActivationsMatchFormulas) {
  for (float v : {-12.0f, -10.0f, -3.3f, -0.5f, 0.0f, 0.01f, 1.7f, 9.9f, 10.0f, 15.0f}) {
    double tanh_gelu = 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
    if (v <= -10) EXPECT_EQ(gelu(v), 0.0f);
    else if (v >= 10) EXPECT_EQ(gelu(v), v);
    else EXPECT_NEAR(gelu(v), tanh_gelu, 2e-3 * std::max(1.0, std::fabs(tanh_gelu)));  // fp16 steps
    EXPECT_NEAR(silu(v), v / (1 + std::exp(-double(v))), 1e-6 * std::max(1.0f, std::fabs(v)));  // f32 relative
  }
  float g[2] = {2.0f, -1.0f}, a[2] = {1.0f, 1.0f};
  swiglu(a, g, 2);
  EXPECT_NEAR(a[0], 2.0 * (1 / (1 + std::exp(-1.0))), 1e-6);
  EXPECT_NEAR(a[1], -1.0 * (1 / (1 + std::exp(-1.0))), 1e-6);
}

}  // namespace
}  // namespace slm

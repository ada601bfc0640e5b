// The interleaved Q4_0, Q8_0, Q4_K, Q5_K and Q6_K layouts: the repack keeps every value (the reference kernels
// equal the plain scalar vec_dot), the fast kernel equals the reference on awkward
// shapes, a token alone equals the same token in a batch bit for bit, and matmul through the
// packed copy equals matmul through the plain rows.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/rows_x8.h"
#include "kernels/thread_pool.h"
#include "kernels/vec_dot.h"
#include "quant/blocks.h"
#include "quant/quant.h"

namespace slm {
namespace {

bool is_k_quant(GgmlType t) { return t == GgmlType::Q4_K || t == GgmlType::Q5_K || t == GgmlType::Q6_K; }

struct Problem {
  GgmlType type;
  int64_t rows, n, tokens;
  std::vector<uint8_t> w, a, packed;
  std::vector<int32_t> sums;
  size_t ws, as;
  Problem(GgmlType type_, int64_t rows_, int64_t n_, int64_t tokens_, uint32_t seed)
      : type(type_), rows(rows_), n(n_), tokens(tokens_) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    ws = row_bytes(type, n);
    as = act_row_bytes(type, n);
    w.resize(ws * rows);
    a.resize(as * tokens);
    std::vector<float> x(n);
    for (int64_t r = 0; r < rows; ++r) {
      for (auto& v : x) v = dist(rng);
      quantize_row(type, x.data(), w.data() + r * ws, n);
    }
    const int64_t nb = n / block();
    sums.resize(tokens * nb);
    for (int64_t t = 0; t < tokens; ++t) {
      for (auto& v : x) v = dist(rng) * (t % 3 == 2 ? 100.0f : 1.0f);  // extreme codes too
      quantize_act_row(type, x.data(), a.data() + t * as, n);
      if (block() == 256) continue;  // Q8_K blocks carry their own sums
      const auto* blk = reinterpret_cast<const quant::block_q8_0*>(a.data() + t * as);
      for (int64_t k = 0; k < nb; ++k) {
        int32_t s = 0;
        for (int i = 0; i < 32; ++i) s += blk[k].qs[i];
        sums[t * nb + k] = s;
      }
    }
    packed.resize(group_bytes() * (rows / 8));
    repack_rows_x8(type, w.data(), ws, rows, n, packed.data());
  }
  int64_t block() const { return is_k_quant(type) ? 256 : 32; }
  size_t group_bytes() const {
    return type == GgmlType::Q4_K   ? size_t(n / 256) * sizeof(block_q4_Kx8)
           : type == GgmlType::Q5_K ? size_t(n / 256) * sizeof(block_q5_Kx8)
                                    : 8 * ws;
  }
  void gemm(bool fast, int64_t g_begin, int64_t g_end, int64_t first_token, int64_t n_tok, float* y, int64_t ys) const {
    const int64_t nb = n / block();
    const uint8_t* at = a.data() + first_token * as;
    const int32_t* st = sums.data() + first_token * nb;
    if (type == GgmlType::Q4_K) {
      const auto* pw = reinterpret_cast<const block_q4_Kx8*>(packed.data());
      (fast ? gemm_q4_Kx8 : gemm_q4_Kx8_scalar)(pw, nb, g_begin, g_end, at, as, n_tok, y, ys);
    } else if (type == GgmlType::Q5_K) {
      const auto* pw = reinterpret_cast<const block_q5_Kx8*>(packed.data());
      (fast ? gemm_q5_Kx8 : gemm_q5_Kx8_scalar)(pw, nb, g_begin, g_end, at, as, n_tok, y, ys);
    } else if (type == GgmlType::Q6_K) {
      const auto* pw = reinterpret_cast<const block_q6_Kx8*>(packed.data());
      (fast ? gemm_q6_Kx8 : gemm_q6_Kx8_scalar)(pw, nb, g_begin, g_end, at, as, n_tok, y, ys);
    } else if (type == GgmlType::Q4_0) {
      const auto* pw = reinterpret_cast<const block_q4_0x8*>(packed.data());
      (fast ? gemm_q4_0x8 : gemm_q4_0x8_scalar)(pw, nb, g_begin, g_end, at, as, st, n_tok, y, ys);
    } else {
      const auto* pw = reinterpret_cast<const block_q8_0x8*>(packed.data());
      (fast ? gemm_q8_0x8 : gemm_q8_0x8_scalar)(pw, nb, g_begin, g_end, at, as, st, n_tok, y, ys);
    }
  }
};

const GgmlType kTypes[] = {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

// The shapes below are in 32-value blocks; the K-quants' super-blocks hold 256.
int64_t values(GgmlType type, int64_t n) { return is_k_quant(type) ? 8 * n : n; }

TEST(RowsX8, ReferenceEqualsScalarVecDot) {
  // Every block sum is an exact integer and the per-block float operations are the scalar
  // vec_dot's, so the two agree to rounding of the final sum only.
  for (GgmlType type : kTypes) {
  Problem p(type, 16, values(type, 96), 3, 1);
  std::vector<float> y(p.tokens * p.rows);
  p.gemm(false, 0, p.rows / 8, 0, p.tokens, y.data(), p.rows);
  for (int64_t t = 0; t < p.tokens; ++t)
    for (int64_t r = 0; r < p.rows; ++r) {
      const float want = vec_dot_scalar(type, p.n, p.w.data() + r * p.ws, p.a.data() + t * p.as);
      ASSERT_NEAR(y[t * p.rows + r], want, 1e-5f * (1 + std::fabs(want))) << type_name(type) << " row " << r << " token " << t;
    }
  }
}

TEST(RowsX8, KernelEqualsReferenceOnAwkwardShapes) {
  struct Shape { int64_t rows, n, tokens, g_begin, g_end; };
  const Shape shapes[] = {{8, 32, 1, 0, 1}, {16, 64, 5, 0, 2}, {24, 288, 9, 1, 3}, {64, 2048, 4, 0, 8}, {32, 96, 7, 2, 4}};
  for (GgmlType type : kTypes)
  for (const Shape& s : shapes) {
    Problem p(type, s.rows, values(type, s.n), s.tokens, uint32_t(s.rows * 31 + s.n));
    const int64_t ys = s.rows + 5;
    std::vector<float> y(s.tokens * ys, 777.0f), ref(s.tokens * ys, 777.0f);
    p.gemm(true, s.g_begin, s.g_end, 0, s.tokens, y.data(), ys);
    p.gemm(false, s.g_begin, s.g_end, 0, s.tokens, ref.data(), ys);
    for (size_t i = 0; i < y.size(); ++i) {
      const int64_t r = int64_t(i) % ys;
      if (r < 8 * s.g_begin || r >= 8 * s.g_end) {
        ASSERT_EQ(y[i], 777.0f) << "wrote outside its row groups";
        continue;
      }
      // The block sums are exact integers; only the float sum over blocks can differ (another
      // FMA contraction at another -O level), by roundings of the running sum, whose size is
      // about √n times the activations' (tokens t % 3 == 2 carry 100 times larger ones), not
      // the result's, which can cancel to near 0.
      const float mag = (int64_t(i) / ys) % 3 == 2 ? 100.0f : 1.0f;
      ASSERT_NEAR(y[i], ref[i], 1e-6f * mag * std::sqrt(static_cast<float>(p.n)) + 1e-5f * std::fabs(ref[i]))
          << type_name(type) << " rows " << s.rows << " n " << p.n << " i " << i;
    }
    // A token alone gives bit-identical results to the same token in the batch.
    for (int64_t t = 0; t < s.tokens; ++t) {
      std::vector<float> one(ys, 0.0f);
      p.gemm(true, s.g_begin, s.g_end, t, 1, one.data(), ys);
      for (int64_t r = 8 * s.g_begin; r < 8 * s.g_end; ++r) ASSERT_EQ(one[r], y[t * ys + r]) << "token " << t;
    }
  }
}

TEST(RowsX8, MatmulThroughPackedCopyEqualsPlainRows) {
  for (GgmlType type : kTypes) {
  Problem p(type, 40, values(type, 256), 6, 5);
  std::mt19937 rng(9);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(p.tokens * p.n);
  for (auto& v : x) v = dist(rng);
  ThreadPool pool(2);
  WeightView plain{type, p.n, p.rows, p.w.data(), p.ws};
  WeightView packed = plain;
  packed.packed = reinterpret_cast<const uint8_t*>(p.packed.data());
  packed.packed_group_bytes = p.group_bytes();
  for (int64_t tokens : {int64_t(1), p.tokens}) {
    std::vector<float> y0(tokens * p.rows), y1(tokens * p.rows);
    matmul(pool, plain, x.data(), tokens, y0.data());
    matmul(pool, packed, x.data(), tokens, y1.data());
    // The two paths sum the same exact block products in different float orders: rounding
    // scales with the products' size, √n for unit weights and inputs, not with y, which can
    // cancel to near 0 (K-quant rows are 2048 long here).
    const float scale = std::sqrt(static_cast<float>(p.n));
    for (size_t i = 0; i < y0.size(); ++i)
      ASSERT_NEAR(y1[i], y0[i], 1e-6f * (scale + std::fabs(y0[i]))) << type_name(type) << " " << i;
  }
  // A slice of whole groups keeps the packed rows; its results are the same rows'.
  const WeightView slice = packed.slice_rows(16, 16);
  ASSERT_NE(slice.packed, nullptr);
  EXPECT_EQ(packed.slice_rows(4, 16).packed, nullptr);
  std::vector<float> ys(16), yall(p.rows);
  matmul(pool, slice, x.data(), 1, ys.data());
  matmul(pool, packed, x.data(), 1, yall.data());
  for (int r = 0; r < 16; ++r) EXPECT_EQ(ys[r], yall[16 + r]);
  }
}

}  // namespace
}  // namespace slm

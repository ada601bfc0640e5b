// Training's products with a frozen matrix against double-precision sums over the dequantized
// matrix, on shapes that are not multiples of any tile: dx += Wᵀ·dy by the f32 kernel to float
// rounding and by the bfloat16 one (AMX, where this CPU has it) to the bound its rounding
// allows; y = W·x likewise (the plain path being the inference kernels, whose activations are
// rounded to 8 bits). Every result is the same bits at every thread count.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <tuple>
#include <vector>

#include "kernels/cpu.h"
#include "kernels/kernels.h"
#include "kernels/thread_pool.h"
#include "quant/quant.h"
#include "train/backprop.h"
#include "train/gemm.h"

namespace slm::train {
namespace {

struct Case {
  GgmlType type;
  int64_t rows, cols;
  int n;
};

struct Matrix {
  std::vector<uint8_t> bytes;
  std::vector<float> dense;  // what the file means: the dequantized rows
  WeightView view;
};

Matrix random_matrix(GgmlType type, int64_t rows, int64_t cols, std::mt19937& rng) {
  std::normal_distribution<float> d(0.0f, 1.0f);
  Matrix m;
  const size_t rb = row_bytes(type, cols);
  m.bytes.resize(rb * size_t(rows));
  m.dense.resize(size_t(rows * cols));
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t o = 0; o < rows; ++o) {
    for (float& x : row) x = d(rng);
    quantize_row(type, row.data(), m.bytes.data() + size_t(o) * rb, cols);
    dequantize_row(type, m.bytes.data() + size_t(o) * rb, m.dense.data() + o * cols, cols);
  }
  m.view = {type, cols, rows, m.bytes.data(), rb};
  return m;
}

class MatmulTransposedTest : public ::testing::TestWithParam<Case> {};

TEST_P(MatmulTransposedTest, MatchesDoubleSum) {
  const Case c = GetParam();
  std::mt19937 rng(uint32_t(c.rows * 31 + c.cols + c.n));
  const Matrix m = random_matrix(c.type, c.rows, c.cols, rng);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> dy(size_t(c.n * c.rows)), start(size_t(c.n * c.cols));
  for (float& x : dy) x = d(rng);
  for (float& x : start) x = d(rng);

  for (MatmulPath kernel : {MatmulPath::plain, MatmulPath::best}) {
    std::vector<float> dx = start;
    ThreadPool pool(2);
    matmul_transposed(pool, m.view, dy.data(), c.n, dx.data(), kernel);
    // bfloat16 products: each factor within 2⁻⁹ of itself, so each product within 2⁻⁸ of
    // |w·dy|; f32: the sum's own rounding, far inside 1e-5 of the same scale.
    const bool rounded = kernel == MatmulPath::best && cpu_has_amx_bf16() && c.type != GgmlType::F32 &&
                         c.type != GgmlType::F16 && c.type != GgmlType::BF16;
    const double tol = rounded ? 1.0 / 256 : 1e-5;
    double worst = 0;
    for (int t = 0; t < c.n; ++t)
      for (int64_t i = 0; i < c.cols; ++i) {
        double sum = start[size_t(t * c.cols + i)], scale = 0;
        for (int64_t o = 0; o < c.rows; ++o) {
          const double term = double(dy[size_t(t * c.rows + o)]) * m.dense[size_t(o * c.cols + i)];
          sum += term;
          scale += std::fabs(term);
        }
        const double err = std::fabs(dx[size_t(t * c.cols + i)] - sum) / std::max(scale, 1e-30);
        worst = std::max(worst, err);
        ASSERT_LE(err, tol) << "token " << t << " column " << i << (rounded ? " (bf16)" : " (f32)");
      }
    // Any thread count: the same bits.
    for (int threads : {1, 3}) {
      std::vector<float> again = start;
      ThreadPool other(threads);
      matmul_transposed(other, m.view, dy.data(), c.n, again.data(), kernel);
      ASSERT_EQ(again, dx) << threads << " threads";
    }
    std::printf("%s %lldx%lld n=%d %s: worst %.2e of Σ|w·dy|\n", type_info(uint32_t(c.type))->name,
                (long long)c.rows, (long long)c.cols, c.n, rounded ? "bf16" : "f32", worst);
  }
}

TEST_P(MatmulTransposedTest, ForwardMatchesDoubleSum) {
  const Case c = GetParam();
  std::mt19937 rng(uint32_t(c.rows * 7 + c.cols + c.n));
  const Matrix m = random_matrix(c.type, c.rows, c.cols, rng);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> x(size_t(c.n * c.cols));
  for (float& v : x) v = d(rng);
  for (MatmulPath path : {MatmulPath::plain, MatmulPath::best}) {
    std::vector<float> y(size_t(c.n * c.rows), NAN);
    ThreadPool pool(2);
    matmul_forward(pool, m.view, x.data(), c.n, y.data(), path);
    // Both paths round x to about 8 significant bits (bf16, or int8 per block of the plain
    // path's quantized activations): bound each error by Σ|w|·max|x| / 256.
    double worst = 0;
    for (int t = 0; t < c.n; ++t) {
      double xmax = 0;
      for (int64_t i = 0; i < c.cols; ++i) xmax = std::max(xmax, double(std::fabs(x[size_t(t * c.cols + i)])));
      for (int64_t o = 0; o < c.rows; ++o) {
        double sum = 0, wsum = 0;
        for (int64_t i = 0; i < c.cols; ++i) {
          sum += double(x[size_t(t * c.cols + i)]) * m.dense[size_t(o * c.cols + i)];
          wsum += std::fabs(m.dense[size_t(o * c.cols + i)]);
        }
        const double err = std::fabs(y[size_t(t * c.rows + o)] - sum) / (wsum * xmax);
        worst = std::max(worst, err);
        ASSERT_LE(err, 1.0 / 256) << "token " << t << " row " << o;
      }
    }
    for (int threads : {1, 3}) {
      std::vector<float> again(y.size(), NAN);
      ThreadPool other(threads);
      matmul_forward(other, m.view, x.data(), c.n, again.data(), path);
      ASSERT_EQ(again, y) << threads << " threads";
    }
    std::printf("forward %s %lldx%lld n=%d %s: worst %.2e of Σ|w|·max|x|\n", type_info(uint32_t(c.type))->name,
                (long long)c.rows, (long long)c.cols, c.n, path == MatmulPath::best ? "best" : "plain", worst);
  }
}

// Attention's dense products: the vector kernel against a double sum, with leading dimensions
// wider than the matrices and every remainder of its 6-row × 64-column blocks.
TEST(GemmAcc, FloatKernelMatchesDoubleSum) {
  std::mt19937 rng(5);
  std::normal_distribution<float> d(0.0f, 1.0f);
  for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1}, {7, 65, 3}, {13, 130, 64}, {64, 512, 70}}) {
    const int64_t lda = K + 3, ldb = N + 5, ldc = N + 7;
    std::vector<float> A(size_t(M * lda)), B(size_t(K * ldb)), C(size_t(M * ldc));
    for (float& v : A) v = d(rng);
    for (float& v : B) v = d(rng);
    for (float& v : C) v = d(rng);
    const std::vector<float> start = C;
    gemm_acc<float>(M, N, K, A.data(), lda, B.data(), ldb, C.data(), ldc);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < ldc; ++j) {
        if (j >= N) {  // outside the product: untouched
          ASSERT_EQ(C[size_t(i * ldc + j)], start[size_t(i * ldc + j)]);
          continue;
        }
        double sum = start[size_t(i * ldc + j)], scale = std::fabs(sum);
        for (int64_t k = 0; k < K; ++k) {
          sum += double(A[size_t(i * lda + k)]) * B[size_t(k * ldb + j)];
          scale += std::fabs(double(A[size_t(i * lda + k)]) * B[size_t(k * ldb + j)]);
        }
        ASSERT_NEAR(C[size_t(i * ldc + j)], sum, 1e-6 * scale) << M << "x" << N << "x" << K << " at " << i << "," << j;
      }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, MatmulTransposedTest,
                         ::testing::Values(Case{GgmlType::Q4_K, 600, 768, 37}, Case{GgmlType::Q6_K, 513, 256, 70},
                                           Case{GgmlType::Q8_0, 1031, 96, 5}, Case{GgmlType::Q4_0, 64, 544, 1},
                                           Case{GgmlType::Q5_K, 37, 512, 33}, Case{GgmlType::F32, 100, 200, 9},
                                           Case{GgmlType::F16, 130, 300, 17}));

}  // namespace
}  // namespace slm::train

// gemm_q against vec_dot, element by element and bit for bit, on shapes that exercise the register tiles,
// their edges (rows and tokens not multiples of the tile) and a row range that starts
// mid-matrix; outputs outside the range must stay untouched.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/gemm_q.h"
#include "kernels/vec_dot.h"
#include "quant/quant.h"

namespace slm {
namespace {

const GgmlType kTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0,
                           GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0,
                           GgmlType::IQ4_NL, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K,
                           GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_XS};

TEST(GemmQ, EqualsVecDotPerElement) {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  struct Shape { int64_t rows, tokens, row_begin, row_end; };
  const Shape shapes[] = {{16, 8, 0, 16}, {13, 7, 1, 12}, {9, 1, 0, 9}, {40, 11, 4, 37}};
  for (GgmlType t : kTypes) {
    const int64_t bs = type_info(t).block_size;
    for (const int64_t n : {bs == 256 ? 256 : 32, bs == 256 ? 768 : 96})
    for (const Shape& s : shapes) {
      const size_t ws = row_bytes(t, n), as = act_row_bytes(t, n);
      std::vector<uint8_t> w(ws * s.rows), a(as * s.tokens);
      std::vector<float> x(n);
      for (int64_t r = 0; r < s.rows; ++r) {
        for (auto& v : x) v = dist(rng);
        quantize_row(t, x.data(), w.data() + r * ws, n);
      }
      for (int64_t k = 0; k < s.tokens; ++k) {
        for (auto& v : x) v = dist(rng);
        quantize_act_row(t, x.data(), a.data() + k * as, n);
      }
      const int64_t ys = s.rows + 3;
      std::vector<float> y(ys * s.tokens, 12345.0f);
      gemm_q(t, n, w.data(), ws, a.data(), as, s.tokens, y.data(), ys, s.row_begin, s.row_end);
      for (int64_t k = 0; k < s.tokens; ++k)
        for (int64_t r = 0; r < ys; ++r) {
          const float got = y[k * ys + r];
          if (r < s.row_begin || r >= s.row_end) {
            ASSERT_EQ(got, 12345.0f) << type_name(t) << " wrote outside its rows";
            continue;
          }
          const float want = vec_dot(t, n, w.data() + r * ws, a.data() + k * as);
          // Bit-identical: a token alone (decode) and inside a batch must round the same.
          ASSERT_EQ(got, want)
              << type_name(t) << " row " << r << " token " << k << " of " << s.rows << "x" << s.tokens;
        }
    }
  }
}

}  // namespace
}  // namespace slm

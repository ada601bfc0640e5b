#include "kernels/gemm_q_matmul.h"

#include <algorithm>
#include <vector>

#include "kernels/gemm_q.h"
#include "kernels/rows_x8.h"
#include "quant/blocks.h"
#include "kernels/vec_dot.h"

namespace slm {

bool matmul_quantized(ThreadPool& pool, const WeightView& W, const float* x, int64_t n_tokens, float* y) {
  if (!vec_dot_supported(W.type) || W.cols % act_block_size(W.type) != 0) return false;
  const int64_t K = W.cols, N = W.rows;
  const size_t as = act_row_bytes(W.type, K);
  // Scratch for the encoded activations, kept per calling thread (a Model may run several
  // sequences from several threads) so a decode step does not allocate.
  thread_local std::vector<uint8_t> acts;
  if (acts.size() < as * static_cast<size_t>(n_tokens)) acts.resize(as * static_cast<size_t>(n_tokens));
  uint8_t* a = acts.data();
  if (W.packed && (W.type == GgmlType::Q4_0 || W.type == GgmlType::Q8_0) && N % 8 == 0) {
    // Interleaved rows (rows_x8.h), decode and prompt alike; the kernels need each
    // activation block's code sum to offset the weight codes.
    const int64_t nb = K / 32;
    thread_local std::vector<int32_t> sums;
    if (sums.size() < static_cast<size_t>(n_tokens * nb)) sums.resize(static_cast<size_t>(n_tokens * nb));
    int32_t* sum = sums.data();  // (the workers must not name the thread_local: they have their own)
    pool.parallel_for(n_tokens, [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; ++t) {
        uint8_t* at = a + static_cast<size_t>(t) * as;
        quantize_act_row(W.type, x + t * K, at, K);
        const auto* blocks = reinterpret_cast<const quant::block_q8_0*>(at);
        for (int64_t k = 0; k < nb; ++k) {
          int32_t s = 0;
          for (int i = 0; i < 32; ++i) s += blocks[k].qs[i];
          sum[t * nb + k] = s;
        }
      }
    });
    pool.parallel_for(N / 8, [&](int64_t gb, int64_t ge, int) {
      if (W.type == GgmlType::Q4_0)
        gemm_q4_0x8(reinterpret_cast<const block_q4_0x8*>(W.packed), nb, gb, ge, a, as, sum, n_tokens, y, N);
      else
        gemm_q8_0x8(reinterpret_cast<const block_q8_0x8*>(W.packed), nb, gb, ge, a, as, sum, n_tokens, y, N);
    });
    return true;
  }
  if (W.packed && (W.type == GgmlType::Q4_K || W.type == GgmlType::Q5_K || W.type == GgmlType::Q6_K) && N % 8 == 0) {
    // The K-quant layouts take Q8_K activations, whose blocks carry their own sums.
    const int64_t nb = K / 256;
    pool.parallel_for(n_tokens, [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; ++t) quantize_act_row(W.type, x + t * K, a + static_cast<size_t>(t) * as, K);
    });
    pool.parallel_for(N / 8, [&](int64_t gb, int64_t ge, int) {
      if (W.type == GgmlType::Q4_K)
        gemm_q4_Kx8(reinterpret_cast<const block_q4_Kx8*>(W.packed), nb, gb, ge, a, as, n_tokens, y, N);
      else if (W.type == GgmlType::Q5_K)
        gemm_q5_Kx8(reinterpret_cast<const block_q5_Kx8*>(W.packed), nb, gb, ge, a, as, n_tokens, y, N);
      else
        gemm_q6_Kx8(reinterpret_cast<const block_q6_Kx8*>(W.packed), nb, gb, ge, a, as, n_tokens, y, N);
    });
    return true;
  }
  if (n_tokens == 1) {
    quantize_act_row(W.type, x, a, K);
    pool.parallel_for(N, [&](int64_t b, int64_t e, int) {
      vec_dot_rows(W.type, K, W.data + static_cast<size_t>(b) * W.row_stride, W.row_stride, e - b, a, y + b);
    });
    return true;
  }
  pool.parallel_for(n_tokens, [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) quantize_act_row(W.type, x + t * K, a + static_cast<size_t>(t) * as, K);
  });
  // Row ranges in whole groups of 4 so every range runs on gemm_q's register tiles.
  const int64_t groups = (N + 3) / 4;
  pool.parallel_for(groups, [&](int64_t gb, int64_t ge, int) {
    gemm_q(W.type, K, W.data, W.row_stride, a, as, n_tokens, y, N, gb * 4, std::min(N, ge * 4));
  });
  return true;
}

}  // namespace slm

#include "kernels/gemm_q_matmul.h"

#include <algorithm>
#include <vector>

#include "kernels/gemm_q.h"
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

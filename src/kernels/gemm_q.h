// Matrix product of a quantized weight matrix with a batch of encoded activation rows, for
// prompt processing: Y[t][o] = dot(weight row o, activation row t). Weights are read in
// cache-sized blocks of rows and each loaded block is reused across several tokens (register
// tiles of 4 rows × 4 tokens for the 32-value block formats), instead of streaming the whole
// matrix once per token as vec_dot would.
#pragma once
#include <cstddef>
#include <cstdint>

#include "quant/types.h"

namespace slm {

// For t in [0, n_tok) and o in [row_begin, row_end):
//   y[t * y_stride + o] = vec_dot(weight_type, n, w + o * w_stride, acts + t * act_stride)
// (up to float summation order). acts holds n_tok rows encoded by quantize_act_row for
// weight_type. The caller's thread pool splits [0, n_rows) into row ranges; ranges that
// are multiples of 4 rows use the register tiles throughout.
void gemm_q(GgmlType weight_type, int64_t n, const void* w, size_t w_stride, const void* acts,
            size_t act_stride, int64_t n_tok, float* y, int64_t y_stride, int64_t row_begin,
            int64_t row_end);

}  // namespace slm

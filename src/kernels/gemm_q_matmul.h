// The bridge from the forward pass's matmul (kernels.h) to the quantized kernels: encodes
// the activations once per token row, then splits the output rows over the thread pool,
// one vec_dot_rows call per range for a single token (decode) or gemm_q tiles for a batch
// (prompt processing). kernels.cpp's matmul calls it first and keeps its own path for
// anything it declines.
#pragma once
#include <cstdint>

#include "kernels/kernels.h"

namespace slm {

// y[t * W.rows + o] = dot(row o of W, x[t * W.cols ..]) for t in [0, n_tokens), with the
// activations rounded to act_type(W.type) as llama.cpp's CPU backend rounds them. Returns
// false without touching y when W's type has no dot kernel or W.cols is not a multiple of
// the activation block size.
bool matmul_quantized(ThreadPool& pool, const WeightView& W, const float* x, int64_t n_tokens, float* y);

}  // namespace slm

// Internal to the vec_dot / gemm_q kernels: the per-type kernel signature and the two kernel
// tables (scalar reference, SIMD). Each entry takes n values of one weight row and one encoded
// activation row.
#pragma once
#include <cstdint>

#include "quant/types.h"

namespace slm::vdot {

using DotFn = float (*)(int64_t n, const void* w, const void* a);
using QuantizeActFn = void (*)(const float* x, void* act, int64_t n);

// nullptr where the table has no kernel for the type.
DotFn scalar_kernel(GgmlType weight_type);
DotFn simd_kernel(GgmlType weight_type);  // nullptr everywhere when built without AVX2
// gemm_q's 1 × 1 register tile as a dot kernel (types with a tile; nullptr otherwise). The
// dispatch prefers it, so single tokens and batches round identically.
DotFn tiled_kernel(GgmlType weight_type);

// Activation encoders: scalar (the reference) and SIMD (nullptr without AVX2) for the
// activation type (Q8_0, Q8_1, Q8_K, F16, BF16, F32).
QuantizeActFn scalar_act_quantizer(GgmlType act_type);
QuantizeActFn simd_act_quantizer(GgmlType act_type);

}  // namespace slm::vdot

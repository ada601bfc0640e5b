// Scalar reference (de)quantization of ggml block formats. Written for clarity: every SIMD
// kernel is tested against these. n is the number of values and a multiple of the block size.
#pragma once
#include <cstdint>

#include "quant/types.h"

namespace slm {

// Decodes n values of type t starting at src into dst. Throws slm::Error for a type without
// a dequantizer.
void dequantize_row(GgmlType t, const void* src, float* dst, int64_t n);

// Encodes n floats into blocks of type t at dst (row_bytes(t, n) bytes). Types: F32, F16,
// BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q8_K, Q4_K, Q5_K, Q6_K (and Q2_K, Q3_K, IQ4_NL,
// IQ4_XS where type_info says can_quantize). Throws slm::Error otherwise.
void quantize_row(GgmlType t, const float* src, void* dst, int64_t n);

}  // namespace slm

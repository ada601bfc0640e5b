// Dot products of one weight row with one activation row, for every weight type slm reads,
// behind one dispatch point. The activation row is first encoded once (quantize_act_row) into
// the 8-bit block format that pairs with the weight type, so the inner loop is an integer
// multiply-add per block and one float scale multiply per block:
//
//   weight type                          activation format (act_type)
//   Q4_0 Q5_0 Q8_0 IQ4_NL                Q8_0  (32 values, fp16 scale amax/127, round half away)
//   Q4_1 Q5_1                            Q8_1  (Q8_0 plus s = d·Σq as fp16; the kernels sum the
//                                               codes themselves for the min term instead of
//                                               reading s, which is 2^-11 off)
//   Q2_K Q3_K Q4_K Q5_K Q6_K IQ4_XS      Q8_K  (256 values, f32 scale, sums of each 16 codes)
//   F16 / BF16                           F16 / BF16 (products formed in f32)
//   F32                                  F32
// These are the pairings llama.cpp's CPU backend uses, and the encoded activation rows are
// byte-identical to src/quant's quantize_row for the activation type (tested).
//
// vec_dot uses the fastest kernel compiled in (AVX2, with AVX-VNNI when present); vec_dot_scalar
// is the plain reference every fast kernel is tested against.
#pragma once
#include <cstddef>
#include <cstdint>

#include "quant/types.h"

namespace slm {

// True when vec_dot has a kernel for weights of type t.
bool vec_dot_supported(GgmlType weight_type);

// The activation format that weights of type t are multiplied with (see the table above).
// Throws slm::Error for an unsupported weight type.
GgmlType act_type(GgmlType weight_type);

// Values per activation block (1, 32 or 256): n passed to quantize_act_row / vec_dot must be
// a multiple of it (it equals the weight type's block size).
int64_t act_block_size(GgmlType weight_type);

// Bytes of one encoded activation row of n values.
size_t act_row_bytes(GgmlType weight_type, int64_t n);

// Encodes x[n] into act (act_row_bytes bytes) for dot products with weights of type t.
// Non-finite inputs do not throw; they give non-finite results, as in llama.cpp.
void quantize_act_row(GgmlType weight_type, const float* x, void* act, int64_t n);

// dot(weight row of n values, encoded activation row).
float vec_dot(GgmlType weight_type, int64_t n, const void* weight_row, const void* act_row);

// out[r] = vec_dot(row r) for r in [0, n_rows), row r at weight + r * weight_row_stride bytes.
// Same results as n_rows calls of vec_dot; lets a caller hand a slice of rows to one thread.
void vec_dot_rows(GgmlType weight_type, int64_t n, const void* weight, size_t weight_row_stride,
                  int64_t n_rows, const void* act_row, float* out);

// The scalar reference: the block formats of src/quant decoded plainly, integer sums per
// block, accumulated in order. Same arguments and activation encoding as vec_dot.
float vec_dot_scalar(GgmlType weight_type, int64_t n, const void* weight_row, const void* act_row);

}  // namespace slm

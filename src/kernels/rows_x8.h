// Q4_0 and Q8_0 weights repacked eight rows at a time, for the CPU matmul.
//
// In the file, each Q4_0 (Q8_0) row is a run of 18-byte blocks; a dot product sums inside each
// block (a horizontal reduction per row and token). Interleaving the blocks of eight rows
// puts row r's codes in 32-bit lane r of a vector: one integer multiply-add of the eight rows'
// codes with four activation bytes broadcast to every lane advances all eight dot products
// at once, with no horizontal sum, and the eight scales form one vector. This is the layout
// llama.cpp's CPU backend also repacks Q4_0 into; the arithmetic per (row, token) is the same
// integer block sum and one scale multiply per block as vec_dot's.
//
// Block k of row group g (rows 8g..8g+7): d[r] is row r's scale; qs holds four 32-byte chunks,
// chunk m byte 4r+i = the row's original qs[4m+i] (low nibble value 4m+i, high nibble value
// 16+4m+i), so chunk m unpacks into the codes of values 4m..4m+3 (low nibbles) and
// 16+4m..16+4m+3 (high nibbles) of all eight rows.
//
// Q8_0 likewise: qs holds eight 32-byte chunks, chunk m byte 4r+i = the row's qs[4m+i].
#pragma once
#include <cstddef>
#include <cstdint>

namespace slm {

struct block_q4_0x8 {
  uint16_t d[8];
  uint8_t qs[128];
};
static_assert(sizeof(block_q4_0x8) == 8 * 18);

struct block_q8_0x8 {
  uint16_t d[8];
  int8_t qs[256];
};
static_assert(sizeof(block_q8_0x8) == 8 * 34);

// True when this build has fast kernels for the layouts (AVX2); without them, weights are
// not repacked.
bool rows_x8_available();

// Repacks rows [0, rows) of a Q4_0 matrix (rows % 8 == 0, nb blocks per row, row r at
// src + r * row_stride) into dst[rows / 8 * nb], group g's blocks at dst + g * nb.
void repack_q4_0x8(const void* src, size_t row_stride, int64_t rows, int64_t nb, block_q4_0x8* dst);

// For groups [g_begin, g_end) and tokens t in [0, n_tok):
//   y[t * ys + 8g + r] = Σ_k d_w · d_a · (Σ codes·acts − 8·Σ acts)   over the nb blocks,
// acts: n_tok Q8_0 rows (act_stride bytes apart); act_sums[t * nb + k] = Σ of block k's codes
// of token t (for the −8 offset of Q4_0 codes).
void gemm_q4_0x8(const block_q4_0x8* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts,
                 size_t act_stride, const int32_t* act_sums, int64_t n_tok, float* y, int64_t ys);

// The same, plainly, one (row, token) at a time from the interleaved layout: the reference
// the fast kernel is tested against.
void gemm_q4_0x8_scalar(const block_q4_0x8* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts,
                        size_t act_stride, const int32_t* act_sums, int64_t n_tok, float* y, int64_t ys);

// Q8_0: the same contract with y = Σ_k d_w · d_a · Σ codes·acts (act_sums are used by the
// kernels that offset the signed weight codes to unsigned ones).
void repack_q8_0x8(const void* src, size_t row_stride, int64_t rows, int64_t nb, block_q8_0x8* dst);
void gemm_q8_0x8(const block_q8_0x8* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts,
                 size_t act_stride, const int32_t* act_sums, int64_t n_tok, float* y, int64_t ys);
void gemm_q8_0x8_scalar(const block_q8_0x8* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts,
                        size_t act_stride, const int32_t* act_sums, int64_t n_tok, float* y, int64_t ys);

}  // namespace slm

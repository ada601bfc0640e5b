// Q4_0, Q8_0, Q4_K, Q5_K and Q6_K weights repacked eight rows at a time, for the CPU matmul.
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
//
// Q4_K likewise, one 256-value super-block of eight rows per interleaved block: qs holds 32
// chunks, chunk m byte 4r+i = the row's qs[4m+i] (chunks 8p..8p+7 carry sub-block 2p in their
// low nibbles and 2p+1 in their high ones), and the 6-bit scales and mins are unpacked to
// bytes laid out for the kernel: scales[8j + r] is row r's scale of sub-block j (eight rows in
// eight lanes), mins[16p + 2r + e] row r's min of sub-block 2p+e (pairs for a 16-bit multiply-
// add against the activations' sub-block sums). Unpacking makes a group 32 bytes (2.8%)
// larger than its eight plain rows.
//
// Q5_K is Q4_K's layout plus the fifth bits: qh chunk c byte 4r+i = the row's qh[4c+i], whose
// bit 2p+e is the fifth bit of value 64p + 32e + 4c + i (read with qs chunk 8p + c).
//
// Q6_K is rearranged so that each 16-value sub-block's codes sit together, 96 bytes of qs
// read in order: with u = q + 32 (0..63, the stored 6-bit code), qs[96s + 32h + 4r + i] holds
// u's low four bits of row r's value 16s+8h+i (low nibble) and of value 16s+8h+4+i (high
// nibble); qs[96s + 64 + 4r + i] holds u's top two bits of value 16s+4e+i in bits 2e..2e+1.
// scales[8s + r] is row r's (signed) scale of sub-block s. Same bytes as the plain rows.
#pragma once
#include <cstddef>
#include <cstdint>

#include "quant/types.h"

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

struct block_q4_Kx8 {
  uint16_t d[8];
  uint16_t dmin[8];
  uint8_t scales[64];
  uint8_t mins[64];
  uint8_t qs[1024];
};
static_assert(sizeof(block_q4_Kx8) == 8 * 144 + 32);

struct block_q5_Kx8 {
  uint16_t d[8];
  uint16_t dmin[8];
  uint8_t scales[64];
  uint8_t mins[64];
  uint8_t qh[256];
  uint8_t qs[1024];
};
static_assert(sizeof(block_q5_Kx8) == 8 * 176 + 32);

struct block_q6_Kx8 {
  uint16_t d[8];
  int8_t scales[128];
  uint8_t qs[1536];
};
static_assert(sizeof(block_q6_Kx8) == 8 * 210);

// True when this build has fast kernels for the layouts (AVX2); without them, weights are
// not repacked.
bool rows_x8_available();

// The bytes of one group of eight interleaved rows of `cols` values of `type`, or 0 when the
// type has no interleaved layout or cols is not a whole number of its blocks.
size_t rows_x8_group_bytes(GgmlType type, int64_t cols);
// Repacks rows [0, rows) (rows % 8 == 0; rows_x8_group_bytes(type, cols) > 0) into dst,
// rows / 8 groups of rows_x8_group_bytes(type, cols): the per-type repack_* below by type.
void repack_rows_x8(GgmlType type, const void* src, size_t row_stride, int64_t rows, int64_t cols, void* dst);

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

// Q4_K: the same contract with Q8_K activations (n_tok rows of nb blocks) and
//   y = Σ_k d_a · (d_w · Σ_j scale_j · Σ codes·acts − dmin_w · Σ_j min_j · Σ acts of sub-block j),
// the integer sums exact, as vec_dot's Q4_K kernel (no separate activation sums: Q8_K
// blocks carry theirs).
void repack_q4_Kx8(const void* src, size_t row_stride, int64_t rows, int64_t nb, block_q4_Kx8* dst);
void gemm_q4_Kx8(const block_q4_Kx8* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts,
                 size_t act_stride, int64_t n_tok, float* y, int64_t ys);
void gemm_q4_Kx8_scalar(const block_q4_Kx8* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts,
                        size_t act_stride, int64_t n_tok, float* y, int64_t ys);

// Q5_K: Q4_K's contract, the codes five bits.
void repack_q5_Kx8(const void* src, size_t row_stride, int64_t rows, int64_t nb, block_q5_Kx8* dst);
void gemm_q5_Kx8(const block_q5_Kx8* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts,
                 size_t act_stride, int64_t n_tok, float* y, int64_t ys);
void gemm_q5_Kx8_scalar(const block_q5_Kx8* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts,
                        size_t act_stride, int64_t n_tok, float* y, int64_t ys);

// Q6_K: y = Σ_k d_a · d_w · Σ_s scale_s · (Σ u·acts − 32 · Σ acts of sub-block s), with Q8_K
// activations, whose 16-value sums are exactly the sub-block sums.
void repack_q6_Kx8(const void* src, size_t row_stride, int64_t rows, int64_t nb, block_q6_Kx8* dst);
void gemm_q6_Kx8(const block_q6_Kx8* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts,
                 size_t act_stride, int64_t n_tok, float* y, int64_t ys);
void gemm_q6_Kx8_scalar(const block_q6_Kx8* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts,
                        size_t act_stride, int64_t n_tok, float* y, int64_t ys);

}  // namespace slm

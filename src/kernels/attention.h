// Scaled dot-product attention of one query position against the cached keys and values of
// one KV head, for all the query heads that share it (grouped-query attention). Each cached
// row is loaded once per group, converted from f16 eight values at a time, and used by every
// query head of the group, so the cache is read once per head group rather than once per
// query head.
#pragma once
#include <cstddef>
#include <cstdint>

#include "quant/types.h"

namespace slm {

// One KV head's rows in a cache: key j at element j * k_stride of k, value j likewise.
// Elements are F32, F16, or Q8_0 / Q4_0 blocks of 32 (then k and v start at a block and the
// strides and head sizes are multiples of 32), each type converted as it is read.
struct KvHeadView {
  GgmlType k_type = GgmlType::F32;
  const void* k = nullptr;
  const void* v = nullptr;
  int64_t k_stride = 0, v_stride = 0;
  GgmlType v_type = GgmlType::F32;
};

struct AttentionShape {
  int head_dim_k = 0, head_dim_v = 0;
  float scale = 1.0f;    // multiplies q·k
  float softcap = 0.0f;  // > 0: s = softcap · tanh(s / softcap) (Gemma 2)
};

// For the n_q query heads g at q + g * head_dim_k, over positions [lo, hi]:
//   out[g * head_dim_v ..] = Σ_j softmax_j(scale · q_g·k_j) · v_j
// scratch must hold n_q * (hi − lo + 1) floats.
void attend(const float* q, int n_q, const KvHeadView& kv, int lo, int hi, const AttentionShape& s, float* out,
            float* scratch);

// A block of query rows against one KV head (a prompt batch: several positions × the heads
// of a group): row r's query at q + r·head_dim_k, attending keys [lo[r], hi[r]], its output
// at out + r·head_dim_v. Keys are taken a tile at a time with an online softmax (running max
// and sum per row, flash-attention style), so each cached row is converted once for every
// row of the block and no row of L scores is ever stored. scratch: attend_rows_scratch floats
// (chunked: see attend_rows_chunk below).
size_t attend_rows_scratch(int n_rows, const AttentionShape& s);
void attend_rows(const float* q, int n_rows, const int* lo, const int* hi, const KvHeadView& kv, const AttentionShape& s,
                 float* out, float* scratch);

// attend_rows split by keys (flash-decoding: several threads on one row's keys). Keys come in
// aligned chunks of kAttendChunk; attend_rows_chunk gives rows' partial state over the chunk
// from c0 (a multiple of kAttendChunk): out unnormalized (n_rows × head_dim_v), running max m
// and sum l per row (−inf, 0 and zeros for a row that sees none of its keys). attend_merge
// folds a later chunk's state into an earlier one's, attend_finish divides by l. attend_rows
// is exactly chunks merged in order, so a split computation gives the same bits.
constexpr int kAttendChunk = 512;
size_t attend_chunk_scratch(const AttentionShape& s);
void attend_rows_chunk(const float* q, int n_rows, const int* lo, const int* hi, const KvHeadView& kv,
                       const AttentionShape& s, int c0, float* out, float* m, float* l, float* scratch);
void attend_merge(int n_rows, int head_dim_v, float* out, float* m, float* l, const float* out2, const float* m2,
                  const float* l2);
void attend_finish(int n_rows, int head_dim_v, float* out, const float* l);

// The same computed one value at a time in the obvious order: the reference for tests.
void attend_reference(const float* q, int n_q, const KvHeadView& kv, int lo, int hi, const AttentionShape& s,
                      float* out);

}  // namespace slm

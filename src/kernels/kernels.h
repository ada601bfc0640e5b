// Math kernels of the forward pass, behind one dispatch point per operation. Each takes
// plain pointers and sizes; the matmul takes a WeightView (any ggml type) and a batch of
// activations. Internals are a clear scalar implementation; a faster one can replace them
// without changing these signatures.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/thread_pool.h"
#include "quant/types.h"

namespace slm {

// A 2-D weight matrix as stored in GGUF: `rows` rows of `cols` values each (ne1 x ne0),
// row r starting at data + r * row_stride bytes.
struct WeightView {
  GgmlType type = GgmlType::F32;
  int64_t cols = 0;
  int64_t rows = 0;
  const uint8_t* data = nullptr;
  size_t row_stride = 0;
  // Optional: the same Q4_0, Q8_0 or K-quant rows interleaved eight at a time (rows_x8.h),
  // which the matmul prefers; each group of eight rows takes packed_group_bytes (Q4_0 and
  // Q8_0, Q6_K: the bytes of eight plain rows; Q4_K, Q5_K: a little more, scales unpacked).
  const uint8_t* packed = nullptr;
  size_t packed_group_bytes = 0;
  bool empty() const { return data == nullptr; }
  // Rows [first, first + count) as a view of their own (e.g. one expert of a stacked tensor).
  WeightView slice_rows(int64_t first, int64_t count) const {
    const size_t off = static_cast<size_t>(first) * row_stride;
    const bool keep_packed = packed && first % 8 == 0 && count % 8 == 0;
    return {type, cols, count, data + off, row_stride,
            keep_packed ? packed + static_cast<size_t>(first / 8) * packed_group_bytes : nullptr,
            keep_packed ? packed_group_bytes : 0};
  }
};

// y[t * W.rows + o] = dot(row o of W, x[t * W.cols ..]) for t in [0, n_tokens).
// The activations are first rounded the way llama.cpp's CPU backend rounds them for that
// weight type (F16/BF16 weights: to F16/BF16; 32-block quants: Q8_0 blocks; K-quants and
// IQ4_XS: Q8_K blocks), so results track the reference closely.
void matmul(ThreadPool& pool, const WeightView& W, const float* x, int64_t n_tokens, float* y);

// Decodes row `row` of W into out[W.cols] (embedding lookup).
void get_row(const WeightView& W, int64_t row, float* out);

// Rounds x[n] in place as matmul rounds activations for weights of type t (no-op for F32).
// n must be a multiple of the activation block size (32 or 256) for quantized t.
void round_activations(GgmlType t, float* x, int64_t n);

// y = x / sqrt(mean(x^2) + eps) * w, over n values (w may be null: no weight).
void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps);

enum class RopeMode { Norm, Neox };
struct RopeParams {
  RopeMode mode = RopeMode::Norm;
  int n_rot = 0;                 // rotated dims per head (from the start of the head)
  float base = 10000.0f;
  float freq_scale = 1.0f;       // 1 / linear scaling factor
  float attn_factor = 1.0f;      // multiplies cos and sin (LongRoPE)
  const float* freq_factors = nullptr;  // n_rot/2 divisors of the frequencies, or null
};
// Rotates n_heads heads of head_dim values at x (head h at x + h*head_dim) for position pos.
void rope(float* x, int n_heads, int head_dim, int64_t pos, const RopeParams& p);

// In-place softmax over n values.
void softmax(float* x, int64_t n);

// x[i] = silu(x[i]) * g[i] (SwiGLU), x[i] = gelu(x[i]) * g[i] (GeGLU, tanh GELU through an
// fp16 table as ggml evaluates it).
void swiglu(float* x, const float* g, int64_t n);
void geglu(float* x, const float* g, int64_t n);
float silu(float x);
float gelu(float x);  // fp16-table tanh GELU

// Dot product of two f32 vectors.
float dot_f32(const float* a, const float* b, int64_t n);

}  // namespace slm

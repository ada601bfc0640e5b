#include "kernels/kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/gemm_q_matmul.h"
#include "kernels/tier.h"
#include "quant/quant.h"
#include "slm/error.h"

// The elementwise kernels with SIMD code, once per CPU tier (kernels/tier.h).
namespace slm {
struct ElementwiseKernels {
  decltype(&swiglu) swiglu_fn;
};
}  // namespace slm

#include "kernels/tier_begin.h"
#include "kernels/simd_math.h"

namespace slm::SLM_TIER_NS {

void swiglu(float* x, const float* g, int64_t n) {
  int64_t i = 0;
#if defined(SLM_X86_AVX2)
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(x + i, _mm256_mul_ps(simd::silu_ps(_mm256_loadu_ps(x + i)), _mm256_loadu_ps(g + i)));
#endif
  for (; i < n; ++i) x[i] = ::slm::silu(x[i]) * g[i];
}

extern const ElementwiseKernels kElementwise;
const ElementwiseKernels kElementwise = {swiglu};

}  // namespace slm::SLM_TIER_NS

#include "kernels/tier_end.h"

// Everything else: the baseline copy only.
#if SLM_TIER_BASE
namespace slm {

SLM_TIER_TABLE(::slm::ElementwiseKernels, kElementwise)

void swiglu(float* x, const float* g, int64_t n) { kElementwise_of_tier().swiglu_fn(x, g, n); }

float dot_f32(const float* a, const float* b, int64_t n) {
  // Eight independent partial sums: lets the compiler vectorise without -ffast-math.
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// ---- activation rounding -------------------------------------------------------------

namespace {

enum class ActRounding { None, F16, BF16, Q8_0, Q8_K };

ActRounding act_rounding(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return ActRounding::None;
    case GgmlType::F16: return ActRounding::F16;
    case GgmlType::BF16: return ActRounding::BF16;
    case GgmlType::Q4_0: case GgmlType::Q4_1: case GgmlType::Q5_0: case GgmlType::Q5_1:
    case GgmlType::Q8_0: case GgmlType::IQ4_NL:
      return ActRounding::Q8_0;
    case GgmlType::Q2_K: case GgmlType::Q3_K: case GgmlType::Q4_K: case GgmlType::Q5_K:
    case GgmlType::Q6_K: case GgmlType::IQ4_XS:
      return ActRounding::Q8_K;
    default: return ActRounding::None;
  }
}

// 32 values sharing the scale amax/127 stored as fp16; q = round-to-nearest-even(x*127/amax).
void round_q8_0_block(float* x, int64_t n) {
  float amax = 0;
  for (int64_t j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[j]));
  float d = fp16_to_f32(f32_to_fp16(amax / 127.0f));
  float id = amax != 0.0f ? 127.0f / amax : 0.0f;
  for (int64_t j = 0; j < n; ++j) x[j] = d * std::nearbyint(x[j] * id);
}

// 256 values sharing the f32 scale max/-127, max being the value of largest magnitude.
void round_q8_k_block(float* x, int64_t n) {
  float amax = 0, max = 0;
  for (int64_t j = 0; j < n; ++j) {
    float a = std::fabs(x[j]);
    if (a > amax) {
      amax = a;
      max = x[j];
    }
  }
  if (amax == 0.0f) {
    std::fill(x, x + n, 0.0f);
    return;
  }
  float iscale = -127.0f / max;
  float d = 1.0f / iscale;
  for (int64_t j = 0; j < n; ++j) {
    float q = std::min(127.0f, std::nearbyint(iscale * x[j]));
    x[j] = d * q;
  }
}

}  // namespace

void round_activations(GgmlType t, float* x, int64_t n) {
  switch (act_rounding(t)) {
    case ActRounding::None: return;
    case ActRounding::F16:
      for (int64_t i = 0; i < n; ++i) x[i] = fp16_to_f32(f32_to_fp16(x[i]));
      return;
    case ActRounding::BF16:
      for (int64_t i = 0; i < n; ++i) x[i] = bf16_to_f32(f32_to_bf16(x[i]));
      return;
    case ActRounding::Q8_0:
      for (int64_t i = 0; i < n; i += 32) round_q8_0_block(x + i, std::min<int64_t>(32, n - i));
      return;
    case ActRounding::Q8_K:
      for (int64_t i = 0; i < n; i += 256) round_q8_k_block(x + i, std::min<int64_t>(256, n - i));
      return;
  }
}

// ---- matmul -------------------------------------------------------------------------

void get_row(const WeightView& W, int64_t row, float* out) {
  if (row < 0 || row >= W.rows) throw Error("get_row: row " + std::to_string(row) + " out of range");
  const uint8_t* src = W.data + static_cast<size_t>(row) * W.row_stride;
  if (W.type == GgmlType::F32)
    std::memcpy(out, src, static_cast<size_t>(W.cols) * sizeof(float));
  else
    dequantize_row(W.type, src, out, W.cols);
}

void matmul(ThreadPool& pool, const WeightView& W, const float* x, int64_t n_tokens, float* y) {
  // Fast path (gemm_q_matmul.h): quantized vec_dot / gemm_q kernels for every type they cover.
  if (matmul_quantized(pool, W, x, n_tokens, y)) return;
  const int64_t K = W.cols, N = W.rows;
  std::vector<float> rounded;
  const float* xa = x;
  if (act_rounding(W.type) != ActRounding::None) {
    rounded.assign(x, x + n_tokens * K);
    for (int64_t t = 0; t < n_tokens; ++t) round_activations(W.type, rounded.data() + t * K, K);
    xa = rounded.data();
  }
  pool.parallel_for(N, [&](int64_t begin, int64_t end, int) {
    std::vector<float> row;
    if (W.type != GgmlType::F32) row.resize(K);
    for (int64_t o = begin; o < end; ++o) {
      const uint8_t* src = W.data + static_cast<size_t>(o) * W.row_stride;
      const float* w;
      if (W.type == GgmlType::F32) {
        w = reinterpret_cast<const float*>(src);
      } else {
        dequantize_row(W.type, src, row.data(), K);
        w = row.data();
      }
      for (int64_t t = 0; t < n_tokens; ++t) y[t * N + o] = dot_f32(w, xa + t * K, K);
    }
  });
}

// ---- elementwise and row ops ----------------------------------------------------------

void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float scale = 1.0f / std::sqrt(static_cast<float>(sum / n) + eps);
  if (w)
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
  else
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale;
}

void rope(float* x, int n_heads, int head_dim, int64_t pos, const RopeParams& p) {
  const int half = p.n_rot / 2;
  // Angles as ggml forms them: theta_i = pos * base^(-2i/n_rot), by repeated multiplication
  // in f32; each divided by its frequency factor and scaled by freq_scale.
  const float theta_scale = std::pow(p.base, -2.0f / static_cast<float>(p.n_rot));
  float cs[512], sn[512];
  std::vector<float> big;
  float* c = cs;
  float* s = sn;
  if (half > 512) {
    big.resize(2 * half);
    c = big.data();
    s = big.data() + half;
  }
  float theta = static_cast<float>(pos);
  for (int i = 0; i < half; ++i) {
    float ff = p.freq_factors ? p.freq_factors[i] : 1.0f;
    float th = p.freq_scale * (theta / ff);
    c[i] = std::cos(th) * p.attn_factor;
    s[i] = std::sin(th) * p.attn_factor;
    theta *= theta_scale;
  }
  for (int h = 0; h < n_heads; ++h) {
    float* v = x + static_cast<int64_t>(h) * head_dim;
    for (int i = 0; i < half; ++i) {
      // NORM rotates adjacent pairs (2i, 2i+1); NEOX rotates (i, i + n_rot/2).
      int a = p.mode == RopeMode::Norm ? 2 * i : i;
      int b = p.mode == RopeMode::Norm ? 2 * i + 1 : i + half;
      float x0 = v[a], x1 = v[b];
      v[a] = x0 * c[i] - x1 * s[i];
      v[b] = x0 * s[i] + x1 * c[i];
    }
  }
}

void softmax(float* x, int64_t n) {
  if (n <= 0) return;
  float mx = x[0];
  for (int64_t i = 1; i < n; ++i) mx = std::max(mx, x[i]);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

float silu(float x) { return x / (1.0f + std::exp(-x)); }

namespace {
// tanh GELU at every fp16 value, rounded to fp16: ggml evaluates GELU through this table.
const std::vector<uint16_t>& gelu_table() {
  static const std::vector<uint16_t> table = [] {
    std::vector<uint16_t> t(65536);
    const float sqrt_2_over_pi = 0.79788456080286535587989211986876f;
    const float coef_a = 0.044715f;
    for (uint32_t i = 0; i < 65536; ++i) {
      float x = fp16_to_f32(static_cast<uint16_t>(i));
      float g = 0.5f * x * (1.0f + std::tanh(sqrt_2_over_pi * x * (1.0f + coef_a * x * x)));
      t[i] = f32_to_fp16(g);
    }
    return t;
  }();
  return table;
}
}  // namespace

float gelu(float x) {
  if (x <= -10.0f) return 0.0f;
  if (x >= 10.0f) return x;
  return fp16_to_f32(gelu_table()[f32_to_fp16(x)]);
}

void geglu(float* x, const float* g, int64_t n) {
  const std::vector<uint16_t>& table = gelu_table();
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i];
    float a = v <= -10.0f ? 0.0f : v >= 10.0f ? v : fp16_to_f32(table[f32_to_fp16(v)]);
    x[i] = a * g[i];
  }
}

}  // namespace slm
#endif  // SLM_TIER_BASE

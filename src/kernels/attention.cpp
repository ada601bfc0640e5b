#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/simd_math.h"
#include "kernels/vec_dot_simd.h"

namespace slm {

namespace {

inline float elem(const KvHeadView& kv, const void* base, int64_t i) {
  return kv.type == GgmlType::F16 ? fp16_to_f32(static_cast<const uint16_t*>(base)[i])
                                  : static_cast<const float*>(base)[i];
}

float capped(float s, float softcap) { return softcap > 0 ? softcap * std::tanh(s / softcap) : s; }

// One value at a time; scratch holds n_q rows of the L = hi − lo + 1 probabilities.
void attend_scalar(const float* q, int n_q, const KvHeadView& kv, int lo, int hi, const AttentionShape& s,
                   float* out, float* scratch) {
  const int L = hi - lo + 1, hk = s.head_dim_k, hv = s.head_dim_v;
  for (int g = 0; g < n_q; ++g) {
    const float* qg = q + int64_t(g) * hk;
    float* p = scratch + int64_t(g) * L;
    float mx = -INFINITY;
    for (int j = lo; j <= hi; ++j) {
      float d = 0;
      for (int i = 0; i < hk; ++i) d += qg[i] * elem(kv, kv.k, j * kv.k_stride + i);
      p[j - lo] = capped(d * s.scale, s.softcap);
      mx = std::max(mx, p[j - lo]);
    }
    double sum = 0;
    for (int j = 0; j < L; ++j) sum += (p[j] = std::exp(p[j] - mx));
    const float inv = static_cast<float>(1.0 / sum);
    float* og = out + int64_t(g) * hv;
    std::fill(og, og + hv, 0.0f);
    for (int j = lo; j <= hi; ++j)
      for (int i = 0; i < hv; ++i) og[i] += p[j - lo] * inv * elem(kv, kv.v, j * kv.v_stride + i);
  }
}

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

template <bool kF16>
inline __m256 load8(const void* base, int64_t i) {
  if constexpr (kF16)
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + i)));
  else
    return _mm256_loadu_ps(static_cast<const float*>(base) + i);
}

// Scores of G query heads (G ≤ 4 keeps their accumulators in registers) against keys lo..hi:
// each key is converted once and used by all G heads.
template <bool kF16, int G>
void scores(const float* q, const KvHeadView& kv, int lo, int hi, const AttentionShape& s, float* p, int L) {
  const int hk = s.head_dim_k;
  for (int j = lo; j <= hi; ++j) {
    const int64_t row = int64_t(j) * kv.k_stride;
    __m256 acc[G];
    for (int g = 0; g < G; ++g) acc[g] = _mm256_setzero_ps();
    for (int d = 0; d < hk; d += 8) {
      const __m256 k = load8<kF16>(kv.k, row + d);
      for (int g = 0; g < G; ++g) acc[g] = _mm256_fmadd_ps(_mm256_loadu_ps(q + g * hk + d), k, acc[g]);
    }
    for (int g = 0; g < G; ++g) p[int64_t(g) * L + (j - lo)] = vdot::hsum(acc[g]) * s.scale;
  }
}

// In place: p[0..L) → exp(p − max), returns 1 / Σ.
float exp_normalizer(float* p, int L) {
  int j = 0;
  __m256 vmax = _mm256_set1_ps(-INFINITY);
  for (; j + 8 <= L; j += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(p + j));
  float mx = simd::hmax_ps(vmax);
  for (; j < L; ++j) mx = std::max(mx, p[j]);
  const __m256 m = _mm256_set1_ps(mx);
  __m256 vsum = _mm256_setzero_ps();
  for (j = 0; j + 8 <= L; j += 8) {
    const __m256 e = simd::exp_ps(_mm256_sub_ps(_mm256_loadu_ps(p + j), m));
    _mm256_storeu_ps(p + j, e);
    vsum = _mm256_add_ps(vsum, e);
  }
  float sum = vdot::hsum(vsum);
  for (; j < L; ++j) sum += (p[j] = std::exp(p[j] - mx));
  return 1.0f / sum;
}

// out_g = inv_g · Σ_j p_g[j] v_j for G heads, eight output values at a time.
template <bool kF16, int G>
void weighted_values(const float* p, int L, const float* inv, const KvHeadView& kv, int lo, int hv, float* out) {
  for (int d = 0; d < hv; d += 8) {
    __m256 acc[G];
    for (int g = 0; g < G; ++g) acc[g] = _mm256_setzero_ps();
    for (int j = 0; j < L; ++j) {
      const __m256 v = load8<kF16>(kv.v, int64_t(lo + j) * kv.v_stride + d);
      for (int g = 0; g < G; ++g) acc[g] = _mm256_fmadd_ps(_mm256_set1_ps(p[int64_t(g) * L + j]), v, acc[g]);
    }
    for (int g = 0; g < G; ++g) _mm256_storeu_ps(out + int64_t(g) * hv + d, _mm256_mul_ps(acc[g], _mm256_set1_ps(inv[g])));
  }
}

template <bool kF16, int G>
void attend_group(const float* q, const KvHeadView& kv, int lo, int hi, const AttentionShape& s, float* out, float* p) {
  const int L = hi - lo + 1;
  scores<kF16, G>(q, kv, lo, hi, s, p, L);
  float inv[G];
  for (int g = 0; g < G; ++g) {
    float* pg = p + int64_t(g) * L;
    if (s.softcap > 0)
      for (int j = 0; j < L; ++j) pg[j] = capped(pg[j], s.softcap);
    inv[g] = exp_normalizer(pg, L);
  }
  weighted_values<kF16, G>(p, L, inv, kv, lo, s.head_dim_v, out);
}

template <bool kF16>
void attend_simd(const float* q, int n_q, const KvHeadView& kv, int lo, int hi, const AttentionShape& s, float* out,
                 float* scratch) {
  const int hk = s.head_dim_k, hv = s.head_dim_v;
  for (int g0 = 0; g0 < n_q; g0 += 4) {
    const float* qg = q + int64_t(g0) * hk;
    float* og = out + int64_t(g0) * hv;
    switch (std::min(4, n_q - g0)) {
      case 4: attend_group<kF16, 4>(qg, kv, lo, hi, s, og, scratch); break;
      case 3: attend_group<kF16, 3>(qg, kv, lo, hi, s, og, scratch); break;
      case 2: attend_group<kF16, 2>(qg, kv, lo, hi, s, og, scratch); break;
      default: attend_group<kF16, 1>(qg, kv, lo, hi, s, og, scratch); break;
    }
  }
}

#endif

}  // namespace

void attend(const float* q, int n_q, const KvHeadView& kv, int lo, int hi, const AttentionShape& s, float* out,
            float* scratch) {
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
  if (s.head_dim_k % 8 == 0 && s.head_dim_v % 8 == 0) {
    if (kv.type == GgmlType::F16)
      attend_simd<true>(q, n_q, kv, lo, hi, s, out, scratch);
    else
      attend_simd<false>(q, n_q, kv, lo, hi, s, out, scratch);
    return;
  }
#endif
  attend_scalar(q, n_q, kv, lo, hi, s, out, scratch);
}

void attend_reference(const float* q, int n_q, const KvHeadView& kv, int lo, int hi, const AttentionShape& s,
                      float* out) {
  std::vector<float> scratch(size_t(n_q) * (hi - lo + 1));
  attend_scalar(q, n_q, kv, lo, hi, s, out, scratch.data());
}

}  // namespace slm

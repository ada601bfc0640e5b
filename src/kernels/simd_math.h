// Vectorised transcendental functions for the elementwise kernels (softmax, SiLU): eight
// floats at a time with AVX2+FMA. exp is the classic range reduction x = n·ln2 + r with a
// degree-6 polynomial for e^r on |r| ≤ ln2/2, accurate to about 2 ulp over the whole float
// range (the scalar std::exp and this differ far below the fixtures' tolerances).
// Part of a tier section (include after kernels/tier_begin.h); empty below the AVX2 tier.
#pragma once
#if defined(SLM_X86_AVX2)
#include <immintrin.h>

namespace slm::SLM_TIER_NS::simd {

inline __m256 exp_ps(__m256 x) {
  // Below −87.33 e^x is subnormal or zero; above ln(FLT_MAX) = 88.72 it overflows. Inside that
  // range every input is computed (2^n applied in two halves, since n reaches 128 at the top
  // and 2^128 is not a float); below it the result is zero and above it infinity.
  const __m256 hi = _mm256_set1_ps(88.7228391117f), lo = _mm256_set1_ps(-87.3365447504f);
  const __m256 too_low = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  const __m256 too_high = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
  x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // r = x − n·ln2 in two steps (ln2 split into a short high part and the rest) for accuracy.
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  // e^r ≈ 1 + r + r²·P(r), P the minimax polynomial of Cephes' expf.
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  const __m256 r2 = _mm256_mul_ps(r, r);
  __m256 e = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  // Multiply by 2^n = 2^(n>>1) · 2^(n − (n>>1)) through the exponent field; both halves are
  // normal floats for every n in [−126, 128].
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  e = _mm256_mul_ps(e, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23)));
  e = _mm256_mul_ps(e, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23)));
  e = _mm256_andnot_ps(too_low, e);
  return _mm256_blendv_ps(e, _mm256_set1_ps(__builtin_inff()), too_high);
}

// x / (1 + e^−x).
inline __m256 silu_ps(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  return _mm256_div_ps(x, _mm256_add_ps(one, exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

inline float hmax_ps(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace slm::SLM_TIER_NS::simd
#endif

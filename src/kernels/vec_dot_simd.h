// Small AVX2 building blocks shared by the vec_dot and gemm_q kernels: part of a tier
// section (include after kernels/tier_begin.h); empty below the AVX2 tier.
#pragma once
#if defined(SLM_X86_AVX2)
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "quant/types.h"

#if defined(SLM_X86_VNNI) || defined(__AVXVNNI__)
#define SLM_VNNI 1
#endif

namespace slm::SLM_TIER_NS::vdot {

inline float h2f(uint16_t h) {
  return _cvtsh_ss(h);
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
  return _mm_cvtsi128_si32(s);
}

// Σ u·s over groups of four bytes into eight i32 lanes: u unsigned, s signed. Callers keep
// every pair sum within int16 (|u·s + u'·s'| < 32768), so the AVX2 route, which saturates
// there, and the VNNI one give the same integers.
inline __m256i dot_u8s8(__m256i u, __m256i s) {
#if defined(SLM_X86_VNNI)
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#elif defined(__AVXVNNI__)
  return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, s);
#else
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

// Σ x·y for signed bytes, as |x|·sign(y, x). x may be −128 (|x| reads as unsigned 128); y must
// not be (activation codes lie in [−127, 127]).
inline __m256i dot_s8s8(__m256i x, __m256i y) {
  return dot_u8s8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

// 16 bytes of nibbles → 32 bytes: low nibbles first (values 0..15), then high nibbles.
inline __m256i unpack_nibbles_16(const uint8_t* p) {
  const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m256i v = _mm256_set_m128i(_mm_srli_epi16(x, 4), x);
  return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
}

// 32 bits (little-endian u32 at p) → 32 bytes, 0xFF where the bit is set.
inline __m256i bits_to_bytes(const uint8_t* p) {
  uint32_t x;
  std::memcpy(&x, p, 4);
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(x)),
      _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                       2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  const __m256i bit = _mm256_set1_epi64x(0x8040201008040201LL);
  return _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
}

inline __m256i loadu256(const void* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

}  // namespace slm::SLM_TIER_NS::vdot
#endif  // SLM_X86_AVX2

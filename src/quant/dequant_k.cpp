// Dequantization of the 256-value super-block formats (Q2_K … Q8_K, IQ4_XS).
// Products are formed in ggml's order (d·scale first, then times the code, minus d_min·min),
// which keeps the results bit-identical to llama.cpp's (tested against the shared fixtures).
#include "quant/no_fma.h"  // first: see there
#include "quant/blocks.h"
#include "quant/formats.h"
#include "quant/types.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace slm::quant {

void dequantize_q2_K(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const block_q2_K*>(src);
  for (int64_t i = 0; i < n / QK_K; ++i, ++b) {
    const float d = fp16_to_f32(b->d);
    const float dmin = fp16_to_f32(b->dmin);
    int is = 0;
    // Two halves of 128; each byte of qs[32·half ..] holds four 2-bit codes, one per shift.
    for (int half = 0; half < 2; ++half) {
      const uint8_t* q = b->qs + 32 * half;
      for (int shift = 0; shift < 8; shift += 2) {
        for (int g = 0; g < 2; ++g) {  // two groups of 16 share a shift
          const uint8_t sc = b->scales[is++];
          const float dl = d * (sc & 0xF);
          const float ml = dmin * (sc >> 4);
          for (int l = 0; l < 16; ++l) *dst++ = dl * ((q[16 * g + l] >> shift) & 3) - ml;
        }
      }
    }
  }
}

void dequantize_q3_K(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const block_q3_K*>(src);
  for (int64_t i = 0; i < n / QK_K; ++i, ++b) {
    const float d = fp16_to_f32(b->d);
    int scales[16];
    unpack_scales_q3_K(b->scales, scales);
    int is = 0;
    uint8_t m = 1;  // which hmask bit: one per (half, shift) pair
    for (int half = 0; half < 2; ++half) {
      const uint8_t* q = b->qs + 32 * half;
      for (int shift = 0; shift < 8; shift += 2, m = uint8_t(m << 1)) {
        for (int g = 0; g < 2; ++g) {
          const float dl = d * (scales[is++] - 32);
          for (int l = 0; l < 16; ++l) {
            const int code = ((q[16 * g + l] >> shift) & 3) - ((b->hmask[16 * g + l] & m) ? 0 : 4);
            *dst++ = dl * code;
          }
        }
      }
    }
  }
}

void dequantize_q4_K(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const block_q4_K*>(src);
  for (int64_t i = 0; i < n / QK_K; ++i, ++b) {
    const float d = fp16_to_f32(b->d);
    const float dmin = fp16_to_f32(b->dmin);
    // Four chunks of 64: low nibbles of qs[32c..] are sub-block 2c, high nibbles 2c+1.
    for (int c = 0; c < 4; ++c) {
      const uint8_t* q = b->qs + 32 * c;
      uint8_t sc, m;
      unpack_scale_min_k4(2 * c, b->scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      unpack_scale_min_k4(2 * c + 1, b->scales, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *dst++ = d1 * (q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *dst++ = d2 * (q[l] >> 4) - m2;
    }
  }
}

void dequantize_q5_K(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const block_q5_K*>(src);
  for (int64_t i = 0; i < n / QK_K; ++i, ++b) {
    const float d = fp16_to_f32(b->d);
    const float dmin = fp16_to_f32(b->dmin);
    // As Q4_K; the fifth bit of chunk c comes from bits 2c and 2c+1 of qh[l].
    for (int c = 0; c < 4; ++c) {
      const uint8_t* q = b->qs + 32 * c;
      const uint8_t u1 = uint8_t(1 << (2 * c)), u2 = uint8_t(2 << (2 * c));
      uint8_t sc, m;
      unpack_scale_min_k4(2 * c, b->scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      unpack_scale_min_k4(2 * c + 1, b->scales, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *dst++ = d1 * ((q[l] & 0xF) + ((b->qh[l] & u1) ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *dst++ = d2 * ((q[l] >> 4) + ((b->qh[l] & u2) ? 16 : 0)) - m2;
    }
  }
}

void dequantize_q6_K(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const block_q6_K*>(src);
  for (int64_t i = 0; i < n / QK_K; ++i, ++b) {
    const float d = fp16_to_f32(b->d);
    for (int half = 0; half < 2; ++half, dst += 128) {
      const uint8_t* ql = b->ql + 64 * half;
      const uint8_t* qh = b->qh + 32 * half;
      const int8_t* sc = b->scales + 8 * half;
#if defined(__AVX512F__)
      // 16 values of each quarter at a time, the same products in the same order.
      const __m512i low4 = _mm512_set1_epi32(0xF), two = _mm512_set1_epi32(3), bias = _mm512_set1_epi32(32);
      for (int l = 0; l < 32; l += 16) {
        const int s = l / 16;
        const __m512i a = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ql + l)));
        const __m512i c = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ql + l + 32)));
        const __m512i h = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qh + l)));
        auto code = [&](__m512i nib, int hshift) {
          const __m512i hi = _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(h, hshift), two), 4);
          return _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_or_si512(nib, hi), bias));
        };
        _mm512_storeu_ps(dst + l, _mm512_mul_ps(_mm512_set1_ps(d * sc[s]), code(_mm512_and_si512(a, low4), 0)));
        _mm512_storeu_ps(dst + l + 32, _mm512_mul_ps(_mm512_set1_ps(d * sc[s + 2]), code(_mm512_and_si512(c, low4), 2)));
        _mm512_storeu_ps(dst + l + 64, _mm512_mul_ps(_mm512_set1_ps(d * sc[s + 4]), code(_mm512_srli_epi32(a, 4), 4)));
        _mm512_storeu_ps(dst + l + 96, _mm512_mul_ps(_mm512_set1_ps(d * sc[s + 6]), code(_mm512_srli_epi32(c, 4), 6)));
      }
#else
      for (int l = 0; l < 32; ++l) {
        const int s = l / 16;
        const int q1 = int((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = int((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        dst[l] = d * sc[s] * q1;
        dst[l + 32] = d * sc[s + 2] * q2;
        dst[l + 64] = d * sc[s + 4] * q3;
        dst[l + 96] = d * sc[s + 6] * q4;
      }
#endif
    }
  }
}

void dequantize_q8_K(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const block_q8_K*>(src);
  for (int64_t i = 0; i < n / QK_K; ++i, ++b, dst += QK_K)
    for (int j = 0; j < QK_K; ++j) dst[j] = b->d * b->qs[j];
}

void dequantize_iq4_xs(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const block_iq4_xs*>(src);
  for (int64_t i = 0; i < n / QK_K; ++i, ++b) {
    const float d = fp16_to_f32(b->d);
    for (int ib = 0; ib < 8; ++ib, dst += 32) {
      const int ls = ((b->scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) |
                     (((b->scales_h >> (2 * ib)) & 3) << 4);
      const float dl = d * (ls - 32);
      const uint8_t* q = b->qs + 16 * ib;
      for (int j = 0; j < 16; ++j) {
        dst[j] = dl * kIq4nlValues[q[j] & 0xF];
        dst[j + 16] = dl * kIq4nlValues[q[j] >> 4];
      }
    }
  }
}

}  // namespace slm::quant

// AVX2 dot-product kernels and activation encoders (AVX-VNNI's dpbusd where available).
// Within a block the weight codes are unpacked to bytes and multiplied with the activation
// codes in integers; each block's (or super-block's) integer sum is converted once and
// multiplied by its float scale. Compiled once per CPU tier (kernels/tier.h); the scalar
// tier's table is empty (the dispatch then falls back to the scalar reference).
#include <cmath>

#include "kernels/tier.h"
#include "kernels/vec_dot_kernels.h"
#include "quant/blocks.h"

namespace slm::vdot {
struct SimdKernels {
  DotFn (*kernel)(GgmlType weight_type);
  QuantizeActFn (*act_quantizer)(GgmlType act_type);
};
}  // namespace slm::vdot

#include "kernels/tier_begin.h"
#include "kernels/vec_dot_simd.h"

namespace slm::SLM_TIER_NS::vdot {

#if defined(SLM_X86_AVX2)

using namespace slm::quant;

namespace {

// ---- activation encoders ----------------------------------------------------------------

inline __m256 abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

// roundf: to nearest, ties away from zero. trunc(v) plus ±1 where |v − trunc(v)| ≥ 0.5
// (that difference is exact in float).
inline __m256i round_half_away(__m256 v) {
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 frac = abs_ps(_mm256_sub_ps(v, t));
  const __m256 one = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(v, _mm256_set1_ps(-0.0f)));
  const __m256 step = _mm256_and_ps(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ), one);
  return _mm256_cvttps_epi32(_mm256_add_ps(t, step));
}

// Four vectors of eight i32 (each in int8 range) → 32 int8 in order.
inline __m256i pack_i32_to_i8(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_packs_epi32(a, b);
  const __m256i cd = _mm256_packs_epi32(c, d);
  const __m256i abcd = _mm256_packs_epi16(ab, cd);
  // packs works per 128-bit lane; put the dwords back in order.
  return _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// Encodes one Q8_0 block: fp16 scale to *d_out, codes to qs; returns Σq and the f32 scale
// (Q8_1 stores s = f32 scale · Σq, as the reference does).
inline int encode_q8_0_block(const float* x, uint16_t* d_out, int8_t* qs, float* d_f32) {
  __m256 v[4];
  __m256 amax = _mm256_setzero_ps();
  for (int k = 0; k < 4; ++k) {
    v[k] = _mm256_loadu_ps(x + 8 * k);
    amax = _mm256_max_ps(amax, abs_ps(v[k]));
  }
  const float d = hmax(amax) / 127;
  const float id = d ? 1.0f / d : 0.0f;
  *d_out = f32_to_fp16(d);
  *d_f32 = d;
  const __m256 idv = _mm256_set1_ps(id);
  __m256i q[4];
  for (int k = 0; k < 4; ++k) q[k] = round_half_away(_mm256_mul_ps(v[k], idv));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs), pack_i32_to_i8(q[0], q[1], q[2], q[3]));
  return hsum_i32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
}

void act_q8_0(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<block_q8_0*>(dst);
  float d;
  for (int64_t i = 0; i < n / QK; ++i) encode_q8_0_block(x + i * QK, &b[i].d, b[i].qs, &d);
}

void act_q8_1(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<block_q8_1*>(dst);
  for (int64_t i = 0; i < n / QK; ++i) {
    float d;
    const int sum = encode_q8_0_block(x + i * QK, &b[i].d, b[i].qs, &d);
    b[i].s = f32_to_fp16(sum * d);
  }
}

void act_q8_K(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<block_q8_K*>(dst);
  for (int64_t i = 0; i < n / QK_K; ++i, ++b, x += QK_K) {
    __m256 amax = _mm256_setzero_ps();
    for (int k = 0; k < QK_K / 8; ++k) amax = _mm256_max_ps(amax, abs_ps(_mm256_loadu_ps(x + 8 * k)));
    const float m = hmax(amax);
    if (m == 0) {
      std::memset(b, 0, sizeof *b);
      continue;
    }
    // The scale's sign follows the first value of largest magnitude, as the reference's scan.
    float max = 0;
    for (int j = 0; j < QK_K; ++j)
      if (std::fabs(x[j]) == m) {
        max = x[j];
        break;
      }
    const float iscale = -127.f / max;
    const __m256 is = _mm256_set1_ps(iscale);
    const __m256i cap = _mm256_set1_epi32(127);
    for (int k = 0; k < QK_K / 32; ++k) {
      __m256i q[4];
      for (int u = 0; u < 4; ++u) {
        const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + 32 * k + 8 * u), is);
        q[u] = _mm256_min_epi32(cap, _mm256_cvtps_epi32(
                                         _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
      }
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(b->qs + 32 * k), pack_i32_to_i8(q[0], q[1], q[2], q[3]));
    }
    // bsums: sums of each 16 codes, via a multiply-add with ones.
    const __m256i ones8 = _mm256_set1_epi8(1);
    for (int k = 0; k < QK_K / 32; ++k) {
      const __m256i s16 = _mm256_maddubs_epi16(ones8, loadu256(b->qs + 32 * k));  // 16 pair sums
      const __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));            // 8 quad sums
      // lanes 0..3 are group 2k, lanes 4..7 group 2k+1.
      alignas(32) int32_t t[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(t), s32);
      b->bsums[2 * k] = static_cast<int16_t>(t[0] + t[1] + t[2] + t[3]);
      b->bsums[2 * k + 1] = static_cast<int16_t>(t[4] + t[5] + t[6] + t[7]);
    }
    b->d = 1 / iscale;
  }
}

void act_f16(const float* x, void* dst, int64_t n) {
  auto* h = static_cast<uint16_t*>(dst);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(h + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i) h[i] = f32_to_fp16(x[i]);
}

// ---- 32-value blocks --------------------------------------------------------------------

// Shape of every legacy-block kernel: per block an i32×8 sum from `block_sum`, times the
// product of the two fp16 scales, accumulated in two vectors for latency.
template <typename WBlock, typename ABlock, typename BlockSum>
inline float dot_blocks32(int64_t n, const void* wv, const void* av, BlockSum block_sum) {
  const auto* w = static_cast<const WBlock*>(wv);
  const auto* a = static_cast<const ABlock*>(av);
  const int64_t nb = n / QK;
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 1 < nb; i += 2) {
    const __m256i s0 = block_sum(w[i], a[i]);
    const __m256i s1 = block_sum(w[i + 1], a[i + 1]);
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(a[i].d)), _mm256_cvtepi32_ps(s0), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i + 1].d) * h2f(a[i + 1].d)), _mm256_cvtepi32_ps(s1), acc1);
  }
  for (; i < nb; ++i)
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(a[i].d)),
                           _mm256_cvtepi32_ps(block_sum(w[i], a[i])), acc0);
  return hsum(_mm256_add_ps(acc0, acc1));
}

float dot_q4_0(int64_t n, const void* w, const void* a) {
  return dot_blocks32<block_q4_0, block_q8_0>(n, w, a, [](const block_q4_0& x, const block_q8_0& y) {
    const __m256i q = _mm256_sub_epi8(unpack_nibbles_16(x.qs), _mm256_set1_epi8(8));
    return dot_s8s8(q, loadu256(y.qs));
  });
}

float dot_q5_0(int64_t n, const void* w, const void* a) {
  return dot_blocks32<block_q5_0, block_q8_0>(n, w, a, [](const block_q5_0& x, const block_q8_0& y) {
    // nibble | 0xF0 where the fifth bit is clear is nibble − 16 as a signed byte.
    const __m256i hi = _mm256_andnot_si256(bits_to_bytes(x.qh), _mm256_set1_epi8(static_cast<char>(0xF0)));
    const __m256i q = _mm256_or_si256(unpack_nibbles_16(x.qs), hi);
    return dot_s8s8(q, loadu256(y.qs));
  });
}

float dot_q8_0(int64_t n, const void* w, const void* a) {
  return dot_blocks32<block_q8_0, block_q8_0>(n, w, a, [](const block_q8_0& x, const block_q8_0& y) {
    return dot_s8s8(loadu256(x.qs), loadu256(y.qs));
  });
}

inline __m256i iq4nl_table() {
  const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues));
  return _mm256_set_m128i(t, t);
}

float dot_iq4_nl(int64_t n, const void* w, const void* a) {
  return dot_blocks32<block_iq4_nl, block_q8_0>(n, w, a, [](const block_iq4_nl& x, const block_q8_0& y) {
    const __m256i q = _mm256_shuffle_epi8(iq4nl_table(), unpack_nibbles_16(x.qs));
    return dot_s8s8(q, loadu256(y.qs));
  });
}

// Q4_1 / Q5_1: unsigned codes, plus the min term m·da·Σqa per block (Σqa summed here, not
// taken from the block's fp16 s; see the scalar reference).
template <typename WBlock, typename Codes>
inline float dot_blocks32_min(int64_t n, const void* wv, const void* av, Codes codes) {
  const auto* w = static_cast<const WBlock*>(wv);
  const auto* a = static_cast<const block_q8_1*>(av);
  __m256 acc = _mm256_setzero_ps(), acc_min = _mm256_setzero_ps();
  const __m256i ones = _mm256_set1_epi8(1);
  for (int64_t i = 0; i < n / QK; ++i) {
    const __m256i y = loadu256(a[i].qs);
    const __m256i s = dot_u8s8(codes(w[i]), y);
    const __m256i sa = dot_u8s8(ones, y);
    const float da = h2f(a[i].d);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * da), _mm256_cvtepi32_ps(s), acc);
    acc_min = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].m) * da), _mm256_cvtepi32_ps(sa), acc_min);
  }
  return hsum(_mm256_add_ps(acc, acc_min));
}

float dot_q4_1(int64_t n, const void* w, const void* a) {
  return dot_blocks32_min<block_q4_1>(n, w, a, [](const block_q4_1& x) { return unpack_nibbles_16(x.qs); });
}

float dot_q5_1(int64_t n, const void* w, const void* a) {
  return dot_blocks32_min<block_q5_1>(n, w, a, [](const block_q5_1& x) {
    return _mm256_or_si256(unpack_nibbles_16(x.qs),
                           _mm256_and_si256(bits_to_bytes(x.qh), _mm256_set1_epi8(0x10)));
  });
}

// ---- 256-value super-blocks -------------------------------------------------------------

// Byte-shuffle masks that pick scale bytes (2p, 2p+1) eight times each: after a sign
// extension to int16 they line up with maddubs' output, whose lanes 0..7 come from the
// first 16 codes (one group of 16) and lanes 8..15 from the next 16.
alignas(16) constexpr uint8_t kPairMask[8][16] = {
    {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3},
    {4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5},
    {6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7},
    {8, 8, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 9},
    {10, 10, 10, 10, 10, 10, 10, 10, 11, 11, 11, 11, 11, 11, 11, 11},
    {12, 12, 12, 12, 12, 12, 12, 12, 13, 13, 13, 13, 13, 13, 13, 13},
    {14, 14, 14, 14, 14, 14, 14, 14, 15, 15, 15, 15, 15, 15, 15, 15},
};

inline __m256i scale_pair(__m128i scales, int p) {
  return _mm256_cvtepi8_epi16(
      _mm_shuffle_epi8(scales, _mm_load_si128(reinterpret_cast<const __m128i*>(kPairMask[p]))));
}

// Σ over 16-value groups of scale·bsum, scales as 16 int8.
inline int scaled_bsums(__m128i scales, const int16_t* bsums) {
  return hsum_i32(_mm256_madd_epi16(_mm256_cvtepi8_epi16(scales), loadu256(bsums)));
}

float dot_q2_K(int64_t n, const void* wv, const void* av) {
  const auto* w = static_cast<const block_q2_K*>(wv);
  const auto* a = static_cast<const block_q8_K*>(av);
  __m256 acc = _mm256_setzero_ps();
  float mins = 0;
  const __m256i m3 = _mm256_set1_epi8(3);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[i].scales));
    const __m128i sc = _mm_and_si128(raw, _mm_set1_epi8(0xF));
    const __m128i mn = _mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0xF));
    __m256i sumi = _mm256_setzero_si256();
    for (int half = 0; half < 2; ++half) {
      const __m256i q = loadu256(w[i].qs + 32 * half);
      for (int shift = 0; shift < 4; ++shift) {
        const __m256i codes = _mm256_and_si256(_mm256_srli_epi16(q, 2 * shift), m3);
        const __m256i p = _mm256_maddubs_epi16(codes, loadu256(a[i].qs + 128 * half + 32 * shift));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scale_pair(sc, 4 * half + shift)));
      }
    }
    const float dy = a[i].d;
    acc = _mm256_fmadd_ps(_mm256_set1_ps(dy * h2f(w[i].d)), _mm256_cvtepi32_ps(sumi), acc);
    mins += dy * h2f(w[i].dmin) * static_cast<float>(scaled_bsums(mn, a[i].bsums));
  }
  return hsum(acc) - mins;
}

float dot_q3_K(int64_t n, const void* wv, const void* av) {
  const auto* w = static_cast<const block_q3_K*>(wv);
  const auto* a = static_cast<const block_q8_K*>(av);
  __m256 acc = _mm256_setzero_ps();
  const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    int scales[16];
    unpack_scales_q3_K(w[i].scales, scales);
    alignas(16) int8_t s8[16];
    for (int j = 0; j < 16; ++j) s8[j] = static_cast<int8_t>(scales[j] - 32);
    const __m128i sc = _mm_load_si128(reinterpret_cast<const __m128i*>(s8));
    const __m256i hm = loadu256(w[i].hmask);
    __m256i sumi = _mm256_setzero_si256();
    for (int half = 0; half < 2; ++half) {
      const __m256i q = loadu256(w[i].qs + 32 * half);
      for (int shift = 0; shift < 4; ++shift) {
        // codes 0..7 = low two bits | high bit << 2; the value is code − 4.
        const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(q, 2 * shift), m3);
        const __m256i hb = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * half + shift), one);
        const __m256i codes = _mm256_or_si256(lo, _mm256_slli_epi16(hb, 2));
        const __m256i p = _mm256_maddubs_epi16(codes, loadu256(a[i].qs + 128 * half + 32 * shift));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scale_pair(sc, 4 * half + shift)));
      }
    }
    const int offset = 4 * scaled_bsums(sc, a[i].bsums);
    const float d = a[i].d * h2f(w[i].d);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    acc = _mm256_sub_ps(acc, _mm256_setr_ps(d * static_cast<float>(offset), 0, 0, 0, 0, 0, 0, 0));
  }
  return hsum(acc);
}

// Q4_K / Q5_K share the scale/min unpacking and the chunk loop; Q5_K adds a fifth bit.
template <bool kFifthBit, typename Block>
inline float dot_q45_K(int64_t n, const void* wv, const void* av) {
  const auto* w = static_cast<const Block*>(wv);
  const auto* a = static_cast<const block_q8_K*>(av);
  __m256 acc = _mm256_setzero_ps();
  float mins = 0;
  const __m256i m4 = _mm256_set1_epi8(0xF), one = _mm256_set1_epi8(1);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const Block& b = w[i];
    uint8_t sc[8], mn[8];
    for (int j = 0; j < 8; ++j) unpack_scale_min_k4(j, b.scales, &sc[j], &mn[j]);
    int sum_mins = 0;
    for (int j = 0; j < 8; ++j) sum_mins += mn[j] * (a[i].bsums[2 * j] + a[i].bsums[2 * j + 1]);
    __m256i qh;
    if constexpr (kFifthBit) qh = loadu256(b.qh);
    __m256i sumi = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      const __m256i q = loadu256(b.qs + 32 * c);
      __m256i lo = _mm256_and_si256(q, m4);
      __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
      if constexpr (kFifthBit) {
        lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), one), 4));
        hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), one), 4));
      }
      const __m256i plo = _mm256_maddubs_epi16(lo, loadu256(a[i].qs + 64 * c));
      const __m256i phi = _mm256_maddubs_epi16(hi, loadu256(a[i].qs + 64 * c + 32));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(plo, _mm256_set1_epi16(sc[2 * c])));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(phi, _mm256_set1_epi16(sc[2 * c + 1])));
    }
    const float dy = a[i].d;
    acc = _mm256_fmadd_ps(_mm256_set1_ps(dy * h2f(b.d)), _mm256_cvtepi32_ps(sumi), acc);
    mins += dy * h2f(b.dmin) * static_cast<float>(sum_mins);
  }
  return hsum(acc) - mins;
}

float dot_q4_K(int64_t n, const void* w, const void* a) { return dot_q45_K<false, block_q4_K>(n, w, a); }
float dot_q5_K(int64_t n, const void* w, const void* a) { return dot_q45_K<true, block_q5_K>(n, w, a); }

float dot_q6_K(int64_t n, const void* wv, const void* av) {
  const auto* w = static_cast<const block_q6_K*>(wv);
  const auto* a = static_cast<const block_q8_K*>(av);
  __m256 acc = _mm256_setzero_ps();
  const __m256i m4 = _mm256_set1_epi8(0xF), m30 = _mm256_set1_epi8(0x30);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const block_q6_K& b = w[i];
    const __m128i sc = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales));
    __m256i sumi = _mm256_setzero_si256();
    for (int half = 0; half < 2; ++half) {
      const __m256i ql0 = loadu256(b.ql + 64 * half);
      const __m256i ql1 = loadu256(b.ql + 64 * half + 32);
      const __m256i qh = loadu256(b.qh + 32 * half);
      // Unsigned 6-bit codes 0..63; the −32 offset is applied through bsums below.
      const __m256i q[4] = {
          _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30)),
          _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qh, m30)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                          _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30)),
      };
      for (int k = 0; k < 4; ++k) {
        const __m256i p = _mm256_maddubs_epi16(q[k], loadu256(a[i].qs + 128 * half + 32 * k));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scale_pair(sc, 4 * half + k)));
      }
    }
    const int offset = 32 * scaled_bsums(sc, a[i].bsums);
    const float d = a[i].d * h2f(b.d);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    acc = _mm256_sub_ps(acc, _mm256_setr_ps(d * static_cast<float>(offset), 0, 0, 0, 0, 0, 0, 0));
  }
  return hsum(acc);
}

float dot_iq4_xs(int64_t n, const void* wv, const void* av) {
  const auto* w = static_cast<const block_iq4_xs*>(wv);
  const auto* a = static_cast<const block_q8_K*>(av);
  __m256 acc = _mm256_setzero_ps();
  const __m256i table = iq4nl_table();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const block_iq4_xs& b = w[i];
    __m256i sumi = _mm256_setzero_si256();
    for (int ib = 0; ib < 8; ++ib) {
      const int ls = ((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((b.scales_h >> (2 * ib)) & 3) << 4);
      const __m256i q = _mm256_shuffle_epi8(table, unpack_nibbles_16(b.qs + 16 * ib));
      const __m256i y = loadu256(a[i].qs + 32 * ib);
      const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(y, q));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, _mm256_set1_epi16(static_cast<int16_t>(ls - 32))));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(a[i].d * h2f(b.d)), _mm256_cvtepi32_ps(sumi), acc);
  }
  return hsum(acc);
}

// ---- float weights ----------------------------------------------------------------------

template <typename Load>
inline float dot_floats(int64_t n, const void* wv, const void* av, Load load, float (*one)(const void*, int64_t)) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int k = 0; k < 4; ++k) acc[k] = _mm256_fmadd_ps(load(wv, i + 8 * k), load(av, i + 8 * k), acc[k]);
  for (; i + 8 <= n; i += 8) acc[0] = _mm256_fmadd_ps(load(wv, i), load(av, i), acc[0]);
  float sum = hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
  for (; i < n; ++i) sum += one(wv, i) * one(av, i);
  return sum;
}

float dot_f32(int64_t n, const void* w, const void* a) {
  return dot_floats(
      n, w, a, [](const void* p, int64_t i) { return _mm256_loadu_ps(static_cast<const float*>(p) + i); },
      [](const void* p, int64_t i) { return static_cast<const float*>(p)[i]; });
}

float dot_f16(int64_t n, const void* w, const void* a) {
  return dot_floats(
      n, w, a,
      [](const void* p, int64_t i) {
        return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(p) + i)));
      },
      [](const void* p, int64_t i) { return h2f(static_cast<const uint16_t*>(p)[i]); });
}

float dot_bf16(int64_t n, const void* w, const void* a) {
  return dot_floats(
      n, w, a,
      [](const void* p, int64_t i) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(p) + i));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
      },
      [](const void* p, int64_t i) { return bf16_to_f32(static_cast<const uint16_t*>(p)[i]); });
}

}  // namespace

DotFn simd_kernel(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return dot_f32;
    case GgmlType::F16: return dot_f16;
    case GgmlType::BF16: return dot_bf16;
    case GgmlType::Q4_0: return dot_q4_0;
    case GgmlType::Q4_1: return dot_q4_1;
    case GgmlType::Q5_0: return dot_q5_0;
    case GgmlType::Q5_1: return dot_q5_1;
    case GgmlType::Q8_0: return dot_q8_0;
    case GgmlType::IQ4_NL: return dot_iq4_nl;
    case GgmlType::Q2_K: return dot_q2_K;
    case GgmlType::Q3_K: return dot_q3_K;
    case GgmlType::Q4_K: return dot_q4_K;
    case GgmlType::Q5_K: return dot_q5_K;
    case GgmlType::Q6_K: return dot_q6_K;
    case GgmlType::IQ4_XS: return dot_iq4_xs;
    default: return nullptr;
  }
}

QuantizeActFn simd_act_quantizer(GgmlType act) {
  switch (act) {
    case GgmlType::Q8_0: return act_q8_0;
    case GgmlType::Q8_1: return act_q8_1;
    case GgmlType::Q8_K: return act_q8_K;
    case GgmlType::F16: return act_f16;
    default: return nullptr;  // BF16, F32: the scalar encoder is already a plain copy/round
  }
}

#elif defined(SLM_ARM_NEON)

// The NEON kernels: each block's integer sum with Advanced SIMD (exact, as the scalar
// reference's), then the same float arithmetic as the reference, block by block.
using namespace slm::quant;

namespace {

inline float h2f(uint16_t h) { return fp16_to_f32(h); }

// acc + Σ x·y over 16 signed bytes, in four i32 lanes. Each product (at most 128·127 in
// magnitude) fits an i16; the pairwise adds widen to i32.
inline int32x4_t dot16(int32x4_t acc, int8x16_t x, int8x16_t y) {
  acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(x), vget_low_s8(y)));
  return vpadalq_s16(acc, vmull_high_s8(x, y));
}

inline int8x16_t low_nibbles(uint8x16_t q) { return vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0F))); }
inline int8x16_t high_nibbles(uint8x16_t q) { return vreinterpretq_s8_u8(vshrq_n_u8(q, 4)); }

float dot_q4_0(int64_t n, const void* wv, const void* av) {
  const auto* w = static_cast<const block_q4_0*>(wv);
  const auto* a = static_cast<const block_q8_0*>(av);
  const int8x16_t eight = vdupq_n_s8(8);
  float sum = 0;
  for (int64_t i = 0; i < n / QK; ++i) {
    const uint8x16_t q = vld1q_u8(w[i].qs);
    int32x4_t acc = dot16(vdupq_n_s32(0), vsubq_s8(low_nibbles(q), eight), vld1q_s8(a[i].qs));
    acc = dot16(acc, vsubq_s8(high_nibbles(q), eight), vld1q_s8(a[i].qs + 16));
    sum += h2f(w[i].d) * h2f(a[i].d) * static_cast<float>(vaddvq_s32(acc));
  }
  return sum;
}

float dot_q8_0(int64_t n, const void* wv, const void* av) {
  const auto* w = static_cast<const block_q8_0*>(wv);
  const auto* a = static_cast<const block_q8_0*>(av);
  float sum = 0;
  for (int64_t i = 0; i < n / QK; ++i) {
    int32x4_t acc = dot16(vdupq_n_s32(0), vld1q_s8(w[i].qs), vld1q_s8(a[i].qs));
    acc = dot16(acc, vld1q_s8(w[i].qs + 16), vld1q_s8(a[i].qs + 16));
    sum += h2f(w[i].d) * h2f(a[i].d) * static_cast<float>(vaddvq_s32(acc));
  }
  return sum;
}

float dot_q4_K(int64_t n, const void* wv, const void* av) {
  const auto* w = static_cast<const block_q4_K*>(wv);
  const auto* a = static_cast<const block_q8_K*>(av);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const block_q4_K& b = w[i];
    const int8_t* y = a[i].qs;
    int sum_scaled = 0, sum_mins = 0;
    for (int c = 0; c < 4; ++c) {
      uint8_t sc1, m1, sc2, m2;
      unpack_scale_min_k4(2 * c, b.scales, &sc1, &m1);
      unpack_scale_min_k4(2 * c + 1, b.scales, &sc2, &m2);
      const uint8x16_t q0 = vld1q_u8(b.qs + 32 * c), q1 = vld1q_u8(b.qs + 32 * c + 16);
      int32x4_t lo = dot16(vdupq_n_s32(0), low_nibbles(q0), vld1q_s8(y + 64 * c));
      lo = dot16(lo, low_nibbles(q1), vld1q_s8(y + 64 * c + 16));
      int32x4_t hi = dot16(vdupq_n_s32(0), high_nibbles(q0), vld1q_s8(y + 64 * c + 32));
      hi = dot16(hi, high_nibbles(q1), vld1q_s8(y + 64 * c + 48));
      sum_scaled += sc1 * vaddvq_s32(lo) + sc2 * vaddvq_s32(hi);
      sum_mins += m1 * (a[i].bsums[4 * c] + a[i].bsums[4 * c + 1]) +
                  m2 * (a[i].bsums[4 * c + 2] + a[i].bsums[4 * c + 3]);
    }
    sum += a[i].d * h2f(b.d) * static_cast<float>(sum_scaled) -
           a[i].d * h2f(b.dmin) * static_cast<float>(sum_mins);
  }
  return sum;
}

float dot_q6_K(int64_t n, const void* wv, const void* av) {
  const auto* w = static_cast<const block_q6_K*>(wv);
  const auto* a = static_cast<const block_q8_K*>(av);
  const uint8x16_t m4 = vdupq_n_u8(0x0F), m2 = vdupq_n_u8(0x03);
  const int8x16_t bias = vdupq_n_s8(32);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const block_q6_K& b = w[i];
    int sumi = 0;
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = b.ql + 64 * half;
      const uint8_t* qh = b.qh + 32 * half;
      const int8_t* sc = b.scales + 8 * half;
      const int8_t* y = a[i].qs + 128 * half;
      int s[8];  // per group of 16 within this half, as the reference's
      for (int g = 0; g < 2; ++g) {
        const int l = 16 * g;
        const uint8x16_t qa = vld1q_u8(ql + l), qb = vld1q_u8(ql + 32 + l), h = vld1q_u8(qh + l);
        const auto code = [&](uint8x16_t low4, uint8x16_t high2) {
          return vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(low4, vshlq_n_u8(high2, 4))), bias);
        };
        const int8x16_t q1 = code(vandq_u8(qa, m4), vandq_u8(h, m2));
        const int8x16_t q2 = code(vandq_u8(qb, m4), vandq_u8(vshrq_n_u8(h, 2), m2));
        const int8x16_t q3 = code(vshrq_n_u8(qa, 4), vandq_u8(vshrq_n_u8(h, 4), m2));
        const int8x16_t q4 = code(vshrq_n_u8(qb, 4), vshrq_n_u8(h, 6));
        s[g] = vaddvq_s32(dot16(vdupq_n_s32(0), q1, vld1q_s8(y + l)));
        s[g + 2] = vaddvq_s32(dot16(vdupq_n_s32(0), q2, vld1q_s8(y + 32 + l)));
        s[g + 4] = vaddvq_s32(dot16(vdupq_n_s32(0), q3, vld1q_s8(y + 64 + l)));
        s[g + 6] = vaddvq_s32(dot16(vdupq_n_s32(0), q4, vld1q_s8(y + 96 + l)));
      }
      for (int g = 0; g < 8; ++g) sumi += sc[g] * s[g];
    }
    sum += a[i].d * h2f(b.d) * static_cast<float>(sumi);
  }
  return sum;
}

}  // namespace

DotFn simd_kernel(GgmlType t) {
  switch (t) {
    case GgmlType::Q4_0: return dot_q4_0;
    case GgmlType::Q8_0: return dot_q8_0;
    case GgmlType::Q4_K: return dot_q4_K;
    case GgmlType::Q6_K: return dot_q6_K;
    default: return nullptr;  // the scalar reference
  }
}

QuantizeActFn simd_act_quantizer(GgmlType) { return nullptr; }

#else  // no SIMD in this tier: the dispatch falls back to the scalar reference

DotFn simd_kernel(GgmlType) { return nullptr; }
QuantizeActFn simd_act_quantizer(GgmlType) { return nullptr; }

#endif

}  // namespace slm::SLM_TIER_NS::vdot

namespace slm::SLM_TIER_NS {
extern const vdot::SimdKernels kSimdKernels;
const vdot::SimdKernels kSimdKernels = {vdot::simd_kernel, vdot::simd_act_quantizer};
}  // namespace slm::SLM_TIER_NS

#include "kernels/tier_end.h"

#if SLM_TIER_BASE
namespace slm {
SLM_TIER_TABLE(::slm::vdot::SimdKernels, kSimdKernels)
vdot::DotFn vdot::simd_kernel(GgmlType t) { return kSimdKernels_of_tier().kernel(t); }
vdot::QuantizeActFn vdot::simd_act_quantizer(GgmlType t) { return kSimdKernels_of_tier().act_quantizer(t); }
}  // namespace slm
#endif

// gemm_q: cache blocking for every weight type, register tiling for the 32-value blocks.
//
// Loop order: a block of rows whose weights fit in L2 (~256 KiB) is held while every token
// passes through it, so weights come from memory once per call rather than once per token.
// For Q4_0/Q5_0/Q8_0/IQ4_NL a micro-kernel computes a tile of RM rows × RN tokens: each
// weight block is unpacked to bytes once and multiplied with RN activation blocks, so the
// unpacking cost and the weight loads are shared by RN tokens. Other types run their vec_dot
// kernel per (row, token) inside the same cache blocks.
#include "kernels/gemm_q.h"

// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized inside _mm512_inserti64x4 and the
// extracts (GCC bug 105593, fixed in 13); the warning is about the header, not this code.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <algorithm>
#include <cstring>
#include <string>
#include <type_traits>

#include "kernels/tier.h"
#include "kernels/vec_dot_kernels.h"
#include "quant/blocks.h"
#include "slm/error.h"

namespace slm {
struct GemmQKernels {
  decltype(&gemm_q) gemm;
  vdot::DotFn (*tiled_kernel)(GgmlType weight_type);
};
}  // namespace slm

#include "kernels/tier_begin.h"
#include "kernels/vec_dot_simd.h"

namespace slm::SLM_TIER_NS {

namespace {

using namespace slm::quant;

constexpr size_t kRowBlockBytes = 256 * 1024;

// Edges and types without a micro-kernel: one kernel call per (row, token).
void gemm_generic(vdot::DotFn dot, int64_t n, const uint8_t* w, size_t ws, const uint8_t* a,
                  size_t as, int64_t t_begin, int64_t t_end, float* y, int64_t ys, int64_t r_begin,
                  int64_t r_end) {
  for (int64_t t = t_begin; t < t_end; ++t)
    for (int64_t o = r_begin; o < r_end; ++o)
      y[t * ys + o] = dot(n, w + static_cast<size_t>(o) * ws, a + static_cast<size_t>(t) * as);
}

#if defined(SLM_X86_AVX2)

// Decoders for the tiled kernel: a weight block → 32 bytes of codes and its fp16 scale.
// kBias > 0: unsigned codes, value = code − kBias (the bias is removed through Σ activation
// codes, shared by all rows of a tile). kBias == 0: signed codes (sign trick per product).
struct DecQ4_0 {
  using Block = block_q4_0;
  static constexpr int kBias = 8;
  static __m256i codes(const Block& b) { return vdot::unpack_nibbles_16(b.qs); }
};

struct DecQ5_0 {
  using Block = block_q5_0;
  static constexpr int kBias = 16;
  static __m256i codes(const Block& b) {
    return _mm256_or_si256(vdot::unpack_nibbles_16(b.qs),
                           _mm256_and_si256(vdot::bits_to_bytes(b.qh), _mm256_set1_epi8(0x10)));
  }
};

#if defined(SLM_VNNI)
// Without saturation (VNNI) the signed formats can also use the unsigned route, codes + 128.
struct DecQ8_0 {
  using Block = block_q8_0;
  static constexpr int kBias = 128;
  static __m256i codes(const Block& b) {
    return _mm256_xor_si256(vdot::loadu256(b.qs), _mm256_set1_epi8(static_cast<char>(0x80)));
  }
};
struct DecIQ4_NL {
  using Block = block_iq4_nl;
  static constexpr int kBias = 128;
  static __m256i codes(const Block& b) {
    alignas(16) static constexpr uint8_t kBiased[16] = {1,   24,  45,  63,  79,  93,  106, 118,
                                                        129, 141, 153, 166, 181, 197, 217, 241};
    const __m128i t = _mm_load_si128(reinterpret_cast<const __m128i*>(kBiased));
    return _mm256_shuffle_epi8(_mm256_set_m128i(t, t), vdot::unpack_nibbles_16(b.qs));
  }
};
#else
struct DecQ8_0 {
  using Block = block_q8_0;
  static constexpr int kBias = 0;
  static __m256i codes(const Block& b) { return vdot::loadu256(b.qs); }
};
struct DecIQ4_NL {
  using Block = block_iq4_nl;
  static constexpr int kBias = 0;
  static __m256i codes(const Block& b) {
    const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues));
    return _mm256_shuffle_epi8(_mm256_set_m128i(t, t), vdot::unpack_nibbles_16(b.qs));
  }
};
#endif

// One RM × RN tile over all nb blocks of the rows.
template <typename Dec, int RM, int RN>
void tile(int64_t nb, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* y, int64_t ys) {
  using Block = typename Dec::Block;
  __m256 acc[RM][RN];
  for (int i = 0; i < RM; ++i)
    for (int j = 0; j < RN; ++j) acc[i][j] = _mm256_setzero_ps();
  for (int64_t k = 0; k < nb; ++k) {
    __m256i u[RM], mag[RM];
    __m256 dw[RM];
    for (int i = 0; i < RM; ++i) {
      const Block& b = reinterpret_cast<const Block*>(w + i * ws)[k];
      u[i] = Dec::codes(b);
      if constexpr (Dec::kBias == 0) mag[i] = _mm256_sign_epi8(u[i], u[i]);
      dw[i] = _mm256_set1_ps(vdot::h2f(b.d));
    }
    for (int j = 0; j < RN; ++j) {
      const block_q8_0& x = reinterpret_cast<const block_q8_0*>(a + j * as)[k];
      const __m256i av = vdot::loadu256(x.qs);
      const __m256 da = _mm256_set1_ps(vdot::h2f(x.d));
      if constexpr (Dec::kBias != 0) {
        const __m256i bias = vdot::dot_u8s8(_mm256_set1_epi8(static_cast<char>(Dec::kBias)), av);
        for (int i = 0; i < RM; ++i) {
          const __m256i p = _mm256_sub_epi32(vdot::dot_u8s8(u[i], av), bias);
          acc[i][j] = _mm256_fmadd_ps(_mm256_mul_ps(dw[i], da), _mm256_cvtepi32_ps(p), acc[i][j]);
        }
      } else {
        for (int i = 0; i < RM; ++i) {
          const __m256i p = vdot::dot_u8s8(mag[i], _mm256_sign_epi8(av, u[i]));
          acc[i][j] = _mm256_fmadd_ps(_mm256_mul_ps(dw[i], da), _mm256_cvtepi32_ps(p), acc[i][j]);
        }
      }
    }
  }
  for (int j = 0; j < RN; ++j)
    for (int i = 0; i < RM; ++i) y[j * ys + i] = vdot::hsum(acc[i][j]);
}

// K-quant tiles: per super-block, the integer sums of RM rows × RN tokens are accumulated
// over the sub-blocks with each row's scales (maddubs, then madd with the scale), and the
// rows' scale unpacking is shared by the RN tokens; the min/offset term comes from the
// activations' bsums once per (row, token, super-block).
#if defined(SLM_X86_AVX512)
// acc + Σ pairs of p·s (16-bit products summed into 32-bit lanes); one instruction with VNNI.
inline __m512i madd_acc16(__m512i acc, __m512i p, __m512i s) {
#if defined(SLM_X86_VNNI)
  return _mm512_dpwssd_epi32(acc, p, s);
#else
  return _mm512_add_epi32(acc, _mm512_madd_epi16(p, s));
#endif
}
// [lo | hi] as one 512-bit vector (zero-extended first: GCC 12 warns about the undefined
// upper half a plain cast leaves).
inline __m512i join256(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_zextsi256_si512(lo), hi, 1); }
// The two 256-bit halves added lane by lane (exact: integers).
inline __m256i fold512(__m512i v) {
  return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
}
#endif

// A Q4_K/Q5_K super-block's eight 6-bit scales and eight 6-bit mins, unpacked in registers
// (bytes 0..7 scales, 8..15 mins): going through memory with two 8-byte stores and one
// 16-byte load stalls on store forwarding, which cost a sixth of the decode kernel's time.
inline __m128i scales_mins_k4(const uint8_t* s) {
  uint32_t u[3];
  std::memcpy(u, s, 12);
  return _mm_setr_epi32(static_cast<int>(u[0] & 0x3F3F3F3Fu),
                        static_cast<int>((u[2] & 0x0F0F0F0Fu) | (((u[0] >> 6) & 0x03030303u) << 4)),
                        static_cast<int>(u[1] & 0x3F3F3F3Fu),
                        static_cast<int>(((u[2] >> 4) & 0x0F0F0F0Fu) | (((u[1] >> 6) & 0x03030303u) << 4)));
}

// Weights are read once per decode step, straight from memory: ask for the bytes a few
// super-blocks ahead so the loads do not wait (the hardware prefetcher alone left the
// kernel at a third of the read bandwidth).
constexpr int kPrefetchBytes = 8192;
template <typename Block>
inline void prefetch_block(const Block* b) {
  const char* p = reinterpret_cast<const char*>(b) + kPrefetchBytes;
  for (size_t off = 0; off < sizeof(Block); off += 64) _mm_prefetch(p + off, _MM_HINT_T0);
}

// K-quant tiles: per super-block, the integer sums of RM rows × RN tokens are accumulated
// over the sub-blocks with each row's scales (maddubs, then madd with the scale), and the
// rows' scale unpacking is shared by the RN tokens; the min/offset term comes from the
// activations' bsums once per (row, token, super-block).
template <bool kFifthBit, int RM, int RN>
void tile_q45_K(int64_t nb, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* y, int64_t ys) {
  using Block = std::conditional_t<kFifthBit, block_q5_K, block_q4_K>;
  [[maybe_unused]] const __m256i m4 = _mm256_set1_epi8(0xF), one = _mm256_set1_epi8(1);
  // shuffle masks broadcasting the 16-bit scale of sub-block 2c (lo) and 2c+1 (hi)
  const __m256i pick[4][2] = {
      {_mm256_set1_epi16(0x0100), _mm256_set1_epi16(0x0302)},
      {_mm256_set1_epi16(0x0504), _mm256_set1_epi16(0x0706)},
      {_mm256_set1_epi16(0x0908), _mm256_set1_epi16(0x0B0A)},
      {_mm256_set1_epi16(0x0D0C), _mm256_set1_epi16(0x0F0E)},
  };
  __m256 acc[RM][RN];
  for (int i = 0; i < RM; ++i)
    for (int j = 0; j < RN; ++j) acc[i][j] = _mm256_setzero_ps();
  for (int64_t k = 0; k < nb; ++k) {
    const Block* b[RM];
    const block_q8_K* x[RN];
    __m256i sc16[RM];    // the eight scales as 16-bit values, in both 128-bit lanes
    __m256i mins16[RM];  // each sub-block's min repeated for its two groups of 16 (bsums order)
    for (int i = 0; i < RM; ++i) {
      b[i] = &reinterpret_cast<const Block*>(w + i * ws)[k];
      prefetch_block(b[i]);
      const __m128i sm = scales_mins_k4(b[i]->scales);
      sc16[i] = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
      const __m128i mins = _mm_shuffle_epi8(sm, _mm_setr_epi8(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15));
      mins16[i] = _mm256_cvtepu8_epi16(mins);
    }
    for (int j = 0; j < RN; ++j) x[j] = &reinterpret_cast<const block_q8_K*>(a + j * as)[k];
    __m256i isum[RM][RN];
    for (int i = 0; i < RM; ++i)
      for (int j = 0; j < RN; ++j) isum[i][j] = _mm256_setzero_si256();
#if defined(SLM_X86_AVX512)
    // Two sub-blocks per 512-bit product: chunk c's low nibbles (sub-block 2c) in the low
    // half, its high nibbles (2c+1) in the high half, against 64 contiguous activations. The
    // halves are added at the end, so every 32-bit lane holds the same integer sum as the
    // 256-bit route and the float results are bit-identical.
    const __m512i m4w = _mm512_set1_epi8(0xF), onew = _mm512_set1_epi8(1);
    __m512i isumw[RM][RN];
    for (int i = 0; i < RM; ++i)
      for (int j = 0; j < RN; ++j) isumw[i][j] = _mm512_setzero_si512();
    for (int c = 0; c < 4; ++c) {
      __m512i v[RM], sv[RM];
      for (int i = 0; i < RM; ++i) {
        const __m256i q = vdot::loadu256(b[i]->qs + 32 * c);
        v[i] = _mm512_and_si512(join256(q, _mm256_srli_epi16(q, 4)), m4w);
        if constexpr (kFifthBit) {
          const __m256i qh = vdot::loadu256(b[i]->qh);
          const __m512i h = join256(_mm256_srli_epi16(qh, 2 * c), _mm256_srli_epi16(qh, 2 * c + 1));
          v[i] = _mm512_or_si512(v[i], _mm512_slli_epi16(_mm512_and_si512(h, onew), 4));
        }
        sv[i] = join256(_mm256_shuffle_epi8(sc16[i], pick[c][0]), _mm256_shuffle_epi8(sc16[i], pick[c][1]));
      }
      for (int j = 0; j < RN; ++j) {
        const __m512i yv = _mm512_loadu_si512(x[j]->qs + 64 * c);
        for (int i = 0; i < RM; ++i) isumw[i][j] = madd_acc16(isumw[i][j], _mm512_maddubs_epi16(v[i], yv), sv[i]);
      }
    }
    for (int i = 0; i < RM; ++i)
      for (int j = 0; j < RN; ++j) isum[i][j] = fold512(isumw[i][j]);
#else
    for (int c = 0; c < 4; ++c) {
      __m256i lo[RM], hi[RM], slo[RM], shi[RM];
      for (int i = 0; i < RM; ++i) {
        const __m256i q = vdot::loadu256(b[i]->qs + 32 * c);
        lo[i] = _mm256_and_si256(q, m4);
        hi[i] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
        if constexpr (kFifthBit) {
          const __m256i qh = vdot::loadu256(b[i]->qh);
          lo[i] = _mm256_or_si256(lo[i], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), one), 4));
          hi[i] = _mm256_or_si256(hi[i], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), one), 4));
        }
        slo[i] = _mm256_shuffle_epi8(sc16[i], pick[c][0]);
        shi[i] = _mm256_shuffle_epi8(sc16[i], pick[c][1]);
      }
      for (int j = 0; j < RN; ++j) {
        const __m256i ylo = vdot::loadu256(x[j]->qs + 64 * c);
        const __m256i yhi = vdot::loadu256(x[j]->qs + 64 * c + 32);
        for (int i = 0; i < RM; ++i) {
          const __m256i p = _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(lo[i], ylo), slo[i]),
                                             _mm256_madd_epi16(_mm256_maddubs_epi16(hi[i], yhi), shi[i]));
          isum[i][j] = _mm256_add_epi32(isum[i][j], p);
        }
      }
    }
#endif
    for (int j = 0; j < RN; ++j) {
      const __m256i bsums = vdot::loadu256(x[j]->bsums);
      for (int i = 0; i < RM; ++i) {
        const float dy = x[j]->d;
        const __m256 msum = _mm256_cvtepi32_ps(_mm256_madd_epi16(mins16[i], bsums));
        acc[i][j] = _mm256_fmadd_ps(_mm256_set1_ps(dy * vdot::h2f(b[i]->d)), _mm256_cvtepi32_ps(isum[i][j]), acc[i][j]);
        acc[i][j] = _mm256_fnmadd_ps(_mm256_set1_ps(dy * vdot::h2f(b[i]->dmin)), msum, acc[i][j]);
      }
    }
  }
  for (int j = 0; j < RN; ++j)
    for (int i = 0; i < RM; ++i) y[j * ys + i] = vdot::hsum(acc[i][j]);
}

alignas(16) constexpr uint8_t kPairMaskK[8][16] = {
    {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3},
    {4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5},
    {6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7},
    {8, 8, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 9},
    {10, 10, 10, 10, 10, 10, 10, 10, 11, 11, 11, 11, 11, 11, 11, 11},
    {12, 12, 12, 12, 12, 12, 12, 12, 13, 13, 13, 13, 13, 13, 13, 13},
    {14, 14, 14, 14, 14, 14, 14, 14, 15, 15, 15, 15, 15, 15, 15, 15},
};

template <int RM, int RN>
void tile_q6_K(int64_t nb, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* y, int64_t ys) {
  [[maybe_unused]] const __m256i m4 = _mm256_set1_epi8(0xF), m30 = _mm256_set1_epi8(0x30);
  __m256 acc[RM][RN];
  for (int i = 0; i < RM; ++i)
    for (int j = 0; j < RN; ++j) acc[i][j] = _mm256_setzero_ps();
  for (int64_t k = 0; k < nb; ++k) {
    const block_q6_K* b[RM];
    const block_q8_K* x[RN];
    __m128i sc[RM];
    for (int i = 0; i < RM; ++i) {
      b[i] = &reinterpret_cast<const block_q6_K*>(w + i * ws)[k];
      prefetch_block(b[i]);
      sc[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[i]->scales));
    }
    for (int j = 0; j < RN; ++j) x[j] = &reinterpret_cast<const block_q8_K*>(a + j * as)[k];
    __m256i isum[RM][RN];
    for (int i = 0; i < RM; ++i)
      for (int j = 0; j < RN; ++j) isum[i][j] = _mm256_setzero_si256();
#if defined(SLM_X86_AVX512)
    // Chunks kk and kk+1 in one 512-bit product (their activations are contiguous); the
    // halves are added at the end, so the integer sum per lane, and the result, are those
    // of the 256-bit route.
    const __m512i m4w = _mm512_set1_epi8(0xF), m30w = _mm512_set1_epi8(0x30);
    __m512i isumw[RM][RN];
    for (int i = 0; i < RM; ++i)
      for (int j = 0; j < RN; ++j) isumw[i][j] = _mm512_setzero_si512();
    for (int half = 0; half < 2; ++half) {
      for (int kk = 0; kk < 4; kk += 2) {
        __m512i q[RM], sv[RM];
        for (int i = 0; i < RM; ++i) {
          const __m512i ql = _mm512_loadu_si512(b[i]->ql + 64 * half);
          const __m256i qh = vdot::loadu256(b[i]->qh + 32 * half);
          const __m512i nib = kk == 0 ? _mm512_and_si512(ql, m4w) : _mm512_and_si512(_mm512_srli_epi16(ql, 4), m4w);
          const __m512i hb = kk == 0 ? join256(_mm256_slli_epi16(qh, 4), _mm256_slli_epi16(qh, 2))
                                     : join256(qh, _mm256_srli_epi16(qh, 2));
          q[i] = _mm512_or_si512(nib, _mm512_and_si512(hb, m30w));
          const __m256i scw = _mm256_broadcastsi128_si256(sc[i]);
          const __m256i mask = _mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(kPairMaskK[4 * half + kk + 1]),
                                                   reinterpret_cast<const __m128i*>(kPairMaskK[4 * half + kk]));
          sv[i] = _mm512_cvtepi8_epi16(_mm256_shuffle_epi8(scw, mask));
        }
        for (int j = 0; j < RN; ++j) {
          const __m512i yv = _mm512_loadu_si512(x[j]->qs + 128 * half + 32 * kk);
          for (int i = 0; i < RM; ++i) isumw[i][j] = madd_acc16(isumw[i][j], _mm512_maddubs_epi16(q[i], yv), sv[i]);
        }
      }
    }
    for (int i = 0; i < RM; ++i)
      for (int j = 0; j < RN; ++j) isum[i][j] = fold512(isumw[i][j]);
#else
    for (int half = 0; half < 2; ++half) {
      for (int kk = 0; kk < 4; ++kk) {
        __m256i q[RM], s[RM];
        for (int i = 0; i < RM; ++i) {
          const __m256i ql = vdot::loadu256(b[i]->ql + 64 * half + 32 * (kk & 1));
          const __m256i qh = vdot::loadu256(b[i]->qh + 32 * half);
          // chunk kk: low (kk < 2) or high (kk >= 2) nibbles of ql, bits 2kk..2kk+1 of qh.
          const __m256i nib = kk < 2 ? _mm256_and_si256(ql, m4) : _mm256_and_si256(_mm256_srli_epi16(ql, 4), m4);
          __m256i hb;
          switch (kk) {
            case 0: hb = _mm256_slli_epi16(qh, 4); break;
            case 1: hb = _mm256_slli_epi16(qh, 2); break;
            case 2: hb = qh; break;
            default: hb = _mm256_srli_epi16(qh, 2); break;
          }
          q[i] = _mm256_or_si256(nib, _mm256_and_si256(hb, m30));
          s[i] = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(
              sc[i], _mm_load_si128(reinterpret_cast<const __m128i*>(kPairMaskK[4 * half + kk]))));
        }
        for (int j = 0; j < RN; ++j) {
          const __m256i yv = vdot::loadu256(x[j]->qs + 128 * half + 32 * kk);
          for (int i = 0; i < RM; ++i)
            isum[i][j] = _mm256_add_epi32(isum[i][j], _mm256_madd_epi16(_mm256_maddubs_epi16(q[i], yv), s[i]));
        }
      }
    }
#endif
    for (int j = 0; j < RN; ++j) {
      const __m256i bsums = vdot::loadu256(x[j]->bsums);
      for (int i = 0; i < RM; ++i) {
        // codes are value + 32: subtract 32·Σ scale·bsum.
        const __m256i off = _mm256_slli_epi32(_mm256_madd_epi16(_mm256_cvtepi8_epi16(sc[i]), bsums), 5);
        acc[i][j] = _mm256_fmadd_ps(_mm256_set1_ps(x[j]->d * vdot::h2f(b[i]->d)),
                                    _mm256_cvtepi32_ps(_mm256_sub_epi32(isum[i][j], off)), acc[i][j]);
      }
    }
  }
  for (int j = 0; j < RN; ++j)
    for (int i = 0; i < RM; ++i) y[j * ys + i] = vdot::hsum(acc[i][j]);
}

using TileFn = void (*)(int64_t nb, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* y, int64_t ys);

// A family of tiles: RM rows × RN tokens, and RM rows × 4, 2 and 1 tokens for the tokens
// left over (a server step decoding four sequences is a 4-token product: one pass over the
// weights, not four).
struct Tiles {
  int rm, rn;
  int64_t block;  // values per weight block
  TileFn full, four_tokens, two_tokens, one_token;
};

#if defined(SLM_X86_AVX512)
constexpr int kRM = 4, kRN = 4;  // 32 vector registers: 16 accumulators fit
#else
constexpr int kRM = 2, kRN = 4;  // 16 vector registers
#endif

template <typename Dec>
constexpr Tiles legacy_tiles() {
  return {kRM, kRN, QK, tile<Dec, kRM, kRN>, tile<Dec, kRM, 4>, tile<Dec, kRM, 2>, tile<Dec, kRM, 1>};
}

// K tiles: one row × 4 tokens measured fastest (an integer and a float accumulator per
// pair plus the unpacked codes and scales of each row must stay in registers).
constexpr int kRNK = 8;
constexpr Tiles kTilesQ4_K = {1, kRNK, QK_K, tile_q45_K<false, 1, kRNK>, tile_q45_K<false, 1, 4>, tile_q45_K<false, 1, 2>,
                               tile_q45_K<false, 1, 1>};
constexpr Tiles kTilesQ5_K = {1, kRNK, QK_K, tile_q45_K<true, 1, kRNK>, tile_q45_K<true, 1, 4>, tile_q45_K<true, 1, 2>,
                               tile_q45_K<true, 1, 1>};
constexpr Tiles kTilesQ6_K = {1, kRNK, QK_K, tile_q6_K<1, kRNK>, tile_q6_K<1, 4>, tile_q6_K<1, 2>, tile_q6_K<1, 1>};

void gemm_tiled(const Tiles& tl, int64_t n, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, int64_t n_tok,
                float* y, int64_t ys, int64_t r_begin, int64_t r_end, vdot::DotFn dot) {
  const int64_t nb = n / tl.block;
  int64_t rb = static_cast<int64_t>(kRowBlockBytes / std::max<size_t>(ws, 1));
  rb = std::max<int64_t>(tl.rm, rb / tl.rm * tl.rm);
  for (int64_t r0 = r_begin; r0 < r_end; r0 += rb) {
    const int64_t r1 = std::min(r_end, r0 + rb);
    const int64_t r_tiled = r0 + (r1 - r0) / tl.rm * tl.rm;
    int64_t t = 0;
    for (; t + tl.rn <= n_tok; t += tl.rn)
      for (int64_t r = r0; r < r_tiled; r += tl.rm)
        tl.full(nb, w + static_cast<size_t>(r) * ws, ws, a + static_cast<size_t>(t) * as, as, y + t * ys + r, ys);
    for (int64_t r = r0; r < r_tiled; r += tl.rm)  // leftover tokens: 4, 2, then 1 at a time
      for (int64_t tt = t; tt < n_tok;) {
        const uint8_t* wr = w + static_cast<size_t>(r) * ws;
        const uint8_t* at = a + static_cast<size_t>(tt) * as;
        float* yt = y + tt * ys + r;
        if (n_tok - tt >= 4) {
          tl.four_tokens(nb, wr, ws, at, as, yt, ys);
          tt += 4;
        } else if (n_tok - tt >= 2) {
          tl.two_tokens(nb, wr, ws, at, as, yt, ys);
          tt += 2;
        } else {
          tl.one_token(nb, wr, ws, at, as, yt, ys);
          tt += 1;
        }
      }
    gemm_generic(dot, n, w, ws, a, as, 0, n_tok, y, ys, r_tiled, r1);  // leftover rows
  }
}

// vec_dot kernels for the tiled types are the 1 × 1 tiles: each (row, token) accumulator sees
// the same float operations whatever the tile shape, so a token computed alone (decode) gets
// bit-identical results to the same token inside a batch (prompt processing).
template <TileFn F, int64_t kBlock>
float dot_via_tile(int64_t n, const void* w, const void* a) {
  float y;
  F(n / kBlock, static_cast<const uint8_t*>(w), 0, static_cast<const uint8_t*>(a), 0, &y, 0);
  return y;
}

#endif  // SLM_X86_AVX2

void gemm_blocked(vdot::DotFn dot, int64_t n, const uint8_t* w, size_t ws, const uint8_t* a, size_t as,
                  int64_t n_tok, float* y, int64_t ys, int64_t r_begin, int64_t r_end) {
  const int64_t rb = std::max<int64_t>(1, static_cast<int64_t>(kRowBlockBytes / std::max<size_t>(ws, 1)));
  for (int64_t r0 = r_begin; r0 < r_end; r0 += rb)
    gemm_generic(dot, n, w, ws, a, as, 0, n_tok, y, ys, r0, std::min(r_end, r0 + rb));
}

}  // namespace

void gemm_q(GgmlType t, int64_t n, const void* wv, size_t ws, const void* av, size_t as, int64_t n_tok,
            float* y, int64_t ys, int64_t r_begin, int64_t r_end) {
  vdot::DotFn dot = vdot::tiled_kernel(t);
  if (!dot) dot = vdot::simd_kernel(t);
  if (!dot) dot = vdot::scalar_kernel(t);
  if (!dot) {
    const TypeInfo* ti = type_info(static_cast<uint32_t>(t));
    throw Error(std::string("gemm_q: no kernel for weight type ") + (ti ? ti->name : "?"));
  }
  if (r_begin >= r_end || n_tok <= 0) return;
  const auto* w = static_cast<const uint8_t*>(wv);
  const auto* a = static_cast<const uint8_t*>(av);
#if defined(SLM_X86_AVX2)
  switch (t) {
    case GgmlType::Q4_0: return gemm_tiled(legacy_tiles<DecQ4_0>(), n, w, ws, a, as, n_tok, y, ys, r_begin, r_end, dot);
    case GgmlType::Q5_0: return gemm_tiled(legacy_tiles<DecQ5_0>(), n, w, ws, a, as, n_tok, y, ys, r_begin, r_end, dot);
    case GgmlType::Q8_0: return gemm_tiled(legacy_tiles<DecQ8_0>(), n, w, ws, a, as, n_tok, y, ys, r_begin, r_end, dot);
    case GgmlType::IQ4_NL: return gemm_tiled(legacy_tiles<DecIQ4_NL>(), n, w, ws, a, as, n_tok, y, ys, r_begin, r_end, dot);
    case GgmlType::Q4_K: return gemm_tiled(kTilesQ4_K, n, w, ws, a, as, n_tok, y, ys, r_begin, r_end, dot);
    case GgmlType::Q5_K: return gemm_tiled(kTilesQ5_K, n, w, ws, a, as, n_tok, y, ys, r_begin, r_end, dot);
    case GgmlType::Q6_K: return gemm_tiled(kTilesQ6_K, n, w, ws, a, as, n_tok, y, ys, r_begin, r_end, dot);
    default: break;
  }
#endif
  gemm_blocked(dot, n, w, ws, a, as, n_tok, y, ys, r_begin, r_end);
}

namespace vdot {

DotFn tiled_kernel(GgmlType t) {
#if defined(SLM_X86_AVX2)
  switch (t) {
    case GgmlType::Q4_0: return dot_via_tile<tile<DecQ4_0, 1, 1>, QK>;
    case GgmlType::Q5_0: return dot_via_tile<tile<DecQ5_0, 1, 1>, QK>;
    case GgmlType::Q8_0: return dot_via_tile<tile<DecQ8_0, 1, 1>, QK>;
    case GgmlType::IQ4_NL: return dot_via_tile<tile<DecIQ4_NL, 1, 1>, QK>;
    case GgmlType::Q4_K: return dot_via_tile<tile_q45_K<false, 1, 1>, QK_K>;
    case GgmlType::Q5_K: return dot_via_tile<tile_q45_K<true, 1, 1>, QK_K>;
    case GgmlType::Q6_K: return dot_via_tile<tile_q6_K<1, 1>, QK_K>;
    default: break;
  }
#else
  (void)t;
#endif
  return nullptr;
}

}  // namespace vdot

extern const GemmQKernels kGemmQ;
const GemmQKernels kGemmQ = {gemm_q, vdot::tiled_kernel};

}  // namespace slm::SLM_TIER_NS

#include "kernels/tier_end.h"

#if SLM_TIER_BASE
namespace slm {
SLM_TIER_TABLE(::slm::GemmQKernels, kGemmQ)
void gemm_q(GgmlType t, int64_t n, const void* w, size_t ws, const void* a, size_t as, int64_t n_tok, float* y,
            int64_t ys, int64_t r_begin, int64_t r_end) {
  kGemmQ_of_tier().gemm(t, n, w, ws, a, as, n_tok, y, ys, r_begin, r_end);
}
vdot::DotFn vdot::tiled_kernel(GgmlType t) { return kGemmQ_of_tier().tiled_kernel(t); }
}  // namespace slm
#endif

#include "kernels/rows_x8.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "kernels/tier.h"
#include "quant/blocks.h"
#include "quant/types.h"

namespace slm {

using quant::block_q4_0;
using quant::block_q4_K;
using quant::block_q5_K;
using quant::block_q6_K;
using quant::block_q8_0;
using quant::block_q8_K;

// The interleaved-rows kernels of one CPU tier (kernels/tier.h).
struct RowsX8Kernels {
  bool available;
  decltype(&gemm_q4_0x8) q4_0;
  decltype(&gemm_q8_0x8) q8_0;
  decltype(&gemm_q4_Kx8) q4_K;
  decltype(&gemm_q5_Kx8) q5_K;
  decltype(&gemm_q6_Kx8) q6_K;
};

// Layouts, repacking and the scalar references: the baseline copy only.
#if SLM_TIER_BASE

namespace {
// Block k of rows 8g..8g+7 → one interleaved block: the eight scales, then the rows' codes in
// 4-byte chunks, chunk m of row r at qs + 32m + 4r.
template <typename Src, typename Dst>
void repack_x8(const void* src, size_t row_stride, int64_t rows, int64_t nb, Dst* dst) {
  constexpr int kChunks = sizeof(Src::qs) / 4;
  const auto* base = static_cast<const uint8_t*>(src);
  for (int64_t g = 0; g < rows / 8; ++g)
    for (int64_t k = 0; k < nb; ++k) {
      Dst& out = dst[g * nb + k];
      for (int r = 0; r < 8; ++r) {
        const Src& b = reinterpret_cast<const Src*>(base + size_t(8 * g + r) * row_stride)[k];
        out.d[r] = b.d;
        for (int m = 0; m < kChunks; ++m) std::memcpy(out.qs + 32 * m + 4 * r, b.qs + 4 * m, 4);
      }
    }
}
}  // namespace

void repack_q4_0x8(const void* src, size_t row_stride, int64_t rows, int64_t nb, block_q4_0x8* dst) {
  repack_x8<block_q4_0>(src, row_stride, rows, nb, dst);
}

void repack_q8_0x8(const void* src, size_t row_stride, int64_t rows, int64_t nb, block_q8_0x8* dst) {
  repack_x8<block_q8_0>(src, row_stride, rows, nb, dst);
}

void gemm_q4_0x8_scalar(const block_q4_0x8* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts,
                        size_t act_stride, const int32_t* act_sums, int64_t n_tok, float* y, int64_t ys) {
  for (int64_t t = 0; t < n_tok; ++t) {
    const auto* a = reinterpret_cast<const block_q8_0*>(static_cast<const uint8_t*>(acts) + size_t(t) * act_stride);
    for (int64_t g = g_begin; g < g_end; ++g) {
      for (int r = 0; r < 8; ++r) {
        float sum = 0;
        for (int64_t k = 0; k < nb; ++k) {
          const block_q4_0x8& b = w[g * nb + k];
          int32_t dot = 0;
          for (int m = 0; m < 4; ++m)
            for (int i = 0; i < 4; ++i) {
              const uint8_t q = b.qs[32 * m + 4 * r + i];
              dot += (q & 0xF) * a[k].qs[4 * m + i] + (q >> 4) * a[k].qs[16 + 4 * m + i];
            }
          sum += fp16_to_f32(b.d[r]) * fp16_to_f32(a[k].d) * static_cast<float>(dot - 8 * act_sums[t * nb + k]);
        }
        y[t * ys + 8 * g + r] = sum;
      }
    }
  }
}

void gemm_q8_0x8_scalar(const block_q8_0x8* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts,
                        size_t act_stride, const int32_t*, int64_t n_tok, float* y, int64_t ys) {
  for (int64_t t = 0; t < n_tok; ++t) {
    const auto* a = reinterpret_cast<const block_q8_0*>(static_cast<const uint8_t*>(acts) + size_t(t) * act_stride);
    for (int64_t g = g_begin; g < g_end; ++g) {
      for (int r = 0; r < 8; ++r) {
        float sum = 0;
        for (int64_t k = 0; k < nb; ++k) {
          const block_q8_0x8& b = w[g * nb + k];
          int32_t dot = 0;
          for (int m = 0; m < 8; ++m)
            for (int i = 0; i < 4; ++i) dot += b.qs[32 * m + 4 * r + i] * a[k].qs[4 * m + i];
          sum += fp16_to_f32(b.d[r]) * fp16_to_f32(a[k].d) * static_cast<float>(dot);
        }
        y[t * ys + 8 * g + r] = sum;
      }
    }
  }
}

namespace {
// Q4_K and Q5_K share the super-block shape (6-bit scales and mins of eight 32-value
// sub-blocks); Q5_K adds each value's fifth bit, qh[l] bit 2p+e for value 64p + 32e + l.
template <class Plain, class Packed>
void repack_k4_or_k5(const void* src, size_t row_stride, int64_t rows, int64_t nb, Packed* dst) {
  const auto* base = static_cast<const uint8_t*>(src);
  for (int64_t g = 0; g < rows / 8; ++g)
    for (int64_t k = 0; k < nb; ++k) {
      Packed& out = dst[g * nb + k];
      for (int r = 0; r < 8; ++r) {
        const Plain& b = reinterpret_cast<const Plain*>(base + size_t(8 * g + r) * row_stride)[k];
        out.d[r] = b.d;
        out.dmin[r] = b.dmin;
        uint8_t sm[16];
        quant::unpack_scales_mins_k4(b.scales, sm);
        for (int j = 0; j < 8; ++j) {
          out.scales[8 * j + r] = sm[j];
          out.mins[16 * (j / 2) + 2 * r + j % 2] = sm[8 + j];
        }
        for (int m = 0; m < 32; ++m) std::memcpy(out.qs + 32 * m + 4 * r, b.qs + 4 * m, 4);
        if constexpr (std::is_same_v<Packed, block_q5_Kx8>)
          for (int c = 0; c < 8; ++c) std::memcpy(out.qh + 32 * c + 4 * r, b.qh + 4 * c, 4);
      }
    }
}

template <class Packed>
void gemm_k4_or_k5_scalar(const Packed* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts,
                          size_t act_stride, int64_t n_tok, float* y, int64_t ys) {
  constexpr bool kFive = std::is_same_v<Packed, block_q5_Kx8>;
  for (int64_t t = 0; t < n_tok; ++t) {
    const auto* a = reinterpret_cast<const block_q8_K*>(static_cast<const uint8_t*>(acts) + size_t(t) * act_stride);
    for (int64_t g = g_begin; g < g_end; ++g) {
      for (int r = 0; r < 8; ++r) {
        float sum = 0;
        for (int64_t k = 0; k < nb; ++k) {
          const Packed& b = w[g * nb + k];
          int32_t isum = 0, msum = 0;
          for (int j = 0; j < 8; ++j) {
            // Value 64p + 32e + i of the super-block is nibble e of the row's qs[32p + i]
            // (and, in Q5_K, bit 2p + e of its qh[i]).
            const int p = j / 2, e = j % 2;
            int32_t dot = 0;
            for (int i = 0; i < 32; ++i) {
              const int q = 32 * p + i;
              const uint8_t byte = b.qs[32 * (q / 4) + 4 * r + q % 4];
              int code = e ? byte >> 4 : byte & 0xF;
              if constexpr (kFive) code |= ((b.qh[32 * (i / 4) + 4 * r + i % 4] >> (2 * p + e)) & 1) << 4;
              dot += code * a[k].qs[64 * p + 32 * e + i];
            }
            isum += b.scales[8 * j + r] * dot;
            msum += b.mins[16 * p + 2 * r + e] * (a[k].bsums[2 * j] + a[k].bsums[2 * j + 1]);
          }
          sum += a[k].d * fp16_to_f32(b.d[r]) * static_cast<float>(isum);
          sum -= a[k].d * fp16_to_f32(b.dmin[r]) * static_cast<float>(msum);
        }
        y[t * ys + 8 * g + r] = sum;
      }
    }
  }
}
}  // namespace

void repack_q4_Kx8(const void* src, size_t row_stride, int64_t rows, int64_t nb, block_q4_Kx8* dst) {
  repack_k4_or_k5<block_q4_K>(src, row_stride, rows, nb, dst);
}
void repack_q5_Kx8(const void* src, size_t row_stride, int64_t rows, int64_t nb, block_q5_Kx8* dst) {
  repack_k4_or_k5<block_q5_K>(src, row_stride, rows, nb, dst);
}
void gemm_q4_Kx8_scalar(const block_q4_Kx8* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts,
                        size_t act_stride, int64_t n_tok, float* y, int64_t ys) {
  gemm_k4_or_k5_scalar(w, nb, g_begin, g_end, acts, act_stride, n_tok, y, ys);
}
void gemm_q5_Kx8_scalar(const block_q5_Kx8* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts,
                        size_t act_stride, int64_t n_tok, float* y, int64_t ys) {
  gemm_k4_or_k5_scalar(w, nb, g_begin, g_end, acts, act_stride, n_tok, y, ys);
}

namespace {
// The stored 6-bit code (q + 32) of value v of a plain Q6_K block: values 128n + 32k + l take
// their low bits from ql[64n + 32(k&1) + l] (low nibble for k < 2) and their top two from
// bits 2k..2k+1 of qh[32n + l].
uint8_t q6_code(const block_q6_K& b, int v) {
  const int n = v / 128, k = v % 128 / 32, l = v % 32;
  const uint8_t lq = b.ql[64 * n + 32 * (k & 1) + l];
  return static_cast<uint8_t>((k < 2 ? lq & 0xF : lq >> 4) | ((b.qh[32 * n + l] >> (2 * k)) & 3) << 4);
}

// The same code from an interleaved block, row r (see rows_x8.h).
int q6x8_code(const block_q6_Kx8& b, int r, int v) {
  const int s = v / 16, e = v % 16 / 4, i = v % 4;
  const uint8_t lq = b.qs[96 * s + 32 * (e / 2) + 4 * r + i];
  return (e & 1 ? lq >> 4 : lq & 0xF) | ((b.qs[96 * s + 64 + 4 * r + i] >> (2 * e)) & 3) << 4;
}
}  // namespace

void repack_q6_Kx8(const void* src, size_t row_stride, int64_t rows, int64_t nb, block_q6_Kx8* dst) {
  const auto* base = static_cast<const uint8_t*>(src);
  for (int64_t g = 0; g < rows / 8; ++g)
    for (int64_t k = 0; k < nb; ++k) {
      block_q6_Kx8& out = dst[g * nb + k];
      for (int r = 0; r < 8; ++r) {
        const block_q6_K& b = reinterpret_cast<const block_q6_K*>(base + size_t(8 * g + r) * row_stride)[k];
        out.d[r] = b.d;
        uint8_t u[256];  // each code decoded once
        for (int v = 0; v < 256; ++v) u[v] = q6_code(b, v);
        for (int s = 0; s < 16; ++s) {
          out.scales[8 * s + r] = b.scales[s];
          const uint8_t* us = u + 16 * s;
          for (int i = 0; i < 4; ++i) {
            for (int h = 0; h < 2; ++h)
              out.qs[96 * s + 32 * h + 4 * r + i] = static_cast<uint8_t>((us[8 * h + i] & 0xF) | (us[8 * h + 4 + i] & 0xF) << 4);
            out.qs[96 * s + 64 + 4 * r + i] = static_cast<uint8_t>((us[i] >> 4) | (us[4 + i] >> 4) << 2 |
                                                                   (us[8 + i] >> 4) << 4 | (us[12 + i] >> 4) << 6);
          }
        }
      }
    }
}

void gemm_q6_Kx8_scalar(const block_q6_Kx8* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts,
                        size_t act_stride, int64_t n_tok, float* y, int64_t ys) {
  for (int64_t t = 0; t < n_tok; ++t) {
    const auto* a = reinterpret_cast<const block_q8_K*>(static_cast<const uint8_t*>(acts) + size_t(t) * act_stride);
    for (int64_t g = g_begin; g < g_end; ++g)
      for (int r = 0; r < 8; ++r) {
        float sum = 0;
        for (int64_t k = 0; k < nb; ++k) {
          const block_q6_Kx8& b = w[g * nb + k];
          int32_t isum = 0;
          for (int s = 0; s < 16; ++s) {
            int32_t dot = 0;
            for (int i = 0; i < 16; ++i) dot += q6x8_code(b, r, 16 * s + i) * a[k].qs[16 * s + i];
            isum += b.scales[8 * s + r] * (dot - 32 * a[k].bsums[s]);
          }
          sum += a[k].d * fp16_to_f32(b.d[r]) * static_cast<float>(isum);
        }
        y[t * ys + 8 * g + r] = sum;
      }
  }
}

size_t rows_x8_group_bytes(GgmlType type, int64_t cols) {
  const int64_t block = type == GgmlType::Q4_0 || type == GgmlType::Q8_0 ? 32 : 256;
  if (cols <= 0 || cols % block != 0) return 0;
  const size_t nb = static_cast<size_t>(cols / block);
  switch (type) {
    case GgmlType::Q4_0: return nb * sizeof(block_q4_0x8);
    case GgmlType::Q8_0: return nb * sizeof(block_q8_0x8);
    case GgmlType::Q4_K: return nb * sizeof(block_q4_Kx8);
    case GgmlType::Q5_K: return nb * sizeof(block_q5_Kx8);
    case GgmlType::Q6_K: return nb * sizeof(block_q6_Kx8);
    default: return 0;
  }
}

void repack_rows_x8(GgmlType type, const void* src, size_t row_stride, int64_t rows, int64_t cols, void* dst) {
  const int64_t nb = cols / (type == GgmlType::Q4_0 || type == GgmlType::Q8_0 ? 32 : 256);
  switch (type) {
    case GgmlType::Q4_0: repack_q4_0x8(src, row_stride, rows, nb, static_cast<block_q4_0x8*>(dst)); break;
    case GgmlType::Q8_0: repack_q8_0x8(src, row_stride, rows, nb, static_cast<block_q8_0x8*>(dst)); break;
    case GgmlType::Q4_K: repack_q4_Kx8(src, row_stride, rows, nb, static_cast<block_q4_Kx8*>(dst)); break;
    case GgmlType::Q5_K: repack_q5_Kx8(src, row_stride, rows, nb, static_cast<block_q5_Kx8*>(dst)); break;
    case GgmlType::Q6_K: repack_q6_Kx8(src, row_stride, rows, nb, static_cast<block_q6_Kx8*>(dst)); break;
    default: break;
  }
}

#endif  // SLM_TIER_BASE

}  // namespace slm

#include "kernels/tier_begin.h"
#include "kernels/vec_dot_simd.h"

namespace slm::SLM_TIER_NS {

#if defined(SLM_X86_AVX2)

namespace {

inline __m256i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// One row group × RN tokens over all nb blocks; lane r of acc[j] is row 8g+r for token j.
template <int RN>
void tile_q4(const block_q4_0x8* w, int64_t nb, const uint8_t* acts, size_t as, const int32_t* sums, int64_t sums_stride,
          float* y, int64_t ys) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  __m256 acc[RN];
  for (int j = 0; j < RN; ++j) acc[j] = _mm256_setzero_ps();
  for (int64_t k = 0; k < nb; ++k) {
    const block_q4_0x8& b = w[k];
    const block_q8_0* a[RN];
    for (int j = 0; j < RN; ++j) a[j] = reinterpret_cast<const block_q8_0*>(acts + j * as) + k;
#if defined(SLM_VNNI)
    __m256i isum[RN];
    for (int j = 0; j < RN; ++j) isum[j] = _mm256_setzero_si256();
    for (int m = 0; m < 4; ++m) {
      const __m256i q = vdot::loadu256(b.qs + 32 * m);
      const __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
      for (int j = 0; j < RN; ++j) {
#if defined(SLM_X86_VNNI)
        isum[j] = _mm256_dpbusd_epi32(isum[j], lo, bcast4(a[j]->qs + 4 * m));
        isum[j] = _mm256_dpbusd_epi32(isum[j], hi, bcast4(a[j]->qs + 16 + 4 * m));
#else
        isum[j] = _mm256_dpbusd_avx_epi32(isum[j], lo, bcast4(a[j]->qs + 4 * m));
        isum[j] = _mm256_dpbusd_avx_epi32(isum[j], hi, bcast4(a[j]->qs + 16 + 4 * m));
#endif
      }
    }
#else
    // Without VNNI: maddubs gives pairs of products as int16 (|pair| ≤ 2·15·127 = 3810), and
    // eight of them still fit int16 (30480), so the block is summed in int16 and widened once.
    __m256i isum16[RN];
    for (int j = 0; j < RN; ++j) isum16[j] = _mm256_setzero_si256();
    for (int m = 0; m < 4; ++m) {
      const __m256i q = vdot::loadu256(b.qs + 32 * m);
      const __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
      for (int j = 0; j < RN; ++j) {
        isum16[j] = _mm256_add_epi16(isum16[j], _mm256_maddubs_epi16(lo, bcast4(a[j]->qs + 4 * m)));
        isum16[j] = _mm256_add_epi16(isum16[j], _mm256_maddubs_epi16(hi, bcast4(a[j]->qs + 16 + 4 * m)));
      }
    }
    __m256i isum[RN];
    for (int j = 0; j < RN; ++j) isum[j] = _mm256_madd_epi16(isum16[j], _mm256_set1_epi16(1));
#endif
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.d)));
    for (int j = 0; j < RN; ++j) {
      const __m256i dot = _mm256_sub_epi32(isum[j], _mm256_set1_epi32(8 * sums[j * sums_stride + k]));
      acc[j] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(vdot::h2f(a[j]->d))), _mm256_cvtepi32_ps(dot), acc[j]);
    }
  }
  for (int j = 0; j < RN; ++j) _mm256_storeu_ps(y + j * ys, acc[j]);
}

// Q8_0: signed codes. With VNNI they are offset to unsigned (code + 128) and the offset is
// taken back through the activation sums; without it, |w| and the sign moved onto the
// activations (each pair sum stays within int16: 2·128·127).
template <int RN>
void tile_q8(const block_q8_0x8* w, int64_t nb, const uint8_t* acts, size_t as, const int32_t* sums, int64_t sums_stride,
             float* y, int64_t ys) {
  __m256 acc[RN];
  for (int j = 0; j < RN; ++j) acc[j] = _mm256_setzero_ps();
  for (int64_t k = 0; k < nb; ++k) {
    const block_q8_0x8& b = w[k];
    const block_q8_0* a[RN];
    for (int j = 0; j < RN; ++j) a[j] = reinterpret_cast<const block_q8_0*>(acts + j * as) + k;
    __m256i isum[RN];
    for (int j = 0; j < RN; ++j) isum[j] = _mm256_setzero_si256();
    for (int m = 0; m < 8; ++m) {
      const __m256i q = vdot::loadu256(b.qs + 32 * m);
#if defined(SLM_VNNI)
      const __m256i u = _mm256_xor_si256(q, _mm256_set1_epi8(static_cast<char>(0x80)));
      for (int j = 0; j < RN; ++j) {
#if defined(SLM_X86_VNNI)
        isum[j] = _mm256_dpbusd_epi32(isum[j], u, bcast4(a[j]->qs + 4 * m));
#else
        isum[j] = _mm256_dpbusd_avx_epi32(isum[j], u, bcast4(a[j]->qs + 4 * m));
#endif
      }
#else
      const __m256i mag = _mm256_sign_epi8(q, q);
      for (int j = 0; j < RN; ++j) {
        const __m256i p = _mm256_maddubs_epi16(mag, _mm256_sign_epi8(bcast4(a[j]->qs + 4 * m), q));
        isum[j] = _mm256_add_epi32(isum[j], _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
      }
#endif
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.d)));
    for (int j = 0; j < RN; ++j) {
#if defined(SLM_VNNI)
      const __m256i dot = _mm256_sub_epi32(isum[j], _mm256_set1_epi32(128 * sums[j * sums_stride + k]));
#else
      const __m256i dot = isum[j];
      (void)sums;
      (void)sums_stride;
#endif
      acc[j] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(vdot::h2f(a[j]->d))), _mm256_cvtepi32_ps(dot), acc[j]);
    }
  }
  for (int j = 0; j < RN; ++j) _mm256_storeu_ps(y + j * ys, acc[j]);
}

// Q4_K and Q5_K: per super-block and sub-block pair p, eight chunks give each row's integer
// dot of sub-blocks 2p (low nibbles) and 2p+1 (high nibbles) in its lane (Q5_K ORs each
// code's fifth bit in first); the lanes are multiplied by the rows' scales and summed exactly
// in 32 bits (|Σ| ≤ 8·63·31·128·32), and the min term is one 16-bit multiply-add per pair
// against the token's sub-block sums.
template <class Block, int RN>
void tile_qK(const Block* w, int64_t nb, const uint8_t* acts, size_t as, const int32_t*, int64_t, float* y,
             int64_t ys) {
  constexpr bool kFive = std::is_same_v<Block, block_q5_Kx8>;
  const __m256i m4 = _mm256_set1_epi8(0x0F), m16 = _mm256_set1_epi8(0x10);
  __m256 acc[RN];
  for (int j = 0; j < RN; ++j) acc[j] = _mm256_setzero_ps();
  for (int64_t k = 0; k < nb; ++k) {
    const Block& b = w[k];
    const block_q8_K* a[RN];
    for (int j = 0; j < RN; ++j) a[j] = reinterpret_cast<const block_q8_K*>(acts + j * as) + k;
    __m256i isum[RN], msum[RN];
    for (int j = 0; j < RN; ++j) isum[j] = msum[j] = _mm256_setzero_si256();
    // Each token's eight sub-block sums (pairs of its 16-value bsums) as 16-bit values.
    __m256i subsum[RN];
    for (int j = 0; j < RN; ++j) {
      const __m128i s0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a[j]->bsums));
      const __m128i s1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a[j]->bsums + 8));
      subsum[j] = _mm256_zextsi128_si256(_mm_hadd_epi16(s0, s1));
    }
    for (int p = 0; p < 4; ++p) {
      // Chunk c's codes of sub-blocks 2p and 2p+1 of all eight rows.
      auto codes = [&](int c, __m256i& lo, __m256i& hi) {
        const __m256i q = vdot::loadu256(b.qs + 32 * (8 * p + c));
        lo = _mm256_and_si256(q, m4);
        hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
        if constexpr (kFive) {
          const __m256i h = _mm256_srl_epi16(vdot::loadu256(b.qh + 32 * c), _mm_cvtsi32_si128(2 * p));
          lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(h, 4), m16));
          hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(h, 3), m16));
        }
      };
#if defined(SLM_VNNI)
      const __m256i sc_lo = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b.scales + 16 * p)));
      const __m256i sc_hi = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b.scales + 16 * p + 8)));
      __m256i lo_dot[RN], hi_dot[RN];
      for (int j = 0; j < RN; ++j) lo_dot[j] = hi_dot[j] = _mm256_setzero_si256();
      for (int c = 0; c < 8; ++c) {
        __m256i lo, hi;
        codes(c, lo, hi);
        for (int j = 0; j < RN; ++j) {
#if defined(SLM_X86_VNNI)
          lo_dot[j] = _mm256_dpbusd_epi32(lo_dot[j], lo, bcast4(a[j]->qs + 64 * p + 4 * c));
          hi_dot[j] = _mm256_dpbusd_epi32(hi_dot[j], hi, bcast4(a[j]->qs + 64 * p + 32 + 4 * c));
#else
          lo_dot[j] = _mm256_dpbusd_avx_epi32(lo_dot[j], lo, bcast4(a[j]->qs + 64 * p + 4 * c));
          hi_dot[j] = _mm256_dpbusd_avx_epi32(hi_dot[j], hi, bcast4(a[j]->qs + 64 * p + 32 + 4 * c));
#endif
        }
      }
      for (int j = 0; j < RN; ++j)
        isum[j] = _mm256_add_epi32(isum[j], _mm256_add_epi32(_mm256_mullo_epi32(lo_dot[j], sc_lo),
                                                             _mm256_mullo_epi32(hi_dot[j], sc_hi)));
#else
      // maddubs pair sums (≤ 2·15·128, Q5_K 2·31·128) over eight (Q5_K four) chunks stay
      // within int16; the 16-bit multiply-add with the scale repeated in both halves of each
      // lane widens them.
      constexpr int kRun = kFive ? 4 : 8;
      const __m128i s8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales + 16 * p));
      const __m256i sc16_lo = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(s8, s8));
      const __m256i sc16_hi = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(s8, s8));
      for (int c0 = 0; c0 < 8; c0 += kRun) {
        __m256i lo_dot[RN], hi_dot[RN];
        for (int j = 0; j < RN; ++j) lo_dot[j] = hi_dot[j] = _mm256_setzero_si256();
        for (int c = c0; c < c0 + kRun; ++c) {
          __m256i lo, hi;
          codes(c, lo, hi);
          for (int j = 0; j < RN; ++j) {
            lo_dot[j] = _mm256_add_epi16(lo_dot[j], _mm256_maddubs_epi16(lo, bcast4(a[j]->qs + 64 * p + 4 * c)));
            hi_dot[j] = _mm256_add_epi16(hi_dot[j], _mm256_maddubs_epi16(hi, bcast4(a[j]->qs + 64 * p + 32 + 4 * c)));
          }
        }
        for (int j = 0; j < RN; ++j)
          isum[j] = _mm256_add_epi32(isum[j], _mm256_add_epi32(_mm256_madd_epi16(lo_dot[j], sc16_lo),
                                                               _mm256_madd_epi16(hi_dot[j], sc16_hi)));
      }
#endif
      const __m256i mins = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.mins + 16 * p)));
      for (int j = 0; j < RN; ++j) {
        const __m256i pair = _mm256_permutevar8x32_epi32(subsum[j], _mm256_set1_epi32(p));
        msum[j] = _mm256_add_epi32(msum[j], _mm256_madd_epi16(mins, pair));
      }
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.d)));
    const __m256 dmw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.dmin)));
    for (int j = 0; j < RN; ++j) {
      const __m256 da = _mm256_set1_ps(a[j]->d);
      acc[j] = _mm256_fmadd_ps(_mm256_mul_ps(da, dw), _mm256_cvtepi32_ps(isum[j]), acc[j]);
      acc[j] = _mm256_fnmadd_ps(_mm256_mul_ps(da, dmw), _mm256_cvtepi32_ps(msum[j]), acc[j]);
    }
  }
  for (int j = 0; j < RN; ++j) _mm256_storeu_ps(y + j * ys, acc[j]);
}

// Q6_K: one sub-block of 16 values per step, its four chunks rebuilt from two nibbles and two
// bits; the −32 offset of the codes is the sub-block's activation sum times 32, subtracted
// before the row scales multiply (|Σ| per super-block ≤ 16·128·(16·63·128 + 32·2048) < 2^31).
template <int RN>
void tile_q6K(const block_q6_Kx8* w, int64_t nb, const uint8_t* acts, size_t as, const int32_t*, int64_t,
              float* y, int64_t ys) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x30);
  __m256 acc[RN];
  for (int j = 0; j < RN; ++j) acc[j] = _mm256_setzero_ps();
  for (int64_t k = 0; k < nb; ++k) {
    const block_q6_Kx8& b = w[k];
    const block_q8_K* a[RN];
    for (int j = 0; j < RN; ++j) a[j] = reinterpret_cast<const block_q8_K*>(acts + j * as) + k;
    __m256i isum[RN];
    for (int j = 0; j < RN; ++j) isum[j] = _mm256_setzero_si256();
    for (int s = 0; s < 16; ++s) {
      const uint8_t* codes = b.qs + 96 * s;
      const __m256i l0 = vdot::loadu256(codes), l1 = vdot::loadu256(codes + 32), h = vdot::loadu256(codes + 64);
      const __m256i u0 = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(h, 4), m2));
      const __m256i u1 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                         _mm256_and_si256(_mm256_slli_epi16(h, 2), m2));
      const __m256i u2 = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(h, m2));
      const __m256i u3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                         _mm256_and_si256(_mm256_srli_epi16(h, 2), m2));
      const __m128i s8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b.scales + 8 * s));
#if defined(SLM_VNNI)
      const __m256i sc = _mm256_cvtepi8_epi32(s8);
      for (int j = 0; j < RN; ++j) {
        const int8_t* q = a[j]->qs + 16 * s;
        __m256i d = _mm256_set1_epi32(-32 * a[j]->bsums[s]);
#if defined(SLM_X86_VNNI)
        d = _mm256_dpbusd_epi32(d, u0, bcast4(q));
        d = _mm256_dpbusd_epi32(d, u1, bcast4(q + 4));
        d = _mm256_dpbusd_epi32(d, u2, bcast4(q + 8));
        d = _mm256_dpbusd_epi32(d, u3, bcast4(q + 12));
#else
        d = _mm256_dpbusd_avx_epi32(d, u0, bcast4(q));
        d = _mm256_dpbusd_avx_epi32(d, u1, bcast4(q + 4));
        d = _mm256_dpbusd_avx_epi32(d, u2, bcast4(q + 8));
        d = _mm256_dpbusd_avx_epi32(d, u3, bcast4(q + 12));
#endif
        isum[j] = _mm256_add_epi32(isum[j], _mm256_mullo_epi32(d, sc));
      }
#else
      // Two maddubs pair sums (each ≤ 2·63·128) still fit int16; the 16-bit multiply-add
      // with each row's scale in both halves of its lane widens them, and the offset too.
      const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(s8, s8));
      for (int j = 0; j < RN; ++j) {
        const int8_t* q = a[j]->qs + 16 * s;
        const __m256i t1 = _mm256_add_epi16(_mm256_maddubs_epi16(u0, bcast4(q)), _mm256_maddubs_epi16(u1, bcast4(q + 4)));
        const __m256i t2 = _mm256_add_epi16(_mm256_maddubs_epi16(u2, bcast4(q + 8)), _mm256_maddubs_epi16(u3, bcast4(q + 12)));
        const __m256i off = _mm256_madd_epi16(sc16, _mm256_set1_epi32(static_cast<uint16_t>(a[j]->bsums[s])));
        const __m256i d = _mm256_add_epi32(_mm256_madd_epi16(t1, sc16), _mm256_madd_epi16(t2, sc16));
        isum[j] = _mm256_add_epi32(isum[j], _mm256_sub_epi32(d, _mm256_slli_epi32(off, 5)));
      }
#endif
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.d)));
    for (int j = 0; j < RN; ++j)
      acc[j] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(a[j]->d), dw), _mm256_cvtepi32_ps(isum[j]), acc[j]);
  }
  for (int j = 0; j < RN; ++j) _mm256_storeu_ps(y + j * ys, acc[j]);
}

constexpr int kRN = 4;
constexpr size_t kGroupBlockBytes = 256 * 1024;  // weights held in L2 while tokens pass

// Groups in cache-sized runs; within a run, tiles of kRN tokens, then the leftover tokens.
template <typename Block, void (*T4)(const Block*, int64_t, const uint8_t*, size_t, const int32_t*, int64_t, float*, int64_t),
          void (*T3)(const Block*, int64_t, const uint8_t*, size_t, const int32_t*, int64_t, float*, int64_t),
          void (*T2)(const Block*, int64_t, const uint8_t*, size_t, const int32_t*, int64_t, float*, int64_t),
          void (*T1)(const Block*, int64_t, const uint8_t*, size_t, const int32_t*, int64_t, float*, int64_t)>
void gemm_x8(const Block* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts, size_t act_stride,
             const int32_t* act_sums, int64_t n_tok, float* y, int64_t ys) {
  const auto* a = static_cast<const uint8_t*>(acts);
  const int64_t gb = std::max<int64_t>(1, int64_t(kGroupBlockBytes / (size_t(nb) * sizeof(Block))));
  for (int64_t g0 = g_begin; g0 < g_end; g0 += gb) {
    const int64_t g1 = std::min(g_end, g0 + gb);
    int64_t t = 0;
    for (; t + kRN <= n_tok; t += kRN)
      for (int64_t g = g0; g < g1; ++g)
        T4(w + g * nb, nb, a + t * act_stride, act_stride, act_sums ? act_sums + t * nb : nullptr, nb, y + t * ys + 8 * g, ys);
    for (int64_t g = g0; g < g1; ++g) {
      const Block* wg = w + g * nb;
      float* yg = y + t * ys + 8 * g;
      const uint8_t* at = a + t * act_stride;
      const int32_t* st = act_sums ? act_sums + t * nb : nullptr;  // (Q4_K needs none)
      switch (n_tok - t) {
        case 3: T3(wg, nb, at, act_stride, st, nb, yg, ys); break;
        case 2: T2(wg, nb, at, act_stride, st, nb, yg, ys); break;
        case 1: T1(wg, nb, at, act_stride, st, nb, yg, ys); break;
        default: break;
      }
    }
  }
}

}  // namespace

constexpr bool rows_x8_available() { return true; }

void gemm_q4_0x8(const block_q4_0x8* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts,
                 size_t act_stride, const int32_t* act_sums, int64_t n_tok, float* y, int64_t ys) {
  static_assert(kRN == 4);
  gemm_x8<block_q4_0x8, tile_q4<4>, tile_q4<3>, tile_q4<2>, tile_q4<1>>(w, nb, g_begin, g_end, acts, act_stride,
                                                                       act_sums, n_tok, y, ys);
}

void gemm_q8_0x8(const block_q8_0x8* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts,
                 size_t act_stride, const int32_t* act_sums, int64_t n_tok, float* y, int64_t ys) {
  gemm_x8<block_q8_0x8, tile_q8<4>, tile_q8<3>, tile_q8<2>, tile_q8<1>>(w, nb, g_begin, g_end, acts, act_stride,
                                                                       act_sums, n_tok, y, ys);
}

void gemm_q4_Kx8(const block_q4_Kx8* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts,
                 size_t act_stride, int64_t n_tok, float* y, int64_t ys) {
  gemm_x8<block_q4_Kx8, tile_qK<block_q4_Kx8, 4>, tile_qK<block_q4_Kx8, 3>, tile_qK<block_q4_Kx8, 2>,
          tile_qK<block_q4_Kx8, 1>>(w, nb, g_begin, g_end, acts, act_stride, nullptr, n_tok, y, ys);
}

void gemm_q5_Kx8(const block_q5_Kx8* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts,
                 size_t act_stride, int64_t n_tok, float* y, int64_t ys) {
  gemm_x8<block_q5_Kx8, tile_qK<block_q5_Kx8, 4>, tile_qK<block_q5_Kx8, 3>, tile_qK<block_q5_Kx8, 2>,
          tile_qK<block_q5_Kx8, 1>>(w, nb, g_begin, g_end, acts, act_stride, nullptr, n_tok, y, ys);
}

void gemm_q6_Kx8(const block_q6_Kx8* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts,
                 size_t act_stride, int64_t n_tok, float* y, int64_t ys) {
  gemm_x8<block_q6_Kx8, tile_q6K<4>, tile_q6K<3>, tile_q6K<2>, tile_q6K<1>>(w, nb, g_begin, g_end, acts, act_stride,
                                                                           nullptr, n_tok, y, ys);
}

#else

constexpr bool rows_x8_available() { return false; }

void gemm_q4_Kx8(const block_q4_Kx8* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts,
                 size_t act_stride, int64_t n_tok, float* y, int64_t ys) {
  gemm_q4_Kx8_scalar(w, nb, g_begin, g_end, acts, act_stride, n_tok, y, ys);
}

void gemm_q5_Kx8(const block_q5_Kx8* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts,
                 size_t act_stride, int64_t n_tok, float* y, int64_t ys) {
  gemm_q5_Kx8_scalar(w, nb, g_begin, g_end, acts, act_stride, n_tok, y, ys);
}

void gemm_q6_Kx8(const block_q6_Kx8* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts,
                 size_t act_stride, int64_t n_tok, float* y, int64_t ys) {
  gemm_q6_Kx8_scalar(w, nb, g_begin, g_end, acts, act_stride, n_tok, y, ys);
}

void gemm_q4_0x8(const block_q4_0x8* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts,
                 size_t act_stride, const int32_t* act_sums, int64_t n_tok, float* y, int64_t ys) {
  gemm_q4_0x8_scalar(w, nb, g_begin, g_end, acts, act_stride, act_sums, n_tok, y, ys);
}

void gemm_q8_0x8(const block_q8_0x8* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts,
                 size_t act_stride, const int32_t* act_sums, int64_t n_tok, float* y, int64_t ys) {
  gemm_q8_0x8_scalar(w, nb, g_begin, g_end, acts, act_stride, act_sums, n_tok, y, ys);
}

#endif

extern const RowsX8Kernels kRowsX8;
const RowsX8Kernels kRowsX8 = {rows_x8_available(), gemm_q4_0x8, gemm_q8_0x8, gemm_q4_Kx8, gemm_q5_Kx8, gemm_q6_Kx8};

}  // namespace slm::SLM_TIER_NS

#include "kernels/tier_end.h"

#if SLM_TIER_BASE
namespace slm {
SLM_TIER_TABLE(::slm::RowsX8Kernels, kRowsX8)

bool rows_x8_available() { return kRowsX8_of_tier().available; }

void gemm_q4_0x8(const block_q4_0x8* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts,
                 size_t act_stride, const int32_t* act_sums, int64_t n_tok, float* y, int64_t ys) {
  kRowsX8_of_tier().q4_0(w, nb, g_begin, g_end, acts, act_stride, act_sums, n_tok, y, ys);
}
void gemm_q8_0x8(const block_q8_0x8* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts,
                 size_t act_stride, const int32_t* act_sums, int64_t n_tok, float* y, int64_t ys) {
  kRowsX8_of_tier().q8_0(w, nb, g_begin, g_end, acts, act_stride, act_sums, n_tok, y, ys);
}
void gemm_q4_Kx8(const block_q4_Kx8* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts,
                 size_t act_stride, int64_t n_tok, float* y, int64_t ys) {
  kRowsX8_of_tier().q4_K(w, nb, g_begin, g_end, acts, act_stride, n_tok, y, ys);
}
void gemm_q5_Kx8(const block_q5_Kx8* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts,
                 size_t act_stride, int64_t n_tok, float* y, int64_t ys) {
  kRowsX8_of_tier().q5_K(w, nb, g_begin, g_end, acts, act_stride, n_tok, y, ys);
}
void gemm_q6_Kx8(const block_q6_Kx8* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts,
                 size_t act_stride, int64_t n_tok, float* y, int64_t ys) {
  kRowsX8_of_tier().q6_K(w, nb, g_begin, g_end, acts, act_stride, n_tok, y, ys);
}
}  // namespace slm
#endif

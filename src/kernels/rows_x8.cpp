#include "kernels/rows_x8.h"

#include <algorithm>
#include <cstring>

#include "kernels/vec_dot_simd.h"
#include "quant/blocks.h"
#include "quant/types.h"

namespace slm {

using quant::block_q4_0;
using quant::block_q8_0;

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

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

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
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
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
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
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
        T4(w + g * nb, nb, a + t * act_stride, act_stride, act_sums + t * nb, nb, y + t * ys + 8 * g, ys);
    for (int64_t g = g0; g < g1; ++g) {
      const Block* wg = w + g * nb;
      float* yg = y + t * ys + 8 * g;
      const uint8_t* at = a + t * act_stride;
      const int32_t* st = act_sums + t * nb;
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

bool rows_x8_available() { return true; }

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

#else

bool rows_x8_available() { return false; }

void gemm_q4_0x8(const block_q4_0x8* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts,
                 size_t act_stride, const int32_t* act_sums, int64_t n_tok, float* y, int64_t ys) {
  gemm_q4_0x8_scalar(w, nb, g_begin, g_end, acts, act_stride, act_sums, n_tok, y, ys);
}

void gemm_q8_0x8(const block_q8_0x8* w, int64_t nb, int64_t g_begin, int64_t g_end, const void* acts,
                 size_t act_stride, const int32_t* act_sums, int64_t n_tok, float* y, int64_t ys) {
  gemm_q8_0x8_scalar(w, nb, g_begin, g_end, acts, act_stride, act_sums, n_tok, y, ys);
}

#endif

}  // namespace slm

// gemm_q: cache blocking for every weight type, register tiling for the 32-value blocks.
//
// Loop order: a block of rows whose weights fit in L2 (~256 KiB) is held while every token
// passes through it, so weights come from memory once per call rather than once per token.
// For Q4_0/Q5_0/Q8_0/IQ4_NL a micro-kernel computes a tile of RM rows × RN tokens: each
// weight block is unpacked to bytes once and multiplied with RN activation blocks, so the
// unpacking cost and the weight loads are shared by RN tokens. Other types run their vec_dot
// kernel per (row, token) inside the same cache blocks.
#include "kernels/gemm_q.h"

#include <algorithm>
#include <string>

#include "kernels/vec_dot_kernels.h"
#include "kernels/vec_dot_simd.h"
#include "quant/blocks.h"
#include "slm/error.h"

namespace slm {

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

#if defined(__AVX2__)

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

#if defined(__AVX512VL__)
constexpr int kRM = 4, kRN = 4;  // 32 vector registers: 16 accumulators fit
#else
constexpr int kRM = 4, kRN = 2;  // 16 vector registers
#endif

template <typename Dec>
void gemm_tiled(int64_t n, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, int64_t n_tok,
                float* y, int64_t ys, int64_t r_begin, int64_t r_end, vdot::DotFn dot) {
  const int64_t nb = n / QK;
  int64_t rb = static_cast<int64_t>(kRowBlockBytes / std::max<size_t>(ws, 1));
  rb = std::max<int64_t>(kRM, rb / kRM * kRM);
  for (int64_t r0 = r_begin; r0 < r_end; r0 += rb) {
    const int64_t r1 = std::min(r_end, r0 + rb);
    const int64_t r_tiled = r0 + (r1 - r0) / kRM * kRM;
    int64_t t = 0;
    for (; t + kRN <= n_tok; t += kRN)
      for (int64_t r = r0; r < r_tiled; r += kRM)
        tile<Dec, kRM, kRN>(nb, w + static_cast<size_t>(r) * ws, ws, a + static_cast<size_t>(t) * as, as,
                            y + t * ys + r, ys);
    for (int64_t r = r0; r < r_tiled; r += kRM)  // leftover tokens, one at a time
      for (int64_t tt = t; tt < n_tok; ++tt)
        tile<Dec, kRM, 1>(nb, w + static_cast<size_t>(r) * ws, ws, a + static_cast<size_t>(tt) * as, as,
                          y + tt * ys + r, ys);
    gemm_generic(dot, n, w, ws, a, as, 0, n_tok, y, ys, r_tiled, r1);  // leftover rows
  }
}

#endif  // __AVX2__

void gemm_blocked(vdot::DotFn dot, int64_t n, const uint8_t* w, size_t ws, const uint8_t* a, size_t as,
                  int64_t n_tok, float* y, int64_t ys, int64_t r_begin, int64_t r_end) {
  const int64_t rb = std::max<int64_t>(1, static_cast<int64_t>(kRowBlockBytes / std::max<size_t>(ws, 1)));
  for (int64_t r0 = r_begin; r0 < r_end; r0 += rb)
    gemm_generic(dot, n, w, ws, a, as, 0, n_tok, y, ys, r0, std::min(r_end, r0 + rb));
}

}  // namespace

void gemm_q(GgmlType t, int64_t n, const void* wv, size_t ws, const void* av, size_t as, int64_t n_tok,
            float* y, int64_t ys, int64_t r_begin, int64_t r_end) {
  vdot::DotFn dot = vdot::simd_kernel(t);
  if (!dot) dot = vdot::scalar_kernel(t);
  if (!dot) {
    const TypeInfo* ti = type_info(static_cast<uint32_t>(t));
    throw Error(std::string("gemm_q: no kernel for weight type ") + (ti ? ti->name : "?"));
  }
  if (r_begin >= r_end || n_tok <= 0) return;
  const auto* w = static_cast<const uint8_t*>(wv);
  const auto* a = static_cast<const uint8_t*>(av);
#if defined(__AVX2__)
  switch (t) {
    case GgmlType::Q4_0: return gemm_tiled<DecQ4_0>(n, w, ws, a, as, n_tok, y, ys, r_begin, r_end, dot);
    case GgmlType::Q5_0: return gemm_tiled<DecQ5_0>(n, w, ws, a, as, n_tok, y, ys, r_begin, r_end, dot);
    case GgmlType::Q8_0: return gemm_tiled<DecQ8_0>(n, w, ws, a, as, n_tok, y, ys, r_begin, r_end, dot);
    case GgmlType::IQ4_NL: return gemm_tiled<DecIQ4_NL>(n, w, ws, a, as, n_tok, y, ys, r_begin, r_end, dot);
    default: break;
  }
#endif
  gemm_blocked(dot, n, w, ws, a, as, n_tok, y, ys, r_begin, r_end);
}

}  // namespace slm

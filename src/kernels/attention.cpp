#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/tier.h"

namespace slm {
// The kernels of one CPU tier (kernels/tier.h).
struct AttentionKernels {
  decltype(&attend) attend_one;
  decltype(&attend_rows_chunk) rows_chunk;
};
}  // namespace slm

#include "kernels/tier_begin.h"
#include "kernels/simd_math.h"
#include "kernels/vec_dot_simd.h"

namespace slm::SLM_TIER_NS {

namespace {

// Element i of a row store of type t (Q8_0: per 32 values an f16 scale and 32 int8; Q4_0:
// an f16 scale and 16 bytes, value j in the low nibble of byte j, value j + 16 in the high).
inline float elem(GgmlType t, const void* base, int64_t i) {
  const uint8_t* b = static_cast<const uint8_t*>(base);
  switch (t) {
    case GgmlType::F16: return fp16_to_f32(static_cast<const uint16_t*>(base)[i]);
    case GgmlType::Q8_0: {
      const uint8_t* blk = b + (i / 32) * 34;
      uint16_t d;
      std::memcpy(&d, blk, 2);
      return fp16_to_f32(d) * static_cast<float>(static_cast<int8_t>(blk[2 + i % 32]));
    }
    case GgmlType::Q4_0: {
      const uint8_t* blk = b + (i / 32) * 18;
      uint16_t d;
      std::memcpy(&d, blk, 2);
      const int j = static_cast<int>(i % 32);
      const int nib = j < 16 ? (blk[2 + j] & 0x0f) : (blk[2 + j - 16] >> 4);
      return fp16_to_f32(d) * static_cast<float>(nib - 8);
    }
    default: return static_cast<const float*>(base)[i];
  }
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
      for (int i = 0; i < hk; ++i) d += qg[i] * elem(kv.k_type, kv.k, j * kv.k_stride + i);
      p[j - lo] = capped(d * s.scale, s.softcap);
      mx = std::max(mx, p[j - lo]);
    }
    double sum = 0;
    for (int j = 0; j < L; ++j) sum += (p[j] = std::exp(p[j] - mx));
    const float inv = static_cast<float>(1.0 / sum);
    float* og = out + int64_t(g) * hv;
    std::fill(og, og + hv, 0.0f);
    for (int j = lo; j <= hi; ++j)
      for (int i = 0; i < hv; ++i) og[i] += p[j - lo] * inv * elem(kv.v_type, kv.v, j * kv.v_stride + i);
  }
}

#if defined(SLM_X86_AVX2)

// Eight elements from i (a multiple of 8) of a row store of type T, as floats.
template <GgmlType T>
inline __m256 load8(const void* base, int64_t i) {
  if constexpr (T == GgmlType::F16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + i)));
  } else if constexpr (T == GgmlType::Q8_0) {
    const uint8_t* blk = static_cast<const uint8_t*>(base) + (i / 32) * 34;
    uint16_t d;
    std::memcpy(&d, blk, 2);
    const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk + 2 + i % 32));
    return _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(d)), _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)));
  } else if constexpr (T == GgmlType::Q4_0) {
    const uint8_t* blk = static_cast<const uint8_t*>(base) + (i / 32) * 18;
    uint16_t d;
    std::memcpy(&d, blk, 2);
    const int j = static_cast<int>(i % 32);
    __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk + 2 + (j & 15)));
    if (j >= 16) q = _mm_srli_epi16(q, 4);
    q = _mm_sub_epi8(_mm_and_si128(q, _mm_set1_epi8(0x0f)), _mm_set1_epi8(8));
    return _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(d)), _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)));
  } else {
    return _mm256_loadu_ps(static_cast<const float*>(base) + i);
  }
}

// Scores of G query heads (G ≤ 4 keeps their accumulators in registers) against keys lo..hi:
// each key is converted once and used by all G heads.
template <GgmlType KT, int G>
void scores(const float* q, const KvHeadView& kv, int lo, int hi, const AttentionShape& s, float* p, int L) {
  const int hk = s.head_dim_k;
  for (int j = lo; j <= hi; ++j) {
    const int64_t row = int64_t(j) * kv.k_stride;
    __m256 acc[G];
    for (int g = 0; g < G; ++g) acc[g] = _mm256_setzero_ps();
    for (int d = 0; d < hk; d += 8) {
      const __m256 k = load8<KT>(kv.k, row + d);
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
template <GgmlType VT, int G>
void weighted_values(const float* p, int L, const float* inv, const KvHeadView& kv, int lo, int hv, float* out) {
  for (int d = 0; d < hv; d += 8) {
    __m256 acc[G];
    for (int g = 0; g < G; ++g) acc[g] = _mm256_setzero_ps();
    for (int j = 0; j < L; ++j) {
      const __m256 v = load8<VT>(kv.v, int64_t(lo + j) * kv.v_stride + d);
      for (int g = 0; g < G; ++g) acc[g] = _mm256_fmadd_ps(_mm256_set1_ps(p[int64_t(g) * L + j]), v, acc[g]);
    }
    for (int g = 0; g < G; ++g) _mm256_storeu_ps(out + int64_t(g) * hv + d, _mm256_mul_ps(acc[g], _mm256_set1_ps(inv[g])));
  }
}

template <GgmlType KT, GgmlType VT, int G>
void attend_group(const float* q, const KvHeadView& kv, int lo, int hi, const AttentionShape& s, float* out, float* p) {
  const int L = hi - lo + 1;
  scores<KT, G>(q, kv, lo, hi, s, p, L);
  float inv[G];
  for (int g = 0; g < G; ++g) {
    float* pg = p + int64_t(g) * L;
    if (s.softcap > 0)
      for (int j = 0; j < L; ++j) pg[j] = capped(pg[j], s.softcap);
    inv[g] = exp_normalizer(pg, L);
  }
  weighted_values<VT, G>(p, L, inv, kv, lo, s.head_dim_v, out);
}

template <GgmlType KT, GgmlType VT>
void attend_simd(const float* q, int n_q, const KvHeadView& kv, int lo, int hi, const AttentionShape& s, float* out,
                 float* scratch) {
  const int hk = s.head_dim_k, hv = s.head_dim_v;
  for (int g0 = 0; g0 < n_q; g0 += 4) {
    const float* qg = q + int64_t(g0) * hk;
    float* og = out + int64_t(g0) * hv;
    switch (std::min(4, n_q - g0)) {
      case 4: attend_group<KT, VT, 4>(qg, kv, lo, hi, s, og, scratch); break;
      case 3: attend_group<KT, VT, 3>(qg, kv, lo, hi, s, og, scratch); break;
      case 2: attend_group<KT, VT, 2>(qg, kv, lo, hi, s, og, scratch); break;
      default: attend_group<KT, VT, 1>(qg, kv, lo, hi, s, og, scratch); break;
    }
  }
}

#endif
constexpr int kKeyTile = 64;  // keys per tile of attend_rows
static_assert(kAttendChunk % kKeyTile == 0, "a chunk is whole tiles");
#if defined(SLM_X86_AVX2)

// attend_rows: kKeyTile keys per tile. Per tile: K converted and transposed (kt[d][j]), V
// converted (vt[j][d]); per row: 64 scores in eight registers, the online-softmax update,
// then the row's output += P·V, 64 output values at a time.

// r[i][j] → r[j][i] for an 8 × 8 block in eight registers.
inline void transpose8(__m256 r[8]) {
  __m256 t[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  __m256 u[8];
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}

// o[0 .. 8·NV) = alpha · o + Σ_{jj in [j0, j1]} p[jj] · vt[jj · hv ..]: one row's output
// values, NV registers of them.
template <int NV>
inline void weigh_values(const float* p, int j0, int j1, const float* vt, int hv, __m256 alpha, float* o) {
  __m256 ov[NV];
  for (int v = 0; v < NV; ++v) ov[v] = _mm256_mul_ps(alpha, _mm256_loadu_ps(o + 8 * v));
  for (int jj = j0; jj <= j1; ++jj) {
    const __m256 pj = _mm256_set1_ps(p[jj]);
    const float* vrow = vt + int64_t(jj) * hv;
    for (int v = 0; v < NV; ++v) ov[v] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vrow + 8 * v), ov[v]);
  }
  for (int v = 0; v < NV; ++v) _mm256_storeu_ps(o + 8 * v, ov[v]);
}

// One chunk [c0, c0 + kAttendChunk) of keys: out (unnormalized), m and l start afresh.
template <GgmlType KT, GgmlType VT>
void attend_chunk_simd(const float* q, int n_rows, const int* lo, const int* hi, const KvHeadView& kv,
                       const AttentionShape& s, int c0, float* out, float* m, float* l, float* scratch) {
  const int hk = s.head_dim_k, hv = s.head_dim_v;
  float* kt = scratch;                        // hk × kKeyTile
  float* vt = kt + int64_t(hk) * kKeyTile;    // kKeyTile × hv
  float* srow = vt + int64_t(kKeyTile) * hv;  // kKeyTile
  int jmin = c0 + kAttendChunk, jmax = c0 - 1;
  for (int r = 0; r < n_rows; ++r) {
    jmin = std::min(jmin, std::max(lo[r], c0));
    jmax = std::max(jmax, std::min(hi[r], c0 + kAttendChunk - 1));
    m[r] = -INFINITY;
    l[r] = 0;
  }
  std::fill(out, out + int64_t(n_rows) * hv, 0.0f);
  // Tiles start at multiples of kKeyTile whatever the rows' ranges, so a row's sums are formed
  // in the same order in any block it is part of (a decode step equals its prompt batch).
  for (int j0 = jmin / kKeyTile * kKeyTile; j0 <= jmax; j0 += kKeyTile) {
    const int nb = std::min(kKeyTile, jmax - j0 + 1);
    // K transposed eight keys × eight dimensions at a time (missing keys read as zeros).
    for (int jj = 0; jj < kKeyTile; jj += 8)
      for (int d = 0; d < hk; d += 8) {
        __m256 r[8];
        for (int i = 0; i < 8; ++i)
          r[i] = jj + i < nb ? load8<KT>(kv.k, int64_t(j0 + jj + i) * kv.k_stride + d) : _mm256_setzero_ps();
        transpose8(r);
        for (int i = 0; i < 8; ++i) _mm256_storeu_ps(kt + int64_t(d + i) * kKeyTile + jj, r[i]);
      }
    for (int jj = 0; jj < nb; ++jj)
      for (int d = 0; d < hv; d += 8)
        _mm256_storeu_ps(vt + int64_t(jj) * hv + d, load8<VT>(kv.v, int64_t(j0 + jj) * kv.v_stride + d));
    for (int r = 0; r < n_rows; ++r) {
      if (hi[r] < j0 || lo[r] >= j0 + nb) continue;  // no key of this tile is visible to the row
      const float* qr = q + int64_t(r) * hk;
      __m256 acc[8];
      for (int v = 0; v < 8; ++v) acc[v] = _mm256_setzero_ps();
      for (int d = 0; d < hk; ++d) {
        const __m256 qd = _mm256_set1_ps(qr[d]);
        const float* k = kt + int64_t(d) * kKeyTile;
        for (int v = 0; v < 8; ++v) acc[v] = _mm256_fmadd_ps(qd, _mm256_loadu_ps(k + 8 * v), acc[v]);
      }
      // The row sees tile keys [vis0, vis1] (one run: causal and sliding ranges are intervals);
      // the others score −inf.
      const int vis0 = std::max(lo[r], j0) - j0, vis1 = std::min(hi[r], j0 + nb - 1) - j0;
      const __m256i first = _mm256_set1_epi32(vis0 - 1), last = _mm256_set1_epi32(vis1 + 1);
      const __m256 scale = _mm256_set1_ps(s.scale), minus_inf = _mm256_set1_ps(-INFINITY);
      for (int v = 0; v < 8; ++v) acc[v] = _mm256_mul_ps(acc[v], scale);
      if (s.softcap > 0) {  // Gemma 2 only: scalar tanh
        for (int v = 0; v < 8; ++v) _mm256_storeu_ps(srow + 8 * v, acc[v]);
        for (int jj = 0; jj < kKeyTile; ++jj) srow[jj] = capped(srow[jj], s.softcap);
        for (int v = 0; v < 8; ++v) acc[v] = _mm256_loadu_ps(srow + 8 * v);
      }
      __m256 vmax = minus_inf;
      for (int v = 0; v < 8; ++v) {
        __m256 x = acc[v];
        const __m256i idx = _mm256_add_epi32(_mm256_set1_epi32(8 * v), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        const __m256i seen = _mm256_and_si256(_mm256_cmpgt_epi32(idx, first), _mm256_cmpgt_epi32(last, idx));
        x = _mm256_blendv_ps(minus_inf, x, _mm256_castsi256_ps(seen));
        _mm256_storeu_ps(srow + 8 * v, x);
        vmax = _mm256_max_ps(vmax, x);
      }
      const float mt = simd::hmax_ps(vmax);
      const float m_new = std::max(m[r], mt);
      const float alpha = m[r] == -INFINITY ? 0.0f : std::exp(m[r] - m_new);
      m[r] = m_new;
      const __m256 mv = _mm256_set1_ps(m_new);
      __m256 vsum = _mm256_setzero_ps();
      for (int v = 0; v < 8; ++v) {
        const __m256 x = _mm256_loadu_ps(srow + 8 * v);
        const __m256 visible = _mm256_cmp_ps(x, _mm256_set1_ps(-INFINITY), _CMP_NEQ_OQ);
        const __m256 e = _mm256_and_ps(visible, simd::exp_ps(_mm256_sub_ps(x, mv)));
        _mm256_storeu_ps(srow + 8 * v, e);
        vsum = _mm256_add_ps(vsum, e);
      }
      l[r] = l[r] * alpha + vdot::hsum(vsum);
      float* o = out + int64_t(r) * hv;
      const __m256 av = _mm256_set1_ps(alpha);
      for (int d0 = 0; d0 < hv; d0 += 64) {  // 64 output values (eight registers) at a time
        float* od = o + d0;
        const float* vd = vt + d0;
        switch (std::min(8, (hv - d0) / 8)) {  // a constant count keeps the sums in registers
          case 8: weigh_values<8>(srow, vis0, vis1, vd, hv, av, od); break;
          case 7: weigh_values<7>(srow, vis0, vis1, vd, hv, av, od); break;
          case 6: weigh_values<6>(srow, vis0, vis1, vd, hv, av, od); break;
          case 5: weigh_values<5>(srow, vis0, vis1, vd, hv, av, od); break;
          case 4: weigh_values<4>(srow, vis0, vis1, vd, hv, av, od); break;
          case 3: weigh_values<3>(srow, vis0, vis1, vd, hv, av, od); break;
          case 2: weigh_values<2>(srow, vis0, vis1, vd, hv, av, od); break;
          default: weigh_values<1>(srow, vis0, vis1, vd, hv, av, od); break;
        }
      }
    }
  }
}

// Calls f(K type, V type) as compile-time constants: one kernel per pair of cache types.
template <class F>
void with_kv_types(const KvHeadView& kv, F&& f) {
  auto with_v = [&](auto kt) {
    switch (kv.v_type) {
      case GgmlType::F16: f(kt, std::integral_constant<GgmlType, GgmlType::F16>{}); break;
      case GgmlType::Q8_0: f(kt, std::integral_constant<GgmlType, GgmlType::Q8_0>{}); break;
      case GgmlType::Q4_0: f(kt, std::integral_constant<GgmlType, GgmlType::Q4_0>{}); break;
      default: f(kt, std::integral_constant<GgmlType, GgmlType::F32>{}); break;
    }
  };
  switch (kv.k_type) {
    case GgmlType::F16: with_v(std::integral_constant<GgmlType, GgmlType::F16>{}); break;
    case GgmlType::Q8_0: with_v(std::integral_constant<GgmlType, GgmlType::Q8_0>{}); break;
    case GgmlType::Q4_0: with_v(std::integral_constant<GgmlType, GgmlType::Q4_0>{}); break;
    default: with_v(std::integral_constant<GgmlType, GgmlType::F32>{}); break;
  }
}

#endif

}  // namespace

void attend(const float* q, int n_q, const KvHeadView& kv, int lo, int hi, const AttentionShape& s, float* out,
            float* scratch) {
#if defined(SLM_X86_AVX2)
  if (s.head_dim_k % 8 == 0 && s.head_dim_v % 8 == 0) {
    with_kv_types(kv, [&](auto kt, auto vt) {
      attend_simd<decltype(kt)::value, decltype(vt)::value>(q, n_q, kv, lo, hi, s, out, scratch);
    });
    return;
  }
#endif
  attend_scalar(q, n_q, kv, lo, hi, s, out, scratch);
}

namespace {

// The chunk one value at a time (no SIMD, or head sizes that are not multiples of 8).
void attend_chunk_scalar(const float* q, int n_rows, const int* lo, const int* hi, const KvHeadView& kv,
                         const AttentionShape& s, int c0, float* out, float* m, float* l, float* scores) {
  const int hk = s.head_dim_k, hv = s.head_dim_v;
  for (int r = 0; r < n_rows; ++r) {
    const int j0 = std::max(lo[r], c0), j1 = std::min(hi[r], c0 + kAttendChunk - 1);
    const float* qr = q + int64_t(r) * hk;
    float* o = out + int64_t(r) * hv;
    std::fill(o, o + hv, 0.0f);
    m[r] = -INFINITY;
    l[r] = 0;
    for (int j = j0; j <= j1; ++j) {
      float d = 0;
      for (int i = 0; i < hk; ++i) d += qr[i] * elem(kv.k_type, kv.k, j * kv.k_stride + i);
      scores[j - j0] = capped(d * s.scale, s.softcap);
      m[r] = std::max(m[r], scores[j - j0]);
    }
    for (int j = j0; j <= j1; ++j) {
      const float e = std::exp(scores[j - j0] - m[r]);
      l[r] += e;
      for (int i = 0; i < hv; ++i) o[i] += e * elem(kv.v_type, kv.v, j * kv.v_stride + i);
    }
  }
}

}  // namespace

void attend_rows_chunk(const float* q, int n_rows, const int* lo, const int* hi, const KvHeadView& kv,
                       const AttentionShape& s, int c0, float* out, float* m, float* l, float* scratch) {
#if defined(SLM_X86_AVX2)
  if (s.head_dim_k % 8 == 0 && s.head_dim_v % 8 == 0) {
    with_kv_types(kv, [&](auto kt, auto vt) {
      attend_chunk_simd<decltype(kt)::value, decltype(vt)::value>(q, n_rows, lo, hi, kv, s, c0, out, m, l, scratch);
    });
    return;
  }
#endif
  attend_chunk_scalar(q, n_rows, lo, hi, kv, s, c0, out, m, l, scratch);
}

extern const AttentionKernels kAttention;
const AttentionKernels kAttention = {attend, attend_rows_chunk};

}  // namespace slm::SLM_TIER_NS

#include "kernels/tier_end.h"

#if SLM_TIER_BASE
namespace slm {

SLM_TIER_TABLE(::slm::AttentionKernels, kAttention)

void attend(const float* q, int n_q, const KvHeadView& kv, int lo, int hi, const AttentionShape& s, float* out,
            float* scratch) {
  kAttention_of_tier().attend_one(q, n_q, kv, lo, hi, s, out, scratch);
}

void attend_rows_chunk(const float* q, int n_rows, const int* lo, const int* hi, const KvHeadView& kv,
                       const AttentionShape& s, int c0, float* out, float* m, float* l, float* scratch) {
  kAttention_of_tier().rows_chunk(q, n_rows, lo, hi, kv, s, c0, out, m, l, scratch);
}

size_t attend_chunk_scratch(const AttentionShape& s) {
  return std::max(size_t(s.head_dim_k + s.head_dim_v + 1) * SLM_TIER_NS::kKeyTile, size_t(kAttendChunk));
}

void attend_merge(int n_rows, int head_dim_v, float* out, float* m, float* l, const float* out2, const float* m2,
                  const float* l2) {
  for (int r = 0; r < n_rows; ++r) {
    if (m2[r] == -INFINITY) continue;  // the chunk had no key for this row
    float* o = out + int64_t(r) * head_dim_v;
    const float* o2 = out2 + int64_t(r) * head_dim_v;
    if (m[r] == -INFINITY) {
      std::copy(o2, o2 + head_dim_v, o);
      m[r] = m2[r];
      l[r] = l2[r];
      continue;
    }
    const float mn = std::max(m[r], m2[r]), a = std::exp(m[r] - mn), b = std::exp(m2[r] - mn);
    for (int d = 0; d < head_dim_v; ++d) o[d] = o[d] * a + o2[d] * b;
    l[r] = l[r] * a + l2[r] * b;
    m[r] = mn;
  }
}

void attend_finish(int n_rows, int head_dim_v, float* out, const float* l) {
  for (int r = 0; r < n_rows; ++r) {
    const float inv = l[r] > 0 ? 1.0f / l[r] : 0.0f;  // no visible key: zeros, not NaN
    float* o = out + int64_t(r) * head_dim_v;
    for (int d = 0; d < head_dim_v; ++d) o[d] *= inv;
  }
}

size_t attend_rows_scratch(int n_rows, const AttentionShape& s) {
  return attend_chunk_scratch(s) + size_t(n_rows) * (s.head_dim_v + 4);
}

void attend_rows(const float* q, int n_rows, const int* lo, const int* hi, const KvHeadView& kv, const AttentionShape& s,
                 float* out, float* scratch) {
  float* m = scratch + attend_chunk_scratch(s);
  float* l = m + n_rows;
  float* m2 = l + n_rows;
  float* l2 = m2 + n_rows;
  float* out2 = l2 + n_rows;
  int jmin = hi[0], jmax = lo[0];
  for (int r = 0; r < n_rows; ++r) {
    jmin = std::min(jmin, lo[r]);
    jmax = std::max(jmax, hi[r]);
  }
  // Chunk by chunk, merged in order: the same arithmetic as a split over threads (the decode
  // step's), so a row gets the same bits either way.
  const int first = std::max(0, jmin) / kAttendChunk * kAttendChunk;
  attend_rows_chunk(q, n_rows, lo, hi, kv, s, first, out, m, l, scratch);
  for (int c0 = first + kAttendChunk; c0 <= jmax; c0 += kAttendChunk) {
    attend_rows_chunk(q, n_rows, lo, hi, kv, s, c0, out2, m2, l2, scratch);
    attend_merge(n_rows, s.head_dim_v, out, m, l, out2, m2, l2);
  }
  attend_finish(n_rows, s.head_dim_v, out, l);
}

void attend_reference(const float* q, int n_q, const KvHeadView& kv, int lo, int hi, const AttentionShape& s,
                      float* out) {
  std::vector<float> scratch(size_t(n_q) * (hi - lo + 1));
  SLM_TIER_NS::attend_scalar(q, n_q, kv, lo, hi, s, out, scratch.data());
}

}  // namespace slm
#endif  // SLM_TIER_BASE

// Scalar reference dot products and activation encoders. Each kernel decodes the weight
// codes exactly as src/quant's dequantize_row documents them, multiplies with the activation
// codes in integers within a block (or sub-block), and applies the float scales once per
// block. The fast kernels must agree with these up to float summation order.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/vec_dot_kernels.h"
#include "quant/blocks.h"
#include "quant/formats.h"

namespace slm::vdot {

using namespace slm::quant;

namespace {

inline float h2f(uint16_t h) { return fp16_to_f32(h); }

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// ---- activation encoders (byte-identical to quantize_row for finite input) ----------------

// The 8-bit activation formats are exactly src/quant's encoders (without quantize_row's
// NaN scan, which a hot path does not want).
void act_q8_0(const float* x, void* dst, int64_t n) { quantize_q8_0(x, dst, n); }
void act_q8_1(const float* x, void* dst, int64_t n) { quantize_q8_1(x, dst, n); }
void act_q8_K(const float* x, void* dst, int64_t n) { quantize_q8_K(x, dst, n); }

void act_f16(const float* x, void* dst, int64_t n) {
  auto* h = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) h[i] = f32_to_fp16(x[i]);
}

void act_bf16(const float* x, void* dst, int64_t n) {
  auto* h = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) h[i] = f32_to_bf16(x[i]);
}

void act_f32(const float* x, void* dst, int64_t n) {
  std::memcpy(dst, x, static_cast<size_t>(n) * sizeof(float));
}

// ---- 32-value blocks × Q8_0 / Q8_1 ------------------------------------------------------

float dot_q4_0(int64_t n, const void* wv, const void* av) {
  const auto* w = static_cast<const block_q4_0*>(wv);
  const auto* a = static_cast<const block_q8_0*>(av);
  float sum = 0;
  for (int64_t i = 0; i < n / QK; ++i) {
    int sumi = 0;
    for (int j = 0; j < QK / 2; ++j) {
      sumi += ((w[i].qs[j] & 0xF) - 8) * a[i].qs[j];
      sumi += ((w[i].qs[j] >> 4) - 8) * a[i].qs[j + QK / 2];
    }
    sum += h2f(w[i].d) * h2f(a[i].d) * static_cast<float>(sumi);
  }
  return sum;
}

float dot_q4_1(int64_t n, const void* wv, const void* av) {
  const auto* w = static_cast<const block_q4_1*>(wv);
  const auto* a = static_cast<const block_q8_1*>(av);
  float sum = 0;
  for (int64_t i = 0; i < n / QK; ++i) {
    int sumi = 0, suma = 0;
    for (int j = 0; j < QK / 2; ++j) {
      sumi += (w[i].qs[j] & 0xF) * a[i].qs[j];
      sumi += (w[i].qs[j] >> 4) * a[i].qs[j + QK / 2];
    }
    for (int j = 0; j < QK; ++j) suma += a[i].qs[j];
    // Σ (d·q + m)·x = d·da·Σq·qa + m·da·Σqa. Σqa is summed here rather than read from the
    // block's fp16 s (as llama.cpp does): s's rounding costs up to 2^-11 of m·Σx per block.
    sum += h2f(w[i].d) * h2f(a[i].d) * static_cast<float>(sumi) +
           h2f(w[i].m) * h2f(a[i].d) * static_cast<float>(suma);
  }
  return sum;
}

float dot_q5_0(int64_t n, const void* wv, const void* av) {
  const auto* w = static_cast<const block_q5_0*>(wv);
  const auto* a = static_cast<const block_q8_0*>(av);
  float sum = 0;
  for (int64_t i = 0; i < n / QK; ++i) {
    const uint32_t qh = load_u32(w[i].qh);
    int sumi = 0;
    for (int j = 0; j < QK / 2; ++j) {
      const int lo = (w[i].qs[j] & 0xF) | (((qh >> j) & 1) << 4);
      const int hi = (w[i].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
      sumi += (lo - 16) * a[i].qs[j] + (hi - 16) * a[i].qs[j + QK / 2];
    }
    sum += h2f(w[i].d) * h2f(a[i].d) * static_cast<float>(sumi);
  }
  return sum;
}

float dot_q5_1(int64_t n, const void* wv, const void* av) {
  const auto* w = static_cast<const block_q5_1*>(wv);
  const auto* a = static_cast<const block_q8_1*>(av);
  float sum = 0;
  for (int64_t i = 0; i < n / QK; ++i) {
    const uint32_t qh = load_u32(w[i].qh);
    int sumi = 0, suma = 0;
    for (int j = 0; j < QK / 2; ++j) {
      const int lo = (w[i].qs[j] & 0xF) | (((qh >> j) & 1) << 4);
      const int hi = (w[i].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
      sumi += lo * a[i].qs[j] + hi * a[i].qs[j + QK / 2];
    }
    for (int j = 0; j < QK; ++j) suma += a[i].qs[j];
    sum += h2f(w[i].d) * h2f(a[i].d) * static_cast<float>(sumi) +
           h2f(w[i].m) * h2f(a[i].d) * static_cast<float>(suma);
  }
  return sum;
}

float dot_q8_0(int64_t n, const void* wv, const void* av) {
  const auto* w = static_cast<const block_q8_0*>(wv);
  const auto* a = static_cast<const block_q8_0*>(av);
  float sum = 0;
  for (int64_t i = 0; i < n / QK; ++i) {
    int sumi = 0;
    for (int j = 0; j < QK; ++j) sumi += w[i].qs[j] * a[i].qs[j];
    sum += h2f(w[i].d) * h2f(a[i].d) * static_cast<float>(sumi);
  }
  return sum;
}

float dot_iq4_nl(int64_t n, const void* wv, const void* av) {
  const auto* w = static_cast<const block_iq4_nl*>(wv);
  const auto* a = static_cast<const block_q8_0*>(av);
  float sum = 0;
  for (int64_t i = 0; i < n / QK; ++i) {
    int sumi = 0;
    for (int j = 0; j < QK / 2; ++j) {
      sumi += kIq4nlValues[w[i].qs[j] & 0xF] * a[i].qs[j];
      sumi += kIq4nlValues[w[i].qs[j] >> 4] * a[i].qs[j + QK / 2];
    }
    sum += h2f(w[i].d) * h2f(a[i].d) * static_cast<float>(sumi);
  }
  return sum;
}

// ---- 256-value super-blocks × Q8_K ------------------------------------------------------
// Sub-block sums are integers; a super-block contributes d·da·Σ scale·Σq·qa − dmin·da·Σ min·Σqa,
// the second sum taken from the activation block's bsums.

float dot_q2_K(int64_t n, const void* wv, const void* av) {
  const auto* w = static_cast<const block_q2_K*>(wv);
  const auto* a = static_cast<const block_q8_K*>(av);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const block_q2_K& b = w[i];
    const int8_t* y = a[i].qs;
    int sum_scaled = 0, sum_mins = 0;
    for (int g = 0; g < 16; ++g) sum_mins += (b.scales[g] >> 4) * a[i].bsums[g];
    // Element 128·half + 32·shift + l holds bits 2·shift of qs[32·half + l]; group = element/16.
    for (int half = 0; half < 2; ++half)
      for (int shift = 0; shift < 4; ++shift)
        for (int g = 0; g < 2; ++g) {
          int s = 0;
          for (int l = 0; l < 16; ++l) {
            const int e = 128 * half + 32 * shift + 16 * g + l;
            s += ((b.qs[32 * half + 16 * g + l] >> (2 * shift)) & 3) * y[e];
          }
          sum_scaled += (b.scales[8 * half + 2 * shift + g] & 0xF) * s;
        }
    sum += a[i].d * h2f(b.d) * static_cast<float>(sum_scaled) -
           a[i].d * h2f(b.dmin) * static_cast<float>(sum_mins);
  }
  return sum;
}

float dot_q3_K(int64_t n, const void* wv, const void* av) {
  const auto* w = static_cast<const block_q3_K*>(wv);
  const auto* a = static_cast<const block_q8_K*>(av);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const block_q3_K& b = w[i];
    const int8_t* y = a[i].qs;
    int scales[16];
    unpack_scales_q3_K(b.scales, scales);
    int sumi = 0;
    for (int half = 0; half < 2; ++half)
      for (int shift = 0; shift < 4; ++shift)
        for (int g = 0; g < 2; ++g) {
          int s = 0;
          for (int l = 0; l < 16; ++l) {
            const int e = 128 * half + 32 * shift + 16 * g + l;
            const int lo = (b.qs[32 * half + 16 * g + l] >> (2 * shift)) & 3;
            const int hbit = (b.hmask[16 * g + l] >> (4 * half + shift)) & 1;
            s += (lo - (hbit ? 0 : 4)) * y[e];
          }
          sumi += (scales[8 * half + 2 * shift + g] - 32) * s;
        }
    sum += a[i].d * h2f(b.d) * static_cast<float>(sumi);
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
      int s1 = 0, s2 = 0;
      for (int l = 0; l < 32; ++l) {
        s1 += (b.qs[32 * c + l] & 0xF) * y[64 * c + l];
        s2 += (b.qs[32 * c + l] >> 4) * y[64 * c + 32 + l];
      }
      sum_scaled += sc1 * s1 + sc2 * s2;
      sum_mins += m1 * (a[i].bsums[4 * c] + a[i].bsums[4 * c + 1]) +
                  m2 * (a[i].bsums[4 * c + 2] + a[i].bsums[4 * c + 3]);
    }
    sum += a[i].d * h2f(b.d) * static_cast<float>(sum_scaled) -
           a[i].d * h2f(b.dmin) * static_cast<float>(sum_mins);
  }
  return sum;
}

float dot_q5_K(int64_t n, const void* wv, const void* av) {
  const auto* w = static_cast<const block_q5_K*>(wv);
  const auto* a = static_cast<const block_q8_K*>(av);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const block_q5_K& b = w[i];
    const int8_t* y = a[i].qs;
    int sum_scaled = 0, sum_mins = 0;
    for (int c = 0; c < 4; ++c) {
      uint8_t sc1, m1, sc2, m2;
      unpack_scale_min_k4(2 * c, b.scales, &sc1, &m1);
      unpack_scale_min_k4(2 * c + 1, b.scales, &sc2, &m2);
      int s1 = 0, s2 = 0;
      for (int l = 0; l < 32; ++l) {
        const int q1 = (b.qs[32 * c + l] & 0xF) | (((b.qh[l] >> (2 * c)) & 1) << 4);
        const int q2 = (b.qs[32 * c + l] >> 4) | (((b.qh[l] >> (2 * c + 1)) & 1) << 4);
        s1 += q1 * y[64 * c + l];
        s2 += q2 * y[64 * c + 32 + l];
      }
      sum_scaled += sc1 * s1 + sc2 * s2;
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
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const block_q6_K& b = w[i];
    int sumi = 0;
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = b.ql + 64 * half;
      const uint8_t* qh = b.qh + 32 * half;
      const int8_t* sc = b.scales + 8 * half;
      const int8_t* y = a[i].qs + 128 * half;
      int s[8] = {};  // per group of 16 within this half
      for (int l = 0; l < 32; ++l) {
        const int g = l / 16;
        const int q1 = int((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = int((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        s[g] += q1 * y[l];
        s[g + 2] += q2 * y[l + 32];
        s[g + 4] += q3 * y[l + 64];
        s[g + 6] += q4 * y[l + 96];
      }
      for (int g = 0; g < 8; ++g) sumi += sc[g] * s[g];
    }
    sum += a[i].d * h2f(b.d) * static_cast<float>(sumi);
  }
  return sum;
}

float dot_iq4_xs(int64_t n, const void* wv, const void* av) {
  const auto* w = static_cast<const block_iq4_xs*>(wv);
  const auto* a = static_cast<const block_q8_K*>(av);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const block_iq4_xs& b = w[i];
    int sumi = 0;
    for (int ib = 0; ib < 8; ++ib) {
      const int ls = ((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) |
                     (((b.scales_h >> (2 * ib)) & 3) << 4);
      const uint8_t* q = b.qs + 16 * ib;
      const int8_t* y = a[i].qs + 32 * ib;
      int s = 0;
      for (int j = 0; j < 16; ++j)
        s += kIq4nlValues[q[j] & 0xF] * y[j] + kIq4nlValues[q[j] >> 4] * y[j + 16];
      sumi += (ls - 32) * s;
    }
    sum += a[i].d * h2f(b.d) * static_cast<float>(sumi);
  }
  return sum;
}

// ---- float weights ----------------------------------------------------------------------

// Float rows: eight running sums, one per lane of an 8-wide vector, added pairwise at the
// end. Both faster (the compiler vectorises it without reassociating) and closer to the exact
// sum than one running total over thousands of products.
template <typename Load>
float dot_floats(int64_t n, Load load) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += load(i + k);
  float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) sum += load(i);
  return sum;
}

float dot_f32(int64_t n, const void* wv, const void* av) {
  const auto* w = static_cast<const float*>(wv);
  const auto* a = static_cast<const float*>(av);
  return dot_floats(n, [&](int64_t i) { return w[i] * a[i]; });
}

float dot_f16(int64_t n, const void* wv, const void* av) {
  const auto* w = static_cast<const uint16_t*>(wv);
  const auto* a = static_cast<const uint16_t*>(av);
  return dot_floats(n, [&](int64_t i) { return h2f(w[i]) * h2f(a[i]); });
}

float dot_bf16(int64_t n, const void* wv, const void* av) {
  const auto* w = static_cast<const uint16_t*>(wv);
  const auto* a = static_cast<const uint16_t*>(av);
  return dot_floats(n, [&](int64_t i) { return bf16_to_f32(w[i]) * bf16_to_f32(a[i]); });
}

}  // namespace

DotFn scalar_kernel(GgmlType t) {
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

QuantizeActFn scalar_act_quantizer(GgmlType act) {
  switch (act) {
    case GgmlType::Q8_0: return act_q8_0;
    case GgmlType::Q8_1: return act_q8_1;
    case GgmlType::Q8_K: return act_q8_K;
    case GgmlType::F16: return act_f16;
    case GgmlType::BF16: return act_bf16;
    case GgmlType::F32: return act_f32;
    default: return nullptr;
  }
}

}  // namespace slm::vdot

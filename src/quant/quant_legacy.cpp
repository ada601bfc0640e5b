// Quantization of the 32-value block formats. These reproduce ggml's reference quantizers
// operation for operation (which value sets the scale, truncation vs rounding, clamps), so
// the blocks we write are byte-identical to llama.cpp's for the same input.
#include "quant/no_fma.h"  // first: see there
#include <cfloat>
#include <cmath>
#include <cstring>

#include "quant/blocks.h"
#include "quant/formats.h"
#include "quant/types.h"

namespace slm::quant {

namespace {

// The value of largest magnitude, with its sign (the first one on ties).
float signed_absmax(const float* x, int n) {
  float amax = 0, max = 0;
  for (int j = 0; j < n; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

void min_max(const float* x, int n, float* lo, float* hi) {
  float mn = FLT_MAX, mx = -FLT_MAX;
  for (int j = 0; j < n; ++j) {
    mn = std::min(mn, x[j]);
    mx = std::max(mx, x[j]);
  }
  *lo = mn;
  *hi = mx;
}

void store_qh(uint8_t* qh, uint32_t bits) {
  for (int k = 0; k < 4; ++k) qh[k] = static_cast<uint8_t>(bits >> (8 * k));
}

}  // namespace

// Symmetric 4-bit: the extreme value maps to code 0 (-8·d), so d carries the extreme's sign
// and the opposite end gets the full +7. Codes truncate x/d + 8.5 (round half up).
void quantize_q4_0(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<block_q4_0*>(dst);
  for (int64_t i = 0; i < n / QK; ++i, ++b, x += QK) {
    const float d = signed_absmax(x, QK) / -8;
    const float id = d ? 1.0f / d : 0.0f;
    b->d = f32_to_fp16(d);
    for (int j = 0; j < QK / 2; ++j) {
      const int lo = std::min(15, static_cast<int>(x[j] * id + 8.5f));
      const int hi = std::min(15, static_cast<int>(x[j + QK / 2] * id + 8.5f));
      b->qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

// Affine 4-bit over [min, max]: 16 levels, d = (max - min)/15.
void quantize_q4_1(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<block_q4_1*>(dst);
  for (int64_t i = 0; i < n / QK; ++i, ++b, x += QK) {
    float mn, mx;
    min_max(x, QK, &mn, &mx);
    const float d = (mx - mn) / 15;
    const float id = d ? 1.0f / d : 0.0f;
    b->d = f32_to_fp16(d);
    b->m = f32_to_fp16(mn);
    for (int j = 0; j < QK / 2; ++j) {
      const int lo = std::min(15, static_cast<int>((x[j] - mn) * id + 0.5f));
      const int hi = std::min(15, static_cast<int>((x[j + QK / 2] - mn) * id + 0.5f));
      b->qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

// As Q4_0 with 32 levels: the extreme maps to -16·d.
void quantize_q5_0(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<block_q5_0*>(dst);
  for (int64_t i = 0; i < n / QK; ++i, ++b, x += QK) {
    const float d = signed_absmax(x, QK) / -16;
    const float id = d ? 1.0f / d : 0.0f;
    b->d = f32_to_fp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < QK / 2; ++j) {
      const int lo = std::min(31, static_cast<int>(x[j] * id + 16.5f));
      const int hi = std::min(31, static_cast<int>(x[j + QK / 2] * id + 16.5f));
      b->qs[j] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
      qh |= static_cast<uint32_t>((lo >> 4) & 1) << j;
      qh |= static_cast<uint32_t>((hi >> 4) & 1) << (j + QK / 2);
    }
    store_qh(b->qh, qh);
  }
}

// As Q4_1 with 32 levels. The (max-min)/31 scale cannot push a code past 31 except by a
// rounding hair, so the clamp is only a guard.
void quantize_q5_1(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<block_q5_1*>(dst);
  for (int64_t i = 0; i < n / QK; ++i, ++b, x += QK) {
    float mn, mx;
    min_max(x, QK, &mn, &mx);
    const float d = (mx - mn) / 31;
    const float id = d ? 1.0f / d : 0.0f;
    b->d = f32_to_fp16(d);
    b->m = f32_to_fp16(mn);
    uint32_t qh = 0;
    for (int j = 0; j < QK / 2; ++j) {
      const int lo = std::min(31, static_cast<int>((x[j] - mn) * id + 0.5f));
      const int hi = std::min(31, static_cast<int>((x[j + QK / 2] - mn) * id + 0.5f));
      b->qs[j] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
      qh |= static_cast<uint32_t>((lo >> 4) & 1) << j;
      qh |= static_cast<uint32_t>((hi >> 4) & 1) << (j + QK / 2);
    }
    store_qh(b->qh, qh);
  }
}

// Symmetric 8-bit: d = amax/127, codes round half away from zero (roundf).
void quantize_q8_0(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<block_q8_0*>(dst);
  for (int64_t i = 0; i < n / QK; ++i, ++b, x += QK) {
    float amax = 0;
    for (int j = 0; j < QK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    b->d = f32_to_fp16(d);
    for (int j = 0; j < QK; ++j) b->qs[j] = static_cast<int8_t>(std::roundf(x[j] * id));
  }
}

// Q8_0 plus s = d · Σq, the term a Q4_1/Q5_1 dot product needs for its min.
void quantize_q8_1(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<block_q8_1*>(dst);
  for (int64_t i = 0; i < n / QK; ++i, ++b, x += QK) {
    float amax = 0;
    for (int j = 0; j < QK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    b->d = f32_to_fp16(d);
    int sum = 0;
    for (int j = 0; j < QK; ++j) {
      b->qs[j] = static_cast<int8_t>(std::roundf(x[j] * id));
      sum += b->qs[j];
    }
    b->s = f32_to_fp16(sum * d);
  }
}

}  // namespace slm::quant

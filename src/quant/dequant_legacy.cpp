// Dequantization of the 32-value block formats (Q4_0 … Q8_1, IQ4_NL).
// The arithmetic order (int code converted to float, times d, plus m) is the one ggml uses,
// so results are bit-identical to llama.cpp's (tested against the shared fixtures).
#include "quant/no_fma.h"  // first: see there
#include <cstring>

#include "quant/blocks.h"
#include "quant/formats.h"
#include "quant/types.h"

namespace slm::quant {

void dequantize_q4_0(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const block_q4_0*>(src);
  for (int64_t i = 0; i < n / QK; ++i, ++b, dst += QK) {
    const float d = fp16_to_f32(b->d);
    for (int j = 0; j < QK / 2; ++j) {
      const int lo = (b->qs[j] & 0xF) - 8;
      const int hi = (b->qs[j] >> 4) - 8;
      dst[j] = lo * d;
      dst[j + QK / 2] = hi * d;
    }
  }
}

void dequantize_q4_1(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const block_q4_1*>(src);
  for (int64_t i = 0; i < n / QK; ++i, ++b, dst += QK) {
    const float d = fp16_to_f32(b->d);
    const float m = fp16_to_f32(b->m);
    for (int j = 0; j < QK / 2; ++j) {
      const int lo = b->qs[j] & 0xF;
      const int hi = b->qs[j] >> 4;
      dst[j] = lo * d + m;
      dst[j + QK / 2] = hi * d + m;
    }
  }
}

// The fifth bit of value j is bit j of qh (read as a little-endian u32).
static uint32_t load_qh(const uint8_t* qh) {
  return uint32_t(qh[0]) | uint32_t(qh[1]) << 8 | uint32_t(qh[2]) << 16 | uint32_t(qh[3]) << 24;
}

void dequantize_q5_0(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const block_q5_0*>(src);
  for (int64_t i = 0; i < n / QK; ++i, ++b, dst += QK) {
    const float d = fp16_to_f32(b->d);
    const uint32_t qh = load_qh(b->qh);
    for (int j = 0; j < QK / 2; ++j) {
      const int lo = int((b->qs[j] & 0xF) | (((qh >> j) & 1) << 4)) - 16;
      const int hi = int((b->qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16;
      dst[j] = lo * d;
      dst[j + QK / 2] = hi * d;
    }
  }
}

void dequantize_q5_1(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const block_q5_1*>(src);
  for (int64_t i = 0; i < n / QK; ++i, ++b, dst += QK) {
    const float d = fp16_to_f32(b->d);
    const float m = fp16_to_f32(b->m);
    const uint32_t qh = load_qh(b->qh);
    for (int j = 0; j < QK / 2; ++j) {
      const int lo = int((b->qs[j] & 0xF) | (((qh >> j) & 1) << 4));
      const int hi = int((b->qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4));
      dst[j] = lo * d + m;
      dst[j + QK / 2] = hi * d + m;
    }
  }
}

void dequantize_q8_0(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const block_q8_0*>(src);
  for (int64_t i = 0; i < n / QK; ++i, ++b, dst += QK) {
    const float d = fp16_to_f32(b->d);
    for (int j = 0; j < QK; ++j) dst[j] = b->qs[j] * d;
  }
}

void dequantize_q8_1(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const block_q8_1*>(src);
  for (int64_t i = 0; i < n / QK; ++i, ++b, dst += QK) {
    const float d = fp16_to_f32(b->d);
    for (int j = 0; j < QK; ++j) dst[j] = b->qs[j] * d;
  }
}

void dequantize_iq4_nl(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const block_iq4_nl*>(src);
  for (int64_t i = 0; i < n / QK; ++i, ++b, dst += QK) {
    const float d = fp16_to_f32(b->d);
    for (int j = 0; j < QK / 2; ++j) {
      dst[j] = d * kIq4nlValues[b->qs[j] & 0xF];
      dst[j + QK / 2] = d * kIq4nlValues[b->qs[j] >> 4];
    }
  }
}

}  // namespace slm::quant

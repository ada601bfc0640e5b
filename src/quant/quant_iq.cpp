// Quantization to the non-linear 4-bit formats IQ4_NL (blocks of 32, one fp16 scale) and
// IQ4_XS (super-blocks of 256: eight 6-bit sub-block scales under one fp16 scale). Each value
// picks the nearest entry of the 16-value codebook; the scale is searched for the least
// x²-weighted squared error, as ggml does without an importance matrix.
#include <cmath>
#include <cstring>

#include "quant/blocks.h"
#include "quant/fit.h"
#include "quant/formats.h"
#include "quant/types.h"

namespace slm::quant {

namespace {

// Index of the codebook entry nearest to v (ties go to the lower entry). A binary search
// over the 15 midpoints between neighbouring entries (x.5 values, exact in float).
uint8_t nearest_code(float v) {
  static constexpr float kMid[15] = {-115.5f, -93.5f, -74.f, -57.f, -42.f, -28.5f, -16.f, -4.5f,
                                     7.f,     19.f,   31.5f, 45.5f, 61.f,  79.f,   101.f};
  int k = 0;
  for (int step = 8; step >= 1; step /= 2)
    if (v > kMid[k + step - 1]) k += step;
  return static_cast<uint8_t>(k);
}

// Best scale for one group of 32: anchor the extreme value at the codebook's −127 end
// (sign carried by the scale), then try nearby grids, keeping the least-squares scale of
// the best one. Returns 0 for an all-zero group.
float fit_iq4(const float* x) {
  float amax = 0, max = 0;
  for (int j = 0; j < 32; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  if (amax < kGroupEps) return 0;
  float best_d = max / kIq4nlValues[0], best = -1;
  for (int t = -7; t <= 7; ++t) {
    const float id = (t + kIq4nlValues[0]) / max;
    float sum_qx = 0, sum_q2 = 0;
    for (int j = 0; j < 32; ++j) {
      const float w = x[j] * x[j];
      const float q = kIq4nlValues[nearest_code(id * x[j])];
      sum_qx += w * q * x[j];
      sum_q2 += w * q * q;
    }
    if (sum_q2 > 0 && (best < 0 || sum_qx * sum_qx > best * sum_q2)) {
      best_d = sum_qx / sum_q2;
      best = best_d * sum_qx;
    }
  }
  return best_d;
}

void encode_iq4_group(const float* x, float d, uint8_t* qs) {
  const float id = d ? 1.0f / d : 0.0f;
  for (int j = 0; j < 16; ++j)
    qs[j] = static_cast<uint8_t>(nearest_code(id * x[j]) | (nearest_code(id * x[j + 16]) << 4));
}

}  // namespace

void quantize_iq4_nl(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<block_iq4_nl*>(dst);
  for (int64_t i = 0; i < n / QK; ++i, ++b, x += QK) {
    b->d = f32_to_fp16(fit_iq4(x));
    encode_iq4_group(x, fp16_to_f32(b->d), b->qs);  // codes for the scale actually stored
  }
}

void quantize_iq4_xs(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<block_iq4_xs*>(dst);
  for (int64_t i = 0; i < n / QK_K; ++i, ++b, x += QK_K) {
    float scales[8], max_scale = 0, max_abs = 0;
    for (int ib = 0; ib < 8; ++ib) {
      scales[ib] = fit_iq4(x + 32 * ib);
      if (std::fabs(scales[ib]) > max_abs) {
        max_abs = std::fabs(scales[ib]);
        max_scale = scales[ib];
      }
    }
    std::memset(b, 0, sizeof *b);
    // Sub-block scales are d·(ls − 32), ls in 0..63; the largest maps to −32.
    const float d = -max_scale / 32;
    b->d = f32_to_fp16(d);
    const float dq = fp16_to_f32(b->d);
    const float id = dq ? 1.0f / dq : 0.0f;
    for (int ib = 0; ib < 8; ++ib) {
      const int l = round_clamp(id * scales[ib], -32, 31);
      const int ls = l + 32;
      b->scales_l[ib / 2] |= static_cast<uint8_t>((ls & 0xF) << (4 * (ib % 2)));
      b->scales_h |= static_cast<uint16_t>((ls >> 4) << (2 * ib));
      encode_iq4_group(x + 32 * ib, dq * l, b->qs + 16 * ib);
    }
  }
}

}  // namespace slm::quant

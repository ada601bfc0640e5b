// Quantization to the non-linear 4-bit formats IQ4_NL (blocks of 32, one fp16 scale) and
// IQ4_XS (super-blocks of 256: eight 6-bit sub-block scales under one fp16 scale). Each value
// picks the nearest entry of the 16-value codebook; the scale is searched for the least
// x²-weighted squared error, as ggml does without an importance matrix; the blocks are
// byte-identical to llama.cpp's (tested on the fixtures).
#include "quant/no_fma.h"  // first: see there
#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/blocks.h"
#include "quant/fit.h"
#include "quant/formats.h"
#include "quant/types.h"

namespace slm::quant {

namespace {

// Index of the codebook entry nearest to v; a tie goes to the upper entry. Binary search,
// then the same comparison ggml makes (its exact float arithmetic decides near-ties, so
// our codes match llama.cpp's).
uint8_t nearest_code(float v) {
  const int8_t* k = kIq4nlValues;
  if (v <= k[0]) return 0;
  if (v >= k[15]) return 15;
  int lo = 0, hi = 15;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (v < k[mid])
      hi = mid;
    else
      lo = mid;
  }
  return static_cast<uint8_t>(v - k[hi - 1] < k[hi] - v ? hi - 1 : hi);
}

// Best scale for one group of 32, weighting each value by x²: first the grid that maps the
// extreme value to the codebook's +127 end, then grids mapping it near the −127 end
// ((t − 127)/max for t = −7..7), keeping the least-squares scale of the best one. Trying
// both ends matters because the codebook is not symmetric. Returns 0 for an all-zero group.
float fit_iq4(const float* x) {
  float amax = 0, max = 0;
  for (int j = 0; j < 32; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  if (amax < kGroupEps) return 0;
  auto sums = [&](float id, float* sum_qx, float* sum_q2) {
    *sum_qx = *sum_q2 = 0;
    for (int j = 0; j < 32; ++j) {
      const float w = x[j] * x[j];
      const float q = kIq4nlValues[nearest_code(id * x[j])];
      *sum_qx += w * q * x[j];
      *sum_q2 += w * q * q;
    }
  };
  float sum_qx, sum_q2;
  sums(1 / (-max / kIq4nlValues[0]), &sum_qx, &sum_q2);
  float d = sum_q2 > 0 ? sum_qx / sum_q2 : 0.f;
  float best = d * sum_qx;
  for (int t = -7; t <= 7; ++t) {
    sums((t + kIq4nlValues[0]) / max, &sum_qx, &sum_q2);
    if (sum_q2 > 0 && sum_qx * sum_qx > best * sum_q2) {
      d = sum_qx / sum_q2;
      best = d * sum_qx;
    }
  }
  return d;
}

// Codes for 32 values at scale d (unrounded, as ggml): low nibbles values 0..15, high 16..31.
void encode_iq4_group(const float* x, float d, uint8_t* qs) {
  const float id = d ? 1 / d : 0.f;
  for (int j = 0; j < 16; ++j)
    qs[j] = static_cast<uint8_t>(nearest_code(id * x[j]) | (nearest_code(id * x[j + 16]) << 4));
}

}  // namespace

void quantize_iq4_nl(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<block_iq4_nl*>(dst);
  for (int64_t i = 0; i < n / QK; ++i, ++b, x += QK) {
    const float d = fit_iq4(x);
    b->d = f32_to_fp16(d);
    encode_iq4_group(x, d, b->qs);
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
    // Sub-block scales become d·(ls − 32), ls in 0..63; the largest maps to −32.
    const float d = -max_scale / 32;
    b->d = f32_to_fp16(d);
    const float id = d ? 1 / d : 0.f;
    for (int ib = 0; ib < 8; ++ib) {
      const int l = std::max(-32, std::min(31, nearest_int(id * scales[ib])));
      const int ls = l + 32;
      b->scales_l[ib / 2] |= static_cast<uint8_t>((ls & 0xF) << (4 * (ib % 2)));
      b->scales_h |= static_cast<uint16_t>((ls >> 4) << (2 * ib));
      encode_iq4_group(x + 32 * ib, d * l, b->qs + 16 * ib);
    }
  }
}

}  // namespace slm::quant

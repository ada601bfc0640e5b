// Quantization of the 256-value K formats. Each sub-block gets its own least-squares scale
// (and min) from fit.h; those are then quantized to 4/6/8 bits against one fp16 super-scale,
// and finally every value is re-rounded against the scale it will actually be decoded with.
// The method and its arithmetic order follow ggml's reference quantizers, and the blocks are
// byte-identical to llama.cpp's (tested on every fixture tensor).
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

// Fits eight 32-value sub-blocks with an affine grid of 0..nmax, then stores their scales
// and mins as 6-bit fractions of d and dmin. Shared by Q4_K (nmax 15) and Q5_K (nmax 31).
// L gets each value's final code.
void quantize_k_affine_superblock(const float* x, int nmax, float rmin, float rdelta, int nstep,
                                  uint16_t* d_out, uint16_t* dmin_out, uint8_t* scales12,
                                  uint8_t* L) {
  float scales[8], mins[8], w[32];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    // Weight each value by how large it is relative to the group's rms: big weights matter
    // more for the matrix product than the many near-zero ones.
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) w[l] = av_x + std::fabs(xs[l]);
    scales[j] = fit_affine(32, nmax, xs, w, L + 32 * j, &mins[j], rmin, rdelta, nstep, false);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  uint8_t ls[8], lm[8];
  for (int j = 0; j < 8; ++j) {
    ls[j] = static_cast<uint8_t>(round_clamp(inv_scale * scales[j], 0, 63));
    lm[j] = static_cast<uint8_t>(round_clamp(inv_min * mins[j], 0, 63));
  }
  pack_scale_min_k4(ls, lm, scales12);
  *d_out = f32_to_fp16(max_scale / 63.f);
  *dmin_out = f32_to_fp16(max_min / 63.f);

  const float d = fp16_to_f32(*d_out), dmin = fp16_to_f32(*dmin_out);
  for (int j = 0; j < 8; ++j) {
    const float dj = d * ls[j];
    const float mj = dmin * lm[j];
    if (!dj) continue;  // the codes do not matter: keep the fitted ones (as ggml)
    for (int l = 0; l < 32; ++l)
      L[32 * j + l] = static_cast<uint8_t>(round_clamp((x[32 * j + l] + mj) / dj, 0, nmax));
  }
}

}  // namespace

void quantize_q4_K(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<block_q4_K*>(dst);
  for (int64_t i = 0; i < n / QK_K; ++i, ++b, x += QK_K) {
    uint8_t L[QK_K];
    quantize_k_affine_superblock(x, 15, -1.f, 0.1f, 20, &b->d, &b->dmin, b->scales, L);
    // Chunk c of 64 values: sub-block 2c in the low nibbles of qs[32c..], 2c+1 in the high.
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l)
        b->qs[32 * c + l] = static_cast<uint8_t>(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
  }
}

void quantize_q5_K(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<block_q5_K*>(dst);
  for (int64_t i = 0; i < n / QK_K; ++i, ++b, x += QK_K) {
    uint8_t L[QK_K];
    quantize_k_affine_superblock(x, 31, -0.5f, 0.1f, 15, &b->d, &b->dmin, b->scales, L);
    // As Q4_K for the low 4 bits; bit 4 of chunk c's two sub-blocks goes to bits 2c, 2c+1
    // of qh[l].
    std::memset(b->qh, 0, sizeof b->qh);
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        const int lo = L[64 * c + l], hi = L[64 * c + 32 + l];
        b->qs[32 * c + l] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
        b->qh[l] |= static_cast<uint8_t>(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
      }
    }
  }
}

void quantize_q6_K(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<block_q6_K*>(dst);
  for (int64_t i = 0; i < n / QK_K; ++i, ++b, x += QK_K) {
    uint8_t L[QK_K];
    float scales[16];
    float max_scale = 0, max_abs = 0;
    for (int ib = 0; ib < 16; ++ib) {
      scales[ib] = fit_symmetric(16, 32, x + 16 * ib, nullptr, L + 16 * ib);
      if (std::fabs(scales[ib]) > max_abs) {
        max_abs = std::fabs(scales[ib]);
        max_scale = scales[ib];
      }
    }
    if (max_abs < kGroupEps) {
      std::memset(b, 0, sizeof *b);
      continue;
    }
    // The largest sub-block scale maps to int8 −128, so the others keep full resolution.
    const float iscale = -128.f / max_scale;
    b->d = f32_to_fp16(1 / iscale);
    for (int ib = 0; ib < 16; ++ib)
      b->scales[ib] = static_cast<int8_t>(round_clamp(iscale * scales[ib], -128, 127));
    const float d = fp16_to_f32(b->d);
    for (int ib = 0; ib < 16; ++ib) {
      const float dl = d * b->scales[ib];
      if (!dl) continue;  // decodes to 0 whatever the codes; keep the fitted ones (as ggml)
      for (int l = 0; l < 16; ++l)
        L[16 * ib + l] = static_cast<uint8_t>(round_clamp(x[16 * ib + l] / dl, -32, 31) + 32);
    }
    // Half h of 128: ql[64h + l] holds values l (low) and 64+l (high), ql[64h+32+l] holds
    // 32+l and 96+l; qh[32h + l] holds the top 2 bits of 0+l, 32+l, 64+l, 96+l.
    for (int h = 0; h < 2; ++h) {
      const uint8_t* Lh = L + 128 * h;
      uint8_t* ql = b->ql + 64 * h;
      uint8_t* qh = b->qh + 32 * h;
      for (int l = 0; l < 32; ++l) {
        ql[l] = static_cast<uint8_t>((Lh[l] & 0xF) | ((Lh[l + 64] & 0xF) << 4));
        ql[l + 32] = static_cast<uint8_t>((Lh[l + 32] & 0xF) | ((Lh[l + 96] & 0xF) << 4));
        qh[l] = static_cast<uint8_t>((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) |
                                     ((Lh[l + 64] >> 4) << 4) | ((Lh[l + 96] >> 4) << 6));
      }
    }
  }
}

void quantize_q2_K(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<block_q2_K*>(dst);
  for (int64_t i = 0; i < n / QK_K; ++i, ++b, x += QK_K) {
    uint8_t L[QK_K];
    float scales[16], mins[16], w[16];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 16; ++j) {
      for (int l = 0; l < 16; ++l) w[l] = std::fabs(x[16 * j + l]);
      // With only 4 levels an outlier-robust fit (absolute error) works better.
      scales[j] = fit_affine(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], -0.5f, 0.1f, 15, true);
      max_scale = std::max(max_scale, scales[j]);
      max_min = std::max(max_min, mins[j]);
    }
    const float inv_scale = max_scale > 0 ? 15.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 15.f / max_min : 0.f;
    for (int j = 0; j < 16; ++j) {
      const int ls = round_clamp(inv_scale * scales[j], 0, 15);
      const int lm = round_clamp(inv_min * mins[j], 0, 15);
      b->scales[j] = static_cast<uint8_t>(ls | (lm << 4));
    }
    b->d = f32_to_fp16(max_scale / 15.f);
    b->dmin = f32_to_fp16(max_min / 15.f);
    const float d = fp16_to_f32(b->d), dmin = fp16_to_f32(b->dmin);
    for (int j = 0; j < 16; ++j) {
      const float dj = d * (b->scales[j] & 0xF);
      const float mj = dmin * (b->scales[j] >> 4);
      if (!dj) continue;
      for (int l = 0; l < 16; ++l)
        L[16 * j + l] = static_cast<uint8_t>(round_clamp((x[16 * j + l] + mj) / dj, 0, 3));
    }
    // Half h of 128: byte qs[32h + t] holds values 128h + t + 32k in bits 2k (k = 0..3).
    for (int h = 0; h < 2; ++h)
      for (int t = 0; t < 32; ++t) {
        const uint8_t* Lh = L + 128 * h + t;
        b->qs[32 * h + t] =
            static_cast<uint8_t>(Lh[0] | (Lh[32] << 2) | (Lh[64] << 4) | (Lh[96] << 6));
      }
  }
}

void quantize_q3_K(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<block_q3_K*>(dst);
  for (int64_t i = 0; i < n / QK_K; ++i, ++b, x += QK_K) {
    uint8_t L[QK_K];
    float scales[16];
    float max_scale = 0, max_abs = 0;
    for (int j = 0; j < 16; ++j) {
      scales[j] = fit_q3(16, 4, x + 16 * j, L + 16 * j);
      if (std::fabs(scales[j]) > max_abs) {
        max_abs = std::fabs(scales[j]);
        max_scale = scales[j];
      }
    }
    std::memset(b->scales, 0, sizeof b->scales);
    int ls[16] = {};
    if (max_scale != 0) {
      // Sub-block scales become signed 6-bit (stored +32); the largest maps to −32.
      const float iscale = -32.f / max_scale;
      for (int j = 0; j < 16; ++j) {
        const int l = round_clamp(iscale * scales[j], -32, 31) + 32;
        ls[j] = l - 32;
        if (j < 8)
          b->scales[j] = static_cast<uint8_t>(l & 0xF);
        else
          b->scales[j - 8] |= static_cast<uint8_t>((l & 0xF) << 4);
        b->scales[8 + j % 4] |= static_cast<uint8_t>((l >> 4) << (2 * (j / 4)));
      }
      b->d = f32_to_fp16(1 / iscale);
    } else {
      b->d = 0;
    }
    const float d = fp16_to_f32(b->d);
    for (int j = 0; j < 16; ++j) {
      const float dj = d * ls[j];
      if (!dj) continue;  // as in Q6_K: keep the fitted codes
      for (int l = 0; l < 16; ++l)
        L[16 * j + l] = static_cast<uint8_t>(round_clamp(x[16 * j + l] / dj, -4, 3) + 4);
    }
    // Third bit: value k sets bit k/32 of hmask[k%32]; it means "no −4 offset".
    std::memset(b->hmask, 0, sizeof b->hmask);
    for (int k = 0; k < QK_K; ++k) {
      if (L[k] > 3) {
        b->hmask[k % 32] |= static_cast<uint8_t>(1 << (k / 32));
        L[k] -= 4;
      }
    }
    for (int h = 0; h < 2; ++h)
      for (int t = 0; t < 32; ++t) {
        const uint8_t* Lh = L + 128 * h + t;
        b->qs[32 * h + t] =
            static_cast<uint8_t>(Lh[0] | (Lh[32] << 2) | (Lh[64] << 4) | (Lh[96] << 6));
      }
  }
}

// Activations for K-format dot products: d = max/−127 with max the signed value of largest
// magnitude, codes rounded to nearest and capped at 127, plus the sums of each 16 codes.
// Matches ggml's reference rounding exactly.
void quantize_q8_K(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<block_q8_K*>(dst);
  for (int64_t i = 0; i < n / QK_K; ++i, ++b, x += QK_K) {
    float amax = 0, max = 0;
    for (int j = 0; j < QK_K; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    if (amax == 0) {
      std::memset(b, 0, sizeof *b);
      continue;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < QK_K; ++j)
      b->qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
    for (int g = 0; g < QK_K / 16; ++g) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += b->qs[16 * g + l];
      b->bsums[g] = static_cast<int16_t>(sum);
    }
    b->d = 1 / iscale;
  }
}

}  // namespace slm::quant

// Byte layouts of the ggml block formats, as plain structs. Every field is little-endian and
// every half-precision field is IEEE binary16 stored as uint16_t. The static_asserts pin the
// sizes to the ones GGUF files use (docs/architectures.md §1.7), so a struct that drifts from
// the file format fails to compile instead of misreading weights.
#pragma once
#include <cstdint>
#include <cstring>

namespace slm::quant {

constexpr int QK = 32;    // values per block of the "legacy" formats
constexpr int QK_K = 256; // values per super-block of the K formats

struct block_q4_0 {
  uint16_t d;          // scale
  uint8_t qs[QK / 2];  // nibbles: low = values 0..15, high = values 16..31
};
static_assert(sizeof(block_q4_0) == 18);

struct block_q4_1 {
  uint16_t d;  // scale
  uint16_t m;  // minimum (added)
  uint8_t qs[QK / 2];
};
static_assert(sizeof(block_q4_1) == 20);

struct block_q5_0 {
  uint16_t d;
  uint8_t qh[4];       // fifth bits, a little-endian u32: bit j belongs to value j
  uint8_t qs[QK / 2];
};
static_assert(sizeof(block_q5_0) == 22);

struct block_q5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[QK / 2];
};
static_assert(sizeof(block_q5_1) == 24);

struct block_q8_0 {
  uint16_t d;
  int8_t qs[QK];
};
static_assert(sizeof(block_q8_0) == 34);

struct block_q8_1 {
  uint16_t d;
  uint16_t s;  // d * sum(qs), precomputed for dot products with Q4_1/Q5_1
  int8_t qs[QK];
};
static_assert(sizeof(block_q8_1) == 36);

// Eight sub-blocks of 32, each with a 6-bit scale and a 6-bit min packed into scales[12].
struct block_q4_K {
  uint16_t d;     // super-block scale of the sub-block scales
  uint16_t dmin;  // super-block scale of the sub-block mins
  uint8_t scales[12];
  uint8_t qs[QK_K / 2];
};
static_assert(sizeof(block_q4_K) == 144);

struct block_q5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[QK_K / 8];
  uint8_t qs[QK_K / 2];
};
static_assert(sizeof(block_q5_K) == 176);

// Sixteen sub-blocks of 16 with int8 scales; note d comes last.
struct block_q6_K {
  uint8_t ql[QK_K / 2];  // low 4 bits
  uint8_t qh[QK_K / 4];  // high 2 bits
  int8_t scales[QK_K / 16];
  uint16_t d;
};
static_assert(sizeof(block_q6_K) == 210);

// Sixteen sub-blocks of 16; each scale byte: low nibble = scale, high nibble = min.
struct block_q2_K {
  uint8_t scales[QK_K / 16];
  uint8_t qs[QK_K / 4];
  uint16_t d;
  uint16_t dmin;
};
static_assert(sizeof(block_q2_K) == 84);

// Sixteen sub-blocks of 16 with 6-bit signed (offset 32) scales; 2 low bits in qs, the third
// bit in hmask (set = no offset, clear = subtract 4).
struct block_q3_K {
  uint8_t hmask[QK_K / 8];
  uint8_t qs[QK_K / 4];
  uint8_t scales[12];
  uint16_t d;
};
static_assert(sizeof(block_q3_K) == 110);

struct block_q8_K {
  float d;  // a full f32 scale: this type carries activations
  int8_t qs[QK_K];
  int16_t bsums[QK_K / 16];  // sums of each group of 16 qs
};
static_assert(sizeof(block_q8_K) == 292);

struct block_iq4_nl {
  uint16_t d;
  uint8_t qs[QK / 2];  // indices into kIq4nlValues, nibble order as Q4_0
};
static_assert(sizeof(block_iq4_nl) == 18);

struct block_iq4_xs {
  uint16_t d;
  uint16_t scales_h;            // high 2 bits of the eight 6-bit sub-block scales
  uint8_t scales_l[QK_K / 64];  // low 4 bits, two per byte
  uint8_t qs[QK_K / 2];
};
static_assert(sizeof(block_iq4_xs) == 136);

// The non-linear 4-bit codebook of IQ4_NL / IQ4_XS (denser near zero, where weights are).
inline constexpr int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};

// Unpacks the 6-bit scale and min of sub-block j (0..7) from a Q4_K/Q5_K scales[12] array.
// Bytes 0..3 hold scales 0..3 (low 6 bits), bytes 4..7 mins 0..3; the high 2 bits of those
// bytes carry the top bits of scales/mins 4..7, whose low 4 bits live in bytes 8..11.
inline void unpack_scale_min_k4(int j, const uint8_t* s, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

// All eight at once, four bytes at a time: out bytes 0..7 are the scales, 8..15 the mins
// (the same values as unpack_scale_min_k4(j) for j = 0..7).
inline void unpack_scales_mins_k4(const uint8_t* s, uint8_t* out) {
  uint32_t u[3], r[4];
  std::memcpy(u, s, 12);
  r[0] = u[0] & 0x3F3F3F3Fu;                                            // scales 0..3
  r[1] = (u[2] & 0x0F0F0F0Fu) | (((u[0] >> 6) & 0x03030303u) << 4);     // scales 4..7
  r[2] = u[1] & 0x3F3F3F3Fu;                                            // mins 0..3
  r[3] = ((u[2] >> 4) & 0x0F0F0F0Fu) | (((u[1] >> 6) & 0x03030303u) << 4);  // mins 4..7
  std::memcpy(out, r, 16);
}

// The inverse: packs eight 6-bit scales and mins into scales[12].
inline void pack_scale_min_k4(const uint8_t* sc, const uint8_t* m, uint8_t* s) {
  for (int j = 0; j < 12; ++j) s[j] = 0;
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      s[j] = sc[j];
      s[j + 4] = m[j];
    } else {
      s[j + 4] = static_cast<uint8_t>((sc[j] & 0xF) | ((m[j] & 0xF) << 4));
      s[j - 4] |= static_cast<uint8_t>((sc[j] >> 4) << 6);
      s[j] |= static_cast<uint8_t>((m[j] >> 4) << 6);
    }
  }
}

// Unpacks the sixteen 6-bit Q3_K scales (returned still offset by 32: 0..63).
inline void unpack_scales_q3_K(const uint8_t* s, int* out) {
  for (int j = 0; j < 16; ++j) {
    int low = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
    int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    out[j] = low | (high << 4);
  }
}

// Rounds to the nearest integer, ties to even, for |x| < 2^22: adding 1.5·2^23 pushes the
// fraction out of the mantissa, so the FPU's own round-to-nearest-even does the work. This
// is what ggml's reference quantizers use, which matters for byte-identical blocks.
inline int nearest_int(float x) {
  float v = x + 12582912.f;
  int32_t i;
  __builtin_memcpy(&i, &v, 4);
  return (i & 0x007fffff) - 0x00400000;
}

}  // namespace slm::quant

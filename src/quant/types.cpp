// The ggml type table and the half-precision conversions.
#include "quant/no_fma.h"  // first: see there
#include "quant/types.h"

#include <cctype>

#include "slm/error.h"

namespace slm {

namespace {

// Indexed by ggml type id. Sizes follow ggml's block structs (docs/architectures.md §1.7);
// the grid-based IQ and ternary types are listed with their real sizes so files holding
// them can be sized and skipped, but slm cannot decode them. Ids 4, 5 and 31..33 were
// retired by ggml and are left unnamed (nullptr).
struct Entry {
  bool known;
  TypeInfo info;
};

constexpr Entry kTypes[] = {
    /*  0 */ {true, {"F32", 1, 4, true, true}},
    /*  1 */ {true, {"F16", 1, 2, true, true}},
    /*  2 */ {true, {"Q4_0", 32, 18, true, true}},
    /*  3 */ {true, {"Q4_1", 32, 20, true, true}},
    /*  4 */ {false, {}},
    /*  5 */ {false, {}},
    /*  6 */ {true, {"Q5_0", 32, 22, true, true}},
    /*  7 */ {true, {"Q5_1", 32, 24, true, true}},
    /*  8 */ {true, {"Q8_0", 32, 34, true, true}},
    /*  9 */ {true, {"Q8_1", 32, 36, true, true}},
    /* 10 */ {true, {"Q2_K", 256, 84, true, true}},
    /* 11 */ {true, {"Q3_K", 256, 110, true, true}},
    /* 12 */ {true, {"Q4_K", 256, 144, true, true}},
    /* 13 */ {true, {"Q5_K", 256, 176, true, true}},
    /* 14 */ {true, {"Q6_K", 256, 210, true, true}},
    /* 15 */ {true, {"Q8_K", 256, 292, true, true}},
    /* 16 */ {true, {"IQ2_XXS", 256, 66, false, false}},
    /* 17 */ {true, {"IQ2_XS", 256, 74, false, false}},
    /* 18 */ {true, {"IQ3_XXS", 256, 98, false, false}},
    /* 19 */ {true, {"IQ1_S", 256, 50, false, false}},
    /* 20 */ {true, {"IQ4_NL", 32, 18, true, true}},
    /* 21 */ {true, {"IQ3_S", 256, 110, false, false}},
    /* 22 */ {true, {"IQ2_S", 256, 82, false, false}},
    /* 23 */ {true, {"IQ4_XS", 256, 136, true, true}},
    /* 24 */ {true, {"I8", 1, 1, false, false}},
    /* 25 */ {true, {"I16", 1, 2, false, false}},
    /* 26 */ {true, {"I32", 1, 4, false, false}},
    /* 27 */ {true, {"I64", 1, 8, false, false}},
    /* 28 */ {true, {"F64", 1, 8, false, false}},
    /* 29 */ {true, {"IQ1_M", 256, 56, false, false}},
    /* 30 */ {true, {"BF16", 1, 2, true, true}},
    /* 31 */ {false, {}},
    /* 32 */ {false, {}},
    /* 33 */ {false, {}},
    /* 34 */ {true, {"TQ1_0", 256, 54, false, false}},
    /* 35 */ {true, {"TQ2_0", 256, 66, false, false}},
    /* 36 */ {false, {}},
    /* 37 */ {false, {}},
    /* 38 */ {false, {}},
    /* 39 */ {true, {"MXFP4", 32, 17, false, false}},
};
constexpr uint32_t kNumTypes = sizeof(kTypes) / sizeof(kTypes[0]);

uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

float bits_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace

const TypeInfo* type_info(uint32_t id) {
  if (id >= kNumTypes || !kTypes[id].known) return nullptr;
  return &kTypes[id].info;
}

GgmlType parse_type_name(const std::string& name) {
  std::string up;
  for (char c : name) up += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (uint32_t id = 0; id < kNumTypes; ++id)
    if (kTypes[id].known && up == kTypes[id].info.name) return static_cast<GgmlType>(id);
  throw Error("unknown ggml type name '" + name + "'");
}

float fp16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1F;
  const uint32_t mant = h & 0x3FF;
  if (exp == 0x1F)  // inf keeps a zero mantissa, NaN keeps its payload
    return bits_f32(sign | 0x7F800000 | (mant << 13));
  if (exp != 0)  // normal: rebias the exponent from 15 to 127
    return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
  // zero or subnormal: mant · 2^-24, exact in f32
  float v = static_cast<float>(mant) * 5.9604644775390625e-8f;
  return sign ? -v : v;
}

uint16_t f32_to_fp16(float f) {
  const uint32_t x = f32_bits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t ax = x & 0x7FFFFFFF;
  if (ax >= 0x7F800000) {  // inf or NaN
    if (ax == 0x7F800000) return sign | 0x7C00;
    return static_cast<uint16_t>(sign | 0x7E00 | ((ax >> 13) & 0x3FF));  // quiet NaN
  }
  // 65520 = 65504 + half an ulp: from there on round-to-nearest-even gives inf.
  if (ax >= 0x477FF000) return sign | 0x7C00;
  if (ax >= 0x38800000) {
    // Normal half: rebias (127 -> 15) and drop 13 mantissa bits with round-to-nearest-even.
    // A carry out of the mantissa correctly bumps the exponent.
    uint32_t r = ax - 0x38000000;
    uint32_t q = r >> 13;
    uint32_t rem = r & 0x1FFF;
    if (rem > 0x1000 || (rem == 0x1000 && (q & 1))) ++q;
    return static_cast<uint16_t>(sign | q);
  }
  // Subnormal half (or zero): the result counts units of 2^-24.
  const uint32_t e = ax >> 23;
  if (e < 102) return sign;  // below 2^-25: rounds to zero (also f32 subnormals)
  const uint32_t m = (ax & 0x7FFFFF) | 0x800000;  // value = m · 2^(e-150)
  const uint32_t shift = 126 - e;                 // 14..24
  uint32_t q = m >> shift;
  const uint32_t rem = m & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  if (rem > half || (rem == half && (q & 1))) ++q;  // may carry into the smallest normal
  return static_cast<uint16_t>(sign | q);
}

uint16_t f32_to_bf16(float f) {
  const uint32_t x = f32_bits(f);
  if ((x & 0x7FFFFFFF) > 0x7F800000)  // NaN: truncate and force quiet so it cannot become inf
    return static_cast<uint16_t>((x >> 16) | 0x40);
  return static_cast<uint16_t>((x + 0x7FFF + ((x >> 16) & 1)) >> 16);
}

}  // namespace slm

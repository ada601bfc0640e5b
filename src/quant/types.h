// ggml tensor types: ids, block sizes and byte sizes as they appear in GGUF files, and the
// half-precision conversions every format needs.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace slm {

enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22,
  IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
};

struct TypeInfo {
  const char* name;     // ggml's spelling: "F32", "Q4_K", "IQ4_XS" ...
  int64_t block_size;   // values per block
  int64_t type_size;    // bytes per block
  bool can_dequantize;  // slm has a dequantize_row for it
  bool can_quantize;    // slm has a quantize_row for it
};

// nullptr for an id that is not a known ggml type (or whose layout slm does not know).
const TypeInfo* type_info(uint32_t id);
inline const TypeInfo& type_info(GgmlType t) { return *type_info(static_cast<uint32_t>(t)); }
inline const char* type_name(GgmlType t) { return type_info(t).name; }
// Parses a type name ("q4_0", "Q4_K", "f16"), case-insensitive; throws slm::Error if unknown.
GgmlType parse_type_name(const std::string& name);

// Bytes of one row of n values; n must be a multiple of the block size (checked by callers).
inline size_t row_bytes(GgmlType t, int64_t n) {
  const TypeInfo& ti = type_info(t);
  return static_cast<size_t>(n / ti.block_size) * static_cast<size_t>(ti.type_size);
}

float fp16_to_f32(uint16_t h);
uint16_t f32_to_fp16(float f);  // round to nearest even, as the F16C instruction does
inline float bf16_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint16_t f32_to_bf16(float f);  // round to nearest even; NaN stays NaN

}  // namespace slm

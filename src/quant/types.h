// ggml tensor types: ids, block sizes and byte sizes as they appear in GGUF files, and the
// half-precision conversions every format needs.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "slm/types.h"  // GgmlType

namespace slm {

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

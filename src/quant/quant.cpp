// dequantize_row / quantize_row: check the request, then hand off to the format's routine.
#include "quant/no_fma.h"  // first: see there
#include "quant/quant.h"

#include <cmath>
#include <cstring>
#include <string>

#include "quant/formats.h"
#include "slm/error.h"

namespace slm {

namespace {

const TypeInfo& checked_info(GgmlType t, int64_t n, const char* what) {
  const TypeInfo* ti = type_info(static_cast<uint32_t>(t));
  if (!ti) throw Error(std::string(what) + ": unknown ggml type id " +
                       std::to_string(static_cast<uint32_t>(t)));
  if (n < 0 || n % ti->block_size != 0)
    throw Error(std::string(what) + ": " + std::to_string(n) + " values is not a multiple of " +
                ti->name + "'s block size " + std::to_string(ti->block_size));
  return *ti;
}

}  // namespace

void dequantize_row(GgmlType t, const void* src, float* dst, int64_t n) {
  const TypeInfo& ti = checked_info(t, n, "dequantize_row");
  using namespace quant;
  switch (t) {
    case GgmlType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); return;
    case GgmlType::F16: {
      const auto* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_f32(h[i]);
      return;
    }
    case GgmlType::BF16: {
      const auto* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(h[i]);
      return;
    }
    case GgmlType::Q4_0: dequantize_q4_0(src, dst, n); return;
    case GgmlType::Q4_1: dequantize_q4_1(src, dst, n); return;
    case GgmlType::Q5_0: dequantize_q5_0(src, dst, n); return;
    case GgmlType::Q5_1: dequantize_q5_1(src, dst, n); return;
    case GgmlType::Q8_0: dequantize_q8_0(src, dst, n); return;
    case GgmlType::Q8_1: dequantize_q8_1(src, dst, n); return;
    case GgmlType::Q2_K: dequantize_q2_K(src, dst, n); return;
    case GgmlType::Q3_K: dequantize_q3_K(src, dst, n); return;
    case GgmlType::Q4_K: dequantize_q4_K(src, dst, n); return;
    case GgmlType::Q5_K: dequantize_q5_K(src, dst, n); return;
    case GgmlType::Q6_K: dequantize_q6_K(src, dst, n); return;
    case GgmlType::Q8_K: dequantize_q8_K(src, dst, n); return;
    case GgmlType::IQ4_NL: dequantize_iq4_nl(src, dst, n); return;
    case GgmlType::IQ4_XS: dequantize_iq4_xs(src, dst, n); return;
    default: break;
  }
  throw Error(std::string("dequantize_row: no dequantizer for type ") + ti.name);
}

void quantize_row(GgmlType t, const float* src, void* dst, int64_t n) {
  const TypeInfo& ti = checked_info(t, n, "quantize_row");
  using namespace quant;
  // Block formats derive scales from the data: one inf or NaN would poison its whole block
  // (and float-to-int conversion of NaN is undefined), so refuse them up front.
  if (ti.block_size > 1)
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(src[i]))
        throw Error(std::string("quantize_row: non-finite value at index ") + std::to_string(i) +
                    " cannot be quantized to " + ti.name);
  switch (t) {
    case GgmlType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); return;
    case GgmlType::F16: {
      auto* h = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = f32_to_fp16(src[i]);
      return;
    }
    case GgmlType::BF16: {
      auto* h = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = f32_to_bf16(src[i]);
      return;
    }
    case GgmlType::Q4_0: quantize_q4_0(src, dst, n); return;
    case GgmlType::Q4_1: quantize_q4_1(src, dst, n); return;
    case GgmlType::Q5_0: quantize_q5_0(src, dst, n); return;
    case GgmlType::Q5_1: quantize_q5_1(src, dst, n); return;
    case GgmlType::Q8_0: quantize_q8_0(src, dst, n); return;
    case GgmlType::Q8_1: quantize_q8_1(src, dst, n); return;
    case GgmlType::Q2_K: quantize_q2_K(src, dst, n); return;
    case GgmlType::Q3_K: quantize_q3_K(src, dst, n); return;
    case GgmlType::Q4_K: quantize_q4_K(src, dst, n); return;
    case GgmlType::Q5_K: quantize_q5_K(src, dst, n); return;
    case GgmlType::Q6_K: quantize_q6_K(src, dst, n); return;
    case GgmlType::Q8_K: quantize_q8_K(src, dst, n); return;
    case GgmlType::IQ4_NL: quantize_iq4_nl(src, dst, n); return;
    case GgmlType::IQ4_XS: quantize_iq4_xs(src, dst, n); return;
    default: break;
  }
  throw Error(std::string("quantize_row: no quantizer for type ") + ti.name);
}

}  // namespace slm

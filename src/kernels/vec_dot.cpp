// The one dispatch point for quantized dot products: picks the SIMD kernel when one was
// compiled in, else the scalar reference.
#include "kernels/vec_dot.h"

#include <string>

#include "kernels/vec_dot_kernels.h"
#include "slm/error.h"

namespace slm {

namespace {

[[noreturn]] void unsupported(GgmlType t, const char* what) {
  const TypeInfo* ti = type_info(static_cast<uint32_t>(t));
  throw Error(std::string(what) + ": no dot-product kernel for weight type " +
              (ti ? ti->name : std::to_string(static_cast<uint32_t>(t))));
}

vdot::DotFn pick_kernel(GgmlType t, const char* what) {
  if (vdot::DotFn f = vdot::tiled_kernel(t)) return f;
  if (vdot::DotFn f = vdot::simd_kernel(t)) return f;
  if (vdot::DotFn f = vdot::scalar_kernel(t)) return f;
  unsupported(t, what);
}

}  // namespace

bool vec_dot_supported(GgmlType t) { return vdot::scalar_kernel(t) != nullptr; }

GgmlType act_type(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return GgmlType::F32;
    case GgmlType::F16: return GgmlType::F16;
    case GgmlType::BF16: return GgmlType::BF16;
    case GgmlType::Q4_0: case GgmlType::Q5_0: case GgmlType::Q8_0: case GgmlType::IQ4_NL:
      return GgmlType::Q8_0;
    case GgmlType::Q4_1: case GgmlType::Q5_1:
      return GgmlType::Q8_1;
    case GgmlType::Q2_K: case GgmlType::Q3_K: case GgmlType::Q4_K: case GgmlType::Q5_K:
    case GgmlType::Q6_K: case GgmlType::IQ4_XS:
      return GgmlType::Q8_K;
    default: unsupported(t, "act_type");
  }
}

int64_t act_block_size(GgmlType t) { return type_info(act_type(t)).block_size; }

size_t act_row_bytes(GgmlType t, int64_t n) { return row_bytes(act_type(t), n); }

void quantize_act_row(GgmlType t, const float* x, void* act, int64_t n) {
  const GgmlType at = act_type(t);
  if (n % type_info(at).block_size != 0)
    throw Error("quantize_act_row: " + std::to_string(n) + " values is not a multiple of the " +
                type_info(at).name + " block size");
  vdot::QuantizeActFn f = vdot::simd_act_quantizer(at);
  if (!f) f = vdot::scalar_act_quantizer(at);
  f(x, act, n);
}

float vec_dot(GgmlType t, int64_t n, const void* w, const void* a) {
  return pick_kernel(t, "vec_dot")(n, w, a);
}

void vec_dot_rows(GgmlType t, int64_t n, const void* w, size_t stride, int64_t n_rows,
                  const void* a, float* out) {
  const vdot::DotFn f = pick_kernel(t, "vec_dot_rows");
  const auto* base = static_cast<const uint8_t*>(w);
  for (int64_t r = 0; r < n_rows; ++r) out[r] = f(n, base + static_cast<size_t>(r) * stride, a);
}

float vec_dot_scalar(GgmlType t, int64_t n, const void* w, const void* a) {
  vdot::DotFn f = vdot::scalar_kernel(t);
  if (!f) unsupported(t, "vec_dot_scalar");
  return f(n, w, a);
}

}  // namespace slm

// Opens the tier section of a kernel file compiled once per tier (see tier.h); tier_end.h
// closes it. Include it after every other header: the standard library and slm's own headers
// stay baseline code, shared by all copies, and only what follows is built for the tier.
//
// Defines, for the code of the section:
//   SLM_TIER_NS      the namespace of this copy (the section is inside slm::SLM_TIER_NS)
//   SLM_X86_AVX2     AVX2 + FMA + F16C + BMI2 intrinsics may be used
//   SLM_X86_AVX512   AVX-512 F/BW/DQ/VL too
//   SLM_X86_VNNI     AVX-512 VNNI (vpdpbusd, also on 256-bit vectors) too
//   SLM_ARM_NEON     aarch64 Advanced SIMD intrinsics may be used
// No include guard: it is meant to be included once per file, at the section's start.
#include "kernels/tier.h"  // SLM_TIER, SLM_TIER_BASE

#if SLM_TIER == 0
#define SLM_TIER_NS tier_scalar
#elif SLM_TIER == 1 && defined(__x86_64__)
#define SLM_TIER_NS tier_avx2
#define SLM_X86_AVX2 1
#elif SLM_TIER == 2 && defined(__x86_64__)
#define SLM_TIER_NS tier_avx512
#define SLM_X86_AVX2 1
#define SLM_X86_AVX512 1
#elif SLM_TIER == 3 && defined(__x86_64__)
#define SLM_TIER_NS tier_avx512vnni
#define SLM_X86_AVX2 1
#define SLM_X86_AVX512 1
#define SLM_X86_VNNI 1
#elif SLM_TIER == 4 && defined(__aarch64__)
#define SLM_TIER_NS tier_neon
#define SLM_ARM_NEON 1  // baseline on aarch64: no target pragma needed
#else
#error "SLM_TIER names no tier of this architecture"
#endif

// What the sections use from outside, read here as baseline code (the include guards keep
// the copies below from seeing it again).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

// The target pragma applies to every function defined after it (lambdas and templates
// included), not to the headers already read: a standard-library function compiled here is
// the same baseline code in every copy, so the linker may keep any of them.
#if defined(__clang__)
#if SLM_TIER == 1
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,bmi,bmi2,popcnt"))), apply_to = function)
#elif SLM_TIER == 2
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,bmi,bmi2,popcnt,avx512f,avx512bw,avx512dq,avx512vl"))), apply_to = function)
#elif SLM_TIER == 3
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,bmi,bmi2,popcnt,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni"))), apply_to = function)
#endif
#elif defined(__GNUC__)
#pragma GCC push_options
#if SLM_TIER == 1
#pragma GCC target("avx2,fma,f16c,bmi,bmi2,popcnt")
#elif SLM_TIER == 2
#pragma GCC target("avx2,fma,f16c,bmi,bmi2,popcnt,avx512f,avx512bw,avx512dq,avx512vl")
#elif SLM_TIER == 3
#pragma GCC target("avx2,fma,f16c,bmi,bmi2,popcnt,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")
#endif
#endif

// Inside the section, vdot:: and simd:: name this copy's helpers first and slm's shared
// declarations (vec_dot_kernels.h) second.
namespace slm::vdot {}
namespace slm::SLM_TIER_NS::vdot {
using namespace ::slm::vdot;
}

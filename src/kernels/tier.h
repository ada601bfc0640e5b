// The SIMD tier the kernels run at, chosen once from what the CPU offers.
//
// The kernel files that use SIMD (tier_sources in CMakeLists.txt) are compiled once per tier
// of the architecture, each copy inside its own namespace (slm::tier_scalar, slm::tier_avx2,
// ...) and under that tier's target pragma (tier_begin.h); everything else is built for the
// architecture's baseline. A kernel file's entry points form one table per tier, and the
// baseline copy's dispatcher picks the table of cpu_tier(). So one binary runs the best
// kernels on every x86-64 machine, and SLM_CPU=scalar|avx2|avx512|avx512vnni (neon on
// aarch64) forces a tier (tests compare them; users rule out a suspect one).
#pragma once

#include <string>

// In a kernel file: which copy is being compiled (CMake sets SLM_TIER for all but the
// baseline copy), and whether it is the baseline one, which also holds the file's shared
// code and dispatchers.
#ifndef SLM_TIER
#define SLM_TIER 0
#endif
#define SLM_TIER_BASE (SLM_TIER == 0)

namespace slm {

enum class CpuTier : int {
  Scalar = 0,      // the scalar references; every architecture
  Avx2 = 1,        // x86-64 AVX2 + FMA + F16C + BMI2 (Haswell, Zen 1 and later)
  Avx512 = 2,      // + AVX-512 F/BW/DQ/VL (Skylake-X)
  Avx512Vnni = 3,  // + AVX-512 VNNI (Ice Lake, Sapphire Rapids, Zen 4 and later)
  Neon = 4,        // 64-bit Arm Advanced SIMD (every aarch64 CPU)
};

// The tiers compiled into this build, lowest first (tables are indexed by the position in
// this list, tier_index()).
#if defined(__x86_64__)
inline constexpr CpuTier kBuildTiers[] = {CpuTier::Scalar, CpuTier::Avx2, CpuTier::Avx512, CpuTier::Avx512Vnni};
#elif defined(__aarch64__)
inline constexpr CpuTier kBuildTiers[] = {CpuTier::Scalar, CpuTier::Neon};
#else
inline constexpr CpuTier kBuildTiers[] = {CpuTier::Scalar};
#endif
inline constexpr int kCpuTierCount = static_cast<int>(sizeof(kBuildTiers) / sizeof(kBuildTiers[0]));
constexpr int tier_index(CpuTier tier) {
  for (int i = 0; i < kCpuTierCount; ++i)
    if (kBuildTiers[i] == tier) return i;
  return 0;
}

// The tier in use: SLM_CPU when set (slm::Error when it names no tier or one this CPU lacks),
// else the best this CPU and operating system support. Asked once, then kept.
CpuTier cpu_tier();
// Forces a tier for the rest of the process (tests); slm::Error when the CPU lacks it. Not
// to be called while kernels run on other threads.
void set_cpu_tier(CpuTier tier);
bool cpu_tier_supported(CpuTier tier);
const char* cpu_tier_name(CpuTier tier);
// "scalar avx2 ...": the tiers of this build the CPU can run.
std::string cpu_tiers_supported();

// Declares the per-tier copies of a kernel file's table `const Type name` (each tier's copy
// of the file defines its own) and name_of_tier(), which returns the running tier's. Used at
// namespace slm scope in the file's baseline copy.
// M(namespace, Type, name) once per tier namespace of the build, in kBuildTiers' order.
#if defined(__x86_64__)
#define SLM_TIER_NAMESPACES(M, Type, name) \
  M(tier_scalar, Type, name) M(tier_avx2, Type, name) M(tier_avx512, Type, name) M(tier_avx512vnni, Type, name)
#elif defined(__aarch64__)
#define SLM_TIER_NAMESPACES(M, Type, name) M(tier_scalar, Type, name) M(tier_neon, Type, name)
#else
#define SLM_TIER_NAMESPACES(M, Type, name) M(tier_scalar, Type, name)
#endif
#define SLM_TIER_EXTERN_(ns, Type, name) namespace ns { extern const Type name; }
#define SLM_TIER_ADDRESS_(ns, Type, name) &ns::name,
#define SLM_TIER_TABLE(Type, name)                                                         \
  SLM_TIER_NAMESPACES(SLM_TIER_EXTERN_, Type, name)                                        \
  inline const Type& name##_of_tier() {                                                    \
    static const Type* const tables[] = {SLM_TIER_NAMESPACES(SLM_TIER_ADDRESS_, Type, name)}; \
    return *tables[tier_index(cpu_tier())];                                                \
  }

}  // namespace slm

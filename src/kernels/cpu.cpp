#include "kernels/cpu.h"

#include <atomic>
#include <cstdlib>
#include <iterator>
#include <string>

#include "kernels/tier.h"
#include "slm/error.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__x86_64__) && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace slm {

bool cpu_has_amx_bf16() {
#if defined(__x86_64__) && defined(__linux__)
  static const bool usable = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    const bool amx_bf16 = (d >> 22) & 1u, amx_tile = (d >> 24) & 1u;
    if (!amx_bf16 || !amx_tile) return false;
    // ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA: without it the first tile load faults.
    constexpr long kReqXcompPerm = 0x1023, kXtileData = 18;
    return syscall(SYS_arch_prctl, kReqXcompPerm, kXtileData) == 0;
  }();
  return usable;
#else
  return false;
#endif
}

}  // namespace slm

// ---- the kernels' SIMD tier (tier.h) ---------------------------------------------------

namespace slm {

namespace {

constexpr const char* kTierNames[] = {"scalar", "avx2", "avx512", "avx512vnni", "neon"};

bool in_build(CpuTier tier) {
  for (CpuTier t : kBuildTiers)
    if (t == tier) return true;
  return false;
}

bool cpu_offers(CpuTier tier) {
  if (!in_build(tier)) return false;
#if defined(__x86_64__)
  struct Features {
    bool avx2 = false, avx512 = false, vnni = false;
  };
  static const Features f = [] {
    Features r;
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return r;
    const bool fma = (c >> 12) & 1u, osxsave = (c >> 27) & 1u, avx = (c >> 28) & 1u, f16c = (c >> 29) & 1u;
    if (!osxsave || !avx) return r;
    // The registers count only where the operating system saves them (XCR0): the SSE and
    // AVX state for 256-bit vectors, and the opmask and upper-ZMM state for AVX-512.
    unsigned xlo = 0, xhi = 0;
    __asm__("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    const bool os_avx = (xlo & 0x6u) == 0x6u, os_avx512 = (xlo & 0xE6u) == 0xE6u;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return r;
    const bool avx2 = (b >> 5) & 1u, bmi2 = (b >> 8) & 1u;
    const bool f512 = (b >> 16) & 1u, dq = (b >> 17) & 1u, bw = (b >> 30) & 1u, vl = (b >> 31) & 1u;
    r.avx2 = os_avx && avx2 && fma && f16c && bmi2;
    r.avx512 = r.avx2 && os_avx512 && f512 && dq && bw && vl;
    r.vnni = r.avx512 && ((c >> 11) & 1u);
    return r;
  }();
  switch (tier) {
    case CpuTier::Scalar: return true;
    case CpuTier::Avx2: return f.avx2;
    case CpuTier::Avx512: return f.avx512;
    case CpuTier::Avx512Vnni: return f.vnni;
    case CpuTier::Neon: return false;
  }
  return false;
#else
  return true;  // scalar, and NEON on aarch64 (part of the architecture)
#endif
}

CpuTier best_tier() {
  for (int i = kCpuTierCount - 1; i > 0; --i)
    if (cpu_offers(kBuildTiers[i])) return kBuildTiers[i];
  return CpuTier::Scalar;
}

CpuTier tier_from_env() {
  const char* forced = std::getenv("SLM_CPU");
  if (!forced || !*forced) return best_tier();
  const std::string want = forced;
  for (int t = 0; t < static_cast<int>(std::size(kTierNames)); ++t) {
    if (want != kTierNames[t]) continue;
    if (!cpu_offers(static_cast<CpuTier>(t)))
      throw Error("SLM_CPU=" + want + ": " +
                  (in_build(static_cast<CpuTier>(t)) ? "this CPU lacks it" : "this build has no such tier") +
                  " (available: " + cpu_tiers_supported() + ")");
    return static_cast<CpuTier>(t);
  }
  throw Error("SLM_CPU=" + want + " names no CPU tier (available: " + cpu_tiers_supported() + ")");
}

std::atomic<int> g_tier{-1};  // -1: not chosen yet

}  // namespace

bool cpu_tier_supported(CpuTier tier) { return cpu_offers(tier); }

const char* cpu_tier_name(CpuTier tier) {
  const int t = static_cast<int>(tier);
  return t >= 0 && t < static_cast<int>(std::size(kTierNames)) ? kTierNames[t] : "?";
}

std::string cpu_tiers_supported() {
  std::string s;
  for (CpuTier t : kBuildTiers)
    if (cpu_offers(t)) s += (s.empty() ? "" : " ") + std::string(cpu_tier_name(t));
  return s;
}

CpuTier cpu_tier() {
  int t = g_tier.load(std::memory_order_acquire);
  if (t < 0) {
    // Two threads may both get here first; they compute the same answer.
    t = static_cast<int>(tier_from_env());
    g_tier.store(t, std::memory_order_release);
  }
  return static_cast<CpuTier>(t);
}

void set_cpu_tier(CpuTier tier) {
  if (!cpu_offers(tier))
    throw Error(std::string("CPU tier ") + cpu_tier_name(tier) + " is not available (available: " +
                cpu_tiers_supported() + ")");
  g_tier.store(static_cast<int>(tier), std::memory_order_release);
}

}  // namespace slm

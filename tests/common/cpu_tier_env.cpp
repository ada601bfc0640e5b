// For the suites that ctest also runs with a CPU tier forced (SLM_CPU, see CMakeLists.txt):
// a tier this CPU lacks makes the whole run a skip (exit 77), not a failure; and each run
// says which tier it tested.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "kernels/tier.h"
#include "slm/error.h"

namespace {

class CpuTierEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    try {
      std::printf("CPU tier: %s\n", slm::cpu_tier_name(slm::cpu_tier()));
    } catch (const slm::Error& e) {
      std::printf("skipped: %s\n", e.what());
      std::fflush(stdout);
      std::_Exit(77);
    }
  }
};

[[maybe_unused]] ::testing::Environment* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new CpuTierEnvironment);

}  // namespace

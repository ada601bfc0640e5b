// The README's tolerance for comparing logits with llama.cpp's, by file type (shared by the
// base fixtures and the LoRA fixtures), and greedy decoding against reference ids.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kernels/thread_pool.h"
#include "slm/model.h"

namespace slm::test {

inline int argmax(const float* x, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;  // ties go to the lowest id
  return best;
}

// Asserts got ≈ ref ([n][V]) at the tolerance of `type`; returns max|Δ|.
inline double expect_logits_match(const std::string& type, bool gemma, const std::vector<int>& exempt,
                                  const std::vector<float>& got, const std::vector<float>& ref, int n, int V,
                                  float logits_std) {
  double max_abs = 0;
  for (size_t i = 0; i < got.size(); ++i) max_abs = std::max(max_abs, double(std::fabs(got[i] - ref[i])));
  const double scale = std::max(1.0f, logits_std);
  if (type == "F32") {
    EXPECT_LE(max_abs, (gemma ? 5e-3 : 1e-3) * scale);
  } else if (type == "F16") {
    EXPECT_LE(max_abs, 1e-2 * scale);
  } else {
    int agree = 0, counted = 0;
    double worst = 0;
    for (int t = 0; t < n; ++t) {
      if (std::find(exempt.begin(), exempt.end(), t) != exempt.end()) continue;
      const float* g = &got[size_t(t) * V];
      const float* r = &ref[size_t(t) * V];
      double ss = 0;
      for (int i = 0; i < V; ++i) ss += double(g[i] - r[i]) * (g[i] - r[i]);
      worst = std::max(worst, std::sqrt(ss / V) / logits_std);
      std::vector<float> sorted(r, r + V);
      std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<float>());
      bool same = argmax(g, V) == argmax(r, V);
      ++counted;
      agree += same;
      if (sorted[0] - sorted[1] >= 0.15 * logits_std) {
        EXPECT_TRUE(same) << "argmax differs at position " << t;
      }
    }
    EXPECT_LE(worst, 0.1) << "worst position rms(delta)/std";
    EXPECT_GE(double(agree) / counted, 0.85) << "argmax agreement";
  }
  return max_abs;
}

// Greedy decoding from greedy.prompt_ids (one batch, then one token at a time) gives
// greedy.output_ids — up to the first close call for types that are not exact.
inline void expect_greedy_matches(const nlohmann::json& greedy, const std::string& type, double max_abs,
                                  const Model& model, int n_ctx, const LoraSet* lora = nullptr) {
  ThreadPool pool(2);
  std::vector<int32_t> prompt = greedy["prompt_ids"].get<std::vector<int32_t>>();
  std::vector<int32_t> want = greedy["output_ids"].get<std::vector<int32_t>>();
  std::vector<double> margins = greedy["margins"].get<std::vector<double>>();
  const int V = model.n_vocab();
  KvCache cache(model.config(), n_ctx);
  std::vector<float> last(static_cast<size_t>(V), 0.0f);
  model.forward(pool, cache, prompt.data(), int(prompt.size()), 0, last.data(), false, lora);
  int pos = int(prompt.size());
  const bool exact = type == "F32" || type == "F16";
  for (size_t i = 0; i < want.size(); ++i) {
    if (!exact && margins[i] < 2 * max_abs) break;  // a legitimately close call from here on
    int32_t tok = argmax(last.data(), V);
    ASSERT_EQ(tok, want[i]) << "greedy step " << i;
    model.forward(pool, cache, &tok, 1, pos++, last.data(), false, lora);
  }
}

}  // namespace slm::test

// The backward pass against finite differences: for every family's F32 fixture, with LoRA
// pairs on every matrix slm trains (random A and B, so every gradient is non-trivial), the
// analytic gradient of the loss equals the central difference of the loss computed in double
// precision, on sampled A and B elements of every pair of every layer. The float pass (the
// one training uses) agrees with the double one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <set>

#include "common/shared.h"
#include "kernels/thread_pool.h"
#include "model/config.h"
#include "slm/model.h"
#include "train/backprop.h"
#include "train/lora_model.h"

namespace slm::train {
namespace {

// Two examples packed into one row (separate segments, positions restarting), some
// predictions without loss, as training data makes them.
Sequence packed_sequence(int n_vocab, std::mt19937& rng) {
  Sequence s;
  const int lens[2] = {7, 6};
  for (int seg = 0; seg < 2; ++seg)
    for (int i = 0; i < lens[seg]; ++i) {
      s.tokens.push_back(int32_t(rng() % uint32_t(n_vocab)));
      s.pos.push_back(i);
      s.segment.push_back(seg);
      s.weight.push_back(i + 1 < lens[seg] && i >= 1 ? 1.0f + 0.25f * float(i % 3) : 0.0f);
    }
  return s;
}

LoraModel random_lora(const Model& model, uint64_t seed) {
  std::vector<std::string> kinds = trainable_kinds();
  LoraModel lora(model, 2, 4.0f, kinds, seed);
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::normal_distribution<float> d(0.0f, 0.3f);
  for (LoraParam& p : lora.params()) {
    for (float& x : p.a) x = d(rng);
    for (float& x : p.b) x = d(rng);
  }
  return lora;
}

class GradientTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GradientTest, LoraGradientsEqualFiniteDifferences) {
  auto model = Model::load(test::shared("fixtures/" + GetParam() + ".gguf"));
  ThreadPool pool(2);
  std::mt19937 rng(17);
  const Sequence seq = packed_sequence(model->n_vocab(), rng);
  LoraModel lora = random_lora(*model, 5);
  const int n_ctx = 64;

  lora.zero_grad();
  const LossSum exact = forward_backward<double>(*model, lora, seq, n_ctx, pool, true);
  std::vector<std::vector<float>> ga, gb;
  for (const LoraParam& p : lora.params()) ga.push_back(p.grad_a), gb.push_back(p.grad_b);
  lora.zero_grad();
  const LossSum fast = forward_backward<float>(*model, lora, seq, n_ctx, pool, true);
  EXPECT_NEAR(fast.loss, exact.loss, 1e-4 * std::fabs(exact.loss));
  EXPECT_GT(exact.weight, 0);

  int checked = 0;
  double worst = 0, worst_float = 0;
  std::set<int> layers;
  for (size_t k = 0; k < lora.params().size(); ++k) {
    LoraParam& p = lora.params()[k];
    for (int which = 0; which < 2; ++which) {
      std::vector<float>& values = which == 0 ? p.a : p.b;
      const std::vector<float>& analytic = which == 0 ? ga[k] : gb[k];
      const std::vector<float>& analytic_float = which == 0 ? p.grad_a : p.grad_b;
      for (int sample = 0; sample < 3; ++sample) {
        const size_t i = rng() % values.size();
        const float saved = values[i];
        const float plus = saved + 1e-4f, minus = saved - 1e-4f;
        values[i] = plus;
        const double lp = forward_backward<double>(*model, lora, seq, n_ctx, pool, false).loss;
        values[i] = minus;
        const double lm = forward_backward<double>(*model, lora, seq, n_ctx, pool, false).loss;
        values[i] = saved;
        const double fd = (lp - lm) / (double(plus) - double(minus));
        const double g = analytic[i];
        const double err = std::fabs(g - fd) / std::max(std::fabs(fd), 1e-4);
        worst = std::max(worst, err);
        EXPECT_LE(err, 1e-3) << p.target << (which ? ".lora_b[" : ".lora_a[") << i << "]: analytic " << g
                             << ", finite difference " << fd;
        const double err_float = std::fabs(analytic_float[i] - g) / std::max(std::fabs(g), 1e-3);
        worst_float = std::max(worst_float, err_float);
        EXPECT_LE(err_float, 2e-2) << p.target << " float pass";
        ++checked;
      }
    }
    layers.insert(p.layer);
  }
  EXPECT_EQ(int(layers.size()), model->config().n_layer) << "every layer carries pairs";
  std::printf("[%s] %zu pairs, %d elements: worst relative error %.2e (float pass %.2e)\n", GetParam().c_str(),
              lora.params().size(), checked, worst, worst_float);
}

INSTANTIATE_TEST_SUITE_P(Shared, GradientTest, ::testing::ValuesIn(test::f32_fixtures()), test::ParamName());

// Packing: two examples in one row with separate segments give the sum of their losses and
// gradients as rows of their own; positions without weight contribute exactly nothing.
TEST(Backprop, PackedExamplesAreIsolatedAndUnweightedPositionsGiveNoGradient) {
  auto model = Model::load(test::shared("fixtures/llama-f32.gguf"));
  ThreadPool pool(2);
  LoraModel lora = random_lora(*model, 9);
  std::mt19937 rng(4);
  Sequence packed = packed_sequence(model->n_vocab(), rng);
  Sequence first, second;
  for (size_t t = 0; t < packed.tokens.size(); ++t) {
    Sequence& s = packed.segment[t] == 0 ? first : second;
    s.tokens.push_back(packed.tokens[t]);
    s.weight.push_back(packed.weight[t]);
    s.pos.push_back(packed.pos[t]);
    s.segment.push_back(0);
  }
  lora.zero_grad();
  const LossSum both = forward_backward<double>(*model, lora, packed, 64, pool, true);
  std::vector<float> g_both = lora.params()[0].grad_b;
  lora.zero_grad();
  const LossSum a = forward_backward<double>(*model, lora, first, 64, pool, true);
  const LossSum b = forward_backward<double>(*model, lora, second, 64, pool, true);
  EXPECT_NEAR(both.loss, a.loss + b.loss, 1e-9 * std::fabs(both.loss));
  for (size_t i = 0; i < g_both.size(); ++i) EXPECT_NEAR(g_both[i], lora.params()[0].grad_b[i], 1e-6);

  Sequence silent = packed;
  std::fill(silent.weight.begin(), silent.weight.end(), 0.0f);
  lora.zero_grad();
  const LossSum none = forward_backward<float>(*model, lora, silent, 64, pool, true);
  EXPECT_EQ(none.weight, 0.0);
  for (const LoraParam& p : lora.params()) {
    for (float g : p.grad_a) ASSERT_EQ(g, 0.0f);
    for (float g : p.grad_b) ASSERT_EQ(g, 0.0f);
  }
}

}  // namespace
}  // namespace slm::train

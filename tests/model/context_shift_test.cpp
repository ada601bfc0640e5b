// Context shift against an independent truth: at layer 0 a key depends only on its token and
// its position (K = RoPE(Wk·norm(embedding), pos)) and a value only on its token. So after
// evaluating [kept, dropped, moved] and shifting `dropped` out, layer 0 of the cache must
// hold what a fresh evaluation of [kept, moved] writes there — for every family's RoPE (NORM
// and NEOX pairs, Llama 3.1 frequency factors, LongRoPE, Gemma's bases, OpenELM's QK norms).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <vector>

#include "common/shared.h"
#include "kernels/thread_pool.h"
#include "model/config.h"
#include "slm/error.h"
#include "slm/model.h"

namespace slm {
namespace {

struct ShiftCase {
  GgmlType kv;
  int n_keep, n_drop, n_move;
};

class ContextShift : public ::testing::TestWithParam<std::string> {};

TEST_P(ContextShift, LayerZeroEqualsAFreshEvaluationOfTheKeptTokens) {
  auto model = Model::load(test::shared("fixtures/" + GetParam() + ".gguf"));
  const int V = model->n_vocab();
  ThreadPool pool(2);
  for (const ShiftCase sc : {ShiftCase{GgmlType::F32, 1, 20, 27}, ShiftCase{GgmlType::F32, 0, 5, 40},
                             ShiftCase{GgmlType::F16, 4, 31, 12}}) {
    SCOPED_TRACE(std::string(type_name(sc.kv)) + " keep " + std::to_string(sc.n_keep) + " drop " +
                 std::to_string(sc.n_drop) + " move " + std::to_string(sc.n_move));
    const int n = sc.n_keep + sc.n_drop + sc.n_move;
    std::vector<int32_t> all(n), kept_moved;
    for (int i = 0; i < n; ++i) all[i] = (i * 7919 + 13) % V;
    for (int i = 0; i < n; ++i)
      if (i < sc.n_keep || i >= sc.n_keep + sc.n_drop) kept_moved.push_back(all[i]);

    KvCache shifted(model->config(), 96, sc.kv), fresh(model->config(), 96, sc.kv);
    std::vector<float> logits(V);
    model->forward(pool, shifted, all.data(), n, 0, logits.data(), false);
    model->shift_cache(shifted, sc.n_keep, sc.n_drop, n);
    model->forward(pool, fresh, kept_moved.data(), int(kept_moved.size()), 0, logits.data(), false);

    const int kw = shifted.k_width(0), vw = shifted.v_width(0);
    std::vector<float> ta(kw + vw), tb(kw + vw);
    double worst = 0;
    for (int pos = 0; pos < int(kept_moved.size()); ++pos) {
      const float* ka = shifted.key(0, pos, 0, kw, ta.data());
      const float* kb = fresh.key(0, pos, 0, kw, tb.data());
      float norm = 0;
      for (int i = 0; i < kw; ++i) norm = std::max(norm, std::fabs(kb[i]));
      for (int i = 0; i < kw; ++i) worst = std::max(worst, double(std::fabs(ka[i] - kb[i]) / std::max(norm, 1e-6f)));
      const float* va = shifted.value(0, pos, 0, vw, ta.data());
      const float* vb = fresh.value(0, pos, 0, vw, tb.data());
      for (int i = 0; i < vw; ++i) ASSERT_EQ(va[i], vb[i]) << "value " << i << " at " << pos;
    }
    // f32: angle rounding only; f16: one more rounding of the rotated key.
    EXPECT_LT(worst, sc.kv == GgmlType::F32 ? 2e-5 : 2e-3) << "largest key error relative to its row";
  }
}

INSTANTIATE_TEST_SUITE_P(Shared, ContextShift, ::testing::ValuesIn(test::f32_fixtures()), test::ParamName());

TEST(ContextShiftArgs, RefusesWhatDoesNotFit) {
  auto model = Model::load(test::shared("models/stories260K.gguf"));
  KvCache cache(model->config(), 16);
  EXPECT_THROW(model->shift_cache(cache, 2, 0, 10), Error);
  EXPECT_THROW(model->shift_cache(cache, 8, 4, 10), Error);
  EXPECT_THROW(model->shift_cache(cache, 0, 4, 17), Error);
  EXPECT_THROW(model->shift_cache(cache, -1, 4, 10), Error);
}

}  // namespace
}  // namespace slm

// Every reference fixture in ../shared/fixtures: evaluate input_ids in one batch and compare
// with llama.cpp's logits at the README tolerance for the file's type; then greedy decoding
// one token at a time through the KV cache.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/shared.h"
#include "model/reference_check.h"
#include "kernels/thread_pool.h"
#include "model/config.h"
#include "slm/error.h"
#include "slm/model.h"

namespace slm {
namespace {

using nlohmann::json;

std::vector<std::string> fixture_names() {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(test::shared("fixtures"))) {
    std::string f = e.path().filename().string();
    if (f.size() > 5 && f.ends_with(".json") && !f.ends_with(".info.json")) names.push_back(f.substr(0, f.size() - 5));
  }
  std::sort(names.begin(), names.end());
  return names;
}

using test::argmax;

struct Fixture {
  json j;
  std::unique_ptr<Model> model;
  std::vector<float> ref;
  int n_vocab = 0;
  float std_ = 0;
  std::string type;
  bool gemma = false;
  bool moe = false;
  explicit Fixture(const std::string& name) {
    j = json::parse(test::read_file(test::shared("fixtures/" + name + ".json")));
    model = Model::load(test::shared("fixtures/" + j["file"].get<std::string>()));
    ref = test::read_f32(test::shared("fixtures/" + j["logits"].get<std::string>()));
    n_vocab = j["n_vocab"];
    std_ = j["stats"]["logits_std"];
    type = j["type"];
    std::string arch = j["arch"];
    gemma = arch.rfind("gemma", 0) == 0;
    moe = j.contains("routing");
  }
  int n_ctx() const { return j["n_ctx"]; }
  std::vector<int32_t> ids() const { return j["input_ids"].get<std::vector<int32_t>>(); }
};

class FixtureTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureTest, BatchLogitsMatchReference) {
  Fixture fx(GetParam());
  std::vector<int32_t> ids = fx.ids();
  const int n = static_cast<int>(ids.size()), V = fx.n_vocab;
  ASSERT_EQ(fx.ref.size(), size_t(n) * V);
  ASSERT_EQ(fx.model->n_vocab(), V);

  ThreadPool pool(2);
  KvCache cache(fx.model->config(), fx.n_ctx());
  std::vector<float> got(size_t(n) * V);
  fx.model->forward(pool, cache, ids.data(), n, 0, got.data(), true);

  std::vector<int> exempt;
  if (fx.moe) exempt = fx.j["routing"]["near_tie_positions"].get<std::vector<int>>();
  const double max_abs = test::expect_logits_match(fx.type, fx.gemma, exempt, got, fx.ref, n, V, fx.std_);
  std::printf("[%s] max|d| = %.3g (%.3g std)\n", GetParam().c_str(), max_abs, max_abs / fx.std_);
  test::expect_greedy_matches(fx.j["greedy"], fx.type, max_abs, *fx.model, fx.n_ctx());
}

// The KV-cache path (one token at a time) gives the batch logits.
TEST_P(FixtureTest, TokenByTokenMatchesBatch) {
  Fixture fx(GetParam());
  if (fx.type != "F32" && fx.type != "Q4_K_M") GTEST_SKIP() << "checked on F32 and Q4_K_M files";
  std::vector<int32_t> ids = fx.ids();
  ids.resize(20);
  const int n = int(ids.size()), V = fx.n_vocab;
  ThreadPool pool(2);
  KvCache c1(fx.model->config(), fx.n_ctx()), c2(fx.model->config(), fx.n_ctx());
  std::vector<float> batch(size_t(n) * V), step(V);
  fx.model->forward(pool, c1, ids.data(), n, 0, batch.data(), true);
  for (int t = 0; t < n; ++t) {
    fx.model->forward(pool, c2, &ids[t], 1, t, step.data(), false);
    for (int i = 0; i < V; ++i) ASSERT_NEAR(step[i], batch[size_t(t) * V + i], 1e-5 * fx.std_) << "position " << t;
  }
}

// Several sequences in one batched pass (continuous batching) give each its own logits.
TEST_P(FixtureTest, BatchedSequencesMatchSeparatePasses) {
  Fixture fx(GetParam());
  if (fx.type != "F32" && fx.type != "Q4_K_M") GTEST_SKIP() << "checked on F32 and Q4_K_M files";
  std::vector<int32_t> ids = fx.ids();
  const int V = fx.n_vocab;
  ThreadPool pool(2);
  const auto& cfg = fx.model->config();
  // Sequence A: a fresh 12-token prompt, all logits. Sequence B: 10 tokens already cached,
  // then 3 more, last logits only. Sequence C: one decode token after 20 cached.
  KvCache a1(cfg, fx.n_ctx()), b1(cfg, fx.n_ctx()), c1(cfg, fx.n_ctx());
  KvCache a2(cfg, fx.n_ctx()), b2(cfg, fx.n_ctx()), c2(cfg, fx.n_ctx());
  std::vector<float> scratch(size_t(20) * V);
  for (KvCache* kv : {&b1, &b2}) fx.model->forward(pool, *kv, &ids[20], 10, 0, scratch.data(), false);
  for (KvCache* kv : {&c1, &c2}) fx.model->forward(pool, *kv, &ids[5], 20, 0, scratch.data(), false);
  std::vector<float> a_sep(size_t(12) * V), b_sep(V), c_sep(V), a_bat(size_t(12) * V), b_bat(V), c_bat(V);
  fx.model->forward(pool, a1, &ids[0], 12, 0, a_sep.data(), true);
  fx.model->forward(pool, b1, &ids[30], 3, 10, b_sep.data(), false);
  fx.model->forward(pool, c1, &ids[40], 1, 20, c_sep.data(), false);
  fx.model->forward(pool, {SequenceBatch{&a2, &ids[0], 12, 0, a_bat.data(), true},
                           SequenceBatch{&b2, &ids[30], 3, 10, b_bat.data(), false},
                           SequenceBatch{&c2, &ids[40], 1, 20, c_bat.data(), false}});
  for (size_t i = 0; i < a_sep.size(); ++i) ASSERT_NEAR(a_bat[i], a_sep[i], 1e-5 * fx.std_) << "A " << i;
  for (int i = 0; i < V; ++i) ASSERT_NEAR(b_bat[i], b_sep[i], 1e-5 * fx.std_) << "B " << i;
  for (int i = 0; i < V; ++i) ASSERT_NEAR(c_bat[i], c_sep[i], 1e-5 * fx.std_) << "C " << i;
  // The same cache twice in one batch is refused.
  EXPECT_THROW(fx.model->forward(pool, {SequenceBatch{&a2, &ids[0], 1, 12, b_bat.data(), false},
                                        SequenceBatch{&a2, &ids[1], 1, 13, c_bat.data(), false}}),
               Error);
}

INSTANTIATE_TEST_SUITE_P(Shared, FixtureTest, ::testing::ValuesIn(fixture_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string s = info.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

}  // namespace
}  // namespace slm

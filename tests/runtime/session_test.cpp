// Session on the real stories260K model: greedy continuations reproduce llama.cpp's ids,
// the KV-cache path matches one batch, F16 cache stays close, and overlong prompts fail.
#include <gtest/gtest.h>

#include <cmath>
#include <regex>
#include <nlohmann/json.hpp>

#include "common/shared.h"
#include "kernels/thread_pool.h"
#include "slm/error.h"
#include "slm/model.h"
#include "slm/sampler.h"
#include "slm/session.h"

namespace slm {
namespace {

using nlohmann::json;

std::unique_ptr<Model> stories() { return Model::load(test::shared("models/stories260K.gguf")); }

TEST(Session, Stories260KGreedyMatchesReference) {
  json j = json::parse(test::read_file(test::shared("models/stories260K.greedy.json")));
  auto model = stories();
  ThreadPool pool(2);
  SamplerParams sp;
  sp.temp = 0;  // greedy through the sampler
  ASSERT_FALSE(j["prompts"].empty());
  for (const json& pr : j["prompts"]) {
    Session s(*model, pool, j["n_ctx"].get<int>());
    Sampler sampler(sp);
    std::vector<int32_t> want = pr["output_ids"].get<std::vector<int32_t>>();
    s.eval(pr["prompt_ids"].get<std::vector<int32_t>>());
    std::vector<int32_t> got;
    for (size_t i = 0; i < want.size(); ++i) {
      got.push_back(sampler.sample(s.logits().data(), model->n_vocab()));
      s.eval({got.back()});
    }
    EXPECT_EQ(got, want) << pr["prompt"];
  }
}

TEST(Session, TokenByTokenEqualsBatch) {
  auto model = stories();
  ThreadPool pool(2);
  std::vector<int32_t> ids = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421};
  Session a(*model, pool, 64), b(*model, pool, 64);
  std::vector<float> batch = a.eval(ids, true);
  const int V = model->n_vocab();
  ASSERT_EQ(batch.size(), ids.size() * V);
  for (size_t t = 0; t < ids.size(); ++t) {
    const std::vector<float>& one = b.eval({ids[t]});
    for (int i = 0; i < V; ++i) ASSERT_NEAR(one[i], batch[t * V + i], 1e-5) << "position " << t;
  }
  EXPECT_EQ(b.n_past(), int(ids.size()));
}

// A prompt longer than one chunk (512 tokens) gives the same logits as feeding it in pieces.
TEST(Session, LongPromptInChunksEqualsPieces) {
  auto model = stories();
  ThreadPool pool(2);
  std::vector<int32_t> ids(700);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t(3 + (i * 37) % 500);
  Session whole(*model, pool, 1024), pieces(*model, pool, 1024);
  std::vector<float> all = whole.eval(ids, true);
  const int V = model->n_vocab();
  ASSERT_EQ(all.size(), ids.size() * V);
  std::vector<int32_t> first(ids.begin(), ids.begin() + 300), rest(ids.begin() + 300, ids.end());
  pieces.eval(first);
  std::vector<float> last = pieces.eval(rest, true);
  for (size_t i = 0; i < last.size(); ++i) ASSERT_NEAR(last[i], all[300 * V + i], 1e-5) << i;
  EXPECT_EQ(whole.n_past(), 700);
}

TEST(Session, F16CacheStaysClose) {
  auto model = stories();
  ThreadPool pool(1);
  std::vector<int32_t> ids = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376};
  Session a(*model, pool, 32, GgmlType::F32), b(*model, pool, 32, GgmlType::F16);
  std::vector<float> x = a.eval(ids, true), y = b.eval(ids, true);
  double max_abs = 0;
  for (size_t i = 0; i < x.size(); ++i) max_abs = std::max(max_abs, double(std::fabs(x[i] - y[i])));
  EXPECT_GT(max_abs, 0.0);   // the cache really is F16
  EXPECT_LT(max_abs, 0.05);  // logits here span about ±15
  EXPECT_EQ(b.cache().bytes() * 2, a.cache().bytes());
}

TEST(Session, PromptLongerThanContextNamesBothLengths) {
  auto model = stories();
  ThreadPool pool(1);
  Session s(*model, pool, 8);
  std::vector<int32_t> ids(9, 5);
  try {
    s.eval(ids);
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    // Both lengths as numbers of their own, not digits inside other numbers.
    EXPECT_TRUE(std::regex_search(m, std::regex(R"((^|\D)9 tokens?\b)"))) << m;
    EXPECT_TRUE(std::regex_search(m, std::regex(R"((^|\D)8\b)"))) << m;
    EXPECT_NE(m.find("context"), std::string::npos) << m;
  }
  std::vector<int32_t> bad = {1, 512};
  EXPECT_THROW(s.eval(bad), Error);  // token id outside the vocabulary
}

TEST(Session, DefaultContextIsModelsCappedAt4096) {
  auto model = stories();  // trained context 2048
  ThreadPool pool(1);
  Session s(*model, pool);
  EXPECT_EQ(s.n_ctx(), 2048);
}

TEST(StopMatcher, HoldsBackPossibleStopAndCutsIt) {
  StopMatcher m({"\nUser:", "END"});
  EXPECT_EQ(m.push("Hello"), "Hello");
  EXPECT_EQ(m.push(" wor\n"), " wor");  // "\n" may start "\nUser:"
  EXPECT_EQ(m.push("Us"), "");
  EXPECT_EQ(m.push("a"), "\nUsa");     // no longer a prefix
  EXPECT_EQ(m.push("xxEN"), "xx");
  EXPECT_EQ(m.push("D tail"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.flush(), "");
  StopMatcher n({"stop"});
  EXPECT_EQ(n.push("st"), "");
  EXPECT_EQ(n.flush(), "st");  // end of generation: held text is shown
}

}  // namespace
}  // namespace slm

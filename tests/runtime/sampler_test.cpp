// Sampler: each truncation keeps exactly the tokens it should, and 100k seeded draws follow
// the expected distribution (chi-square at p = 0.001); same seed, same output.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "slm/error.h"
#include "slm/sampler.h"
#include "slm/tokenizer.h"
#include "gguf/gguf.h"
#include "common/shared.h"
#include <limits>
#include <memory>

namespace slm {
namespace {

const std::vector<float> kLogits = {2.0f, 1.5f, 1.0f, 0.5f, 0.0f, -1.0f};

SamplerParams plain() {  // no truncation, temperature 1
  SamplerParams p;
  p.temp = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = 1234;
  return p;
}

// softmax(logits[ids] / temp) in double, for the expected distribution.
std::map<int, double> expected(const std::vector<int>& ids, double temp, const std::vector<float>& logits = kLogits) {
  double z = 0;
  for (int i : ids) z += std::exp(logits[i] / temp);
  std::map<int, double> e;
  for (int i : ids) e[i] = std::exp(logits[i] / temp) / z;
  return e;
}

// Chi-square critical value at p = 0.001 (Wilson–Hilferty approximation).
double chi2_critical(int df) {
  const double z = 3.0902, a = 2.0 / (9.0 * df);
  return df * std::pow(1 - a + z * std::sqrt(a), 3);
}

void check_draws(const SamplerParams& params, const std::map<int, double>& want) {
  Sampler s(params);
  const int n = 100000;
  std::map<int, int> counts;
  for (int i = 0; i < n; ++i) ++counts[s.sample(kLogits.data(), int(kLogits.size()))];
  for (const auto& [id, c] : counts) ASSERT_TRUE(want.count(id)) << "token " << id << " should have been cut";
  double chi2 = 0;
  for (const auto& [id, p] : want) {
    double e = n * p;
    double d = counts[id] - e;
    chi2 += d * d / e;
  }
  EXPECT_LT(chi2, chi2_critical(int(want.size()) - 1)) << "draws do not follow the distribution";

  // The distribution the sampler reports is the expected one.
  std::vector<TokenProb> d = s.distribution(kLogits.data(), int(kLogits.size()));
  ASSERT_EQ(d.size(), want.size());
  for (const TokenProb& tp : d) EXPECT_NEAR(tp.p, want.at(tp.id), 1e-6);
}

TEST(Sampler, FullDistribution) { check_draws(plain(), expected({0, 1, 2, 3, 4, 5}, 1.0)); }

TEST(Sampler, TopKThenTemperature) {
  SamplerParams p = plain();
  p.top_k = 3;
  p.temp = 0.7f;
  check_draws(p, expected({0, 1, 2}, 0.7));
}

TEST(Sampler, TopP) {
  // Probabilities at T=1 (hand computed): .4197 .2546 .1544 .0937 .0568 .0209. Cumulative
  // .4197 .6743 .8287: top-p 0.8 keeps the first three.
  SamplerParams p = plain();
  p.top_p = 0.8f;
  check_draws(p, expected({0, 1, 2}, 1.0));
  p.top_p = 0.5f;  // .4197 < .5 <= .6743: two tokens
  check_draws(p, expected({0, 1}, 1.0));
}

TEST(Sampler, MinP) {
  // Keep p >= 0.2 p_max, i.e. logit >= 2 + ln 0.2 = 0.39: four tokens; then temperature 2.
  SamplerParams p = plain();
  p.min_p = 0.2f;
  p.temp = 2.0f;
  check_draws(p, expected({0, 1, 2, 3}, 2.0));
}

TEST(Sampler, RepetitionPresenceFrequencyPenalties) {
  SamplerParams p = plain();
  p.repeat_penalty = 2.0f;
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  p.repeat_last_n = 3;
  Sampler s(p);
  for (int t : {5, 0, 3, 0}) s.accept(t);  // last 3: 0, 3, 0 (5 has left the window)
  std::vector<float> want = kLogits;
  want[0] = 2.0f / 2 - (2 * 0.25f + 0.5f);  // positive: divided; seen twice
  want[3] = 0.5f / 2 - (0.25f + 0.5f);
  std::map<int, double> e = expected({0, 1, 2, 3, 4, 5}, 1.0, want);
  for (const TokenProb& tp : s.distribution(kLogits.data(), int(kLogits.size())))
    EXPECT_NEAR(tp.p, e[tp.id], 1e-6) << tp.id;
  // A negative logit is multiplied by the penalty.
  SamplerParams q = plain();
  q.repeat_penalty = 2.0f;
  Sampler s2(q);
  s2.accept(5);
  std::vector<float> want2 = kLogits;
  want2[5] = -2.0f;
  std::map<int, double> e2 = expected({0, 1, 2, 3, 4, 5}, 1.0, want2);
  for (const TokenProb& tp : s2.distribution(kLogits.data(), int(kLogits.size())))
    EXPECT_NEAR(tp.p, e2[tp.id], 1e-6) << tp.id;
}

TEST(Sampler, GreedyTakesLowestIdOnTies) {
  SamplerParams p = plain();
  p.temp = 0.0f;
  Sampler s(p);
  std::vector<float> l = {0.5f, 3.0f, 1.0f, 3.0f};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(s.sample(l.data(), 4), 1);
}

TEST(Sampler, SameSeedSameOutput) {
  SamplerParams p = plain();
  auto draw = [&](uint64_t seed) {
    p.seed = seed;
    Sampler s(p);
    std::vector<int> out;
    for (int i = 0; i < 200; ++i) out.push_back(s.sample(kLogits.data(), int(kLogits.size())));
    return out;
  };
  EXPECT_EQ(draw(42), draw(42));
  EXPECT_NE(draw(42), draw(43));
  Sampler s(p);
  int first = s.sample(kLogits.data(), 6);
  s.reset();
  EXPECT_EQ(s.sample(kLogits.data(), 6), first);
}

TEST(Sampler, RejectsBadParameters) {
  SamplerParams p = plain();
  p.temp = -0.1f;
  EXPECT_THROW(Sampler{p}, Error);
  p = plain();
  p.top_p = 1.5f;
  EXPECT_THROW(Sampler{p}, Error);
  p.top_p = -0.1f;
  EXPECT_THROW(Sampler{p}, Error);
  p = plain();
  p.min_p = 2.0f;
  EXPECT_THROW(Sampler{p}, Error);
}

}  // namespace
// A filter that allows only even ids: the sampler's sample-first path must never return
// an odd one, at any temperature, and greedy must return the best even id.
class EvenOnly final : public TokenFilter {
 public:
  bool allows(int32_t t) const override { ++checks; return t % 2 == 0; }
  void mask(float* logits, int n) const override {
    ++masks;
    for (int i = 1; i < n; i += 2) logits[i] = -std::numeric_limits<float>::infinity();
  }
  void accept(int32_t t) override { accepted.push_back(t); }
  bool finished() const override { return false; }
  mutable int checks = 0, masks = 0;
  std::vector<int32_t> accepted;
};

TEST(SamplerFilter, DrawsOnlyAllowedTokensAndMasksOnlyWhenTheFirstDrawIsRefused) {
  std::vector<float> logits = {0.1f, 3.0f, 2.5f, 0.2f, 1.0f, 2.9f};
  {
    SamplerParams p;
    p.temp = 0;
    Sampler s(p);
    auto f = std::make_unique<EvenOnly>();
    EvenOnly* fp = f.get();
    s.set_filter(std::move(f));
    EXPECT_EQ(s.sample(logits.data(), 6), 2);  // the best even id; the argmax (1) is odd
    EXPECT_EQ(fp->masks, 1);
    s.accept_generated(2);
    EXPECT_EQ(fp->accepted, std::vector<int32_t>{2});
  }
  SamplerParams p;
  p.temp = 1.5f;
  p.top_k = 0;
  p.top_p = 1;
  p.min_p = 0;
  p.seed = 11;
  Sampler s(p);
  auto f = std::make_unique<EvenOnly>();
  EvenOnly* fp = f.get();
  s.set_filter(std::move(f));
  int counts[6] = {};
  const int n = 4000;
  for (int i = 0; i < n; ++i) ++counts[s.sample(logits.data(), 6)];
  EXPECT_EQ(counts[1] + counts[3] + counts[5], 0);
  EXPECT_GT(counts[0], 0);
  EXPECT_GT(counts[4], 0);
  EXPECT_EQ(fp->checks, n + fp->masks);  // one check per draw, one more after each mask
  EXPECT_LT(fp->masks, n);  // allowed first draws were kept without masking
  EXPECT_GT(fp->masks, 0);
  // Masked draws follow the softmax over the allowed ids: p(2)/p(4) = e^{(2.5-1.0)/1.5}.
  EXPECT_NEAR(double(counts[2]) / counts[4], std::exp(1.0), 0.5);
}

TEST(SamplerFilter, GrammarFilterOnARealVocabularyGivesTheGrammarsText) {
  auto file = GgufFile::open(test::shared("models/stories260K.gguf"));
  auto tok = Tokenizer::from_gguf(*file);
  SamplerParams p;
  p.temp = 1;
  p.seed = 3;
  Sampler s(p);
  s.set_filter(grammar_filter(grammar_vocabulary(*tok), "root ::= \"yes\" | \"no\""));
  std::vector<float> logits(static_cast<size_t>(tok->n_vocab()), 0.0f);
  std::string text;
  for (int i = 0; i < 10; ++i) {
    const int32_t t = s.sample(logits.data(), tok->n_vocab());
    if (tok->is_eog(t)) break;
    s.accept_generated(t);
    text += tok->token_to_piece(t);
  }
  EXPECT_TRUE(text == "yes" || text == "no") << text;
  EXPECT_TRUE(s.filter()->finished());
  EXPECT_THROW(grammar_filter(grammar_vocabulary(*tok), "root ::= undefined-rule"), Error);
}

}  // namespace slm

// Sampler: turns a logits vector into the next token. The chain, in llama.cpp's usual
// order: repetition / frequency / presence penalties over the last N tokens, top-k, top-p,
// min-p, temperature, then a draw from a seeded RNG. temp <= 0 is greedy (argmax after the
// penalties; ties go to the lowest id). One Sampler per sequence: it keeps that sequence's
// recent tokens and its RNG, so the same seed gives the same output.
#pragma once
#include <cstdint>
#include <deque>
#include <random>
#include <utility>
#include <vector>

namespace slm {

struct SamplerParams {
  float temp = 0.8f;
  int top_k = 40;               // <= 0: off
  float top_p = 0.95f;          // 1: off
  float min_p = 0.05f;          // 0: off
  float repeat_penalty = 1.0f;  // 1: off
  int repeat_last_n = 64;       // how many recent tokens the penalties look at (0: none)
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  uint64_t seed = 0;
  // Added to a token's logit before anything else (OpenAI's logit_bias; -inf bans it).
  std::vector<std::pair<int32_t, float>> logit_bias;
  // Throws slm::Error with a one-line message for out-of-range values (negative
  // temperature, top-p or min-p outside [0, 1], repeat penalty <= 0, negative last-n).
  void validate() const;
};

// A candidate token and its probability after the chain.
struct TokenProb {
  int32_t id;
  float p;
};

class Sampler {
 public:
  explicit Sampler(const SamplerParams& params);

  // Picks the next token from logits[n_vocab] (does not record it: call accept).
  int32_t sample(const float* logits, int n_vocab);
  // Records a token of the sequence (prompt tokens too) for the penalties.
  void accept(int32_t token);
  void reset();  // forgets the history and reseeds

  // The distribution the draw would use for these logits: the surviving candidates in
  // descending probability, probabilities summing to 1. Greedy gives one candidate.
  std::vector<TokenProb> distribution(const float* logits, int n_vocab) const;

  const SamplerParams& params() const { return params_; }

 private:
  void apply_penalties(std::vector<float>& logits) const;
  SamplerParams params_;
  std::mt19937_64 rng_;
  std::deque<int32_t> history_;
};

}  // namespace slm

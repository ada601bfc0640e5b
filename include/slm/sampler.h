// Sampler: turns a logits vector into the next token. The chain, in llama.cpp's usual
// order: repetition / frequency / presence penalties over the last N tokens, top-k, top-p,
// min-p, temperature, then a draw from a seeded RNG. temp <= 0 is greedy (argmax after the
// penalties; ties go to the lowest id). One Sampler per sequence: it keeps that sequence's
// recent tokens and its RNG, so the same seed gives the same output.
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace slm {

class Tokenizer;
namespace grammar {
class VocabIndex;
}

// Which tokens may come next: a grammar the output must follow (constrained decoding).
// The sampler draws first and asks only about the drawn token; when it is refused, the
// logits are masked and the draw repeated, so the common case costs one check.
class TokenFilter {
 public:
  virtual ~TokenFilter() = default;
  virtual bool allows(int32_t token) const = 0;
  // Sets every refused token's logit to -infinity (end-of-generation tokens are allowed
  // exactly when the output so far is complete).
  virtual void mask(float* logits, int n_vocab) const = 0;
  // Advances past a generated token (throws slm::Error when it is refused).
  virtual void accept(int32_t token) = 0;
  // The output is complete and nothing can follow it.
  virtual bool finished() const = 0;
};

// The vocabulary prepared for grammar checks (every token's bytes in a trie): build once
// per model, share between sequences and threads.
std::shared_ptr<const grammar::VocabIndex> grammar_vocabulary(const Tokenizer& tok);
// A filter for a GBNF grammar (llama.cpp's format; rule "root" starts). Throws slm::Error
// with the line and column of a syntax error.
std::unique_ptr<TokenFilter> grammar_filter(std::shared_ptr<const grammar::VocabIndex> vocab, std::string_view gbnf);
// Parses a GBNF grammar only, to refuse a bad one before anything else is loaded.
void check_grammar(std::string_view gbnf);
// GBNF for the JSON texts a JSON Schema (given as JSON text) accepts, compact, keys in the
// schema's order. Throws slm::Error naming an unsupported keyword and where it is.
std::string json_schema_grammar(std::string_view schema_json);
// A GBNF string literal matching exactly these bytes (UTF-8), for building grammars.
std::string gbnf_literal(std::string_view text);
// GBNF for any JSON object.
std::string json_object_grammar();

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

  // Picks the next token from logits[n_vocab] (does not record it: call accept_generated).
  // With a filter, only a token the filter allows.
  int32_t sample(const float* logits, int n_vocab);
  // Records a token of the sequence (prompt tokens too) for the penalties.
  void accept(int32_t token);
  // Records a token the model generated: the penalties' history and the filter.
  void accept_generated(int32_t token);
  // Constrains every later draw (nullptr: none).
  void set_filter(std::unique_ptr<TokenFilter> filter) { filter_ = std::move(filter); }
  const TokenFilter* filter() const { return filter_.get(); }
  void reset();  // forgets the history and reseeds

  // The distribution the draw would use for these logits: the surviving candidates in
  // descending probability, probabilities summing to 1. Greedy gives one candidate.
  std::vector<TokenProb> distribution(const float* logits, int n_vocab) const;

  const SamplerParams& params() const { return params_; }

 private:
  void apply_penalties(std::vector<float>& logits) const;
  int32_t draw(const float* logits, int n_vocab);
  SamplerParams params_;
  std::unique_ptr<TokenFilter> filter_;
  std::vector<float> masked_;  // the logits with the filter's mask, when the first draw was refused
  std::mt19937_64 rng_;
  std::deque<int32_t> history_;
};

}  // namespace slm

// Helpers shared by the grammar tests: grammars from text, whole-input matching, the real
// vocabularies, and random walks through a TokenConstraint.
#pragma once
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/shared.h"
#include "gguf/gguf.h"
#include "grammar/grammar.h"
#include "slm/tokenizer.h"

namespace slm::grammar::test {

inline std::shared_ptr<const Grammar> compile(const std::string& gbnf) {
  return std::make_shared<const Grammar>(parse_gbnf(gbnf));
}

// The whole input is a sentence of the grammar.
inline bool accepts(const std::shared_ptr<const Grammar>& g, std::string_view input) {
  Matcher m(g);
  return m.advance(input) && m.accepting();
}
inline bool accepts(const std::string& gbnf, std::string_view input) { return accepts(compile(gbnf), input); }

// The input can be continued into a sentence (it is a prefix of one).
inline bool is_prefix(const std::shared_ptr<const Grammar>& g, std::string_view input) {
  Matcher m(g);
  return m.advance(input);
}

struct Vocab {
  std::unique_ptr<GgufFile> file;
  std::unique_ptr<Tokenizer> tokenizer;
  std::shared_ptr<const VocabIndex> index;
};

// Loaded once per test binary.
inline const Vocab& vocab(const std::string& name) {
  static std::map<std::string, Vocab> cache;
  auto it = cache.find(name);
  if (it == cache.end()) {
    Vocab v;
    v.file = GgufFile::open(slm::test::shared("vocab/ggml-vocab-" + name + ".gguf"));
    v.tokenizer = Tokenizer::from_gguf(*v.file);
    v.index = std::make_shared<const VocabIndex>(*v.tokenizer);
    it = cache.emplace(name, std::move(v)).first;
  }
  return it->second;
}

struct Walk {
  std::string text;
  bool ended = false;  // an end-of-generation token was chosen
  int steps = 0;
};

// Picks allowed tokens at random (seeded). After `long_after` steps it prefers tokens that
// close something ('"', '}', ']') or end the text, so walks through unbounded parts end.
inline Walk random_walk(TokenConstraint& constraint, const VocabIndex& vocab, uint32_t seed, int max_steps = 400,
                        int long_after = 60) {
  std::mt19937 rng(seed);
  Walk walk;
  constraint.reset();
  for (; walk.steps < max_steps && !walk.ended; ++walk.steps) {
    const std::vector<int32_t> allowed = constraint.allowed_tokens();
    if (allowed.empty()) break;
    std::vector<int32_t> pool = allowed;
    if (walk.steps >= long_after) {
      std::vector<int32_t> closing;
      for (int32_t id : allowed)
        if (vocab.is_eog(id) || vocab.piece(id).find_first_of("\"}]") != std::string::npos) closing.push_back(id);
      if (!closing.empty()) pool = closing;
    }
    const int32_t id = pool[std::uniform_int_distribution<size_t>(0, pool.size() - 1)(rng)];
    constraint.accept(id);
    if (vocab.is_eog(id)) walk.ended = true;
    else walk.text += vocab.piece(id);
  }
  return walk;
}

}  // namespace slm::grammar::test

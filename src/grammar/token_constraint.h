// TokenConstraint: which tokens of a vocabulary may come next under a grammar.
//
// Meant for sample-first decoding: sample from the plain logits, ask allows(token) (a few
// table reads), and only when it says no, call mask() and sample again. mask() walks the
// vocabulary's trie against the automaton, skipping every subtree whose prefix the grammar
// rejects; the result is cached per automaton state, since states recur (inside a string,
// between array items ...).
//
// End-of-generation tokens are allowed exactly when the text so far is a complete
// sentence; once the grammar accepts and nothing more can follow, they are all that is left.
// Not thread-safe: the caches are filled by the const methods too.
#pragma once
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "grammar/matcher.h"
#include "grammar/state_table.h"
#include "grammar/vocab_index.h"

namespace slm::grammar {

class TokenConstraint {
 public:
  TokenConstraint(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const VocabIndex> vocab);

  // Cheap: follows the token's bytes through the automaton. False for ids out of range.
  bool allows(int32_t id) const;
  // Sets the logit of every token not allowed to -INFINITY; ids at or past the
  // vocabulary's size (padding rows) too.
  void mask(float* logits, int n_vocab) const;
  std::vector<int32_t> allowed_tokens() const;

  // Throws slm::Error naming the token when it is not allowed.
  void accept(int32_t id);

  bool accepting() const { return !ended_ && table_.accepting(state_); }
  bool can_continue() const { return !ended_ && table_.can_continue(state_); }
  // Complete and nothing more can follow (or an end-of-generation token was accepted).
  bool finished() const { return ended_ || (accepting() && !can_continue()); }

  // Back to the start of the grammar, keeping the caches.
  void reset();

 private:
  // One bit per token id: the tokens allowed in the current state.
  const std::vector<uint64_t>& allowed_bits() const;
  std::vector<uint64_t> compute_allowed_bits() const;
  // Clears the caches when they have grown past their budget.
  void trim_caches() const;

  std::shared_ptr<const Grammar> grammar_;
  std::shared_ptr<const VocabIndex> vocab_;
  Matcher current_;  // the current state, kept to re-enter it after the table is cleared
  mutable StateTable table_;
  mutable int32_t state_ = 0;
  mutable std::unordered_map<int32_t, std::vector<uint64_t>> mask_cache_;
  mutable std::vector<int32_t> state_at_depth_;  // scratch for the trie walk
  bool ended_ = false;
};

}  // namespace slm::grammar

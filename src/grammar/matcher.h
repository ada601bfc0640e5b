// Matcher: a pushdown automaton that runs a Grammar over bytes.
//
// The state is a set of stacks, one per way of parsing the input so far (as in a GLR or
// Earley parser). A stack lists grammar positions: the top is the terminal the next code
// point must match, the ones below are where to return to when a rule ends. Rule calls in
// tail position push no return frame, so repetition does not grow the stacks.
//
// Input comes as bytes but terminals are code points: a character split across several
// advance() calls is kept as a pending prefix, narrowed with each byte and checked against
// the terminals at once, so a byte that can never complete a matching character is
// rejected right away.
//
// A Matcher is a value: copy it to try input without changing the original.
#pragma once
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "grammar/rules.h"

namespace slm::grammar {

inline constexpr size_t kMaxParseStacks = 4096;   // more means an exploding ambiguous grammar
inline constexpr size_t kMaxStackDepth = 1024;    // deeper nesting is refused as input

class Matcher {
 public:
  // Throws slm::Error when the grammar is so ambiguous that the stacks exceed
  // kMaxParseStacks (here or in advance()).
  explicit Matcher(std::shared_ptr<const Grammar> grammar);

  // Consumes bytes; false (state unchanged) when they cannot continue a sentence.
  bool advance(std::string_view bytes);
  bool advance_byte(uint8_t byte);

  // The input so far is a complete sentence of the root rule.
  bool accepting() const { return accepting_ && partial_remaining_ == 0; }
  // Some more input can follow.
  bool can_continue() const { return !stacks_.empty(); }

  size_t stack_count() const { return stacks_.size(); }
  const Grammar& grammar() const { return *grammar_; }

  // A canonical description of the state: equal keys mean equal futures.
  void append_key(std::vector<uint32_t>& key) const;

 private:
  using Stack = std::vector<uint32_t>;
  // match_all: the character is known to match every stack's terminal (see kAnyCharacter).
  bool advance_code_point(uint32_t cp, bool match_all = false);
  // Forgets which pending character it is when that no longer matters, so that states
  // differing only in it become one.
  void canonicalize_partial(uint32_t lo, uint32_t hi);
  // Follows rule calls and returns from each stack until every top is a terminal.
  void expand(std::vector<Stack> work, std::vector<Stack>& frontier, bool& accepting) const;
  // The code points the pending prefix can still become.
  void partial_range(uint32_t& lo, uint32_t& hi) const;

  std::shared_ptr<const Grammar> grammar_;
  std::vector<Stack> stacks_;  // sorted, unique, each top a terminal
  bool accepting_ = false;
  // partial_ when any continuation bytes give a character every stack takes: which one it
  // will be makes no difference (e.g. inside a JSON string).
  static constexpr uint32_t kAnyCharacter = 0xFFFFFFFF;
  uint32_t partial_ = 0;             // bits of the pending character so far, or kAnyCharacter
  uint8_t partial_remaining_ = 0;    // continuation bytes still to come
  uint8_t partial_length_ = 0;       // its whole length in bytes
};

}  // namespace slm::grammar

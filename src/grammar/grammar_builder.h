// GrammarBuilder: collects rules as alternatives of symbol sequences, turns quantifiers into
// plain rules, and compiles the result into a Grammar after checking it can be run
// (every rule defined, no left recursion, bounded size).
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "grammar/rules.h"

namespace slm::grammar {

inline constexpr uint32_t kUnbounded = std::numeric_limits<uint32_t>::max();
inline constexpr uint32_t kMaxRepetition = 10000;   // largest m or n in {m,n}
inline constexpr size_t kMaxGrammarSymbols = 2'000'000;  // after expanding repetitions

// One item of a sequence: a rule reference, or a terminal (a set of code points).
struct Symbol {
  static constexpr uint32_t kTerminal = std::numeric_limits<uint32_t>::max();
  uint32_t rule = kTerminal;
  std::vector<CharRange> chars;  // terminal: sorted, disjoint

  static Symbol terminal(std::vector<CharRange> ranges);  // normalizes the ranges
  static Symbol reference(uint32_t rule_id) { return Symbol{rule_id, {}}; }
};
using Sequence = std::vector<Symbol>;

class GrammarBuilder {
 public:
  // The id of the rule with this name, made (still undefined) on first use.
  uint32_t named_rule(std::string_view name);
  // A fresh rule for a group or repetition, named after the rule it appears in.
  // base is taken by value: callers pass name(rule), a view into names_, which this call grows.
  uint32_t generated_rule(std::string base);
  bool is_defined(uint32_t rule) const { return defined_[rule]; }
  const std::string& name(uint32_t rule) const { return names_[rule]; }
  void define(uint32_t rule, std::vector<Sequence> alternatives);

  // item{min,max} (max may be kUnbounded) as a sequence, adding the rules it needs.
  Sequence repeat(const Sequence& item, uint32_t min, uint32_t max, std::string base);

  // Throws slm::Error for an undefined rule reachable by name, left recursion or a grammar
  // over the size bound.
  Grammar finish(uint32_t root) const;

 private:
  void count_symbols(size_t n);

  std::vector<std::string> names_;
  std::vector<bool> defined_;
  std::vector<std::vector<Sequence>> bodies_;
  std::unordered_map<std::string, uint32_t> by_name_;
  std::unordered_map<std::string, uint32_t> generated_count_;
  size_t symbols_ = 0;
};

}  // namespace slm::grammar

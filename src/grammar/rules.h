// Grammar: a context-free grammar compiled to flat arrays, the form the Matcher runs.
//
// Every rule is a list of alternatives; every alternative is a run of elements in
// `elements` closed by an End element. An element is either a terminal (one UTF-8 code point
// out of a set of ranges) or a reference to a rule. Quantifiers and groups of the source
// text have already been turned into plain rules, so a position in the grammar is just an
// index into `elements`.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace slm::grammar {

inline constexpr uint32_t kMaxCodePoint = 0x10FFFF;

// The value of a hexadecimal digit, -1 for any other character (escapes in GBNF and in
// JSON Schema patterns).
inline int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

struct CharRange {
  uint32_t lo = 0, hi = 0;  // inclusive code points
};

struct Element {
  enum class Kind : uint8_t { Chars, Rule, End };
  Kind kind = Kind::End;
  uint32_t rule = 0;                      // Rule: which rule
  uint32_t ranges_begin = 0, ranges_end = 0;  // Chars: sorted, disjoint ranges in Grammar::ranges
};

struct Rule {
  std::string name;
  std::vector<uint32_t> alternatives;  // index of each alternative's first element
};

struct Grammar {
  std::vector<CharRange> ranges;
  std::vector<Element> elements;
  std::vector<Rule> rules;
  uint32_t root = 0;

  // True when code point cp is in the terminal at elements[pos].
  bool matches(uint32_t pos, uint32_t cp) const {
    const Element& e = elements[pos];
    for (uint32_t i = e.ranges_begin; i < e.ranges_end; ++i) {
      if (cp < ranges[i].lo) return false;
      if (cp <= ranges[i].hi) return true;
    }
    return false;
  }
  // True when every code point in [lo, hi] is in the terminal at elements[pos].
  bool contains(uint32_t pos, uint32_t lo, uint32_t hi) const {
    const Element& e = elements[pos];
    for (uint32_t i = e.ranges_begin; i < e.ranges_end; ++i)
      if (ranges[i].lo <= lo && hi <= ranges[i].hi) return true;
    return false;
  }
  // True when some code point in [lo, hi] is in the terminal at elements[pos].
  bool intersects(uint32_t pos, uint32_t lo, uint32_t hi) const {
    const Element& e = elements[pos];
    for (uint32_t i = e.ranges_begin; i < e.ranges_end; ++i)
      if (ranges[i].lo <= hi && lo <= ranges[i].hi) return true;
    return false;
  }
};

}  // namespace slm::grammar

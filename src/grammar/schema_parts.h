// Pieces of GBNF the JSON Schema converter is made of: literals, integer and number ranges,
// string formats, regex patterns. Each returns a GBNF expression; they may refer to the
// shared rules of kJsonPrelude.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "grammar/rules.h"

namespace slm::grammar::schema {

// Rules every converted grammar has: JSON strings, numbers and any value, compact.
// Integers have at most 18 digits and fractions at most 15, exponents at most 2, so every
// number fits int64 / double and ends.
extern const char* const kJsonPrelude;
inline constexpr int64_t kMaxJsonInteger = 999'999'999'999'999'999;  // 18 digits

// A GBNF string literal for these bytes (valid UTF-8).
std::string literal(std::string_view bytes);
// A GBNF character class for these code points (sorted, disjoint, not empty).
std::string char_class(const std::vector<CharRange>& ranges);

// Decimal integers in [lo, hi] without leading zeros ("-0" never); empty string when none.
std::string integer_range(int64_t lo, int64_t hi);

// Decimal numbers (no exponent) between the bounds; a bound that is absent is open. Only
// numbers that certainly satisfy the bounds (it may leave out some that would).
struct NumberBounds {
  std::optional<double> min, max;
  bool exclusive_min = false, exclusive_max = false;
};
std::string bounded_number(const NumberBounds& bounds);

// The content (between the quotes) of a JSON string of this format; empty when the format
// is not supported.
std::string format_content(std::string_view format);

// The content of a JSON string the ECMAScript regex matches (a subset: literals, escapes
// \d \w \s \D \W \S, classes, ., groups, alternation, quantifiers, ^ and $ at the ends).
// Throws slm::Error naming what is not supported.
std::string pattern_content(std::string_view pattern);

// Code points of a JSON string's content, as the grammar writes them: characters that need
// an escape in JSON appear escaped. For a set of allowed characters.
std::string json_chars_of(const std::vector<CharRange>& ranges);

}  // namespace slm::grammar::schema

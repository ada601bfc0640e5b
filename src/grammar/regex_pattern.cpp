// JSON Schema "pattern" (an ECMAScript regex, a subset) -> GBNF for a JSON string's content.
// The regex speaks of decoded characters; the grammar writes them as JSON does, so '"', '\\'
// and control characters come out escaped (json_chars_of).
#include <string>

#include "grammar/grammar_builder.h"
#include "grammar/schema_parts.h"
#include "slm/error.h"

namespace slm::grammar::schema {
namespace {

constexpr int kMaxPatternNesting = 100;

using Ranges = std::vector<CharRange>;

Ranges complement(const Ranges& set) {
  const Ranges sorted = Symbol::terminal(set).chars;
  Ranges out;
  uint32_t next = 0;
  for (const CharRange& r : sorted) {
    if (r.lo > next) out.push_back({next, r.lo - 1});
    next = r.hi + 1;
  }
  if (next <= kMaxCodePoint) out.push_back({next, kMaxCodePoint});
  return out;
}

// ECMAScript's \s: these characters, all of which \S excludes; \s itself produces only the
// ASCII ones (a subset, so always valid).
const Ranges kUnicodeSpace = {{0x09, 0x0D}, {0x20, 0x20}, {0xA0, 0xA0}, {0x1680, 0x1680},
                              {0x2000, 0x200A}, {0x2028, 0x2029}, {0x202F, 0x202F},
                              {0x205F, 0x205F}, {0x3000, 0x3000}, {0xFEFF, 0xFEFF}};
const Ranges kAsciiSpace = {{0x09, 0x0D}, {0x20, 0x20}};
const Ranges kDigit = {{'0', '9'}};
const Ranges kWord = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
// '.': anything but line terminators.
const Ranges kDot = complement({{'\n', '\n'}, {'\r', '\r'}, {0x2028, 0x2029}});

class PatternParser {
 public:
  explicit PatternParser(std::string_view pattern) : p_(pattern) {}

  std::string parse() {
    bool anchored_start = false, anchored_end = false;
    if (peek() == '^') {
      anchored_start = true;
      ++pos_;
    }
    std::string body = parse_alternation(0);
    if (peek() == '$') {
      anchored_end = true;
      ++pos_;
    }
    if (pos_ < p_.size()) fail(std::string("unexpected '") + p_[pos_] + "'");
    // Unanchored: the match may sit anywhere in the string.
    std::string out = anchored_start ? "" : "json-char* ";
    out += "(" + body + ")";
    if (!anchored_end) out += " json-char*";
    return out;
  }

 private:
  char peek() const { return pos_ < p_.size() ? p_[pos_] : '\0'; }
  bool at_end() const { return pos_ >= p_.size(); }
  [[noreturn]] void fail(const std::string& what) const {
    throw Error("json schema: pattern '" + std::string(p_) + "': " + what);
  }

  std::string parse_alternation(int depth) {
    if (depth > kMaxPatternNesting) fail("groups nested too deeply");
    std::string out = parse_sequence(depth);
    while (peek() == '|') {
      ++pos_;
      out += " | " + parse_sequence(depth);
    }
    return out;
  }

  std::string parse_sequence(int depth) {
    std::string out;
    while (!at_end() && peek() != '|' && peek() != ')') {
      if (peek() == '$' && pos_ + 1 == p_.size() && depth == 0) break;  // the end anchor
      std::string atom = parse_atom(depth);
      atom = parse_quantifiers(atom);
      out += (out.empty() ? "" : " ") + atom;
    }
    return out.empty() ? "\"\"" : out;
  }

  std::string parse_quantifiers(std::string atom) {
    while (true) {
      const char c = peek();
      std::string q;
      if (c == '*' || c == '+' || c == '?') {
        ++pos_;
        q = std::string(1, c);
      } else if (c == '{') {
        ++pos_;
        const uint32_t min = parse_count();
        q = "{";
        q += std::to_string(min);
        if (peek() == ',') {
          ++pos_;
          q += ",";
          if (peek() != '}') {
            const uint32_t max = parse_count();
            if (max < min) fail("{m,n} with n < m");
            q += std::to_string(max);
          }
        }
        if (peek() != '}') fail("malformed {m,n}");
        ++pos_;
        q += "}";
      } else {
        return atom;
      }
      if (peek() == '?') ++pos_;  // lazy: the same strings
      atom = "(" + atom + ")" + q;
    }
  }

  uint32_t parse_count() {
    if (!(peek() >= '0' && peek() <= '9')) fail("expected a number in {m,n}");
    uint64_t n = 0;
    while (peek() >= '0' && peek() <= '9') {
      n = n * 10 + static_cast<uint64_t>(peek() - '0');
      if (n > kMaxRepetition) fail("repetition count over " + std::to_string(kMaxRepetition));
      ++pos_;
    }
    return static_cast<uint32_t>(n);
  }

  std::string chars(const Ranges& ranges) {
    const std::string out = json_chars_of(Symbol::terminal(ranges).chars);
    if (out.empty()) fail("a class that matches nothing");
    return "(" + out + ")";
  }

  std::string parse_atom(int depth) {
    const char c = peek();
    if (c == '(') {
      ++pos_;
      if (peek() == '?') {
        if (pos_ + 1 < p_.size() && p_[pos_ + 1] == ':') pos_ += 2;
        else fail("lookarounds and named groups are not supported");
      }
      std::string inner = parse_alternation(depth + 1);
      if (peek() != ')') fail("unclosed '('");
      ++pos_;
      return "(" + inner + ")";
    }
    if (c == '[') return chars(parse_class());
    if (c == '.') {
      ++pos_;
      return chars(kDot);
    }
    if (c == '^' || c == '$') fail(std::string("anchor '") + c + "' only at the start or end");
    if (c == '*' || c == '+' || c == '?' || c == '{') fail(std::string("nothing to repeat before '") + c + "'");
    if (c == '\\') {
      Ranges set;
      parse_escape(set, false);
      return chars(set);
    }
    const uint32_t cp = next_code_point();
    return chars({{cp, cp}});
  }

  // An escape at pos_ (the backslash): a class (\d ...) or one character, into set.
  // Returns true for a class escape.
  bool parse_escape(Ranges& set, bool in_class) {
    ++pos_;
    if (at_end()) fail("'\\' at the end");
    const char e = p_[pos_++];
    auto add = [&](const Ranges& r) { set.insert(set.end(), r.begin(), r.end()); };
    switch (e) {
      case 'd': add(kDigit); return true;
      case 'D': add(complement(kDigit)); return true;
      case 'w': add(kWord); return true;
      case 'W': add(complement(kWord)); return true;
      case 's': add(kAsciiSpace); return true;
      case 'S': add(complement(kUnicodeSpace)); return true;
      case 'n': set.push_back({'\n', '\n'}); return false;
      case 'r': set.push_back({'\r', '\r'}); return false;
      case 't': set.push_back({'\t', '\t'}); return false;
      case 'f': set.push_back({'\f', '\f'}); return false;
      case 'v': set.push_back({'\v', '\v'}); return false;
      case '0': set.push_back({0, 0}); return false;
      case 'x': {
        const uint32_t cp = parse_hex(2);
        set.push_back({cp, cp});
        return false;
      }
      case 'u': {
        const uint32_t cp = parse_hex(4);
        if (cp >= 0xD800 && cp <= 0xDFFF) fail("surrogate escapes are not supported");
        set.push_back({cp, cp});
        return false;
      }
      case 'b':
        if (in_class) {
          set.push_back({'\b', '\b'});
          return false;
        }
        fail("'\\b' (word boundary) is not supported");
      default:
        if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9'))
          fail(std::string("escape '\\") + e + "' is not supported");
        set.push_back({static_cast<unsigned char>(e), static_cast<unsigned char>(e)});
        return false;
    }
  }

  uint32_t parse_hex(int digits) {
    uint32_t v = 0;
    for (int i = 0; i < digits; ++i) {
      const int d = hex_digit(peek());
      if (d < 0) fail("bad hex escape");
      v = v * 16 + static_cast<uint32_t>(d);
      ++pos_;
    }
    return v;
  }

  Ranges parse_class() {
    ++pos_;  // '['
    const bool negated = peek() == '^';
    if (negated) ++pos_;
    Ranges set;
    while (true) {
      if (at_end()) fail("unclosed '['");
      if (peek() == ']') break;
      Ranges item;
      bool is_class = false;
      if (peek() == '\\') is_class = parse_escape(item, true);
      else {
        const uint32_t cp = next_code_point();
        item.push_back({cp, cp});
      }
      if (!is_class && peek() == '-' && pos_ + 1 < p_.size() && p_[pos_ + 1] != ']') {
        ++pos_;
        Ranges high;
        if (peek() == '\\') {
          if (parse_escape(high, true)) fail("a class escape cannot end a range");
        } else {
          const uint32_t cp = next_code_point();
          high.push_back({cp, cp});
        }
        if (high[0].lo < item[0].lo) fail("range out of order in a class");
        item[0].hi = high[0].lo;
      }
      set.insert(set.end(), item.begin(), item.end());
    }
    ++pos_;
    return negated ? complement(set) : set;
  }

  uint32_t next_code_point() {
    const unsigned char c = static_cast<unsigned char>(p_[pos_]);
    const int length = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    if (length == 0 || pos_ + length > p_.size()) fail("invalid UTF-8");
    uint32_t cp = length == 1 ? c : c & (0x7Fu >> length);
    for (int i = 1; i < length; ++i) {
      const unsigned char cc = static_cast<unsigned char>(p_[pos_ + i]);
      if ((cc & 0xC0) != 0x80) fail("invalid UTF-8");
      cp = (cp << 6) | (cc & 0x3F);
    }
    pos_ += length;
    return cp;
  }

  std::string_view p_;
  size_t pos_ = 0;
};

}  // namespace

std::string pattern_content(std::string_view pattern) { return PatternParser(pattern).parse(); }

}  // namespace slm::grammar::schema

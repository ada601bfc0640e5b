// Recursive descent over the GBNF text; the GrammarBuilder does the compiling.
#include <algorithm>
#include <map>
#include <string>

#include "grammar/gbnf.h"
#include "grammar/grammar_builder.h"
#include "slm/error.h"

namespace slm::grammar {
namespace {

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

class GbnfParser {
 public:
  explicit GbnfParser(std::string_view text) : text_(text) {}

  Grammar parse(std::string_view root_name) {
    skip_space(true);
    while (!at_end()) parse_rule();
    // References to rules never defined, reported at their first use.
    for (const auto& [pos, rule] : first_use_)
      if (!builder_.is_defined(rule)) fail_at(pos, "unknown rule '" + builder_.name(rule) + "'");
    const uint32_t root = builder_.named_rule(root_name);
    if (!builder_.is_defined(root))
      throw Error("grammar: no rule '" + std::string(root_name) + "' to start from");
    return builder_.finish(root);
  }

 private:
  bool at_end() const { return pos_ >= text_.size(); }
  char peek(size_t ahead = 0) const {
    return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0';
  }

  [[noreturn]] void fail_at(size_t pos, const std::string& what) const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < pos && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    throw Error("grammar line " + std::to_string(line) + " col " + std::to_string(col) + ": " + what);
  }
  [[noreturn]] void fail(const std::string& what) const { fail_at(pos_, what); }

  // Spaces, tabs and comments; newlines too where the rule cannot end here.
  void skip_space(bool newlines) {
    while (!at_end()) {
      const char c = peek();
      if (c == ' ' || c == '\t' || c == '\r') {
        ++pos_;
      } else if (c == '\n' && newlines) {
        ++pos_;
      } else if (c == '#') {
        while (!at_end() && peek() != '\n') ++pos_;
      } else {
        break;
      }
    }
  }

  std::string_view parse_name() {
    const size_t start = pos_;
    while (!at_end() && is_name_char(peek())) ++pos_;
    if (pos_ == start) fail("expected a rule name");
    return text_.substr(start, pos_ - start);
  }

  void parse_rule() {
    const size_t name_pos = pos_;
    const std::string_view name = parse_name();
    skip_space(false);
    if (text_.substr(pos_, 3) != "::=") fail("expected '::=' after rule name '" + std::string(name) + "'");
    pos_ += 3;
    skip_space(true);
    const uint32_t rule = builder_.named_rule(name);
    if (builder_.is_defined(rule)) fail_at(name_pos, "rule '" + std::string(name) + "' is defined twice");
    std::vector<Sequence> alternatives = parse_alternatives(rule, 0, false);
    builder_.define(rule, std::move(alternatives));
    skip_space(false);
    if (!at_end() && peek() != '\n') fail(std::string("unexpected '") + peek() + "'");
    skip_space(true);
  }

  std::vector<Sequence> parse_alternatives(uint32_t rule, int depth, bool nested) {
    std::vector<Sequence> alternatives;
    alternatives.push_back(parse_sequence(rule, depth, nested));
    while (peek() == '|') {
      ++pos_;
      skip_space(true);
      alternatives.push_back(parse_sequence(rule, depth, nested));
    }
    return alternatives;
  }

  Sequence parse_sequence(uint32_t rule, int depth, bool nested) {
    Sequence sequence;
    while (!at_end()) {
      Sequence item;
      const char c = peek();
      if (c == '"') {
        item = parse_literal();
      } else if (c == '[') {
        item.push_back(parse_class());
      } else if (c == '.') {
        ++pos_;
        item.push_back(Symbol::terminal({{0, kMaxCodePoint}}));
      } else if (is_name_char(c)) {
        const size_t use_pos = pos_;
        const uint32_t ref = builder_.named_rule(parse_name());
        first_use_.insert({use_pos, ref});
        item.push_back(Symbol::reference(ref));
      } else if (c == '(') {
        if (depth + 1 > kMaxGrammarNesting)
          fail("parentheses nested deeper than " + std::to_string(kMaxGrammarNesting));
        const size_t open_pos = pos_++;
        skip_space(true);
        std::vector<Sequence> inner = parse_alternatives(rule, depth + 1, true);
        if (peek() != ')') fail_at(open_pos, "unclosed '('");
        ++pos_;
        const uint32_t group = builder_.generated_rule(builder_.name(rule));
        builder_.define(group, std::move(inner));
        item.push_back(Symbol::reference(group));
      } else {
        break;
      }
      skip_space(nested);
      while (peek() == '*' || peek() == '+' || peek() == '?' || peek() == '{') {
        item = parse_quantifier(item, rule);
        skip_space(nested);
      }
      sequence.insert(sequence.end(), item.begin(), item.end());
    }
    return sequence;
  }

  Sequence parse_quantifier(const Sequence& item, uint32_t rule) {
    const std::string& base = builder_.name(rule);
    const char c = peek();
    ++pos_;
    if (c == '*') return builder_.repeat(item, 0, kUnbounded, base);
    if (c == '+') return builder_.repeat(item, 1, kUnbounded, base);
    if (c == '?') return builder_.repeat(item, 0, 1, base);
    const size_t open_pos = pos_ - 1;
    skip_space(false);
    const uint32_t min = parse_count();
    uint32_t max = min;
    skip_space(false);
    if (peek() == ',') {
      ++pos_;
      skip_space(false);
      max = peek() == '}' ? kUnbounded : parse_count();
      skip_space(false);
    }
    if (peek() != '}') fail_at(open_pos, "unclosed '{' in repetition");
    ++pos_;
    if (max < min) fail_at(open_pos, "repetition {m,n} with n < m");
    return builder_.repeat(item, min, max, base);
  }

  uint32_t parse_count() {
    if (!(peek() >= '0' && peek() <= '9')) fail("expected a number in repetition");
    uint64_t n = 0;
    while (peek() >= '0' && peek() <= '9') {
      n = n * 10 + static_cast<uint64_t>(peek() - '0');
      if (n > kMaxRepetition)
        fail("repetition count over " + std::to_string(kMaxRepetition));
      ++pos_;
    }
    return static_cast<uint32_t>(n);
  }

  Sequence parse_literal() {
    const size_t open_pos = pos_++;
    Sequence out;
    while (true) {
      if (at_end() || peek() == '\n') fail_at(open_pos, "unterminated string literal");
      if (peek() == '"') break;
      const uint32_t cp = parse_char();
      out.push_back(Symbol::terminal({{cp, cp}}));
    }
    ++pos_;
    return out;
  }

  Symbol parse_class() {
    const size_t open_pos = pos_++;
    const bool negated = peek() == '^';
    if (negated) ++pos_;
    std::vector<CharRange> ranges;
    while (true) {
      if (at_end() || peek() == '\n') fail_at(open_pos, "unterminated character class");
      if (peek() == ']') break;
      const size_t item_pos = pos_;
      const uint32_t lo = parse_char();
      uint32_t hi = lo;
      if (peek() == '-' && peek(1) != ']' && peek(1) != '\0') {
        ++pos_;
        hi = parse_char();
        if (hi < lo) fail_at(item_pos, "character range out of order");
      }
      ranges.push_back({lo, hi});
    }
    ++pos_;
    if (ranges.empty() && !negated) fail_at(open_pos, "empty character class");
    Symbol set = Symbol::terminal(std::move(ranges));
    if (!negated) return set;
    std::vector<CharRange> complement;
    uint32_t next = 0;
    for (const CharRange& r : set.chars) {
      if (r.lo > next) complement.push_back({next, r.lo - 1});
      next = r.hi + 1;
    }
    if (next <= kMaxCodePoint) complement.push_back({next, kMaxCodePoint});
    if (complement.empty()) fail_at(open_pos, "negated class matches nothing");
    return Symbol::terminal(std::move(complement));
  }

  uint32_t parse_hex(int digits, size_t escape_pos) {
    uint32_t v = 0;
    for (int i = 0; i < digits; ++i) {
      const int d = hex_digit(peek());
      if (d < 0) fail_at(escape_pos, "escape needs " + std::to_string(digits) + " hex digits");
      v = v * 16 + static_cast<uint32_t>(d);
      ++pos_;
    }
    if (v > kMaxCodePoint || (v >= 0xD800 && v <= 0xDFFF))
      fail_at(escape_pos, "escape is not a valid code point");
    return v;
  }

  // One character of a literal or class: an escape or one UTF-8 encoded code point.
  uint32_t parse_char() {
    const size_t start = pos_;
    const unsigned char c = static_cast<unsigned char>(peek());
    if (c == '\\') {
      ++pos_;
      const char e = peek();
      ++pos_;
      switch (e) {
        case 'n': return '\n';
        case 'r': return '\r';
        case 't': return '\t';
        case '\\': case '"': case '[': case ']': case '-': case '^': return static_cast<unsigned char>(e);
        case 'x': return parse_hex(2, start);
        case 'u': return parse_hex(4, start);
        case 'U': return parse_hex(8, start);
        default:
          if (e == '\0' && at_end()) fail_at(start, "escape at end of grammar");
          fail_at(start, std::string("bad escape '\\") + e + "'");
      }
    }
    if (c < 0x80) {
      ++pos_;
      return c;
    }
    int extra = c >= 0xF0 && c <= 0xF4 ? 3 : c >= 0xE0 ? 2 : c >= 0xC2 && c < 0xE0 ? 1 : -1;
    if (c >= 0xF5) extra = -1;
    if (extra < 0) fail("invalid UTF-8");
    uint32_t cp = c & (0x3F >> extra);
    ++pos_;
    for (int i = 0; i < extra; ++i) {
      const unsigned char cc = static_cast<unsigned char>(peek());
      if ((cc & 0xC0) != 0x80) fail_at(start, "invalid UTF-8");
      cp = (cp << 6) | (cc & 0x3F);
      ++pos_;
    }
    static constexpr uint32_t kMinOfLength[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMinOfLength[extra] || cp > kMaxCodePoint || (cp >= 0xD800 && cp <= 0xDFFF))
      fail_at(start, "invalid UTF-8");
    return cp;
  }

  std::string_view text_;
  size_t pos_ = 0;
  GrammarBuilder builder_;
  std::map<size_t, uint32_t> first_use_;   // position of each reference -> rule
};

}  // namespace

Grammar parse_gbnf(std::string_view text, std::string_view root) {
  if (text.size() > kMaxGrammarBytes)
    throw Error("grammar: " + std::to_string(text.size()) + " bytes, over the limit of " +
                std::to_string(kMaxGrammarBytes));
  return GbnfParser(text).parse(root);
}

}  // namespace slm::grammar

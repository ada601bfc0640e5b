#include "chat/lexer.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "chat/utf8.h"
#include "slm/error.h"

namespace slm::jinja {

void syntax_error(int line, int col, const std::string& msg) {
  throw Error("chat template syntax error at line " + std::to_string(line) + ", column " +
              std::to_string(col) + ": " + msg);
}

namespace {

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
bool is_name_start(char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z' ? true : c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Python's str.rstrip() for the whitespace templates contain.
std::string rstrip_ws(const std::string& s) {
  size_t n = s.size();
  while (n > 0 && is_ws(s[n - 1])) --n;
  return s.substr(0, n);
}

class Lexer {
 public:
  explicit Lexer(const std::string& raw) {
    // Newlines become \n; one trailing newline is dropped (keep_trailing_newline off).
    src_.reserve(raw.size());
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '\r') {
        src_ += '\n';
        if (i + 1 < raw.size() && raw[i + 1] == '\n') ++i;
      } else {
        src_ += raw[i];
      }
    }
    if (!src_.empty() && src_.back() == '\n') src_.pop_back();
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i)
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
  }

  std::vector<Token> run() {
    bool line_starting = true;
    while (pos_ < src_.size()) {
      size_t tag = find_tag(pos_);
      if (tag == std::string::npos) {
        emit_text(src_.substr(pos_), pos_);
        pos_ = src_.size();
        break;
      }
      char kind = src_[tag + 1];  // '{', '%' or '#'
      char sign = tag + 2 < src_.size() ? src_[tag + 2] : 0;
      if (sign != '-' && sign != '+') sign = 0;
      std::string text = src_.substr(pos_, tag - pos_);
      size_t text_pos = pos_;
      if (sign == '-') {
        text = rstrip_ws(text);
      } else if (sign != '+' && kind != '{') {
        // lstrip_blocks: drop spaces between the start of the line and a block/comment tag.
        size_t l = text.rfind('\n');
        size_t lpos = l == std::string::npos ? 0 : l + 1;
        if ((lpos > 0 || line_starting) && lpos < text.size() &&
            std::all_of(text.begin() + lpos, text.end(), is_ws))
          text.resize(lpos);
      }
      emit_text(text, text_pos);
      size_t body = tag + 2 + (sign ? 1 : 0);
      if (kind == '#') {
        size_t end = src_.find("#}", body);
        if (end == std::string::npos) error_at(tag, "missing end of comment tag");
        char esign = end > body && (src_[end - 1] == '-' || src_[end - 1] == '+') ? src_[end - 1] : 0;
        pos_ = after_end(end + 2, esign, true);
      } else if (kind == '%' && is_raw_begin(body)) {
        lex_raw(tag);
      } else {
        Tok begin = kind == '{' ? Tok::VarBegin : Tok::BlockBegin;
        push(begin, kind == '{' ? "{{" : "{%", tag);
        pos_ = body;
        lex_expression(kind == '{', tag);
      }
      line_starting = pos_ > 0 && src_[pos_ - 1] == '\n';
    }
    push(Tok::Eof, "", src_.size());
    return std::move(toks_);
  }

 private:
  std::string src_;
  std::vector<size_t> line_starts_;
  std::vector<Token> toks_;
  size_t pos_ = 0;

  void locate(size_t at, int& line, int& col) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), at);
    size_t idx = size_t(it - line_starts_.begin()) - 1;
    line = int(idx + 1);
    col = int(at - line_starts_[idx] + 1);
  }
  [[noreturn]] void error_at(size_t at, const std::string& msg) const {
    int line, col;
    locate(at, line, col);
    syntax_error(line, col, msg);
  }
  Token& push(Tok t, std::string text, size_t at) {
    Token tok;
    tok.type = t;
    tok.text = std::move(text);
    locate(at, tok.line, tok.col);
    toks_.push_back(std::move(tok));
    return toks_.back();
  }
  void emit_text(const std::string& text, size_t at) {
    if (!text.empty()) push(Tok::Text, text, at);
  }

  size_t find_tag(size_t from) const {
    for (size_t i = src_.find('{', from); i != std::string::npos && i + 1 < src_.size();
         i = src_.find('{', i + 1)) {
      char c = src_[i + 1];
      if (c == '{' || c == '%' || c == '#') return i;
    }
    return std::string::npos;
  }

  // Position after a closing tag at `after` (just past "}}", "%}" or "#}").
  size_t after_end(size_t after, char sign, bool trim_newline) const {
    if (sign == '-') {
      while (after < src_.size() && is_ws(src_[after])) ++after;
    } else if (sign != '+' && trim_newline && after < src_.size() && src_[after] == '\n') {
      ++after;
    }
    return after;
  }

  bool match_word(size_t& p, const char* w) const {
    size_t n = std::char_traits<char>::length(w);
    if (src_.compare(p, n, w) != 0) return false;
    if (p + n < src_.size() && is_name_char(src_[p + n])) return false;
    p += n;
    return true;
  }
  void skip_ws(size_t& p) const {
    while (p < src_.size() && is_ws(src_[p])) ++p;
  }

  bool is_raw_begin(size_t p) const {
    skip_ws(p);
    if (!match_word(p, "raw")) return false;
    skip_ws(p);
    return src_.compare(p, 2, "%}") == 0 || src_.compare(p, 3, "-%}") == 0;
  }

  void lex_raw(size_t tag) {
    size_t p = tag + 2;
    while (src_[p] != '%') ++p;  // is_raw_begin checked the shape
    bool strip_after = src_[p - 1] == '-';
    p += 2;
    if (strip_after) skip_ws(p);
    // Find {% endraw %} (with optional modifiers).
    for (size_t q = src_.find("{%", p); q != std::string::npos; q = src_.find("{%", q + 2)) {
      size_t r = q + 2;
      char sign = (r < src_.size() && (src_[r] == '-' || src_[r] == '+')) ? src_[r] : 0;
      if (sign) ++r;
      skip_ws(r);
      if (!match_word(r, "endraw")) continue;
      skip_ws(r);
      char esign = (r < src_.size() && (src_[r] == '-' || src_[r] == '+')) ? src_[r] : 0;
      if (esign) ++r;
      if (src_.compare(r, 2, "%}") != 0) continue;
      std::string body = src_.substr(p, q - p);
      if (sign == '-') {
        body = rstrip_ws(body);
      } else if (sign != '+') {
        size_t l = body.rfind('\n');
        if (l != std::string::npos && std::all_of(body.begin() + l + 1, body.end(), is_ws))
          body.resize(l + 1);
      }
      emit_text(body, p);
      pos_ = after_end(r + 2, esign, true);
      return;
    }
    error_at(tag, "missing end of raw directive");
  }

  void lex_expression(bool var, size_t tag) {
    std::vector<char> balance;
    size_t& p = pos_;
    for (;;) {
      skip_ws(p);
      if (p >= src_.size()) error_at(tag, var ? "unexpected end of template, expected '}}'"
                                              : "unexpected end of template, expected '%}'");
      if (balance.empty()) {
        char sign = (src_[p] == '-' || (!var && src_[p] == '+')) ? src_[p] : 0;
        size_t q = p + (sign ? 1 : 0);
        if (src_.compare(q, 2, var ? "}}" : "%}") == 0) {
          push(var ? Tok::VarEnd : Tok::BlockEnd, var ? "}}" : "%}", p);
          p = after_end(q + 2, sign, !var);
          return;
        }
      }
      char c = src_[p];
      if (is_digit(c)) {
        lex_number();
      } else if (is_name_start(c)) {
        size_t s = p;
        while (p < src_.size() && is_name_char(src_[p])) ++p;
        push(Tok::Name, src_.substr(s, p - s), s);
      } else if (c == '\'' || c == '"') {
        lex_string();
      } else {
        static const char* ops[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%",
                                    "~", "<", ">", "=", "(", ")", "[", "]", "{", "}", ".",
                                    ",", ":", "|", ";"};
        const char* found = nullptr;
        for (const char* op : ops)
          if (src_.compare(p, std::char_traits<char>::length(op), op) == 0) {
            found = op;
            break;
          }
        if (!found) error_at(p, std::string("unexpected character '") + c + "'");
        std::string op = found;
        if (op == "(" || op == "[" || op == "{") {
          balance.push_back(op == "(" ? ')' : op == "[" ? ']' : '}');
        } else if (op == ")" || op == "]" || op == "}") {
          if (balance.empty()) error_at(p, "unexpected '" + op + "'");
          if (balance.back() != op[0])
            error_at(p, "unexpected '" + op + "', expected '" + std::string(1, balance.back()) + "'");
          balance.pop_back();
        }
        push(Tok::Op, op, p);
        p += op.size();
      }
    }
  }

  void lex_number() {
    size_t s = pos_, p = pos_;
    auto digits = [&](size_t& q) {
      size_t start = q;
      while (q < src_.size() && (is_digit(src_[q]) || (src_[q] == '_' && q > start && q + 1 < src_.size() && is_digit(src_[q + 1])))) ++q;
      return q > start;
    };
    digits(p);
    bool is_float = false;
    // After a '.', as in items.0.1, numbers are attribute indices, never floats.
    bool after_dot = s > 0 && src_[s - 1] == '.';
    if (!after_dot && p + 1 < src_.size() && src_[p] == '.' && is_digit(src_[p + 1])) {
      ++p;
      digits(p);
      is_float = true;
    }
    if (!after_dot && p < src_.size() && (src_[p] == 'e' || src_[p] == 'E')) {
      size_t q = p + 1;
      if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
      if (q < src_.size() && is_digit(src_[q])) {
        digits(q);
        p = q;
        is_float = true;
      }
    }
    std::string text;
    for (size_t k = s; k < p; ++k)
      if (src_[k] != '_') text += src_[k];
    Token& t = push(is_float ? Tok::Float : Tok::Int, text, s);
    if (is_float) {
      t.fval = std::strtod(text.c_str(), nullptr);
    } else {
      errno = 0;
      t.ival = std::strtoll(text.c_str(), nullptr, 10);
      if (errno == ERANGE) error_at(s, "integer literal too large");
    }
    pos_ = p;
  }

  void lex_string() {
    size_t s = pos_;
    char q = src_[pos_++];
    std::string out;
    for (;;) {
      if (pos_ >= src_.size()) error_at(s, "unterminated string");
      char c = src_[pos_++];
      if (c == q) break;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= src_.size()) error_at(s, "unterminated string");
      char e = src_[pos_++];
      auto hex = [&](int n) {
        if (pos_ + n > src_.size()) error_at(s, "truncated \\x/\\u escape");
        uint32_t v = 0;
        for (int k = 0; k < n; ++k) {
          char h = src_[pos_++];
          int d = is_digit(h) ? h - '0' : ((h | 0x20) >= 'a' && (h | 0x20) <= 'f') ? (h | 0x20) - 'a' + 10 : -1;
          if (d < 0) error_at(s, "bad hex digit in escape");
          v = v * 16 + uint32_t(d);
        }
        return v;
      };
      switch (e) {
        case '\n': break;  // line continuation
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case 'x': utf8_append(out, hex(2)); break;
        case 'u': utf8_append(out, hex(4)); break;
        case 'U': utf8_append(out, hex(8)); break;
        default:
          if (e >= '0' && e <= '7') {
            uint32_t v = uint32_t(e - '0');
            for (int k = 0; k < 2 && pos_ < src_.size() && src_[pos_] >= '0' && src_[pos_] <= '7'; ++k)
              v = v * 8 + uint32_t(src_[pos_++] - '0');
            utf8_append(out, v);
          } else {
            out += '\\';  // unknown escapes stay as written, like Python
            out += e;
          }
      }
    }
    push(Tok::String, std::move(out), s);
  }
};

}  // namespace

std::vector<Token> tokenize(const std::string& source) { return Lexer(source).run(); }

}  // namespace slm::jinja

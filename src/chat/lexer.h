// Lexer: splits a Jinja template into text and tag tokens, applying jinja2's whitespace
// rules on the way (trim_blocks, lstrip_blocks, the '-' and '+' modifiers, one trailing
// newline dropped, \r\n and \r read as \n). Comments vanish here; {% raw %} becomes text.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace slm::jinja {

enum class Tok { Text, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, Eof };

struct Token {
  Tok type = Tok::Eof;
  std::string text;  // Text, Name, String (decoded), Op
  int64_t ival = 0;
  double fval = 0;
  int line = 1, col = 1;
};

std::vector<Token> tokenize(const std::string& source);

// "line L, column C: msg" as an slm::Error.
[[noreturn]] void syntax_error(int line, int col, const std::string& msg);

}  // namespace slm::jinja

// GBNF, llama.cpp's grammar format, parsed into a Grammar.
//
//   root  ::= "{" ws pair ("," ws pair)* "}"     # rules, literals, sequences, groups
//   pair  ::= [a-z_]+ ":" ws (value | "null")?   # classes, alternation, quantifiers * + ?
//   digit ::= [0-9]{1,3}                         # bounded repetition {m} {m,} {m,n}
//
// Literals and classes take the escapes \n \r \t \\ \" \[ \] \- \^ \xHH \uHHHH \UHHHHHHHH;
// `.` is any character; `[^...]` a negated class; `#` starts a comment; newlines may appear
// inside parentheses and after `|`. Rule names are letters, digits, '-' and '_'.
#pragma once
#include <cstddef>
#include <string_view>

#include "grammar/rules.h"

namespace slm::grammar {

inline constexpr size_t kMaxGrammarBytes = 1 << 20;
inline constexpr int kMaxGrammarNesting = 1000;  // parentheses inside parentheses

// Throws slm::Error with one line naming the line and column at fault, e.g.
// "grammar line 3 col 7: unknown rule 'valu'".
Grammar parse_gbnf(std::string_view text, std::string_view root = "root");

}  // namespace slm::grammar

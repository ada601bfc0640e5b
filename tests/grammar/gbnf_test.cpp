// GBNF parsing and matching: grammars like llama.cpp's json, arithmetic and list examples
// (written here from their description), UTF-8, repetition bounds, byte-split characters,
// and one-line errors for bad grammars.
#include <gtest/gtest.h>

#include "grammar/grammar.h"
#include "grammar_test_util.h"
#include "slm/error.h"

using namespace slm::grammar;
using slm::grammar::test::accepts;
using slm::grammar::test::compile;
using slm::grammar::test::is_prefix;

namespace {

const char* const kJsonGrammar = R"g(# JSON with optional whitespace
root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws

object ::=
  "{" ws (
            string ":" ws value
    ("," ws string ":" ws value)*
  )? "}" ws

array  ::=
  "[" ws (
            value
    ("," ws value)*
  )? "]" ws

string ::=
  "\"" (
    [^"\\\x7F\x00-\x1F] |
    "\\" (["\\bfnrt/] | "u" [0-9a-fA-F]{4}) # escapes
  )* "\"" ws

number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9]{1,16})? ws
ws ::= | " " | "\n" [ \t]{0,20}
)g";

const char* const kArithmeticGrammar = R"g(
root  ::= (expr "=" ws term "\n")+
expr  ::= term ([-+*/] term)*
term  ::= ident | num | "(" ws expr ")" ws
ident ::= [a-z] [a-z0-9_]* ws
num   ::= [0-9]+ ws
ws    ::= [ \t\n]*
)g";

const char* const kListGrammar = R"g(
root ::= item+
# Excludes various line break characters
item ::= "- " [^\r\n\x0b\x0c\x85\u2028\u2029]+ "\n"
)g";

TEST(Gbnf, JsonGrammarAcceptsJson) {
  auto g = compile(kJsonGrammar);
  for (const char* ok : {"{}", "{\"a\":1}", "{ \"a\": [1, 2.5, -3e10, true, null], \"b\": {\"c\": \"x\\n\\u00e9\"} }",
                         "{\"k\": \"caf\xC3\xA9 \xE2\x82\xAC\"}", "{\n  \"a\": 0\n}", "{\"a\":[]}", "{\"a\":[{}, []]}"})
    EXPECT_TRUE(accepts(g, ok)) << ok;
  for (const char* bad : {"", "[]", "{", "{\"a\"}", "{\"a\":}", "{\"a\":01}", "{\"a\":1,}", "{'a':1}",
                          "{\"a\":\"\x01\"}", "{\"a\":tru}", "{\"a\":1} x", "{\"a\":\"\\q\"}"})
    EXPECT_FALSE(accepts(g, bad)) << bad;
  EXPECT_TRUE(is_prefix(g, "{\"a\": [1, 2"));
  EXPECT_FALSE(is_prefix(g, "{\"a\": [1, 2}"));
}

TEST(Gbnf, ArithmeticGrammar) {
  auto g = compile(kArithmeticGrammar);
  for (const char* ok : {"1+2=3\n", "(a +b) *c = d\n", "x=1\ny = (2)\n", "((1))=2\n", "a_1/b2-3=c\n"})
    EXPECT_TRUE(accepts(g, ok)) << ok;
  for (const char* bad : {"1+=3\n", "(1=1\n", "1+2\n", "=1\n", "A=1\n", "1=2", ")1(=2\n"})
    EXPECT_FALSE(accepts(g, bad)) << bad;
}

TEST(Gbnf, ListGrammar) {
  auto g = compile(kListGrammar);
  EXPECT_TRUE(accepts(g, "- one\n- two items\n- \xE2\x82\xAC\n"));
  EXPECT_FALSE(accepts(g, ""));
  EXPECT_FALSE(accepts(g, "- \n"));
  EXPECT_FALSE(accepts(g, "* one\n"));
  EXPECT_FALSE(accepts(g, "- one"));
  EXPECT_FALSE(accepts(g, "- a\xE2\x80\xA8" "b\n"));  // U+2028 excluded
}

TEST(Gbnf, RepetitionBounds) {
  auto exact = compile("root ::= \"a\"{3}");
  EXPECT_FALSE(accepts(exact, "aa"));
  EXPECT_TRUE(accepts(exact, "aaa"));
  EXPECT_FALSE(accepts(exact, "aaaa"));
  auto range = compile("root ::= [0-9]{2,4} \"x\"");
  EXPECT_FALSE(accepts(range, "1x"));
  EXPECT_TRUE(accepts(range, "12x"));
  EXPECT_TRUE(accepts(range, "1234x"));
  EXPECT_FALSE(accepts(range, "12345x"));
  auto at_least = compile("root ::= (\"ab\"){2,}");
  EXPECT_FALSE(accepts(at_least, "ab"));
  EXPECT_TRUE(accepts(at_least, "abab"));
  EXPECT_TRUE(accepts(at_least, "abababab"));
  EXPECT_FALSE(accepts(at_least, "ababa"));
  auto zero = compile("root ::= \"a\"{0} \"b\"");
  EXPECT_TRUE(accepts(zero, "b"));
  EXPECT_FALSE(accepts(zero, "ab"));
  auto optional = compile("root ::= \"a\"? \"b\"* \"c\"+");
  EXPECT_TRUE(accepts(optional, "c"));
  EXPECT_TRUE(accepts(optional, "abbccc"));
  EXPECT_FALSE(accepts(optional, "aab"));
  // A long bounded repetition stays cheap: tail calls keep the stacks flat.
  auto big = compile("root ::= [a-z]{0,10000}");
  slm::grammar::Matcher m(big);
  EXPECT_TRUE(m.advance(std::string(10000, 'q')));
  EXPECT_TRUE(m.accepting());
  EXPECT_FALSE(m.can_continue());
  EXPECT_FALSE(m.advance("q"));
}

TEST(Gbnf, Utf8ClassesAndAnyChar) {
  auto g = compile("root ::= [а-я€]+ . [^a-z]");
  EXPECT_TRUE(accepts(g, "при€x!"));
  EXPECT_TRUE(accepts(g, "я\xF0\x9F\x98\x80\xE2\x82\xAC"));  // . takes a 4-byte character
  EXPECT_FALSE(accepts(g, "abc!!"));
  EXPECT_FALSE(accepts(g, "яxa"));
  auto escapes = compile(R"(root ::= "\x41\u00e9\U0001F600\t\"\\" [\[\]\-])");
  EXPECT_TRUE(accepts(escapes, "A\xC3\xA9\xF0\x9F\x98\x80\t\"\\]"));
  EXPECT_TRUE(accepts(escapes, "A\xC3\xA9\xF0\x9F\x98\x80\t\"\\-"));
}

TEST(Gbnf, CharacterSplitAcrossAdvances) {
  auto g = compile("root ::= \"price: \" [0-9]+ \"€\"");  // € is E2 82 AC
  Matcher m(g);
  ASSERT_TRUE(m.advance("price: 12"));
  ASSERT_TRUE(m.advance("\xE2"));
  EXPECT_FALSE(m.accepting());
  EXPECT_FALSE(m.advance("\xE2"));   // not a continuation byte
  EXPECT_FALSE(m.advance("\x83"));   // E2 83 .. is not € (the prefix is checked at once)
  ASSERT_TRUE(m.advance("\x82"));
  ASSERT_TRUE(m.advance("\xAC"));
  EXPECT_TRUE(m.accepting());
  // Invalid UTF-8 never matches, even under '.'.
  auto any = compile("root ::= .*");
  for (const char* bad : {"\xC0\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\x80", "\xFF"})
    EXPECT_FALSE(is_prefix(any, bad)) << bad;
}

TEST(Gbnf, SnapshotsAreIndependent) {
  auto g = compile(kJsonGrammar);
  Matcher m(g);
  ASSERT_TRUE(m.advance("{\"a\":"));
  Matcher copy = m;
  ASSERT_TRUE(copy.advance("1}"));
  EXPECT_TRUE(copy.accepting());
  EXPECT_FALSE(m.accepting());
  EXPECT_FALSE(m.advance("]"));  // rejected: state unchanged
  EXPECT_TRUE(m.advance("[true]}"));
  EXPECT_TRUE(m.accepting());
}

TEST(Gbnf, RecursionAndNullableLoops) {
  auto parens = compile("root ::= \"(\" root \")\" | \"\"");
  EXPECT_TRUE(accepts(parens, "((()))"));
  EXPECT_FALSE(accepts(parens, "(()"));
  // (x?)* can match empty forever without consuming; tail calls make that harmless.
  auto nullable_loop = compile("root ::= (\"a\"?)* \"b\"");
  EXPECT_TRUE(accepts(nullable_loop, "aaab"));
  EXPECT_TRUE(accepts(nullable_loop, "b"));
  // Nesting deeper than the stack bound is refused as input, not a crash.
  EXPECT_FALSE(accepts(parens, std::string(5000, '(') + std::string(5000, ')')));
  auto other_root = parse_gbnf("start ::= \"x\"", "start");
  EXPECT_EQ(other_root.rules[other_root.root].name, "start");
}

std::string error_of(const std::string& gbnf) {
  try {
    parse_gbnf(gbnf);
  } catch (const slm::Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Gbnf, BadGrammarsGiveOneLineErrors) {
  const std::pair<const char*, const char*> cases[] = {
      {"root ::= value\nvalue ::= \"x\" valu", "grammar line 2 col 15: unknown rule 'valu'"},
      {"root ::= \"a\"\nroot ::= \"b\"", "grammar line 2 col 1: rule 'root' is defined twice"},
      {"root ::= \"abc", "grammar line 1 col 10: unterminated string literal"},
      {"root ::= [a-z", "grammar line 1 col 10: unterminated character class"},
      {"root ::= \"\\q\"", "grammar line 1 col 11: bad escape '\\q'"},
      {"root ::= \"\\x4\"", "grammar line 1 col 11: escape needs 2 hex digits"},
      {"root ::= \"\\uD800\"", "grammar line 1 col 11: escape is not a valid code point"},
      {"root ::= [z-a]", "grammar line 1 col 11: character range out of order"},
      {"root ::= []", "grammar line 1 col 10: empty character class"},
      {"root ::= (\"a\"", "grammar line 1 col 10: unclosed '('"},
      {"root ::= \"a\"{3,2}", "grammar line 1 col 13: repetition {m,n} with n < m"},
      {"root ::= \"a\"{20000}", "grammar line 1 col 18: repetition count over 10000"},
      {"root \"a\"", "grammar line 1 col 6: expected '::=' after rule name 'root'"},
      {"root ::= \"a\" )", "grammar line 1 col 14: unexpected ')'"},
      {"other ::= \"a\"", "grammar: no rule 'root' to start from"},
      {"root ::= root \"a\" | \"b\"", "grammar: rule 'root' is left-recursive (it can reach itself without consuming input)"},
      {"root ::= expr\nexpr ::= term \"+\" expr | term\nterm ::= (\"x\")? expr \"y\"",
       "grammar: rule 'expr' is left-recursive (it can reach itself without consuming input)"},
      {"root ::= (\"a\"{1000}){1000}{1000}", "grammar too large after expanding repetitions (over 2000000 symbols)"},
  };
  for (const auto& [gbnf, message] : cases) {
    const std::string got = error_of(gbnf);
    EXPECT_EQ(got, message) << gbnf;
    EXPECT_EQ(got.find('\n'), std::string::npos);
  }
  EXPECT_EQ(error_of(std::string(kMaxGrammarBytes + 1, ' ')), "grammar: 1048577 bytes, over the limit of 1048576");
  EXPECT_EQ(error_of("root ::= " + std::string(1001, '(') + "\"a\"" + std::string(1001, ')')),
            "grammar line 1 col 1010: parentheses nested deeper than 1000");
  EXPECT_EQ(error_of("root ::= \"\xC3\""), "grammar line 1 col 11: invalid UTF-8");
}

TEST(Gbnf, ExplodingAmbiguityIsRefused) {
  // After n 'a's every sequence of n closers (b or c) is still possible: 2^n stacks.
  auto g = compile("root ::= x\nx ::= \"a\" x \"b\" | \"a\" x \"c\" | \"\"");
  slm::grammar::Matcher m(g);
  std::string message;
  try {
    for (int i = 0; i < 64; ++i) m.advance("a");
  } catch (const slm::Error& e) {
    message = e.what();
  }
  EXPECT_EQ(message, "grammar too ambiguous: over 4096 ways to parse the input at once");
}

}  // namespace

// Expressions: literals, operators and their precedence, Python printing, attribute and
// item access, slicing and undefined values. Expectations follow Python/jinja2 semantics.
#include <gtest/gtest.h>

#include "chat/render.h"
#include "slm/error.h"

using slm::test::J;
using slm::test::render;

TEST(ChatExpr, PrintsValuesThePythonWay) {
  EXPECT_EQ(render("{{ true }} {{ false }} {{ none }} {{ 3 }} {{ 2.5 }} {{ 3.0 }}"), "True False None 3 2.5 3.0");
  EXPECT_EQ(render("{{ ['a', 1, none, true] }}"), "['a', 1, None, True]");
  EXPECT_EQ(render("{{ {'k': 'v', 'n': [1.5]} }}"), "{'k': 'v', 'n': [1.5]}");
  EXPECT_EQ(render("{{ (1, 2) }}{{ (1,) }}{{ () }}"), "(1, 2)(1,)()");
  EXPECT_EQ(render("{{ [\"it's\"] }}{{ ['say \"hi\"'] }}{{ ['a\\nb'] }}"), "[\"it's\"]['say \"hi\"']['a\\nb']");
  EXPECT_EQ(render("{{ 1e-5 }} {{ 1e16 }} {{ 1e15 }} {{ 0.1 + 0.2 }} {{ 1 / 3 }}"),
            "1e-05 1e+16 1000000000000000.0 0.30000000000000004 0.3333333333333333");
  EXPECT_EQ(render("{{ v }}", J(R"({"v": {"a": [1, 2.0, null, false, "x"]}})")),
            "{'a': [1, 2.0, None, False, 'x']}");
}

TEST(ChatExpr, Arithmetic) {
  EXPECT_EQ(render("{{ 2 + 3 * 4 }} {{ (2 + 3) * 4 }} {{ 2 ** 3 }} {{ 2 ** -1 }}"), "14 20 8 0.5");
  EXPECT_EQ(render("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7.5 % 2 }} {{ 10 / 4 }}"),
            "3 -4 1 2 1.5 2.5");
  EXPECT_EQ(render("{{ -3 }} {{ - 2.5 }} {{ +4 }} {{ 10 - 2 - 3 }}"), "-3 -2.5 4 5");
  EXPECT_EQ(render("{{ true + 1 }} {{ 'ab' * 3 }} {{ [0] * 2 }} {{ [1] + [2] }}"), "2 ababab [0, 0] [1, 2]");
  EXPECT_EQ(render("{{ 1 ~ 2 * 3 }}"), "16");  // * binds tighter than ~ ...
  EXPECT_THROW(render("{{ 'a' ~ 1 + 2 }}"), slm::Error);  // ... and ~ tighter than +
  EXPECT_THROW(render("{{ 1 / 0 }}"), slm::Error);
  EXPECT_THROW(render("{{ 'a' + 1 }}"), slm::Error);
}

TEST(ChatExpr, ComparisonsAndLogic) {
  EXPECT_EQ(render("{{ 1 < 2 < 3 }}{{ 3 > 2 > 2 }}{{ 1 == 1.0 }}{{ 1 == true }}{{ 'a' != 'b' }}"),
            "TrueFalseTrueTrueTrue");
  EXPECT_EQ(render("{{ 'b' in 'abc' }}{{ 2 in [1, 2] }}{{ 'k' in {'k': 1} }}{{ 3 not in [1] }}"),
            "TrueTrueTrueTrue");
  EXPECT_EQ(render("{{ 0 or 'x' }}|{{ 1 and 'y' }}|{{ [] and 1 }}|{{ not none }}"), "x|y|[]|True");
  EXPECT_EQ(render("{{ not 1 == 2 }}"), "True");  // not binds looser than ==
  EXPECT_EQ(render("{{ [1, 2] < [1, 3] }}{{ 'a' < 'b' }}"), "TrueTrue");
}

TEST(ChatExpr, ConditionalExpression) {
  EXPECT_EQ(render("{{ 'a' if 1 else 'b' }}{{ 'a' if 0 else 'b' }}{{ 'c' if 0 }}"), "ab");
  EXPECT_EQ(render("{{ 1 if 0 else 2 if 0 else 3 }}"), "3");
}

TEST(ChatExpr, AttributeItemAndSlice) {
  auto ctx = J(R"({"o": {"a": {"b": [10, 20, 30]}}, "s": "0123456789"})");
  EXPECT_EQ(render("{{ o.a.b[1] }}{{ o['a']['b'][-1] }}{{ o.a.b.0 }}", ctx), "203010");
  EXPECT_EQ(render("{{ s[2:5] }}|{{ s[::3] }}|{{ s[::-1] }}|{{ s[-3:] }}|{{ s[8:100] }}", ctx),
            "234|0369|9876543210|789|89");
  EXPECT_EQ(render("{{ o.a.b[1:] }}{{ o.a.b[::-2] }}", ctx), "[20, 30][30, 10]");
  EXPECT_EQ(render("{{ 'héllo'[1] }}{{ 'héllo'|length }}{{ 'héllo'[::-1] }}"), "é5olléh");
}

TEST(ChatExpr, UndefinedFollowsJinja2) {
  auto ctx = J(R"({"o": {}, "n": null})");
  EXPECT_EQ(render("[{{ missing }}][{{ o.missing }}][{{ o['x'] }}][{{ n.x }}]", ctx), "[][][][]");
  EXPECT_EQ(render("{{ missing is defined }}{{ o.x is undefined }}{{ missing|length }}", ctx), "FalseTrue0");
  EXPECT_EQ(render("{% for x in missing %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{{ missing ~ 'a' }}{{ not missing }}"), "aTrue");
  EXPECT_THROW(render("{{ missing.attr }}"), slm::Error);  // attribute of undefined raises
  EXPECT_THROW(render("{{ missing + 1 }}"), slm::Error);
  EXPECT_THROW(render("{{ missing() }}"), slm::Error);
}

TEST(ChatExpr, StringLiteralsAndEscapes) {
  EXPECT_EQ(render(R"({{ 'a\'b' }}{{ "c\"d" }}{{ 'x' "y" }}{{ 'tab\there' }}{{ '\u00e9' }})"), "a'bc\"dxytab\there\xc3\xa9");
}

TEST(ChatExpr, DictAndListLiterals) {
  EXPECT_EQ(render("{{ {'a': 1, 'b': [1, {'c': 2}]}['b'][1].c }}"), "2");
  EXPECT_EQ(render("{{ [1, 2, 3,]|length }}{{ {'k': 'v',}|length }}"), "31");
  EXPECT_EQ(render("{% set k = 'key' %}{{ {k: 1} }}"), "{'key': 1}");
}

// Statements: if/elif/else, for (loop variables, else, filtering, break/continue, unpacking),
// set (plain, tuple, block, namespace), macros with defaults and caller, call and filter
// blocks, with, generation. Expectations worked out by hand from jinja2's semantics.
#include <gtest/gtest.h>

#include "chat/render.h"
#include "slm/error.h"

using slm::test::J;
using slm::test::render;

TEST(ChatStmt, IfElifElse) {
  const char* src = "{% if x == 1 %}one{% elif x == 2 %}two{% else %}many{% endif %}";
  EXPECT_EQ(render(src, J(R"({"x": 1})")), "one");
  EXPECT_EQ(render(src, J(R"({"x": 2})")), "two");
  EXPECT_EQ(render(src, J(R"({"x": 7})")), "many");
}

TEST(ChatStmt, LoopVariables) {
  EXPECT_EQ(render("{% for x in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}"
                   "{{ loop.revindex0 }}{{ loop.first|int }}{{ loop.last|int }}{{ loop.length }} {% endfor %}"),
            "1032103 2121003 3210013 ");
  EXPECT_EQ(render("{% for x in [1, 2, 3] %}{{ loop.previtem }}-{{ loop.nextitem }},{% endfor %}"), "-2,1-3,2-,");
  EXPECT_EQ(render("{% for x in [1, 2, 3] %}{{ loop.cycle('a', 'b') }}{% endfor %}"), "aba");
  EXPECT_EQ(render("{% for x in [1, 1, 2, 1] %}{{ loop.changed(x)|int }}{% endfor %}"), "1011");
}

TEST(ChatStmt, LoopElseFilterBreakContinue) {
  EXPECT_EQ(render("{% for x in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for x in [1, 2, 3, 4] if x is even %}{{ x }}/{{ loop.length }} {% endfor %}"), "2/2 4/2 ");
  EXPECT_EQ(render("{% for x in [1, 2, 3, 4, 5] %}{% if x == 2 %}{% continue %}{% endif %}"
                   "{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}"),
            "13");
  EXPECT_EQ(render("{% for x in [1, 2] %}{% for y in [1, 2] %}{% break %}{% endfor %}{{ x }}{% endfor %}"), "12");
}

TEST(ChatStmt, LoopUnpackingAndDicts) {
  auto ctx = J(R"({"d": {"b": 2, "a": 1}})");
  EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", ctx), "b=2;a=1;");
  EXPECT_EQ(render("{% for k in d %}{{ k }}{% endfor %}", ctx), "ba");
  EXPECT_EQ(render("{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}"), "37");
  EXPECT_THROW(render("{% for a, b in [[1, 2, 3]] %}{% endfor %}"), slm::Error);
  EXPECT_THROW(render("{% for x in 5 %}{% endfor %}"), slm::Error);
}

TEST(ChatStmt, RecursiveLoops) {
  EXPECT_EQ(render("{% for x in [[1, [2]], 3] recursive %}{% if x is sequence %}({{ loop(x) }}){% else %}"
                   "{{ x }}@{{ loop.depth }}{% endif %}{% endfor %}"),
            "(1@2(2@3))3@1");
  EXPECT_THROW(render("{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}"), slm::Error);
}

TEST(ChatStmt, ScopingOfSet) {
  // A set inside a loop stays inside (and is fresh each iteration); if-blocks do not scope.
  EXPECT_EQ(render("{% set t = 0 %}{% for x in [1, 2] %}{% set t = t + x %}{{ t }}{% endfor %}{{ t }}"), "120");
  EXPECT_EQ(render("{% if true %}{% set a = 5 %}{% endif %}{{ a }}"), "5");
  EXPECT_EQ(render("{% set ns = namespace(t=0) %}{% for x in [1, 2, 3] %}{% set ns.t = ns.t + x %}{% endfor %}{{ ns.t }}"), "6");
  EXPECT_EQ(render("{% set a, b = 1, 'z' %}{{ b }}{{ a }}"), "z1");
  EXPECT_THROW(render("{% set d = {} %}{% set d.x = 1 %}"), slm::Error);  // only namespaces
}

TEST(ChatStmt, BlockSet) {
  EXPECT_EQ(render("{% set x %}a{{ 1 + 1 }}b{% endset %}[{{ x }}]"), "[a2b]");
  EXPECT_EQ(render("{% set x | upper %}abc{% endset %}{{ x }}"), "ABC");
}

TEST(ChatStmt, Macros) {
  EXPECT_EQ(render("{% macro m(a, b='B', c=none) %}{{ a }}{{ b }}{{ c }}{% endmacro %}"
                   "{{ m(1) }}|{{ m(1, 2) }}|{{ m(1, c=3) }}"),
            "1BNone|12None|1B3");
  EXPECT_EQ(render("{% macro m(a) %}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, k=4) }}"), "(2, 3){'k': 4}");
  EXPECT_EQ(render("{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}{% endmacro %}{{ fact(5) }}"),
            "120");
  EXPECT_EQ(render("{% macro add(a, b, c) %}{{ a + b + c }}{% endmacro %}{{ add(*[1, 2], **{'c': 3}) }}"), "6");
}

TEST(ChatStmt, CallBlocks) {
  EXPECT_EQ(render("{% macro wrap(t) %}<{{ t }}>{{ caller() }}</{{ t }}>{% endmacro %}"
                   "{% call wrap('b') %}in{% endcall %}"),
            "<b>in</b>");
  EXPECT_EQ(render("{% macro each(xs) %}{% for x in xs %}{{ caller(x) }}{% endfor %}{% endmacro %}"
                   "{% call(x) each([1, 2]) %}[{{ x }}]{% endcall %}"),
            "[1][2]");
}

TEST(ChatStmt, FilterWithGeneration) {
  EXPECT_EQ(render("{% filter upper %}ab{{ 'c' }}{% endfilter %}"), "ABC");
  EXPECT_EQ(render("{% filter replace('a', 'x')|upper %}aba{% endfilter %}"), "XBX");
  EXPECT_EQ(render("{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]"), "3[]");
  EXPECT_EQ(render("A{% generation %}B{% endgeneration %}C"), "ABC");
}

TEST(ChatStmt, Globals) {
  EXPECT_EQ(render("{{ range(3)|list }}{{ range(1, 7, 2)|list }}{{ range(3, 0, -1)|list }}"), "[0, 1, 2][1, 3, 5][3, 2, 1]");
  EXPECT_EQ(render("{{ dict(a=1, b='x') }}{{ namespace(a=1).a }}"), "{'a': 1, 'b': 'x'}1");
  EXPECT_EQ(render("{% set j = joiner('/') %}{% for x in 'ab' %}{{ j() }}{{ x }}{% endfor %}"), "a/b");
  try {
    render("{{ raise_exception('no system role') }}");
    FAIL() << "raise_exception did not throw";
  } catch (const slm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no system role"), std::string::npos);
  }
}

TEST(ChatStmt, StrftimeNowUsesTheGivenClock) {
  slm::ChatTemplateOptions opt;
  std::tm t{};
  t.tm_year = 2025 - 1900;
  t.tm_mon = 6;
  t.tm_mday = 4;
  t.tm_hour = 9;
  t.tm_wday = 5;
  t.tm_yday = 184;
  opt.now = t;
  EXPECT_EQ(slm::ChatTemplate("{{ strftime_now('%Y-%m-%d %H:%M %d %B %Y %A') }}").render(J("[]"), opt),
            "2025-07-04 09:00 04 July 2025 Friday");
}

TEST(ChatStmt, StandardVariables) {
  slm::ChatTemplateOptions opt;
  opt.bos_token = "<s>";
  opt.eos_token = "</s>";
  opt.add_generation_prompt = true;
  const char* src = "{{ bos_token }}{% for m in messages %}{{ m.role }}:{{ m.content }}{% endfor %}"
                    "{{ add_generation_prompt }}{{ tools is none }}{{ documents is none }}{{ eos_token }}";
  EXPECT_EQ(slm::ChatTemplate(src).render(J(R"([{"role":"user","content":"hi"}])"), opt),
            "<s>user:hiTrueTrueTrue</s>");
  opt.extra = J(R"({"tools": [{"name": "f"}]})");
  EXPECT_EQ(slm::ChatTemplate("{{ tools[0].name }}").render(J("[]"), opt), "f");
}

// Parenthesised tuple targets and words that are keywords elsewhere used as plain names, as
// Python's jinja2 renders them (expected strings from jinja2 3.1).
TEST(ChatStmt, TupleTargetsAndKeywordNames) {
  using slm::test::render;
  EXPECT_EQ(render("{% set (x, y) = [1, 2] %}{{ x }}-{{ y }}"), "1-2");
  EXPECT_EQ(render("{% set (a) = 5 %}{{ a }}"), "5");
  EXPECT_EQ(render("{% for (k, v) in [[1, 2], [3, 4]] %}{{ k }}{{ v }};{% endfor %}"), "12;34;");
  EXPECT_EQ(render("{% set if = 2 %}{{ if }}"), "2");
  EXPECT_EQ(render("{% set in = 3 %}{{ in + 1 }}"), "4");
  EXPECT_EQ(render("{% set recursive = 'r' %}{{ recursive }}"), "r");
  EXPECT_EQ(render("{% set endfor = 1 %}{% for i in [1] %}{{ endfor + i }}{% endfor %}"), "2");
  EXPECT_EQ(render("{% set x = 1 if true else 0 %}{{ x }}"), "1");
}

// Bad input: syntax errors name line and column; runaway templates stop with slm::Error
// (never a hang or a crash).
#include <gtest/gtest.h>

#include <chrono>

#include "chat/render.h"
#include "slm/chat.h"
#include "slm/error.h"

using slm::test::render;

namespace {

std::string error_of(const std::string& src) {
  try {
    render(src);
  } catch (const slm::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(ChatLimits, SyntaxErrorsNameLineAndColumn) {
  std::string e = error_of("line one\n{% if x %}\n{{ 1 + }}\n{% endif %}");
  EXPECT_NE(e.find("line 3"), std::string::npos) << e;
  EXPECT_NE(e.find("column"), std::string::npos) << e;
  EXPECT_NE(error_of("{% if x %}never closed").find("line 1"), std::string::npos);
  EXPECT_NE(error_of("a\n\n  {% unknown_tag %}").find("line 3, column 6"), std::string::npos)
      << error_of("a\n\n  {% unknown_tag %}");
  for (const char* bad : {"{{ 'unterminated }}", "{{ x ", "{% for %}{% endfor %}", "{{ (1, 2 }}",
                          "{# never closed", "{% endif %}", "{{ ] }}", "{% set %}", "{{ a.  }}",
                          "{% macro m( %}{% endmacro %}", "{{ 1 +* 2 }}", "{% raw %}x"})
    EXPECT_THROW(render(bad), slm::Error) << bad;
}

TEST(ChatLimits, EndlessLoopStops) {
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_THROW(render("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"),
               slm::Error);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30));
}

TEST(ChatLimits, EndlessRecursionStops) {
  EXPECT_THROW(render("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}"), slm::Error);
  EXPECT_THROW(render("{% macro r() %}{% call r() %}{% endcall %}{% endmacro %}{{ r() }}"), slm::Error);
}

TEST(ChatLimits, HugeStringsAndListsStop) {
  EXPECT_THROW(render("{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"),
               slm::Error);
  EXPECT_THROW(render("{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = ns.l + ns.l %}{% endfor %}"),
               slm::Error);
  EXPECT_THROW(render("{{ 'x' * 100000000000000 }}"), slm::Error);
  EXPECT_THROW(render("{{ range(1000000000)|length }}"), slm::Error);
  EXPECT_THROW(render("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}"), slm::Error);
}

TEST(ChatLimits, DeepNestingIsRefusedNotCrashed) {
  EXPECT_THROW(render("{{ " + std::string(100000, '[') + std::string(100000, ']') + " }}"), slm::Error);
  EXPECT_THROW(render("{{ " + std::string(100000, '(') + "1" + std::string(100000, ')') + " }}"), slm::Error);
  std::string chain = "{{ 1";
  for (int i = 0; i < 100000; ++i) chain += " ~ 1";
  EXPECT_THROW(render(chain + " }}"), slm::Error);
  std::string ifs;
  for (int i = 0; i < 10000; ++i) ifs += "{% if true %}";
  EXPECT_THROW(render(ifs), slm::Error);
  // Values nest a few hundred deep at most; deeper ones are refused when stored.
  const char* deep = "{% set ns = namespace(l=[]) %}{% for i in range(N) %}{% set ns.l = [ns.l] %}{% endfor %}";
  auto with_n = [&](const char* n) { std::string s = deep; return s.replace(s.find('N'), 1, n); };
  EXPECT_EQ(render(with_n("300") + "{{ ns.l|tojson|length }}"), "602");
  EXPECT_THROW(render(with_n("100000")), slm::Error);
  EXPECT_THROW(render("{% set l = [] %}{{ l.append(l) }}{{ l }}"), slm::Error);
}

TEST(ChatLimits, RuntimeErrorsNameTheLine) {
  std::string e = error_of("ok\n{{ 1 }}\n{{ missing.attr }}");
  EXPECT_NE(e.find("line 3"), std::string::npos) << e;
  EXPECT_NE(e.find("missing"), std::string::npos) << e;
}

// Messages nested far deeper than any template reads are refused with slm::Error while they
// become template values (this recursion once overflowed the stack).
TEST(ChatLimits, DeeplyNestedMessagesAreAnErrorNotACrash) {
  // Built in place: copying a value this deep would itself recurse (nlohmann copies recursively).
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  messages.push_back({{"role", "user"}, {"content", "hi"}});
  nlohmann::ordered_json* cur = &messages[0]["extra"];
  for (int i = 0; i < 5000; ++i) {
    *cur = nlohmann::ordered_json::array({nullptr});
    cur = &(*cur)[0];
  }
  slm::ChatTemplate tpl("{% for m in messages %}{{ m.content }}{% endfor %}");
  EXPECT_THROW(tpl.render(messages, {}), slm::Error);
  // Nothing that deep renders fine.
  nlohmann::ordered_json ok = {{{"role", "user"}, {"content", "hi"}, {"extra", {{{1, {2, {3}}}}}}}};
  EXPECT_EQ(tpl.render(ok, {}), "hi");
}

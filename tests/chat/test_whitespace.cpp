// Lexing: tags, comments, raw blocks and jinja2's whitespace rules with trim_blocks and
// lstrip_blocks on. Expected strings are worked out by hand from those rules.
#include <gtest/gtest.h>

#include "chat/render.h"

using slm::test::render;

TEST(ChatWhitespace, TrimBlocksEatsOneNewlineAfterABlockTag) {
  EXPECT_EQ(render("{% if true %}\nA\n{% endif %}\nB"), "A\nB");
  EXPECT_EQ(render("{% if true %}\n\nA{% endif %}"), "\nA");  // only one
  EXPECT_EQ(render("{{ 'x' }}\nB"), "x\nB");                   // not after {{ }}
  EXPECT_EQ(render("{# c #}\nB"), "B");                        // comments too
}

TEST(ChatWhitespace, LstripBlocksDropsIndentBeforeBlockTags) {
  EXPECT_EQ(render("  {% if true %}\n  A\n  {% endif %}\nB"), "  A\nB");
  EXPECT_EQ(render("x  {% if true %}y{% endif %}"), "x  y");  // not at line start
  EXPECT_EQ(render("  {{ 'v' }}"), "  v");                    // never before {{
  EXPECT_EQ(render("\t{# c #}\nA"), "A");
}

TEST(ChatWhitespace, MinusAndPlusModifiers) {
  EXPECT_EQ(render("A \n {{- 'B' -}} \n C"), "ABC");
  EXPECT_EQ(render("A\n  {%- if true -%}\n  B  {%- endif %}"), "AB");
  EXPECT_EQ(render("  {%+ if true %}x{% endif %}"), "  x");   // + keeps the indent
  EXPECT_EQ(render("{% if true +%}\nx{% endif %}"), "\nx");   // + keeps the newline
  EXPECT_EQ(render("X{#- comment -#}  Y"), "XY");
}

TEST(ChatWhitespace, OneTrailingNewlineIsDropped) {
  EXPECT_EQ(render("A\n"), "A");
  EXPECT_EQ(render("A\n\n"), "A\n");
  EXPECT_EQ(render("A\r\nB\r\n"), "A\nB");  // \r\n reads as \n
}

TEST(ChatWhitespace, RawBlocksAreText) {
  EXPECT_EQ(render("{% raw %}{{ x }}{% if %}{% endraw %}"), "{{ x }}{% if %}");
  EXPECT_EQ(render("a {%- raw -%}  b  {%- endraw -%} c"), "abc");
}

TEST(ChatWhitespace, TagLookalikesInStrings) {
  EXPECT_EQ(render("{{ '{{ x }}' ~ \"%}\" }}"), "{{ x }}%}");
  EXPECT_EQ(render("{{ {'a': {'b': 1}}['a']['b'] }}"), "1");  // }} inside an expression
}

TEST(ChatWhitespace, ForLoopLayoutAsInChatTemplates) {
  const char* src =
      "{%- for m in messages %}\n"
      "    <{{ m.role }}>\n"
      "{%- endfor %}\n";
  EXPECT_EQ(render(src, slm::test::J("{}"), slm::test::J(R"([{"role":"a"},{"role":"b"}])")),
            "    <a>    <b>");
}

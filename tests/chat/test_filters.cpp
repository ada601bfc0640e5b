// Filters, tests and Python methods, with expectations from their documented semantics.
#include <gtest/gtest.h>

#include "chat/render.h"
#include "slm/error.h"

using slm::test::J;
using slm::test::render;

TEST(ChatFilters, StringFilters) {
  EXPECT_EQ(render("{{ '  a b  '|trim }}|{{ 'xxaxx'|trim('x') }}|{{ 'aBc'|upper }}{{ 'aBc'|lower }}"), "a b|a|ABCabc");
  EXPECT_EQ(render("{{ 'hello wORLD'|capitalize }}|{{ 'hello-wORLD x(y'|title }}"), "Hello world|Hello-World X(Y");
  EXPECT_EQ(render("{{ 'a-b-c'|replace('-', '+') }}{{ 'aaa'|replace('a', 'b', 2) }}"), "a+b+cbba");
  EXPECT_EQ(render("{{ 'one two  three'|wordcount }}{{ 'ab'|center(6) }}|{{ '<&>\"'|escape }}"), "3  ab  |&lt;&amp;&gt;&#34;");
  EXPECT_EQ(render("{{ 'a\nb\n\nc'|indent(2) }}|{{ 'a\nb'|indent(2, true) }}"), "a\n  b\n\n  c|  a\n  b");
  EXPECT_EQ(render("{{ 'abcdefghijklmnopqrstuvwxyz'|truncate(10) }}"), "abcdefg...");
  EXPECT_EQ(render("{{ 3|string ~ 1.5|string }}{{ 'é'|length }}"), "31.51");
}

TEST(ChatFilters, NumberFilters) {
  EXPECT_EQ(render("{{ '42'|int + 1 }} {{ 'x'|int }} {{ 'x'|int(-1) }} {{ 2.9|int }} {{ '2.9'|int }} {{ true|int }}"),
            "43 0 -1 2 2 1");
  EXPECT_EQ(render("{{ '1.5'|float }} {{ 'x'|float }} {{ 2|float }}"), "1.5 0.0 2.0");
  EXPECT_EQ(render("{{ -3|abs }} {{ 2.5|round }} {{ 3.5|round }} {{ 1.26|round(1) }} {{ 1.21|round(1, 'ceil') }}"),
            "3 2.0 4.0 1.3 1.3");
  EXPECT_EQ(render("{{ [3, 1, 2]|max }}{{ [3, 1, 2]|min }}{{ [3, 1, 2]|sum }}{{ [1, 2]|sum(start=10) }}"), "31613");
}

TEST(ChatFilters, DefaultFilter) {
  EXPECT_EQ(render("{{ missing|default('d') }}|{{ none|default('d') }}|{{ ''|default('d') }}|{{ ''|d('d', true) }}"),
            "d|None||d");
}

TEST(ChatFilters, SequenceFilters) {
  auto ctx = J(R"({"users": [{"n": "b", "age": 30}, {"n": "a", "age": 25}, {"n": "c", "age": 35}]})");
  EXPECT_EQ(render("{{ users|map(attribute='n')|join(',') }}", ctx), "b,a,c");
  EXPECT_EQ(render("{{ users|sort(attribute='age')|map(attribute='n')|list }}", ctx), "['a', 'b', 'c']");
  EXPECT_EQ(render("{{ users|selectattr('age', 'gt', 26)|map(attribute='n')|list }}", ctx), "['b', 'c']");
  EXPECT_EQ(render("{{ users|rejectattr('age', 'equalto', 25)|list|length }}", ctx), "2");
  EXPECT_EQ(render("{{ users|join(', ', attribute='n') }}|{{ users|max(attribute='age') }}", ctx),
            "b, a, c|{'n': 'c', 'age': 35}");
  EXPECT_EQ(render("{{ [1, 2, 3, 4]|select('odd')|list }}{{ [1, 2, 3]|reject('odd')|list }}{{ [0, 1, '']|select|list }}"),
            "[1, 3][2][1]");
  EXPECT_EQ(render("{{ ['b', 'A', 'c']|sort }}{{ ['b', 'A', 'c']|sort(case_sensitive=true) }}{{ [3, 1]|sort(reverse=true) }}"),
            "['A', 'b', 'c']['A', 'b', 'c'][3, 1]");
  EXPECT_EQ(render("{{ [1, 2, 1, 3]|unique|list }}{{ ['a', 'A']|unique|list }}"), "[1, 2, 3]['a']");
  EXPECT_EQ(render("{{ [1, 2, 3]|first }}{{ [1, 2, 3]|last }}{{ 'xyz'|first }}{{ [1, 2]|reverse|list }}{{ 'ab'|reverse }}"),
            "13x[2, 1]ba");
  EXPECT_EQ(render("{{ [1, 2, 3, 4, 5]|batch(2)|list }}{{ [1, 2, 3]|batch(2, 0)|list }}"), "[[1, 2], [3, 4], [5]][[1, 2], [3, 0]]");
  EXPECT_EQ(render("{{ 'ab'|list }}{{ ['x', 'y']|map('upper')|list }}{{ [[1], [1, 2]]|map('length')|list }}"),
            "['a', 'b']['X', 'Y'][1, 2]");
  EXPECT_EQ(render("{{ [1, 2]|length }}{{ {'a': 1}|count }}{{ 'abc'|length }}"), "213");
}

TEST(ChatFilters, DictFilters) {
  auto ctx = J(R"({"d": {"b": 2, "a": 3, "C": 1}})");
  EXPECT_EQ(render("{{ d|dictsort }}", ctx), "[('a', 3), ('b', 2), ('C', 1)]");
  EXPECT_EQ(render("{{ d|dictsort(true) }}", ctx), "[('C', 1), ('a', 3), ('b', 2)]");
  EXPECT_EQ(render("{{ d|dictsort(by='value', reverse=true) }}", ctx), "[('a', 3), ('b', 2), ('C', 1)]");
  EXPECT_EQ(render("{{ d|items|list }}", ctx), "[('b', 2), ('a', 3), ('C', 1)]");
}

TEST(ChatFilters, ToJson) {
  auto ctx = J(R"({"o": {"name": "f", "args": {"x": [1, 2.5, true, null]}, "s": "é\n\"<>"}})");
  EXPECT_EQ(render("{{ o|tojson }}", ctx),
            R"({"name": "f", "args": {"x": [1, 2.5, true, null]}, "s": "é\n\"<>"})");
  EXPECT_EQ(render("{{ o.args|tojson(indent=2) }}", ctx), "{\n  \"x\": [\n    1,\n    2.5,\n    true,\n    null\n  ]\n}");
  EXPECT_EQ(render("{{ o.args|tojson(separators=(',', ':')) }}", ctx), R"({"x":[1,2.5,true,null]})");
  EXPECT_EQ(render("{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }}"), R"({"a": 2, "b": 1})");
  EXPECT_EQ(render("{{ 'é😀'|tojson(ensure_ascii=true) }}"), R"("\u00e9\ud83d\ude00")");
  EXPECT_EQ(render("{{ [1.0, 1e20, (1, 2)]|tojson }}"), "[1.0, 1e+20, [1, 2]]");
  EXPECT_EQ(render("{{ []|tojson(indent=2) }}{{ {}|tojson }}"), "[]{}");
}

TEST(ChatFilters, Tests) {
  EXPECT_EQ(render("{{ 3 is odd }}{{ 3 is even }}{{ 9 is divisibleby 3 }}{{ 9 is divisibleby(2) }}"), "TrueFalseTrueFalse");
  EXPECT_EQ(render("{{ 'a' is string }}{{ 1 is number }}{{ 1 is integer }}{{ 1.0 is float }}{{ 1.0 is integer }}"),
            "TrueTrueTrueTrueFalse");
  EXPECT_EQ(render("{{ {} is mapping }}{{ [] is sequence }}{{ 'a' is iterable }}{{ 1 is iterable }}{{ none is none }}"),
            "TrueTrueTrueFalseTrue");
  EXPECT_EQ(render("{{ true is boolean }}{{ true is true }}{{ 1 is true }}{{ false is false }}{{ range is callable }}"),
            "TrueTrueFalseTrueTrue");
  EXPECT_EQ(render("{{ 1 is eq 1 }}{{ 1 is ne 1 }}{{ 1 is lt 2 }}{{ 2 is le 1 }}{{ 2 is gt 1 }}{{ 1 is ge 1 }}"),
            "TrueFalseTrueFalseTrueTrue");
  EXPECT_EQ(render("{{ 2 is in [1, 2] }}{{ 'abc' is lower }}{{ 'ABC' is upper }}{{ x is sameas x }}{{ x is not defined }}"),
            "TrueTrueTrueTrueTrue");
}

TEST(ChatFilters, StringMethods) {
  EXPECT_EQ(render("{{ '  a  '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ ' a '.lstrip() }}|{{ ' a '.rstrip() }}|"), "a|a|a | a|");
  EXPECT_EQ(render("{{ ' a  b '.split() }}{{ 'a,b,,c'.split(',') }}{{ 'a,b,c'.split(',', 1) }}{{ 'a,b,c'.rsplit(',', 1) }}"),
            "['a', 'b']['a', 'b', '', 'c']['a', 'b,c']['a,b', 'c']");
  EXPECT_EQ(render("{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'c')) }}{{ 'abcb'.find('b') }}{{ 'abcb'.rfind('b') }}"
                   "{{ 'abcb'.find('z') }}{{ 'abcb'.count('b') }}"),
            "TrueTrue13-12");
  EXPECT_EQ(render("{{ 'a-b'.replace('-', '+') }}{{ ', '.join(['x', 'y']) }}{{ 'ab cd'.title() }}{{ 'aB'.upper() }}{{ 'aB'.lower() }}"
                   "{{ 'aB'.capitalize() }}"),
            "a+bx, yAb CdABabAb");
  EXPECT_EQ(render("{{ '{} and {name}'.format(1, name='n') }}{{ '%s=%d %.2f' % ('k', 3, 1.0) }}"), "1 and nk=3 1.00");
}

TEST(ChatFilters, DictAndListMethods) {
  auto ctx = J(R"({"d": {"a": 1, "b": 2}})");
  EXPECT_EQ(render("{{ d.keys()|list }}{{ d.values()|list }}{{ d.items()|list }}", ctx), "['a', 'b'][1, 2][('a', 1), ('b', 2)]");
  EXPECT_EQ(render("{{ d.get('a') }}{{ d.get('z') }}{{ d.get('z', 0) }}", ctx), "1None0");
  EXPECT_EQ(render("{% set l = [1] %}{{ l.append(2) }}{{ l }}{{ l.pop() }}{{ l }}"), "None[1, 2]2[1]");
  EXPECT_EQ(render("{{ [1, 2, 1].count(1) }}{{ [5, 6].index(6) }}"), "21");
}

TEST(ChatFilters, SafeStringsBehaveLikeMarkup) {
  // markupsafe: Markup + str escapes the str; ~ joins plain strings; escape is idempotent.
  EXPECT_EQ(render("{{ ('<a>'|safe) + '<b>' }}|{{ '<b>' + ('<a>'|safe) }}|{{ ('<a>'|safe) ~ '<b>' }}"),
            "<a>&lt;b&gt;|&lt;b&gt;<a>|<a><b>");
  EXPECT_EQ(render("{{ '<'|escape + '<' }}|{{ '<'|e|e }}|{{ ('%s<'|safe) % '<' }}|{{ ('<a>'|safe)|upper + '<' }}"),
            "&lt;&lt;|&lt;|&lt;<|<A>&lt;");
}

TEST(ChatFilters, UnknownFilterOrTestIsAnError) {
  EXPECT_THROW(render("{{ 1|no_such_filter }}"), slm::Error);
  EXPECT_THROW(render("{{ 1 is no_such_test }}"), slm::Error);
}

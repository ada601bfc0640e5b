// JSON Schema -> GBNF: each keyword on hand-written instances, exact integer ranges,
// formats, patterns, the refusals of unsupported keywords, and the example schemas of
// ../shared/schemas with valid and invalid instances.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "grammar_test_util.h"
#include "schema_checker.h"
#include "slm/error.h"

using namespace slm::grammar;
using slm::grammar::test::accepts;
using slm::grammar::test::compile;
using Json = nlohmann::ordered_json;

namespace {

std::shared_ptr<const Grammar> from_schema(const std::string& schema_text) {
  return compile(json_schema_to_gbnf(Json::parse(schema_text)));
}

Json shared_schema(const std::string& name) {
  return Json::parse(slm::test::read_file(slm::test::shared("schemas/" + name + ".json")));
}

std::string error_of(const std::string& schema_text) {
  try {
    json_schema_to_gbnf(Json::parse(schema_text));
  } catch (const slm::Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(JsonSchema, IntegerRangesAreExact) {
  const std::pair<int64_t, int64_t> ranges[] = {{1, 120}, {-5, 5}, {-120, -7}, {0, 0}, {7, 1234}, {100, 999},
                                                {-1000, 99}, {19, 21}, {0, 9}, {10, 10}};
  for (const auto& [lo, hi] : ranges) {
    auto g = from_schema(R"({"type":"integer","minimum":)" + std::to_string(lo) + R"(,"maximum":)" + std::to_string(hi) + "}");
    for (int64_t v = lo - 150; v <= hi + 150; ++v)
      EXPECT_EQ(accepts(g, std::to_string(v)), v >= lo && v <= hi) << lo << ".." << hi << ": " << v;
    EXPECT_FALSE(accepts(g, "-0"));
    EXPECT_FALSE(accepts(g, "0" + std::to_string(std::max<int64_t>(lo, 1))));
    EXPECT_FALSE(accepts(g, std::to_string(lo) + ".0"));
  }
  auto open_low = from_schema(R"({"type":"integer","exclusiveMinimum":-3.5,"exclusiveMaximum":3})");
  for (int v = -10; v <= 10; ++v) EXPECT_EQ(accepts(open_low, std::to_string(v)), v >= -3 && v <= 2) << v;
  auto at_least = from_schema(R"({"type":"integer","minimum":42})");
  EXPECT_TRUE(accepts(at_least, "42"));
  EXPECT_TRUE(accepts(at_least, "123456789012"));
  EXPECT_FALSE(accepts(at_least, "41"));
  EXPECT_FALSE(accepts(at_least, "-50"));
  auto any_int = from_schema(R"({"type":"integer"})");
  EXPECT_TRUE(accepts(any_int, "-17"));
  EXPECT_FALSE(accepts(any_int, "1.5"));
  EXPECT_FALSE(accepts(any_int, "01"));
}

TEST(JsonSchema, BoundedNumbersAlwaysValidate) {
  const char* schemas[] = {R"({"type":"number","minimum":0,"maximum":10000})",
                           R"({"type":"number","minimum":-2.5,"maximum":2.5})",
                           R"({"type":"number","exclusiveMinimum":0,"exclusiveMaximum":1.5})",
                           R"({"type":"number","minimum":-100,"exclusiveMaximum":-10})",
                           R"({"type":"number","minimum":0.5})"};
  for (const char* text : schemas) {
    const Json schema = Json::parse(text);
    auto g = compile(json_schema_to_gbnf(schema));
    int accepted = 0;
    for (int i = -20000; i <= 20000; i += (i > -400 && i < 400) ? 1 : 7) {
      for (const char* fmt : {"%.0f", "%.1f", "%.3f"}) {
        char buf[64];
        std::snprintf(buf, sizeof buf, fmt, i / 4.0);
        if (!accepts(g, buf)) continue;
        ++accepted;
        EXPECT_EQ(test::check(Json::parse(buf), schema), "") << text << " " << buf;
      }
    }
    EXPECT_GT(accepted, 3) << text;
  }
  auto g = from_schema(R"({"type":"number","minimum":0,"maximum":10000})");
  for (const char* ok : {"0", "10000", "9999.99", "0.5", "123.25"}) EXPECT_TRUE(accepts(g, ok)) << ok;
  for (const char* bad : {"-1", "10000.5", "10001", "1e3", "00.5", "-0.5"}) EXPECT_FALSE(accepts(g, bad)) << bad;
  auto plain = from_schema(R"({"type":"number"})");
  for (const char* ok : {"0", "-0.25", "1e10", "3.14E-2", "-7"}) EXPECT_TRUE(accepts(plain, ok)) << ok;
  for (const char* bad : {"01", ".5", "1.", "+1", "1e", "NaN"}) EXPECT_FALSE(accepts(plain, bad)) << bad;
}

TEST(JsonSchema, StringsAndLengths) {
  auto g = from_schema(R"({"type":"string","minLength":2,"maxLength":4})");
  EXPECT_FALSE(accepts(g, R"("a")"));
  EXPECT_TRUE(accepts(g, R"("ab")"));
  EXPECT_TRUE(accepts(g, "\"\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\""));  // four characters, 12 bytes
  EXPECT_TRUE(accepts(g, R"("a\"\\\u00e9")"));  // escapes count as one character
  EXPECT_FALSE(accepts(g, R"("abcde")"));
  auto any = from_schema(R"({"type":"string"})");
  for (const char* ok : {R"("")", R"("\/\b\f\n\r\t")", R"("\ud83d\ude00")", R"("\uFFFF")"}) EXPECT_TRUE(accepts(any, ok)) << ok;
  for (const char* bad : {"\"\x01\"", R"("\ud800")", R"("\x")", R"("\u12")", R"("a)", "\"\t\""})
    EXPECT_FALSE(accepts(any, bad)) << bad;
}

TEST(JsonSchema, Formats) {
  auto date = from_schema(R"({"type":"string","format":"date"})");
  for (int year : {1999, 2000, 2023, 2024, 2100, 2400}) {
    for (int month = 0; month <= 13; ++month) {
      for (int day = 0; day <= 32; ++day) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", year, month, day);
        EXPECT_EQ(accepts(date, std::string("\"") + buf + "\""), test::valid_date(buf)) << buf;
      }
    }
  }
  auto time = from_schema(R"({"type":"string","format":"time"})");
  for (const char* ok : {"\"00:00:00Z\"", "\"23:59:59.123+05:30\"", "\"12:30:00-00:00\""}) EXPECT_TRUE(accepts(time, ok)) << ok;
  for (const char* bad : {"\"24:00:00Z\"", "\"12:60:00Z\"", "\"12:00:00\"", "\"12:00:00+24:00\""}) EXPECT_FALSE(accepts(time, bad)) << bad;
  auto date_time = from_schema(R"({"type":"string","format":"date-time"})");
  EXPECT_TRUE(accepts(date_time, "\"2024-02-29T08:15:00Z\""));
  EXPECT_FALSE(accepts(date_time, "\"2023-02-29T08:15:00Z\""));
  auto uuid = from_schema(R"({"type":"string","format":"uuid"})");
  EXPECT_TRUE(accepts(uuid, "\"123e4567-e89b-12d3-a456-426614174000\""));
  EXPECT_FALSE(accepts(uuid, "\"123e4567e89b-12d3-a456-426614174000\""));
  auto email = from_schema(R"({"type":"string","format":"email"})");
  EXPECT_TRUE(accepts(email, "\"john.doe+x@mail.example.org\""));
  for (const char* bad : {"\"@x.org\"", "\"a@b\"", "\"a..b@x.org\"", "\"a@-x.org\""}) EXPECT_FALSE(accepts(email, bad)) << bad;
  auto ipv4 = from_schema(R"({"type":"string","format":"ipv4"})");
  EXPECT_TRUE(accepts(ipv4, "\"192.168.0.255\""));
  EXPECT_FALSE(accepts(ipv4, "\"192.168.0.256\""));
  EXPECT_FALSE(accepts(ipv4, "\"01.2.3.4\""));
}

TEST(JsonSchema, Patterns) {
  struct Case {
    const char* pattern;
    std::vector<const char*> strings;
  };
  const Case cases[] = {
      {"^INV-[0-9]{4}$", {"INV-0001", "INV-001", "INV-00012", "XINV-0001", "INV-abcd"}},
      {"^[a-z]+\\d{2}$", {"ab12", "a1", "12", "abc123", "Ab12"}},
      {"^(foo|bar)?-[^x]{1,3}$", {"foo-a", "-abc", "bar-", "baz-a", "-xa", "foo-\"q"}},
      {"ab|cd", {"xxabyy", "cd", "ac", "", "a b"}},
      {"^\\w+\\.\\s?$", {"a_1.", "a_1. ", "a.b", ".", "ab.\t"}},
      {"^[^\\d\\s]{2}$", {"ab", "a1", "a ", "abc"}},
      {"^a.c$", {"abc", "a\nc", "ac", "abbc"}},
  };
  for (const Case& c : cases) {
    const Json schema = {{"type", "string"}, {"pattern", c.pattern}};
    auto g = compile(json_schema_to_gbnf(schema));
    for (const char* s : c.strings) {
      const std::string encoded = Json(s).dump();
      // std::regex works on bytes; the cases keep non-ASCII where that does not matter.
      const bool matches = std::regex_search(std::string(s), std::regex(c.pattern));
      EXPECT_EQ(accepts(g, encoded), matches) << c.pattern << " on " << encoded;
    }
  }
  // Characters are code points (std::regex above counts bytes, so these are checked here).
  EXPECT_TRUE(accepts(compile(json_schema_to_gbnf(Json{{"pattern", "^[^\\d\\s]{2}$"}})), "\"\xC3\xA9\xC3\xA9\""));
  EXPECT_TRUE(accepts(compile(json_schema_to_gbnf(Json{{"pattern", "^a.c$"}})), "\"a\xE2\x82\xAC" "c\""));
  EXPECT_EQ(error_of(R"({"type":"string","pattern":"(?=a)b"})"),
            "json schema: pattern '(?=a)b': lookarounds and named groups are not supported");
  EXPECT_EQ(error_of(R"({"type":"string","pattern":"(a)\\1"})"), "json schema: pattern '(a)\\1': escape '\\1' is not supported");
  EXPECT_EQ(error_of(R"({"type":"string","pattern":"a^b"})"), "json schema: pattern 'a^b': anchor '^' only at the start or end");
}

TEST(JsonSchema, ObjectsRequiredOptionalAndOrder) {
  auto g = from_schema(R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"boolean"},"c":{"type":"null"}},
                          "required":["b"],"additionalProperties":false})");
  for (const char* ok : {R"({"b":true})", R"({"a":1,"b":false})", R"({"b":true,"c":null})", R"({"a":1,"b":true,"c":null})"})
    EXPECT_TRUE(accepts(g, ok)) << ok;
  for (const char* bad : {"{}", R"({"a":1})", R"({"b":true,})", R"({,"b":true})", R"({"b":true,"a":1})", R"({"b":true,"d":1})",
                          R"({"a":1,,"b":true})"})
    EXPECT_FALSE(accepts(g, bad)) << bad;
  // additionalProperties defaults to true: other keys with any value, never a declared one.
  auto open = from_schema(R"({"type":"object","properties":{"name":{"type":"string"}}})");
  for (const char* ok : {"{}", R"({"name":"x"})", R"({"other":[1,{"y":null}]})", R"({"name":"x","n":1,"nam":2,"names":3})"})
    EXPECT_TRUE(accepts(open, ok)) << ok;
  for (const char* bad : {R"({"name":1})", R"({"name":"x","name":"y"})", R"({"\u006eame":1})"})
    EXPECT_FALSE(accepts(open, bad)) << bad;
  auto typed_extra = from_schema(R"({"type":"object","additionalProperties":{"type":"integer"},"minProperties":1,"maxProperties":2})");
  EXPECT_FALSE(accepts(typed_extra, "{}"));
  EXPECT_TRUE(accepts(typed_extra, R"({"x":1})"));
  EXPECT_TRUE(accepts(typed_extra, R"({"x":1,"y":2})"));
  EXPECT_FALSE(accepts(typed_extra, R"({"x":1,"y":2,"z":3})"));
  EXPECT_FALSE(accepts(typed_extra, R"({"x":"s"})"));
  auto counted = from_schema(R"({"properties":{"a":{},"b":{},"c":{}},"additionalProperties":false,"minProperties":2,"maxProperties":2})");
  EXPECT_TRUE(accepts(counted, R"({"a":1,"c":2})"));
  EXPECT_FALSE(accepts(counted, R"({"a":1})"));
  EXPECT_FALSE(accepts(counted, R"({"a":1,"b":2,"c":3})"));
}

TEST(JsonSchema, ArraysEnumsConstAndCombinators) {
  auto bounded = from_schema(R"({"type":"array","items":{"type":"integer","minimum":0,"maximum":9},"minItems":2,"maxItems":3})");
  for (const char* ok : {"[1,2]", "[0,9,5]"}) EXPECT_TRUE(accepts(bounded, ok)) << ok;
  for (const char* bad : {"[]", "[1]", "[1,2,3,4]", "[1,10]", "[1,,2]", "[1,2,]"}) EXPECT_FALSE(accepts(bounded, bad)) << bad;
  auto tuple = from_schema(R"({"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"items":false,"minItems":1})");
  for (const char* ok : {R"(["a"])", R"(["a",1])"}) EXPECT_TRUE(accepts(tuple, ok)) << ok;
  for (const char* bad : {"[]", "[1]", R"(["a",1,2])"}) EXPECT_FALSE(accepts(tuple, bad)) << bad;
  auto any_array = from_schema(R"({"type":"array"})");
  EXPECT_TRUE(accepts(any_array, R"([1,"a",{"b":[]},null])"));
  auto e = from_schema(R"({"enum":["red",1,null,{"a":[1]}]})");
  for (const char* ok : {R"("red")", "1", "null", R"({"a":[1]})"}) EXPECT_TRUE(accepts(e, ok)) << ok;
  EXPECT_FALSE(accepts(e, R"("blue")"));
  auto typed_enum = from_schema(R"({"type":"string","enum":["a",2]})");
  EXPECT_TRUE(accepts(typed_enum, R"("a")"));
  EXPECT_FALSE(accepts(typed_enum, "2"));
  auto nullable = from_schema(R"({"type":["string","null"],"maxLength":1})");
  EXPECT_TRUE(accepts(nullable, "null"));
  EXPECT_TRUE(accepts(nullable, R"("x")"));
  EXPECT_FALSE(accepts(nullable, R"("xy")"));
  auto any_of = from_schema(R"({"anyOf":[{"type":"integer","minimum":5,"maximum":6},{"type":"boolean"}]})");
  EXPECT_TRUE(accepts(any_of, "5"));
  EXPECT_TRUE(accepts(any_of, "true"));
  EXPECT_FALSE(accepts(any_of, "7"));
  auto all_of = from_schema(R"({"allOf":[{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]},
                                        {"properties":{"b":{"type":"string"}},"required":["b"]}]})");
  EXPECT_TRUE(accepts(all_of, R"({"a":1,"b":"x"})"));
  EXPECT_FALSE(accepts(all_of, R"({"a":1})"));
  EXPECT_FALSE(accepts(all_of, R"({"a":"1","b":"x"})"));
  // additionalProperties beside allOf sees no properties of its own: every key is extra.
  EXPECT_EQ(error_of(R"({"allOf":[{"properties":{"a":{}},"required":["a"]}],"additionalProperties":false})"),
            "json schema: 'allOf': required property 'a' is forbidden by additionalProperties false at /");
  auto closed_part = from_schema(R"({"allOf":[{"properties":{"a":{"type":"integer"}},"additionalProperties":false},
                                             {"properties":{"b":{"type":"string"}}}]})");
  EXPECT_TRUE(accepts(closed_part, R"({"a":1})"));
  EXPECT_FALSE(accepts(closed_part, R"({"a":1,"b":"x"})"));  // the first part forbids b
  auto recursive = from_schema(R"({"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},
                                    "next":{"anyOf":[{"$ref":"#/$defs/node"},{"type":"null"}]}},"required":["v","next"],
                                    "additionalProperties":false}},"$ref":"#/$defs/node"})");
  EXPECT_TRUE(accepts(recursive, R"({"v":1,"next":{"v":2,"next":{"v":3,"next":null}}})"));
  EXPECT_FALSE(accepts(recursive, R"({"v":1,"next":{"v":2}})"));
  auto definitions = from_schema(R"({"definitions":{"x":{"const":"x"}},"type":"array","items":{"$ref":"#/definitions/x"}})");
  EXPECT_TRUE(accepts(definitions, R"(["x","x"])"));
  auto annotated = from_schema(R"({"$schema":"https://json-schema.org/draft/2020-12/schema","$id":"x","title":"t",
                                  "description":"d","default":1,"examples":[1],"type":"boolean"})");
  EXPECT_TRUE(accepts(annotated, "false"));
  auto any_object = compile(json_any_object_gbnf());
  EXPECT_TRUE(accepts(any_object, R"({"a":[1,2,{"b":null}],"c":"d"})"));
  EXPECT_FALSE(accepts(any_object, R"([1])"));
  EXPECT_FALSE(accepts(any_object, R"({"a": 1})"));  // compact: no whitespace
}

TEST(JsonSchema, UnsupportedKeywordsAreRefused) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"type":"object","properties":{"x":{"type":"object","patternProperties":{"a":{}}}}})",
       "json schema: unsupported keyword 'patternProperties' at /properties/x"},
      {R"({"type":"array","uniqueItems":true})", "json schema: unsupported keyword 'uniqueItems' at /"},
      {R"({"type":"integer","multipleOf":3})", "json schema: unsupported keyword 'multipleOf' at /"},
      {R"({"not":{"type":"string"}})", "json schema: unsupported keyword 'not' at /"},
      {R"({"type":"string","format":"uri"})", "json schema: unsupported format 'uri' at /"},
      {R"({"$ref":"http://example.com/s.json"})", "json schema: only local $ref ('#/...') is supported, not 'http://example.com/s.json' at /"},
      {R"({"$ref":"#/$defs/missing"})", "json schema: $ref '#/$defs/missing' does not resolve at /"},
      {R"({"type":"integer","minimum":5,"maximum":4})", "json schema: no integer between the bounds at /"},
      {R"({"type":"strin"})", "json schema: unknown type 'strin' at /"},
      {R"({"type":"string","minimum":1})", "json schema: unsupported keyword 'minimum' at /"},
      {R"({"type":"array","items":{"type":"string","maxLength":-1}})", "json schema: 'maxLength' must be a non-negative integer at /items"},
      {R"({"type":"string","maxLength":100000})", "json schema: 'maxLength' over 10000 at /"},
      {R"({"type":"object","required":["a"],"additionalProperties":false})",
       "json schema: required property 'a' is not allowed by additionalProperties at /"},
      {"false", "json schema: schema 'false' allows no value at /"},
      {"[1]", "json schema: a schema must be an object or a boolean at /"},
  };
  for (const auto& [schema, message] : cases) EXPECT_EQ(error_of(schema), message) << schema;
  std::string deep = R"({"type":"string"})";
  for (int i = 0; i < 100; ++i) deep = R"({"type":"array","items":)" + deep + "}";
  EXPECT_EQ(error_of(deep).substr(0, 45), "json schema: schema nested deeper than 64 at ");
}

// Hand-written instances of each example schema, compact and in the schema's key order.
struct Instances {
  const char* schema;
  std::vector<const char*> valid, invalid;
};

const Instances kExamples[] = {
    {"choice",
     {R"({"action":"stop"})", R"({"action":"move","steps":3})", R"({"action":"move","steps":9})"},
     {R"({"action":"move"})", R"({"action":"stop","steps":1})", R"({"action":"move","steps":0})",
      R"({"action":"move","steps":10})", R"({"action":"jump"})", "{}"}},
    {"defs_list",
     {R"([{"sku":"ab","qty":1}])", R"([{"sku":"","qty":20},{"sku":"abcdef","qty":5}])",
      R"([{"sku":"a","qty":1},{"sku":"b","qty":2},{"sku":"c","qty":3},{"sku":"d","qty":4}])"},
     {"[]", R"([{"sku":"abcdefg","qty":1}])", R"([{"sku":"a","qty":21}])", R"([{"sku":"a"}])",
      R"([{"sku":"a","qty":1},{"sku":"b","qty":2},{"sku":"c","qty":3},{"sku":"d","qty":4},{"sku":"e","qty":5}])",
      R"([{"sku":"a","qty":1,"x":1}])"}},
    {"invoice",
     {R"({"number":"INV-0001","total":0,"currency":"EUR","paid":true})",
      R"({"number":"INV-9999","total":9999.99,"currency":"GBP","paid":false})",
      R"({"number":"INV-1234","total":10000,"currency":"USD","paid":true})"},
     {R"({"number":"INV-0001","total":10000.5,"currency":"EUR","paid":true})",
      R"({"number":"INV-0001","total":-1,"currency":"EUR","paid":true})",
      R"({"number":"INV-001","total":1,"currency":"EUR","paid":true})",
      R"({"number":"XINV-0001","total":1,"currency":"EUR","paid":true})",
      R"({"number":"INV-0001","total":1,"currency":"JPY","paid":true})",
      R"({"number":"INV-0001","total":1,"currency":"EUR"})"}},
    {"meeting",
     {R"({"date":"2024-02-29","room":101,"title":"abc"})", R"({"date":"1999-12-31","room":null,"title":"sixteen chars ok"})"},
     {R"({"date":"2023-02-29","room":101,"title":"abc"})", R"({"date":"2024-13-01","room":101,"title":"abc"})",
      R"({"date":"2024-01-01","room":99,"title":"abc"})", R"({"date":"2024-01-01","room":1000,"title":"abc"})",
      R"({"date":"2024-01-01","room":100,"title":"ab"})", R"({"date":"2024-01-01","room":100,"title":"seventeen chars!!"})",
      R"({"date":"2024-01-01","title":"abc"})"}},
    {"review",
     {R"({"stars":5,"summary":""})", R"({"stars":1,"summary":"ok","pros":[]})",
      R"({"stars":3,"summary":"fine","pros":["a","b","0123456789"]})"},
     {R"({"stars":0,"summary":""})", R"({"stars":6,"summary":""})", R"({"stars":3,"summary":"x","pros":["a","b","c","d"]})",
      R"({"stars":3,"summary":"x","pros":["01234567890"]})", R"({"stars":3,"summary":"0123456789012345678901234567890"})",
      R"({"stars":3,"summary":"x","extra":1})", R"({"summary":"x"})"}},
};

TEST(JsonSchema, ExampleSchemasOnHandWrittenInstances) {
  for (const Instances& ex : kExamples) {
    const Json schema = shared_schema(ex.schema);
    auto g = compile(json_schema_to_gbnf(schema));
    for (const char* v : ex.valid) {
      EXPECT_EQ(test::check(Json::parse(v), schema), "") << ex.schema << " (checker) " << v;
      EXPECT_TRUE(accepts(g, v)) << ex.schema << " " << v;
    }
    for (const char* v : ex.invalid) {
      EXPECT_NE(test::check(Json::parse(v), schema), "") << ex.schema << " (checker) " << v;
      EXPECT_FALSE(accepts(g, v)) << ex.schema << " " << v;
    }
  }
}

}  // namespace

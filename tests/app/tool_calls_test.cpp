// Tool calls in model output: format detection on the real templates, parsing of hand-written
// replies in every format, the stream parser against the one-shot parse under any chunking,
// and replies rendered by the real templates parsed back.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <random>

#include "app/tool_calls.h"
#include "common/shared.h"
#include "slm/chat.h"

using namespace slm;
using nlohmann::json;
using ojson = nlohmann::ordered_json;

namespace {

struct ExpectedCall {
  std::string name;
  std::string arguments;  // JSON text, compared as values
  std::string id = {};    // checked when not empty
};

struct ReplyCase {
  std::string label;
  ToolCallFormat format;
  std::string text;
  std::string content;
  std::vector<ExpectedCall> calls;
};

bool alphanumeric(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char ch) { return std::isalnum(ch) != 0; });
}

void expect_id_shape(ToolCallFormat format, const std::string& id) {
  if (format == ToolCallFormat::mistral) {
    EXPECT_EQ(id.size(), 9u) << id;
  } else {
    ASSERT_EQ(id.rfind("call_", 0), 0u) << id;
    EXPECT_EQ(id.size(), 5u + 24u) << id;
  }
  EXPECT_TRUE(alphanumeric(format == ToolCallFormat::mistral ? id : id.substr(5))) << id;
}

void expect_reply(const ReplyCase& c, const ParsedReply& got) {
  SCOPED_TRACE(c.label);
  EXPECT_EQ(got.content, c.content);
  ASSERT_EQ(got.calls.size(), c.calls.size());
  for (std::size_t i = 0; i < c.calls.size(); ++i) {
    EXPECT_EQ(got.calls[i].name, c.calls[i].name);
    EXPECT_EQ(json::parse(got.calls[i].arguments), json::parse(c.calls[i].arguments)) << got.calls[i].arguments;
    EXPECT_EQ(got.calls[i].arguments, json::parse(got.calls[i].arguments).dump()) << "compact";
    if (!c.calls[i].id.empty()) {
      EXPECT_EQ(got.calls[i].id, c.calls[i].id);
    } else {
      expect_id_shape(c.format, got.calls[i].id);
    }
  }
}

const ToolCallFormat kHermes = ToolCallFormat::hermes, kMistral = ToolCallFormat::mistral,
                     kGranite = ToolCallFormat::granite, kFire = ToolCallFormat::firefunction,
                     kLlama = ToolCallFormat::llama3_json, kGeneric = ToolCallFormat::generic_json,
                     kNone = ToolCallFormat::none;

const std::string kWeather = R"({"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}})";
const std::string kWeatherArgs = R"({"city": "Paris", "unit": "celsius"})";
const std::string kTime = R"({"name": "get_time", "arguments": {"tz": "Europe/Paris"}})";
const std::string kTimeArgs = R"({"tz": "Europe/Paris"})";

std::vector<ReplyCase> reply_cases() {
  auto malformed = [](std::string label, ToolCallFormat format, std::string text) {
    return ReplyCase{std::move(label), format, text, text, {}};
  };
  return {
      // Hermes / Qwen.
      {"hermes single", kHermes, "<tool_call>\n" + kWeather + "\n</tool_call>", "", {{"get_weather", kWeatherArgs}}},
      {"hermes parallel", kHermes, "<tool_call>\n" + kWeather + "\n</tool_call>\n<tool_call>\n" + kTime + "\n</tool_call>", "",
       {{"get_weather", kWeatherArgs}, {"get_time", kTimeArgs}}},
      {"hermes content before", kHermes, "Let me look that up.\n\n<tool_call>\n" + kWeather + "\n</tool_call>",
       "Let me look that up.", {{"get_weather", kWeatherArgs}}},
      {"hermes whitespace", kHermes, "  <tool_call>  { \"name\" : \"ping\" ,\n\t\"arguments\" : { } }\n\n</tool_call>\n\n", "",
       {{"ping", "{}"}}},
      {"hermes arguments as a string", kHermes, R"(<tool_call>{"name": "f", "arguments": "{\"a\": [1, 2], \"b\": \"x\"}"}</tool_call>)",
       "", {{"f", R"({"a":[1,2],"b":"x"})"}}},
      {"hermes closing tag missing", kHermes, "<tool_call>\n" + kWeather + "\n</tool_c", "", {{"get_weather", kWeatherArgs}}},
      {"hermes closed by the next block", kHermes, "<tool_call>" + kWeather + "\n<tool_call>" + kTime + "</tool_call>", "",
       {{"get_weather", kWeatherArgs}, {"get_time", kTimeArgs}}},
      {"hermes text after", kHermes, "<tool_call>" + kWeather + "</tool_call>\nOne moment.", "One moment.",
       {{"get_weather", kWeatherArgs}}},
      {"hermes unknown tool kept", kHermes, R"(<tool_call>{"name": "no_such_tool", "arguments": {}}</tool_call>)", "",
       {{"no_such_tool", "{}"}}},
      {"hermes one bad block of two", kHermes,
       "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": }}</tool_call><tool_call>" + kTime + "</tool_call>",
       "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": }}</tool_call>", {{"get_time", kTimeArgs}}},
      {"hermes empty block then a call", kHermes, "<tool_call><tool_call>" + kTime + "</tool_call>", "<tool_call>",
       {{"get_time", kTimeArgs}}},
      malformed("hermes malformed json", kHermes, "Sure <tool_call>{\"name\": \"f\", \"arguments\": {\"a\": }}</tool_call>"),
      malformed("hermes unterminated", kHermes, "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": 1"),
      malformed("hermes no name", kHermes, "<tool_call>{\"arguments\": {}}</tool_call>"),
      malformed("hermes arguments not an object", kHermes, "<tool_call>{\"name\": \"f\", \"arguments\": [1]}</tool_call>"),
      malformed("hermes prose in the block", kHermes, "<tool_call> I would call get_weather here </tool_call> ok"),
      malformed("hermes no call", kHermes, "The weather in Paris is mild.\n"),
      malformed("hermes marker prefix at the end", kHermes, "a < b and <tool_c"),
      malformed("hermes empty", kHermes, ""),
      // Mistral, list form (v0.3, Nemo).
      {"mistral list with id", kMistral,
       R"([TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}, "id": "abc123XYZ"}])", "",
       {{"get_weather", kWeatherArgs, "abc123XYZ"}}},
      {"mistral list parallel, ids generated", kMistral, "[TOOL_CALLS][" + kWeather + ", " + kTime + "]", "",
       {{"get_weather", kWeatherArgs}, {"get_time", kTimeArgs}}},
      {"mistral v0.3 spacing", kMistral, " [TOOL_CALLS] [ " + kWeather + " ] ", "", {{"get_weather", kWeatherArgs}}},
      {"mistral bad id replaced", kMistral, R"([TOOL_CALLS][{"name": "f", "arguments": {}, "id": "call_1"}])", "", {{"f", "{}"}}},
      {"mistral nemo string arguments", kMistral,
       R"([TOOL_CALLS][{"name": "f", "arguments": "{\"q\": \"a b\"}", "id": "A1b2C3d4E"}])", "", {{"f", R"({"q":"a b"})", "A1b2C3d4E"}}},
      {"mistral list without closing bracket", kMistral, "[TOOL_CALLS][" + kWeather, "", {{"get_weather", kWeatherArgs}}},
      // Mistral, name[ARGS] form (Small 3.2, Devstral).
      {"mistral args form", kMistral, "[TOOL_CALLS]get_weather[ARGS]" + kWeatherArgs, "", {{"get_weather", kWeatherArgs}}},
      {"mistral args form parallel with call ids", kMistral,
       "[TOOL_CALLS]get_weather[CALL_ID]abcdefghi[ARGS]" + kWeatherArgs + "[TOOL_CALLS]get_time[CALL_ID]123456789[ARGS]" +
           kTimeArgs,
       "", {{"get_weather", kWeatherArgs, "abcdefghi"}, {"get_time", kTimeArgs, "123456789"}}},
      {"mistral args form content before", kMistral, "Checking now.\n[TOOL_CALLS]get_time[ARGS] " + kTimeArgs,
       "Checking now.", {{"get_time", kTimeArgs}}},
      {"mistral args as a string", kMistral, R"([TOOL_CALLS]f[ARGS]"{\"a\": 1}")", "", {{"f", R"({"a":1})"}}},
      malformed("mistral malformed list", kMistral, R"([TOOL_CALLS][{"name": "f", "arguments": {]")"),
      malformed("mistral args form without args", kMistral, "[TOOL_CALLS]get_weather"),
      malformed("mistral args form bad json", kMistral, "[TOOL_CALLS]f[ARGS]{\"a\": 1,}"),
      malformed("mistral no call", kMistral, "Paris is 18 degrees [today]."),
      // Granite.
      {"granite single", kGranite, "<|tool_call|>[" + kWeather + "]", "", {{"get_weather", kWeatherArgs}}},
      {"granite parallel", kGranite, "<|tool_call|>[" + kWeather + ",\n " + kTime + "]", "",
       {{"get_weather", kWeatherArgs}, {"get_time", kTimeArgs}}},
      {"granite content before", kGranite, "I will check. <|tool_call|> [" + kTime + "]", "I will check.",
       {{"get_time", kTimeArgs}}},
      {"granite bare object", kGranite, "<|tool_call|>" + kTime, "", {{"get_time", kTimeArgs}}},
      {"granite string arguments", kGranite, R"(<|tool_call|>[{"name": "f", "arguments": "{}"}])", "", {{"f", "{}"}}},
      malformed("granite malformed", kGranite, "<|tool_call|>[{\"name\": \"f\" \"arguments\": {}}]"),
      malformed("granite no call", kGranite, "Hello there, <|tool is not a tag"),
      // firefunction-v2.
      {"firefunction single", kFire, " functools[" + kWeather + "]", "", {{"get_weather", kWeatherArgs}}},
      {"firefunction parallel with content", kFire, "Let me see. functools[" + kWeather + ", " + kTime + "]", "Let me see.",
       {{"get_weather", kWeatherArgs}, {"get_time", kTimeArgs}}},
      malformed("firefunction the python module", kFire, "Use functools.partial for that."),
      malformed("firefunction malformed", kFire, "functools[{\"name\": \"f\", \"arguments\": {\"a\": 1}]"),
      // Llama 3.x.
      {"llama single", kLlama, R"({"name": "get_weather", "parameters": {"city": "Paris", "unit": "celsius"}})", "",
       {{"get_weather", kWeatherArgs}}},
      {"llama python tag", kLlama, R"(<|python_tag|>{"name": "get_time", "parameters": {"tz": "Europe/Paris"}})", "",
       {{"get_time", kTimeArgs}}},
      {"llama arguments key", kLlama, "\n" + kWeather + "\n", "", {{"get_weather", kWeatherArgs}}},
      {"llama parallel", kLlama,
       R"({"name": "get_weather", "parameters": {"city": "Paris", "unit": "celsius"}}; {"name": "get_time", "parameters": {"tz": "Europe/Paris"}})"
       "\n"
       R"({"name": "ping", "parameters": {}})",
       "", {{"get_weather", kWeatherArgs}, {"get_time", kTimeArgs}, {"ping", "{}"}}},
      {"llama builtin tool", kLlama, R"(<|python_tag|>brave_search.call(query="weather in Paris, today"))", "",
       {{"brave_search", R"({"query":"weather in Paris, today"})"}}},
      {"llama builtin tool, several arguments", kLlama,
       R"(<|python_tag|>wolfram_alpha.call(query='2+2', limit=3, exact=True))", "",
       {{"wolfram_alpha", R"({"query":"2+2","limit":3,"exact":true})"}}},
      {"llama string parameters", kLlama, R"({"name": "f", "parameters": "{\"x\": null}"})", "", {{"f", R"({"x":null})"}}},
      malformed("llama a JSON answer", kLlama, R"({"answer": 42, "unit": "none"})"),
      malformed("llama a person, not a call", kLlama, R"({"name": "Ada", "age": 36})"),
      malformed("llama trailing prose", kLlama, R"({"name": "f", "parameters": {}} and then I will tell you.)"),
      malformed("llama call after prose", kLlama, R"(Here: {"name": "f", "parameters": {}})"),
      malformed("llama unterminated", kLlama, R"({"name": "f", "parameters": {"x": "a)"),
      malformed("llama no call", kLlama, "Paris is lovely in spring."),
      // Generic JSON (Phi-3.5, Gemma 2, ...).
      {"generic object", kGeneric, kWeather, "", {{"get_weather", kWeatherArgs}}},
      {"generic list", kGeneric, "[" + kWeather + ", " + kTime + "]\n", "", {{"get_weather", kWeatherArgs}, {"get_time", kTimeArgs}}},
      {"generic fenced", kGeneric, "```json\n" + kTime + "\n```", "", {{"get_time", kTimeArgs}}},
      {"generic fenced list", kGeneric, "  ```\n[" + kTime + "]\n```\n", "", {{"get_time", kTimeArgs}}},
      {"generic openai shape", kGeneric,
       R"({"id": "x", "type": "function", "function": {"name": "get_time", "arguments": "{\"tz\": \"Europe/Paris\"}"}})", "",
       {{"get_time", kTimeArgs}}},
      {"generic parameters key", kGeneric, R"({"name": "f", "parameters": {"a": "b"}})", "", {{"f", R"({"a":"b"})"}}},
      malformed("generic prose first", kGeneric, "Sure! " + kWeather),
      malformed("generic code fence of code", kGeneric, "```python\nprint(1)\n```"),
      malformed("generic list of numbers", kGeneric, "[1, 2, 3]"),
      malformed("generic no call", kGeneric, "Hi! How can I help?"),
      // Parsing turned off.
      malformed("none keeps markers", kNone, "<tool_call>" + kWeather + "</tool_call>"),
  };
}

ParsedReply parse_one_shot(const ReplyCase& c, std::uint64_t seed = 7) {
  IdSource ids(seed);
  return parse_tool_calls(c.format, c.text, ids);
}

struct Streamed {
  ParsedReply reply;
  std::string content;  // what feed() returned, concatenated
  std::vector<ToolCallEvent> events;
};

Streamed stream(const ReplyCase& c, const std::vector<std::size_t>& cuts, std::uint64_t seed = 7) {
  IdSource ids(seed);
  ToolCallStreamParser parser(c.format, ids);
  Streamed out;
  std::size_t begin = 0;
  for (std::size_t cut : cuts) {
    out.content += parser.feed(std::string_view(c.text).substr(begin, cut - begin));
    for (ToolCallEvent& e : parser.take_events()) out.events.push_back(std::move(e));
    begin = cut;
  }
  out.content += parser.feed(std::string_view(c.text).substr(begin));
  EXPECT_EQ(parser.content_emitted(), out.content.size());
  out.reply = parser.finish();
  for (ToolCallEvent& e : parser.take_events()) out.events.push_back(std::move(e));
  return out;
}

void expect_same_reply(const ParsedReply& a, const ParsedReply& b) {
  EXPECT_EQ(a.content, b.content);
  ASSERT_EQ(a.calls.size(), b.calls.size());
  for (std::size_t i = 0; i < a.calls.size(); ++i) {
    EXPECT_EQ(a.calls[i].id, b.calls[i].id);
    EXPECT_EQ(a.calls[i].name, b.calls[i].name);
    EXPECT_EQ(a.calls[i].arguments, b.calls[i].arguments);
  }
}

// The events rebuild the calls: a header per index (a later header for the same index replaces
// a call whose block proved malformed), then that call's argument fragments. `exact`: no block
// failed, so no header was provisional.
void expect_events_rebuild(const std::vector<ToolCallEvent>& events, const ParsedReply& reply, bool exact) {
  std::vector<ToolCall> rebuilt;
  for (const ToolCallEvent& e : events) {
    if (!e.name.empty()) {
      ASSERT_LE(e.index, rebuilt.size()) << "headers in order";
      if (exact) {
        EXPECT_EQ(e.index, rebuilt.size()) << "one header per call";
      }
      EXPECT_TRUE(e.arguments.empty());
      rebuilt.resize(e.index);
      rebuilt.push_back({e.id, e.name, ""});
    } else {
      ASSERT_LT(e.index, rebuilt.size()) << "arguments after the header";
      EXPECT_TRUE(e.id.empty());
      rebuilt[e.index].arguments += e.arguments;
    }
  }
  if (exact) {
    EXPECT_EQ(rebuilt.size(), reply.calls.size());
  }
  ASSERT_GE(rebuilt.size(), reply.calls.size());
  for (std::size_t i = 0; i < reply.calls.size(); ++i) {
    EXPECT_EQ(rebuilt[i].id, reply.calls[i].id);
    EXPECT_EQ(rebuilt[i].name, reply.calls[i].name);
    EXPECT_EQ(rebuilt[i].arguments, reply.calls[i].arguments);
  }
}

const char* const kAllMarkers[] = {"<tool_call>", "</tool_call>", "[TOOL_CALLS]", "[ARGS]", "<|tool_call|>",
                                   "functools", "<|python_tag|>", "```"};

void check_stream(const ReplyCase& c, const std::vector<std::size_t>& cuts, const ParsedReply& expected) {
  Streamed s = stream(c, cuts);
  expect_same_reply(s.reply, expected);
  EXPECT_EQ(s.reply.content.compare(0, s.content.size(), s.content), 0)
      << "streamed content is a prefix of the final content: '" << s.content << "'";
  if (!expected.calls.empty()) {
    for (const char* marker : kAllMarkers) {
      if (expected.content.find(marker) == std::string::npos) {
        EXPECT_EQ(s.content.find(marker), std::string::npos) << marker << " streamed as content";
      }
    }
  }
  // A failed block leaves its text in the content.
  bool block_failed = expected.content.find("{\"name\"") != std::string::npos;
  for (const char* marker : kAllMarkers) block_failed |= expected.content.find(marker) != std::string::npos;
  expect_events_rebuild(s.events, s.reply, !block_failed);
}

}  // namespace

// ---------------------------------------------------------------------------------------------

TEST(ToolCallDetect, EveryTemplateInShared) {
  const std::map<std::string, ToolCallFormat> expected = {
      {"Mistral-Small-3.2-24B-Instruct-2506.jinja", kMistral},
      {"NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja", kHermes},
      {"deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja", kGeneric},
      {"fireworks-ai-llama-3-firefunction-v2.jinja", kFire},
      {"google-gemma-2-2b-it.jinja", kGeneric},
      {"hfjs-e2e_Mistral-7B-Instruct-v0.1.jinja", kGeneric},
      {"hfjs-e2e_mistralai-Mistral-7B-Instruct-v0.3.jinja", kMistral},
      {"hfjs-e2e_mistralai-Mixtral-8x7B-Instruct-v0.1.jinja", kGeneric},
      {"ibm-granite-granite-3.3-2B-Instruct.jinja", kGranite},
      {"lenml-gemma3-tokenizer_config.jinja", kGeneric},
      {"lenml-llama3-tokenizer_config.jinja", kGeneric},
      {"lenml-llama3_1-tokenizer_config.jinja", kGeneric},
      {"meta-llama-Llama-3.1-8B-Instruct.jinja", kLlama},
      {"meta-llama-Llama-3.2-3B-Instruct.jinja", kLlama},
      {"meta-llama-Llama-3.3-70B-Instruct.jinja", kLlama},
      {"microsoft-Phi-3.5-mini-instruct.jinja", kGeneric},
      {"mistralai-Mistral-Nemo-Instruct-2407.jinja", kMistral},
      {"unsloth-mistral-Devstral-Small-2507.jinja", kMistral},
  };
  int seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(test::shared("templates"))) {
    const std::string file = entry.path().filename().string();
    if (entry.path().extension() != ".jinja") continue;
    auto it = expected.find(file);
    ASSERT_NE(it, expected.end()) << "new template " << file << ": add its expected format";
    EXPECT_EQ(tool_call_format_name(detect_tool_call_format(test::read_file(entry.path().string()))),
              std::string(tool_call_format_name(it->second)))
        << file;
    ++seen;
  }
  EXPECT_EQ(seen, static_cast<int>(expected.size()));
}

TEST(ToolCallDetect, QwenTemplateFromTheCasesIsHermes) {
  json cases = json::parse(test::read_file(test::shared("templates/cases.json")));
  int checked = 0;
  for (const json& c : cases) {
    const std::string name = c["name"];
    if (name.find("Qwen2.5-7B-Instruct") == std::string::npos) continue;
    EXPECT_EQ(detect_tool_call_format(c["template"].get<std::string>()), kHermes) << name;
    ++checked;
  }
  EXPECT_GT(checked, 0);
  EXPECT_EQ(detect_tool_call_format(""), kGeneric);
}

TEST(ToolCallParse, HandWrittenRepliesInEveryFormat) {
  for (const ReplyCase& c : reply_cases()) expect_reply(c, parse_one_shot(c));
}

TEST(ToolCallParse, NoCallLeavesTheTextExactly) {
  for (const ReplyCase& c : reply_cases()) {
    if (c.calls.empty()) {
      EXPECT_EQ(parse_one_shot(c).content, c.text) << c.label;
    }
  }
}

TEST(ToolCallParse, IdsFollowTheFormat) {
  IdSource ids(1);
  ParsedReply hermes = parse_tool_calls(kHermes, "<tool_call>" + kWeather + "</tool_call>", ids);
  ASSERT_EQ(hermes.calls.size(), 1u);
  expect_id_shape(kHermes, hermes.calls[0].id);
  ParsedReply mistral = parse_tool_calls(kMistral, "[TOOL_CALLS][" + kWeather + "," + kTime + "]", ids);
  ASSERT_EQ(mistral.calls.size(), 2u);
  expect_id_shape(kMistral, mistral.calls[0].id);
  EXPECT_NE(mistral.calls[0].id, mistral.calls[1].id);
}

TEST(ToolCallParse, HostileInputNeverThrowsAndStaysContent) {
  std::vector<std::string> texts = {
      std::string(10000, '{'), "<tool_call>" + std::string(5000, '['), "[TOOL_CALLS]" + std::string(3000, '['),
      "<tool_call>{\"name\": \"f\", \"arguments\": \"" + std::string(200, '[') + "\"}</tool_call>",
      "<tool_call>{\"name\": \"\xff\xfe\", \"arguments\": {}}</tool_call>",
      std::string("<tool_call>\0{}</tool_call>", 24), "[TOOL_CALLS]a[CALL_ID][ARGS]{}", "[TOOL_CALLS]a[ARGS]",
      "<|python_tag|>x.call(a=\"unterminated)", "<|python_tag|>x.call(=1)", "```json", "```json\n{\"name\":\"f\"",
  };
  std::mt19937 rng(3);
  const std::string alphabet = "{}[]\":,<>|_/ \n\\atoolcalTOOLCALSARGnme0";
  for (int i = 0; i < 300; ++i) {
    std::string s;
    for (int j = 0, n = rng() % 80; j < n; ++j) s += alphabet[rng() % alphabet.size()];
    texts.push_back(s);
  }
  for (ToolCallFormat format : {kNone, kLlama, kHermes, kMistral, kGranite, kFire, kGeneric}) {
    for (const std::string& text : texts) {
      IdSource ids(5);
      ParsedReply reply;
      ASSERT_NO_THROW(reply = parse_tool_calls(format, text, ids)) << text;
      if (reply.calls.empty()) {
        EXPECT_EQ(reply.content, text);
      }
      for (const ToolCall& call : reply.calls) EXPECT_TRUE(json::parse(call.arguments).is_object());
    }
  }
}

// Every byte is looked at a bounded number of times: megabyte replies of many blocks, failed
// blocks and one endless block parse in well under the bound (a quadratic parser would not).
TEST(ToolCallParse, LongRepliesTakeLinearTime) {
  const auto start = std::chrono::steady_clock::now();
  std::string many_calls, many_failures, endless;
  std::size_t blocks = 0;
  for (; many_calls.size() < (1u << 20); ++blocks) many_calls += "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>\n";
  while (many_failures.size() < (1u << 20)) many_failures += "<tool_call>";
  endless = "<tool_call>{\"name\": \"f\", \"arguments\": \"" + many_failures;
  IdSource ids(1);
  EXPECT_EQ(parse_tool_calls(kHermes, many_calls, ids).calls.size(), blocks);
  EXPECT_EQ(parse_tool_calls(kHermes, many_failures, ids).content, many_failures);
  EXPECT_EQ(parse_tool_calls(kHermes, endless, ids).content, endless);
  ToolCallStreamParser parser(kHermes, ids);
  for (char ch : endless) parser.feed(std::string_view(&ch, 1));
  EXPECT_EQ(parser.finish().content, endless);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 10.0);
}

// ---------------------------------------------------------------------------------------------

TEST(ToolCallStream, ByteAtATimeMatchesTheOneShotParse) {
  for (const ReplyCase& c : reply_cases()) {
    SCOPED_TRACE(c.label);
    std::vector<std::size_t> cuts;
    for (std::size_t i = 1; i < c.text.size(); ++i) cuts.push_back(i);
    check_stream(c, cuts, parse_one_shot(c));
  }
}

TEST(ToolCallStream, RandomChunkingsMatchTheOneShotParse) {
  std::mt19937 rng(11);
  for (const ReplyCase& c : reply_cases()) {
    SCOPED_TRACE(c.label);
    const ParsedReply expected = parse_one_shot(c);
    for (int trial = 0; trial < 25; ++trial) {
      std::vector<std::size_t> cuts;
      for (std::size_t i = 1; i < c.text.size(); ++i)
        if (rng() % 5 == 0) cuts.push_back(i);
      check_stream(c, cuts, expected);
    }
  }
}

// Mutations of well-formed replies, fed in random chunks: the same reply as the one-shot parse,
// streamed content a prefix of it, and the text itself whenever no call is found.
TEST(ToolCallStream, MutatedRepliesAgreeWithTheOneShotParse) {
  std::mt19937 rng(21);
  const std::string alphabet = "{}[]\":,;<>|_/`. \n\\atoolcalTOOLCALSARGIDnme0123python_tag()='functools";
  const std::vector<std::string> seeds = {
      "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": [1, {\"b\": \"c\"}]}}</tool_call>",
      "[TOOL_CALLS]f[CALL_ID]abcdefghi[ARGS]{\"a\":1}", "[TOOL_CALLS][{\"name\":\"f\",\"arguments\":{},\"id\":\"abcdefghi\"}]",
      "<|python_tag|>x.call(a=\"b\", c=1)", "```json\n[{\"name\":\"f\",\"arguments\":{}}]\n```",
      "<|tool_call|>[{\"name\":\"f\",\"arguments\":\"{}\"}]", " functools[{\"name\":\"f\",\"arguments\":{}}]",
      "{\"name\": \"f\", \"parameters\": {}}; {\"name\": \"g\", \"parameters\": {\"x\": 1}}"};
  for (int i = 0; i < 3000; ++i) {
    std::string text = seeds[rng() % seeds.size()];
    for (int edit = 0, edits = rng() % 6; edit < edits && !text.empty(); ++edit) {
      const std::size_t at = rng() % text.size();
      switch (rng() % 3) {
        case 0: text.erase(at, 1 + rng() % 3); break;
        case 1: text.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
        default: text[at] = alphabet[rng() % alphabet.size()];
      }
    }
    for (ToolCallFormat format : {kNone, kLlama, kHermes, kMistral, kGranite, kFire, kGeneric}) {
      ReplyCase c{"mutated", format, text, "", {}};
      const ParsedReply expected = parse_one_shot(c);
      if (expected.calls.empty()) {
        ASSERT_EQ(expected.content, text) << tool_call_format_name(format);
      }
      std::vector<std::size_t> cuts;
      for (std::size_t at = 1 + rng() % 7; at < text.size(); at += 1 + rng() % 7) cuts.push_back(at);
      Streamed s = stream(c, cuts);
      SCOPED_TRACE(std::string(tool_call_format_name(format)) + ": " + text);
      expect_same_reply(s.reply, expected);
      ASSERT_EQ(s.reply.content.compare(0, s.content.size(), s.content), 0) << s.content;
    }
  }
}

TEST(ToolCallStream, HoldsBackAPossibleMarkerOnly) {
  IdSource ids(2);
  ToolCallStreamParser parser(kHermes, ids);
  EXPECT_EQ(parser.feed("Hello wor"), "Hello wor");
  EXPECT_EQ(parser.feed("ld <tool_c"), "ld") << "space and marker prefix held";
  EXPECT_FALSE(parser.in_tool_call());
  EXPECT_EQ(parser.feed("ar is not a tag"), " <tool_car is not a tag");
  EXPECT_EQ(parser.feed(".\n<tool_call>\n{\"name\""), ".");
  EXPECT_TRUE(parser.in_tool_call());
  EXPECT_TRUE(parser.take_events().empty()) << "name not complete yet";
  EXPECT_EQ(parser.feed(": \"get_time\", \"arguments\": {\"tz\""), "");
  std::vector<ToolCallEvent> events = parser.take_events();
  ASSERT_EQ(events.size(), 1u) << "the name is announced before the arguments are complete";
  EXPECT_EQ(events[0].index, 0u);
  EXPECT_EQ(events[0].name, "get_time");
  EXPECT_EQ(parser.feed(": \"UTC\"}}\n</tool_call>"), "");
  events = parser.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].arguments, R"({"tz":"UTC"})");
  ParsedReply reply = parser.finish();
  EXPECT_EQ(reply.content, "Hello world <tool_car is not a tag.");
  ASSERT_EQ(reply.calls.size(), 1u);
  EXPECT_EQ(reply.content.substr(parser.content_emitted()), "");
}

TEST(ToolCallStream, MistralNameAnnouncedAtArgs) {
  IdSource ids(2);
  ToolCallStreamParser parser(kMistral, ids);
  EXPECT_EQ(parser.feed("[TOOL_CALLS]get_wea"), "");
  EXPECT_TRUE(parser.in_tool_call());
  EXPECT_TRUE(parser.take_events().empty());
  parser.feed("ther[ARGS]{\"city\":");
  std::vector<ToolCallEvent> events = parser.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].name, "get_weather");
  EXPECT_EQ(events[0].id.size(), 9u);
  parser.feed(" \"Paris\"}");
  events = parser.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].arguments, R"({"city":"Paris"})");
}

TEST(ToolCallStream, WholeReplyFormatsHoldALeadingBrace) {
  IdSource ids(2);
  ToolCallStreamParser parser(kLlama, ids);
  EXPECT_EQ(parser.feed("  {\"answer\": "), "");
  EXPECT_TRUE(parser.in_tool_call()) << "tentatively";
  EXPECT_EQ(parser.feed("42} is"), "  {\"answer\": 42} is") << "released once the object is not a call";
  EXPECT_FALSE(parser.in_tool_call());
  EXPECT_EQ(parser.feed(" it"), " it");
  ParsedReply reply = parser.finish();
  EXPECT_TRUE(reply.calls.empty());
  EXPECT_EQ(reply.content, "  {\"answer\": 42} is it");
}

// ---------------------------------------------------------------------------------------------

TEST(ToolCallIds, ShapesAndSeeds) {
  IdSource a(42), b(42), c(43);
  const std::string id = a.openai_id();
  expect_id_shape(kHermes, id);
  EXPECT_EQ(id, b.openai_id());
  EXPECT_NE(id, c.openai_id());
  const std::string mistral = a.mistral_id();
  expect_id_shape(kMistral, mistral);
  EXPECT_EQ(a.next(kMistral).size(), 9u);
  EXPECT_EQ(a.next(kLlama).rfind("call_", 0), 0u);
  IdSource random1, random2;
  EXPECT_NE(random1.openai_id(), random2.openai_id());
}

// The literal text around one call, as the server's grammar will produce it, parses back.
TEST(ToolCallGrammar, PrefixObjectSuffixParsesBack) {
  for (ToolCallFormat format : {kLlama, kHermes, kMistral, kGranite, kFire, kGeneric}) {
    SCOPED_TRACE(tool_call_format_name(format));
    const std::string object =
        std::string(R"({"name":"get_time",")") + arguments_key(format) + R"(":{"tz":"Europe/Paris"}})";
    IdSource ids(9);
    ParsedReply reply = parse_tool_calls(format, tool_call_prefix(format) + object + tool_call_suffix(format), ids);
    EXPECT_EQ(reply.content, "");
    ASSERT_EQ(reply.calls.size(), 1u);
    EXPECT_EQ(reply.calls[0].name, "get_time");
    EXPECT_EQ(reply.calls[0].arguments, R"({"tz":"Europe/Paris"})");
  }
  EXPECT_STREQ(arguments_key(kLlama), "parameters");
  EXPECT_STREQ(arguments_key(kHermes), "arguments");
  EXPECT_EQ(tool_call_prefix(kHermes), "<tool_call>\n");
  EXPECT_EQ(tool_call_suffix(kHermes), "\n</tool_call>");
  EXPECT_EQ(tool_call_prefix(kMistral), "[TOOL_CALLS][");
  EXPECT_EQ(tool_call_prefix(kNone), "");
}

// ---------------------------------------------------------------------------------------------
// An assistant message with tool calls rendered by the model's own template, then parsed back
// from the rendered assistant turn.

namespace {

struct RoundTrip {
  std::string template_file, bos, eos;
  bool string_arguments_only = false;  // firefunction concatenates arguments as text
  ojson extra = ojson::object();
};

const ojson kTools = ojson::parse(R"([
  {"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "The city"},
                   "unit": {"type": "string", "description": "celsius or fahrenheit"}}, "required": ["city"]}}},
  {"type": "function", "function": {"name": "get_time", "description": "Current time in a time zone.",
    "parameters": {"type": "object", "properties": {"tz": {"type": "string", "description": "IANA zone"}},
                   "required": ["tz"]}}}])");

std::string assistant_turn(const ChatTemplate& tmpl, const RoundTrip& rt, const ojson& tool_calls) {
  ChatTemplateOptions options;
  options.bos_token = rt.bos;
  options.eos_token = rt.eos;
  options.extra = rt.extra;
  if (!options.extra.contains("functions")) options.extra["tools"] = kTools;
  std::tm fixed{};
  fixed.tm_year = 125, fixed.tm_mon = 6, fixed.tm_mday = 10, fixed.tm_hour = 12;
  options.now = fixed;
  ojson user = {{"role", "user"}, {"content", "What is the weather in Paris, and the time?"}};
  ojson assistant = {{"role", "assistant"}, {"content", ""}, {"tool_calls", tool_calls}};
  options.add_generation_prompt = true;
  const std::string prompt = tmpl.render(ojson::array({user}), options);
  options.add_generation_prompt = false;
  const std::string full = tmpl.render(ojson::array({user, assistant}), options);
  EXPECT_EQ(full.compare(0, prompt.size(), prompt), 0) << "the conversation extends the prompt\n" << prompt << "\n---\n" << full;
  std::string turn = full.substr(std::min(prompt.size(), full.size()));
  std::size_t end = turn.size();
  for (std::string stop : {rt.eos, std::string("<|eot_id|>"), std::string("<|eom_id|>"), std::string("<|im_end|>")})
    if (!stop.empty()) end = std::min(end, turn.find(stop));
  return turn.substr(0, end);
}

}  // namespace

TEST(ToolCallRoundTrip, RealTemplatesRenderWhatTheParserReads) {
  const std::vector<RoundTrip> trips = {
      {"NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja", "<|begin_of_text|>", "<|im_end|>"},
      {"mistralai-Mistral-Nemo-Instruct-2407.jinja", "<s>", "</s>"},
      {"Mistral-Small-3.2-24B-Instruct-2506.jinja", "<s>", "</s>"},
      {"unsloth-mistral-Devstral-Small-2507.jinja", "<s>", "</s>"},
      {"hfjs-e2e_mistralai-Mistral-7B-Instruct-v0.3.jinja", "<s>", "</s>"},
      {"meta-llama-Llama-3.1-8B-Instruct.jinja", "<|begin_of_text|>", "<|eot_id|>"},
      {"meta-llama-Llama-3.2-3B-Instruct.jinja", "<|begin_of_text|>", "<|eot_id|>"},
      {"fireworks-ai-llama-3-firefunction-v2.jinja", "<|begin_of_text|>", "<|eot_id|>", true,
       {{"functions", "[]"}, {"datetime", "2025-07-10"}}},
  };
  // Llama 3.x templates take one call per message.
  auto single_call = [](const std::string& file) { return file.find("meta-llama") != std::string::npos; };
  for (const RoundTrip& rt : trips) {
    SCOPED_TRACE(rt.template_file);
    const std::string source = test::read_file(test::shared("templates/" + rt.template_file));
    const ToolCallFormat format = detect_tool_call_format(source);
    ChatTemplate tmpl(source);
    for (bool string_arguments : {true, false}) {
      if (!string_arguments && rt.string_arguments_only) continue;
      SCOPED_TRACE(string_arguments ? "arguments as a string" : "arguments as an object");
      ojson calls = ojson::array();
      const std::vector<std::pair<std::string, ojson>> wanted = {
          {"get_weather", {{"city", "Paris"}, {"unit", "celsius"}}}, {"get_time", {{"tz", "Europe/Paris"}}}};
      const std::vector<std::string> call_ids = {"abc123XYZ", "Q9w8E7r6T"};
      const std::size_t count = single_call(rt.template_file) ? 1 : 2;
      for (std::size_t i = 0; i < count; ++i) {
        ojson arguments = string_arguments ? ojson(wanted[i].second.dump()) : wanted[i].second;
        calls.push_back({{"id", call_ids[i]},
                         {"type", "function"},
                         {"function", {{"name", wanted[i].first}, {"arguments", arguments}}}});
      }
      const std::string turn = assistant_turn(tmpl, rt, calls);
      IdSource ids(4);
      ParsedReply reply = parse_tool_calls(format, turn, ids);
      EXPECT_EQ(reply.content, "") << turn;
      ASSERT_EQ(reply.calls.size(), count) << turn;
      for (std::size_t i = 0; i < count; ++i) {
        EXPECT_EQ(reply.calls[i].name, wanted[i].first);
        EXPECT_EQ(json::parse(reply.calls[i].arguments), json::parse(wanted[i].second.dump()));
        // Mistral templates that write the id carry it back.
        if (format == kMistral && turn.find(call_ids[i]) != std::string::npos) {
          EXPECT_EQ(reply.calls[i].id, call_ids[i]);
        }
      }
    }
  }
}

// Granite 3.3's template renders an assistant message's content only (no tool_calls), so a
// Granite conversation carries calls back as the text the model wrote: that text parses.
TEST(ToolCallRoundTrip, GraniteCarriesCallsAsContent) {
  const std::string source = test::read_file(test::shared("templates/ibm-granite-granite-3.3-2B-Instruct.jinja"));
  ASSERT_EQ(detect_tool_call_format(source), kGranite);
  ChatTemplate tmpl(source);
  ChatTemplateOptions options;
  std::tm fixed{};
  fixed.tm_year = 125, fixed.tm_mon = 6, fixed.tm_mday = 10;
  options.now = fixed;
  const std::string said = "<|tool_call|>[" + kTime + "]";
  const std::string full = tmpl.render(
      ojson::array({{{"role", "user"}, {"content", "time?"}}, {{"role", "assistant"}, {"content", said}}}), options);
  const std::string open = "<|start_of_role|>assistant<|end_of_role|>";
  const std::size_t at = full.find(open);
  ASSERT_NE(at, std::string::npos) << full;
  std::string turn = full.substr(at + open.size());
  turn = turn.substr(0, turn.find("<|end_of_text|>"));
  IdSource ids(4);
  ParsedReply reply = parse_tool_calls(kGranite, turn, ids);
  ASSERT_EQ(reply.calls.size(), 1u) << turn;
  EXPECT_EQ(reply.calls[0].name, "get_time");
}

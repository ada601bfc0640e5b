// Constrained decoding and tool calling through the HTTP server: a real `slm serve` on a
// fixture model (random weights, so only the grammar makes the output well-formed), driven
// over HTTP. Also the request-level checks that need no model.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <sstream>
#include <thread>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/shared.h"
#include "server/openai.h"
#include "slm/sampler.h"

using namespace slm::server;
using json = nlohmann::ordered_json;

namespace {

ApiError error_of(const std::string& body, bool chat) {
  try {
    CompletionRequest r = parse_completion_request(body, chat);
    apply_tool_choice(r, slm::ToolCallFormat::hermes);
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "accepted: " << body;
  return {};
}

const char* kTool =
    R"({"type":"function","function":{"name":"get_weather","description":"The weather in a city.",
        "parameters":{"type":"object","properties":{"city":{"type":"string","maxLength":12},
        "days":{"type":"integer","minimum":1,"maximum":7}},"required":["city","days"]}}})";
const char* kTool2 =
    R"({"type":"function","function":{"name":"get_time","description":"The time.",
        "parameters":{"type":"object","properties":{"zone":{"enum":["utc","cet"]}},"required":["zone"]}}})";

// A server process on a free port; stopped with SIGTERM.
struct ServerProcess {
  pid_t pid = -1;
  int port = 0;
  std::string log;

  bool start(const std::vector<std::string>& extra) {
    std::string bin = slm::test::slm_bin();
    if (!std::getenv("SLM_BIN")) {
      std::error_code ec;
      auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
      if (!ec && std::filesystem::exists(self.parent_path() / "slm")) bin = (self.parent_path() / "slm").string();
    }
    std::vector<std::string> args = {bin, "serve", "-m", slm::test::shared("fixtures/llama-f32.gguf"),
                                     "--port", "0", "--ctx", "4096", "-P", "2", "-t", "1", "-q"};
    args.insert(args.end(), extra.begin(), extra.end());
    int fds[2];
    if (pipe(fds) != 0) return false;
    pid = fork();
    if (pid == 0) {
      dup2(fds[1], 2);
      close(fds[0]);
      close(fds[1]);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(fds[1]);
    FILE* f = fdopen(fds[0], "r");
    char line[4096];
    const std::regex ready(R"(ready on http://[^:]+:(\d+))");
    while (fgets(line, sizeof line, f)) {
      log += line;
      std::cmatch m;
      if (std::regex_search(line, m, ready)) {
        port = std::stoi(m[1]);
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread([f] {
          char buf[4096];
          while (fgets(buf, sizeof buf, f)) {
          }
          fclose(f);
        }).detach();
        return true;
      }
    }
    fclose(f);
    return false;
  }
  void stop() {
    if (pid > 0) {
      kill(pid, SIGTERM);
      int status = 0;
      waitpid(pid, &status, 0);
      pid = -1;
    }
  }
};

ServerProcess* g_plain = nullptr;   // the model's own template
ServerProcess* g_hermes = nullptr;  // Hermes 3 tool-use template

class ServerTools : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(slm::test::shared("fixtures/llama-f32.gguf"))) return;
    g_plain = new ServerProcess;
    if (!g_plain->start({})) ADD_FAILURE() << "server did not start: " << g_plain->log;
    g_hermes = new ServerProcess;
    if (!g_hermes->start({"--chat-template", slm::test::shared("templates/NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja")}))
      ADD_FAILURE() << "server did not start: " << g_hermes->log;
  }
  static void TearDownTestSuite() {
    for (ServerProcess*& s : {std::ref(g_plain), std::ref(g_hermes)}) {
      if (s) s->stop();
      delete s;
      s = nullptr;
    }
  }
  void SetUp() override {
    if (!g_plain || !g_plain->port || !g_hermes->port) GTEST_SKIP() << "no fixture model / server";
  }

  static httplib::Result post(ServerProcess* s, const std::string& path, const json& body) {
    httplib::Client c("127.0.0.1", s->port);
    c.set_read_timeout(300, 0);
    return c.Post(path, body.dump(), "application/json");
  }
  // A 200 response's JSON.
  static json ok(ServerProcess* s, const std::string& path, const json& body) {
    auto res = post(s, path, body);
    EXPECT_TRUE(res) << "no response";
    if (!res) return json();
    EXPECT_EQ(res->status, 200) << res->body;
    return json::parse(res->body);
  }
  // The data: events of a streamed response.
  static std::vector<json> stream(ServerProcess* s, const std::string& path, json body) {
    body["stream"] = true;
    auto res = post(s, path, body);
    std::vector<json> out;
    EXPECT_TRUE(res && res->status == 200) << (res ? res->body : "no response");
    if (!res) return out;
    std::istringstream in(res->body);
    std::string line;
    bool done = false;
    while (std::getline(in, line)) {
      if (line.rfind("data: ", 0) != 0) continue;
      if (line == "data: [DONE]") {
        done = true;
        continue;
      }
      out.push_back(json::parse(line.substr(6)));
    }
    EXPECT_TRUE(done) << res->body;
    return out;
  }
};

size_t code_points(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// By hand, /work/shared/schemas/meeting.json: date (format date), room (integer 100..999 or
// null), title (3..16 characters), all required, nothing else.
void expect_meeting(const std::string& text) {
  json v;
  ASSERT_NO_THROW(v = json::parse(text)) << text;
  ASSERT_TRUE(v.is_object()) << text;
  EXPECT_EQ(v.size(), 3u) << text;
  ASSERT_TRUE(v.contains("date") && v["date"].is_string()) << text;
  const std::string date = v["date"];
  std::smatch m;
  ASSERT_TRUE(std::regex_match(date, m, std::regex(R"((\d{4})-(\d{2})-(\d{2}))"))) << text;
  EXPECT_GE(std::stoi(m[2]), 1);
  EXPECT_LE(std::stoi(m[2]), 12);
  EXPECT_GE(std::stoi(m[3]), 1);
  EXPECT_LE(std::stoi(m[3]), 31);
  ASSERT_TRUE(v.contains("room")) << text;
  if (!v["room"].is_null()) {
    ASSERT_TRUE(v["room"].is_number_integer()) << text;
    EXPECT_GE(v["room"].get<int>(), 100);
    EXPECT_LE(v["room"].get<int>(), 999);
  }
  ASSERT_TRUE(v.contains("title") && v["title"].is_string()) << text;
  EXPECT_GE(code_points(v["title"]), 3u) << text;
  EXPECT_LE(code_points(v["title"]), 16u) << text;
}

void expect_weather_arguments(const std::string& arguments) {
  json a;
  ASSERT_NO_THROW(a = json::parse(arguments)) << arguments;
  ASSERT_TRUE(a.is_object());
  ASSERT_TRUE(a.contains("city") && a["city"].is_string()) << arguments;
  ASSERT_TRUE(a.contains("days") && a["days"].is_number_integer()) << arguments;
  EXPECT_GE(a["days"].get<int>(), 1);
  EXPECT_LE(a["days"].get<int>(), 7);
}

}  // namespace

TEST(ServerToolsRequest, Validation) {
  struct Case {
    const char* body;
    bool chat;
    const char* param;
    const char* says;
  } cases[] = {
      {R"({"prompt":"x","response_format":{"type":"xml"}})", false, "response_format", "xml"},
      {R"({"prompt":"x","response_format":{"type":"json_schema"}})", false, "response_format", "json_schema"},
      {R"({"prompt":"x","response_format":{"type":"json_schema","json_schema":{"schema":{"type":"object","patternProperties":{}}}}})",
       false, "response_format.json_schema.schema", "patternProperties"},
      {R"({"prompt":"x","json_schema":{"type":"object","patternProperties":{}}})", false, "json_schema", "patternProperties"},
      {R"({"prompt":"x","grammar":"root ::= \"a"})", false, "grammar", "unterminated"},
      {R"({"prompt":"x","grammar":"root ::= nope"})", false, "grammar", "nope"},
      {R"({"prompt":"x","grammar":"root ::= \"a\"","json_schema":{}})", false, "json_schema", "together"},
      {R"({"prompt":"x","tools":[{"type":"function","function":{"name":"f"}}]})", false, "tools", "chat"},
      {R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function"}]})", true, "tools[0].function", "object"},
      {R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"x","function":{"name":"f"}}]})", true, "tools[0]", "function"},
      {R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"any"})",
       true, "tool_choice", "any"},
      {R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],
          "tool_choice":{"type":"function","function":{"name":"g"}}})", true, "tool_choice", "'g'"},
      {R"({"messages":[{"role":"user","content":"x"}],"tool_choice":"required"})", true, "tool_choice", "no 'tools'"},
      {R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f",
          "parameters":{"type":"object","patternProperties":{}}}}],"tool_choice":"required"})", true,
       "tools[0].function.parameters", "patternProperties"},
      {R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],
          "tool_choice":"required","response_format":{"type":"json_object"}})", true, "tool_choice", "together"},
      {R"({"messages":[{"role":"user","content":"x"}],"functions":[]})", true, "functions", "tools"},
  };
  for (const Case& c : cases) {
    ApiError e = error_of(c.body, c.chat);
    EXPECT_EQ(e.status, 400) << c.body;
    EXPECT_EQ(e.param, c.param) << c.body << " → " << e.message;
    EXPECT_NE(e.message.find(c.says), std::string::npos) << c.body << " → " << e.message;
    EXPECT_EQ(e.message.find('\n'), std::string::npos) << e.message;
  }
}

TEST(ServerToolsRequest, GrammarsAreBuilt) {
  CompletionRequest r = parse_completion_request(R"({"prompt":"x","response_format":{"type":"json_object"}})", false);
  EXPECT_FALSE(r.grammar.empty());
  r = parse_completion_request(R"({"prompt":"x","response_format":{"type":"text"}})", false);
  EXPECT_TRUE(r.grammar.empty());
  r = parse_completion_request(R"({"prompt":"x","grammar":"root ::= \"a\""})", false);
  EXPECT_EQ(r.grammar, "root ::= \"a\"");

  const std::string two = std::string(R"({"messages":[{"role":"user","content":"x"}],"tools":[)") + kTool + "," + kTool2 + "]";
  r = parse_completion_request(two + "}", true);
  EXPECT_EQ(r.tool_choice, "auto");
  EXPECT_TRUE(r.parse_tools());
  apply_tool_choice(r, slm::ToolCallFormat::hermes);
  EXPECT_TRUE(r.grammar.empty());  // auto: free text, parsed afterwards
  r = parse_completion_request(two + R"(,"tool_choice":"none"})", true);
  EXPECT_FALSE(r.parse_tools());
  r = parse_completion_request(two + R"(,"tool_choice":"required","parallel_tool_calls":false})", true);
  apply_tool_choice(r, slm::ToolCallFormat::hermes);
  EXPECT_NE(r.grammar.find("get_weather"), std::string::npos);
  EXPECT_NE(r.grammar.find("get_time"), std::string::npos);
  EXPECT_NE(r.grammar.find("<tool_call>"), std::string::npos);
  EXPECT_NO_THROW(slm::check_grammar(r.grammar));
  r = parse_completion_request(two + R"(,"tool_choice":{"type":"function","function":{"name":"get_time"}}})", true);
  apply_tool_choice(r, slm::ToolCallFormat::llama3_json);
  EXPECT_EQ(r.grammar.find("get_weather"), std::string::npos);
  EXPECT_NE(r.grammar.find("parameters"), std::string::npos);  // llama3's arguments key
}

TEST(ServerToolsRequest, PrefixGrammarRules) {
  EXPECT_EQ(prefix_grammar_rules("root ::= a-b \"x y\" [a-z]{1,3} # c d\na-b ::= \"\\\"q\"", "t0-"),
            "t0-root ::= t0-a-b \"x y\" [a-z]{1,3} # c d\nt0-a-b ::= \"\\\"q\"");
}

TEST(ServerToolsRequest, ToolReplyShapes) {
  slm::IdSource ids(7);
  ToolReply r = tool_reply(slm::ToolCallFormat::hermes, "<tool_call>\n{\"name\":\"f\",\"arguments\":{\"a\":1}}\n</tool_call>", ids);
  ASSERT_EQ(r.tool_calls.size(), 1u);
  json m = tool_message(r);
  EXPECT_TRUE(m["content"].is_null());
  EXPECT_EQ(m["tool_calls"][0]["function"]["name"], "f");
  EXPECT_EQ(m["tool_calls"][0]["function"]["arguments"], "{\"a\":1}");
  EXPECT_EQ(m["tool_calls"][0]["type"], "function");
  EXPECT_EQ(m["tool_calls"][0]["id"].get<std::string>().rfind("call_", 0), 0u);
  r = tool_reply(slm::ToolCallFormat::hermes, "just text", ids);
  EXPECT_TRUE(r.tool_calls.empty());
  EXPECT_EQ(tool_message(r)["content"], "just text");
}

TEST_F(ServerTools, JsonSchemaOverSeeds) {
  const json schema = json::parse(slm::test::read_file(slm::test::shared("schemas/meeting.json")));
  for (int seed = 1; seed <= 4; ++seed) {
    json body = {{"messages", {{{"role", "user"}, {"content", "Plan a meeting."}}}},
                 {"temperature", 1.0},
                 {"seed", seed},
                 {"max_tokens", 400},
                 {"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "meeting"}, {"schema", schema}, {"strict", true}}}}}};
    json r = ok(g_plain, "/v1/chat/completions", body);
    ASSERT_FALSE(r.is_null());
    EXPECT_EQ(r["choices"][0]["finish_reason"], "stop");
    expect_meeting(r["choices"][0]["message"]["content"]);
    // The completions endpoint, streamed: the concatenated deltas follow the schema too.
    json cbody = {{"prompt", "Meeting:"}, {"seed", seed}, {"max_tokens", 400}, {"json_schema", schema}};
    std::string text;
    for (const json& ev : stream(g_plain, "/v1/completions", cbody))
      if (!ev["choices"].empty()) text += ev["choices"][0]["text"].get<std::string>();
    expect_meeting(text);
  }
}

TEST_F(ServerTools, JsonObject) {
  int complete = 0;
  for (int seed = 1; seed <= 3; ++seed) {
    json body = {{"messages", {{{"role", "user"}, {"content", "JSON please"}}}},
                 {"seed", seed},
                 {"max_tokens", 300},
                 {"response_format", {{"type", "json_object"}}}};
    json r = ok(g_plain, "/v1/chat/completions", body);
    ASSERT_FALSE(r.is_null());
    if (r["choices"][0]["finish_reason"] != "stop") continue;  // a random model may write a long object
    ++complete;
    json v;
    ASSERT_NO_THROW(v = json::parse(r["choices"][0]["message"]["content"].get<std::string>()));
    EXPECT_TRUE(v.is_object());
  }
  EXPECT_GT(complete, 0);
}

TEST_F(ServerTools, BadSchemaIs400) {
  json body = {{"messages", {{{"role", "user"}, {"content", "x"}}}},
               {"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "x"}, {"schema", {{"type", "object"}, {"patternProperties", json::object()}}}}}}}};
  auto res = post(g_plain, "/v1/chat/completions", body);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  json e = json::parse(res->body);
  EXPECT_NE(e["error"]["message"].get<std::string>().find("patternProperties"), std::string::npos) << res->body;
  EXPECT_EQ(e["error"]["type"], "invalid_request_error");
  // And a GBNF grammar that does not parse.
  res = post(g_plain, "/v1/completions", {{"prompt", "x"}, {"grammar", "root ::= ("}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400) << res->body;
  // A grammar that does is followed.
  json r = ok(g_plain, "/v1/completions", {{"prompt", "x"}, {"seed", 3}, {"grammar", "root ::= \"yes\" | \"no\""}});
  EXPECT_TRUE(r["choices"][0]["text"] == "yes" || r["choices"][0]["text"] == "no") << r.dump();
}

TEST_F(ServerTools, RequiredToolCall) {
  for (int seed = 1; seed <= 3; ++seed) {
    json body = {{"messages", {{{"role", "user"}, {"content", "Weather in Oslo?"}}}},
                 {"seed", seed},
                 {"temperature", 1.0},
                 {"max_tokens", 300},
                 {"tools", json::array({json::parse(kTool), json::parse(kTool2)})},
                 {"tool_choice", "required"}};
    json r = ok(g_hermes, "/v1/chat/completions", body);
    ASSERT_FALSE(r.is_null());
    const json& choice = r["choices"][0];
    EXPECT_EQ(choice["finish_reason"], "tool_calls") << r.dump();
    ASSERT_EQ(choice["message"]["tool_calls"].size(), 1u) << r.dump();
    const json& call = choice["message"]["tool_calls"][0];
    EXPECT_EQ(call["id"].get<std::string>().rfind("call_", 0), 0u);
    EXPECT_EQ(call["type"], "function");
    const std::string name = call["function"]["name"];
    if (name == "get_weather") {
      expect_weather_arguments(call["function"]["arguments"]);
    } else {
      EXPECT_EQ(name, "get_time");
      json a = json::parse(call["function"]["arguments"].get<std::string>());
      EXPECT_TRUE(a["zone"] == "utc" || a["zone"] == "cet") << a.dump();
    }
    EXPECT_TRUE(choice["message"]["content"].is_null()) << r.dump();
  }
}

TEST_F(ServerTools, NamedToolCallStreamed) {
  for (int seed = 1; seed <= 3; ++seed) {
    json body = {{"messages", {{{"role", "user"}, {"content", "Weather in Oslo?"}}}},
                 {"seed", seed},
                 {"max_tokens", 300},
                 {"tools", json::array({json::parse(kTool), json::parse(kTool2)})},
                 {"tool_choice", {{"type", "function"}, {"function", {{"name", "get_weather"}}}}}};
    std::vector<json> events = stream(g_hermes, "/v1/chat/completions", body);
    ASSERT_FALSE(events.empty());
    std::string id, name, arguments, content;
    for (const json& ev : events) {
      const json& delta = ev["choices"][0]["delta"];
      if (delta.contains("content")) content += delta["content"].get<std::string>();
      if (!delta.contains("tool_calls")) continue;
      const json& tc = delta["tool_calls"][0];
      EXPECT_EQ(tc["index"], 0);
      if (tc.contains("id")) {
        EXPECT_TRUE(id.empty()) << "two headers";
        id = tc["id"];
        EXPECT_EQ(tc["type"], "function");
        name = tc["function"]["name"];
        EXPECT_EQ(tc["function"]["arguments"], "");
      } else {
        EXPECT_FALSE(id.empty()) << "arguments before the call's header";
        arguments += tc["function"]["arguments"].get<std::string>();
      }
    }
    EXPECT_EQ(id.rfind("call_", 0), 0u);
    EXPECT_EQ(name, "get_weather");
    expect_weather_arguments(arguments);
    EXPECT_EQ(content, "");
    EXPECT_EQ(events.back()["choices"][0]["finish_reason"], "tool_calls");
  }
}

TEST_F(ServerTools, ToolResultsRenderAndNoneGivesText) {
  json tools = json::array({json::parse(kTool)});
  json messages = json::array(
      {{{"role", "user"}, {"content", "Weather in Oslo?"}},
       {{"role", "assistant"},
        {"content", nullptr},
        {"tool_calls", {{{"id", "call_1"}, {"type", "function"}, {"function", {{"name", "get_weather"}, {"arguments", "{\"city\":\"Oslo\",\"days\":1}"}}}}}}},
       {{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", "sunny"}}});
  json r = ok(g_hermes, "/v1/chat/completions", {{"messages", messages}, {"tools", tools}, {"seed", 1}, {"max_tokens", 8}});
  ASSERT_FALSE(r.is_null());
  EXPECT_TRUE(r["choices"][0]["message"]["content"].is_string() || r["choices"][0]["message"].contains("tool_calls"));
  // The plain server with tool_choice none: the tools are not offered, the reply is text.
  r = ok(g_plain, "/v1/chat/completions",
         {{"messages", messages}, {"tools", tools}, {"tool_choice", "none"}, {"seed", 1}, {"max_tokens", 8}});
  ASSERT_FALSE(r.is_null());
  EXPECT_TRUE(r["choices"][0]["message"]["content"].is_string());
  EXPECT_FALSE(r["choices"][0]["message"].contains("tool_calls"));
}

// POST /v1/responses over HTTP: plain text (non-streamed and streamed agree at temperature
// 0), and a forced function call as a function_call item, streamed as its events.
TEST_F(ServerTools, ResponsesEndpoint) {
  json body = {{"model", "m"}, {"input", "Once upon a time"}, {"max_output_tokens", 12}, {"temperature", 0}};
  json r = ok(g_plain, "/v1/responses", body);
  ASSERT_FALSE(r.is_null());
  EXPECT_EQ(r["object"], "response");
  EXPECT_EQ(r["id"].get<std::string>().rfind("resp_", 0), 0u);
  EXPECT_EQ(r["output"][0]["type"], "message");
  EXPECT_EQ(r["usage"]["output_tokens"], 12);
  EXPECT_EQ(r["status"], "incomplete");
  const std::string text = r["output"][0]["content"][0]["text"];
  body["stream"] = true;
  auto res = post(g_plain, "/v1/responses", body);
  ASSERT_TRUE(res && res->status == 200);
  std::istringstream in(res->body);
  std::string line, joined;
  json last;
  int seq = 0;
  while (std::getline(in, line)) {
    if (line.rfind("data: ", 0) != 0) continue;
    last = json::parse(line.substr(6));
    EXPECT_EQ(last["sequence_number"], seq++);
    if (last["type"] == "response.output_text.delta") joined += last["delta"].get<std::string>();
  }
  EXPECT_EQ(joined, text);
  EXPECT_EQ(last["type"], "response.incomplete");

  json tools_body = {{"input", "Weather in Oslo?"},
                     {"max_output_tokens", 300},
                     {"tools", {{{"type", "function"},
                                 {"name", "get_weather"},
                                 {"description", "The weather in a city."},
                                 {"parameters", json::parse(kTool)["function"]["parameters"]}}}},
                     {"tool_choice", "required"}};
  r = ok(g_hermes, "/v1/responses", tools_body);
  ASSERT_FALSE(r.is_null());
  ASSERT_EQ(r["output"].size(), 1u) << r.dump();
  EXPECT_EQ(r["output"][0]["type"], "function_call");
  EXPECT_EQ(r["output"][0]["name"], "get_weather");
  expect_weather_arguments(r["output"][0]["arguments"]);
  auto bad = post(g_plain, "/v1/responses", {{"input", "x"}, {"previous_response_id", "resp_1"}});
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
}

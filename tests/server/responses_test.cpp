// POST /v1/responses: the Responses request mapped onto a chat completion, the response
// object and output items, and the streamed events (no model needed).
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/openai.h"

using namespace slm::server;
using json = nlohmann::ordered_json;

namespace {

ApiError error_of(const json& body) {
  try {
    ResponsesRequest r = parse_responses_request(body.dump());
    apply_tool_choice(r.chat, slm::ToolCallFormat::hermes);
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "accepted: " << body.dump();
  return {};
}

// "event: T\ndata: {...}\n\n" messages → the data objects (the event line must name the type).
std::vector<json> events_of(const std::string& sse) {
  std::vector<json> out;
  std::istringstream in(sse);
  std::string line, event;
  while (std::getline(in, line)) {
    if (line.rfind("event: ", 0) == 0) event = line.substr(7);
    if (line.rfind("data: ", 0) != 0) continue;
    json j = json::parse(line.substr(6));
    EXPECT_EQ(j["type"], event);
    out.push_back(j);
  }
  return out;
}

const json kWeather = {{"type", "function"},
                       {"name", "get_weather"},
                       {"description", "Weather"},
                       {"strict", true},
                       {"parameters",
                        {{"type", "object"},
                         {"properties", {{"city", {{"type", "string"}}}}},
                         {"required", {"city"}},
                         {"additionalProperties", false}}}};

}  // namespace

TEST(ResponsesRequest, InputStringAndInstructions) {
  ResponsesRequest r = parse_responses_request(
      R"({"model":"x","input":"hello","instructions":"be brief","max_output_tokens":32,"temperature":0.5,
          "top_p":0.9,"store":false,"metadata":{"k":"v"},"user":"u1"})");
  EXPECT_TRUE(r.chat.chat);
  ASSERT_EQ(r.chat.messages.size(), 2u);
  EXPECT_EQ(r.chat.messages[0]["role"], "system");
  EXPECT_EQ(r.chat.messages[0]["content"], "be brief");
  EXPECT_EQ(r.chat.messages[1]["role"], "user");
  EXPECT_EQ(r.chat.messages[1]["content"], "hello");
  EXPECT_EQ(r.chat.sampling.max_tokens, 32);
  EXPECT_FLOAT_EQ(r.chat.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.chat.sampling.top_p, 0.9f);
  EXPECT_EQ(r.echo["instructions"], "be brief");
  EXPECT_EQ(r.echo["metadata"]["k"], "v");
  EXPECT_EQ(r.echo["user"], "u1");
  EXPECT_EQ(r.echo["text"]["format"]["type"], "text");
  EXPECT_TRUE(r.chat.grammar.empty());
}

TEST(ResponsesRequest, InputItemsMapToChatMessages) {
  json body = {{"input",
                {{{"role", "user"}, {"content", {{{"type", "input_text"}, {"text", "a"}}, {{"type", "input_text"}, {"text", "b"}}}}},
                 {{"type", "message"}, {"role", "assistant"}, {"content", {{{"type", "output_text"}, {"text", "ok"}}}}},
                 {{"type", "function_call"}, {"call_id", "call_1"}, {"name", "get_weather"}, {"arguments", "{\"city\":\"Oslo\"}"}},
                 {{"type", "function_call"}, {"call_id", "call_2"}, {"name", "get_weather"}, {"arguments", "{\"city\":\"Rome\"}"}},
                 {{"type", "function_call_output"}, {"call_id", "call_1"}, {"output", "sun"}},
                 {{"type", "function_call_output"}, {"call_id", "call_2"}, {"output", "rain"}}}},
               {"tools", {kWeather}}};
  ResponsesRequest r = parse_responses_request(body.dump());
  const json& m = r.chat.messages;
  ASSERT_EQ(m.size(), 4u) << m.dump();
  EXPECT_EQ(m[0]["content"][1]["text"], "b");
  EXPECT_EQ(m[1]["role"], "assistant");
  ASSERT_EQ(m[1]["tool_calls"].size(), 2u);  // the calls join the assistant turn before them
  EXPECT_EQ(m[1]["tool_calls"][0]["id"], "call_1");
  EXPECT_EQ(m[1]["tool_calls"][1]["function"]["arguments"], "{\"city\":\"Rome\"}");
  EXPECT_EQ(m[2]["role"], "tool");
  EXPECT_EQ(m[2]["tool_call_id"], "call_1");
  EXPECT_EQ(m[2]["name"], "get_weather");
  EXPECT_EQ(m[3]["content"], "rain");
  // Flat tools become chat tools; tool_choice defaults to auto.
  ASSERT_EQ(r.chat.tools.size(), 1u);
  EXPECT_EQ(r.chat.tools[0]["function"]["name"], "get_weather");
  EXPECT_EQ(r.chat.tool_choice, "auto");
  EXPECT_EQ(r.echo["tools"][0]["name"], "get_weather");
}

TEST(ResponsesRequest, TextFormatAndToolChoiceBuildGrammars) {
  json schema = {{"type", "object"}, {"properties", {{"a", {{"type", "integer"}}}}}, {"required", {"a"}}};
  ResponsesRequest r = parse_responses_request(
      json({{"input", "x"}, {"text", {{"format", {{"type", "json_schema"}, {"name", "n"}, {"strict", true}, {"schema", schema}}}}}})
          .dump());
  EXPECT_FALSE(r.chat.grammar.empty());
  EXPECT_EQ(r.echo["text"]["format"]["name"], "n");
  r = parse_responses_request(R"({"input":"x","text":{"format":{"type":"json_object"}}})");
  EXPECT_FALSE(r.chat.grammar.empty());
  r = parse_responses_request(json({{"input", "x"}, {"tools", {kWeather}}, {"tool_choice", {{"type", "function"}, {"name", "get_weather"}}}}).dump());
  EXPECT_EQ(r.chat.tool_choice, "function");
  EXPECT_EQ(r.chat.tool_choice_name, "get_weather");
  apply_tool_choice(r.chat, slm::ToolCallFormat::hermes);
  EXPECT_NE(r.chat.grammar.find("get_weather"), std::string::npos);
  EXPECT_EQ(r.echo["tool_choice"]["name"], "get_weather");
  r = parse_responses_request(json({{"input", "x"}, {"tools", {kWeather}}, {"tool_choice", "required"}}).dump());
  EXPECT_EQ(r.chat.tool_choice, "required");
}

TEST(ResponsesRequest, RefusalsNameTheField) {
  EXPECT_EQ(error_of({{"model", "m"}}).param, "input");
  EXPECT_EQ(error_of({{"input", "x"}, {"foo", 1}}).param, "foo");
  ApiError e = error_of({{"input", "x"}, {"previous_response_id", "resp_1"}});
  EXPECT_EQ(e.param, "previous_response_id");
  EXPECT_NE(e.message.find("not supported"), std::string::npos);
  EXPECT_EQ(error_of({{"input", "x"}, {"tools", {{{"type", "web_search_preview"}}}}}).param, "tools[0].type");
  EXPECT_EQ(error_of({{"input", {{{"role", "user"}, {"content", {{{"type", "input_image"}, {"image_url", "u"}}}}}}}}).param,
            "input[0].content[0]");
  EXPECT_EQ(error_of({{"input", {{{"type", "reasoning"}}}}}).param, "input[0].type");
  EXPECT_EQ(error_of({{"input", "x"}, {"max_output_tokens", -1}}).param, "max_output_tokens");
  EXPECT_EQ(error_of({{"input", "x"}, {"temperature", 5}}).param, "temperature");
  EXPECT_EQ(error_of({{"input", "x"}, {"text", {{"format", {{"type", "yaml"}}}}}}).param, "text.format.type");
  EXPECT_EQ(error_of({{"input", "x"}, {"tools", {kWeather}}, {"tool_choice", {{"type", "function"}, {"name", "nope"}}}}).param,
            "tool_choice");
  EXPECT_EQ(error_of({{"input", "x"}, {"tools", {{{"type", "function"}}}}}).param, "tools[0].name");
  EXPECT_EQ(error_of({{"input", "x"}, {"background", true}}).param, "background");
  EXPECT_EQ(error_of({{"input", json::array()}}).param, "input");
}

TEST(ResponsesObject, ShapeAndIncomplete) {
  ResponsesRequest r = parse_responses_request(R"({"input":"x","max_output_tokens":4,"temperature":0.7})");
  r.chat.model = "tiny";
  slm::IdSource ids(3);
  json out = responses_output("hi", nullptr, true, ids);
  json o = responses_object(r, "resp_1", 123, "incomplete", out, 5, 4);
  EXPECT_EQ(o["object"], "response");
  EXPECT_EQ(o["created_at"], 123);
  EXPECT_EQ(o["model"], "tiny");
  EXPECT_EQ(o["status"], "incomplete");
  EXPECT_EQ(o["incomplete_details"]["reason"], "max_output_tokens");
  EXPECT_DOUBLE_EQ(o["temperature"].get<double>(), 0.7);
  EXPECT_EQ(o["max_output_tokens"], 4);
  EXPECT_EQ(o["usage"]["input_tokens"], 5);
  EXPECT_EQ(o["usage"]["output_tokens"], 4);
  EXPECT_EQ(o["usage"]["total_tokens"], 9);
  ASSERT_EQ(o["output"].size(), 1u);
  EXPECT_EQ(o["output"][0]["type"], "message");
  EXPECT_EQ(o["output"][0]["id"].get<std::string>().rfind("msg_", 0), 0u);
  EXPECT_EQ(o["output"][0]["content"][0]["type"], "output_text");
  EXPECT_EQ(o["output"][0]["content"][0]["text"], "hi");
  EXPECT_TRUE(o["output"][0]["content"][0]["annotations"].empty());
  EXPECT_TRUE(responses_object(r, "resp_1", 1, "completed", out, 1, 1)["incomplete_details"].is_null());
  // Calls only: no message item; text and calls: both.
  ToolReply calls = tool_reply(slm::ToolCallFormat::hermes, "<tool_call>{\"name\":\"f\",\"arguments\":{\"a\":1}}</tool_call>", ids);
  out = responses_output("", &calls, false, ids);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]["type"], "function_call");
  EXPECT_EQ(out[0]["id"].get<std::string>().rfind("fc_", 0), 0u);
  EXPECT_EQ(out[0]["call_id"].get<std::string>().rfind("call_", 0), 0u);
  EXPECT_EQ(out[0]["name"], "f");
  EXPECT_EQ(out[0]["arguments"], "{\"a\":1}");
  EXPECT_EQ(out[0]["status"], "completed");
  calls.content = "well";
  EXPECT_EQ(responses_output("", &calls, false, ids).size(), 2u);
}

TEST(ResponsesStream, TextEvents) {
  ResponsesRequest r = parse_responses_request(R"({"input":"x","stream":true})");
  ResponsesStream s(r, "resp_1", 1, nullptr);
  std::string sse = s.start();  // one call at a time: the events are numbered as they are made
  sse += s.feed("Hel");
  sse += s.feed("");
  sse += s.feed("lo");
  sse += s.finish("stop", 3, 2);
  std::vector<json> ev = events_of(sse);
  std::vector<std::string> types;
  for (size_t i = 0; i < ev.size(); ++i) {
    EXPECT_EQ(ev[i]["sequence_number"], i);
    types.push_back(ev[i]["type"]);
  }
  const std::vector<std::string> expected = {
      "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
      "response.output_text.delta", "response.output_text.delta", "response.output_text.done",
      "response.content_part.done", "response.output_item.done", "response.completed"};
  EXPECT_EQ(types, expected);
  EXPECT_EQ(ev[0]["response"]["status"], "in_progress");
  EXPECT_EQ(ev[4]["delta"], "Hel");
  EXPECT_EQ(ev[4]["item_id"], ev[2]["item"]["id"]);
  EXPECT_EQ(ev[4]["output_index"], 0);
  EXPECT_EQ(ev[4]["content_index"], 0);
  EXPECT_EQ(ev[6]["text"], "Hello");
  EXPECT_EQ(ev[8]["item"]["status"], "completed");
  const json& final = ev.back()["response"];
  EXPECT_EQ(final["status"], "completed");
  EXPECT_EQ(final["output"][0]["content"][0]["text"], "Hello");
  EXPECT_EQ(final["usage"]["total_tokens"], 5);
  // Cut by max_output_tokens: response.incomplete; an empty reply is still one message.
  ResponsesStream cut(r, "resp_2", 1, nullptr);
  sse = cut.start();
  sse += cut.finish("length", 3, 0);
  ev = events_of(sse);
  EXPECT_EQ(ev.back()["type"], "response.incomplete");
  EXPECT_EQ(ev.back()["response"]["incomplete_details"]["reason"], "max_output_tokens");
  ASSERT_EQ(ev.back()["response"]["output"].size(), 1u);
  EXPECT_EQ(ev.back()["response"]["output"][0]["content"][0]["text"], "");
}

TEST(ResponsesStream, FunctionCallEvents) {
  ResponsesRequest r = parse_responses_request(json({{"input", "x"}, {"tools", {kWeather}}, {"stream", true}}).dump());
  const slm::ToolCallFormat format = slm::ToolCallFormat::hermes;
  ResponsesStream s(r, "resp_1", 1, &format);
  std::string sse = s.start();
  const std::string reply = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>";
  for (char c : reply) sse += s.feed(std::string(1, c));
  sse += s.finish("stop", 3, 20);
  std::vector<json> ev = events_of(sse);
  std::string args, done_args;
  json added;
  for (const json& e : ev) {
    EXPECT_NE(e["type"], "response.output_text.delta") << e.dump();
    if (e["type"] == "response.output_item.added") added = e["item"];
    if (e["type"] == "response.function_call_arguments.delta") args += e["delta"].get<std::string>();
    if (e["type"] == "response.function_call_arguments.done") done_args = e["arguments"];
  }
  EXPECT_EQ(added["type"], "function_call");
  EXPECT_EQ(added["name"], "get_weather");
  EXPECT_EQ(added["call_id"].get<std::string>().rfind("call_", 0), 0u);
  EXPECT_EQ(args, "{\"city\":\"Oslo\"}");
  EXPECT_EQ(done_args, args);
  const json& final = ev.back()["response"];
  EXPECT_EQ(ev.back()["type"], "response.completed");
  ASSERT_EQ(final["output"].size(), 1u);
  EXPECT_EQ(final["output"][0]["arguments"], args);
  EXPECT_EQ(final["output"][0]["status"], "completed");
}

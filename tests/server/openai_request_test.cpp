// Request validation of the OpenAI API: every bad field is a 400 that names it.
#include <gtest/gtest.h>

#include "server/openai.h"

using namespace slm::server;

namespace {

ApiError error_of(const std::string& body, bool chat) {
  try {
    parse_completion_request(body, chat);
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "accepted: " << body;
  return {};
}

}  // namespace

TEST(OpenAiRequest, ChatDefaultsAndFields) {
  CompletionRequest r = parse_completion_request(
      R"({"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"hi"}]}],
          "max_tokens":12,"temperature":0,"top_p":0.5,"stop":["a","b"],"seed":7,"stream":true,
          "stream_options":{"include_usage":true},"presence_penalty":1.5,"frequency_penalty":-1})",
      true);
  EXPECT_TRUE(r.chat);
  EXPECT_EQ(r.model, "m");
  EXPECT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.sampling.max_tokens, 12);
  EXPECT_EQ(r.sampling.temperature, 0.0f);
  EXPECT_EQ(r.sampling.top_p, 0.5f);
  EXPECT_EQ(r.sampling.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(*r.sampling.seed, 7u);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(r.sampling.presence_penalty, 1.5f);
  EXPECT_EQ(r.sampling.frequency_penalty, -1.0f);

  CompletionRequest d = parse_completion_request(R"({"prompt":"x"})", false);
  EXPECT_EQ(d.prompt, "x");
  EXPECT_EQ(d.sampling.max_tokens, -1);
  EXPECT_EQ(d.sampling.temperature, 1.0f);
  EXPECT_FALSE(d.stream);
  EXPECT_FALSE(d.sampling.seed.has_value());
  EXPECT_EQ(parse_completion_request(R"({"prompt":"x","stop":"\n"})", false).sampling.stop.size(), 1u);
}

TEST(OpenAiRequest, BadInputNamesTheField) {
  struct Case {
    const char* body;
    bool chat;
    const char* param;
  } cases[] = {
      {"{", true, ""},
      {"[]", true, ""},
      {"\"x\"", false, ""},
      {R"({})", true, "messages"},
      {R"({"messages":"hi"})", true, "messages"},
      {R"({"messages":[]})", true, "messages"},
      {R"({"messages":[1]})", true, "messages[0]"},
      {R"({"messages":[{"content":"x"}]})", true, "messages[0].role"},
      {R"({"messages":[{"role":"user","content":5}]})", true, "messages[0].content"},
      {R"({"prompt":5})", false, "prompt"},
      {R"({})", false, "prompt"},
      {R"({"prompt":"x","temperature":"hot"})", false, "temperature"},
      {R"({"prompt":"x","temperature":3})", false, "temperature"},
      {R"({"prompt":"x","top_p":1.5})", false, "top_p"},
      {R"({"prompt":"x","max_tokens":-2})", false, "max_tokens"},
      {R"({"prompt":"x","max_tokens":1.5})", false, "max_tokens"},
      {R"({"prompt":"x","n":17})", false, "n"},
      {R"({"prompt":"x","n":0})", false, "n"},
      {R"({"prompt":"x","stream":"yes"})", false, "stream"},
      {R"({"prompt":"x","stop":[1]})", false, "stop"},
      {R"({"prompt":"x","stop":["a","b","c","d","e"]})", false, "stop"},
      {R"({"prompt":"x","stop":[""]})", false, "stop"},
      {R"({"prompt":"x","model":3})", false, "model"},
      {R"({"prompt":"x","presence_penalty":9})", false, "presence_penalty"},
  };
  for (const Case& c : cases) {
    ApiError e = error_of(c.body, c.chat);
    EXPECT_EQ(e.status, 400) << c.body;
    EXPECT_EQ(e.param, c.param) << c.body << " → " << e.message;
    EXPECT_FALSE(e.message.empty());
  }
}

TEST(OpenAiRequest, ErrorBodyHasOpenAiShape) {
  ApiError e;
  e.status = 401;
  e.message = "bad key";
  e.code = "invalid_api_key";
  auto j = nlohmann::json::parse(error_body(e));
  EXPECT_EQ(j["error"]["message"], "bad key");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_TRUE(j["error"]["param"].is_null());
  EXPECT_EQ(j["error"]["code"], "invalid_api_key");
}

TEST(OpenAiResponse, ChunksAndFinal) {
  CompletionRequest chat = parse_completion_request(R"({"messages":[{"role":"user","content":"x"}]})", true);
  chat.model = "m";
  auto first = completion_chunk(chat, "id1", 5, "He", nullptr, true);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(first["choices"][0]["delta"]["content"], "He");
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  std::string stop = "stop";
  auto last = completion_chunk(chat, "id1", 5, "", &stop, false);
  EXPECT_EQ(last["choices"][0]["finish_reason"], "stop");
  EXPECT_FALSE(last["choices"][0]["delta"].contains("content"));
  auto full = completion_response(chat, "id1", 5, "Hello", "length", 3, 2);
  EXPECT_EQ(full["choices"][0]["message"]["content"], "Hello");
  EXPECT_EQ(full["usage"]["total_tokens"], 5);
  CompletionRequest comp = parse_completion_request(R"({"prompt":"x"})", false);
  EXPECT_EQ(completion_response(comp, "c", 1, "t", "stop", 1, 1)["object"], "text_completion");
}

// A body nested thousands of levels deep is refused before any recursive step sees it (it
// once overflowed the stack converting the messages into template values).
TEST(OpenAiRequest, DeepNestingIsRefusedBeforeParsing) {
  std::string deep(14000, '[');
  deep += std::string(14000, ']');
  ApiError e = error_of(R"({"messages":[{"role":"user","content":"hi","extra":)" + deep + "}]}", true);
  EXPECT_EQ(e.status, 400);
  EXPECT_NE(e.message.find("nested"), std::string::npos) << e.message;
  // At the limit it still parses; brackets inside strings do not count.
  std::string ok = std::string(kMaxRequestDepth - 3, '[') + std::string(kMaxRequestDepth - 3, ']');
  EXPECT_NO_THROW(parse_completion_request(
      R"({"messages":[{"role":"user","content":"[[[[{{{{","extra":)" + ok + "}]}", true));
  EXPECT_EQ(json_nesting_depth(R"({"a":"[\"[[[","b":[{}]})"), 3);
  EXPECT_EQ(json_nesting_depth("[[1],[[2]]]"), 3);
}

// Numbers that overflow a double are a malformed body (400), not an internal error.
TEST(OpenAiRequest, OverflowingNumberIsA400) {
  ApiError e = error_of(R"({"messages":[{"role":"user","content":"hi"}],"temperature":1e999})", true);
  EXPECT_EQ(e.status, 400);
}

// llama-server's per-request adapters.
TEST(OpenAiRequest, LoraField) {
  CompletionRequest r = parse_completion_request(R"({"prompt":"x","lora":[{"id":1,"scale":0.5},{"id":0}]})", false);
  ASSERT_TRUE(r.lora.has_value());
  EXPECT_EQ(*r.lora, (std::vector<std::pair<int, float>>{{1, 0.5f}, {0, 1.0f}}));
  EXPECT_FALSE(parse_completion_request(R"({"prompt":"x"})", false).lora.has_value());
  EXPECT_EQ(error_of(R"({"prompt":"x","lora":{"id":0}})", false).param, "lora");
  EXPECT_EQ(error_of(R"({"prompt":"x","lora":[{"scale":1}]})", false).param, "lora[0].id");
  EXPECT_EQ(error_of(R"({"prompt":"x","lora":[{"id":-1}]})", false).param, "id");
  EXPECT_EQ(error_of(R"({"prompt":"x","lora":[{"id":0,"weight":1}]})", false).param, "lora[0]");
  EXPECT_EQ(error_of(R"({"prompt":"x","lora":[{"id":0},{"id":0}]})", false).param, "lora[1].id");
  EXPECT_THROW(parse_lora_scales(ojson::parse(R"([{"id":2}])"), 2, "body"), ApiError);
}

TEST(OpenAiRequest, LogprobsFields) {
  CompletionRequest c = parse_completion_request(R"({"messages":[{"role":"user","content":"x"}],"logprobs":true,"top_logprobs":4})", true);
  EXPECT_TRUE(c.logprobs);
  EXPECT_EQ(c.top_logprobs, 4);
  EXPECT_EQ(error_of(R"({"messages":[{"role":"user","content":"x"}],"top_logprobs":2})", true).param, "top_logprobs");
  EXPECT_EQ(error_of(R"({"messages":[{"role":"user","content":"x"}],"logprobs":true,"top_logprobs":21})", true).param, "top_logprobs");
  CompletionRequest p = parse_completion_request(R"({"prompt":"x","logprobs":3})", false);
  EXPECT_TRUE(p.logprobs);
  EXPECT_EQ(p.top_logprobs, 3);
  EXPECT_EQ(error_of(R"({"prompt":"x","logprobs":6})", false).param, "logprobs");
  // The shapes: chat content entries, completions' parallel arrays with text offsets.
  std::vector<TokenLogprob> lp = {{"He", -0.5, {{"He", -0.5}, {"It", -1.5}}}, {"llo", -0.25, {}}};
  const ojson chat = logprobs_json(c, lp, 0);
  EXPECT_EQ(chat["content"][0]["token"], "He");
  EXPECT_EQ(chat["content"][0]["bytes"], ojson::parse("[72,101]"));
  EXPECT_EQ(chat["content"][0]["top_logprobs"][1]["token"], "It");
  const ojson comp = logprobs_json(p, lp, 4);
  EXPECT_EQ(comp["tokens"], ojson::parse(R"(["He","llo"])"));
  EXPECT_EQ(comp["text_offset"], ojson::parse("[4,6]"));
  EXPECT_EQ(comp["top_logprobs"][0]["It"], -1.5);
}

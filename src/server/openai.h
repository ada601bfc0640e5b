// The OpenAI HTTP API's request and response shapes: parsing and validating a
// /v1/chat/completions or /v1/completions body, and building the JSON slm answers with.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/tool_calls.h"

namespace slm::server {

using ojson = nlohmann::ordered_json;

// An error in OpenAI's shape: {"error":{"message","type","param","code"}} with an HTTP status.
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // empty → null
  std::string code;   // empty → null
};
std::string error_body(const ApiError& e);

struct SamplingParams {
  int max_tokens = -1;  // -1: until the context is full or the model stops
  float temperature = 1.0f;
  float top_p = 1.0f;
  int top_k = 0;
  float min_p = 0.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  float repeat_penalty = 1.0f;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  std::vector<std::pair<int32_t, float>> logit_bias;  // token id → bias in [-100, 100]
};

struct CompletionRequest {
  bool chat = false;  // /v1/chat/completions (messages) or /v1/completions (prompt)
  std::string model;
  ojson messages;  // chat: the validated message array
  std::string prompt;  // completions
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool echo = false;           // completions: the prompt comes back before the completion
  int n = 1;                   // choices (each in its own slot)
  bool logprobs = false;       // report each generated token's log-probability
  int top_logprobs = 0;        // ... and the most likely alternatives (chat: 0..20, completions: 0..5)
  SamplingParams sampling;
  // llama-server's per-request adapters: [{"id", "scale"}]; adapters not named run at scale
  // 0. Absent: the server's current default scales.
  std::optional<std::vector<std::pair<int, float>>> lora;
  // Constrained decoding: GBNF the output must follow (from response_format json_object /
  // json_schema, llama-server's "grammar" or "json_schema", or a forced tool call); already
  // checked. Empty: unconstrained.
  std::string grammar;
  // Tool calling (chat only): the tools as sent (empty array: none) and tool_choice
  // ("auto", "none", "required", or "function" with tool_choice_name).
  ojson tools = ojson::array();
  std::string tool_choice = "none";
  std::string tool_choice_name;
  bool parallel_tool_calls = true;
  // The reply is parsed for tool calls (tools given and tool_choice is not "none").
  bool parse_tools() const { return chat && !tools.empty() && tool_choice != "none"; }
};

// Request bodies nested deeper than this (arrays and objects) are refused before parsing.
constexpr int kMaxRequestDepth = 64;
// The deepest nesting of arrays and objects in a JSON text (strings skipped; no validation).
int json_nesting_depth(std::string_view text);

// [{"id": N, "scale": S}, ...] as in llama-server's "lora" field and POST /lora-adapters;
// ids are checked against n_adapters. Throws ApiError (400) naming `param`.
std::vector<std::pair<int, float>> parse_lora_scales(const ojson& v, int n_adapters, const std::string& param);

// One generated token's log-probability (of the model's distribution, before sampling) and
// the most likely alternatives, in OpenAI's shapes.
struct TokenLogprob {
  std::string token;
  double logprob = 0;
  std::vector<std::pair<std::string, double>> top;
};
// chat: {"content": [{token, logprob, bytes, top_logprobs: [...]}]}; completions: {tokens,
// token_logprobs, top_logprobs: [{token: logprob}], text_offset} with offsets from text_start.
ojson logprobs_json(const CompletionRequest& req, const std::vector<TokenLogprob>& lp, size_t text_start);

// Parses and validates a request body; throws ApiError (400) naming the field at fault.
CompletionRequest parse_completion_request(const std::string& body, bool chat);

// For tool_choice "required" or a named function: sets r.grammar to exactly one call in the
// template's format, prefix + {"name":"<allowed name>","<arguments_key>":<its parameters>} +
// suffix. Nothing for "auto" / "none". Throws ApiError (400) when a schema is unsupported.
void apply_tool_choice(CompletionRequest& r, ToolCallFormat format);
// GBNF text with every rule name prefixed (literals, classes, repetition counts untouched).
std::string prefix_grammar_rules(const std::string& gbnf, const std::string& prefix);

// The tool calls of a finished reply, in OpenAI's shapes.
struct ToolReply {
  std::string content;  // the text that is not calls
  ojson tool_calls = ojson::array();  // [{id, type:"function", function:{name, arguments}}]
};
ToolReply tool_reply(ToolCallFormat format, const std::string& text, IdSource& ids);
// The chat message: content (null when empty and there are calls) and tool_calls.
ojson tool_message(const ToolReply& reply);

// Streaming: text deltas in, OpenAI chat deltas out ({"content": ...} or
// {"tool_calls": [{index, id, type, function: {name, arguments}}]}).
class ToolDeltaStream {
 public:
  ToolDeltaStream(ToolCallFormat format, IdSource& ids) : parser_(format, ids) {}
  std::vector<ojson> feed(const std::string& text);
  std::vector<ojson> finish();
  bool has_calls() const { return calls_ > 0; }

 private:
  void events(std::vector<ojson>& out);
  ToolCallStreamParser parser_;
  size_t calls_ = 0;
};

// Response pieces.
ojson usage_json(int prompt_tokens, int completion_tokens);
ojson completion_response(const CompletionRequest& req, const std::string& id, int64_t created,
                          const std::string& text, const std::string& finish_reason,
                          int prompt_tokens, int completion_tokens);
// One streamed chunk: text delta (chat: in choices[0].delta), finish_reason when set.
ojson completion_chunk(const CompletionRequest& req, const std::string& id, int64_t created,
                       const std::string& text, const std::string* finish_reason, bool first);

// ---- POST /v1/responses (OpenAI's Responses API), mapped onto a chat completion ----------

struct ResponsesRequest {
  CompletionRequest chat;  // the request as a chat completion (messages, tools, grammar, ...)
  ojson echo;              // the fields a response object echoes (instructions, tools, text, ...)
};
// Parses and validates a /v1/responses body: input (a string or message / function_call /
// function_call_output items), instructions, text.format, flat tools, tool_choice, ... Unknown
// fields and features slm does not have (previous_response_id, background, non-function tools,
// non-text inputs) are refused. Throws ApiError (400) naming the field at fault.
ResponsesRequest parse_responses_request(const std::string& body);

// "<prefix>_" + 24 alphanumerics ("resp", "msg", "fc").
std::string responses_id(const char* prefix, IdSource& ids);

// The response object: status "in_progress" / "completed" / "incomplete" (the finish reason
// "length": incomplete_details {reason: "max_output_tokens"}), the output items and usage.
ojson responses_object(const ResponsesRequest& r, const std::string& id, int64_t created, const std::string& status,
                       const ojson& output, int prompt_tokens, int completion_tokens);
// The output items of a finished reply: a message (unless the reply is only tool calls)
// and one function_call item per call.
ojson responses_output(const std::string& text, const ToolReply* calls, bool incomplete, IdSource& ids);

// Streaming: generated text in, Server-Sent Events out ("event: <type>\ndata: {...}\n\n",
// each with its sequence_number): response.created / in_progress, output_item.added,
// content_part.added, output_text.delta ... done, function_call_arguments.delta / done,
// output_item.done, then response.completed (or response.incomplete) with the full object.
class ResponsesStream {
 public:
  // tools: the reply is parsed for calls in this format (nullptr: plain text).
  ResponsesStream(ResponsesRequest r, std::string id, int64_t created, const ToolCallFormat* tools);
  std::string start();
  std::string feed(const std::string& text);
  std::string finish(const std::string& finish_reason, int prompt_tokens, int completion_tokens);
  std::string fail(const std::string& message);

 private:
  std::string event(const char* type, ojson data);
  void open_message(std::string& out);
  void text(const std::string& delta, std::string& out);
  void call_start(const std::string& call_id, const std::string& name, std::string& out);
  void call_arguments(const std::string& delta, std::string& out);
  void close(std::string& out, bool incomplete = false);
  void deltas(const std::vector<ojson>& ds, std::string& out);

  ResponsesRequest req_;
  std::string id_;
  int64_t created_;
  IdSource ids_;
  std::unique_ptr<IdSource> call_ids_;
  std::unique_ptr<ToolDeltaStream> tools_;
  ojson output_ = ojson::array();
  enum { none, message, call } open_ = none;
  int64_t seq_ = 0;
};

}  // namespace slm::server

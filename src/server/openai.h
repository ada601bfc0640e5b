// The OpenAI HTTP API's request and response shapes: parsing and validating a
// /v1/chat/completions or /v1/completions body, and building the JSON slm answers with.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

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

// Response pieces.
ojson usage_json(int prompt_tokens, int completion_tokens);
ojson completion_response(const CompletionRequest& req, const std::string& id, int64_t created,
                          const std::string& text, const std::string& finish_reason,
                          int prompt_tokens, int completion_tokens);
// One streamed chunk: text delta (chat: in choices[0].delta), finish_reason when set.
ojson completion_chunk(const CompletionRequest& req, const std::string& id, int64_t created,
                       const std::string& text, const std::string* finish_reason, bool first);

}  // namespace slm::server

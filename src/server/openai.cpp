#include "server/openai.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iterator>

namespace slm::server {
namespace {

[[noreturn]] void bad(const std::string& param, const std::string& msg) {
  ApiError e;
  e.status = 400;
  e.message = msg;
  e.param = param;
  throw e;
}

const char* json_kind(const ojson& v) {
  switch (v.type()) {
    case ojson::value_t::null: return "null";
    case ojson::value_t::boolean: return "a boolean";
    case ojson::value_t::string: return "a string";
    case ojson::value_t::array: return "an array";
    case ojson::value_t::object: return "an object";
    default: return "a number";
  }
}

double get_number(const ojson& body, const char* key, double lo, double hi, double def) {
  if (!body.contains(key) || body[key].is_null()) return def;
  const ojson& v = body[key];
  if (!v.is_number()) bad(key, std::string("'") + key + "' must be a number, got " + json_kind(v));
  double x = v.get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    bad(key, std::string("'") + key + "' must be between " + std::to_string(lo) + " and " +
                 std::to_string(hi) + ", got " + v.dump());
  return x;
}

int64_t get_integer(const ojson& body, const char* key, int64_t lo, int64_t hi, int64_t def) {
  if (!body.contains(key) || body[key].is_null()) return def;
  const ojson& v = body[key];
  if (!v.is_number_integer() && !(v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()))
    bad(key, std::string("'") + key + "' must be an integer, got " + (v.is_number() ? v.dump() : json_kind(v)));
  double d = v.get<double>();
  if (d < static_cast<double>(lo) || d > static_cast<double>(hi))
    bad(key, std::string("'") + key + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                 ", got " + v.dump());
  return v.is_number_unsigned() ? static_cast<int64_t>(v.get<uint64_t>() & 0x7FFFFFFFFFFFFFFFull) : v.get<int64_t>();
}

bool get_bool(const ojson& body, const char* key, bool def) {
  if (!body.contains(key) || body[key].is_null()) return def;
  if (!body[key].is_boolean()) bad(key, std::string("'") + key + "' must be a boolean, got " + json_kind(body[key]));
  return body[key].get<bool>();
}

// Text of a message's content: a string, or a list of parts of which the text ones count.
void validate_content(const ojson& content, size_t index) {
  std::string where = "messages[" + std::to_string(index) + "].content";
  if (content.is_string() || content.is_null()) return;
  if (!content.is_array()) bad(where, "'" + where + "' must be a string or an array of parts, got " + json_kind(content));
  for (const ojson& part : content) {
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string())
      bad(where, "each part of '" + where + "' must be an object with a 'type'");
    if (part["type"] == "text" && !(part.contains("text") && part["text"].is_string()))
      bad(where, "a text part of '" + where + "' must have a string 'text'");
  }
}

}  // namespace

int json_nesting_depth(std::string_view text) {
  int depth = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;  // skips the escaped character, a quote included
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

std::string error_body(const ApiError& e) {
  ojson j = {{"error",
              {{"message", e.message},
               {"type", e.type},
               {"param", e.param.empty() ? ojson(nullptr) : ojson(e.param)},
               {"code", e.code.empty() ? ojson(nullptr) : ojson(e.code)}}}};
  return j.dump(-1, ' ', false, ojson::error_handler_t::replace);
}

CompletionRequest parse_completion_request(const std::string& body_text, bool chat) {
  // Checked before parsing: every later step (validation, template values, dumps) recurses.
  if (json_nesting_depth(body_text) > kMaxRequestDepth)
    bad("", "the request body is nested more than " + std::to_string(kMaxRequestDepth) + " levels deep");
  ojson body;
  try {
    body = ojson::parse(body_text);
  } catch (const ojson::exception& e) {  // parse errors and number overflow (1e999) alike
    bad("", std::string("malformed JSON in the request body: ") + e.what());
  }
  if (!body.is_object()) bad("", std::string("the request body must be a JSON object, got ") + json_kind(body));

  CompletionRequest r;
  r.chat = chat;
  if (body.contains("model") && !body["model"].is_null()) {
    if (!body["model"].is_string()) bad("model", "'model' must be a string");
    r.model = body["model"].get<std::string>();
  }

  if (chat) {
    if (!body.contains("messages")) bad("messages", "'messages' is required");
    const ojson& m = body["messages"];
    if (!m.is_array()) bad("messages", std::string("'messages' must be an array, got ") + json_kind(m));
    if (m.empty()) bad("messages", "'messages' must not be empty");
    for (size_t k = 0; k < m.size(); ++k) {
      std::string where = "messages[" + std::to_string(k) + "]";
      if (!m[k].is_object()) bad(where, "'" + where + "' must be an object");
      if (!m[k].contains("role") || !m[k]["role"].is_string()) bad(where + ".role", "'" + where + ".role' must be a string");
      static const char* const kRoles[] = {"system", "developer", "user", "assistant", "tool"};
      const std::string role = m[k]["role"];
      if (std::find(std::begin(kRoles), std::end(kRoles), role) == std::end(kRoles))
        bad(where + ".role", "'" + where + ".role' is '" + role + "'; expected system, developer, user, assistant or tool");
      // null content is what clients send on an assistant turn that called tools.
      if (m[k].contains("content") && !m[k]["content"].is_null()) validate_content(m[k]["content"], k);
    }
    r.messages = m;
  } else {
    if (!body.contains("prompt")) bad("prompt", "'prompt' is required");
    const ojson& p = body["prompt"];
    if (p.is_string()) {
      r.prompt = p.get<std::string>();
    } else if (p.is_array() && p.size() == 1 && p[0].is_string()) {
      r.prompt = p[0].get<std::string>();
    } else {
      bad("prompt", std::string("'prompt' must be a string (or an array of one string), got ") + json_kind(p));
    }
  }

  r.stream = get_bool(body, "stream", false);
  if (body.contains("stream_options") && !body["stream_options"].is_null()) {
    const ojson& so = body["stream_options"];
    if (!so.is_object()) bad("stream_options", "'stream_options' must be an object");
    r.include_usage = get_bool(so, "include_usage", false);
  }
  // Fields that would change the answer's meaning are refused until slm implements them,
  // never silently dropped.
  auto refuse = [&](const char* key, const std::string& why) {
    bad(key, "'" + std::string(key) + "' is not supported by this server yet (" + why + ")");
  };
  r.n = int(get_integer(body, "n", 1, 16, 1));
  if (body.contains("response_format") && !body["response_format"].is_null()) {
    const ojson& rf = body["response_format"];
    if (!rf.is_object() || !rf.contains("type") || !rf["type"].is_string())
      bad("response_format", "'response_format' must be an object with a 'type'");
    if (rf["type"] != "text") refuse("response_format", "structured output");
  }
  if (body.contains("tools") && !body["tools"].is_null() && !(body["tools"].is_array() && body["tools"].empty()))
    refuse("tools", "tool calling");
  if (body.contains("tool_choice") && !body["tool_choice"].is_null() && body["tool_choice"] != "none" &&
      body["tool_choice"] != "auto")
    refuse("tool_choice", "tool calling");
  if (body.contains("functions") && !body["functions"].is_null()) refuse("functions", "tool calling");
  if (chat) {
    r.logprobs = get_bool(body, "logprobs", false);
    r.top_logprobs = int(get_integer(body, "top_logprobs", 0, 20, 0));
    if (r.top_logprobs > 0 && !r.logprobs) bad("top_logprobs", "'top_logprobs' needs 'logprobs': true");
  } else {
    if (body.contains("logprobs") && !body["logprobs"].is_null()) {
      r.logprobs = true;
      r.top_logprobs = int(get_integer(body, "logprobs", 0, 5, 0));
    }
    r.echo = get_bool(body, "echo", false);
    if (body.contains("suffix") && !body["suffix"].is_null()) refuse("suffix", "fill-in-the-middle");
    if (body.contains("best_of") && !body["best_of"].is_null() && get_integer(body, "best_of", 1, 1, 1) != 1)
      refuse("best_of", "several candidates");
  }
  SamplingParams& s = r.sampling;
  int64_t max_tokens = get_integer(body, "max_tokens", 0, 1 << 24, -1);
  max_tokens = get_integer(body, "max_completion_tokens", 0, 1 << 24, max_tokens);
  s.max_tokens = static_cast<int>(max_tokens);
  s.temperature = static_cast<float>(get_number(body, "temperature", 0, 2, 1));
  s.top_p = static_cast<float>(get_number(body, "top_p", 0, 1, 1));
  s.top_k = static_cast<int>(get_integer(body, "top_k", 0, 1 << 20, 0));
  s.min_p = static_cast<float>(get_number(body, "min_p", 0, 1, 0));
  s.presence_penalty = static_cast<float>(get_number(body, "presence_penalty", -2, 2, 0));
  s.frequency_penalty = static_cast<float>(get_number(body, "frequency_penalty", -2, 2, 0));
  s.repeat_penalty = static_cast<float>(get_number(body, "repeat_penalty", 0, 10, 1));
  if (body.contains("seed") && !body["seed"].is_null())
    s.seed = static_cast<uint64_t>(get_integer(body, "seed", INT64_MIN, INT64_MAX, 0));
  if (body.contains("stop") && !body["stop"].is_null()) {
    const ojson& st = body["stop"];
    if (st.is_string()) {
      s.stop.push_back(st.get<std::string>());
    } else if (st.is_array()) {
      if (st.size() > 4) bad("stop", "'stop' may hold at most 4 sequences");
      for (const ojson& x : st) {
        if (!x.is_string()) bad("stop", "'stop' must be a string or an array of strings");
        s.stop.push_back(x.get<std::string>());
      }
    } else {
      bad("stop", std::string("'stop' must be a string or an array of strings, got ") + json_kind(st));
    }
    for (const std::string& x : s.stop)
      if (x.empty()) bad("stop", "'stop' sequences must not be empty");
  }
  if (body.contains("lora") && !body["lora"].is_null()) r.lora = parse_lora_scales(body["lora"], -1, "lora");
  if (body.contains("logit_bias") && !body["logit_bias"].is_null()) {
    const ojson& lb = body["logit_bias"];
    if (!lb.is_object()) bad("logit_bias", "'logit_bias' must be an object of token id → bias");
    if (lb.size() > 1024) bad("logit_bias", "'logit_bias' may hold at most 1024 entries");
    for (auto it = lb.begin(); it != lb.end(); ++it) {
      const std::string& key = it.key();
      char* end = nullptr;
      const long long id = std::strtoll(key.c_str(), &end, 10);
      if (key.empty() || *end != '\0' || id < 0 || id > INT32_MAX)
        bad("logit_bias", "'logit_bias' keys must be token ids, got '" + key + "'");
      if (!it.value().is_number()) bad("logit_bias", "'logit_bias' values must be numbers");
      const double bias = it.value().get<double>();
      if (!std::isfinite(bias) || bias < -100 || bias > 100) bad("logit_bias", "'logit_bias' values must be in [-100, 100]");
      s.logit_bias.emplace_back(int32_t(id), bias <= -100 ? -INFINITY : float(bias));
    }
  }
  return r;
}

std::vector<std::pair<int, float>> parse_lora_scales(const ojson& v, int n_adapters, const std::string& param) {
  if (!v.is_array()) bad(param, "'" + param + "' must be an array of {\"id\", \"scale\"}, got " + json_kind(v));
  std::vector<std::pair<int, float>> out;
  for (size_t k = 0; k < v.size(); ++k) {
    const std::string where = param + "[" + std::to_string(k) + "]";
    if (!v[k].is_object()) bad(where, "'" + where + "' must be an object {\"id\", \"scale\"}");
    for (auto it = v[k].begin(); it != v[k].end(); ++it)
      if (it.key() != "id" && it.key() != "scale") bad(where, "'" + where + "' has an unknown field '" + it.key() + "'");
    if (!v[k].contains("id")) bad(where + ".id", "'" + where + ".id' is required");
    const int64_t id = get_integer(v[k], "id", 0, 1 << 20, 0);
    if (n_adapters >= 0 && id >= n_adapters)
      bad(where + ".id", "'" + where + ".id' is " + std::to_string(id) + ", but the server has " +
                             std::to_string(n_adapters) + " adapter(s)");
    const double scale = get_number(v[k], "scale", -100, 100, 1);
    for (const auto& [seen, s] : out)
      if (seen == id) bad(where + ".id", "adapter " + std::to_string(id) + " is named twice in '" + param + "'");
    out.emplace_back(int(id), float(scale));
  }
  return out;
}

ojson logprobs_json(const CompletionRequest& req, const std::vector<TokenLogprob>& lp, size_t text_start) {
  auto bytes = [](const std::string& s) {
    ojson b = ojson::array();
    for (unsigned char c : s) b.push_back(int(c));
    return b;
  };
  if (req.chat) {
    ojson content = ojson::array();
    for (const TokenLogprob& t : lp) {
      ojson top = ojson::array();
      for (const auto& [tok, v] : t.top) top.push_back({{"token", tok}, {"logprob", v}, {"bytes", bytes(tok)}});
      content.push_back({{"token", t.token}, {"logprob", t.logprob}, {"bytes", bytes(t.token)}, {"top_logprobs", top}});
    }
    return {{"content", content}, {"refusal", nullptr}};
  }
  ojson tokens = ojson::array(), values = ojson::array(), tops = ojson::array(), offsets = ojson::array();
  size_t offset = text_start;
  for (const TokenLogprob& t : lp) {
    tokens.push_back(t.token);
    values.push_back(t.logprob);
    ojson top = ojson::object();
    for (const auto& [tok, v] : t.top) top[tok] = v;
    tops.push_back(top);
    offsets.push_back(offset);
    offset += t.token.size();
  }
  return {{"tokens", tokens}, {"token_logprobs", values}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

ojson usage_json(int prompt_tokens, int completion_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

ojson completion_response(const CompletionRequest& req, const std::string& id, int64_t created,
                          const std::string& text, const std::string& finish_reason,
                          int prompt_tokens, int completion_tokens) {
  ojson choice;
  if (req.chat) {
    choice = {{"index", 0},
              {"message", {{"role", "assistant"}, {"content", text}}},
              {"logprobs", nullptr},
              {"finish_reason", finish_reason}};
  } else {
    choice = {{"index", 0}, {"text", text}, {"logprobs", nullptr}, {"finish_reason", finish_reason}};
  }
  return {{"id", id},
          {"object", req.chat ? "chat.completion" : "text_completion"},
          {"created", created},
          {"model", req.model},
          {"choices", ojson::array({choice})},
          {"usage", usage_json(prompt_tokens, completion_tokens)}};
}

ojson completion_chunk(const CompletionRequest& req, const std::string& id, int64_t created,
                       const std::string& text, const std::string* finish_reason, bool first) {
  ojson choice;
  ojson fr = finish_reason ? ojson(*finish_reason) : ojson(nullptr);
  if (req.chat) {
    ojson delta = ojson::object();
    if (first) delta["role"] = "assistant";
    if (!text.empty() || (first && !finish_reason)) delta["content"] = text;
    choice = {{"index", 0}, {"delta", delta}, {"logprobs", nullptr}, {"finish_reason", fr}};
  } else {
    choice = {{"index", 0}, {"text", text}, {"logprobs", nullptr}, {"finish_reason", fr}};
  }
  return {{"id", id},
          {"object", req.chat ? "chat.completion.chunk" : "text_completion"},
          {"created", created},
          {"model", req.model},
          {"choices", ojson::array({choice})}};
}

}  // namespace slm::server

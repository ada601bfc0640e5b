#include "server/openai.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iterator>

#include "slm/error.h"
#include "slm/sampler.h"

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
  // Constrained output: at most one of response_format (json types), grammar, json_schema.
  const char* constraint = nullptr;
  auto constrain = [&](const char* key, std::string gbnf) {
    if (constraint)
      bad(key, std::string("'") + key + "' and '" + constraint + "' cannot be used together: give one constraint");
    constraint = key;
    r.grammar = std::move(gbnf);
  };
  auto schema_grammar = [&](const char* param, const ojson& schema) {
    if (!schema.is_object() && !schema.is_boolean())
      bad(param, std::string("'") + param + "' must be a JSON Schema object, got " + json_kind(schema));
    try {
      return json_schema_grammar(schema.dump());
    } catch (const Error& e) {
      bad(param, std::string("'") + param + "': " + e.what());
    }
  };
  if (body.contains("response_format") && !body["response_format"].is_null()) {
    const ojson& rf = body["response_format"];
    if (!rf.is_object() || !rf.contains("type") || !rf["type"].is_string())
      bad("response_format", "'response_format' must be an object with a 'type'");
    const std::string type = rf["type"];
    if (type == "json_object") {
      constrain("response_format", json_object_grammar());
    } else if (type == "json_schema") {
      if (!rf.contains("json_schema") || !rf["json_schema"].is_object())
        bad("response_format", "'response_format.json_schema' must be an object with a 'schema'");
      const ojson& js = rf["json_schema"];
      if (js.contains("name") && !js["name"].is_null() && !js["name"].is_string())
        bad("response_format", "'response_format.json_schema.name' must be a string");
      if (js.contains("strict") && !js["strict"].is_null() && !js["strict"].is_boolean())
        bad("response_format", "'response_format.json_schema.strict' must be a boolean");
      // No schema: any JSON value (OpenAI requires one; llama-server accepts its absence).
      const ojson schema = js.contains("schema") && !js["schema"].is_null() ? js["schema"] : ojson::object();
      constrain("response_format", schema_grammar("response_format.json_schema.schema", schema));
    } else if (type != "text") {
      bad("response_format", "'response_format.type' is '" + type + "'; expected text, json_object or json_schema");
    }
  }
  if (body.contains("grammar") && !body["grammar"].is_null()) {
    if (!body["grammar"].is_string()) bad("grammar", "'grammar' must be a GBNF text");
    std::string g = body["grammar"];
    try {
      check_grammar(g);
    } catch (const Error& e) {
      bad("grammar", std::string("'grammar': ") + e.what());
    }
    constrain("grammar", std::move(g));
  }
  if (body.contains("json_schema") && !body["json_schema"].is_null())
    constrain("json_schema", schema_grammar("json_schema", body["json_schema"]));

  if (body.contains("functions") && !body["functions"].is_null())
    refuse("functions", "the legacy function calling; send 'tools'");
  if (body.contains("function_call") && !body["function_call"].is_null())
    refuse("function_call", "the legacy function calling; send 'tool_choice'");
  const bool has_tools = body.contains("tools") && !body["tools"].is_null();
  if (has_tools) {
    const ojson& tools = body["tools"];
    if (!tools.is_array()) bad("tools", std::string("'tools' must be an array, got ") + json_kind(tools));
    if (!chat && !tools.empty()) bad("tools", "'tools' is for /v1/chat/completions");
    for (size_t k = 0; k < tools.size(); ++k) {
      const std::string where = "tools[" + std::to_string(k) + "]";
      const ojson& t = tools[k];
      if (!t.is_object() || !t.contains("type") || t["type"] != "function")
        bad(where, "'" + where + "' must be an object with 'type': \"function\"");
      if (!t.contains("function") || !t["function"].is_object())
        bad(where + ".function", "'" + where + ".function' must be an object");
      const ojson& f = t["function"];
      if (!f.contains("name") || !f["name"].is_string() || f["name"].get<std::string>().empty())
        bad(where + ".function.name", "'" + where + ".function.name' must be a non-empty string");
      if (f.contains("description") && !f["description"].is_null() && !f["description"].is_string())
        bad(where + ".function.description", "'" + where + ".function.description' must be a string");
      if (f.contains("parameters") && !f["parameters"].is_null() && !f["parameters"].is_object())
        bad(where + ".function.parameters", "'" + where + ".function.parameters' must be a JSON Schema object");
      if (f.contains("strict") && !f["strict"].is_null() && !f["strict"].is_boolean())
        bad(where + ".function.strict", "'" + where + ".function.strict' must be a boolean");
      for (size_t j = 0; j < k; ++j)
        if (tools[j]["function"]["name"] == f["name"])
          bad(where + ".function.name", "two tools are named '" + f["name"].get<std::string>() + "'");
    }
    r.tools = tools;
  }
  r.tool_choice = r.tools.empty() ? "none" : "auto";
  if (body.contains("tool_choice") && !body["tool_choice"].is_null()) {
    const ojson& tc = body["tool_choice"];
    if (tc.is_string()) {
      const std::string v = tc;
      if (v != "none" && v != "auto" && v != "required")
        bad("tool_choice", "'tool_choice' is '" + v + "'; expected none, auto, required or {\"type\":\"function\",...}");
      r.tool_choice = v;
    } else if (tc.is_object()) {
      if (!tc.contains("type") || tc["type"] != "function" || !tc.contains("function") || !tc["function"].is_object() ||
          !tc["function"].contains("name") || !tc["function"]["name"].is_string())
        bad("tool_choice", "'tool_choice' must be {\"type\":\"function\",\"function\":{\"name\":...}}");
      r.tool_choice = "function";
      r.tool_choice_name = tc["function"]["name"];
      bool found = false;
      for (const ojson& t : r.tools) found = found || t["function"]["name"] == r.tool_choice_name;
      if (!found) bad("tool_choice", "'tool_choice' names '" + r.tool_choice_name + "', which is not in 'tools'");
    } else {
      bad("tool_choice", std::string("'tool_choice' must be a string or an object, got ") + json_kind(tc));
    }
    if (r.tools.empty() && r.tool_choice != "none")
      bad("tool_choice", "'tool_choice' is '" + r.tool_choice + "' but no 'tools' are given");
  }
  r.parallel_tool_calls = get_bool(body, "parallel_tool_calls", true);
  if ((r.tool_choice == "required" || r.tool_choice == "function") && constraint)
    bad("tool_choice", std::string("'tool_choice' ") + r.tool_choice + " and '" + constraint +
                           "' cannot be used together: both constrain the reply");
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

namespace {

bool gbnf_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

}  // namespace

std::string prefix_grammar_rules(const std::string& g, const std::string& prefix) {
  std::string out;
  out.reserve(g.size() * 2);
  size_t i = 0;
  // Copies a delimited span (literal, class, repetition count) as it is, escapes included.
  auto copy_until = [&](char close) {
    out += g[i++];
    while (i < g.size() && g[i] != close) {
      if (g[i] == '\\' && i + 1 < g.size()) out += g[i++];
      out += g[i++];
    }
    if (i < g.size()) out += g[i++];
  };
  while (i < g.size()) {
    const char c = g[i];
    if (c == '"') copy_until('"');
    else if (c == '[') copy_until(']');
    else if (c == '{') copy_until('}');
    else if (c == '#') {
      while (i < g.size() && g[i] != '\n') out += g[i++];
    } else if (gbnf_name_char(c)) {
      out += prefix;
      while (i < g.size() && gbnf_name_char(g[i])) out += g[i++];
    } else {
      out += g[i++];
    }
  }
  return out;
}

void apply_tool_choice(CompletionRequest& r, ToolCallFormat format) {
  if (!r.chat || r.tools.empty() || (r.tool_choice != "required" && r.tool_choice != "function")) return;
  std::string rules, alternatives;
  int n = 0;
  for (size_t k = 0; k < r.tools.size(); ++k) {
    const ojson& f = r.tools[k]["function"];
    const std::string name = f["name"];
    if (r.tool_choice == "function" && name != r.tool_choice_name) continue;
    ojson schema = f.contains("parameters") && f["parameters"].is_object() ? f["parameters"] : ojson{{"type", "object"}};
    // A forced call names only the declared arguments unless the schema says otherwise (as
    // llama-server does): JSON Schema's default would let the model invent any others.
    if (schema.contains("properties") && !schema.contains("additionalProperties")) schema["additionalProperties"] = false;
    std::string g;
    try {
      g = json_schema_grammar(schema.dump());
    } catch (const Error& e) {
      const std::string where = "tools[" + std::to_string(k) + "].function.parameters";
      bad(where, "'" + where + "': " + e.what());
    }
    const std::string p = "t" + std::to_string(k) + "-";
    rules += prefix_grammar_rules(g, p) + "\n";
    const std::string call = "call-" + std::to_string(k);
    rules += call + " ::= " + gbnf_literal("{\"name\":" + ojson(name).dump() + ",\"" + arguments_key(format) + "\":") +
             " " + p + "root " + gbnf_literal("}") + "\n";
    alternatives += (n++ ? " | " : "") + call;
  }
  r.grammar = "root ::= " + gbnf_literal(tool_call_prefix(format)) + " ( " + alternatives + " ) " +
              gbnf_literal(tool_call_suffix(format)) + "\n" + rules;
  try {
    check_grammar(r.grammar);
  } catch (const Error& e) {
    bad("tools", std::string("cannot build the grammar of a tool call: ") + e.what());
  }
}

ToolReply tool_reply(ToolCallFormat format, const std::string& text, IdSource& ids) {
  ParsedReply p = parse_tool_calls(format, text, ids);
  ToolReply out;
  out.content = p.content;
  for (const ToolCall& c : p.calls)
    out.tool_calls.push_back({{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
  return out;
}

ojson tool_message(const ToolReply& reply) {
  ojson m = {{"role", "assistant"}, {"content", reply.content}};
  if (!reply.tool_calls.empty()) {
    if (reply.content.empty()) m["content"] = nullptr;
    m["tool_calls"] = reply.tool_calls;
  }
  return m;
}

void ToolDeltaStream::events(std::vector<ojson>& out) {
  for (const ToolCallEvent& e : parser_.take_events()) {
    if (!e.id.empty() || !e.name.empty()) {
      ojson call = {{"index", e.index}};
      if (!e.id.empty()) call["id"] = e.id;
      call["type"] = "function";
      call["function"] = {{"name", e.name}, {"arguments", ""}};
      out.push_back({{"tool_calls", ojson::array({call})}});
    }
    if (!e.arguments.empty())
      out.push_back({{"tool_calls", ojson::array({{{"index", e.index}, {"function", {{"arguments", e.arguments}}}}})}});
  }
}

std::vector<ojson> ToolDeltaStream::feed(const std::string& text) {
  std::vector<ojson> out;
  std::string content = parser_.feed(text);
  if (!content.empty()) out.push_back({{"content", content}});
  events(out);
  return out;
}

std::vector<ojson> ToolDeltaStream::finish() {
  std::vector<ojson> out;
  const size_t emitted = parser_.content_emitted();
  ParsedReply reply = parser_.finish();
  events(out);
  if (emitted < reply.content.size()) out.push_back({{"content", reply.content.substr(emitted)}});
  calls_ = reply.calls.size();
  return out;
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

// ---- /v1/responses ------------------------------------------------------------------------

namespace {

std::string str_field(const ojson& o, const char* key, const std::string& where, bool required = true) {
  if (!o.contains(key) || o[key].is_null()) {
    if (required) bad(where + "." + key, "'" + where + "." + key + "' is required");
    return "";
  }
  if (!o[key].is_string()) bad(where + "." + key, "'" + where + "." + key + "' must be a string, got " + json_kind(o[key]));
  return o[key].get<std::string>();
}

// A Responses message content → chat content (text parts).
ojson responses_content(const ojson& c, const std::string& where) {
  if (c.is_string()) return c;
  if (!c.is_array()) bad(where, "'" + where + "' must be a string or an array of parts, got " + json_kind(c));
  ojson parts = ojson::array();
  for (size_t k = 0; k < c.size(); ++k) {
    const std::string w = where + "[" + std::to_string(k) + "]";
    const ojson& part = c[k];
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string())
      bad(w, "'" + w + "' must be an object with a 'type'");
    const std::string type = part["type"];
    if (type != "input_text" && type != "output_text" && type != "text")
      bad(w, "'" + w + ".type' is '" + type + "': content parts of this type are not supported by this server (text only)");
    parts.push_back({{"type", "text"}, {"text", str_field(part, "text", w)}});
  }
  return parts;
}

}  // namespace

std::string responses_id(const char* prefix, IdSource& ids) {
  return std::string(prefix) + "_" + ids.openai_id().substr(5);  // openai_id(): "call_" + 24
}

ResponsesRequest parse_responses_request(const std::string& body_text) {
  if (json_nesting_depth(body_text) > kMaxRequestDepth)
    bad("", "the request body is nested more than " + std::to_string(kMaxRequestDepth) + " levels deep");
  ojson body;
  try {
    body = ojson::parse(body_text);
  } catch (const ojson::exception& e) {
    bad("", std::string("malformed JSON in the request body: ") + e.what());
  }
  if (!body.is_object()) bad("", std::string("the request body must be a JSON object, got ") + json_kind(body));
  static const char* const kKnown[] = {
      "model", "input", "instructions", "max_output_tokens", "temperature", "top_p", "stream", "text", "tools",
      "tool_choice", "parallel_tool_calls", "store", "metadata", "user", "previous_response_id", "include",
      "reasoning", "truncation", "service_tier", "background", "stream_options", "prompt_cache_key",
      "safety_identifier", "top_logprobs"};
  for (auto it = body.begin(); it != body.end(); ++it)
    if (std::find_if(std::begin(kKnown), std::end(kKnown), [&](const char* k) { return it.key() == k; }) ==
        std::end(kKnown))
      bad(it.key(), "unknown field '" + it.key() + "' for /v1/responses");
  auto given = [&](const char* key) { return body.contains(key) && !body[key].is_null(); };
  auto refuse = [&](const char* key, const std::string& why) {
    bad(key, "'" + std::string(key) + "' is not supported by this server (" + why + ")");
  };
  if (given("previous_response_id")) refuse("previous_response_id", "responses are not stored; send the whole conversation in 'input'");
  if (given("background") && get_bool(body, "background", false)) refuse("background", "background responses");
  if (given("include") && !(body["include"].is_array() && body["include"].empty()))
    refuse("include", "no additional output data is available");
  if (given("reasoning") && !(body["reasoning"].is_object() && body["reasoning"].empty()))
    refuse("reasoning", "reasoning options");
  if (given("truncation") && body["truncation"] != "disabled") refuse("truncation", "only \"disabled\"");
  if (given("top_logprobs") && get_integer(body, "top_logprobs", 0, 20, 0) != 0) refuse("top_logprobs", "log-probabilities");
  get_bool(body, "store", false);  // accepted either way: nothing is stored
  if (given("metadata") && !body["metadata"].is_object()) bad("metadata", "'metadata' must be an object");
  for (const char* key : {"user", "service_tier", "prompt_cache_key", "safety_identifier"})
    if (given(key) && !body[key].is_string()) bad(key, std::string("'") + key + "' must be a string");
  if (given("stream_options") && !body["stream_options"].is_object()) bad("stream_options", "'stream_options' must be an object");

  ojson chat = ojson::object();
  if (body.contains("model")) chat["model"] = body["model"];
  ojson messages = ojson::array();
  std::string instructions;
  if (given("instructions")) {
    instructions = str_field(body, "instructions", "body");
    messages.push_back({{"role", "system"}, {"content", instructions}});
  }
  if (!given("input")) bad("input", "'input' is required");
  const ojson& input = body["input"];
  if (input.is_string()) {
    messages.push_back({{"role", "user"}, {"content", input}});
  } else if (input.is_array()) {
    std::vector<std::pair<std::string, std::string>> call_names;  // call_id → name
    for (size_t k = 0; k < input.size(); ++k) {
      const std::string where = "input[" + std::to_string(k) + "]";
      const ojson& item = input[k];
      if (!item.is_object()) bad(where, "'" + where + "' must be an object");
      const std::string type = item.contains("type") && item["type"].is_string() ? item["type"].get<std::string>() : "message";
      if (type == "message") {
        const std::string role = str_field(item, "role", where);
        if (role != "user" && role != "assistant" && role != "system" && role != "developer")
          bad(where + ".role", "'" + where + ".role' is '" + role + "'; expected user, assistant, system or developer");
        if (!item.contains("content")) bad(where + ".content", "'" + where + ".content' is required");
        messages.push_back({{"role", role}, {"content", responses_content(item["content"], where + ".content")}});
      } else if (type == "function_call") {
        const std::string call_id = str_field(item, "call_id", where);
        const std::string name = str_field(item, "name", where);
        const std::string arguments = str_field(item, "arguments", where);
        call_names.emplace_back(call_id, name);
        ojson call = {{"id", call_id}, {"type", "function"}, {"function", {{"name", name}, {"arguments", arguments}}}};
        // Calls right after an assistant turn belong to it (text, then calls, in one turn).
        if (!messages.empty() && messages.back()["role"] == "assistant") {
          ojson& m = messages.back();
          if (!m.contains("tool_calls")) m["tool_calls"] = ojson::array();
          m["tool_calls"].push_back(call);
        } else {
          messages.push_back({{"role", "assistant"}, {"content", nullptr}, {"tool_calls", ojson::array({call})}});
        }
      } else if (type == "function_call_output") {
        const std::string call_id = str_field(item, "call_id", where);
        if (!item.contains("output")) bad(where + ".output", "'" + where + ".output' is required");
        ojson m = {{"role", "tool"}, {"tool_call_id", call_id},
                   {"content", responses_content(item["output"], where + ".output")}};
        for (const auto& [id, name] : call_names)
          if (id == call_id) m["name"] = name;
        messages.push_back(m);
      } else {
        bad(where + ".type", "'" + where + ".type' is '" + type +
                                 "': input items of this type are not supported by this server (message, function_call, "
                                 "function_call_output)");
      }
    }
  } else {
    bad("input", std::string("'input' must be a string or an array of items, got ") + json_kind(input));
  }
  if (messages.empty()) bad("input", "'input' must not be empty");
  chat["messages"] = messages;
  for (const char* key : {"temperature", "top_p", "stream", "parallel_tool_calls"})
    if (body.contains(key)) chat[key] = body[key];
  if (given("max_output_tokens")) chat["max_tokens"] = get_integer(body, "max_output_tokens", 1, 1 << 24, 0);

  ojson text = {{"format", {{"type", "text"}}}};
  if (given("text")) {
    const ojson& t = body["text"];
    if (!t.is_object()) bad("text", "'text' must be an object");
    for (auto it = t.begin(); it != t.end(); ++it)
      if (it.key() != "format" && it.key() != "verbosity") bad("text", "'text' has an unknown field '" + it.key() + "'");
    if (t.contains("verbosity") && !t["verbosity"].is_null() && t["verbosity"] != "medium")
      refuse("text", "'text.verbosity' other than medium");
    if (t.contains("format") && !t["format"].is_null()) {
      const ojson& f = t["format"];
      if (!f.is_object() || !f.contains("type") || !f["type"].is_string())
        bad("text.format", "'text.format' must be an object with a 'type'");
      const std::string type = f["type"];
      if (type == "json_object") {
        chat["response_format"] = {{"type", "json_object"}};
      } else if (type == "json_schema") {
        ojson js = ojson::object();
        js["name"] = str_field(f, "name", "text.format", false);
        if (f.contains("strict")) js["strict"] = f["strict"];
        if (!f.contains("schema") || !f["schema"].is_object())
          bad("text.format.schema", "'text.format.schema' must be a JSON Schema object");
        js["schema"] = f["schema"];
        chat["response_format"] = {{"type", "json_schema"}, {"json_schema", js}};
      } else if (type != "text") {
        bad("text.format.type", "'text.format.type' is '" + type + "'; expected text, json_object or json_schema");
      }
      text["format"] = f;
    }
  }
  ojson tools = ojson::array();
  if (given("tools")) {
    const ojson& ts = body["tools"];
    if (!ts.is_array()) bad("tools", std::string("'tools' must be an array, got ") + json_kind(ts));
    ojson chat_tools = ojson::array();
    for (size_t k = 0; k < ts.size(); ++k) {
      const std::string where = "tools[" + std::to_string(k) + "]";
      const ojson& t = ts[k];
      if (!t.is_object() || !t.contains("type") || !t["type"].is_string()) bad(where, "'" + where + "' must be an object with a 'type'");
      if (t["type"] != "function")
        bad(where + ".type", "'" + where + ".type' is " + t["type"].dump() + ": tools of this type are not supported by this server (function only)");
      ojson f = {{"name", t.contains("name") ? t["name"] : ojson(nullptr)}};
      for (const char* key : {"description", "parameters", "strict"})
        if (t.contains(key)) f[key] = t[key];
      chat_tools.push_back({{"type", "function"}, {"function", f}});
    }
    chat["tools"] = chat_tools;
    tools = ts;
  }
  ojson tool_choice = tools.empty() ? ojson("none") : ojson("auto");
  if (given("tool_choice")) {
    const ojson& tc = body["tool_choice"];
    if (tc.is_object()) {
      if (!tc.contains("type") || tc["type"] != "function" || !tc.contains("name") || !tc["name"].is_string())
        bad("tool_choice", "'tool_choice' must be none, auto, required or {\"type\":\"function\",\"name\":...}");
      chat["tool_choice"] = {{"type", "function"}, {"function", {{"name", tc["name"]}}}};
    } else {
      chat["tool_choice"] = tc;
    }
    tool_choice = tc;
  }

  ResponsesRequest r;
  try {
    r.chat = parse_completion_request(chat.dump(), true);
  } catch (ApiError& e) {
    // Name the Responses field, not its chat translation.
    auto rename = [&](const std::string& from, const std::string& to) {
      for (std::string* s : {&e.param, &e.message})
        for (size_t at = 0; (at = s->find(from, at)) != std::string::npos; at += to.size()) s->replace(at, from.size(), to);
    };
    rename("max_tokens", "max_output_tokens");
    rename("response_format.json_schema.schema", "text.format.schema");
    rename("response_format", "text.format");
    rename(".function.", ".");
    rename("messages", "input");
    throw;
  }
  r.echo = {{"instructions", given("instructions") ? ojson(instructions) : ojson(nullptr)},
            {"max_output_tokens", given("max_output_tokens") ? body["max_output_tokens"] : ojson(nullptr)},
            {"metadata", given("metadata") ? body["metadata"] : ojson::object()},
            {"parallel_tool_calls", r.chat.parallel_tool_calls},
            {"temperature", r.chat.sampling.temperature},
            {"top_p", r.chat.sampling.top_p},
            {"text", text},
            {"tool_choice", tool_choice},
            {"tools", tools},
            {"store", false},  // accepted, never stored: this server keeps no responses
            {"truncation", "disabled"},
            {"user", given("user") ? body["user"] : ojson(nullptr)}};
  return r;
}

ojson responses_object(const ResponsesRequest& r, const std::string& id, int64_t created, const std::string& status,
                       const ojson& output, int prompt_tokens, int completion_tokens) {
  ojson o = {{"id", id},
             {"object", "response"},
             {"created_at", created},
             {"status", status},
             {"error", nullptr},
             {"incomplete_details", status == "incomplete" ? ojson{{"reason", "max_output_tokens"}} : ojson(nullptr)},
             {"model", r.chat.model},
             {"output", output},
             {"previous_response_id", nullptr},
             {"reasoning", nullptr}};
  o.update(r.echo);
  // Floats echoed as sent (0.7, not 0.699999988).
  o["temperature"] = double(std::round(double(r.chat.sampling.temperature) * 1e6) / 1e6);
  o["top_p"] = double(std::round(double(r.chat.sampling.top_p) * 1e6) / 1e6);
  o["usage"] = status == "in_progress"
                   ? ojson(nullptr)
                   : ojson{{"input_tokens", prompt_tokens},
                           {"input_tokens_details", {{"cached_tokens", 0}}},
                           {"output_tokens", completion_tokens},
                           {"output_tokens_details", {{"reasoning_tokens", 0}}},
                           {"total_tokens", prompt_tokens + completion_tokens}};
  return o;
}

namespace {
ojson message_item(const std::string& id, const std::string& text, const char* status) {
  return {{"type", "message"}, {"id", id}, {"status", status}, {"role", "assistant"},
          {"content", ojson::array({{{"type", "output_text"}, {"text", text}, {"annotations", ojson::array()}}})}};
}
ojson call_item(const std::string& id, const std::string& call_id, const std::string& name, const std::string& arguments,
                const char* status) {
  return {{"type", "function_call"}, {"id", id},        {"call_id", call_id},
          {"name", name},            {"arguments", arguments}, {"status", status}};
}
}  // namespace

ojson responses_output(const std::string& text, const ToolReply* calls, bool incomplete, IdSource& ids) {
  ojson out = ojson::array();
  const char* status = incomplete ? "incomplete" : "completed";
  const bool has_calls = calls && !calls->tool_calls.empty();
  const std::string content = calls ? calls->content : text;
  if (!has_calls || !content.empty()) out.push_back(message_item(responses_id("msg", ids), content, status));
  if (has_calls)
    for (const ojson& c : calls->tool_calls)
      out.push_back(call_item(responses_id("fc", ids), c["id"], c["function"]["name"], c["function"]["arguments"], status));
  return out;
}

ResponsesStream::ResponsesStream(ResponsesRequest r, std::string id, int64_t created, const ToolCallFormat* tools)
    : req_(std::move(r)), id_(std::move(id)), created_(created) {
  if (tools) {
    call_ids_ = std::make_unique<IdSource>();
    tools_ = std::make_unique<ToolDeltaStream>(*tools, *call_ids_);
  }
}

std::string ResponsesStream::event(const char* type, ojson data) {
  ojson j = {{"type", type}, {"sequence_number", seq_++}};
  j.update(data);
  return std::string("event: ") + type + "\ndata: " + j.dump(-1, ' ', false, ojson::error_handler_t::replace) + "\n\n";
}

std::string ResponsesStream::start() {
  const ojson o = responses_object(req_, id_, created_, "in_progress", ojson::array(), 0, 0);
  std::string out = event("response.created", {{"response", o}});
  return out + event("response.in_progress", {{"response", o}});
}

void ResponsesStream::open_message(std::string& out) {
  {
    ojson item = message_item(responses_id("msg", ids_), "", "in_progress");
    item["content"] = ojson::array();
    output_.push_back(item);
    out += event("response.output_item.added", {{"output_index", output_.size() - 1}, {"item", item}});
    out += event("response.content_part.added", {{"item_id", item["id"]}, {"output_index", output_.size() - 1},
                                                 {"content_index", 0},
                                                 {"part", {{"type", "output_text"}, {"text", ""}, {"annotations", ojson::array()}}}});
    output_.back()["content"] = ojson::array({{{"type", "output_text"}, {"text", ""}, {"annotations", ojson::array()}}});
    open_ = message;
  }
}

void ResponsesStream::text(const std::string& delta, std::string& out) {
  if (delta.empty()) return;
  if (open_ == call) close(out);
  if (open_ == none) open_message(out);
  ojson& item = output_.back();
  item["content"][0]["text"] = item["content"][0]["text"].get<std::string>() + delta;
  out += event("response.output_text.delta", {{"item_id", item["id"]}, {"output_index", output_.size() - 1},
                                              {"content_index", 0}, {"delta", delta}, {"logprobs", ojson::array()}});
}

void ResponsesStream::call_start(const std::string& call_id, const std::string& name, std::string& out) {
  close(out);
  ojson item = call_item(responses_id("fc", ids_), call_id, name, "", "in_progress");
  output_.push_back(item);
  out += event("response.output_item.added", {{"output_index", output_.size() - 1}, {"item", item}});
  open_ = call;
}

void ResponsesStream::call_arguments(const std::string& delta, std::string& out) {
  if (open_ != call || delta.empty()) return;
  ojson& item = output_.back();
  item["arguments"] = item["arguments"].get<std::string>() + delta;
  out += event("response.function_call_arguments.delta",
               {{"item_id", item["id"]}, {"output_index", output_.size() - 1}, {"delta", delta}});
}

void ResponsesStream::close(std::string& out, bool incomplete) {
  if (open_ == none) return;
  ojson& item = output_.back();
  const size_t index = output_.size() - 1;
  item["status"] = incomplete ? "incomplete" : "completed";
  if (open_ == message) {
    const ojson& part = item["content"][0];
    out += event("response.output_text.done", {{"item_id", item["id"]}, {"output_index", index}, {"content_index", 0},
                                               {"text", part["text"]}, {"logprobs", ojson::array()}});
    out += event("response.content_part.done",
                 {{"item_id", item["id"]}, {"output_index", index}, {"content_index", 0}, {"part", part}});
  } else {
    out += event("response.function_call_arguments.done",
                 {{"item_id", item["id"]}, {"output_index", index}, {"arguments", item["arguments"]}});
  }
  out += event("response.output_item.done", {{"output_index", index}, {"item", item}});
  open_ = none;
}

void ResponsesStream::deltas(const std::vector<ojson>& ds, std::string& out) {
  for (const ojson& d : ds) {
    if (d.contains("content")) text(d["content"].get<std::string>(), out);
    if (!d.contains("tool_calls")) continue;
    for (const ojson& c : d["tool_calls"]) {
      if (c.contains("id")) call_start(c["id"], c["function"]["name"], out);
      if (c.contains("function") && c["function"].contains("arguments"))
        call_arguments(c["function"]["arguments"].get<std::string>(), out);
    }
  }
}

std::string ResponsesStream::feed(const std::string& t) {
  std::string out;
  if (tools_) deltas(tools_->feed(t), out);
  else text(t, out);
  return out;
}

std::string ResponsesStream::finish(const std::string& finish_reason, int prompt_tokens, int completion_tokens) {
  std::string out;
  if (tools_) deltas(tools_->finish(), out);
  const bool incomplete = finish_reason == "length";
  // A reply with no text and no calls is still one (empty) message, as when not streamed.
  if (output_.empty()) open_message(out);
  close(out, incomplete);
  const std::string status = incomplete ? "incomplete" : "completed";
  const ojson o = responses_object(req_, id_, created_, status, output_, prompt_tokens, completion_tokens);
  out += event(incomplete ? "response.incomplete" : "response.completed", {{"response", o}});
  return out;
}

std::string ResponsesStream::fail(const std::string& message) {
  std::string out;
  close(out, true);
  ojson o = responses_object(req_, id_, created_, "failed", output_, 0, 0);
  o["error"] = {{"code", "server_error"}, {"message", message}};
  out += event("response.failed", {{"response", o}});
  return out;
}

}  // namespace slm::server

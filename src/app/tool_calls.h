// Tool calls in model output: which syntax a chat template teaches (Llama 3 JSON, Hermes
// <tool_call>, Mistral [TOOL_CALLS], Granite <|tool_call|>, firefunction functools, or plain
// JSON), parsing a reply back into OpenAI-style calls — at once or while it streams — and
// the literal text around one call, from which the server builds a grammar.
//
// Model output is untrusted: nothing here throws for it. Text that does not parse as calls
// stays content, unknown tool names are returned as they are (the server decides), and the
// work is linear in the length of the text.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace slm {

enum class ToolCallFormat { none, llama3_json, hermes, mistral, granite, firefunction, generic_json };

// The format a chat template's text teaches, from markers only its family writes, tried in
// this order (a Hermes template also mentions "parameters", a firefunction template is a
// Llama 3 one):
//   "<tool_call>"                → hermes        (Hermes 2/3, Qwen 2.5+)
//   "<|tool_call|>"              → granite       (Granite 3.x)
//   "[TOOL_CALLS]"               → mistral       (v0.3, Nemo, Small 3.x, Devstral)
//   "functools"                  → firefunction  (firefunction-v2)
//   "<|python_tag|>" or "\"parameters\"" → llama3_json (Llama 3.1 / 3.2 / 3.3)
//   anything else, the empty text included → generic_json (Phi-3.5, Gemma 2, ChatML, ...).
// Never returns none: that value is for callers that turn tool parsing off.
ToolCallFormat detect_tool_call_format(std::string_view chat_template);

// "llama3_json", "hermes", ... (for logs and test names).
const char* tool_call_format_name(ToolCallFormat format);

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // a JSON object serialized compactly ("{}" when the model gave none)
};

struct ParsedReply {
  std::string content;  // the text that is not calls ("" when the reply is only calls)
  std::vector<ToolCall> calls;
};

// Call ids: "call_" + 24 alphanumerics (OpenAI style), or exactly 9 alphanumerics for
// Mistral, whose templates reject any other id. Not thread-safe: one per request.
class IdSource {
 public:
  IdSource();                            // seeded from std::random_device
  explicit IdSource(std::uint64_t seed);  // reproducible ids, for tests
  std::string openai_id();
  std::string mistral_id();
  std::string next(ToolCallFormat format);  // mistral_id() for mistral, else openai_id()

 private:
  std::string alphanumerics(std::size_t count);
  std::mt19937_64 rng_;
};

// The reply text → content and calls. Same result as a ToolCallStreamParser fed the text in
// any chunks. What each format accepts:
//   hermes        <tool_call>{call}</tool_call>, repeated; the closing tag may be missing at
//                 the end of the reply; text around the blocks is content.
//   mistral       [TOOL_CALLS][{call}, ...] (an "id" of 9 alphanumerics is kept), or
//                 [TOOL_CALLS]name[ARGS]{args} / [TOOL_CALLS]name[CALL_ID]id[ARGS]{args},
//                 repeated; text before is content.
//   granite       <|tool_call|>[{call}, ...] (or one bare {call}); text before is content.
//   firefunction  functools[{call}, ...]; text before is content.
//   llama3_json   the whole reply, optionally after <|python_tag|>: {call} objects separated by
//                 ';' or newlines, or a built-in tool's name.call(key="value", ...).
//   generic_json  the whole reply: {call} or [{call}, ...], optionally in a ``` / ```json fence.
// {call} is {"name": ..., "arguments": {...}} ("parameters" also accepted, an OpenAI-style
// {"function": {...}} too); arguments given as a JSON string are decoded. A block that does
// not parse (bad JSON, no name, arguments that are not an object, trailing prose in a
// whole-reply format) is content, calls found in other blocks are kept. Whitespace before a
// call block is dropped from the content, as is whitespace after one that would begin or end
// the content. When no call is found, content == text exactly.
ParsedReply parse_tool_calls(ToolCallFormat format, std::string_view text, IdSource& ids);

// One step of a call for OpenAI's streaming deltas. The first event of call `index` carries
// its id and name (arguments empty); later events of that call carry fragments of its
// arguments (id and name empty). The fragments of a call, concatenated, equal the final
// ToolCall::arguments. Today a call's arguments come as one fragment once its JSON is
// complete (the compact serialization is only known then); names come as soon as they are
// complete where the format puts the name first (Hermes, Granite, firefunction, Mistral's
// name[ARGS] form), else with the arguments.
struct ToolCallEvent {
  std::size_t index = 0;
  std::string id;
  std::string name;
  std::string arguments;
};

// Incremental parse of a streamed reply.
// - feed() returns the content that is certainly not part of a call: a possible prefix of a
//   marker ("<tool_c") and whitespace that may precede one are held back until known.
// - in_tool_call() says as soon as a call block has begun (for the whole-reply formats that is
//   a reply opening with '{' or a fence: tentative until finish()).
// - take_events() hands over the ToolCallEvents produced so far.
// - finish() ends the reply and returns the same ParsedReply as parse_tool_calls(); the content
//   that feed() returned is always a prefix of its content, so the server streams the rest,
//   reply.content.substr(content_emitted()), as the last content delta.
// Events are provisional: if a block proves malformed after its call's name was announced,
// finish() reports that block as content (and later calls reuse its index).
class ToolCallStreamParser {
 public:
  ToolCallStreamParser(ToolCallFormat format, IdSource& ids);  // ids must outlive the parser
  ~ToolCallStreamParser();
  ToolCallStreamParser(ToolCallStreamParser&&) noexcept;
  ToolCallStreamParser& operator=(ToolCallStreamParser&&) noexcept;

  std::string feed(std::string_view delta);
  std::vector<ToolCallEvent> take_events();
  bool in_tool_call() const;
  std::size_t content_emitted() const;
  // Once only; feed() after finish() is ignored.
  ParsedReply finish();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// The literal text around one call's JSON object {"name": "...", "<arguments_key>": {...}} when
// the server constrains the reply to a call (tool_choice "required" or a named tool).
// Mistral uses its list form [TOOL_CALLS][{...}], which parse_tool_calls() reads for every
// Mistral template (the name[ARGS] form cannot wrap a whole object).
std::string tool_call_prefix(ToolCallFormat format);
std::string tool_call_suffix(ToolCallFormat format);
// "parameters" for llama3_json, "arguments" otherwise.
const char* arguments_key(ToolCallFormat format);

}  // namespace slm

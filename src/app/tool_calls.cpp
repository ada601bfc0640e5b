// Tool-call parsing: one incremental machine serves both parse_tool_calls() (the whole text fed
// at once) and streaming, so the two cannot disagree.
//
// The machine alternates between two modes:
//   content  — text is scanned for the format's start markers; what cannot begin a marker is
//              content. Whitespace is held back too, because whitespace right before a call
//              block is dropped when the block parses.
//   block    — from a marker on, a small per-format grammar consumes the block (markers,
//              separators, whole JSON values found by a resumable bracket scanner and then
//              parsed by nlohmann). The block ends at its closing text (Hermes, Mistral, ...)
//              or at the end of the reply (the whole-reply formats). A block that fails is
//              content up to where it failed, and scanning resumes there, so every byte is
//              looked at a bounded number of times.
// Every decision waits until the bytes that settle it have arrived, which makes the result
// independent of how the text was split into deltas.
#include "app/tool_calls.h"

#include <algorithm>
#include <optional>

#include <nlohmann/json.hpp>

namespace slm {

using json = nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Format detection and the grammar-side literals.

ToolCallFormat detect_tool_call_format(std::string_view chat_template) {
  auto has = [&](std::string_view marker) { return chat_template.find(marker) != std::string_view::npos; };
  if (has("<tool_call>")) return ToolCallFormat::hermes;
  if (has("<|tool_call|>")) return ToolCallFormat::granite;
  if (has("[TOOL_CALLS]")) return ToolCallFormat::mistral;
  if (has("functools")) return ToolCallFormat::firefunction;
  if (has("<|python_tag|>") || has("\"parameters\"")) return ToolCallFormat::llama3_json;
  return ToolCallFormat::generic_json;
}

const char* tool_call_format_name(ToolCallFormat format) {
  switch (format) {
    case ToolCallFormat::none: return "none";
    case ToolCallFormat::llama3_json: return "llama3_json";
    case ToolCallFormat::hermes: return "hermes";
    case ToolCallFormat::mistral: return "mistral";
    case ToolCallFormat::granite: return "granite";
    case ToolCallFormat::firefunction: return "firefunction";
    case ToolCallFormat::generic_json: return "generic_json";
  }
  return "unknown";
}

std::string tool_call_prefix(ToolCallFormat format) {
  switch (format) {
    case ToolCallFormat::hermes: return "<tool_call>\n";
    case ToolCallFormat::mistral: return "[TOOL_CALLS][";
    case ToolCallFormat::granite: return "<|tool_call|>[";
    case ToolCallFormat::firefunction: return " functools[";
    default: return "";
  }
}

std::string tool_call_suffix(ToolCallFormat format) {
  switch (format) {
    case ToolCallFormat::hermes: return "\n</tool_call>";
    case ToolCallFormat::mistral:
    case ToolCallFormat::granite:
    case ToolCallFormat::firefunction: return "]";
    default: return "";
  }
}

const char* arguments_key(ToolCallFormat format) {
  return format == ToolCallFormat::llama3_json ? "parameters" : "arguments";
}

// ---------------------------------------------------------------------------------------------
// Ids.

namespace {
constexpr std::string_view kAlphanumerics = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
}

IdSource::IdSource() : rng_(std::random_device{}()) {}
IdSource::IdSource(std::uint64_t seed) : rng_(seed) {}

std::string IdSource::alphanumerics(std::size_t count) {
  std::uniform_int_distribution<std::size_t> pick(0, kAlphanumerics.size() - 1);
  std::string id(count, ' ');
  for (char& ch : id) ch = kAlphanumerics[pick(rng_)];
  return id;
}

std::string IdSource::openai_id() { return "call_" + alphanumerics(24); }
std::string IdSource::mistral_id() { return alphanumerics(9); }
std::string IdSource::next(ToolCallFormat format) {
  return format == ToolCallFormat::mistral ? mistral_id() : openai_id();
}

// ---------------------------------------------------------------------------------------------
// Helpers for the block grammars.

namespace {

// Deeper JSON than this is not a tool call; it also keeps nlohmann's recursion bounded.
constexpr std::size_t kMaxJsonDepth = 64;

bool is_space(char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v'; }
bool is_alnum(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}
bool is_ident_char(char ch) { return is_alnum(ch) || ch == '_'; }
// Mistral's name[ARGS] form: function names as OpenAI allows them.
bool is_name_char(char ch) { return is_ident_char(ch) || ch == '-' || ch == '.'; }
bool all_space(std::string_view s) { return std::all_of(s.begin(), s.end(), is_space); }

bool is_mistral_id(const std::string& id) {
  return id.size() == 9 && std::all_of(id.begin(), id.end(), is_alnum);
}

// Bracket depth of a JSON text, strings skipped; checked before parsing text that the block
// scanner did not see (arguments given as a string).
bool nesting_within(std::string_view text, std::size_t max_depth) {
  std::size_t depth = 0;
  bool in_string = false, escape = false;
  for (char ch : text) {
    if (in_string) {
      if (escape) escape = false;
      else if (ch == '\\') escape = true;
      else if (ch == '"') in_string = false;
    } else if (ch == '"') {
      in_string = true;
    } else if (ch == '{' || ch == '[') {
      if (++depth > max_depth) return false;
    } else if ((ch == '}' || ch == ']') && depth > 0) {
      --depth;
    }
  }
  return true;
}

json parse_or_discarded(std::string_view text) {
  if (!nesting_within(text, kMaxJsonDepth)) return json(json::value_t::discarded);
  return json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
}

std::string compact(const json& value) {
  // replace: model text may hold invalid UTF-8, which dump() would otherwise throw on.
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

// An arguments value → the compact object text; a string holding JSON is decoded once.
std::optional<std::string> arguments_text(const json& value) {
  if (value.is_object()) return compact(value);
  if (value.is_string()) {
    json decoded = parse_or_discarded(value.get_ref<const std::string&>());
    if (decoded.is_object()) return compact(decoded);
  }
  return std::nullopt;
}

struct CallFields {
  std::string name, arguments, model_id;
};

// {"name", "arguments"|"parameters"} or OpenAI's {"id", "type", "function": {...}}.
std::optional<CallFields> call_fields(const json& object, ToolCallFormat format) {
  if (!object.is_object()) return std::nullopt;
  const json* source = &object;
  if (!object.contains("name")) {
    auto function = object.find("function");
    if (function == object.end() || !function->is_object()) return std::nullopt;
    source = &*function;
  }
  auto name = source->find("name");
  if (name == source->end() || !name->is_string() || name->get_ref<const std::string&>().empty()) return std::nullopt;
  CallFields fields;
  fields.name = name->get<std::string>();
  const char* first_key = format == ToolCallFormat::llama3_json ? "parameters" : "arguments";
  const char* second_key = format == ToolCallFormat::llama3_json ? "arguments" : "parameters";
  auto arguments = source->find(first_key);
  if (arguments == source->end()) arguments = source->find(second_key);
  if (arguments != source->end()) {
    std::optional<std::string> text = arguments_text(*arguments);
    if (!text) return std::nullopt;
    fields.arguments = std::move(*text);
  } else {
    // No arguments at all is a call without parameters, but only when nothing else is there:
    // {"name": "Ada", "age": 36} in a whole-reply format is an answer, not a call.
    for (const auto& [key, unused] : source->items())
      if (key != "name" && key != "id" && key != "type") return std::nullopt;
    fields.arguments = "{}";
  }
  if (auto id = object.find("id"); id != object.end() && id->is_string()) fields.model_id = id->get<std::string>();
  return fields;
}

// Llama 3's built-in tools: name.call(key="value", n=3) → {"key": "value", "n": 3}.
std::optional<json> python_keyword_arguments(std::string_view text) {
  json arguments = json::object();
  std::size_t i = 0;
  auto skip_space = [&] {
    while (i < text.size() && is_space(text[i])) ++i;
  };
  for (;;) {
    skip_space();
    if (i == text.size()) return arguments;
    std::size_t key_start = i;
    while (i < text.size() && is_ident_char(text[i])) ++i;
    if (i == key_start) return std::nullopt;
    std::string key(text.substr(key_start, i - key_start));
    skip_space();
    if (i == text.size() || text[i] != '=') return std::nullopt;
    ++i;
    skip_space();
    if (i == text.size()) return std::nullopt;
    if (text[i] == '"' || text[i] == '\'') {
      const char quote = text[i++];
      std::string value;
      for (;;) {
        if (i == text.size()) return std::nullopt;
        char ch = text[i++];
        if (ch == quote) break;
        if (ch == '\\' && i < text.size()) {
          char escaped = text[i++];
          value += escaped == 'n' ? '\n' : escaped == 't' ? '\t' : escaped == 'r' ? '\r' : escaped;
        } else {
          value += ch;
        }
      }
      arguments[key] = std::move(value);
    } else {
      std::size_t value_start = i;
      while (i < text.size() && !is_space(text[i]) && text[i] != ',') ++i;
      std::string_view word = text.substr(value_start, i - value_start);
      if (word == "True") arguments[key] = true;
      else if (word == "False") arguments[key] = false;
      else if (word == "None") arguments[key] = nullptr;
      else {
        json number = parse_or_discarded(word);
        if (!number.is_number()) return std::nullopt;
        arguments[key] = std::move(number);
      }
    }
    skip_space();
    if (i < text.size()) {
      if (text[i] != ',') return std::nullopt;
      ++i;
    }
  }
}

enum class Step { ok, need_more, fail };

// Where a JSON value starting at `pos` ends, found one byte at a time and resumable as the
// text grows. It checks brackets and the characters allowed outside strings (so prose fails
// at once, not at the end of the reply); nlohmann validates the finished value. It also picks
// out the top-level object's "name" string as soon as it is complete, so the call's name can
// be announced before its arguments have arrived.
struct JsonExtent {
  std::size_t start = 0, pos = 0;
  std::string open_brackets;
  bool in_string = false, escape = false, top_level_string = false;
  enum class Slot { key, colon, value } slot = Slot::key;
  std::size_t string_start = 0;
  std::string last_key;
  std::optional<std::string> name;

  void begin(std::size_t at) { *this = JsonExtent{}; start = pos = at; }

  static std::string decode_string(std::string_view literal) {
    json value = json::parse(literal.begin(), literal.end(), nullptr, false);
    return value.is_string() ? value.get<std::string>() : std::string();
  }

  // ok: the value is text[start, pos).
  Step advance(const std::string& text, bool allow_string) {
    for (; pos < text.size(); ++pos) {
      const char ch = text[pos];
      if (pos == start) {
        if (ch == '"' && allow_string) {
          top_level_string = in_string = true;
          continue;
        }
        if (ch != '{' && ch != '[') return Step::fail;
      }
      const bool in_top_object = open_brackets.size() == 1 && open_brackets[0] == '{';
      if (in_string) {
        if (escape) {
          escape = false;
        } else if (ch == '\\') {
          escape = true;
        } else if (ch == '"') {
          in_string = false;
          if (top_level_string) {
            ++pos;
            return Step::ok;
          }
          if (in_top_object) {
            std::string_view literal(text.data() + string_start, pos + 1 - string_start);
            if (slot == Slot::key) {
              last_key = decode_string(literal);
              slot = Slot::colon;
            } else if (slot == Slot::value && last_key == "name" && !name) {
              name = decode_string(literal);
            }
          }
        }
        continue;
      }
      switch (ch) {
        case '"':
          in_string = true;
          string_start = pos;
          break;
        case '{':
        case '[':
          open_brackets += ch;
          if (open_brackets.size() > kMaxJsonDepth) return Step::fail;
          if (open_brackets.size() == 1) slot = Slot::key;
          break;
        case '}':
        case ']':
          if (open_brackets.empty() || open_brackets.back() != (ch == '}' ? '{' : '[')) return Step::fail;
          open_brackets.pop_back();
          if (open_brackets.empty()) {
            ++pos;
            return Step::ok;
          }
          break;
        case ':':
          if (in_top_object) slot = Slot::value;
          break;
        case ',':
          if (in_top_object) slot = Slot::key;
          break;
        default:
          if (is_space(ch) || (ch >= '0' && ch <= '9') || ch == '-' || ch == '+' || ch == '.') break;
          // Letters of true, false, null and exponents.
          if (std::string_view("truefalsnE").find(ch) != std::string_view::npos) break;
          return Step::fail;
      }
    }
    return Step::need_more;
  }
};

struct Marker {
  std::string_view text;
  bool anywhere;  // else only at the start of the reply (after whitespace)
};

std::vector<Marker> markers_of(ToolCallFormat format) {
  switch (format) {
    case ToolCallFormat::none: return {};
    case ToolCallFormat::hermes: return {{"<tool_call>", true}};
    case ToolCallFormat::granite: return {{"<|tool_call|>", true}};
    case ToolCallFormat::mistral: return {{"[TOOL_CALLS]", true}};
    case ToolCallFormat::firefunction: return {{"functools", true}};
    case ToolCallFormat::llama3_json: return {{"<|python_tag|>", true}, {"{", false}};
    case ToolCallFormat::generic_json: return {{"```", false}, {"{", false}, {"[", false}};
  }
  return {};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The machine.

struct ToolCallStreamParser::Impl {
  // Block grammar states; see begin_block() for where each format starts.
  enum class State {
    hermes_open,         // ws, '{'
    hermes_close,        // ws, "</tool_call>"
    call_object,         // a {call} object is being scanned; then after_object
    list_open,           // ws, '[' (or one bare '{')
    list_item,           // ws, '{'
    list_next,           // ws, ',' or ']'
    mistral_start,       // ws, then '[' list, '{' object, or a name
    mistral_name,        // name characters
    mistral_name_end,    // ws, '['
    mistral_after_name,  // "[ARGS]" or "[CALL_ID]"
    mistral_id,          // alphanumerics up to '['
    mistral_args_tag,    // "[ARGS]"
    mistral_args_open,   // ws, '{' or '"'
    mistral_args,        // the arguments value is being scanned
    llama_start,         // ws, then '{' or a built-in tool's name
    llama_next,          // ws, optional ';', then '{' or the end
    builtin_name,        // identifier characters
    builtin_call,        // ".call("
    builtin_args,        // up to the ')' outside quotes
    generic_start,       // "```" fence, '{' or '['
    generic_fence_tag,   // the fence's language tag
    generic_value,       // ws, '{' or '['
    end_of_reply,        // ws (and the closing fence) up to the end of the reply
    done,
  };

  ToolCallFormat format;
  IdSource& ids;
  std::vector<Marker> markers;
  bool finished = false;

  // Content mode.
  std::string pending;                 // not yet emitted: held whitespace, a possible marker prefix
  std::size_t no_marker_before = 0;    // pending[0, this) is the text of a failed block
  bool start_markers_dead = false;     // past the start of the reply
  std::string content;                 // all content so far (what feed() returned, in order)
  bool text_since_last_block = false;  // non-whitespace content after the last call block

  // Block mode.
  bool in_block = false;
  std::string block;        // the text from the marker on
  std::string held_space;   // whitespace before the marker: dropped if the block parses
  std::size_t pos = 0;      // next byte of block to read
  std::size_t fail_pos = 0;
  State state = State::done;
  State after_object = State::done;
  State after_list = State::done;
  JsonExtent extent;
  bool fenced = false;
  std::size_t token_start = 0;
  std::string call_name, call_id;
  char quote = 0;
  bool escape = false;
  bool object_announced = false;  // the {call} being scanned has had its name announced
  bool call_open = false;         // the last block_calls entry still waits for its arguments

  std::vector<ToolCall> calls;        // from finished blocks
  std::vector<ToolCall> block_calls;  // from the open block
  std::vector<ToolCallEvent> events;

  Impl(ToolCallFormat f, IdSource& i) : format(f), ids(i), markers(markers_of(f)) {
    start_markers_dead = std::all_of(markers.begin(), markers.end(), [](const Marker& m) { return m.anywhere; });
  }

  // --- events

  void announce(const std::string& name, const std::string& model_id) {
    ToolCall call;
    call.id = format == ToolCallFormat::mistral && is_mistral_id(model_id) ? model_id : ids.next(format);
    call.name = name;
    ToolCallEvent event;
    event.index = calls.size() + block_calls.size();
    event.id = call.id;
    event.name = call.name;
    events.push_back(std::move(event));
    block_calls.push_back(std::move(call));
    call_open = true;
  }

  bool complete_call(const std::string& name, std::string arguments, const std::string& model_id) {
    if (!call_open) announce(name, model_id);
    else if (block_calls.back().name != name) return false;  // e.g. a second "name" key
    call_open = false;
    ToolCallEvent event;
    event.index = calls.size() + block_calls.size() - 1;
    event.arguments = arguments;
    events.push_back(std::move(event));
    block_calls.back().arguments = std::move(arguments);
    return true;
  }

  // --- content mode

  void emit(std::string_view text, std::string& out) {
    // Whitespace after a call block that opens the content (nothing came before it) is dropped
    // like whitespace before a block.
    if (content.empty() && !calls.empty()) {
      const std::size_t first = text.find_first_not_of(" \t\n\r\f\v");
      text = first == std::string_view::npos ? std::string_view() : text.substr(first);
    }
    if (text.empty()) return;
    content += text;
    out += text;
    if (!all_space(text)) text_since_last_block = true;
  }

  // Start of the longest suffix of pending that is a proper prefix of an anywhere-marker.
  std::size_t possible_marker_start() const {
    std::size_t start = pending.size();
    for (const Marker& marker : markers) {
      if (!marker.anywhere) continue;
      // (a marker cannot begin inside the text of a failed block)
      const std::size_t longest = std::min(marker.text.size() - 1, pending.size() - std::min(pending.size(), no_marker_before));
      for (std::size_t length = longest; length > 0; --length) {
        const std::size_t at = pending.size() - length;
        if (std::string_view(pending).substr(at) == marker.text.substr(0, length)) {
          start = std::min(start, at);
          break;
        }
      }
    }
    return start;
  }

  void scan_content(bool at_end, std::string& out) {
    std::size_t found = std::string::npos;
    const Marker* found_marker = nullptr;
    if (!start_markers_dead) {
      // Nothing but whitespace has come yet: a start-only marker may follow.
      const std::size_t first = pending.find_first_not_of(" \t\n\r\f\v");
      bool maybe_later = first == std::string::npos;
      if (!maybe_later) {
        std::string_view rest = std::string_view(pending).substr(first);
        for (const Marker& marker : markers) {
          if (marker.anywhere) continue;
          if (rest.substr(0, marker.text.size()) == marker.text) {
            found = first;
            found_marker = &marker;
            break;
          }
          if (rest.size() < marker.text.size() && marker.text.substr(0, rest.size()) == rest) maybe_later = true;
        }
      }
      if (!found_marker) {
        if (maybe_later && !at_end) return;  // hold everything until it is settled
        start_markers_dead = true;
      }
    }
    for (const Marker& marker : markers) {
      if (!marker.anywhere) continue;
      const std::size_t at = pending.find(marker.text, no_marker_before);
      if (at != std::string::npos && at < found) {
        found = at;
        found_marker = &marker;
      }
    }
    if (found_marker) {
      std::string_view before = std::string_view(pending).substr(0, found);
      std::size_t text_end = before.size();
      while (text_end > 0 && is_space(before[text_end - 1])) --text_end;
      emit(before.substr(0, text_end), out);
      held_space = std::string(before.substr(text_end));
      block = pending.substr(found);
      pending.clear();
      no_marker_before = 0;
      begin_block(*found_marker);
      return;
    }
    std::size_t emit_end = pending.size();
    if (!at_end && !markers.empty()) {
      emit_end = possible_marker_start();
      while (emit_end > 0 && is_space(pending[emit_end - 1])) --emit_end;
    } else if (at_end && !calls.empty() && !text_since_last_block && all_space(pending)) {
      emit_end = 0;  // only whitespace after the last call block
      pending.clear();
    }
    emit(std::string_view(pending).substr(0, emit_end), out);
    pending.erase(0, emit_end);
    no_marker_before -= std::min(no_marker_before, emit_end);
  }

  // --- block mode

  void begin_block(const Marker& marker) {
    in_block = true;
    start_markers_dead = true;
    pos = marker.text.size();
    fenced = false;
    call_open = object_announced = false;
    block_calls.clear();
    switch (format) {
      case ToolCallFormat::hermes: state = State::hermes_open; break;
      case ToolCallFormat::granite:
      case ToolCallFormat::firefunction:
        state = State::list_open;
        after_list = State::done;
        break;
      case ToolCallFormat::mistral: state = State::mistral_start; break;
      case ToolCallFormat::llama3_json:
        if (marker.text == "{") pos = 0;
        state = State::llama_start;
        break;
      case ToolCallFormat::generic_json:
        pos = 0;
        state = State::generic_start;
        break;
      case ToolCallFormat::none: state = State::done; break;
    }
  }

  void skip_space() {
    while (pos < block.size() && is_space(block[pos])) ++pos;
  }

  Step literal(std::string_view text) {
    std::string_view rest = std::string_view(block).substr(pos);
    if (rest.substr(0, text.size()) == text) {
      pos += text.size();
      return Step::ok;
    }
    return rest.size() < text.size() && text.substr(0, rest.size()) == rest ? Step::need_more : Step::fail;
  }

  void begin_object(State then) {
    extent.begin(pos);
    after_object = then;
    object_announced = false;
    state = State::call_object;
  }

  Step fail_here() {
    fail_pos = pos;
    return Step::fail;
  }

  // States whose next token may be preceded by whitespace.
  static bool skips_space(State s) {
    switch (s) {
      case State::hermes_open:
      case State::hermes_close:
      case State::list_open:
      case State::list_item:
      case State::list_next:
      case State::mistral_start:
      case State::mistral_name_end:
      case State::mistral_args_open:
      case State::llama_start:
      case State::llama_next:
      case State::generic_value:
      case State::end_of_reply: return true;
      default: return false;
    }
  }

  // Runs the block grammar as far as the text allows. ok = the block is complete at pos.
  Step run_block() {
    for (;;) {
      if (skips_space(state)) skip_space();
      const bool at_text_end = pos >= block.size();
      const char ch = at_text_end ? '\0' : block[pos];
      switch (state) {
        case State::done: return Step::ok;
        case State::hermes_open:
          if (at_text_end) return Step::need_more;
          if (ch != '{') return fail_here();
          begin_object(State::hermes_close);
          break;
        case State::hermes_close: {
          Step close = literal("</tool_call>");
          if (close == Step::ok) {
            state = State::done;
            break;
          }
          // A new <tool_call> also closes the block (models drop the closing tag); it is left
          // for content mode to open the next block.
          Step next = literal("<tool_call>");
          if (next == Step::ok) {
            pos -= std::string_view("<tool_call>").size();
            state = State::done;
            break;
          }
          if (close == Step::need_more || next == Step::need_more) return Step::need_more;
          return fail_here();
        }
        case State::call_object: {
          Step step = extent.advance(block, false);
          const bool early_names = format == ToolCallFormat::hermes || format == ToolCallFormat::granite ||
                                   format == ToolCallFormat::firefunction;
          if (early_names && extent.name && !object_announced && !extent.name->empty()) {
            announce(*extent.name, "");
            object_announced = true;
          }
          if (step == Step::need_more) return step;
          if (step == Step::fail) {
            fail_pos = extent.pos;
            return Step::fail;
          }
          pos = extent.pos;
          json object = parse_or_discarded(std::string_view(block).substr(extent.start, pos - extent.start));
          std::optional<CallFields> fields = call_fields(object, format);
          if (!fields || !complete_call(fields->name, std::move(fields->arguments), fields->model_id))
            return fail_here();
          state = after_object;
          break;
        }
        case State::list_open:
          if (at_text_end) return Step::need_more;
          if (ch == '[') {
            ++pos;
            state = State::list_item;
          } else if (ch == '{') {
            begin_object(after_list);
          } else {
            return fail_here();
          }
          break;
        case State::list_item:
          if (at_text_end) return Step::need_more;
          if (ch != '{') return fail_here();
          begin_object(State::list_next);
          break;
        case State::list_next:
          if (at_text_end) return Step::need_more;
          if (ch == ',') state = State::list_item;
          else if (ch == ']') state = after_list;
          else return fail_here();
          ++pos;
          break;
        case State::mistral_start:
          if (at_text_end) return Step::need_more;
          after_list = State::done;
          if (ch == '[') {
            ++pos;
            state = State::list_item;
          } else if (ch == '{') {
            begin_object(State::done);
          } else if (is_name_char(ch)) {
            token_start = pos;
            state = State::mistral_name;
          } else {
            return fail_here();
          }
          break;
        case State::mistral_name:
          while (pos < block.size() && is_name_char(block[pos])) ++pos;
          if (pos >= block.size()) return Step::need_more;
          call_name = block.substr(token_start, pos - token_start);
          call_id.clear();
          state = State::mistral_name_end;
          break;
        case State::mistral_name_end:
          if (at_text_end) return Step::need_more;
          if (ch != '[') return fail_here();
          state = State::mistral_after_name;
          break;
        case State::mistral_after_name: {
          Step args = literal("[ARGS]");
          if (args == Step::ok) {
            announce(call_name, "");
            state = State::mistral_args_open;
            break;
          }
          Step id = literal("[CALL_ID]");
          if (id == Step::ok) {
            token_start = pos;
            state = State::mistral_id;
            break;
          }
          if (args == Step::need_more || id == Step::need_more) return Step::need_more;
          return fail_here();
        }
        case State::mistral_id:
          while (pos < block.size() && is_alnum(block[pos])) ++pos;
          if (pos >= block.size()) return Step::need_more;
          call_id = block.substr(token_start, pos - token_start);
          state = State::mistral_args_tag;
          break;
        case State::mistral_args_tag: {
          Step step = literal("[ARGS]");
          if (step != Step::ok) return step == Step::fail ? fail_here() : step;
          announce(call_name, call_id);
          state = State::mistral_args_open;
          break;
        }
        case State::mistral_args_open:
          if (at_text_end) return Step::need_more;
          if (ch != '{' && ch != '"') return fail_here();
          extent.begin(pos);
          state = State::mistral_args;
          break;
        case State::mistral_args: {
          Step step = extent.advance(block, true);
          if (step == Step::need_more) return step;
          if (step == Step::fail) {
            fail_pos = extent.pos;
            return Step::fail;
          }
          pos = extent.pos;
          json value = parse_or_discarded(std::string_view(block).substr(extent.start, pos - extent.start));
          std::optional<std::string> arguments = arguments_text(value);
          if (!arguments || !complete_call(call_name, std::move(*arguments), "")) return fail_here();
          state = State::done;
          break;
        }
        case State::llama_start:
          if (at_text_end) return Step::need_more;
          if (ch == '{') {
            begin_object(State::llama_next);
          } else if (is_ident_char(ch)) {
            token_start = pos;
            state = State::builtin_name;
          } else {
            return fail_here();
          }
          break;
        case State::llama_next:
          if (at_text_end) return Step::need_more;
          if (ch == ';') {
            ++pos;  // a separator; newlines are whitespace
            break;
          }
          if (ch != '{') return fail_here();
          begin_object(State::llama_next);
          break;
        case State::builtin_name:
          while (pos < block.size() && is_ident_char(block[pos])) ++pos;
          if (pos >= block.size()) return Step::need_more;
          call_name = block.substr(token_start, pos - token_start);
          state = State::builtin_call;
          break;
        case State::builtin_call: {
          Step step = literal(".call(");
          if (step != Step::ok) return step == Step::fail ? fail_here() : step;
          token_start = pos;
          quote = 0;
          escape = false;
          state = State::builtin_args;
          break;
        }
        case State::builtin_args: {
          for (; pos < block.size(); ++pos) {
            const char c = block[pos];
            if (quote) {
              if (escape) escape = false;
              else if (c == '\\') escape = true;
              else if (c == quote) quote = 0;
            } else if (c == '"' || c == '\'') {
              quote = c;
            } else if (c == ')') {
              break;
            }
          }
          if (pos >= block.size()) return Step::need_more;
          std::optional<json> arguments =
              python_keyword_arguments(std::string_view(block).substr(token_start, pos - token_start));
          ++pos;
          if (!arguments || !complete_call(call_name, compact(*arguments), "")) return fail_here();
          state = State::end_of_reply;
          break;
        }
        case State::generic_start:
          after_list = State::end_of_reply;
          if (literal("```") == Step::ok) {
            fenced = true;
            state = State::generic_fence_tag;
          } else {
            state = State::generic_value;
          }
          break;
        case State::generic_fence_tag:
          while (pos < block.size() && is_ident_char(block[pos])) ++pos;
          if (pos >= block.size()) return Step::need_more;
          state = State::generic_value;
          break;
        case State::generic_value:
          if (at_text_end) return Step::need_more;
          if (ch == '{') {
            begin_object(State::end_of_reply);
          } else if (ch == '[') {
            ++pos;
            state = State::list_item;
          } else {
            return fail_here();
          }
          break;
        case State::end_of_reply:
          if (at_text_end) return Step::need_more;
          if (fenced && literal("```") == Step::ok) {
            fenced = false;
            break;
          }
          if (fenced && literal("```") == Step::need_more) return Step::need_more;
          return fail_here();
      }
    }
  }

  // States in which the end of the reply completes the block: a missing closing tag or ']'
  // after whole calls is forgiven.
  bool may_end_here() const {
    if (call_open) return false;
    switch (state) {
      case State::done:
      case State::hermes_close:
      case State::list_next:
      case State::llama_next:
      case State::end_of_reply: return true;
      default: return false;
    }
  }

  void end_block_ok() {
    for (ToolCall& call : block_calls) calls.push_back(std::move(call));
    block_calls.clear();
    in_block = false;
    text_since_last_block = false;
    pending = block.substr(std::min(pos, block.size()));
    no_marker_before = 0;
    block.clear();
    held_space.clear();
  }

  void end_block_failed() {
    // Everything up to the failure is content; scanning resumes at the failure (never at the
    // marker itself, so a failed block cannot reopen).
    const std::size_t keep = std::clamp<std::size_t>(fail_pos, 1, block.size());
    block_calls.clear();
    call_open = false;
    in_block = false;
    pending = held_space + block.substr(0, keep);
    no_marker_before = pending.size();
    pending += block.substr(keep);
    block.clear();
    held_space.clear();
  }

  void pump(bool at_end, std::string& out) {
    for (;;) {
      if (!in_block) {
        scan_content(at_end, out);
        if (!in_block) return;
        continue;
      }
      Step step = run_block();
      if (step == Step::need_more) {
        if (!at_end) return;
        if (may_end_here()) {
          pos = block.size();
          step = Step::ok;
        } else {
          fail_pos = block.size();
          step = Step::fail;
        }
      }
      if (step == Step::ok) end_block_ok();
      else end_block_failed();
    }
  }
};

ToolCallStreamParser::ToolCallStreamParser(ToolCallFormat format, IdSource& ids)
    : impl_(std::make_unique<Impl>(format, ids)) {}
ToolCallStreamParser::~ToolCallStreamParser() = default;
ToolCallStreamParser::ToolCallStreamParser(ToolCallStreamParser&&) noexcept = default;
ToolCallStreamParser& ToolCallStreamParser::operator=(ToolCallStreamParser&&) noexcept = default;

std::string ToolCallStreamParser::feed(std::string_view delta) {
  // In pieces: when a block ends, the text after it is copied back to content mode, so a
  // piece's size bounds that copy and the work stays linear however large the delta. The
  // result does not depend on the split.
  constexpr std::size_t kPiece = 256;
  std::string out;
  if (impl_->finished) return out;
  for (std::size_t at = 0; at < delta.size(); at += kPiece) {
    std::string_view piece = delta.substr(at, kPiece);
    if (impl_->in_block) impl_->block += piece;
    else impl_->pending += piece;
    impl_->pump(false, out);
  }
  return out;
}

std::vector<ToolCallEvent> ToolCallStreamParser::take_events() {
  std::vector<ToolCallEvent> events;
  events.swap(impl_->events);
  return events;
}

bool ToolCallStreamParser::in_tool_call() const { return impl_->in_block || !impl_->calls.empty(); }

std::size_t ToolCallStreamParser::content_emitted() const { return impl_->content.size(); }

ParsedReply ToolCallStreamParser::finish() {
  if (!impl_->finished) {
    std::string out;
    impl_->pump(true, out);
    impl_->finished = true;
  }
  return ParsedReply{impl_->content, impl_->calls};
}

ParsedReply parse_tool_calls(ToolCallFormat format, std::string_view text, IdSource& ids) {
  ToolCallStreamParser parser(format, ids);
  parser.feed(text);
  return parser.finish();
}

}  // namespace slm

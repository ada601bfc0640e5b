// The GGUF tokenizer metadata of a Hugging Face folder, as llama.cpp's convert_hf_to_gguf.py
// writes it: a SentencePiece vocabulary from tokenizer.model, or a byte-level BPE one from
// tokenizer.json, plus the special-token ids, add-BOS/EOS/SEP flags and chat template that
// its SpecialVocab gathers from tokenizer.json, tokenizer_config.json and config.json.
//
// Where the reference's behaviour is odd (its crude TemplateProcessing reading, the Phi-3
// rules) it is reproduced on purpose: the output must be the same GGUF. Where the reference
// would crash on a malformed file, we throw slm::Error naming the file instead.
#include "convert/hf_vocab.h"
#include "convert/json_depth.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>
#include <unordered_set>

#include "convert/sentencepiece_model.h"
#include "slm/error.h"

namespace slm::convert {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// A real tokenizer.json is at most tens of MiB; bigger is a broken or hostile file.
constexpr uintmax_t kMaxJsonBytes = uintmax_t{512} << 20;
constexpr uintmax_t kMaxTemplateBytes = uintmax_t{16} << 20;
// Largest vocabulary we build tables for (the largest real ones have ~260k tokens).
constexpr int64_t kMaxVocab = int64_t{1} << 24;
constexpr float kPadScore = -10000.0f;   // pieces the model file does not define
constexpr float kAddedScore = -1000.0f;  // tokens added on top of the SentencePiece model
constexpr const char* kSpSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space

void warn(const std::string& msg) { std::fprintf(stderr, "warning: %s\n", msg.c_str()); }

// Error messages stay on one line whatever a file contains.
std::string printable(std::string_view s, size_t max = 120) {
  std::string out;
  for (char c : s) {
    // Stop only at a character boundary, so the message stays valid UTF-8.
    if (out.size() >= max && (static_cast<unsigned char>(c) & 0xC0) != 0x80) {
      out += "...";
      break;
    }
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (static_cast<unsigned char>(c) < 0x20) out += '?';
    else out += c;
  }
  return out;
}

std::string in_quotes(std::string_view s) {
  std::string out(1, '"');
  out += printable(s);
  out += '"';
  return out;
}

// ---- files ----

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

std::string read_text(const fs::path& p, uintmax_t limit) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(p, ec);
  if (ec) throw Error(p.string() + ": cannot read (" + ec.message() + ")");
  if (size > limit)
    throw Error(p.string() + ": " + std::to_string(size) + " bytes, more than the " + std::to_string(limit >> 20) +
                " MiB allowed");
  std::ifstream f(p, std::ios::binary);
  if (!f) throw Error(p.string() + ": cannot open");
  std::string s(static_cast<size_t>(size), '\0');
  f.read(s.data(), static_cast<std::streamsize>(s.size()));
  if (static_cast<uintmax_t>(f.gcount()) != size) throw Error(p.string() + ": read error");
  return s;
}

json read_json(const fs::path& p) {
  const std::string text = read_text(p, kMaxJsonBytes);
  try {
    return json::parse(text, json_depth_guard());
  } catch (const json::exception& e) {
    throw Error(p.string() + ": invalid JSON (" + printable(e.what(), 200) + ")");
  }
}

// Runs `body`, turning any nlohmann exception that escapes the explicit checks into an
// slm::Error naming `file`.
template <class F>
auto naming_file(const std::string& file, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const json::exception& e) {
    throw Error(file + ": " + printable(e.what(), 200));
  }
}

// ---- JSON access with Python's lenience (missing = None) and our strictness on types ----

const json& null_json() {
  static const json n;
  return n;
}

// obj.get(key): null when obj is not an object or lacks the key.
const json& member(const json& obj, std::string_view key) {
  if (!obj.is_object()) return null_json();
  const auto it = obj.find(key);
  return it == obj.end() ? null_json() : *it;
}

// Python truthiness, which the reference's `if x:` tests rely on.
bool truthy(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return false;
    case json::value_t::boolean: return v.get<bool>();
    case json::value_t::number_integer: return v.get<int64_t>() != 0;
    case json::value_t::number_unsigned: return v.get<uint64_t>() != 0;
    case json::value_t::number_float: return v.get<double>() != 0;
    case json::value_t::string: return !v.get_ref<const std::string&>().empty();
    case json::value_t::array:
    case json::value_t::object: return !v.empty();
    default: return true;
  }
}

bool is_str(const json& v, std::string_view s) { return v.is_string() && v.get_ref<const std::string&>() == s; }

[[noreturn]] void wrong_type(const std::string& file, const std::string& what, const char* want, const json& v) {
  throw Error(file + ": " + what + " must be " + want + ", not " + v.type_name());
}

const json& need_object(const json& v, const std::string& file, const std::string& what) {
  if (!v.is_object()) wrong_type(file, what, "an object", v);
  return v;
}
const json& need_array(const json& v, const std::string& file, const std::string& what) {
  if (!v.is_array()) wrong_type(file, what, "an array", v);
  return v;
}
const std::string& need_string(const json& v, const std::string& file, const std::string& what) {
  if (!v.is_string()) wrong_type(file, what, "a string", v);
  return v.get_ref<const std::string&>();
}
// A token id: an integer in [0, 2^31).
int64_t need_id(const json& v, const std::string& file, const std::string& what) {
  if (!v.is_number_integer()) wrong_type(file, what, "an integer", v);
  const bool in_range = v.is_number_unsigned() ? v.get<uint64_t>() <= uint64_t{INT32_MAX}
                                               : v.get<int64_t>() >= 0 && v.get<int64_t>() <= INT32_MAX;
  if (!in_range)
    throw Error(file + ": " + what + " = " + v.dump() + " is not a valid token id");
  return v.get<int64_t>();
}

// Python's int() of an added_tokens_decoder key: optional spaces and sign, then digits.
int64_t parse_id_key(const std::string& key, const std::string& file) {
  std::string_view s(key);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  int64_t id = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), id);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size())
    throw Error(file + ": added_tokens_decoder key \"" + printable(key) + "\" is not a token id");
  if (id < 0) throw Error(file + ": added_tokens_decoder id " + std::to_string(id) + " is negative");
  return id;
}

// ---- token text ----

// Added tokens that some models fail to mark special although they are control tokens.
bool looks_special(std::string_view t) {
  if (t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]") return true;
  const auto wrapped = [&](std::string_view open, std::string_view close) {
    return t.starts_with(open) && t.ends_with(close);
  };
  return wrapped("<|", "|>") || wrapped("<\xEF\xBD\x9C", "\xEF\xBD\x9C>") || wrapped("<unused", ">");
}

// llama.cpp matches user-defined tokens against normalized text, where U+2581 is a space.
std::string sp_space_to_space(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    if (s.compare(i, 3, kSpSpace) == 0) {
      out += ' ';
      i += 3;
    } else {
      out += s[i++];
    }
  }
  return out;
}

std::string pad_token(int64_t i) { return "[PAD" + std::to_string(i) + "]"; }

int64_t checked_vocab_size(int64_t n, const std::string& where) {
  if (n <= 0 || n > kMaxVocab)
    throw Error(where + ": vocabulary size " + std::to_string(n) + " is out of range (1.." + std::to_string(kMaxVocab) +
                ")");
  return n;
}

// ---- pre-tokenizer detection ----

// GPT-2's pattern, which ByteLevel applies itself when use_regex is on.
constexpr const char* kByteLevelRegex = R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))re";

struct PreEntry {
  const char* name;                // tokenizer.ggml.pre written
  std::vector<const char*> steps;  // the regexes tokenizer.json splits with, in order
  const char* also;                // other llama.cpp names using the very same regexes
};

// The regexes as tokenizer.json writes them (Hugging Face syntax; literal CR, LF and TAB
// written as \r, \n, \t), for the pre-tokenizers llama.cpp implements (src/llama-vocab.cpp
// lists each name's regexes; where it adapted a regex, its comment gives the original).
const std::vector<PreEntry>& pre_table() {
  static const std::vector<PreEntry> t = {
      {"llama-bpe", {R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"}, "dbrx, smaug-bpe, glm4"},
      {"jais-2", {R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s{512}(?!\S)|\s{256}(?!\S)|\s{128}(?!\S)|\s{64}(?!\S)|\s{32}(?!\S)|\s{16}(?!\S)|\s{8}(?!\S)|\s{4}(?!\S)|\s{1,2}(?!\S)|\s{1})re"}, ""},
      {"deepseek-llm", {R"re([\r\n])re", R"re(\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+)re", R"re(\s?[!-/:-~！-／：-～‘-‟　-。]+)re", R"re(\s+$)re", R"re([一-龥ࠀ-一가-퟿]+)re", R"re(\p{N}+)re"}, ""},
      {"deepseek-v3", {R"re(\p{N}{1,3})re", R"re([一-龥぀-ゟ゠-ヿ]+)re", R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"}, "hunyuan-dense, joyai-llm"},
      {"deepseek-coder", {R"re([\r\n])re", R"re(\s?\p{L}+)re", R"re(\s?\p{P}+)re", R"re([一-龥ࠀ-一가-퟿]+)re", R"re(\p{N})re"}, ""},
      {"starcoder", {R"re(\p{N})re", kByteLevelRegex}, "refact, smollm, command-r, codeshell, exaone, minerva-7b, mellum2"},
      {"gpt-2", {kByteLevelRegex}, "mpt, olmo, jais, phi-2, trillion, granite-docling"},
      {"qwen2", {R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"}, "stablelm2, hunyuan, grok-2, solar-open, megrez"},
      {"qwen35", {R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"}, ""},
      {"tekken", {R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"}, ""},
      {"gpt-4o", {R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"}, "llama4, minimax-m2"},
      {"tiny_aya", {R"re(\d{1,3}(?=(?:\d{3})*\b))re", R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"}, "cohere2moe"},
      {"bailingmoe", {R"re('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)re"}, "bailingmoe2, llada-moe"},
      {"seed-coder", {R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+)re"}, ""},
      {"exaone-moe", {R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?(?:\p{L}\p{M}*(?: \p{L}\p{M}*)*)+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]?|\s*[\r\n]|\s+(?!\S)|\s+)re"}, ""},
      {"minicpm5", {R"re(\p{N}{1,3})re", R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"}, ""},
  };
  return t;
}

// Every tokenizer.ggml.pre value llama.cpp accepts.
bool is_known_pre(std::string_view name) {
  static const std::unordered_set<std::string_view> names = {
      "default", "minicpm5", "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0",
      "lfm2", "jina-v5-nano", "deepseek-llm", "deepseek-coder", "deepseek-v3", "youtu", "falcon", "mpt",
      "starcoder", "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0",
      "mellum", "modern-bert", "jais-2", "gemma4", "granite-embed-multi-311m", "sarvam-moe", "jina-v1-en",
      "jina-v2-code", "roberta-bpe", "whitespace", "refact", "command-r", "qwen2", "deepseek-r1-qwen", "kormo",
      "f2llmv2", "qwen35", "stablelm2", "olmo", "dbrx", "smaug-bpe", "poro-chat", "glm4", "chatglm-bpe", "viking",
      "jais", "tekken", "smollm", "codeshell", "bloom", "gpt3-finnish", "exaone", "exaone4", "exaone-moe",
      "chameleon", "minerva-7b", "megrez", "gpt-4o", "llama4", "kanana2", "talkie", "granite-embed-multi-97m",
      "tiny_aya", "cohere2moe", "superbpe", "trillion", "granite-docling", "bailingmoe", "bailingmoe2",
      "llada-moe", "seed-coder", "hunyuan", "hunyuan-dense", "joyai-llm", "kimi-k2", "grok-2", "afmoe", "laguna",
      "minimax-m2", "solar-open", "mellum2"};
  return names.contains(name);
}

// Literal control characters and their escapes mean the same to a regex; compare one form.
std::string canonical_regex(std::string_view re) {
  std::string out;
  for (char c : re) {
    if (c == '\r') out += "\\r";
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else out += c;
  }
  return out;
}

// The pre-tokenizer as a list of split regexes. Digits and ByteLevel become the regexes
// they apply; a step we cannot express as one regex becomes a "<...>" description, which
// matches no table entry and names the step in the error.
void pre_steps(const json& pt, const std::string& file, int depth, std::vector<std::string>& steps) {
  if (depth > 16) throw Error(file + ": pre_tokenizer nested too deeply");
  if (pt.is_null()) return;
  need_object(pt, file, "pre_tokenizer");
  const json& type = member(pt, "type");
  const std::string t = type.is_string() ? type.get<std::string>() : "?";
  if (t == "Sequence") {
    for (const json& sub : need_array(member(pt, "pretokenizers"), file, "pre_tokenizer.pretokenizers"))
      pre_steps(sub, file, depth + 1, steps);
  } else if (t == "Split") {
    const json& pattern = member(pt, "pattern");
    const json& regex = member(pattern, "Regex");
    const bool isolated = is_str(member(pt, "behavior"), "Isolated") && !truthy(member(pt, "invert"));
    if (regex.is_string() && isolated) {
      steps.push_back(canonical_regex(regex.get_ref<const std::string&>()));
    } else {
      steps.push_back("<Split " + printable(pattern.dump(), 80) + " " + printable(member(pt, "behavior").dump()) +
                      (truthy(member(pt, "invert")) ? " inverted" : "") + ">");
    }
  } else if (t == "ByteLevel") {
    // Both keys default to true when absent, as in the tokenizers library.
    const json& prefix = member(pt, "add_prefix_space");
    const json& use_regex = member(pt, "use_regex");
    if (prefix.is_null() || truthy(prefix)) steps.push_back("<ByteLevel add_prefix_space>");
    if (use_regex.is_null() || truthy(use_regex)) steps.push_back(kByteLevelRegex);
  } else if (t == "Digits") {
    steps.push_back(truthy(member(pt, "individual_digits")) ? R"(\p{N})" : R"(\p{N}+)");
  } else {
    steps.push_back("<" + printable(t) + ">");
  }
}

std::string describe_steps(const std::vector<std::string>& steps) {
  if (steps.empty()) return "(none)";
  std::string s;
  for (const std::string& step : steps) {
    if (!s.empty()) s += " + ";
    s += step.starts_with("<") ? step : in_quotes(step);
  }
  return s;
}

std::string detect_pre(const json& tokenizer_json, const std::string& file, std::string& also) {
  std::vector<std::string> steps;
  pre_steps(member(tokenizer_json, "pre_tokenizer"), file, 0, steps);
  for (const PreEntry& e : pre_table()) {
    if (e.steps.size() != steps.size()) continue;
    if (!std::equal(steps.begin(), steps.end(), e.steps.begin())) continue;
    also = e.also;  // the check hash (bpe_pre.h) chooses among them
    return e.name;
  }
  throw Error(file + ": unknown pre-tokenizer " + describe_steps(steps) + "; pass --pre NAME");
}

// ---- special tokens (the reference's SpecialVocab) ----

bool in_list(const std::vector<std::string>& v, std::string_view s) { return std::find(v.begin(), v.end(), s) != v.end(); }

class SpecialVocab {
 public:
  // n_vocab: ids at or above it are skipped (SentencePiece); none for byte-level BPE.
  explicit SpecialVocab(std::optional<int64_t> n_vocab) : n_vocab_(n_vocab) {}

  // tokenizer.json's post_processor decides the add_* flags and may fill in missing
  // *_token entries of tokenizer_config (tcfg: its parsed object, or null when absent).
  void read_post_processor(const json& tokenizer_json, json& tcfg, const std::string& file);
  // tokenizer_config.json: chat template, add_<typ>_token flags, <typ>_token texts → ids via
  // tokenizer.json's added_tokens.
  void read_tokenizer_config(const json& tcfg, const json& added_tokens, const fs::path& dir, const std::string& file,
                             const std::string& added_file);
  void read_config(const json& config, const std::string& file);

  void fill(HfVocab& v, const std::string& file) const;

 private:
  void set_add(const std::string& typ, bool on) {
    for (auto& [t, value] : add_)
      if (t == typ) {
        value = on;  // a later setting wins but keeps its place, as a dict assignment does
        return;
      }
    add_.emplace_back(typ, on);
  }
  void set_id(const std::string& typ, const json& tid, const std::string& source);
  void read_template_processing(const json& proc, json& tcfg, const std::string& file, json& bos, json& cls, json& eos,
                                json& sep);
  void read_chat_template(const json& tcfg, const fs::path& dir, const std::string& file);

  std::optional<int64_t> n_vocab_;
  std::vector<std::string> types_ = {"bos", "eos", "unk", "sep", "pad", "cls", "mask"};
  std::vector<std::pair<std::string, int64_t>> ids_;
  std::vector<std::pair<std::string, bool>> add_;
  json chat_template_;  // null, a string, or a list of {name, template}
};

void SpecialVocab::set_id(const std::string& typ, const json& tid, const std::string& source) {
  // Only integers count (Python's bool is one); strings, floats and lists are ignored.
  int64_t id = 0;
  if (tid.is_boolean()) {
    id = tid.get<bool>() ? 1 : 0;
  } else if (tid.is_number_unsigned()) {
    if (tid.get<uint64_t>() > uint64_t{UINT32_MAX}) {
      if (n_vocab_) {
        warn(source + ": special token " + typ + " id " + tid.dump() + " is out of range - skipping");
        return;
      }
      throw Error(source + ": special token " + typ + " id " + tid.dump() + " does not fit in 32 bits");
    }
    id = static_cast<int64_t>(tid.get<uint64_t>());
  } else if (tid.is_number_integer()) {
    id = tid.get<int64_t>();
  } else {
    return;
  }
  if (id < 0) throw Error(source + ": invalid value for special token type " + typ + ": " + std::to_string(id));
  if (n_vocab_ && id >= *n_vocab_) {
    warn(source + ": special token " + typ + " id " + std::to_string(id) + " is not below the vocabulary size " +
         std::to_string(*n_vocab_) + " - skipping");
    return;
  }
  for (const auto& [t, existing] : ids_)
    if (t == typ) return;  // the first source to set a type wins
  if (id > int64_t{UINT32_MAX})
    throw Error(source + ": special token " + typ + " id " + std::to_string(id) + " does not fit in 32 bits");
  ids_.emplace_back(typ, id);
}

// The id of a template item's SpecialToken: item.get('SpecialToken', {}).get('id').
const json& special_token_id(const json& item, const std::string& file) {
  need_object(item, file, "post_processor template item");
  const json& st = member(item, "SpecialToken");
  if (st.is_null()) return null_json();
  return member(need_object(st, file, "post_processor SpecialToken"), "id");
}
// item.get('Sequence', {}).get('id').
const json& sequence_id(const json& item, const std::string& file) {
  need_object(item, file, "post_processor template item");
  const json& seq = member(item, "Sequence");
  if (seq.is_null()) return null_json();
  return member(need_object(seq, file, "post_processor Sequence"), "id");
}

void SpecialVocab::read_post_processor(const json& tokenizer_json, json& tcfg, const std::string& file) {
  const auto cfg_present = [&] { return truthy(tcfg); };
  json bos = member(tcfg, "bos_token"), cls = member(tcfg, "cls_token");
  json eos = member(tcfg, "eos_token"), sep = member(tcfg, "sep_token");
  if (!truthy(bos) && truthy(cls) && cfg_present()) tcfg["bos_token"] = bos = cls;
  if (!truthy(eos) && truthy(sep) && cfg_present()) tcfg["eos_token"] = eos = sep;

  const json& pp = member(tokenizer_json, "post_processor");
  if (!truthy(pp)) return;
  need_object(pp, file, "post_processor");
  const json single_list = json::array({pp});
  const json& processors = pp.contains("processors") ? pp["processors"] : single_list;
  for (const json& proc : need_array(processors, file, "post_processor.processors")) {
    need_object(proc, file, "post_processor processor");
    const json& type = member(proc, "type");
    if (is_str(type, "RobertaProcessing")) {
      set_add("bos", true);
      set_add("eos", true);
      set_add("sep", true);
      // processor.get('cls', [bos])[0]: the text of a [text, id] pair.
      const auto first_of = [&](const char* key, const json& fallback) -> json {
        const json& v = member(proc, key);
        if (v.is_null()) return fallback;
        if (!v.is_array() || v.empty()) wrong_type(file, std::string("RobertaProcessing.") + key, "a [token, id] pair", v);
        return v[0];
      };
      if (!truthy(cls) && cfg_present()) tcfg["cls_token"] = cls = first_of("cls", bos);
      if (!truthy(sep) && cfg_present()) tcfg["sep_token"] = sep = first_of("sep", eos);
    } else if (is_str(type, "TemplateProcessing")) {
      read_template_processing(proc, tcfg, file, bos, cls, eos, sep);
    }
  }
}

// The reference's crude reading of TemplateProcessing: a leading special token of the
// single template means add_bos, a trailing one add_eos, and a special token between A and
// B in the pair template add_sep. Reproduced step for step, warts included.
void SpecialVocab::read_template_processing(const json& proc, json& tcfg, const std::string& file, json& bos,
                                            json& cls, json& eos, json& sep) {
  const auto cfg_present = [&] { return truthy(tcfg); };
  const auto list = [&](const char* key) -> const json& {
    static const json empty = json::array();
    if (!proc.contains(key)) return empty;
    return need_array(member(proc, key), file, std::string("TemplateProcessing.") + key);
  };
  const json& single = list("single");
  const json& pair = list("pair");

  json first, last;
  if (single.size() > 1) {
    first = special_token_id(single.front(), file);
    if (truthy(first)) {
      if (!cfg_present()) {
        bos = first;
      } else if (first != bos && first != cls) {
        if (!truthy(bos)) tcfg["bos_token"] = bos = first;
        if (!truthy(cls)) tcfg["cls_token"] = cls = first;
      }
      const bool known = first == bos || first == cls;
      set_add("bos", known);
      if (!known) warn(file + ": unknown leading special token " + printable(first.dump()) + " in TemplateProcessing");
    }
    last = special_token_id(single.back(), file);
    if (truthy(last)) {
      if (!cfg_present()) {
        eos = last;
      } else if (last != eos) {
        // The old EOS becomes EOT (or EOM) and the template's last token the EOS.
        if (!in_list(types_, "eot")) {
          types_.push_back("eot");
          tcfg["eot_token"] = eos;
        } else if (!in_list(types_, "eom")) {
          types_.push_back("eom");
          tcfg["eom_token"] = eos;
        } else {
          warn(file + ": overriding EOS token " + printable(eos.dump()) + " with " + printable(last.dump()));
        }
        tcfg["eos_token"] = eos = last;
      }
      set_add("eos", last == eos);
    }
  }
  if (pair.empty()) return;

  const size_t begin = truthy(first) && special_token_id(pair.front(), file) == first ? 1 : 0;
  const bool drop_last = truthy(last) && special_token_id(pair.back(), file) == last;
  const size_t end = pair.size() - (drop_last ? 1 : 0);
  if ((truthy(first) && begin == 0) || (truthy(last) && !drop_last))
    warn(file + ": TemplateProcessing single and pair templates disagree on leading/trailing special tokens");
  if (begin >= end) return;
  const json& a = sequence_id(pair[begin], file);
  const json& b = sequence_id(pair[end - 1], file);
  if (!is_str(a, "A") || !is_str(b, "B")) {
    warn(file + ": unknown sequence " + printable(a.dump()) + "..." + printable(b.dump()) + " in TemplateProcessing");
    return;
  }
  // What lies between A and B: [sep] or [sep, eos] and the like.
  if (end - begin < 3) return;
  const size_t mid = begin + 1, mid_end = end - 1;
  bool add_sep = false;
  const json& entry = special_token_id(pair[mid], file);
  if (truthy(entry)) {
    if ((entry == sep || entry == eos) && !truthy(last)) add_sep = true;
  } else {
    warn(file + ": unknown middle sequence in TemplateProcessing pair template");
  }
  if (mid_end - mid == 2) {
    const json& second = special_token_id(pair[mid + 1], file);
    if (truthy(second) && (second == sep || second == eos)) add_sep = true;
  }
  set_add("sep", add_sep);
  if (add_sep && !truthy(sep) && cfg_present()) tcfg["sep_token"] = eos;
}

void SpecialVocab::read_chat_template(const json& tcfg, const fs::path& dir, const std::string& file) {
  // A chat_template.jinja (plus additional_chat_templates/*.jinja) or chat_template.json
  // stands in when tokenizer_config.json has no chat_template key.
  json alt;
  const fs::path jinja = dir / "chat_template.jinja";
  const fs::path alt_json = dir / "chat_template.json";
  if (is_file(jinja)) {
    alt = read_text(jinja, kMaxTemplateBytes);
    std::vector<fs::path> extra;
    std::error_code ec;
    for (fs::directory_iterator it(dir / "additional_chat_templates", ec), e; !ec && it != e; it.increment(ec))
      if (it->path().extension() == ".jinja" && is_file(it->path())) extra.push_back(it->path());
    if (!extra.empty()) {
      std::sort(extra.begin(), extra.end());
      json list = json::array({json{{"name", "default"}, {"template", alt}}});
      for (const fs::path& p : extra) list.push_back(json{{"name", p.stem().string()}, {"template", read_text(p, kMaxTemplateBytes)}});
      alt = std::move(list);
    }
  } else if (is_file(alt_json)) {
    const json j = read_json(alt_json);
    alt = member(j, "chat_template");
  }
  const json& ct = tcfg.contains("chat_template") ? tcfg["chat_template"] : alt;
  if (ct.is_null() || ct.is_string() || ct.is_array())
    chat_template_ = ct;
  else
    warn(file + ": chat_template is " + ct.type_name() + ", not a string or list - ignoring");
}

void SpecialVocab::read_tokenizer_config(const json& tcfg, const json& added_tokens, const fs::path& dir,
                                         const std::string& file, const std::string& added_file) {
  if (!truthy(tcfg)) return;
  read_chat_template(tcfg, dir, file);
  for (const std::string& typ : std::vector<std::string>(types_)) {
    const json& add_entry = member(tcfg, "add_" + typ + "_token");
    if (add_entry.is_boolean()) set_add(typ, add_entry.get<bool>());
    const json& entry = member(tcfg, typ + "_token");
    const json& content = entry.is_object() ? member(entry, "content") : entry;
    if (!content.is_string()) continue;
    // The first added token with that text gives the id.
    for (const json& atok : added_tokens) {
      need_object(atok, added_file, "added_tokens entry");
      if (member(atok, "content") == content) {
        set_id(typ, member(atok, "id"), added_file);
        break;
      }
    }
  }
}

void SpecialVocab::read_config(const json& config, const std::string& file) {
  for (const std::string& typ : types_) {
    const std::string key = typ + "_token_id";
    const json* id = &member(config, key);
    if (id->is_null() && config.is_object() && config.contains("text_config")) id = &member(config["text_config"], key);
    set_id(typ, *id, file);
  }
}

// Only the keys GGUFWriter has a setter for reach the file; the others (cls, add_unk ...)
// are dropped with a warning by the reference.
void SpecialVocab::fill(HfVocab& v, const std::string& file) const {
  static const std::vector<std::string> id_keys = {"bos", "eos", "unk", "sep", "pad", "mask", "eot", "eom"};
  static const std::vector<std::string> add_keys = {"bos", "eos", "sep"};
  for (const auto& [typ, id] : ids_)
    if (in_list(id_keys, typ)) v.special_ids.emplace_back(typ, id);
  for (const auto& [typ, on] : add_)
    if (in_list(add_keys, typ)) v.add_special.emplace_back(typ, on);
  if (chat_template_.is_string()) {
    v.chat_template = chat_template_.get<std::string>();
    return;
  }
  if (!chat_template_.is_array()) return;
  // A list of named templates: "default" is tokenizer.chat_template, the others
  // tokenizer.chat_template.NAME (names reduced to ASCII letters, digits and '_').
  for (const json& choice : chat_template_) {
    need_object(choice, file, "chat_template entry");
    const json& name_v = member(choice, "name");
    const std::string raw = name_v.is_null() ? "" : need_string(name_v, file, "chat_template entry name");
    std::string name;
    for (size_t i = 0; i < raw.size(); ++i) {
      const unsigned char c = raw[i];
      if ((c & 0xC0) == 0x80) continue;  // one '_' per non-ASCII character, not per byte
      name += std::isalnum(c) && c < 0x80 ? static_cast<char>(c) : '_';
    }
    const json& tmpl = member(choice, "template");
    if (name.empty() || tmpl.is_null()) continue;
    const std::string& text = need_string(tmpl, file, "chat_template " + in_quotes(name) + " template");
    if (name == "default") {
      v.chat_template = text;
      continue;
    }
    auto it = std::find_if(v.named_chat_templates.begin(), v.named_chat_templates.end(),
                           [&](const auto& p) { return p.first == name; });
    if (it != v.named_chat_templates.end())
      it->second = text;
    else
      v.named_chat_templates.emplace_back(name, text);
  }
}

// ---- the folder ----

struct Folder {
  fs::path dir;
  std::string model_path, tj_path, tc_path, config_path;
  json tokenizer_json;    // null when absent
  json tokenizer_config;  // null when absent
  const json* config = nullptr;
  bool phi3 = false;  // Phi3ForCausalLM: its converter builds the vocabulary its own way
};

const json& added_tokens_of(const Folder& f) {
  static const json empty = json::array();
  const json& a = member(f.tokenizer_json, "added_tokens");
  if (a.is_null() || (a.is_object() && a.empty())) return empty;
  return need_array(a, f.tj_path, "added_tokens");
}

void read_special_vocab(const Folder& f, std::optional<int64_t> n_vocab, HfVocab& v) {
  SpecialVocab sv(n_vocab);
  json tcfg = f.tokenizer_config;  // the post-processor may fill in missing entries
  if (!f.tokenizer_json.is_null())
    naming_file(f.tj_path, [&] { sv.read_post_processor(f.tokenizer_json, tcfg, f.tj_path); });
  naming_file(f.tc_path, [&] {
    sv.read_tokenizer_config(tcfg, added_tokens_of(f), f.dir, f.tc_path, f.tj_path);
  });
  naming_file(f.config_path, [&] { sv.read_config(*f.config, f.config_path); });
  sv.fill(v, f.tc_path);
}

// ---- SentencePiece ----

void apply_added_tokens_json(const fs::path& path, int64_t n, HfVocab& v) {
  const std::string file = path.string();
  const json j = read_json(path);
  naming_file(file, [&] {
    for (const auto& [text, id_v] : need_object(j, file, "the file").items()) {
      const int64_t id = need_id(id_v, file, in_quotes(text));
      if (id >= n) {
        warn(file + ": ignoring token " + std::to_string(id) + ": not below the vocabulary size " + std::to_string(n));
        continue;
      }
      v.tokens[id] = text;
      v.scores[id] = kAddedScore;
      v.types[id] = kSpUserDefined;
    }
  });
}

// Retypes one added token. The general converter treats look-alike control tokens as
// control and pre-normalizes spaces in user-defined ones; Phi-3's converter does neither.
void set_added_token(HfVocab& v, int64_t id, const std::string& content, bool special, bool phi3) {
  if (special || (!phi3 && looks_special(content))) {
    v.types[id] = kSpControl;
    v.tokens[id] = content;
  } else {
    v.types[id] = kSpUserDefined;
    v.tokens[id] = phi3 ? content : sp_space_to_space(content);
  }
  v.scores[id] = kAddedScore;
}

void apply_added_tokens_decoder(const Folder& f, int64_t n, HfVocab& v) {
  const json& decoder = member(f.tokenizer_config, "added_tokens_decoder");
  if (decoder.is_null()) return;
  naming_file(f.tc_path, [&] {
    for (const auto& [key, data] : need_object(decoder, f.tc_path, "added_tokens_decoder").items()) {
      const int64_t id = parse_id_key(key, f.tc_path);
      const std::string what = "added_tokens_decoder[" + in_quotes(key) + "]";
      need_object(data, f.tc_path, what);
      const std::string& content = need_string(member(data, "content"), f.tc_path, what + ".content");
      if (id >= n) {
        // Phi-3's converter indexes past its table and fails; the general one skips.
        if (f.phi3)
          throw Error(f.tc_path + ": " + what + ": id " + std::to_string(id) + " is not below the vocabulary size " +
                      std::to_string(n));
        warn(f.tc_path + ": ignoring token " + std::to_string(id) + ": not below the vocabulary size " +
             std::to_string(n));
        continue;
      }
      set_added_token(v, id, content, truthy(member(data, "special")), f.phi3);
    }
  });
}

// Phi-3's converter also applies tokenizer.json's added_tokens.
void apply_tokenizer_json_added_tokens(const Folder& f, int64_t n, HfVocab& v) {
  naming_file(f.tj_path, [&] {
    for (const json& atok : added_tokens_of(f)) {
      need_object(atok, f.tj_path, "added_tokens entry");
      const int64_t id = need_id(member(atok, "id"), f.tj_path, "added_tokens id");
      const std::string& content = need_string(member(atok, "content"), f.tj_path, "added_tokens content");
      if (id >= n)
        throw Error(f.tj_path + ": added token id " + std::to_string(id) + " is not below the vocabulary size " +
                    std::to_string(n));
      set_added_token(v, id, content, truthy(member(atok, "special")), true);
    }
  });
}

HfVocab sentencepiece_vocab(const Folder& f, int64_t vocab_size) {
  const std::vector<SpPiece> pieces = read_sentencepiece_model(f.model_path);
  const int64_t n = checked_vocab_size(vocab_size > 0 ? vocab_size : static_cast<int64_t>(pieces.size()), f.model_path);
  HfVocab v;
  v.model = "llama";
  v.pre = "default";
  v.tokens.resize(n);
  for (int64_t i = 0; i < n; ++i) v.tokens[i] = pad_token(i);
  v.scores.assign(n, kPadScore);
  v.types.assign(n, kSpUnused);
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (static_cast<int64_t>(i) >= n) {
      if (f.phi3)
        throw Error(f.model_path + ": " + std::to_string(pieces.size()) + " pieces, more than the vocab_size " +
                    std::to_string(n) + " of " + f.config_path);
      warn(f.model_path + ": ignoring pieces from id " + std::to_string(i) + ": vocab_size is " + std::to_string(n));
      break;
    }
    const SpPiece& p = pieces[i];
    v.tokens[i] = p.piece;
    v.scores[i] = p.score;
    // SentencePieceProcessor only reports unknown / control / unused / byte; a
    // user-defined piece reads as normal.
    v.types[i] = p.type == kSpUserDefined ? kSpNormal : p.type;
  }
  const fs::path added_json = f.dir / "added_tokens.json";
  if (is_file(added_json)) apply_added_tokens_json(added_json, n, v);
  apply_added_tokens_decoder(f, n, v);
  if (f.phi3 && !f.tokenizer_json.is_null()) apply_tokenizer_json_added_tokens(f, n, v);
  read_special_vocab(f, n, v);
  return v;
}

// ---- byte-level BPE ----

// model.merges: "a b" strings, or (transformers ≥ 4.45) [a, b] pairs, whose parts may hold
// spaces; those are written as U+0120, GPT-2's byte-level space, to keep "a b" parseable.
std::vector<std::string> read_merges(const json& merges, const std::string& file) {
  std::vector<std::string> out;
  if (merges.is_null()) return out;
  need_array(merges, file, "model.merges");
  if (merges.empty()) return out;
  out.reserve(merges.size());
  const auto bad_format = [&](size_t i) {
    return Error(file + ": model.merges[" + std::to_string(i) + "]: unknown merges format (expected \"a b\" strings or [a, b] string pairs)");
  };
  if (merges[0].is_string()) {
    for (size_t i = 0; i < merges.size(); ++i) {
      if (!merges[i].is_string()) throw bad_format(i);
      out.push_back(merges[i].get<std::string>());
    }
    return out;
  }
  for (size_t i = 0; i < merges.size(); ++i) {
    const json& pair = merges[i];
    if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string() || !pair[1].is_string()) throw bad_format(i);
    std::string m;
    for (int k = 0; k < 2; ++k) {
      if (k) m += ' ';
      for (char c : pair[k].get_ref<const std::string&>()) {
        if (c == ' ') m += "\xC4\xA0";  // U+0120
        else m += c;
      }
    }
    out.push_back(std::move(m));
  }
  return out;
}

// merges.txt, when tokenizer.json has none: an optional "#version" line, then "a b" lines.
std::vector<std::string> read_merges_txt(const fs::path& path) {
  std::vector<std::string> out;
  std::istringstream in(read_text(path, kMaxJsonBytes));
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    std::istringstream words(line);
    std::vector<std::string> parts;
    for (std::string w; words >> w && parts.size() < 3;) parts.push_back(w);
    if (line_no == 1 && !parts.empty() && parts[0].starts_with("#")) continue;
    if (parts.empty()) continue;
    if (parts.size() != 2) {
      warn(path.string() + ": line " + std::to_string(line_no) + ": malformed merge, ignoring");
      continue;
    }
    out.push_back(parts[0] + " " + parts[1]);
  }
  return out;
}

// A byte-level BPE vocabulary by id: the model's texts, overridden by the added tokens.
struct BpeTable {
  std::vector<const std::string*> text;  // null: no token has this id
  std::vector<const json*> added_at;     // the added_tokens entry with this id, if any
  std::unordered_set<std::string_view> added_texts;
};

BpeTable bpe_table(const json& vocab, const json& added, int64_t vocab_size, const std::string& file) {
  // Validate ids and count distinct texts (the size of the tokenizer's get_vocab(), which
  // is the vocabulary size when config.json gives none).
  int64_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it)
    max_id = std::max(max_id, need_id(it.value(), file, "model.vocab[" + in_quotes(it.key()) + "]"));
  std::unordered_set<std::string_view> extra_texts;
  for (const json& atok : added) {
    need_object(atok, file, "added_tokens entry");
    max_id = std::max(max_id, need_id(member(atok, "id"), file, "added_tokens id"));
    const std::string& content = need_string(member(atok, "content"), file, "added_tokens content");
    if (!vocab.contains(content)) extra_texts.insert(content);
  }
  const int64_t n = checked_vocab_size(
      vocab_size > 0 ? vocab_size : static_cast<int64_t>(vocab.size() + extra_texts.size()), file);
  if (max_id >= n)
    throw Error(file + ": token id " + std::to_string(max_id) + " is not below the vocabulary size " + std::to_string(n));

  BpeTable t;
  t.text.assign(n, nullptr);
  t.added_at.assign(n, nullptr);
  for (auto it = vocab.begin(); it != vocab.end(); ++it) t.text[it.value().get<int64_t>()] = &it.key();
  for (const json& atok : added) {
    const int64_t id = member(atok, "id").get<int64_t>();
    t.text[id] = &member(atok, "content").get_ref<const std::string&>();
    t.added_at[id] = &atok;
    t.added_texts.insert(*t.text[id]);
  }
  return t;
}

void bpe_tokens(const BpeTable& t, HfVocab& v) {
  const size_t n = t.text.size();
  v.tokens.reserve(n);
  v.types.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string* text = t.text[i];
    if (!text) {
      v.tokens.push_back(pad_token(static_cast<int64_t>(i)));
      v.types.push_back(kSpUnused);
    } else if (!t.added_texts.contains(*text)) {
      v.tokens.push_back(*text);
      v.types.push_back(kSpNormal);
    } else if ((t.added_at[i] && truthy(member(*t.added_at[i], "special"))) || looks_special(*text)) {
      v.tokens.push_back(*text);
      v.types.push_back(kSpControl);
    } else {
      v.tokens.push_back(sp_space_to_space(*text));
      v.types.push_back(kSpUserDefined);
    }
  }
}

HfVocab bpe_vocab(const Folder& f, int64_t vocab_size, const std::string& pre_override) {
  const std::string& file = f.tj_path;
  HfVocab v;
  v.model = "gpt2";
  naming_file(file, [&] {
    const json& model = need_object(member(f.tokenizer_json, "model"), file, "model");
    const json& mtype = member(model, "type");
    if (!is_str(mtype, "BPE"))
      throw Error(file + ": tokenizer model type " + printable(mtype.dump()) + " is not supported (only BPE)");
    const json& vocab = need_object(member(model, "vocab"), file, "model.vocab");
    bpe_tokens(bpe_table(vocab, added_tokens_of(f), vocab_size, file), v);

    v.merges = read_merges(member(model, "merges"), file);
    if (v.merges.empty() && is_file(f.dir / "merges.txt")) v.merges = read_merges_txt(f.dir / "merges.txt");
    if (v.merges.empty()) warn(file + ": no merges found; the vocabulary may not work");

    v.pre = pre_override.empty() ? detect_pre(f.tokenizer_json, file, v.pre_alternatives) : pre_override;
  });
  read_special_vocab(f, std::nullopt, v);
  return v;
}

bool is_phi3(const json& config) {
  const json& archs = member(config, "architectures");
  if (!archs.is_array() || archs.empty() || !archs[0].is_string()) return false;
  const std::string& a = archs[0].get_ref<const std::string&>();
  return a == "Phi3ForCausalLM" || a == "Phi4ForCausalLMV";
}

json read_json_object(const fs::path& p) {
  json j = read_json(p);
  if (!j.is_object()) throw Error(p.string() + ": must hold a JSON object, not " + j.type_name());
  return j;
}

}  // namespace

HfVocab read_hf_vocab(const std::string& dir, const nlohmann::json& config, int64_t vocab_size,
                      const std::string& pre_override) {
  if (vocab_size < 0) throw Error(dir + ": negative vocab_size " + std::to_string(vocab_size));
  if (!pre_override.empty() && !is_known_pre(pre_override))
    throw Error("--pre " + printable(pre_override) + ": not a pre-tokenizer name llama.cpp knows (e.g. llama-bpe, qwen2, gpt-2)");
  Folder f;
  f.dir = fs::path(dir);
  f.model_path = (f.dir / "tokenizer.model").string();
  f.tj_path = (f.dir / "tokenizer.json").string();
  f.tc_path = (f.dir / "tokenizer_config.json").string();
  f.config_path = (f.dir / "config.json").string();
  f.config = &config;
  f.phi3 = is_phi3(config);
  const bool has_model = is_file(f.model_path);
  const bool has_tj = is_file(f.tj_path);
  if (has_tj) f.tokenizer_json = read_json_object(f.tj_path);
  if (is_file(f.tc_path)) f.tokenizer_config = read_json_object(f.tc_path);

  // Phi-4 ships a GPT-2 tokenizer under the Phi-3 architecture.
  const bool phi3_gpt2 = f.phi3 && is_str(member(f.tokenizer_config, "tokenizer_class"), "GPT2Tokenizer");
  if (phi3_gpt2 && !has_tj) throw Error(dir + ": tokenizer_class is GPT2Tokenizer but there is no tokenizer.json");
  HfVocab v;
  if (has_model && !phi3_gpt2) {
    v = sentencepiece_vocab(f, vocab_size);
    if (!pre_override.empty()) v.pre = pre_override;
  } else if (has_tj) {
    v = bpe_vocab(f, vocab_size, pre_override);
  } else {
    throw Error(dir + ": no tokenizer.model or tokenizer.json");
  }
  return v;
}

}  // namespace slm::convert

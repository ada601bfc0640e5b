#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pretokenize.h"

#include <pcre2.h>

#include "slm/error.h"
#include "tokenizer/utf8.h"

namespace slm {

namespace {

// The patterns, as the vocabularies' tokenizer.json files write them (Hugging Face
// tokenizers / Rust regex syntax, which PCRE2 reads the same for everything used here).
const char* const kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
const char* const kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kCjk = R"([\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+)";
const char* const kDeepseekLlmLetters =
    R"(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+)";
const char* const kDeepseekLlmPunct = R"(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)";
const char* const kDeepseekV3 =
    R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kTekken =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kGpt4o =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kPoro = R"( ?[^(\s|.,!?\x{2026}\x{3002}\x{FF0C}\x{3001}\x{964}\x{6D4}\x{60C})]+)";

struct Entry {
  std::vector<const char*> names;  // tokenizer.ggml.pre values
  PreTokenizerSpec spec;
};

const std::vector<Entry>& table() {
  static const std::vector<Entry> t = {
      {{"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"},
       {"llama3", {kLlama3}, true}},
      {{"dbrx", "smaug-bpe", "chatglm-bpe", "glm4"}, {"llama3-merges", {kLlama3}, false}},
      {{"deepseek-llm"},
       {"deepseek-llm", {R"([\r\n])", kDeepseekLlmLetters, kDeepseekLlmPunct, R"(\s+$)", kCjk, R"(\p{N}+)"}, false}},
      {{"deepseek-coder"},
       {"deepseek-coder", {R"([\r\n])", R"(\s?\p{L}+)", R"(\s?\p{P}+)", kCjk, R"(\p{N})"}, false}},
      {{"deepseek-v3", "hunyuan-dense"},
       {"deepseek-v3", {R"(\p{N}{1,3})", R"([\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)", kDeepseekV3}, false}},
      {{"falcon"}, {"falcon", {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, R"([0-9][0-9][0-9])"}, false}},
      {{"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"},
       {"starcoder", {R"(\p{N})", kGpt2}, false}},
      {{"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v1-en", "jina-v2-es", "jina-v2-de",
        "jina-v2-code", "roberta-bpe", "a.x-4.0", "mellum", "exaone4", "mpt", "olmo", "jais",
        "trillion", "granite-docling"},
       {"gpt-2", {kGpt2}, false}},
      {{"qwen2", "deepseek-r1-qwen", "kormo", "megrez", "stablelm2", "hunyuan", "grok-2"},
       {"qwen2", {kQwen2}, false}},
      {{"poro-chat", "bloom", "gpt3-finnish"}, {"bloom", {kPoro}, false}},
      {{"viking"}, {"viking", {kPoro, R"(\p{N})"}, false}},
      {{"tekken"}, {"tekken", {kTekken}, true}},
      {{"gpt-4o", "llama4", "minimax-m2"}, {"gpt-4o", {kGpt4o}, false}},
      {{"superbpe"}, {"superbpe", {R"(\p{N}+)", R"((?=(\d{3})+(?!\d)))"}, false}},
      {{"bailingmoe", "bailingmoe2", "llada-moe"},
       {"bailingmoe",
        {R"('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)"},
        false}},
      {{"seed-coder"},
       {"seed-coder",
        {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+)"},
        false}},
      {{"chameleon"},
       {"chameleon",
        {R"(<sentinel:[0-9]+>)", R"((IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z)", R"(([\t\n]|    |  ))",
         R"(\p{N})", R"([\p{P}!-/:-@\[-`{-~])", kGpt2},
        false}},
  };
  return t;
}

const PreTokenizerSpec& default_spec() {
  static const PreTokenizerSpec d{
      "default", {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", R"([0-9][0-9][0-9])"}, false};
  return d;
}

// Unicode White_Space, as the reference tokenizers define \s. PCRE2's \s misses U+0085.
const char* const kSpaceChars =
    R"(\x{9}-\x{D}\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

// Rewrites \s and \S (outside classes) and \s (inside classes) to explicit sets.
std::string expand_space_classes(const std::string& p) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[i + 1];
      ++i;
      if (e == 's') {
        out += in_class ? std::string(kSpaceChars) : "[" + std::string(kSpaceChars) + "]";
      } else if (e == 'S' && !in_class) {
        out += "[^" + std::string(kSpaceChars) + "]";
      } else {
        out += c;
        out += e;
      }
      continue;
    }
    if (c == '[' && !in_class) {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal.
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
      continue;
    }
    if (c == ']' && in_class) in_class = false;
    out += c;
  }
  return out;
}

}  // namespace

PreTokenizerSpec pre_tokenizer_spec(const std::string& pre) {
  for (const Entry& e : table())
    for (const char* n : e.names)
      if (pre == n) return e.spec;
  return default_spec();
}

struct PreTokenizer::Regex {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Regex() { pcre2_code_free(code); }
};

PreTokenizer::PreTokenizer(const PreTokenizerSpec& spec) : spec_(spec) {
  for (const std::string& src : spec.regexes) {
    const std::string pattern = expand_space_classes(src);
    int err = 0;
    PCRE2_SIZE err_off = 0;
    auto r = std::make_unique<Regex>();
    r->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                            PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY,
                            &err, &err_off, nullptr);
    if (!r->code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      throw Error("pre-tokenizer '" + spec.name + "': regex does not compile at offset " +
                  std::to_string(err_off) + ": " + reinterpret_cast<const char*>(msg));
    }
    r->jit = pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE) == 0;
    regexes_.push_back(std::move(r));
  }
}

PreTokenizer::~PreTokenizer() = default;

namespace {

// Owns the per-call PCRE2 state; a JIT stack larger than the default is made only when a
// match runs out of the default one.
struct MatchState {
  pcre2_match_data* md = nullptr;
  pcre2_match_context* mctx = nullptr;
  pcre2_jit_stack* stack = nullptr;
  ~MatchState() {
    pcre2_match_data_free(md);
    pcre2_match_context_free(mctx);
    pcre2_jit_stack_free(stack);
  }
};

int run_match(pcre2_code* code, bool jit, std::string_view s, size_t start, MatchState& st) {
  const auto subj = reinterpret_cast<PCRE2_SPTR>(s.data());
  int rc = jit ? pcre2_jit_match(code, subj, s.size(), start, 0, st.md, st.mctx)
               : pcre2_match(code, subj, s.size(), start, 0, st.md, st.mctx);
  if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !st.stack) {
    st.stack = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, nullptr);
    if (!st.mctx) st.mctx = pcre2_match_context_create(nullptr);
    if (st.stack && st.mctx) {
      pcre2_jit_stack_assign(st.mctx, nullptr, st.stack);
      rc = pcre2_jit_match(code, subj, s.size(), start, 0, st.md, st.mctx);
    }
  }
  return rc;
}

}  // namespace

void PreTokenizer::split(std::string_view text, std::vector<Piece>& out) const {
  if (text.empty()) return;
  std::vector<Piece> pieces{{0, text.size()}}, next;
  for (const auto& re : regexes_) {
    MatchState st;
    st.md = pcre2_match_data_create_from_pattern(re->code, nullptr);
    if (!st.md) throw Error("pre-tokenizer '" + spec_.name + "': out of memory");
    next.clear();
    next.reserve(pieces.size() * 2);
    for (const Piece& p : pieces) {
      // Each piece is matched on its own, as a separate subject: anchors and lookaheads see
      // the piece's ends, not the text around it.
      const std::string_view s = text.substr(p.first, p.second - p.first);
      size_t last = 0, start = 0;
      while (start <= s.size()) {
        const int rc = run_match(re->code, re->jit, s, start, st);
        if (rc < 0) {
          if (rc == PCRE2_ERROR_NOMATCH) break;
          // Any other failure (a resource limit): keep the rest of the piece whole.
          break;
        }
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.md);
        const size_t ms = ov[0], me = ov[1];
        if (ms > last) next.emplace_back(p.first + last, p.first + ms);
        if (me > ms) {
          next.emplace_back(p.first + ms, p.first + me);
          last = start = me;
        } else {  // an empty match only marks a split point
          last = ms;
          if (ms >= s.size()) break;
          start = ms + utf8::char_len(s, ms);
        }
      }
      if (last < s.size()) next.emplace_back(p.first + last, p.first + s.size());
    }
    pieces.swap(next);
  }
  out.insert(out.end(), pieces.begin(), pieces.end());
}

}  // namespace slm

#include "tokenizer/vocab.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "gguf/gguf.h"
#include "slm/error.h"
#include "tokenizer/utf8.h"

namespace slm {

namespace {

const char* kTokens = "tokenizer.ggml.tokens";
const char* kScores = "tokenizer.ggml.scores";
const char* kTypes = "tokenizer.ggml.token_type";
const char* kMerges = "tokenizer.ggml.merges";

[[noreturn]] void fail(const GgufFile& f, const std::string& key, const std::string& what) {
  throw Error(f.path() + ": metadata key '" + key + "': " + what);
}

// Token texts that end a turn in the usual chat formats (llama.cpp's list). They end
// generation and are CONTROL even where the file types them otherwise, so text from a user
// (specials not parsed) can never spell them into a token: no forged turns, no forced stop.
const char* const kEogTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<｜end▁of▁sentence｜>", "[e~[",
};
// Candidates for the end-of-turn id when tokenizer.ggml.eot_token_id is absent.
const char* const kEotTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
    "<EOT>", "_<EOT>", "<｜end▁of▁sentence｜>", "<end_of_utterance>",
};
// Fill-in-the-middle markers: never part of plain text, so forced to CONTROL.
const char* const kFimTexts[] = {
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>",
    "<|code_prefix|>", "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>",
    "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|fim_middle|>", "<fim-middle>", "<fim_middle>",
    "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|fim_pad|>", "<fim-pad>",
    "<fim_pad>", "<PAD>", "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>",
    "<|file_sep|>",
};

// Reads an optional token-id key. Present but out of range: an error for the ids the
// tokenizer itself uses (bos/eos/unk), ignored for the others (some converters write junk).
void read_id(const GgufFile& f, const std::string& key, int32_t n_vocab, bool strict,
             int32_t& id) {
  const GgufValue* v = f.find(key);
  if (!v) {
    if (id >= n_vocab) id = -1;  // a default that this vocabulary does not have
    return;
  }
  if (!v->is_integer()) fail(f, key, std::string("expected an integer, got ") + gguf_type_name(v->type));
  const int64_t x = v->as_int();
  if (x < 0 || x >= n_vocab) {
    if (strict)
      fail(f, key, "token id " + std::to_string(x) + " out of range (vocabulary has " +
                       std::to_string(n_vocab) + " tokens)");
    return;
  }
  id = static_cast<int32_t>(x);
}

void load_merges(const GgufFile& f, Vocab& v) {
  if (!f.has(kMerges)) fail(f, kMerges, "missing (required by tokenizer.ggml.model = gpt2)");
  const std::vector<GgufValue>& arr = f.get_array(kMerges);
  if (!arr.empty() && arr[0].type != GgufType::STRING) fail(f, kMerges, "expected an array of strings");
  v.merges.reserve(arr.size());
  std::string joined;
  for (size_t i = 0; i < arr.size(); ++i) {
    const std::string& m = arr[i].str;
    // "left right", split at the first space after position 0 (a token may be a space).
    const size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
    if (sp == std::string::npos) continue;  // malformed entry: llama.cpp ignores it too
    const std::string_view left(m.data(), sp), right(m.data() + sp + 1, m.size() - sp - 1);
    const int32_t l = v.find(left), r = v.find(right);
    if (l < 0 || r < 0) continue;
    joined.assign(left);
    joined += right;
    const int32_t id = v.find(joined);
    if (id < 0) continue;  // a merge whose result is not a token can never be emitted
    const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
    v.merges.emplace(key, BpeMerge{static_cast<int32_t>(i), id});  // first (best) rank wins
  }
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

Vocab load_vocab(const GgufFile& f) {
  Vocab v;
  const std::string model = f.get_string_or("tokenizer.ggml.model", "");
  if (model == "llama") v.model = VocabModel::Spm;
  else if (model == "gpt2") v.model = VocabModel::Bpe;
  else if (model.empty()) fail(f, "tokenizer.ggml.model", "missing");
  else fail(f, "tokenizer.ggml.model", "unsupported tokenizer model '" + model + "' (supported: llama, gpt2)");
  v.pre = f.get_string_or("tokenizer.ggml.pre", "");
  v.name = f.get_string_or("general.name", "");
  v.architecture = f.get_string_or("general.architecture", "");

  if (!f.has(kTokens)) fail(f, kTokens, "missing");
  v.text = f.get_string_array(kTokens);
  const size_t n = v.text.size();
  if (n == 0) fail(f, kTokens, "empty vocabulary");
  if (n > 0x7fffffff) fail(f, kTokens, "too many tokens");
  const int32_t n_vocab = static_cast<int32_t>(n);

  if (f.has(kScores)) {
    v.score = f.get_f32_array(kScores);
    if (v.score.size() != n)
      fail(f, kScores, "has " + std::to_string(v.score.size()) + " entries, tokens has " + std::to_string(n));
  } else {
    v.score.assign(n, 0.0f);
  }
  v.type.assign(n, TokenType::Normal);
  if (f.has(kTypes)) {
    const std::vector<int64_t> t = f.get_int_array(kTypes);
    if (t.size() != n)
      fail(f, kTypes, "has " + std::to_string(t.size()) + " entries, tokens has " + std::to_string(n));
    for (size_t i = 0; i < n; ++i)
      v.type[i] = (t[i] >= 1 && t[i] <= 6) ? static_cast<TokenType>(t[i]) : TokenType::Undefined;
  }

  for (int32_t i = 0; i < n_vocab; ++i) {
    // An empty token could never be matched and would break the partition; give it a
    // unique placeholder text, as llama.cpp does.
    if (v.text[i].empty()) v.text[i] = "[EMPTY_" + std::to_string(i) + "]";
  }
  v.id_of.build(v.text);  // later duplicates win, as in llama.cpp

  // Defaults, then explicit keys.
  if (v.model == VocabModel::Spm) {
    v.bos = 1; v.eos = 2; v.unk = 0;
    v.add_bos = true;
    v.add_space_prefix = true;
  } else {
    v.bos = 11; v.eos = 11;
    static const char* const kLlama3[] = {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1",
                                          "pixtral", "midm-2.0", "lfm2", "tekken", "chameleon"};
    for (const char* p : kLlama3)
      if (v.pre == p) v.add_bos = true;
    if (v.pre == "chatglm-bpe" || v.pre == "glm4") v.bos = -1;
    load_merges(f, v);
  }
  read_id(f, "tokenizer.ggml.bos_token_id", n_vocab, true, v.bos);
  read_id(f, "tokenizer.ggml.eos_token_id", n_vocab, true, v.eos);
  read_id(f, "tokenizer.ggml.unknown_token_id", n_vocab, true, v.unk);
  read_id(f, "tokenizer.ggml.eot_token_id", n_vocab, false, v.eot);
  read_id(f, "tokenizer.ggml.eom_token_id", n_vocab, false, v.eom);
  read_id(f, "tokenizer.ggml.padding_token_id", n_vocab, false, v.pad);
  v.add_bos = f.get_bool_or("tokenizer.ggml.add_bos_token", v.add_bos);
  v.add_eos = f.get_bool_or("tokenizer.ggml.add_eos_token", v.add_eos);
  v.add_space_prefix = f.get_bool_or("tokenizer.ggml.add_space_prefix", v.add_space_prefix);
  if (v.add_bos && v.bos < 0) fail(f, "tokenizer.ggml.add_bos_token", "set, but the vocabulary has no BOS token");
  if (v.add_eos && v.eos < 0) fail(f, "tokenizer.ggml.add_eos_token", "set, but the vocabulary has no EOS token");

  // Chat and FIM markers found by their text.
  auto force_control = [&](int32_t id) {
    if (v.type[id] != TokenType::Control) v.type[id] = TokenType::Control;
  };
  for (const char* t : kEotTexts) {
    if (v.eot >= 0) break;
    if (int32_t id = v.find(t); id >= 0) { v.eot = id; force_control(id); }
  }
  if (v.eom < 0)
    if (int32_t id = v.find("<|eom_id|>"); id >= 0) { v.eom = id; force_control(id); }
  for (const char* t : kFimTexts)
    if (int32_t id = v.find(t); id >= 0) force_control(id);
  for (const char* t : kEogTexts)
    if (int32_t id = v.find(t); id >= 0) { v.eog.insert(id); force_control(id); }
  // gpt-oss's channel markers are always rendered as text.
  for (const char* t : {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"})
    if (int32_t id = v.find(t); id >= 0) v.type[id] = TokenType::UserDefined;
  for (int32_t id : {v.eos, v.eot, v.eom})
    if (id >= 0) v.eog.insert(id);
  // Formats where a listed text is not an end of turn (as llama.cpp decides): harmony and
  // solar-open's <|end|> closes a message, gemma4's </s> is ordinary text.
  auto has = [&](const char* t) { int32_t id = v.find(t); return id >= 0 && v.eog.count(id) > 0; };
  if (has("<|end|>") && ((has("<|return|>") && (has("<|call|>") || has("<|calls|>"))) ||
                         ((has("<|call|>") || has("<|calls|>")) && has("<|flush|>")))) {
    const int32_t id = v.find("<|end|>");
    v.eog.erase(id);
    v.type[id] = TokenType::UserDefined;
  }
  if (has("<|tool_response>") && has("</s>")) {
    const int32_t id = v.find("</s>");
    v.eog.erase(id);
    v.type[id] = TokenType::Normal;
  }

  // Phi-3: its added special tokens strip whitespace on their right (the HF rstrip flag).
  v.rstrip.assign(n, 0);
  v.lstrip.assign(n, 0);
  const std::string lname = lower(v.name);
  if (v.architecture == "phi3" || lname.find("phi-3") != std::string::npos ||
      lname.find("phi3") != std::string::npos) {
    for (int32_t i = 0; i < n_vocab; ++i)
      if (v.is_special_candidate(i)) v.rstrip[i] = 1;
    if (int32_t id = v.find("</s>"); id >= 0) v.rstrip[id] = 1;
    for (const char* t : {"<unk>", "<s>", "<|endoftext|>"})
      if (int32_t id = v.find(t); id >= 0) v.rstrip[id] = 0;
  }

  if (v.model == VocabModel::Spm) {
    v.spm_pairs.reserve(n);
    for (int32_t i = 0; i < n_vocab; ++i) {
      if (v.type[i] != TokenType::Normal) continue;
      const std::string& t = v.text[i];
      size_t prev = 0, prev_len = 0;
      for (size_t pos = 0; pos < t.size();) {
        const size_t len = utf8::char_len(t, pos);
        if (pos > 0) v.spm_pairs.insert(char_pair_key(std::string_view(t).substr(prev, prev_len),
                                                      std::string_view(t).substr(pos, len)));
        prev = pos;
        prev_len = len;
        pos += len;
      }
    }
  }

  // Byte tokens.
  for (int b = 0; b < 256; ++b) {
    if (v.model == VocabModel::Spm) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      int32_t id = v.find(name);
      if (id < 0) id = v.find(std::string(1, static_cast<char>(b)));  // a plain one-byte token
      v.byte_token[b] = id;
    } else {
      v.byte_token[b] = v.find(utf8::byte_chars().of_byte[b]);
    }
  }
  return v;
}

}  // namespace slm

// Vocab: everything the tokenizers need from a GGUF file's tokenizer.ggml.* metadata, loaded
// once and read-only afterwards (so one Vocab serves any number of threads).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace slm {

class GgufFile;

// tokenizer.ggml.token_type values.
enum class TokenType : int32_t {
  Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6,
};

enum class VocabModel { Spm, Bpe };  // tokenizer.ggml.model "llama" / "gpt2"

// Result of one byte-level BPE merge: its rank (lower merges first) and the merged token.
struct BpeMerge {
  int32_t rank;
  int32_t id;
};

struct Vocab {
  VocabModel model = VocabModel::Spm;
  std::string pre;           // tokenizer.ggml.pre ("" when absent)
  std::string name;          // general.name, for logs and family quirks
  std::string architecture;  // general.architecture

  std::vector<std::string> text;  // id -> token text as stored
  std::vector<float> score;       // SPM merge priority (higher first)
  std::vector<TokenType> type;
  std::vector<uint8_t> rstrip;  // special token eats whitespace on its right (Phi-3)
  std::vector<uint8_t> lstrip;  // ... on its left
  // text -> id; the keys view the strings in `text`, which never move after loading.
  std::unordered_map<std::string_view, int32_t> id_of;
  // (left id << 32 | right id) -> merge, for gpt2 vocabularies.
  std::unordered_map<uint64_t, BpeMerge> merges;

  // SPM: the <0xNN> token of each byte. BPE: the token of each byte's GPT-2 character.
  // -1 where the vocabulary has none.
  int32_t byte_token[256];

  int32_t bos = -1, eos = -1, eot = -1, eom = -1, unk = -1, pad = -1;
  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = false;
  std::unordered_set<int32_t> eog;  // end-of-generation ids

  Vocab() = default;
  Vocab(const Vocab&) = delete;  // id_of views into `text`
  Vocab& operator=(const Vocab&) = delete;
  Vocab(Vocab&&) = default;
  Vocab& operator=(Vocab&&) = default;

  int32_t size() const { return static_cast<int32_t>(text.size()); }
  int32_t find(std::string_view s) const {
    auto it = id_of.find(s);
    return it == id_of.end() ? -1 : it->second;
  }
  // Tokens that the special-token partition splits out of raw text.
  bool is_special_candidate(int32_t id) const {
    const TokenType t = type[id];
    return t == TokenType::Control || t == TokenType::UserDefined || t == TokenType::Unknown;
  }
};

// Reads and checks the metadata. Throws slm::Error naming the key at fault.
Vocab load_vocab(const GgufFile& file);

}  // namespace slm

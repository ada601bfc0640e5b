// Vocab: everything the tokenizers need from a GGUF file's tokenizer.ggml.* metadata, loaded
// once and read-only afterwards (so one Vocab serves any number of threads).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "tokenizer/token_index.h"

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
  TokenIndex id_of;  // text -> id, over the strings in `text`
  // (left id << 32 | right id) -> merge, for gpt2 vocabularies.
  std::unordered_map<uint64_t, BpeMerge> merges;
  // SPM: every pair of adjacent characters that occurs inside some NORMAL token (see
  // char_pair_key). Where two neighbouring characters of a text form no such pair, no merge
  // can ever span them, so the text splits there into independent segments.
  std::unordered_set<uint64_t> spm_pairs;

  // SPM: the <0xNN> token of each byte. BPE: the token of each byte's GPT-2 character.
  // -1 where the vocabulary has none.
  int32_t byte_token[256];

  int32_t bos = -1, eos = -1, eot = -1, eom = -1, unk = -1, pad = -1;
  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = false;
  std::unordered_set<int32_t> eog;  // end-of-generation ids

  Vocab() = default;
  Vocab(const Vocab&) = delete;  // id_of points at `text`
  Vocab& operator=(const Vocab&) = delete;
  Vocab(Vocab&&) = default;
  Vocab& operator=(Vocab&&) = default;

  int32_t size() const { return static_cast<int32_t>(text.size()); }
  int32_t find(std::string_view s) const { return id_of.find(s); }
  // Tokens that the special-token partition splits out of raw text.
  bool is_special_candidate(int32_t id) const {
    const TokenType t = type[id];
    return t == TokenType::Control || t == TokenType::UserDefined || t == TokenType::Unknown;
  }
};

// Key of two adjacent characters (each 1..4 bytes, packed big-endian into 32 bits).
inline uint64_t char_pair_key(std::string_view a, std::string_view b) {
  auto pack = [](std::string_view c) {
    uint32_t v = 0;
    for (size_t i = 0; i < 4; ++i) v = (v << 8) | (i < c.size() ? static_cast<unsigned char>(c[i]) : 0u);
    return v;
  };
  return (static_cast<uint64_t>(pack(a)) << 32) | pack(b);
}

// Reads and checks the metadata. Throws slm::Error naming the key at fault.
Vocab load_vocab(const GgufFile& file);

}  // namespace slm

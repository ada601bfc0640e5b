// Special-token partition: splits raw text into literal special tokens and the raw-text
// fragments between them, before the model-specific tokenizer sees any text.
//
// Semantics (llama.cpp's): candidate tokens are CONTROL, USER_DEFINED and UNKNOWN ones;
// CONTROL/UNKNOWN only when parse_special is on. Longest token text first, each token's
// occurrences are taken left to right, non-overlapping, inside the fragments that are still
// raw. Tokens with rstrip/lstrip eat the ASCII whitespace next to them.
//
// Speed: a trie over the candidates finds which tokens occur at all in one pass over the
// text (a subtree whose tokens were all seen is not walked again), and only those tokens get
// the longest-first scan. Gemma's 6k control tokens thus cost nothing on plain text.
#pragma once
#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/vocab.h"

namespace slm {

struct Fragment {
  int32_t token = -1;  // >= 0: a special token; -1: raw text [begin, end)
  size_t begin = 0, end = 0;
};

class SpecialMatcher {
 public:
  explicit SpecialMatcher(const Vocab& vocab);
  // Appends the partition of text to out (raw fragments are never empty).
  void partition(std::string_view text, bool parse_special, std::vector<Fragment>& out) const;

 private:
  struct Node {
    int32_t token = -1;   // candidate token ending here
    int32_t parent = -1;
  };
  int32_t child(int32_t node, unsigned char c) const {
    auto it = edges_.find((static_cast<uint64_t>(node) << 8) | c);
    return it == edges_.end() ? -1 : it->second;
  }
  const Vocab& vocab_;
  std::vector<Node> nodes_;
  std::unordered_map<uint64_t, int32_t> edges_;  // (node << 8 | byte) -> child
  // Per node: candidate tokens in its subtree (itself included) that are matched with
  // parse_special off (index 0) / on (index 1).
  std::vector<uint32_t> subtree_count_[2];
  bool first_byte_[2][256] = {};
};

}  // namespace slm

// VocabIndex: the bytes of every token of a vocabulary, and a byte trie over them, built
// once per Tokenizer and shared by every TokenConstraint on it.
//
// The trie is stored flat in preorder: node i's subtree is nodes [i, end[i]), so a walk
// that finds a prefix impossible skips all tokens under it with one jump.
// Text tokens are those with a non-empty piece that are neither control nor end-of-
// generation tokens; EOG tokens are kept aside (the grammar decides when text may end).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace slm {
class Tokenizer;
}

namespace slm::grammar {

class VocabIndex {
 public:
  explicit VocabIndex(const Tokenizer& tokenizer);

  int32_t n_vocab() const { return static_cast<int32_t>(kind_.size()); }
  bool is_text(int32_t id) const { return kind_[id] == Kind::Text; }
  bool is_eog(int32_t id) const { return kind_[id] == Kind::Eog; }
  const std::string& piece(int32_t id) const { return pieces_[id]; }
  const std::vector<int32_t>& eog_tokens() const { return eog_tokens_; }

  // The trie; node 0 is the root (no byte, depth 0).
  size_t node_count() const { return node_byte_.size(); }
  size_t max_depth() const { return max_depth_; }
  const std::vector<uint8_t>& node_byte() const { return node_byte_; }
  const std::vector<uint16_t>& node_depth() const { return node_depth_; }
  const std::vector<uint32_t>& node_end() const { return node_end_; }
  // Tokens whose piece ends at node i: tokens_at()[token_offset()[i] .. token_offset()[i+1]).
  const std::vector<uint32_t>& token_offset() const { return token_offset_; }
  const std::vector<int32_t>& tokens_at() const { return tokens_at_; }

 private:
  enum class Kind : uint8_t { None, Text, Eog };
  std::vector<Kind> kind_;
  std::vector<std::string> pieces_;
  std::vector<int32_t> eog_tokens_;
  std::vector<uint8_t> node_byte_;
  std::vector<uint16_t> node_depth_;
  std::vector<uint32_t> node_end_;
  std::vector<uint32_t> token_offset_;
  std::vector<int32_t> tokens_at_;
  size_t max_depth_ = 0;
};

}  // namespace slm::grammar

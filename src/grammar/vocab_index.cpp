#include "grammar/vocab_index.h"

#include <algorithm>

#include "slm/error.h"
#include "slm/tokenizer.h"

namespace slm::grammar {

// Pieces longer than this are left out of the trie (never allowed): no real vocabulary has
// them, and the trie's depth field is 16 bits.
static constexpr size_t kMaxPieceBytes = 4096;

VocabIndex::VocabIndex(const Tokenizer& tokenizer) {
  const int32_t n = tokenizer.n_vocab();
  kind_.assign(n, Kind::None);
  pieces_.resize(n);
  std::vector<int32_t> text_ids;
  for (int32_t id = 0; id < n; ++id) {
    if (tokenizer.is_eog(id)) {
      kind_[id] = Kind::Eog;
      eog_tokens_.push_back(id);
      continue;
    }
    if (tokenizer.is_control(id)) continue;
    pieces_[id] = tokenizer.token_to_piece(id, false);
    if (pieces_[id].empty() || pieces_[id].size() > kMaxPieceBytes) continue;
    kind_[id] = Kind::Text;
    text_ids.push_back(id);
  }
  std::sort(text_ids.begin(), text_ids.end(), [&](int32_t a, int32_t b) {
    return pieces_[a] != pieces_[b] ? pieces_[a] < pieces_[b] : a < b;
  });

  // Sorted pieces give the preorder directly: each piece adds the nodes past its common
  // prefix with the one before; a node's subtree ends where a later piece leaves it.
  node_byte_.push_back(0);
  node_depth_.push_back(0);
  node_end_.push_back(0);
  token_offset_.push_back(0);
  std::vector<uint32_t> open = {0};  // node at each depth of the current path
  const std::string* previous = nullptr;
  for (int32_t id : text_ids) {
    const std::string& piece = pieces_[id];
    size_t common = 0;
    if (previous) {
      const size_t limit = std::min(previous->size(), piece.size());
      while (common < limit && (*previous)[common] == piece[common]) ++common;
    }
    while (open.size() > common + 1) {
      node_end_[open.back()] = static_cast<uint32_t>(node_byte_.size());
      open.pop_back();
    }
    for (size_t d = common; d < piece.size(); ++d) {
      open.push_back(static_cast<uint32_t>(node_byte_.size()));
      node_byte_.push_back(static_cast<uint8_t>(piece[d]));
      node_depth_.push_back(static_cast<uint16_t>(d + 1));
      node_end_.push_back(0);
      token_offset_.push_back(static_cast<uint32_t>(tokens_at_.size()));
    }
    // Tokens are added while their node is the newest, so each node's tokens are contiguous.
    tokens_at_.push_back(id);
    max_depth_ = std::max(max_depth_, piece.size());
    previous = &piece;
  }
  for (uint32_t node : open) node_end_[node] = static_cast<uint32_t>(node_byte_.size());
  token_offset_.push_back(static_cast<uint32_t>(tokens_at_.size()));
}

}  // namespace slm::grammar

#include <queue>
#include <string>

#include "tokenizer/encode.h"
#include "tokenizer/utf8.h"

namespace slm {

namespace {

struct Symbol {
  int32_t id;  // token of this symbol; -1 for a byte whose character is not in the vocab
  int32_t prev, next;
  bool alive;
};

struct Bigram {
  int32_t rank;
  int32_t left, right;
  int32_t merged;  // token the merge produces
  int32_t left_id, right_id;
};

struct BigramOrder {  // lowest rank on top; equal ranks: leftmost on top
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

}  // namespace

void bpe_tokenize_piece(const Vocab& v, std::string_view piece, bool ignore_merges,
                        std::vector<int32_t>& out) {
  if (piece.empty()) return;
  const utf8::ByteChars& chars = utf8::byte_chars();
  if (ignore_merges) {
    std::string mapped;
    mapped.reserve(piece.size() * 2);
    for (char c : piece) mapped += chars.of_byte[static_cast<unsigned char>(c)];
    if (const int32_t id = v.find(mapped); id >= 0) {
      out.push_back(id);
      return;
    }
  }
  if (piece.size() == 1) {
    if (const int32_t id = v.byte_token[static_cast<unsigned char>(piece[0])]; id >= 0) out.push_back(id);
    return;
  }

  const int32_t n = static_cast<int32_t>(piece.size());
  std::vector<Symbol> sym(n);
  for (int32_t i = 0; i < n; ++i)
    sym[i] = Symbol{v.byte_token[static_cast<unsigned char>(piece[i])], i - 1, i + 1 < n ? i + 1 : -1, true};

  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
  auto try_pair = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0 || sym[l].id < 0 || sym[r].id < 0) return;
    const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(sym[l].id)) << 32) |
                         static_cast<uint32_t>(sym[r].id);
    auto it = v.merges.find(key);
    if (it == v.merges.end()) return;
    queue.push(Bigram{it->second.rank, l, r, it->second.id, sym[l].id, sym[r].id});
  };
  for (int32_t i = 1; i < n; ++i) try_pair(i - 1, i);

  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& l = sym[b.left];
    Symbol& r = sym[b.right];
    // Stale: a side was merged away or changed since this pair was queued.
    if (!l.alive || !r.alive || l.next != b.right || l.id != b.left_id || r.id != b.right_id) continue;
    l.id = b.merged;
    r.alive = false;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = b.left;
    try_pair(l.prev, b.left);
    try_pair(b.left, l.next);
  }

  // Every merged symbol is a token; a lone byte whose character is missing from the
  // vocabulary has no token at all and is dropped, as in llama.cpp.
  for (int32_t i = 0; i >= 0; i = sym[i].next)
    if (sym[i].id >= 0) out.push_back(sym[i].id);
}

}  // namespace slm

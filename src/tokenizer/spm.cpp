#include <queue>

#include "tokenizer/encode.h"
#include "tokenizer/utf8.h"

namespace slm {

namespace {

struct Symbol {
  uint32_t begin;  // byte offset in the text
  uint32_t n;      // byte length; 0 once merged into its left neighbour
  int32_t prev, next;
};

struct Bigram {
  float score;
  int32_t left, right;
  uint32_t size;
};

struct BigramOrder {  // best score on top; equal scores: leftmost on top
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

}  // namespace

void spm_tokenize(const Vocab& v, std::string_view text, std::vector<int32_t>& out) {
  if (text.empty()) return;
  if (text.size() > 0xffffffffu) text = text.substr(0, 0xffffffffu);  // offsets are 32-bit
  std::vector<Symbol> sym;
  sym.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const uint32_t n = static_cast<uint32_t>(utf8::char_len(text, pos));
    const int32_t i = static_cast<int32_t>(sym.size());
    sym.push_back(Symbol{static_cast<uint32_t>(pos), n, i - 1, pos + n < text.size() ? i + 1 : -1});
    pos += n;
  }

  std::vector<Bigram> storage;
  storage.reserve(sym.size());
  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue(BigramOrder{}, std::move(storage));
  auto try_pair = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const uint32_t size = sym[l].n + sym[r].n;
    const int32_t id = v.find(text.substr(sym[l].begin, size));
    // Only ordinary pieces are built by merging (SentencePiece never produces control,
    // byte or unused pieces from text).
    if (id < 0 || v.type[id] != TokenType::Normal) return;
    queue.push(Bigram{v.score[id], l, r, size});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(sym.size()); ++i) try_pair(i - 1, i);

  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& l = sym[b.left];
    Symbol& r = sym[b.right];
    // Stale: one side was merged away or grew since this pair was queued.
    if (l.n == 0 || r.n == 0 || l.next != b.right || l.n + r.n != b.size) continue;
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = b.left;
    try_pair(l.prev, b.left);
    try_pair(b.left, l.next);
  }

  for (int32_t i = 0; i >= 0; i = sym[i].next) {
    const std::string_view piece = text.substr(sym[i].begin, sym[i].n);
    const int32_t id = v.find(piece);
    if (id >= 0 && (v.type[id] == TokenType::Normal || v.type[id] == TokenType::UserDefined)) {
      out.push_back(id);
      continue;
    }
    // Byte fallback; a vocabulary without byte tokens gets one <unk> for the character.
    bool all_bytes = true;
    for (char c : piece) all_bytes = all_bytes && v.byte_token[static_cast<unsigned char>(c)] >= 0;
    if (all_bytes) {
      for (char c : piece) out.push_back(v.byte_token[static_cast<unsigned char>(c)]);
    } else if (v.unk >= 0) {
      out.push_back(v.unk);
    }
  }
}

}  // namespace slm

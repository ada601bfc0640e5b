#include <algorithm>

#include "tokenizer/encode.h"
#include "tokenizer/utf8.h"

namespace slm {

namespace {

using Symbol = MergeScratch::Symbol;

void bpe_merge(const Vocab& v, std::string_view piece, std::vector<int32_t>& out, MergeScratch& s);

}  // namespace

void bpe_tokenize_piece(const Vocab& v, std::string_view piece, bool ignore_merges,
                        std::vector<int32_t>& out, MergeScratch& s) {
  if (piece.empty()) return;
  if (piece.size() == 1) {
    if (const int32_t id = v.byte_token[static_cast<unsigned char>(piece[0])]; id >= 0) out.push_back(id);
    return;
  }
  if (s.from_cache(piece, out)) return;
  const size_t first_out = out.size();
  if (ignore_merges) {
    const utf8::ByteChars& chars = utf8::byte_chars();
    s.mapped.clear();
    for (char c : piece) s.mapped += chars.of_byte[static_cast<unsigned char>(c)];
    if (const int32_t id = v.find(s.mapped); id >= 0) {
      out.push_back(id);
      s.remember(piece, out, first_out);
      return;
    }
  }
  bpe_merge(v, piece, out, s);
  s.remember(piece, out, first_out);
}

namespace {

void bpe_merge(const Vocab& v, std::string_view piece, std::vector<int32_t>& out, MergeScratch& s) {
  const int32_t n = static_cast<int32_t>(std::min<size_t>(piece.size(), 0x7fffffff));
  std::vector<Symbol>& sym = s.symbols;
  sym.resize(n);
  for (int32_t i = 0; i < n; ++i)
    sym[i] = Symbol{static_cast<uint32_t>(i), 1, v.byte_token[static_cast<unsigned char>(piece[i])], i - 1, i + 1 < n ? i + 1 : -1};

  MergeHeap& heap = s.heap;
  heap.clear();
  bool heaped = false;  // the first pairs are collected, then heapified at once (O(n))
  auto try_pair = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0 || sym[l].id < 0 || sym[r].id < 0) return;
    const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(sym[l].id)) << 32) |
                         static_cast<uint32_t>(sym[r].id);
    auto it = v.merges.find(key);
    if (it == v.merges.end()) return;
    const MergeCandidate c{(static_cast<uint64_t>(static_cast<uint32_t>(it->second.rank)) << 32) |
                               static_cast<uint32_t>(l),
                           sym[l].n + sym[r].n, it->second.id};
    if (heaped) heap.push(c);
    else heap.add(c);
  };
  for (int32_t i = 1; i < n; ++i) try_pair(i - 1, i);
  heap.heapify();
  heaped = true;

  while (!heap.empty()) {
    const MergeCandidate c = heap.pop();
    Symbol& l = sym[c.left()];
    // Stale: the left side was merged away, or either side grew since this pair was queued
    // (a symbol's start never moves, so the same byte length means the same pair).
    if (l.n == 0 || l.next < 0) continue;
    Symbol& r = sym[l.next];
    if (l.n + r.n != c.size) continue;
    l.id = c.merged;
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = c.left();
    try_pair(l.prev, c.left());
    try_pair(c.left(), l.next);
  }

  // Every merged symbol is a token; a lone byte whose character is missing from the
  // vocabulary has no token at all and is dropped, as in llama.cpp.
  for (int32_t i = 0; i >= 0; i = sym[i].next)
    if (sym[i].id >= 0) out.push_back(sym[i].id);
}

}  // namespace

}  // namespace slm

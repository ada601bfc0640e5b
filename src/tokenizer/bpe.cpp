#include <algorithm>

#include "tokenizer/encode.h"
#include "tokenizer/utf8.h"

namespace slm {

namespace {

using Symbol = MergeScratch::Symbol;
using Bigram = MergeScratch::BpeBigram;

// Heap order: lowest rank on top; equal ranks: leftmost on top.
bool worse(const Bigram& a, const Bigram& b) {
  return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
}

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

  std::vector<Bigram>& heap = s.bpe_heap;
  heap.clear();
  bool heaped = false;  // the first pairs are collected, then heapified at once (O(n))
  auto try_pair = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0 || sym[l].id < 0 || sym[r].id < 0) return;
    const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(sym[l].id)) << 32) |
                         static_cast<uint32_t>(sym[r].id);
    auto it = v.merges.find(key);
    if (it == v.merges.end()) return;
    heap.push_back(Bigram{it->second.rank, l, r, sym[l].n + sym[r].n, it->second.id});
    if (heaped) std::push_heap(heap.begin(), heap.end(), worse);
  };
  for (int32_t i = 1; i < n; ++i) try_pair(i - 1, i);
  std::make_heap(heap.begin(), heap.end(), worse);
  heaped = true;

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), worse);
    const Bigram b = heap.back();
    heap.pop_back();
    Symbol& l = sym[b.left];
    Symbol& r = sym[b.right];
    // Stale: a side was merged away or changed since this pair was queued.
    if (l.n == 0 || r.n == 0 || l.next != b.right || l.n + r.n != b.size) continue;
    l.id = b.merged;
    l.n += r.n;
    r.n = 0;
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

}  // namespace

}  // namespace slm

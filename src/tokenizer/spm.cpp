
#include "tokenizer/encode.h"
#include "tokenizer/utf8.h"

namespace slm {

namespace {

using Symbol = MergeScratch::Symbol;

void emit_symbol(const Vocab& v, std::string_view piece, std::vector<int32_t>& out) {
  const int32_t id = v.find(piece);
  if (id >= 0 && (v.type[id] == TokenType::Normal || v.type[id] == TokenType::UserDefined)) {
    out.push_back(id);
    return;
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

// The merge loop over one segment's characters.
void spm_merge(const Vocab& v, std::string_view text, std::vector<int32_t>& out, MergeScratch& s) {
  std::vector<Symbol>& sym = s.symbols;
  sym.clear();
  sym.reserve(text.size());  // at most one symbol per byte
  for (size_t pos = 0; pos < text.size();) {
    const uint32_t n = static_cast<uint32_t>(utf8::char_len(text, pos));
    const int32_t i = static_cast<int32_t>(sym.size());
    sym.push_back(Symbol{static_cast<uint32_t>(pos), n, -1, i - 1, pos + n < text.size() ? i + 1 : -1});
    pos += n;
  }
  if (sym.size() == 1) {
    emit_symbol(v, text, out);
    return;
  }

  MergeHeap& heap = s.heap;
  heap.clear();
  bool heaped = false;  // the first pairs are collected, then heapified at once (O(n))
  auto try_pair = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const uint32_t size = sym[l].n + sym[r].n;
    const int32_t id = v.find(text.substr(sym[l].begin, size));
    // Only ordinary pieces are built by merging (SentencePiece never produces control,
    // byte or unused pieces from text).
    if (id < 0 || v.type[id] != TokenType::Normal) return;
    const MergeCandidate c{(static_cast<uint64_t>(score_priority(v.score[id])) << 32) | static_cast<uint32_t>(l),
                           size, id};
    if (heaped) heap.push(c);
    else heap.add(c);
  };
  for (int32_t i = 1; i < static_cast<int32_t>(sym.size()); ++i) try_pair(i - 1, i);
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
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = c.left();
    try_pair(l.prev, c.left());
    try_pair(c.left(), l.next);
  }

  for (int32_t i = 0; i >= 0; i = sym[i].next) emit_symbol(v, text.substr(sym[i].begin, sym[i].n), out);
}

// One segment: no token spans its ends, so it merges on its own.
void spm_segment(const Vocab& v, std::string_view text, std::vector<int32_t>& out, MergeScratch& s) {
  if (s.from_cache(text, out)) return;
  const size_t first_out = out.size();
  spm_merge(v, text, out, s);
  s.remember(text, out, first_out);
}

}  // namespace

void spm_tokenize(const Vocab& v, std::string_view text, std::vector<int32_t>& out, MergeScratch& s) {
  if (text.size() > 0xffffffffu) text = text.substr(0, 0xffffffffu);  // offsets are 32-bit
  size_t seg = 0, prev = 0, prev_len = 0;
  for (size_t pos = 0; pos < text.size();) {
    const size_t len = utf8::char_len(text, pos);
    if (pos > 0 && !v.spm_pairs.count(char_pair_key(text.substr(prev, prev_len), text.substr(pos, len)))) {
      spm_segment(v, text.substr(seg, pos - seg), out, s);
      seg = pos;
    }
    prev = pos;
    prev_len = len;
    pos += len;
  }
  if (seg < text.size()) spm_segment(v, text.substr(seg), out, s);
}

}  // namespace slm

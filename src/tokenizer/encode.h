// The two model-specific tokenizers, each over one raw-text fragment (specials already split
// out). Internal to slm_tokenizer; the public entry point is slm::Tokenizer.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/merge_heap.h"
#include "tokenizer/vocab.h"

namespace slm {

// Working memory of the merge loops, reused across pieces and segments of one encode call
// (allocation per word would otherwise dominate).
struct MergeScratch {
  struct Symbol {
    uint32_t begin, n;  // byte range in the word; n == 0 once merged into its left neighbour
    int32_t id;         // BPE: token of this symbol (-1: a byte not in the vocabulary)
    int32_t prev, next;
  };
  std::vector<Symbol> symbols;
  MergeHeap heap;
  std::string mapped;

  // Words repeat (Zipf): the ids of each short word seen in this call are kept.
  static constexpr size_t kMaxCachedWord = 48;
  static constexpr size_t kMaxCachedWords = 1 << 16;
  std::unordered_map<std::string, std::pair<uint32_t, uint32_t>> cache;  // word -> [begin, end) in cached_ids
  std::vector<int32_t> cached_ids;
  std::string key;

  // Appends the cached ids of `word` to out; false when not cached.
  bool from_cache(std::string_view word, std::vector<int32_t>& out) {
    if (word.size() > kMaxCachedWord) return false;
    key.assign(word);
    auto it = cache.find(key);
    if (it == cache.end()) return false;
    out.insert(out.end(), cached_ids.begin() + it->second.first, cached_ids.begin() + it->second.second);
    return true;
  }
  // Remembers out[from, end) as the ids of `word`.
  void remember(std::string_view word, const std::vector<int32_t>& out, size_t from) {
    if (word.size() > kMaxCachedWord || cache.size() >= kMaxCachedWords) return;
    const uint32_t b = static_cast<uint32_t>(cached_ids.size());
    cached_ids.insert(cached_ids.end(), out.begin() + from, out.end());
    cache.emplace(std::string(word), std::make_pair(b, static_cast<uint32_t>(cached_ids.size())));
  }
};

// SentencePiece-style BPE. `text` has its spaces already written as U+2581. Starting from
// UTF-8 characters, repeatedly merges the adjacent pair that forms the NORMAL token of
// highest score (ties: leftmost); symbols that are not tokens become <0xNN> byte tokens.
// O(n log n) with a heap; the text is first cut where no token can span two
// neighbouring characters, so the heaps stay word-sized.
void spm_tokenize(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out,
                  MergeScratch& scratch);

// Byte-level BPE of one pre-tokenized piece (raw bytes): each byte starts as its GPT-2
// character's token; repeatedly merges the adjacent pair of lowest merge rank (ties:
// leftmost). With ignore_merges, a piece that is itself a token is emitted whole.
void bpe_tokenize_piece(const Vocab& vocab, std::string_view piece, bool ignore_merges,
                        std::vector<int32_t>& out, MergeScratch& scratch);

}  // namespace slm

// The two model-specific tokenizers, each over one raw-text fragment (specials already split
// out). Internal to slm_tokenizer; the public entry point is slm::Tokenizer.
#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace slm {

// SentencePiece-style BPE. `text` has its spaces already written as U+2581. Starting from
// UTF-8 characters, repeatedly merges the adjacent pair that forms the NORMAL token of
// highest score (ties: leftmost); symbols that are not tokens become <0xNN> byte tokens.
// O(n log n) with a priority queue.
void spm_tokenize(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out);

// Byte-level BPE of one pre-tokenized piece (raw bytes): each byte starts as its GPT-2
// character's token; repeatedly merges the adjacent pair of lowest merge rank (ties:
// leftmost). With ignore_merges, a piece that is itself a token is emitted whole.
void bpe_tokenize_piece(const Vocab& vocab, std::string_view piece, bool ignore_merges,
                        std::vector<int32_t>& out);

}  // namespace slm

// Reading SentencePiece `tokenizer.model` files (a protobuf ModelProto) without libsentencepiece.
// Only the pieces are read: ModelProto field 1, each a SentencePiece message {1: piece,
// 2: score, 3: type}. Every other field is skipped by its wire type. The entry points,
// parse_sentencepiece_model and read_sentencepiece_model, are declared in convert/hf_vocab.h.
#pragma once
#include <cstddef>
#include <string_view>

#include "convert/hf_vocab.h"

namespace slm::convert {

// SentencePiece's piece types; GGUF's tokenizer.ggml.token_type uses the same numbers.
enum SpPieceType : int {
  kSpNormal = 1,
  kSpUnknown = 2,
  kSpControl = 3,
  kSpUserDefined = 4,
  kSpUnused = 5,
  kSpByte = 6,
};

// More pieces than this is not a vocabulary but a hostile or broken file.
constexpr size_t kMaxSentencePieces = size_t{1} << 22;
// tokenizer.model files are a few MiB (Gemma's 256k pieces: 4 MiB).
constexpr size_t kMaxSentencePieceFileBytes = size_t{256} << 20;

// Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool is_valid_utf8(std::string_view s);

}  // namespace slm::convert

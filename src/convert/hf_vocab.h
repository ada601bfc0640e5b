#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>
#include <nlohmann/json.hpp>
namespace slm::convert {
struct SpPiece { std::string piece; float score = 0; int type = 1; };
// Parses a SentencePiece model file image; `name` is used in error messages.
std::vector<SpPiece> parse_sentencepiece_model(const uint8_t* data, size_t size, const std::string& name);
std::vector<SpPiece> read_sentencepiece_model(const std::string& path);

struct HfVocab {
  std::string model;                  // tokenizer.ggml.model: "llama" (SentencePiece) or "gpt2" (byte-level BPE)
  std::string pre;                    // tokenizer.ggml.pre: "default" for SentencePiece; detected for BPE
  std::string pre_alternatives;       // other llama.cpp names with the same split regexes ("a, b")
  std::vector<std::string> tokens;
  std::vector<float> scores;          // SentencePiece only (empty for gpt2: no scores key is written)
  std::vector<int32_t> types;         // GGUF token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
  std::vector<std::string> merges;    // gpt2 only, "a b" strings
  std::vector<std::pair<std::string, int64_t>> special_ids;  // ("bos", 1), ("eos", 2) ... in the order the reference writes them
  std::vector<std::pair<std::string, bool>> add_special;     // ("bos", true), ("eos", false), ("sep", false) ... likewise
  std::optional<std::string> chat_template;
  // When the template comes as a list of {name, template}: the entries other than "default"
  // (names reduced to [A-Za-z0-9_]), for tokenizer.chat_template.<name> and the name list
  // tokenizer.chat_templates. Empty for a single template.
  std::vector<std::pair<std::string, std::string>> named_chat_templates;
};
// dir: the HF folder; config: its parsed config.json; vocab_size: config's vocab_size (0 = none given);
// pre_override: --pre NAME from the command line ("" = detect). Throws slm::Error with one line on any problem.
HfVocab read_hf_vocab(const std::string& dir, const nlohmann::json& config, int64_t vocab_size,
                      const std::string& pre_override);
}  // namespace slm::convert

// Naming a byte-level BPE pre-tokenizer as the reference converter does: by the SHA-256 of
// the ids its tokenizer gives one fixed check text (see bpe_pre.cpp).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace slm::convert {

std::string check_text();
// sha256 of the ids printed as a Python list ("[128000, 198, ...]"), in hex.
std::string check_hash(const std::vector<int32_t>& ids);
// The check hash of the vocabulary in a (vocabulary-only) GGUF file, tokenized by slm.
std::string check_hash_of(const std::string& vocab_gguf);
// The name the reference writes for a check hash; nullptr when it does not know the hash.
const char* pre_for_check_hash(const std::string& hex);

}  // namespace slm::convert

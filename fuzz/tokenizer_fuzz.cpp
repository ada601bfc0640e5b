// libFuzzer target for the tokenizer on real vocabularies (SentencePiece and byte-level BPE):
// any bytes encode; decoding gives the bytes back where the vocabulary covers every byte; the
// streaming decoder gives what decode gives.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "gguf/gguf.h"
#include "slm/error.h"
#include "slm/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string shared = std::getenv("SLM_SHARED") ? std::getenv("SLM_SHARED") : "../shared";
  static std::unique_ptr<slm::GgufFile> spm_file = slm::GgufFile::open(shared + "/vocab/ggml-vocab-llama-spm.gguf");
  static std::unique_ptr<slm::GgufFile> bpe_file = slm::GgufFile::open(shared + "/vocab/ggml-vocab-llama-bpe.gguf");
  static std::unique_ptr<slm::Tokenizer> spm = slm::Tokenizer::from_gguf(*spm_file);
  static std::unique_ptr<slm::Tokenizer> bpe = slm::Tokenizer::from_gguf(*bpe_file);
  if (size == 0) return 0;
  const slm::Tokenizer& t = (data[0] & 1) ? *bpe : *spm;
  const bool special = (data[0] & 2) != 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const auto ids = t.encode(text, false, special);
  const std::string back = t.decode(ids, special);
  slm::StreamDecoder d(t, special, /*starts_text=*/true);
  std::string streamed;
  for (int32_t id : ids) streamed += d.push(id);
  streamed += d.flush();
  if (streamed != back) __builtin_trap();
  if (!special && (data[0] & 1) && back != text) __builtin_trap();  // byte-level BPE covers every byte
  return 0;
}

// libFuzzer target for the SentencePiece model reader of `slm convert` (tokenizer.model is a
// protobuf): any byte string is either a list of pieces or an slm::Error.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "convert/hf_vocab.h"
#include "slm/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> image(data, data + size);  // exact-size heap block: ASan sees overreads
  try {
    auto pieces = slm::convert::parse_sentencepiece_model(image.data(), image.size(), "fuzz");
    volatile size_t n = 0;
    for (const auto& p : pieces) n = n + p.piece.size() + static_cast<size_t>(p.type);
  } catch (const slm::Error&) {
  }
  return 0;
}

// libFuzzer target for the fine-tuning data reader: any JSONL file becomes examples and rows
// or is refused with slm::Error naming the line.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "app/chat_format.h"
#include "gguf/gguf.h"
#include "slm/error.h"
#include "slm/tokenizer.h"
#include "train/data.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string shared = std::getenv("SLM_SHARED") ? std::getenv("SLM_SHARED") : "../shared";
  static std::unique_ptr<slm::GgufFile> file = slm::GgufFile::open(shared + "/models/stories260K.gguf");
  static std::unique_ptr<slm::Tokenizer> tok = slm::Tokenizer::from_gguf(*file);
  static slm::ChatFormatter chat(*file, *tok, "", nullptr);
  static const std::string path = "/tmp/slm_fuzz_data_" + std::to_string(getpid()) + ".jsonl";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    slm::train::Dataset d = slm::train::load_dataset(path, *tok, &chat);
    slm::train::make_rows(d.examples, 64, true);
  } catch (const slm::Error&) {
  }
  return 0;
}

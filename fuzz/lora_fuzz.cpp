// libFuzzer target for the LoRA adapter loader: any file is loaded and checked against the
// llama fixture, or refused with slm::Error. SLM_SHARED points at the shared material.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "slm/adapter.h"
#include "slm/error.h"
#include "slm/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::unique_ptr<slm::Model> base = [] {
    const char* shared = std::getenv("SLM_SHARED");
    return slm::Model::load(std::string(shared ? shared : "../shared") + "/fixtures/llama-f32.gguf");
  }();
  std::vector<uint8_t> image(data, data + size);
  try {
    auto file = slm::GgufFile::from_memory(image.data(), image.size(), "fuzz-adapter");
    auto a = slm::LoraAdapter::from_file(std::move(file), base.get());
    (void)a->bytes();
  } catch (const slm::Error&) {
  }
  return 0;
}

// libFuzzer target for the GGUF reader: any byte string is either read or rejected with an
// slm::Error. Build with clang: cmake -B build-fuzz -DSLM_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++
#include <cstddef>
#include <cstdint>
#include <vector>

#include "gguf/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> image(data, data + size);  // exact-size heap block: ASan sees overreads
  try {
    auto f = slm::GgufFile::from_memory(image.data(), image.size(), "fuzz");
    volatile uint64_t sum = 0;
    for (const slm::GgufTensor& t : f->tensors())
      if (t.nbytes) sum = sum + t.data[0] + t.data[t.nbytes - 1];
  } catch (const slm::Error&) {
  }
  return 0;
}

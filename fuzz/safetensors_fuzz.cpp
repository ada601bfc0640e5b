// libFuzzer target for the safetensors reader of `slm convert`: any byte string is either a
// checkpoint whose every tensor lies inside the image, or an slm::Error.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "convert/safetensors.h"
#include "slm/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> image(data, data + size);  // exact-size heap block: ASan sees overreads
  try {
    auto s = slm::convert::SafetensorsSet::from_memory(image.data(), image.size(), "fuzz");
    volatile float sum = 0;
    for (const slm::convert::StTensor& t : s->tensors()) {
      if (t.n_elements() > 0 && t.n_elements() < (1 << 16)) {
        std::vector<float> v(static_cast<size_t>(t.n_elements()));
        slm::convert::SafetensorsSet::to_f32(t, v.data());
        sum = sum + v.front() + v.back();
      }
    }
  } catch (const slm::Error&) {
  }
  return 0;
}

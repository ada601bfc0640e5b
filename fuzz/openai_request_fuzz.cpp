// libFuzzer target for the OpenAI request parser: any body is parsed or refused with an
// ApiError (a 4xx); nothing else may escape, nothing may crash or recurse without bound.
#include <cstddef>
#include <cstdint>
#include <string>

#include "server/openai.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    slm::server::parse_completion_request(body, (data[0] & 1) != 0);
  } catch (const slm::server::ApiError& e) {
    if (e.status < 400 || e.status >= 500) __builtin_trap();
  }
  return 0;
}

// libFuzzer target for the Jinja engine: the input up to the first NUL is a template, the
// rest a JSON message list (or a fixed one); rendering returns text or throws slm::Error.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

#include "slm/chat.h"
#include "slm/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const char* p = reinterpret_cast<const char*>(data);
  const char* nul = static_cast<const char*>(std::memchr(p, 0, size));
  const std::string source(p, nul ? size_t(nul - p) : size);
  nlohmann::ordered_json messages = nlohmann::ordered_json::parse(R"([{"role":"system","content":"s"},{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}])");
  if (nul) {
    auto j = nlohmann::ordered_json::parse(std::string(nul + 1, p + size), nullptr, false);
    if (j.is_array()) messages = j;
  }
  try {
    slm::ChatTemplate t(source);
    slm::ChatTemplateOptions opt;
    opt.add_generation_prompt = true;
    opt.bos_token = "<s>";
    t.render(messages, opt);
  } catch (const slm::Error&) {
  }
  return 0;
}

// libFuzzer target for the grammar engine. The first byte picks the input kind: even — a
// GBNF grammar up to the first NUL, then bytes fed to its matcher; odd — a JSON Schema
// (text) compiled to GBNF, which must then parse. Errors are slm::Error; nothing else may
// escape, crash or hang.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "grammar/grammar.h"
#include "slm/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool schema = data[0] & 1;
  const char* p = reinterpret_cast<const char*>(data + 1);
  size_t n = size - 1;
  try {
    std::string gbnf;
    std::string_view rest;
    if (schema) {
      auto j = nlohmann::ordered_json::parse(std::string(p, n), nullptr, false);
      if (j.is_discarded()) return 0;
      gbnf = slm::grammar::json_schema_to_gbnf(j);
    } else {
      const char* nul = static_cast<const char*>(std::memchr(p, 0, n));
      gbnf.assign(p, nul ? size_t(nul - p) : n);
      if (nul) rest = std::string_view(nul + 1, n - size_t(nul - p) - 1);
    }
    auto g = std::make_shared<const slm::grammar::Grammar>(slm::grammar::parse_gbnf(gbnf));
    slm::grammar::Matcher m(g);
    for (char c : rest)
      if (!m.advance_byte(static_cast<uint8_t>(c))) break;
    (void)m.accepting();
  } catch (const slm::Error&) {
  }
  return 0;
}

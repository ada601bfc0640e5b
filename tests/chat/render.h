// Test helper: render a template source with optional variables.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "slm/chat.h"

namespace slm::test {

inline std::string render(const std::string& src,
                          const nlohmann::ordered_json& extra = nlohmann::ordered_json::object(),
                          const nlohmann::ordered_json& messages = nlohmann::ordered_json::array()) {
  ChatTemplateOptions opt;
  opt.bos_token = "<s>";
  opt.eos_token = "</s>";
  opt.extra = extra;
  return ChatTemplate(src).render(messages, opt);
}

inline nlohmann::ordered_json J(const char* text) { return nlohmann::ordered_json::parse(text); }

}  // namespace slm::test

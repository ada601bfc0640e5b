// A parser callback that refuses JSON nested deeper than any checkpoint file needs, before
// the value is built: the code that walks config.json, tokenizer.json or a safetensors header
// afterwards (dumps in messages, recursive pre-tokenizer steps) then never recurses deeply.
#pragma once
#include <nlohmann/json.hpp>

namespace slm::convert {

constexpr int kMaxJsonDepth = 64;

inline nlohmann::json::parser_callback_t json_depth_guard() {
  return [](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
    if (depth > kMaxJsonDepth)
      throw nlohmann::json::out_of_range::create(406, "nested deeper than 64 levels", nullptr);
    return true;
  };
}

}  // namespace slm::convert

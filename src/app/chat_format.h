// ChatFormatter: a conversation → the model's prompt text (its own chat template, or ChatML
// when the file has none) → token ids, with specials parsed only where the template wrote
// them: text that came from a message is never turned into control tokens.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "slm/chat.h"

namespace slm {

class GgufFile;
class Tokenizer;

class ChatFormatter {
 public:
  // Template from template_path when given, else tokenizer.chat_template, else ChatML
  // (*warning then says so, one line).
  ChatFormatter(const GgufFile& file, const Tokenizer& tok, const std::string& template_path,
                std::string* warning);

  // messages: [{"role","content"},...]. The rendered text (exactly as the template gives it).
  std::string render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                     const nlohmann::ordered_json& extra = nlohmann::ordered_json::object()) const;
  // Rendered and tokenized: BOS added when the tokenizer wants it and the text does not
  // already begin with it.
  std::vector<int32_t> encode(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                              const nlohmann::ordered_json& extra = nlohmann::ordered_json::object()) const;

  const std::string& source() const { return source_; }
  bool is_fallback() const { return fallback_; }

 private:
  const Tokenizer& tok_;
  std::string source_;
  bool fallback_ = false;
  std::string bos_text_, eos_text_;
  std::vector<std::string> control_texts_;
  std::unique_ptr<ChatTemplate> tmpl_;
};

// ChatML, the fallback for models without a template.
extern const char* const kChatMlTemplate;

}  // namespace slm

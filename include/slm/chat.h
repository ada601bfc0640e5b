// ChatTemplate: renders a conversation with a model's own Jinja chat template
// (tokenizer.chat_template), the way Hugging Face's Python renderer does.
#pragma once
#include <ctime>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace slm {

struct ChatTemplateOptions {
  bool add_generation_prompt = false;
  std::string bos_token;
  std::string eos_token;
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();  // tools, documents, ...
  // Local time strftime_now() reports; unset = the clock when render() runs.
  std::optional<std::tm> now;
};

class ChatTemplate {
 public:
  // Parses the template source; throws slm::Error with line/column on a syntax error.
  explicit ChatTemplate(const std::string& source);
  ~ChatTemplate();
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;
  // messages: JSON array of {"role","content",...}. Throws slm::Error for raise_exception()
  // and for exceeded limits (steps, recursion, output size).
  std::string render(const nlohmann::ordered_json& messages, const ChatTemplateOptions& opt) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace slm

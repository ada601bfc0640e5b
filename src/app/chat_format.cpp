#include "app/chat_format.h"

#include <ctime>
#include <filesystem>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "gguf/gguf.h"
#include "slm/error.h"
#include "slm/tokenizer.h"

namespace slm {

const char* const kChatMlTemplate =
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

namespace {

std::string read_text(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error(path + ": is a directory, not a chat template file");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot open chat template");
  std::stringstream ss;
  ss << f.rdbuf();
  if (f.bad()) throw Error(path + ": cannot read chat template");
  if (ss.str().find_first_not_of(" \t\r\n") == std::string::npos) throw Error(path + ": the chat template is empty");
  return ss.str();
}

std::string token_text_or_empty(const Tokenizer& tok, int32_t id) {
  if (id < 0 || id >= tok.n_vocab()) return "";
  return tok.token_text(id);
}

// Every string a message carries as its content (plain or as text parts).
void collect_contents(const nlohmann::ordered_json& messages, std::vector<std::string>* out) {
  for (const auto& m : messages) {
    if (!m.is_object() || !m.contains("content")) continue;
    const auto& c = m["content"];
    if (c.is_string()) {
      out->push_back(c.get<std::string>());
    } else if (c.is_array()) {
      for (const auto& p : c)
        if (p.is_object() && p.contains("text") && p["text"].is_string()) out->push_back(p["text"].get<std::string>());
    }
  }
}

}  // namespace

ChatFormatter::ChatFormatter(const GgufFile& file, const Tokenizer& tok, const std::string& template_path,
                             std::string* warning)
    : tok_(tok) {
  if (!template_path.empty()) {
    source_ = read_text(template_path);
  } else if (file.has("tokenizer.chat_template")) {
    source_ = file.get_string("tokenizer.chat_template");
  } else {
    source_ = kChatMlTemplate;
    fallback_ = true;
    if (warning) *warning = file.path() + " has no chat template (tokenizer.chat_template); using ChatML";
  }
  // Control tokens (type 3 in tokenizer.ggml.token_type) are what parse_special recognises.
  // The tokenizer's view, which also counts end-of-turn texts the file types otherwise.
  for (int32_t id = 0; id < tok.n_vocab(); ++id)
    if (tok.is_control(id) && !tok.token_text(id).empty()) control_texts_.push_back(tok.token_text(id));
  bos_text_ = token_text_or_empty(tok, tok.bos());
  eos_text_ = token_text_or_empty(tok, tok.eos());
  tmpl_ = std::make_unique<ChatTemplate>(source_);
}

std::string ChatFormatter::render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                                  const nlohmann::ordered_json& extra) const {
  ChatTemplateOptions opt;
  opt.add_generation_prompt = add_generation_prompt;
  opt.bos_token = bos_text_;
  opt.eos_token = eos_text_;
  opt.extra = extra.is_null() ? nlohmann::ordered_json::object() : extra;
  // What llama-server passes besides Hugging Face's variables: today's date for Llama 3.x
  // ("26 Jul 2024"; strftime_now gives the rest).
  if (opt.extra.is_object() && !opt.extra.contains("date_string")) {
    std::time_t t = std::time(nullptr);
    std::tm now{};
    localtime_r(&t, &now);
    char buf[32];
    std::strftime(buf, sizeof buf, "%d %b %Y", &now);
    opt.extra["date_string"] = buf;
  }
  return tmpl_->render(messages, opt);
}

std::vector<int32_t> ChatFormatter::encode(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                                           const nlohmann::ordered_json& extra) const {
  std::string text = render(messages, add_generation_prompt, extra);
  // A template that drops the conversation would have the model answer from nothing.
  if (text.find_first_not_of(" \t\r\n") == std::string::npos)
    throw Error("the chat template rendered nothing for this conversation");
  for (auto it = messages.rbegin(); it != messages.rend(); ++it) {
    if (!it->is_object() || it->value("role", "") != "user" || !it->contains("content") || !(*it)["content"].is_string())
      continue;
    const std::string& content = (*it)["content"].get_ref<const std::string&>();
    const size_t b = content.find_first_not_of(" \t\r\n"), e = content.find_last_not_of(" \t\r\n");
    if (b != std::string::npos && text.find(content.substr(b, e - b + 1)) == std::string::npos)
      throw Error("the chat template leaves out the user's last message; check --chat-template");
    break;
  }

  // Spans of the rendered text that are message text containing a control token's text:
  // those must be tokenized as plain text. Usually there are none and the whole text is
  // tokenized in one piece with specials parsed.
  std::vector<std::string> contents;
  collect_contents(messages, &contents);
  std::vector<std::pair<size_t, size_t>> plain;  // [begin, end) in text
  size_t search_from = 0;
  for (const std::string& c : contents) {
    if (c.empty()) continue;
    bool has_special = false;
    for (const std::string& t : control_texts_)
      if (c.find(t) != std::string::npos) {
        has_special = true;
        break;
      }
    if (!has_special) continue;
    size_t at = text.find(c, search_from);
    if (at == std::string::npos) at = text.find(c);
    if (at == std::string::npos) continue;  // the template transformed it; tokenized below as a whole
    plain.emplace_back(at, at + c.size());
    search_from = at + c.size();
  }

  std::vector<int32_t> ids;
  bool want_bos = tok_.add_bos() && tok_.bos() >= 0 && !(text.size() >= bos_text_.size() && !bos_text_.empty() &&
                                                        text.compare(0, bos_text_.size(), bos_text_) == 0);
  if (want_bos) ids.push_back(tok_.bos());
  auto append = [&](std::string_view piece, bool parse_special) {
    if (piece.empty()) return;
    std::vector<int32_t> part = tok_.encode(piece, /*add_special=*/false, parse_special);
    ids.insert(ids.end(), part.begin(), part.end());
  };
  std::sort(plain.begin(), plain.end());
  size_t pos = 0;
  for (auto [b, e] : plain) {
    if (b < pos) continue;
    append(std::string_view(text).substr(pos, b - pos), true);
    append(std::string_view(text).substr(b, e - b), false);
    pos = e;
  }
  append(std::string_view(text).substr(pos), true);
  return ids;
}

}  // namespace slm

#include "train/data.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app/chat_format.h"
#include "slm/error.h"
#include "slm/tokenizer.h"

namespace slm::train {

namespace {

using ojson = nlohmann::ordered_json;

Example text_example(const Tokenizer& tok, const std::string& text) {
  Example e;
  e.tokens = tok.encode(text, true, false);
  if (tok.eos() >= 0) e.tokens.push_back(tok.eos());
  e.weight.assign(e.tokens.size(), 1.0f);
  return e;
}

Example prompt_completion_example(const Tokenizer& tok, const std::string& prompt, const std::string& completion) {
  Example e;
  e.tokens = tok.encode(prompt, true, false);
  const size_t n_prompt = e.tokens.size();
  // The completion continues the prompt's text: encoded after it, without a second BOS.
  std::vector<int32_t> all = tok.encode(prompt + completion, true, false);
  size_t common = 0;
  while (common < n_prompt && common < all.size() && all[common] == e.tokens[common]) ++common;
  e.tokens = all;
  if (tok.eos() >= 0) e.tokens.push_back(tok.eos());
  // weight[t] is the loss of predicting token t+1: completion tokens are those from `common`.
  e.weight.assign(e.tokens.size(), 0.0f);
  for (size_t t = common; t < e.tokens.size(); ++t)
    if (t >= 1) e.weight[t - 1] = 1.0f;
  return e;
}

// The assistant turns' tokens are found by rendering: the conversation up to turn i with the
// generation prompt, and up to and including it — the tokens between are the turn's.
Example messages_example(const ChatFormatter& chat, const ojson& messages, const std::string& where) {
  Example e;
  e.tokens = chat.encode(messages, false);
  e.weight.assign(e.tokens.size(), 0.0f);
  bool any = false;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i].value("role", "") != "assistant") continue;
    ojson before = ojson::array(), through = ojson::array();
    for (size_t k = 0; k < i; ++k) before.push_back(messages[k]);
    for (size_t k = 0; k <= i; ++k) through.push_back(messages[k]);
    const std::vector<int32_t> a = chat.encode(before, true), b = chat.encode(through, false);
    auto is_prefix = [&](const std::vector<int32_t>& p) {
      return p.size() <= e.tokens.size() && std::equal(p.begin(), p.end(), e.tokens.begin());
    };
    if (!is_prefix(a) || !is_prefix(b) || b.size() < a.size())
      throw Error(where + ": the chat template does not render this conversation as a sequence of turns "
                          "(a prefix renders differently); cannot tell the assistant's tokens");
    for (size_t t = a.size(); t < b.size(); ++t) {
      e.weight[t - 1] = 1.0f;
      any = true;
    }
  }
  if (!any) throw Error(where + ": no assistant turn to learn from");
  return e;
}

std::string kind_of(const ojson& j) {
  if (j.contains("messages")) return "messages";
  if (j.contains("prompt") || j.contains("completion")) return "prompt";
  if (j.contains("text")) return "text";
  return "";
}

}  // namespace

const char* data_format_name(DataFormat f) {
  switch (f) {
    case DataFormat::Text: return "text";
    case DataFormat::PromptCompletion: return "prompt/completion";
    case DataFormat::Messages: return "messages";
  }
  return "?";
}

uint64_t fnv1a(const void* data, size_t n, uint64_t h) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

Dataset load_dataset(const std::string& path, const Tokenizer& tok, const ChatFormatter* chat) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the data file");
  Dataset d;
  std::string line, kind;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    d.hash = fnv1a(line.data(), line.size(), d.hash);
    d.hash = fnv1a("\n", 1, d.hash);
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(line_no);
    if (line.size() > (64u << 20)) throw Error(where + ": line longer than 64 MiB");
    ojson j;
    try {
      j = ojson::parse(line);
    } catch (const ojson::exception& e) {
      throw Error(where + ": not valid JSON (" + std::string(e.what()) + ")");
    }
    if (!j.is_object()) throw Error(where + ": each line must be a JSON object");
    const std::string k = kind_of(j);
    if (k.empty()) throw Error(where + ": expected {\"text\"}, {\"prompt\", \"completion\"} or {\"messages\"}");
    if (kind.empty()) {
      kind = k;
      d.format = k == "text" ? DataFormat::Text : k == "prompt" ? DataFormat::PromptCompletion : DataFormat::Messages;
    } else if (k != kind) {
      throw Error(where + ": a " + k + " example in a file of " + kind + " examples (one format per file)");
    }
    for (auto it = j.begin(); it != j.end(); ++it) {
      static const char* const known[] = {"text", "prompt", "completion", "messages"};
      if (std::find(std::begin(known), std::end(known), it.key()) == std::end(known))
        throw Error(where + ": unknown field '" + it.key() + "'");
    }
    auto str = [&](const char* key) {
      if (!j.contains(key) || !j[key].is_string()) throw Error(where + ": '" + key + "' must be a string");
      return j[key].get<std::string>();
    };
    Example e;
    if (k == "text") {
      e = text_example(tok, str("text"));
    } else if (k == "prompt") {
      e = prompt_completion_example(tok, str("prompt"), str("completion"));
    } else {
      if (!chat) throw Error(where + ": messages need a chat template");
      const ojson& m = j["messages"];
      if (!m.is_array() || m.empty()) throw Error(where + ": 'messages' must be a non-empty array");
      for (size_t i = 0; i < m.size(); ++i)
        if (!m[i].is_object() || !m[i].contains("role") || !m[i]["role"].is_string() || !m[i].contains("content") ||
            !m[i]["content"].is_string())
          throw Error(where + ": messages[" + std::to_string(i) + "] must have a string 'role' and 'content'");
      try {
        e = messages_example(*chat, m, where);
      } catch (const Error& err) {
        const std::string msg = err.what();
        throw Error(msg.rfind(where, 0) == 0 ? msg : where + ": " + msg);
      }
    }
    if (e.tokens.size() < 2) throw Error(where + ": the example is shorter than two tokens");
    d.examples.push_back(std::move(e));
  }
  d.n_lines = line_no;
  if (d.examples.empty()) throw Error(path + ": no examples");
  return d;
}

std::vector<Sequence> make_rows(const std::vector<Example>& examples, int n_ctx, bool pack) {
  if (n_ctx < 2) throw Error("--ctx must be at least 2");
  std::vector<Sequence> rows;
  Sequence cur;
  int segment = 0;
  auto flush = [&] {
    if (!cur.tokens.empty()) {
      cur.weight.back() = 0.0f;  // nothing follows the row's last token
      rows.push_back(std::move(cur));
    }
    cur = Sequence();
    segment = 0;
  };
  for (const Example& e : examples) {
    // Pieces of at most n_ctx tokens; each piece's last prediction is dropped at the cut.
    for (size_t start = 0; start < e.tokens.size(); start += size_t(n_ctx)) {
      const size_t len = std::min(e.tokens.size() - start, size_t(n_ctx));
      if (len < 2) break;
      if (!pack || cur.tokens.size() + len > size_t(n_ctx)) flush();
      for (size_t i = 0; i < len; ++i) {
        cur.tokens.push_back(e.tokens[start + i]);
        cur.weight.push_back(i + 1 < len ? e.weight[start + i] : 0.0f);
        cur.pos.push_back(int32_t(i));
        cur.segment.push_back(segment);
      }
      ++segment;
    }
  }
  flush();
  return rows;
}

}  // namespace slm::train

// slm template: render a conversation with a chat template (from a GGUF file or a .jinja
// file) exactly as Hugging Face's apply_chat_template would, and print only that text.
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "gguf/gguf.h"
#include "slm/chat.h"
#include "slm/error.h"

namespace slm::cli {
namespace {

using json = nlohmann::ordered_json;

struct TemplateOptions {
  std::string model;
  std::string template_file;
  std::string messages_file;
  std::string context_file;
  std::string bos, eos;
  bool bos_given = false, eos_given = false;
  bool add_generation_prompt = false;
};

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot open");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

json read_json(const std::string& path) {
  try {
    return json::parse(slurp(path));
  } catch (const json::exception& e) {
    throw Error(path + ": not valid JSON (" + e.what() + ")");
  }
}

// Text of the token whose id the given key names, or "" when the model has none.
std::string special_token_text(const GgufFile& g, const std::string& id_key) {
  if (!g.has(id_key) || !g.has("tokenizer.ggml.tokens")) return "";
  int64_t id = g.get_int(id_key);
  const auto& toks = g.get_array("tokenizer.ggml.tokens");
  if (id < 0 || size_t(id) >= toks.size() || toks[size_t(id)].type != GgufType::STRING)
    throw Error(g.path() + ": " + id_key + " = " + std::to_string(id) +
                " is not a token of tokenizer.ggml.tokens (" + std::to_string(toks.size()) + " tokens)");
  return toks[size_t(id)].str;
}

int run_template(const TemplateOptions& o) {
  std::string source;
  ChatTemplateOptions opt;
  if (!o.model.empty()) {
    auto g = GgufFile::open(o.model);
    if (!g->has("tokenizer.chat_template")) throw Error(o.model + ": no tokenizer.chat_template key");
    source = g->get_string("tokenizer.chat_template");
    opt.bos_token = special_token_text(*g, "tokenizer.ggml.bos_token_id");
    opt.eos_token = special_token_text(*g, "tokenizer.ggml.eos_token_id");
  } else {
    source = slurp(o.template_file);
  }
  if (o.bos_given) opt.bos_token = o.bos;
  if (o.eos_given) opt.eos_token = o.eos;
  opt.add_generation_prompt = o.add_generation_prompt;
  json messages = read_json(o.messages_file);
  if (!messages.is_array()) throw Error(o.messages_file + ": messages must be a JSON array");
  if (!o.context_file.empty()) {
    opt.extra = read_json(o.context_file);
    if (!opt.extra.is_object()) throw Error(o.context_file + ": context must be a JSON object");
  }
  ChatTemplate tpl(source);
  std::string text = tpl.render(messages, opt);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
  return 0;
}

}  // namespace

Action add_template(CLI::App& app) {
  auto o = std::make_shared<TemplateOptions>();
  CLI::App* sub = app.add_subcommand("template", "Render a conversation with a model's chat template");
  auto* m = sub->add_option("-m,--model", o->model, "GGUF file whose tokenizer.chat_template to use");
  auto* t = sub->add_option("--chat-template", o->template_file, "Jinja template file to use");
  m->excludes(t);
  t->excludes(m);
  sub->add_option("--messages", o->messages_file, "JSON file: array of {role, content, ...}")->required();
  sub->add_flag("--add-generation-prompt", o->add_generation_prompt, "End with the assistant turn's opening");
  sub->add_option("--bos", o->bos, "bos_token text (default: the model's BOS token)");
  sub->add_option("--eos", o->eos, "eos_token text (default: the model's EOS token)");
  sub->add_option("--context", o->context_file, "JSON file: object of further template variables (tools, ...)");
  return [o, sub] {
    if (o->model.empty() && o->template_file.empty())
      throw Error("template: give -m MODEL.gguf or --chat-template FILE");
    o->bos_given = sub->count("--bos") > 0;
    o->eos_given = sub->count("--eos") > 0;
    return run_template(*o);
  };
}

}  // namespace slm::cli

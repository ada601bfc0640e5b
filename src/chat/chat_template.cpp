// ChatTemplate: parse once, render per conversation with the variables Hugging Face's
// apply_chat_template provides.
#include <ctime>

#include "chat/interp.h"
#include "chat/parser.h"
#include "slm/chat.h"
#include "slm/error.h"

namespace slm {

struct ChatTemplate::Impl {
  jinja::Template tpl;
};

ChatTemplate::ChatTemplate(const std::string& source) : impl_(std::make_unique<Impl>()) {
  impl_->tpl = jinja::parse(source);
}
ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

std::string ChatTemplate::render(const nlohmann::ordered_json& messages,
                                 const ChatTemplateOptions& opt) const {
  using namespace jinja;
  std::tm now{};
  if (opt.now) {
    now = *opt.now;
  } else {
    std::time_t t = std::time(nullptr);
    localtime_r(&t, &now);
  }
  auto globals = std::make_shared<Frame>();
  add_globals(*globals);
  globals->vars["strftime_now"] = Value::function("strftime_now", [now](CallArgs& a) {
    std::string fmt = a.pos.empty() ? std::string() : arg_str(a.pos[0], "strftime_now");
    return Value::string(strftime_py(fmt, now));
  });
  auto vars = std::make_shared<Frame>();
  vars->parent = globals;
  vars->vars["messages"] = from_json(messages);
  vars->vars["add_generation_prompt"] = Value::boolean(opt.add_generation_prompt);
  vars->vars["bos_token"] = Value::string(opt.bos_token);
  vars->vars["eos_token"] = Value::string(opt.eos_token);
  vars->vars["tools"] = Value::none();
  vars->vars["documents"] = Value::none();
  if (!opt.extra.is_null()) {
    if (!opt.extra.is_object()) throw Error("chat template: extra variables must be a JSON object");
    for (auto it = opt.extra.begin(); it != opt.extra.end(); ++it)
      vars->vars[it.key()] = from_json(it.value());
  }
  Interp in(Limits{}, now);
  return in.render(impl_->tpl, vars);
}

}  // namespace slm

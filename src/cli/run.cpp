// slm run: generate text from a prompt, streaming it to stdout as it is produced; timings
// and memory on stderr at the end.
#include <fmt/format.h>

#include <cstdio>
#include <random>
#include <thread>

#include "app/chat_format.h"
#include "app/energy.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "gguf/gguf.h"
#include "kernels/thread_pool.h"
#include "model/config.h"
#include "quant/types.h"
#include "slm/error.h"
#include "slm/model.h"
#include "slm/sampler.h"
#include "slm/session.h"
#include "slm/tokenizer.h"

namespace slm::cli {
namespace {

struct RunOptions {
  std::string model;
  std::string prompt;
  std::string prompt_file;     // -f: the prompt from a file ("-": stdin)
  int n_predict = -1;
  int threads = 0;
  int ctx = 0;
  KvTypeNames kv_type;
  std::vector<std::string> stops;
  SamplerParams sampling;
  int64_t seed = -1;
  bool chat = false;           // -p is a user turn, formatted with the model's chat template
  std::string system;          // with --chat: a system message first
  std::string chat_template;   // with --chat: a template file instead of the model's
  LoraOptions lora;
  std::string grammar_file;      // --grammar: output follows this GBNF grammar
  std::string json_schema_file;  // --json-schema: output is JSON valid against this schema
  bool json = false;             // --json: output is a JSON object
  ContextShiftOptions shift;
};

// The grammar the output must follow, from --grammar / --json-schema / --json ("" for none).
std::string output_grammar(const RunOptions& o) {
  const int n = !o.grammar_file.empty() + !o.json_schema_file.empty() + o.json;
  if (n > 1) throw Error("give one of --grammar, --json-schema and --json");
  if (!o.grammar_file.empty()) return read_text_input(o.grammar_file, "the grammar");
  if (!o.json_schema_file.empty()) return json_schema_grammar(read_text_input(o.json_schema_file, "the JSON schema"));
  if (o.json) return json_object_grammar();
  return "";
}

double mib(size_t b) { return b / (1024.0 * 1024.0); }

int run(const RunOptions& o) {
  if (o.n_predict < -1) throw Error("-n must be >= -1 (-1: until end of generation), got " + std::to_string(o.n_predict));
  if (o.ctx < 0) throw Error("--ctx must be positive (0: the default), got " + std::to_string(o.ctx));
  SamplerParams sp = o.sampling;
  sp.seed = o.seed >= 0 ? static_cast<uint64_t>(o.seed) : std::random_device{}();
  sp.validate();

  // The grammar is compiled before the model loads, so a bad one fails at once.
  const std::string gbnf = output_grammar(o);
  if (!gbnf.empty()) check_grammar(gbnf);

  std::string prompt_text = o.prompt;
  if (!o.prompt_file.empty() || o.prompt.empty()) {
    if (!o.prompt.empty()) throw Error("give the prompt with -p or -f, not both");
    prompt_text = read_text_input(o.prompt_file.empty() ? "-" : o.prompt_file, "the prompt");
  }
  std::unique_ptr<Model> model = Model::load(o.model);
  std::unique_ptr<Tokenizer> tok = Tokenizer::from_gguf(model->file());
  const int threads = resolve_threads(o.threads);
  ThreadPool pool(threads);
  LoadedLoras adapters = load_loras(o.lora, *model, "slm");
  Session session(*model, pool, o.ctx, o.kv_type.key(), o.kv_type.value());
  session.set_lora(adapters.get());
  warn_if_beyond_training(*model, session.n_ctx(), "slm");
  std::fprintf(stderr, "slm: %s\nslm: weights %.2f MiB mapped, KV cache %.2f MiB (%s, context %d), %d threads, seed %llu\n",
               model->config().describe().c_str(), mib(model->weight_bytes()), mib(session.cache().bytes()),
               o.kv_type.describe().c_str(), session.n_ctx(), threads, static_cast<unsigned long long>(sp.seed));

  std::vector<int32_t> prompt;
  if (o.chat) {
    std::string warning;
    ChatFormatter fmt(model->file(), *tok, o.chat_template, &warning);
    if (!warning.empty()) std::fprintf(stderr, "slm: warning: %s\n", warning.c_str());
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();
    if (!o.system.empty()) messages.push_back({{"role", "system"}, {"content", o.system}});
    messages.push_back({{"role", "user"}, {"content", prompt_text}});
    prompt = fmt.encode(messages, /*add_generation_prompt=*/true);
  } else {
    if (!o.system.empty() || !o.chat_template.empty()) throw Error("--system and --chat-template need --chat");
    prompt = tok->encode(prompt_text, true, false);
  }
  if (prompt.empty()) throw Error("the prompt is empty (and the model adds no BOS token)");
  if (static_cast<int>(prompt.size()) > session.n_ctx())
    throw Error("prompt of " + std::to_string(prompt.size()) + " tokens is longer than the context of " +
                std::to_string(session.n_ctx()) + " tokens");

  Sampler sampler(sp);
  if (!gbnf.empty()) sampler.set_filter(grammar_filter(grammar_vocabulary(*tok), gbnf));
  EnergyMeter energy;
  GenerateParams gp;
  gp.n_predict = o.n_predict;
  gp.stops = o.stops;
  gp.context_shift = o.shift.enabled;
  gp.n_keep = o.shift.n_keep(static_cast<int>(prompt.size()), !prompt.empty() && prompt[0] == tok->bos());
  GenerateResult r;
  if (o.n_predict == 0) {
    r.n_prompt = static_cast<int>(prompt.size());  // defined: evaluate nothing, print nothing
  } else {
    r = generate(session, sampler, *tok, prompt, gp, [](const std::string& s) {
      std::fwrite(s.data(), 1, s.size(), stdout);
      std::fflush(stdout);
    });
  }
  // Constrained output is exactly the text the grammar accepts: no newline added.
  if (!r.text.empty() && gbnf.empty()) std::fputc('\n', stdout);
  std::fflush(stdout);
  auto rate = [](int n, double s) { return s > 0 ? n / s : 0.0; };
  std::fprintf(stderr,
               "slm: prompt %d tokens in %.1f ms (%.1f tokens/s), generation %d tokens in %.1f ms (%.1f tokens/s), "
               "stop: %s%s\nslm: memory: weights %.2f MiB mapped, KV cache %.2f MiB\n",
               r.n_prompt, r.prompt_seconds * 1e3, rate(r.n_prompt, r.prompt_seconds), r.n_generated,
               r.generate_seconds * 1e3, rate(r.n_generated, r.generate_seconds),
               r.stop_reason.empty() ? "none" : r.stop_reason.c_str(),
               r.n_shifts ? (", context shifted " + std::to_string(r.n_shifts) + "x").c_str() : "", mib(model->weight_bytes()),
               mib(session.cache().bytes()));
  std::fprintf(stderr, "slm: energy: %s\n", energy.describe(double(r.n_prompt + r.n_generated), 0.30).c_str());
  return 0;
}

}  // namespace

Action add_run(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* sub = app.add_subcommand("run", "Generate text from a prompt");
  sub->add_option("-m,--model", o->model, "GGUF model file")->required();
  sub->add_option("-p,--prompt", o->prompt, "Prompt text (without -p and -f: read from standard input)");
  sub->add_option("-f,--file", o->prompt_file, "Read the prompt from this file ('-': standard input)");
  sub->add_option("-n,--n-predict", o->n_predict, "Tokens to generate (-1: until end of generation)")->capture_default_str();
  add_sampling_options(sub, o->sampling);
  sub->add_option("--seed", o->seed, "Random seed (default: random)");
  add_threads_option(sub, o->threads);
  add_ctx_option(sub, o->ctx);
  add_kv_type_option(sub, o->kv_type);
  add_context_shift_options(sub, o->shift);
  sub->add_option("--stop", o->stops, "Stop generating at this text (repeatable)");
  sub->add_flag("--chat", o->chat, "Send the prompt as a user turn through the model's chat template");
  sub->add_option("--system", o->system, "With --chat: a system message before the prompt");
  sub->add_option("--chat-template", o->chat_template, "With --chat: a Jinja template file instead of the model's");
  add_lora_options(sub, o->lora);
  sub->add_option("--grammar,--grammar-file", o->grammar_file,
                  "Constrain the output to this GBNF grammar file (llama.cpp's format, rule 'root')");
  sub->add_option("--json-schema,--json-schema-file", o->json_schema_file,
                  "Constrain the output to JSON valid against this JSON Schema file");
  sub->add_flag("--json", o->json, "Constrain the output to one JSON object");
  return [o] { return run(*o); };
}

}  // namespace slm::cli

// slm serve: an OpenAI-compatible HTTP server with continuous batching.
#include "cli/commands.h"
#include "cli/options.h"
#include "server/http.h"

namespace slm::cli {

Action add_serve(CLI::App& app) {
  auto* sub = app.add_subcommand("serve", "Serve a model over the OpenAI HTTP API (chat/completions, completions)");
  auto o = std::make_shared<server::ServeOptions>();
  sub->add_option("-m,--model", o->model_path, "GGUF model file")->required();
  sub->add_option("--host", o->host, "Address to listen on (loopback by default)")->capture_default_str();
  sub->add_option("--port", o->port, "Port (0 picks a free one)")->capture_default_str()->check(CLI::Range(0, 65535));
  sub->add_option("--parallel,-P", o->n_parallel, "Slots: sequences generated at once (continuous batching)")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  add_ctx_option(sub, o->n_ctx, "Context per slot (default: min(model context, 4096))");
  add_threads_option(sub, o->n_threads);
  sub->add_option("--api-key", o->api_key, "Require 'Authorization: Bearer KEY' on /v1/*");
  sub->add_option("--max-body", o->max_body, "Largest request body in bytes (larger: HTTP 413)")->capture_default_str();
  sub->add_option("--timeout", o->timeout_s, "Seconds a request may take (read, write, generation)")
      ->capture_default_str()
      ->check(CLI::Range(1, 86400));
  sub->add_option("--queue", o->max_queue, "Requests that may wait for a slot (more: HTTP 429)")
      ->capture_default_str()
      ->check(CLI::Range(0, 100000));
  auto kv = std::make_shared<KvTypeNames>();
  add_kv_type_option(sub, *kv, "KV cache element type: f32, f16 (half the memory), q8_0 or q4_0");
  sub->add_flag("--context-shift", o->context_shift,
                "A slot whose context fills drops the oldest half (after --keep) and goes on, instead of finishing");
  sub->add_option("--keep", o->n_keep, "With --context-shift: prompt tokens always kept, after BOS (-1: all)")
      ->check(CLI::Range(-1, 1 << 24))
      ->capture_default_str();
  sub->add_option("--chat-template", o->chat_template_path, "Jinja chat template file (overrides the model's)");
  sub->add_option("--alias,-a", o->alias, "Model name reported by /v1/models and in responses (default: the file name)");
  sub->add_flag("--quiet,-q", o->quiet, "No access log (one line per request on stderr)");
  auto lora = std::make_shared<LoraOptions>();
  add_lora_options(sub, *lora);
  return [o, lora, kv] {
    o->kv_type_k = kv->key();
    o->kv_type_v = kv->value();
    o->kv_type = kv->describe();
    for (const std::string& s : lora->specs) o->lora.push_back(parse_lora_spec(s, false));
    for (const std::string& s : lora->scaled_specs) o->lora.push_back(parse_lora_spec(s, true));
    return server::serve(*o);
  };
}

}  // namespace slm::cli

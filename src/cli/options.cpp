#include "cli/options.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>

#include "model/config.h"
#include "slm/error.h"
#include "slm/model.h"

namespace slm::cli {

CLI::Option* add_threads_option(CLI::App* sub, int& threads, const char* help) {
  return sub->add_option("-t,--threads", threads, help)->check(CLI::Range(0, kMaxThreads))->type_name("N");
}

int resolve_threads(int threads) {
  return threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

CLI::Option* add_ctx_option(CLI::App* sub, int& ctx, const char* help) {
  return sub->add_option("-c,--ctx,--ctx-size", ctx, help)->check(CLI::Range(0, 1 << 24))->type_name("N");
}

void add_kv_type_option(CLI::App* sub, KvTypeNames& kv, const char* help) {
  const auto types = CLI::IsMember({"f32", "f16", "q8_0", "q4_0"}, CLI::ignore_case);
  sub->add_option("--kv-type", kv.both, help)->check(types)->capture_default_str();
  sub->add_option("--cache-type-k", kv.k, "KV cache type for keys only (overrides --kv-type)")->check(types);
  sub->add_option("--cache-type-v", kv.v, "KV cache type for values only (overrides --kv-type)")->check(types);
}

GgmlType KvTypeNames::key() const { return parse_type_name(k.empty() ? both : k); }
GgmlType KvTypeNames::value() const { return parse_type_name(v.empty() ? both : v); }
std::string KvTypeNames::describe() const {
  const std::string a = k.empty() ? both : k, b = v.empty() ? both : v;
  return a == b ? a : "K " + a + ", V " + b;
}

void add_context_shift_options(CLI::App* sub, ContextShiftOptions& o) {
  sub->add_flag("--context-shift", o.enabled,
                "When the context fills, drop the oldest half of it (after --keep) and go on, instead of stopping");
  sub->add_option("--keep", o.keep, "With --context-shift: tokens of the prompt always kept, after BOS (-1: all)")
      ->check(CLI::Range(-1, 1 << 24))
      ->capture_default_str();
}

int ContextShiftOptions::n_keep(int n_prompt, bool bos) const {
  if (keep < 0) return n_prompt;
  return std::min(n_prompt, keep + (bos ? 1 : 0));
}

std::string read_text_input(const std::string& path, const char* what) {
  std::string text;
  if (path == "-") {
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) text.append(buf, n);
    if (text.empty()) throw Error(std::string("no ") + what + ": give -p TEXT or -f FILE, or pipe text to standard input");
    return text;
  }
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error(path + ": is a directory, not a file with " + what);
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw Error(path + ": cannot read " + what + " (" + std::strerror(errno) + ")");
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  const bool failed = std::ferror(f);
  std::fclose(f);
  if (failed) throw Error(path + ": read error");
  if (text.empty()) throw Error(path + ": the file is empty (no " + what + ")");
  return text;
}

void warn_if_beyond_training(const Model& model, int n_ctx, const char* who) {
  const int trained = model.config().n_ctx_train;
  if (trained > 0 && n_ctx > trained)
    std::fprintf(stderr, "%s: warning: context %d is longer than the %d tokens the model was trained on; "
                 "expect worse text past that\n", who, n_ctx, trained);
}

void add_sampling_options(CLI::App* sub, SamplerParams& s) {
  sub->add_option("--temp", s.temp, "Temperature (0: greedy)")->capture_default_str();
  sub->add_option("--top-k", s.top_k, "Top-k (0: off)")->capture_default_str();
  sub->add_option("--top-p", s.top_p, "Top-p (1: off)")->capture_default_str();
  sub->add_option("--min-p", s.min_p, "Min-p (0: off)")->capture_default_str();
  sub->add_option("--repeat-penalty", s.repeat_penalty, "Repetition penalty (1: off)")->capture_default_str();
  sub->add_option("--repeat-last-n", s.repeat_last_n, "Tokens the penalties look back at")->capture_default_str();
  sub->add_option("--presence-penalty", s.presence_penalty, "Presence penalty")->capture_default_str();
  sub->add_option("--frequency-penalty", s.frequency_penalty, "Frequency penalty")->capture_default_str();
}

void add_lora_options(CLI::App* sub, LoraOptions& o) {
  sub->add_option("--lora", o.specs, "LoRA adapter FILE[:SCALE] (repeatable; scale 1 by default; adapters add up)")
      ->type_name("FILE[:SCALE]");
  sub->add_option("--lora-scaled", o.scaled_specs, "LoRA adapter with a user scale, FILE:SCALE (as llama.cpp)")
      ->type_name("FILE:SCALE");
}

std::pair<std::string, float> parse_lora_spec(const std::string& spec, bool scale_required) {
  const size_t colon = spec.rfind(':');
  if (colon != std::string::npos && colon + 1 < spec.size()) {
    const std::string tail = spec.substr(colon + 1);
    char* end = nullptr;
    const float scale = std::strtof(tail.c_str(), &end);
    if (end && *end == '\0') {
      if (!std::isfinite(scale)) throw Error("--lora " + spec + ": the scale must be a finite number");
      if (colon == 0) throw Error("--lora " + spec + ": no adapter file before the scale");
      return {spec.substr(0, colon), scale};
    }
  }
  if (scale_required) throw Error("--lora-scaled " + spec + ": expected FILE:SCALE (e.g. adapter.gguf:0.5)");
  if (spec.empty()) throw Error("--lora: no adapter file given");
  return {spec, 1.0f};
}

LoadedLoras load_loras(const LoraOptions& o, const Model& base, const char* who) {
  LoadedLoras out;
  std::vector<std::pair<std::string, float>> all;
  for (const std::string& s : o.specs) all.push_back(parse_lora_spec(s, false));
  for (const std::string& s : o.scaled_specs) all.push_back(parse_lora_spec(s, true));
  for (const auto& [path, scale] : all) {
    out.adapters.push_back(LoraAdapter::load(path, base));
    const LoraAdapter& a = *out.adapters.back();
    out.set.adapters.push_back({&a, scale});
    std::fprintf(stderr, "%s: adapter %s: scale %g, rank %d, alpha %g, %zu tensors, %.2f MiB, %.2f MFLOP per token\n",
                 who, path.c_str(), scale, a.max_rank(), a.alpha(), a.targets().size(), a.bytes() / 1048576.0,
                 2.0 * a.flops_per_token() / 1e6);
  }
  return out;
}

}  // namespace slm::cli

// slm bench -m FILE [-t N] [-p 512] [-n 128] [-r REPS] [--json]: end-to-end speed, measured
// the way llama-bench measures it so the two can be run side by side on the same file:
//   pp: one batch of p random tokens from an empty cache (prompt processing),
//   tg: n tokens one at a time from an empty cache (generation; no sampling, the forward
//       pass only).
// Each test is repeated REPS times and reported as mean ± sample standard deviation of
// tokens/s. A one-token warm-up first pages the mapped weights in. Also reported: the peak
// resident memory (getrusage) and the model's tensor bytes.
#include <fmt/format.h>
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "app/energy.h"
#include "cli/options.h"
#include "gguf/gguf.h"
#include "kernels/thread_pool.h"
#include "slm/error.h"
#include "slm/model.h"

namespace slm::cli {
namespace {

struct Options {
  std::string model;
  int threads = 0;
  int n_prompt = 512;
  int n_gen = 128;
  int reps = 5;
  std::string kv_type = "f16";
  bool json = false;
  double price_kwh = 0.30;
  LoraOptions lora;
};

struct Stat {
  double mean = 0, stddev = 0;
};

Stat stats(const std::vector<double>& v) {
  Stat s;
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  if (v.size() > 1) {
    double ss = 0;
    for (double x : v) ss += (x - s.mean) * (x - s.mean);
    s.stddev = std::sqrt(ss / static_cast<double>(v.size() - 1));
  }
  return s;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

uint64_t peak_rss_bytes() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<uint64_t>(ru.ru_maxrss) * 1024;  // Linux reports KiB
}

std::string human_size(double bytes) {
  return bytes >= (1 << 30) ? fmt::format("{:.2f} GiB", bytes / (1 << 30)) : fmt::format("{:.2f} MiB", bytes / (1 << 20));
}

int run_bench(const Options& o) {
  if (o.n_prompt < 0 || o.n_gen < 0 || (o.n_prompt == 0 && o.n_gen == 0))
    throw Error("bench: -p and -n must be >= 0 and not both 0");
  if (o.reps < 1) throw Error("bench: -r must be at least 1");
  const GgmlType kv = o.kv_type == "f32" ? GgmlType::F32
                      : o.kv_type == "f16" ? GgmlType::F16
                                           : throw Error("bench: --kv-type must be f32 or f16, got '" + o.kv_type + "'");
  const int threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::unique_ptr<Model> model = Model::load(o.model);
  ThreadPool pool(threads);
  LoadedLoras adapters = load_loras(o.lora, *model, "bench");
  const LoraSet* lora = adapters.get();

  uint64_t params = 0;
  for (const GgufTensor& t : model->file().tensors()) params += static_cast<uint64_t>(t.n_elements());
  const size_t bytes = model->weight_bytes();
  const int n_vocab = model->n_vocab();
  std::vector<float> logits(static_cast<size_t>(n_vocab));
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> tok(0, n_vocab - 1);
  auto random_tokens = [&](int n) {
    std::vector<int32_t> v(static_cast<size_t>(n));
    for (auto& t : v) t = tok(rng);
    return v;
  };

  {  // warm-up: one token touches every weight once
    KvCache cache(model->config(), 8, kv);
    auto t = random_tokens(1);
    model->forward(pool, cache, t.data(), 1, 0, logits.data(), false, lora);
  }

  EnergyMeter energy;
  std::vector<double> pp, tg;
  for (int r = 0; r < o.reps && o.n_prompt > 0; ++r) {
    KvCache cache(model->config(), o.n_prompt, kv);
    auto t = random_tokens(o.n_prompt);
    const auto t0 = std::chrono::steady_clock::now();
    model->forward(pool, cache, t.data(), o.n_prompt, 0, logits.data(), false, lora);
    pp.push_back(o.n_prompt / seconds_since(t0));
    if (!o.json) std::fprintf(stderr, "bench: pp%d rep %d: %.2f t/s\n", o.n_prompt, r + 1, pp.back());
  }
  for (int r = 0; r < o.reps && o.n_gen > 0; ++r) {
    KvCache cache(model->config(), o.n_gen, kv);
    auto t = random_tokens(o.n_gen);
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < o.n_gen; ++i) model->forward(pool, cache, &t[i], 1, i, logits.data(), false, lora);
    tg.push_back(o.n_gen / seconds_since(t0));
    if (!o.json) std::fprintf(stderr, "bench: tg%d rep %d: %.2f t/s\n", o.n_gen, r + 1, tg.back());
  }
  const Stat ps = stats(pp), ts = stats(tg);
  const double tokens = double(o.reps) * double(o.n_prompt + o.n_gen);
  const uint64_t rss = peak_rss_bytes();

  if (o.json) {
    nlohmann::ordered_json j;
    j["model"] = o.model;
    j["threads"] = threads;
    if (o.n_prompt > 0) j["pp"] = {{"n", o.n_prompt}, {"tokens_per_s", ps.mean}, {"stddev", ps.stddev}};
    if (o.n_gen > 0) j["tg"] = {{"n", o.n_gen}, {"tokens_per_s", ts.mean}, {"stddev", ts.stddev}};
    j["peak_rss_bytes"] = rss;
    if (energy.available()) {
      j["energy_j"] = energy.joules();
      j["energy_j_per_token"] = energy.joules() / tokens;
    } else {
      j["energy_j"] = nullptr;
      j["energy_note"] = energy.describe(tokens, o.price_kwh);
    }
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::string name = o.model;
  if (auto slash = name.find_last_of('/'); slash != std::string::npos) name = name.substr(slash + 1);
  const std::string size = human_size(static_cast<double>(bytes));
  const std::string par = params >= 1e9 ? fmt::format("{:.2f} B", params / 1e9) : fmt::format("{:.2f} M", params / 1e6);
  const size_t w = std::max<size_t>(name.size(), 5);
  fmt::print("| {:<{}} | {:>10} | {:>8} | {:>7} | {:>6} | {:>16} |\n", "model", w, "size", "params", "threads", "test", "t/s");
  fmt::print("| {:-<{}} | {:->10} | {:->8} | {:->7} | {:->6} | {:->16} |\n", "", w, "", "", "", "", "");
  auto row = [&](const std::string& test, const Stat& s) {
    fmt::print("| {:<{}} | {:>10} | {:>8} | {:>7} | {:>6} | {:>16} |\n", name, w, size, par, threads, test,
               fmt::format("{:.2f} ± {:.2f}", s.mean, s.stddev));
  };
  if (o.n_prompt > 0) row(fmt::format("pp{}", o.n_prompt), ps);
  if (o.n_gen > 0) row(fmt::format("tg{}", o.n_gen), ts);
  fmt::print("\npeak RSS {} (model tensors {}), KV cache {}, {} rep(s)\nenergy: {}\n", human_size(static_cast<double>(rss)),
             size, o.kv_type, o.reps, energy.describe(tokens, o.price_kwh));
  return 0;
}

}  // namespace

Action add_bench(CLI::App& app) {
  auto o = std::make_shared<Options>();
  CLI::App* sub = app.add_subcommand("bench", "Measure prompt processing (pp) and generation (tg) speed, as llama-bench");
  sub->add_option("-m,--model", o->model, "GGUF model file")->required()->check(CLI::ExistingFile);
  add_threads_option(sub, o->threads);
  sub->add_option("-p,--n-prompt", o->n_prompt, "Prompt tokens processed in one batch (default 512; 0: skip)");
  sub->add_option("-n,--n-gen", o->n_gen, "Tokens generated one at a time (default 128; 0: skip)");
  sub->add_option("-r,--repetitions", o->reps, "Repetitions of each test (default 5)");
  add_kv_type_option(sub, o->kv_type, "KV cache type: f16 (default, as llama-bench) or f32");
  sub->add_flag("--json", o->json, "Print one JSON object instead of the table");
  sub->add_option("--price-kwh", o->price_kwh, "Electricity price for the cost estimate ($/kWh)")->capture_default_str();
  add_lora_options(sub, o->lora);
  return [o] { return run_bench(*o); };
}

}  // namespace slm::cli

// slm bench -m FILE [-t N,..] [-p 512,..] [-n 128,..] [-d 0,..] [-r REPS] [-o md|json|csv]:
// end-to-end speed, measured the way llama-bench measures it so the two can be run side by
// side on the same file and their tables line up:
//   pp: one batch of p random tokens (prompt processing),
//   tg: n tokens one at a time (generation; no sampling, the forward pass only),
// each after d tokens already in the context (-d, llama-bench's depth: filled untimed, then
// copied for each repetition), for every combination of the listed thread counts, depths
// and sizes. Each test is repeated REPS times and reported as mean ± sample standard
// deviation of tokens/s. A one-token warm-up first pages the mapped weights in. Also
// reported: the peak resident memory (getrusage), the model's tensor bytes and the energy
// where the machine exposes it.
#include <fmt/format.h>
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "app/energy.h"
#include "cli/options.h"
#include "quant/mixture.h"
#include "gguf/gguf.h"
#include "kernels/thread_pool.h"
#include "slm/error.h"
#include "slm/model.h"

namespace slm::cli {
namespace {

struct Options {
  std::string model;
  std::string threads = "0";
  std::string n_prompt = "512";
  std::string n_gen = "128";
  std::string depth = "0";
  int reps = 5;
  KvTypeNames kv_type{"f16"};
  std::string output = "md";
  bool json = false;
  double price_kwh = 0.30;
  LoraOptions lora;
};

// "512,1024" → {512, 1024}; empty items and non-numbers are refused at parse time.
std::vector<int> int_list(const std::string& text) {
  std::vector<int> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, comma - start);
    size_t used = 0;
    long v = -1;
    try {
      v = std::stol(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || v < 0 || v > (1 << 24))
      throw std::invalid_argument("'" + item + "' is not a whole number in 0.." + std::to_string(1 << 24));
    out.push_back(int(v));
    start = comma + 1;
  }
  return out;
}

CLI::Validator int_list_check(int max, const char* what) {
  return CLI::Validator(
      [max, what](std::string& text) -> std::string {
        try {
          for (int v : int_list(text))
            if (v > max) return std::string(what) + " " + std::to_string(v) + " is more than " + std::to_string(max);
        } catch (const std::invalid_argument& e) {
          return std::string(what) + ": " + e.what();
        }
        return {};
      },
      "LIST");
}

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

struct Test {
  int threads = 0, depth = 0, n_prompt = 0, n_gen = 0;
  std::vector<double> samples;  // tokens/s per repetition
  double joules = -1;           // over the repetitions; < 0: not measured
  std::string name() const {
    std::string t = n_prompt > 0 ? fmt::format("pp{}", n_prompt) : fmt::format("tg{}", n_gen);
    return depth > 0 ? t + fmt::format(" @ d{}", depth) : t;
  }
};

std::string csv_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

int run_bench(const Options& o) {
  const std::vector<int> prompts = int_list(o.n_prompt), gens = int_list(o.n_gen), depths = int_list(o.depth);
  std::vector<int> thread_counts = int_list(o.threads);
  for (int& t : thread_counts) t = resolve_threads(t);
  bool any = false;
  for (int p : prompts) any |= p > 0;
  for (int n : gens) any |= n > 0;
  if (!any) throw Error("bench: nothing to measure: every -p and -n is 0");
  if (o.reps < 1) throw Error("bench: -r must be at least 1");
  const std::string format = o.json ? "json" : o.output;
  const GgmlType kv_k = o.kv_type.key(), kv_v = o.kv_type.value();
  std::unique_ptr<Model> model = Model::load(o.model);
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
  const bool table = format == "md";

  std::vector<Test> tests;
  double total_tokens = 0;
  EnergyMeter energy_all;
  for (int threads : thread_counts) {
    ThreadPool pool(threads);
    {  // warm-up: one token touches every weight once
      KvCache cache(model->config(), 8, kv_k, kv_v);
      auto t = random_tokens(1);
      model->forward(pool, cache, t.data(), 1, 0, logits.data(), false, lora);
    }
    for (int depth : depths) {
      int ctx = 0;
      for (int p : prompts) ctx = std::max(ctx, depth + p);
      for (int n : gens) ctx = std::max(ctx, depth + n);
      KvCache filled(model->config(), std::max(ctx, 1), kv_k, kv_v);
      if (depth > 0) {  // the context already there: evaluated once, untimed, in batches
        auto t = random_tokens(depth);
        constexpr int kBatch = 512;
        for (int i = 0; i < depth; i += kBatch)
          model->forward(pool, filled, t.data() + i, std::min(kBatch, depth - i), i, logits.data(), false, lora);
      }
      auto measure = [&](int n_prompt, int n_gen) {
        Test test{threads, depth, n_prompt, n_gen, {}, -1};
        EnergyMeter energy;
        for (int r = 0; r < o.reps; ++r) {
          KvCache cache = filled;
          const int n = n_prompt > 0 ? n_prompt : n_gen;
          auto t = random_tokens(n);
          const auto t0 = std::chrono::steady_clock::now();
          if (n_prompt > 0)
            model->forward(pool, cache, t.data(), n_prompt, depth, logits.data(), false, lora);
          else
            for (int i = 0; i < n_gen; ++i) model->forward(pool, cache, &t[size_t(i)], 1, depth + i, logits.data(), false, lora);
          test.samples.push_back(n / seconds_since(t0));
          if (table) std::fprintf(stderr, "bench: %s t=%d rep %d: %.2f t/s\n", test.name().c_str(), threads, r + 1, test.samples.back());
        }
        if (energy.available()) test.joules = energy.joules();
        total_tokens += double(o.reps) * (n_prompt + n_gen);
        tests.push_back(std::move(test));
      };
      for (int p : prompts)
        if (p > 0) measure(p, 0);
      for (int n : gens)
        if (n > 0) measure(0, n);
    }
  }
  const uint64_t rss = peak_rss_bytes();
  const std::string arch = model->file().get_string("general.architecture");
  const std::string ftype = model->file().has("general.file_type")
                                ? file_type_name(uint32_t(model->file().get_int("general.file_type")))
                                : "unknown";
  // llama-bench's model column: architecture, size class, file type ("llama 1B Q4_K - Medium").
  const std::string size_class = params >= 1000000000ull ? fmt::format("{}B", params / 1000000000ull)
                                                         : fmt::format("{}M", params / 1000000ull);
  const std::string model_type = fmt::format("{} {} {}", arch, size_class, ftype);

  if (format == "json" || format == "csv") {
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    for (const Test& t : tests) {
      const Stat st = stats(t.samples);
      nlohmann::ordered_json j;
      j["model_filename"] = o.model;
      j["model_type"] = model_type;
      j["model_size"] = bytes;
      j["model_n_params"] = params;
      j["backend"] = "CPU";
      j["n_threads"] = t.threads;
      j["type_k"] = o.kv_type.k.empty() ? o.kv_type.both : o.kv_type.k;
      j["type_v"] = o.kv_type.v.empty() ? o.kv_type.both : o.kv_type.v;
      j["n_prompt"] = t.n_prompt;
      j["n_gen"] = t.n_gen;
      j["n_depth"] = t.depth;
      j["test"] = t.name();
      j["avg_ts"] = st.mean;
      j["stddev_ts"] = st.stddev;
      j["samples_ts"] = t.samples;
      j["peak_rss_bytes"] = rss;
      if (t.joules >= 0) {
        j["energy_j"] = t.joules;
      } else {  // never a guess: null, and why
        j["energy_j"] = nullptr;
        j["energy_note"] = energy_all.describe(double(o.reps) * (t.n_prompt + t.n_gen), o.price_kwh);
      }
      rows.push_back(j);
    }
    if (format == "json") {
      std::printf("%s\n", rows.dump(2).c_str());
      return 0;
    }
    bool header = true;
    for (const auto& j : rows) {
      std::string line;
      if (header) {
        for (const auto& [k, v] : j.items()) line += (line.empty() ? "" : ",") + k;
        std::printf("%s\n", line.c_str());
        line.clear();
        header = false;
      }
      for (const auto& [k, v] : j.items()) {
        std::string cell;
        if (v.is_string()) cell = csv_quote(v.get<std::string>());
        else if (v.is_array()) {
          std::string list;
          for (const auto& x : v) list += (list.empty() ? "" : ";") + fmt::format("{:.4f}", x.get<double>());
          cell = csv_quote(list);
        } else if (v.is_null()) cell = "";
        else cell = v.dump();
        line += (line.empty() && k == j.begin().key() ? "" : ",") + cell;
      }
      std::printf("%s\n", line.c_str());
    }
    return 0;
  }
  const std::string size = human_size(static_cast<double>(bytes));
  const std::string par = params >= 1e9 ? fmt::format("{:.2f} B", params / 1e9) : fmt::format("{:.2f} M", params / 1e6);
  size_t w = std::max<size_t>(model_type.size(), 5), tw = 4, sw = 16;
  std::vector<std::string> speeds;
  for (const Test& t : tests) {
    const Stat st = stats(t.samples);
    speeds.push_back(fmt::format("{:.2f} ± {:.2f}", st.mean, st.stddev));
    tw = std::max(tw, t.name().size());
    sw = std::max(sw, speeds.back().size() - 1);  // "±" is two bytes, one column (fmt pads by columns)
  }
  fmt::print("| {:<{}} | {:>10} | {:>8} | {:<7} | {:>7} | {:>{}} | {:>{}} |\n", "model", w, "size", "params", "backend",
             "threads", "test", tw, "t/s", sw);
  fmt::print("| {:-<{}} | {:->10} | {:->8} | {:-<7} | {:->7} | {:->{}} | {:->{}} |\n", "", w, "", "", "", "", "", tw, "", sw);
  for (size_t i = 0; i < tests.size(); ++i)
    fmt::print("| {:<{}} | {:>10} | {:>8} | {:<7} | {:>7} | {:>{}} | {:>{}} |\n", model_type, w, size, par, "CPU",
               tests[i].threads, tests[i].name(), tw, speeds[i], sw);
  fmt::print("\npeak RSS {} (model tensors {}), KV cache {}, {} rep(s)\nenergy: {}\n", human_size(static_cast<double>(rss)),
             size, o.kv_type.describe(), o.reps, energy_all.describe(total_tokens, o.price_kwh));
  return 0;
}

}  // namespace

Action add_bench(CLI::App& app) {
  auto o = std::make_shared<Options>();
  CLI::App* sub = app.add_subcommand("bench", "Measure prompt processing (pp) and generation (tg) speed, as llama-bench");
  sub->add_option("-m,--model", o->model, "GGUF model file")->required()->check(CLI::ExistingFile);
  sub->add_option("-t,--threads", o->threads, "Threads, a comma list (default: all cores)")
      ->check(int_list_check(kMaxThreads, "threads"));
  sub->add_option("-p,--n-prompt", o->n_prompt, "Prompt tokens processed in one batch, a comma list (default 512; 0: skip)")
      ->check(int_list_check(1 << 24, "-p"));
  sub->add_option("-n,--n-gen", o->n_gen, "Tokens generated one at a time, a comma list (default 128; 0: skip)")
      ->check(int_list_check(1 << 24, "-n"));
  sub->add_option("-d,--n-depth", o->depth, "Tokens already in the context before each test, a comma list (default 0)")
      ->check(int_list_check(1 << 24, "-d"));
  sub->add_option("-r,--repetitions", o->reps, "Repetitions of each test (default 5)")->check(CLI::Range(1, 1000));
  add_kv_type_option(sub, o->kv_type, "KV cache type for keys and values: f16 (default, as llama-bench), f32, q8_0 or q4_0");
  sub->add_option("-o,--output", o->output, "Output: md (the table, default), json or csv (one record per test)")
      ->check(CLI::IsMember({"md", "json", "csv"}));
  sub->add_flag("--json", o->json, "The same as -o json");
  sub->add_option("--price-kwh", o->price_kwh, "Electricity price for the cost estimate ($/kWh)")->capture_default_str();
  add_lora_options(sub, o->lora);
  return [o] { return run_bench(*o); };
}

}  // namespace slm::cli

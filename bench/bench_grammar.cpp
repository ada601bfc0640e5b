// Constrained decoding cost per token on the Llama-3 vocabulary (128k tokens), for each
// schema of ../shared/schemas and a plain JSON-object grammar, along random-walk
// trajectories (seeded): the full mask per step, and sample-first (allows() of the one
// sampled token) per step. Counters, in microseconds: mean and p99 over all five passes
// over the trajectories; cold_*: the first pass alone (every automaton state and mask
// computed fresh); warm_*: the later passes (states and masks found in the caches).
//   SLM_SHARED=../shared build/bench_grammar
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gguf/gguf.h"
#include "grammar/grammar.h"
#include "slm/tokenizer.h"

using namespace slm::grammar;

namespace {

std::string shared_dir() {
  if (const char* s = std::getenv("SLM_SHARED"); s && *s) return s;
  return "../shared";
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct Setup {
  std::unique_ptr<slm::GgufFile> file;
  std::unique_ptr<slm::Tokenizer> tokenizer;
  std::shared_ptr<const VocabIndex> vocab;
};

const Setup& setup() {
  static Setup s = [] {
    Setup out;
    out.file = slm::GgufFile::open(shared_dir() + "/vocab/ggml-vocab-llama-bpe.gguf");
    out.tokenizer = slm::Tokenizer::from_gguf(*out.file);
    out.vocab = std::make_shared<const VocabIndex>(*out.tokenizer);
    return out;
  }();
  return s;
}

constexpr int kTrajectories = 20;

// Token sequences of random walks (uniform over allowed tokens, preferring closers after
// 60 steps), made on a constraint of their own so the measured one starts cold.
std::vector<std::vector<int32_t>> trajectories(const std::shared_ptr<const Grammar>& grammar) {
  const VocabIndex& vocab = *setup().vocab;
  TokenConstraint c(grammar, setup().vocab);
  std::vector<std::vector<int32_t>> out;
  for (uint32_t seed = 0; seed < kTrajectories; ++seed) {
    std::mt19937 rng(seed);
    c.reset();
    std::vector<int32_t> ids;
    for (int step = 0; step < 400; ++step) {
      std::vector<int32_t> pool = c.allowed_tokens();
      if (pool.empty()) break;
      if (step >= 60) {
        std::vector<int32_t> closing;
        for (int32_t id : pool)
          if (vocab.is_eog(id) || vocab.piece(id).find_first_of("\"}]") != std::string::npos) closing.push_back(id);
        if (!closing.empty()) pool = closing;
      }
      const int32_t id = pool[std::uniform_int_distribution<size_t>(0, pool.size() - 1)(rng)];
      ids.push_back(id);
      c.accept(id);
      if (vocab.is_eog(id)) break;
    }
    out.push_back(std::move(ids));
  }
  return out;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}
double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

void run(benchmark::State& state, const std::string& gbnf, bool full_mask) {
  auto grammar = std::make_shared<const Grammar>(parse_gbnf(gbnf));
  const auto paths = trajectories(grammar);
  TokenConstraint c(grammar, setup().vocab);
  std::vector<float> logits(setup().vocab->n_vocab());
  std::vector<double> all, cold, warm;
  size_t steps = 0;
  bool first = true;
  for (auto _ : state) {
    for (const auto& path : paths) {
      c.reset();
      for (int32_t id : path) {
        const auto start = std::chrono::steady_clock::now();
        if (full_mask) {
          c.mask(logits.data(), static_cast<int>(logits.size()));
        } else {
          benchmark::DoNotOptimize(c.allows(id));
        }
        const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
        all.push_back(us);
        (first ? cold : warm).push_back(us);
        benchmark::ClobberMemory();
        c.accept(id);
        ++steps;
      }
    }
    first = false;
  }
  state.counters["mean_us"] = mean(all);
  state.counters["p99_us"] = percentile(all, 0.99);
  state.counters["cold_mean_us"] = mean(cold);
  state.counters["cold_p99_us"] = percentile(cold, 0.99);
  state.counters["warm_mean_us"] = mean(warm);
  state.counters["warm_p99_us"] = percentile(warm, 0.99);
  state.counters["steps"] = static_cast<double>(steps);
  state.counters["trie_nodes"] = static_cast<double>(setup().vocab->node_count());
}

void register_all() {
  std::vector<std::pair<std::string, std::string>> grammars;
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(shared_dir() + "/schemas"))
    if (e.path().extension() == ".json") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  for (const std::string& f : files)
    grammars.emplace_back(std::filesystem::path(f).stem().string(),
                          json_schema_to_gbnf(nlohmann::ordered_json::parse(read_file(f))));
  grammars.emplace_back("json_object_gbnf", json_any_object_gbnf());
  for (const auto& [name, gbnf] : grammars) {
    benchmark::RegisterBenchmark(("FullMask/" + name).c_str(),
                                 [gbnf = gbnf](benchmark::State& s) { run(s, gbnf, true); })
        ->Iterations(5)->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("SampleFirst/" + name).c_str(),
                                 [gbnf = gbnf](benchmark::State& s) { run(s, gbnf, false); })
        ->Iterations(5)->Unit(benchmark::kMillisecond);
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

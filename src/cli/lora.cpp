// slm lora: adapters on their own.
//   slm lora info FILE                       targets, rank, alpha, size, architecture
//   slm lora merge -m BASE --lora A[:S] ... -o OUT [--type TYPE]
//                                            the base with the adapters folded in
//   slm lora synth -m BASE --rank R -o OUT   a random adapter on every attention and FFN
//                                            matrix (for benchmarks and tests)
#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <cstdio>
#include <random>
#include <set>
#include <thread>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/progress.h"
#include "gguf/gguf.h"
#include "model/config.h"
#include "slm/adapter.h"
#include "slm/error.h"
#include "slm/model.h"

namespace slm::cli {
namespace {

std::string shape_text(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

int info(const std::string& path, bool json) {
  auto a = LoraAdapter::inspect(path);
  const auto pairs = a->pairs();
  std::set<int> ranks;
  for (const auto& p : pairs) ranks.insert(p.rank);
  if (json) {
    nlohmann::ordered_json j;
    j["file"] = path;
    j["architecture"] = a->architecture();
    j["alpha"] = a->alpha();
    j["rank"] = a->max_rank();
    j["bytes"] = a->bytes();
    j["targets"] = nlohmann::ordered_json::array();
    for (const auto& p : pairs)
      j["targets"].push_back({{"tensor", p.target}, {"rank", p.rank}, {"lora_a", p.a_shape}, {"lora_b", p.b_shape},
                              {"type", p.a_type}});
    for (const auto& [k, v] : a->metadata())
      if (k.rfind("training.", 0) == 0 || k == "general.name") j["metadata"][k] = v;
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::string rank_text;
  for (int r : ranks) rank_text += (rank_text.empty() ? "" : ", ") + std::to_string(r);
  std::printf("adapter:      %s\narchitecture: %s\nrank:         %s\nalpha:        %g (scale = user scale x %s)\n"
              "size:         %.2f MiB in %zu pairs\n",
              path.c_str(), a->architecture().c_str(), rank_text.c_str(), a->alpha(),
              a->alpha() != 0 ? fmt::format("alpha/rank").c_str() : "1, no alpha", a->bytes() / 1048576.0, pairs.size());
  for (const auto& [k, v] : a->metadata())
    if (k.rfind("training.", 0) == 0) std::printf("%-13s %s\n", (k + ":").c_str(), v.c_str());
  std::printf("\n%-36s %5s %-22s %-22s %s\n", "target", "rank", "lora_a", "lora_b", "type");
  for (const auto& p : pairs)
    std::printf("%-36s %5d %-22s %-22s %s\n", p.target.c_str(), p.rank, shape_text(p.a_shape).c_str(),
                shape_text(p.b_shape).c_str(), p.a_type.c_str());
  return 0;
}

struct MergeOptions {
  std::string model, out, type;
  LoraOptions lora;
  int threads = 0;
};

int merge(const MergeOptions& o) {
  if (o.lora.specs.empty() && o.lora.scaled_specs.empty()) throw Error("lora merge: give at least one --lora FILE");
  if (o.out.empty()) throw Error("lora merge: give -o OUT.gguf");
  {  // fail on an unwritable destination before the work, not after
    FILE* f = std::fopen((o.out + ".tmp").c_str(), "wb");
    if (!f) throw Error(o.out + ": cannot write here");
    std::fclose(f);
    std::remove((o.out + ".tmp").c_str());
  }
  std::unique_ptr<Model> base = Model::load(o.model);
  LoadedLoras adapters = load_loras(o.lora, *base, "lora merge");
  LoraMergeOptions mo;
  mo.out_type = o.type;
  mo.n_threads = o.threads > 0 ? o.threads : int(std::max(1u, std::thread::hardware_concurrency()));
  Progress progress(base->file().tensors().size());
  mo.progress = [&](size_t done, size_t) { progress.update(done, "merging"); };
  merge_lora(*base, adapters.set, o.out, mo);
  progress.done();
  std::fprintf(stderr, "lora merge: wrote %s\n", o.out.c_str());
  return 0;
}

struct SynthOptions {
  std::string model, out, targets = "attn,ffn";
  int rank = 16;
  float alpha = 32;
  uint64_t seed = 42;
  float std_dev = 0.02f;
};

// A random adapter for a base: A ~ N(0, std), B ~ N(0, std), on the chosen matrices.
int synth(const SynthOptions& o) {
  if (o.rank < 1 || o.rank > 4096) throw Error("lora synth: --rank must be in 1..4096");
  if (o.out.empty()) throw Error("lora synth: give -o OUT.gguf");
  const bool attn = o.targets.find("attn") != std::string::npos, ffn = o.targets.find("ffn") != std::string::npos;
  if (!attn && !ffn) throw Error("lora synth: --targets takes attn, ffn or attn,ffn");
  std::unique_ptr<Model> base = Model::load(o.model);
  std::mt19937_64 rng(o.seed);
  std::normal_distribution<float> dist(0.0f, o.std_dev);
  std::vector<LoraPairData> pairs;
  const std::set<std::string> attn_kinds = {"attn_q", "attn_k", "attn_v", "attn_qkv", "attn_output"};
  const std::set<std::string> ffn_kinds = {"ffn_gate", "ffn_up", "ffn_down"};
  for (const GgufTensor& t : base->file().tensors()) {
    const std::string& name = t.name;
    if (t.n_dims != 2) continue;
    const size_t dot1 = name.find('.', 4), dot2 = name.rfind('.');
    if (name.rfind("blk.", 0) != 0 || dot1 == std::string::npos) continue;
    const std::string kind = name.substr(dot1 + 1, dot2 - dot1 - 1);
    if (!(attn && attn_kinds.count(kind)) && !(ffn && ffn_kinds.count(kind))) continue;
    const int64_t n_in = t.ne[0], n_out = t.ne[1];
    LoraPairData p;
    p.target = name;
    p.a_shape = {n_in, o.rank};
    p.b_shape = {o.rank, n_out};
    p.a.resize(size_t(n_in * o.rank));
    p.b.resize(size_t(o.rank * n_out));
    for (float& x : p.a) x = dist(rng);
    for (float& x : p.b) x = dist(rng);
    pairs.push_back(std::move(p));
  }
  if (pairs.empty()) throw Error("lora synth: the base has no matrices of the chosen kinds");
  write_lora_adapter(o.out, base->config().arch, o.alpha, pairs, {{"general.name", "random adapter"}});
  std::fprintf(stderr, "lora synth: wrote %s (%zu pairs, rank %d)\n", o.out.c_str(), pairs.size(), o.rank);
  return 0;
}

}  // namespace

Action add_lora(CLI::App& app) {
  CLI::App* sub = app.add_subcommand("lora", "LoRA adapters: inspect, merge into the base, make random ones");
  sub->require_subcommand(1);
  auto info_file = std::make_shared<std::string>();
  auto info_json = std::make_shared<bool>(false);
  auto mo = std::make_shared<MergeOptions>();
  auto so = std::make_shared<SynthOptions>();
  CLI::App* i = sub->add_subcommand("info", "Targets, rank, alpha, size and architecture of an adapter");
  i->add_option("file", *info_file, "Adapter GGUF file")->required();
  i->add_flag("--json", *info_json, "Print JSON");
  CLI::App* m = sub->add_subcommand("merge", "Fold adapters into the base: OUT = BASE + scale·B·A");
  m->add_option("-m,--model", mo->model, "Base GGUF model")->required();
  add_lora_options(m, mo->lora);
  m->add_option("-o,--output", mo->out, "Output GGUF file (written atomically)")->required();
  m->add_option("--type", mo->type, "Type of the merged tensors (default: each keeps the base's; F16 is export-lora's)");
  m->add_option("-t,--threads", mo->threads, "Threads (default: all cores)")->check(CLI::Range(1, 1024));
  CLI::App* s = sub->add_subcommand("synth", "A random adapter for a base (benchmarks, tests)");
  s->add_option("-m,--model", so->model, "Base GGUF model")->required();
  s->add_option("-o,--output", so->out, "Output adapter file")->required();
  s->add_option("--rank", so->rank, "Rank")->capture_default_str();
  s->add_option("--alpha", so->alpha, "Alpha")->capture_default_str();
  s->add_option("--targets", so->targets, "attn, ffn or attn,ffn")->capture_default_str();
  s->add_option("--seed", so->seed, "Random seed")->capture_default_str();
  s->add_option("--std", so->std_dev, "Standard deviation of the A and B elements")->capture_default_str();
  return [=] {
    if (i->parsed()) return info(*info_file, *info_json);
    if (m->parsed()) return merge(*mo);
    return synth(*so);
  };
}

}  // namespace slm::cli

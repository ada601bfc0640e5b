// slm perplexity: llama-perplexity's measurement (see app/perplexity.h), with KL divergence
// against a base model or a base log-probabilities file of either tool.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "app/energy.h"
#include "app/perplexity.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "kernels/thread_pool.h"
#include "slm/error.h"
#include "slm/model.h"
#include "slm/tokenizer.h"

namespace slm::cli {
namespace {

struct Options {
  std::string model, text_file, kl_base, kl_base_file, save_logits;
  int n_ctx = 512, n_batch = 0, chunks = -1, threads = 0;
  bool json = false;
  double price_kwh = 0.30;
  LoraOptions lora;
};

int run(const Options& o) {
  if (o.n_batch != 0 && o.n_batch < o.n_ctx)
    throw Error("perplexity: -b smaller than -c is not supported (each chunk is one batch)");
  if (!o.kl_base.empty() && !o.kl_base_file.empty()) throw Error("give --kl-base or --kl-divergence-base, not both");
  std::string text;
  if (o.kl_base_file.empty()) {
    if (o.text_file.empty()) throw Error("perplexity: give -f TEXT (or --kl-divergence-base FILE, which holds its tokens)");
    text = read_text_input(o.text_file, "text");
  }
  std::unique_ptr<Model> model = Model::load(o.model);
  std::unique_ptr<Tokenizer> tok = Tokenizer::from_gguf(model->file());
  std::unique_ptr<Model> base;
  if (!o.kl_base.empty()) {
    base = Model::load(o.kl_base);
    if (base->n_vocab() != model->n_vocab()) throw Error(o.kl_base + ": another vocabulary than the model's");
  }
  ThreadPool pool(resolve_threads(o.threads));
  LoadedLoras adapters = load_loras(o.lora, *model, "perplexity");
  PerplexityOptions po;
  po.n_ctx = o.n_ctx;
  po.max_chunks = o.chunks;
  po.lora = adapters.get();
  po.kl_base = base.get();
  po.kl_base_file = o.kl_base_file;
  po.save_logits_file = o.save_logits;
  EnergyMeter energy;
  const auto t0 = std::chrono::steady_clock::now();
  std::string line;
  const PerplexityResult r = perplexity(*model, *tok, pool, text, po, [&](int i, int n, double ppl) {
    if (o.json) return;
    line += fmt::format("[{}]{:.4f},", i, ppl);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "\rperplexity: chunk %d/%d, ETA %.0f s   ", i, n, s / i * (n - i));
    if (i == n) std::fprintf(stderr, "\n");
  });
  const double joules = energy.available() ? energy.joules() : NAN;
  if (o.json) {
    nlohmann::ordered_json j;
    j["ppl"] = r.ppl;
    j["ppl_stderr"] = r.ppl_stderr;
    j["n_chunks"] = r.n_chunks;
    j["n_ctx"] = r.n_ctx;
    j["tokens_scored"] = r.tokens_scored;
    if (r.has_kld) {
      j["kld"] = {{"mean", r.kld_mean}, {"stderr", r.kld_stderr}, {"max", r.kld_max}, {"p99", r.kld_p99},
                  {"p95", r.kld_p95}, {"median", r.kld_median}};
      j["same_top_p"] = r.same_top_p;
      j["rms_dp"] = r.rms_dp;
      j["ppl_base"] = r.base_ppl;
      j["ln_ppl_ratio"] = r.ln_ppl_ratio;
    } else {
      j["kld"] = nullptr;
      j["same_top_p"] = nullptr;
    }
    j["seconds"] = r.seconds;
    j["energy_j"] = std::isnan(joules) ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(joules);
    if (std::isnan(joules)) j["energy_note"] = energy.describe(0, o.price_kwh);
    std::printf("%s\n", j.dump(1).c_str());
    return 0;
  }
  std::printf("%s\n", line.c_str());
  std::printf("Final estimate: PPL = %.4f +/- %.5f\n", r.ppl, r.ppl_stderr);
  if (r.has_kld) {
    std::printf("Mean PPL(base)           : %10.6f\n", r.base_ppl);
    std::printf("Mean ln(PPL(Q)/PPL(base)): %10.6f\n", r.ln_ppl_ratio);
    std::printf("Mean    KLD: %10.6f ± %10.6f\n", r.kld_mean, r.kld_stderr);
    std::printf("Maximum KLD: %10.6f\n99.0%%   KLD: %10.6f\n95.0%%   KLD: %10.6f\nMedian  KLD: %10.6f\n", r.kld_max,
                r.kld_p99, r.kld_p95, r.kld_median);
    std::printf("RMS Δp     : %6.3f %%\nSame top p : %6.3f %%\n", r.rms_dp, r.same_top_p);
  }
  std::fprintf(stderr, "perplexity: %d chunks of %d tokens, %lld scored, %.2f s; energy: %s\n", r.n_chunks, r.n_ctx,
               static_cast<long long>(r.tokens_scored), r.seconds,
               energy.describe(double(r.n_chunks) * r.n_ctx, o.price_kwh).c_str());
  return 0;
}

}  // namespace

Action add_perplexity(CLI::App& app) {
  auto o = std::make_shared<Options>();
  CLI::App* sub = app.add_subcommand("perplexity", "Perplexity of a text and KL divergence against a base, as llama-perplexity");
  sub->add_option("-m,--model", o->model, "GGUF model file")->required();
  sub->add_option("-f,--file", o->text_file, "Text to score");
  sub->add_option("-c,--ctx,--ctx-size", o->n_ctx, "Tokens per chunk (the second half of each is scored)")
      ->capture_default_str()->check(CLI::Range(4, 1 << 20));
  sub->add_option("-b,--batch-size", o->n_batch, "Batch size (accepted for llama.cpp's habits; each chunk is one batch)");
  sub->add_option("--chunks", o->chunks, "At most this many chunks");
  sub->add_option("--kl-base", o->kl_base, "Base model (normally the F16/F32 file): KL divergence of this model from it");
  sub->add_option("--kl-divergence-base", o->kl_base_file, "Base log-probabilities written by --save-logits or llama-perplexity");
  sub->add_option("--save-logits", o->save_logits, "Write this model's log-probabilities in llama.cpp's --kl-divergence-base format");
  sub->add_flag("--json", o->json, "Print one JSON object");
  sub->add_option("--price-kwh", o->price_kwh, "Electricity price for the cost estimate")->capture_default_str();
  add_threads_option(sub, o->threads);
  add_lora_options(sub, o->lora);
  return [o] { return run(*o); };
}

}  // namespace slm::cli

// slm finetune: train a LoRA adapter on a JSONL data set, directly on the GGUF file.
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/options.h"
#include "slm/error.h"
#include "slm/train.h"

namespace slm::cli {
namespace {

std::atomic<bool> g_stop{false};
void on_sigint(int) { g_stop = true; }

std::string duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const int t = int(s + 0.5);
  return t >= 3600 ? fmt::format("{}h{:02d}m", t / 3600, t / 60 % 60) : fmt::format("{}m{:02d}s", t / 60, t % 60);
}

struct Options {
  FinetuneOptions f;
  std::string targets;
  std::string log_path;
};

int run(Options& o) {
  if (!o.targets.empty()) {
    size_t start = 0;
    while (start <= o.targets.size()) {
      const size_t comma = o.targets.find(',', start);
      const std::string t = o.targets.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (!t.empty()) o.f.targets.push_back(t);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  std::unique_ptr<std::ofstream> log;
  if (!o.log_path.empty()) {
    log = std::make_unique<std::ofstream>(o.log_path);
    if (!*log) throw Error(o.log_path + ": cannot write the log");
  }
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigaction(SIGINT, &sa, nullptr);
  const bool tty = isatty(2);
  auto show = [&](const FinetuneProgress& p) {
    if (p.has_val && p.step == 0) {
      std::fprintf(stderr, "finetune: base model: validation loss %.4f, perplexity %.3f\n", p.val_loss, p.val_ppl);
      return;
    }
    const int width = 24, filled = p.total_steps ? int(width * int64_t(p.step) / p.total_steps) : width;
    const std::string line = fmt::format(
        "[{}{}] step {}/{} epoch {} loss {:.4f} (avg {:.4f}) lr {:.2e} {:.0f} tok/s mem {:.0f} MiB ETA {}",
        std::string(size_t(filled), '#'), std::string(size_t(width - filled), ' '), p.step, p.total_steps, p.epoch,
        p.loss, p.loss_smoothed, p.lr, p.tokens_per_s, p.peak_rss_bytes / 1048576.0, duration(p.eta_s));
    std::fprintf(stderr, tty ? "\r%-130s" : "%s\n", line.c_str());
    if (p.has_val)
      std::fprintf(stderr, "%sfinetune: step %d: validation loss %.4f, perplexity %.3f\n", tty ? "\n" : "", p.step,
                   p.val_loss, p.val_ppl);
    std::fflush(stderr);
    if (log) {
      nlohmann::ordered_json j = {{"step", p.step}, {"epoch", p.epoch}, {"loss", p.loss},
                                  {"loss_smoothed", p.loss_smoothed}, {"lr", p.lr}, {"grad_norm", p.grad_norm},
                                  {"tokens_per_s", p.tokens_per_s}, {"peak_rss_bytes", p.peak_rss_bytes},
                                  {"elapsed_s", p.elapsed_s}};
      if (p.has_val) j["val_loss"] = p.val_loss, j["val_ppl"] = p.val_ppl;
      *log << j.dump() << "\n";
      log->flush();
    }
  };
  const FinetuneResult r = finetune(o.f, show, &g_stop);
  if (tty) std::fprintf(stderr, "\n");
  std::fprintf(stderr, "finetune: %s after %d steps (%zu rows, %zu trainable parameters, peak lr %.2g, %.0f tokens/s); wrote %s\n",
               r.interrupted ? "interrupted" : "done", r.steps, r.n_train_rows, r.n_parameters, r.lr, r.tokens_per_s,
               o.f.out_path.c_str());
  if (r.has_val)
    std::fprintf(stderr, "finetune: validation perplexity %.3f → %.3f (%.2fx)\n", std::exp(r.base_val_loss),
                 std::exp(r.final_val_loss), std::exp(r.final_val_loss - r.base_val_loss));
  if (r.interrupted) std::fprintf(stderr, "finetune: checkpoint written; continue with --resume\n");
  return r.interrupted ? 130 : 0;
}

}  // namespace

Action add_finetune(CLI::App& app) {
  auto o = std::make_shared<Options>();
  FinetuneOptions& f = o->f;
  CLI::App* sub = app.add_subcommand("finetune", "Train a LoRA adapter on your data, on the GGUF file you run");
  sub->footer(
      "Data: JSONL, one example per line: {\"text\"} (loss on every token), {\"prompt\",\"completion\"} (loss on the\n"
      "completion) or {\"messages\":[...]} (the model's chat template; loss on assistant turns).\n"
      "The learning rate 2e-4 suits real models of 0.1-8B parameters (the default there); below 100M parameters\n"
      "the default grows as 1/sqrt(size).");
  sub->add_option("-m,--model", f.model_path, "Base GGUF model (kept frozen, in its own type)")->required();
  sub->add_option("--data", f.data_path, "Training data (JSONL)")->required();
  sub->add_option("--val", f.val_path, "Validation data (JSONL): loss and perplexity at the start, end and --val-every");
  sub->add_option("-o,--output", f.out_path, "Adapter file to write (llama.cpp's LoRA format)")->required();
  sub->add_option("--rank", f.rank, "LoRA rank")->capture_default_str()->check(CLI::Range(1, 4096));
  sub->add_option("--alpha", f.alpha, "LoRA alpha (scale = alpha / rank)")->capture_default_str();
  sub->add_option("--targets", o->targets,
                  "Matrices to adapt, comma-separated (attn_q,attn_k,attn_v,attn_qkv,attn_output,ffn_gate,ffn_up,ffn_down,"
                  "ffn_gate_inp,ffn_*_shexp; default: every attention and FFN matrix)");
  sub->add_option("--lr", f.lr,
                  "Peak learning rate (default: by size — 2e-4, right for real 0.1-8B models; "
                  "2e-4·sqrt(1e8/params) below 100M parameters, e.g. 3.9e-3 for a 260K model)");
  sub->add_option("--epochs", f.epochs, "Passes over the data")->capture_default_str();
  sub->add_option("--steps", f.steps, "Optimizer steps (overrides --epochs)");
  sub->add_option("--batch", f.batch, "Rows per micro-batch")->capture_default_str();
  sub->add_option("--grad-accum", f.grad_accum, "Micro-batches per optimizer step")->capture_default_str();
  sub->add_option("-c,--ctx", f.n_ctx, "Tokens per row (longer examples are split)")->capture_default_str();
  sub->add_option("--warmup", f.warmup, "Warm-up steps (then cosine decay)")->capture_default_str();
  sub->add_option("--weight-decay", f.weight_decay, "AdamW weight decay")->capture_default_str();
  sub->add_flag("!--no-pack", f.pack, "One example per row (default: short examples packed together)");
  sub->add_option("--seed", f.seed, "Seed: initialisation and data order")->capture_default_str();
  add_threads_option(sub, f.n_threads);
  sub->add_option("--val-every", f.val_every, "Validate every N steps")->capture_default_str();
  sub->add_option("--save-every", f.save_every, "Checkpoint every N steps (adapter + optimizer state)")->capture_default_str();
  sub->add_option("--checkpoint", f.checkpoint_path, "Checkpoint file (default: OUTPUT.ckpt)");
  sub->add_option("--resume", f.resume_path, "Continue from a checkpoint (same data, seed and settings)");
  sub->add_option("--merge", f.merge_path, "Also write the base with the adapter merged in");
  sub->add_option("--chat-template", f.chat_template, "For messages data: a Jinja template instead of the model's");
  sub->add_option("--log", o->log_path, "Write one JSON line per step to this file");
  return [o] { return run(*o); };
}

}  // namespace slm::cli

// The fine-tuning loop: rows of tokens → forward_backward → AdamW, with validation,
// checkpoints and the adapter written at the end.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <cstring>
#include <thread>

#include "app/chat_format.h"
#include "gguf/gguf.h"
#include "kernels/thread_pool.h"
#include "model/config.h"
#include "slm/adapter.h"
#include "slm/error.h"
#include "slm/model.h"
#include "slm/tokenizer.h"
#include "slm/train.h"
#include "train/backprop.h"
#include "train/data.h"
#include "train/lora_model.h"

namespace slm {

namespace {

using train::LoraModel;
using train::LoraParam;
using train::Sequence;

uint64_t peak_rss() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return uint64_t(ru.ru_maxrss) * 1024;
}

uint64_t file_hash(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return 0;
  std::vector<char> buf(1 << 20);
  uint64_t h = 1469598103934665603ull;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) h = train::fnv1a(buf.data(), n, h);
  std::fclose(f);
  return h;
}

std::string hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
  return b;
}

// AdamW's moments, one pair of vectors per A and B.
struct AdamState {
  std::vector<std::vector<float>> m_a, v_a, m_b, v_b;
  explicit AdamState(const LoraModel& lora) {
    for (const LoraParam& p : lora.params()) {
      m_a.emplace_back(p.a.size(), 0.0f);
      v_a.emplace_back(p.a.size(), 0.0f);
      m_b.emplace_back(p.b.size(), 0.0f);
      v_b.emplace_back(p.b.size(), 0.0f);
    }
  }
};

void adamw_update(std::vector<float>& w, const std::vector<float>& g, std::vector<float>& m, std::vector<float>& v,
                  float lr, float weight_decay, int t) {
  const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
  const float c1 = 1.0f - std::pow(b1, float(t)), c2 = 1.0f - std::pow(b2, float(t));
  for (size_t i = 0; i < w.size(); ++i) {
    m[i] = b1 * m[i] + (1 - b1) * g[i];
    v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
    const float mh = m[i] / c1, vh = v[i] / c2;
    w[i] -= lr * (mh / (std::sqrt(vh) + eps) + weight_decay * w[i]);
  }
}

// Linear warm-up to lr, then cosine decay to 0 at the last step.
double lr_at(const FinetuneOptions& o, int step, int total) {
  if (o.warmup > 0 && step < o.warmup) return o.lr * double(step + 1) / double(o.warmup);
  const int span = std::max(1, total - o.warmup);
  const double progress = std::min(1.0, double(step - o.warmup) / double(span));
  return o.lr * 0.5 * (1.0 + std::cos(M_PI * progress));
}

// The row each micro-batch takes: epochs of the rows, each in its own shuffled order (a
// function of the seed and the epoch only, so a resumed run takes the same rows).
class RowOrder {
 public:
  RowOrder(size_t n_rows, uint64_t seed) : n_(n_rows), seed_(seed) {}
  size_t row(uint64_t k) {
    const uint64_t epoch = k / n_;
    if (epoch != epoch_ || order_.empty()) {
      order_.resize(n_);
      for (size_t i = 0; i < n_; ++i) order_[i] = i;
      std::mt19937_64 rng(seed_ * 0x9E3779B97F4A7C15ull + epoch);
      std::shuffle(order_.begin(), order_.end(), rng);
      epoch_ = epoch;
    }
    return order_[k % n_];
  }

 private:
  size_t n_;
  uint64_t seed_;
  uint64_t epoch_ = ~0ull;
  std::vector<size_t> order_;
};

double mean_loss(const Model& model, LoraModel& lora, const std::vector<Sequence>& rows, int n_ctx, ThreadPool& pool) {
  double loss = 0, weight = 0;
  for (const Sequence& s : rows) {
    const train::LossSum r = train::forward_backward<float>(model, lora, s, n_ctx, pool, false);
    loss += r.loss;
    weight += r.weight;
  }
  return weight > 0 ? loss / weight : 0.0;
}

// Checkpoint: the pairs, AdamW's moments and where the run stands, in one GGUF written
// atomically. Everything needed to continue bit for bit.
void save_checkpoint(const std::string& path, const FinetuneOptions& o, const Model& model, const LoraModel& lora,
                     const AdamState& adam, int step, double loss_smoothed, uint64_t data_hash) {
  GgufWriter w;
  w.set("general.type", GgufValue::make_string("slm-finetune-checkpoint"));
  w.set("general.architecture", GgufValue::make_string(model.config().arch));
  w.set("training.step", GgufValue::make_u32(uint32_t(step)));
  w.set("training.rank", GgufValue::make_u32(uint32_t(o.rank)));
  w.set("training.alpha", GgufValue::make_f32(o.alpha));
  w.set("training.seed", GgufValue::make_u64(o.seed));
  w.set("training.data_hash", GgufValue::make_string(hex(data_hash)));
  w.set("training.loss_smoothed", GgufValue::make_f32(float(loss_smoothed)));
  w.set("training.n_ctx", GgufValue::make_u32(uint32_t(o.n_ctx)));
  for (size_t k = 0; k < lora.params().size(); ++k) {
    const LoraParam& p = lora.params()[k];
    auto add = [&](const std::string& suffix, const std::vector<float>& v, std::vector<int64_t> shape) {
      w.add_tensor(p.target + suffix, GgmlType::F32, std::move(shape), v.data(), v.size() * sizeof(float));
    };
    add(".lora_a", p.a, {p.n_in, p.rank});
    add(".lora_b", p.b, {p.rank, p.n_out});
    add(".lora_a.adam_m", adam.m_a[k], {p.n_in, p.rank});
    add(".lora_a.adam_v", adam.v_a[k], {p.n_in, p.rank});
    add(".lora_b.adam_m", adam.m_b[k], {p.rank, p.n_out});
    add(".lora_b.adam_v", adam.v_b[k], {p.rank, p.n_out});
  }
  w.write(path);
}

int load_checkpoint(const std::string& path, const FinetuneOptions& o, LoraModel& lora, AdamState& adam,
                    double* loss_smoothed, uint64_t data_hash) {
  auto f = GgufFile::open(path);
  if (f->get_string_or("general.type", "") != "slm-finetune-checkpoint")
    throw Error(path + ": not an slm fine-tuning checkpoint");
  if (f->get_int("training.rank") != o.rank) throw Error(path + ": the checkpoint has another --rank");
  if (f->get_f32("training.alpha") != o.alpha) throw Error(path + ": the checkpoint has another --alpha");
  if (uint64_t(f->get_int("training.seed")) != o.seed) throw Error(path + ": the checkpoint has another --seed");
  if (f->get_int("training.n_ctx") != o.n_ctx) throw Error(path + ": the checkpoint has another --ctx");
  if (f->get_string("training.data_hash") != hex(data_hash))
    throw Error(path + ": the checkpoint was made with other training data");
  *loss_smoothed = f->get_f32("training.loss_smoothed");
  size_t expected = 0;
  for (size_t k = 0; k < lora.params().size(); ++k) {
    LoraParam& p = lora.params()[k];
    auto read = [&](const std::string& suffix, std::vector<float>& v) {
      const GgufTensor* t = f->find_tensor(p.target + suffix);
      if (!t || t->type != GgmlType::F32 || t->nbytes != v.size() * sizeof(float))
        throw Error(path + ": tensor " + p.target + suffix + " is missing or has another shape (other --targets?)");
      std::memcpy(v.data(), t->data, t->nbytes);
      ++expected;
    };
    read(".lora_a", p.a);
    read(".lora_b", p.b);
    read(".lora_a.adam_m", adam.m_a[k]);
    read(".lora_a.adam_v", adam.v_a[k]);
    read(".lora_b.adam_m", adam.m_b[k]);
    read(".lora_b.adam_v", adam.v_b[k]);
  }
  if (expected != f->tensors().size()) throw Error(path + ": the checkpoint adapts other matrices (other --targets?)");
  return int(f->get_int("training.step"));
}

void validate(const FinetuneOptions& o) {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw Error(what);
  };
  need(!o.model_path.empty(), "finetune: give -m BASE.gguf");
  need(!o.data_path.empty(), "finetune: give --data TRAIN.jsonl");
  need(!o.out_path.empty(), "finetune: give -o ADAPTER.gguf");
  need(std::isfinite(o.lr) && o.lr >= 0 && o.lr < 1, "--lr must be in (0, 1) (0: by the model's size)");
  need(o.epochs >= 1 && o.epochs <= 100000, "--epochs must be in 1..100000");
  need(o.steps >= 0 && o.steps <= 100000000, "--steps must be >= 0");
  need(o.batch >= 1 && o.batch <= 4096, "--batch must be in 1..4096");
  need(o.grad_accum >= 1 && o.grad_accum <= 4096, "--grad-accum must be in 1..4096");
  need(o.n_ctx >= 2 && o.n_ctx <= 1 << 20, "--ctx must be in 2..1048576");
  need(o.warmup >= 0, "--warmup must be >= 0");
  need(std::isfinite(o.weight_decay) && o.weight_decay >= 0 && o.weight_decay < 1, "--weight-decay must be in [0, 1)");
  need(std::isfinite(o.clip) && o.clip > 0, "--clip must be positive");
  need(o.val_every >= 0 && o.save_every >= 0, "--val-every and --save-every must be >= 0");
  // The output is checked before hours of work, not after.
  FILE* f = std::fopen((o.out_path + ".tmp").c_str(), "wb");
  if (!f) throw Error(o.out_path + ": cannot write the adapter here");
  std::fclose(f);
  std::remove((o.out_path + ".tmp").c_str());
}

}  // namespace

FinetuneResult finetune(const FinetuneOptions& options, const std::function<void(const FinetuneProgress&)>& progress,
                        const std::atomic<bool>* stop) {
  validate(options);
  FinetuneOptions o = options;
  std::unique_ptr<Model> model = Model::load(o.model_path);
  if (o.lr == 0) {
    double params = 0;
    for (const GgufTensor& t : model->file().tensors()) params += double(t.n_elements());
    o.lr = float(2e-4 * std::clamp(std::sqrt(1e8 / std::max(params, 1.0)), 1.0, 50.0));
  }
  std::unique_ptr<Tokenizer> tok = Tokenizer::from_gguf(model->file());
  std::unique_ptr<ChatFormatter> chat;
  std::string warning;
  chat = std::make_unique<ChatFormatter>(model->file(), *tok, o.chat_template, &warning);
  const train::Dataset data = train::load_dataset(o.data_path, *tok, chat.get());
  if (data.format == train::DataFormat::Messages && chat->is_fallback())
    std::fprintf(stderr, "finetune: warning: %s\n", warning.c_str());
  const std::vector<Sequence> rows = train::make_rows(data.examples, o.n_ctx, o.pack);
  std::vector<Sequence> val_rows;
  if (!o.val_path.empty()) val_rows = train::make_rows(train::load_dataset(o.val_path, *tok, chat.get()).examples, o.n_ctx, o.pack);

  ThreadPool pool(o.n_threads > 0 ? o.n_threads : int(std::max(1u, std::thread::hardware_concurrency())));
  LoraModel lora(*model, o.rank, o.alpha, o.targets, o.seed);
  AdamState adam(lora);
  const int per_step = o.batch * o.grad_accum;
  const int steps_per_epoch = int((rows.size() + size_t(per_step) - 1) / size_t(per_step));
  const int total = o.steps > 0 ? o.steps : o.epochs * steps_per_epoch;
  FinetuneResult result;
  result.lr = o.lr;
  result.n_train_rows = rows.size();
  result.n_parameters = lora.n_parameters();

  int start = 0;
  double smoothed = 0;
  if (!o.resume_path.empty()) start = load_checkpoint(o.resume_path, o, lora, adam, &smoothed, data.hash);
  if (start > total) throw Error(o.resume_path + ": the checkpoint is past the run's " + std::to_string(total) + " steps");

  FinetuneProgress pr;
  pr.total_steps = total;
  if (!val_rows.empty()) {
    result.has_val = true;
    result.base_val_loss = mean_loss(*model, lora, val_rows, o.n_ctx, pool);
    pr.has_val = true;
    pr.val_loss = result.base_val_loss;
    pr.val_ppl = std::exp(pr.val_loss);
    pr.step = start;
    if (progress) progress(pr);
  }

  RowOrder order(rows.size(), o.seed);
  const auto t0 = std::chrono::steady_clock::now();
  uint64_t tokens_done = 0;
  int step = start;
  const std::string ckpt = o.checkpoint_path.empty() ? o.out_path + ".ckpt" : o.checkpoint_path;
  for (; step < total; ++step) {
    if (stop && stop->load()) {
      result.interrupted = true;
      break;
    }
    lora.zero_grad();
    double loss = 0, weight = 0;
    for (int k = 0; k < per_step; ++k) {
      const Sequence& row = rows[order.row(uint64_t(step) * uint64_t(per_step) + uint64_t(k))];
      const train::LossSum r = train::forward_backward<float>(*model, lora, row, o.n_ctx, pool, true);
      loss += r.loss;
      weight += r.weight;
      tokens_done += row.tokens.size();
    }
    // Mean loss over the step's predicted tokens; its gradient, clipped by global norm.
    const float inv = weight > 0 ? float(1.0 / weight) : 0.0f;
    double norm2 = 0;
    for (LoraParam& p : lora.params()) {
      for (float& g : p.grad_a) g *= inv, norm2 += double(g) * g;
      for (float& g : p.grad_b) g *= inv, norm2 += double(g) * g;
    }
    const double norm = std::sqrt(norm2);
    if (norm > o.clip) {
      const float s = float(o.clip / norm);
      for (LoraParam& p : lora.params()) {
        for (float& g : p.grad_a) g *= s;
        for (float& g : p.grad_b) g *= s;
      }
    }
    const double lr = lr_at(o, step, total);
    for (size_t k = 0; k < lora.params().size(); ++k) {
      LoraParam& p = lora.params()[k];
      adamw_update(p.a, p.grad_a, adam.m_a[k], adam.v_a[k], float(lr), o.weight_decay, step + 1);
      adamw_update(p.b, p.grad_b, adam.m_b[k], adam.v_b[k], float(lr), o.weight_decay, step + 1);
    }
    const double step_loss = weight > 0 ? loss / weight : 0.0;
    smoothed = step == 0 ? step_loss : 0.9 * smoothed + 0.1 * step_loss;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    pr = FinetuneProgress();
    pr.step = step + 1;
    pr.total_steps = total;
    pr.epoch = int(uint64_t(step) * uint64_t(per_step) / std::max<size_t>(1, rows.size())) + 1;
    pr.loss = step_loss;
    pr.loss_smoothed = smoothed;
    pr.lr = lr;
    pr.grad_norm = norm;
    pr.elapsed_s = elapsed;
    pr.tokens_per_s = elapsed > 0 ? double(tokens_done) / elapsed : 0;
    pr.eta_s = elapsed / double(step + 1 - start) * double(total - step - 1);
    pr.peak_rss_bytes = peak_rss();
    const bool last = step + 1 == total;
    if (!val_rows.empty() && (last || (o.val_every > 0 && (step + 1) % o.val_every == 0))) {
      pr.has_val = true;
      pr.val_loss = mean_loss(*model, lora, val_rows, o.n_ctx, pool);
      pr.val_ppl = std::exp(pr.val_loss);
      result.final_val_loss = pr.val_loss;
    }
    if (progress) progress(pr);
    if (o.save_every > 0 && (step + 1) % o.save_every == 0 && !last)
      save_checkpoint(ckpt, o, *model, lora, adam, step + 1, smoothed, data.hash);
    result.final_loss = step_loss;
    result.tokens_per_s = pr.tokens_per_s;
  }
  result.steps = step;
  if (result.has_val && (result.interrupted || step == start)) result.final_val_loss = mean_loss(*model, lora, val_rows, o.n_ctx, pool);
  if (result.interrupted) save_checkpoint(ckpt, o, *model, lora, adam, step, smoothed, data.hash);

  std::vector<std::pair<std::string, std::string>> meta = {
      {"general.name", "LoRA adapter trained by slm finetune"},
      {"training.base_file", std::filesystem::path(o.model_path).filename().string()},
      {"training.base_hash", "fnv1a64:" + hex(file_hash(o.model_path))},
      {"training.data_file", std::filesystem::path(o.data_path).filename().string()},
      {"training.data_hash", "fnv1a64:" + hex(data.hash)},
      {"training.data_format", train::data_format_name(data.format)},
      {"training.steps", std::to_string(result.steps)},
      {"training.final_loss", std::to_string(result.final_loss)},
  };
  if (result.has_val) meta.push_back({"training.final_val_loss", std::to_string(result.final_val_loss)});
  write_lora_adapter(o.out_path, model->config().arch, o.alpha, lora.export_pairs(), meta);
  if (!o.merge_path.empty()) {
    auto adapter = LoraAdapter::load(o.out_path, *model);
    LoraSet set{{{adapter.get(), 1.0f}}};
    LoraMergeOptions mo;
    mo.n_threads = pool.size();
    merge_lora(*model, set, o.merge_path, mo);
  }
  return result;
}

}  // namespace slm

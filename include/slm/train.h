// Fine-tuning: a LoRA adapter trained on the GGUF file the user runs, the base frozen in its
// own (possibly quantized) type. AdamW with bias correction, linear warm-up then cosine decay,
// gradient clipping, deterministic for a given seed and thread count; checkpoints that resume
// bit for bit. The result is an adapter in llama.cpp's format (see slm/adapter.h).
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace slm {

struct FinetuneOptions {
  std::string model_path;       // base GGUF
  std::string data_path;        // training JSONL
  std::string val_path;         // validation JSONL ("" = none)
  std::string out_path;         // adapter written at the end (and on interruption)
  std::string chat_template;    // for messages data: a template file instead of the model's
  int rank = 8;
  float alpha = 16;
  std::vector<std::string> targets;  // matrix kinds (attn_q, ffn_down ...); empty = attention + FFN
  // Peak learning rate; 0 = by the model's size: 2e-4 (what LoRA on 0.1–8B models wants) for
  // 100M parameters and more, 2e-4·√(1e8/params) below (capped at 50×: a 260K-parameter model
  // gets 3.9e-3), since tiny models need far larger steps.
  float lr = 0;
  int epochs = 1;
  int steps = 0;       // > 0: exactly this many optimizer steps (epochs then only set the data order)
  int batch = 1;       // rows per micro-batch
  int grad_accum = 1;  // micro-batches per optimizer step
  int n_ctx = 512;     // tokens per row (longer examples are split)
  int warmup = 0;      // warm-up steps
  float weight_decay = 0;
  float clip = 1.0f;   // global gradient-norm clip
  bool pack = true;    // several short examples per row
  uint64_t seed = 42;
  int n_threads = 0;
  int val_every = 0;   // validation every N steps (0: only at the start and the end)
  int save_every = 0;  // checkpoint every N steps to checkpoint_path
  std::string checkpoint_path;  // default: out_path + ".ckpt"
  std::string resume_path;      // continue from this checkpoint
  std::string merge_path;       // also write the base with the adapter merged in
};

struct FinetuneProgress {
  int step = 0, total_steps = 0, epoch = 0;
  double loss = 0, loss_smoothed = 0, lr = 0, grad_norm = 0;
  double tokens_per_s = 0, elapsed_s = 0, eta_s = 0;
  uint64_t peak_rss_bytes = 0;
  bool has_val = false;
  double val_loss = 0, val_ppl = 0;
};

struct FinetuneResult {
  int steps = 0;
  double lr = 0;  // the peak learning rate used
  bool interrupted = false;
  double final_loss = 0;
  bool has_val = false;
  double base_val_loss = 0, final_val_loss = 0;  // perplexity = exp(loss)
  size_t n_train_rows = 0, n_parameters = 0;
  double tokens_per_s = 0;
};

// Trains and writes the adapter. progress is called after every step (and after each
// validation); a set *stop ends the run cleanly after the current step, writing the adapter
// so far. Throws slm::Error for bad options or data, naming the flag or the line.
FinetuneResult finetune(const FinetuneOptions& options, const std::function<void(const FinetuneProgress&)>& progress,
                        const std::atomic<bool>* stop = nullptr);

}  // namespace slm

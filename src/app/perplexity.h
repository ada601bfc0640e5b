// Perplexity and KL divergence, by llama-perplexity's method so that the numbers compare:
// the whole text tokenized once (BOS as the model adds it), cut into consecutive chunks of
// n_ctx tokens (a tail that does not fill a chunk is dropped), each chunk evaluated from an
// empty context with its first token replaced by BOS where the model uses one, and only the
// second half of each chunk scored (positions n_ctx/2 .. n_ctx−2 predict the next token).
// PPL = exp(mean NLL), with the standard error exp(mean)·σ/√(N−1).
//
// The KL divergence is taken against the base model's log-probabilities stored as llama.cpp
// stores them in its --kl-divergence-base file (see logits_file.h), so a base computed by
// either tool gives both tools the same figures.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace slm {

class Model;
class Tokenizer;
class ThreadPool;
struct LoraSet;

struct PerplexityOptions {
  int n_ctx = 512;
  int max_chunks = -1;               // -1: every whole chunk
  const LoraSet* lora = nullptr;
  const Model* kl_base = nullptr;    // compute the base's log-probabilities in this run
  std::string kl_base_file;          // or read them from llama.cpp's file
  std::string save_logits_file;      // write this run's log-probabilities in that format
};

struct PerplexityResult {
  double ppl = 0, ppl_stderr = 0;
  int n_chunks = 0, n_ctx = 0;
  int64_t tokens_scored = 0;
  std::vector<double> chunk_ppl;     // running PPL after each chunk, as llama-perplexity prints
  bool has_kld = false;
  double kld_mean = 0, kld_stderr = 0, kld_max = 0, kld_p99 = 0, kld_p95 = 0, kld_median = 0;
  double same_top_p = 0;             // percent of scored positions where the top tokens agree
  double rms_dp = 0;                 // RMS of Δp, the change in the probability of the right token, in percent
  double base_ppl = 0, ln_ppl_ratio = 0;
  double seconds = 0;
};

// on_chunk(i, n_chunks, running_ppl) after each chunk.
PerplexityResult perplexity(const Model& model, const Tokenizer& tok, ThreadPool& pool, const std::string& text,
                            const PerplexityOptions& options,
                            const std::function<void(int, int, double)>& on_chunk = nullptr);

}  // namespace slm

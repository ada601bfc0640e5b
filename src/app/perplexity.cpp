#include "app/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

#include "model/config.h"
#include "slm/error.h"
#include "slm/model.h"
#include "slm/tokenizer.h"

namespace slm {

namespace {

// llama.cpp's --kl-divergence-base file (tools/perplexity/perplexity.cpp, commit 34af94cd):
//   "_logits_"                 8 bytes
//   n_ctx                      uint32
//   n_vocab, n_chunk           int32, int32
//   tokens                     int32 [n_chunk · n_ctx], the text's tokens as tokenized (the
//                              BOS that replaces each chunk's first token is not stored)
//   per chunk, per scored position (n_ctx − 1 − n_ctx/2 of them): nv = 2·⌈n_vocab/2⌉ + 4
//   uint16 values: two floats (scale, min_log_prob) in the first four, then for each token
//   round((logit − min_logit) / scale), where min_logit = max(min logit, max logit − 16) and
//   scale = (max_logit − min_logit) / 65535; log p = scale·q + min_log_prob.
constexpr char kMagic[8] = {'_', 'l', 'o', 'g', 'i', 't', 's', '_'};

int nv_of(int n_vocab) { return 2 * ((n_vocab + 1) / 2) + 4; }

int nearest_int(float f) {  // round half to even through the float mantissa, as llama.cpp does
  float v = f + 12582912.f;
  int i;
  std::memcpy(&i, &v, sizeof i);
  return (i & 0x007fffff) - 0x00400000;
}

// Quantized log-probabilities of one row, and its NLL for `target`.
double encode_log_probs(const float* logits, int n_vocab, int target, uint16_t* out) {
  float max_logit = logits[0], min_logit = logits[0];
  for (int i = 1; i < n_vocab; ++i) max_logit = std::max(max_logit, logits[i]), min_logit = std::min(min_logit, logits[i]);
  min_logit = std::max(min_logit, max_logit - 16);
  double sum_exp = 0;
  for (int i = 0; i < n_vocab; ++i) sum_exp += std::exp(logits[i] - max_logit);
  const float log_sum_exp = float(std::log(sum_exp));
  const float min_log_prob = min_logit - max_logit - log_sum_exp;
  const float scale = (max_logit - min_logit) / 65535.f;
  float header[2] = {scale, min_log_prob};
  std::memcpy(out, header, sizeof header);
  uint16_t* q = out + 4;
  if (scale != 0) {
    const float inv = 1 / scale;
    for (int i = 0; i < n_vocab; ++i) q[i] = logits[i] > min_logit ? uint16_t(nearest_int(inv * (logits[i] - min_logit))) : 0;
  } else {
    std::memset(q, 0, size_t(n_vocab) * sizeof(uint16_t));
  }
  return max_logit + log_sum_exp - logits[target];
}

struct KldSums {
  double nll = 0, nll2 = 0, nll_base = 0, nll_base2 = 0, nll_nll_base = 0, kld = 0, kld2 = 0;
  double p_diff = 0, p_diff2 = 0, p_diff4 = 0;
  size_t same_top = 0, count = 0;
  std::vector<float> kld_values;
};

// One position against the base's stored log-probabilities (llama.cpp's arithmetic).
void kld_position(const float* logits, int n_vocab, const uint16_t* base, int target, KldSums& k) {
  float max_logit = logits[0];
  int imax = 0;
  for (int i = 1; i < n_vocab; ++i)
    if (logits[i] > max_logit) max_logit = logits[i], imax = i;
  double sum_exp = 0;
  for (int i = 0; i < n_vocab; ++i) sum_exp += std::exp(logits[i] - max_logit);
  const float log_sum_exp = float(std::log(sum_exp));
  float header[2];
  std::memcpy(header, base, sizeof header);
  const float scale = header[0], min_log_prob = header[1];
  const uint16_t* q = base + 4;
  const float nll = max_logit + log_sum_exp - logits[target];
  const float nll_base = -(scale * q[target] + min_log_prob);
  k.nll += nll, k.nll2 += double(nll) * nll;
  k.nll_base += nll_base, k.nll_base2 += double(nll_base) * nll_base;
  k.nll_nll_base += double(nll) * nll_base;
  const float log_z = max_logit + log_sum_exp;
  double sum = 0;
  int imax_base = -1;
  float best = 0;
  for (int i = 0; i < n_vocab; ++i) {
    const float lp = scale * q[i] + min_log_prob;
    if (i == 0 || lp > best) best = lp, imax_base = i;
    if (lp > -16.f) sum += std::exp(lp) * (lp - logits[i] + log_z);
  }
  k.kld += sum, k.kld2 += sum * sum;
  ++k.count;
  k.same_top += imax == imax_base;
  const float p_diff = std::exp(-nll) - std::exp(-nll_base);
  k.p_diff += p_diff;
  const double d2 = double(p_diff) * p_diff;
  k.p_diff2 += d2, k.p_diff4 += d2 * d2;
  k.kld_values.push_back(float(sum));
}

std::pair<double, double> mean_and_uncertainty(double sum, double sum2, size_t count) {
  if (count < 1) return {0, 0};
  const double f = sum / double(count);
  double df = sum2 / double(count) - f * f;
  df = df > 0 && count > 10 ? std::sqrt(df / double(count - 1)) : 0;
  return {f, df};
}

float percentile(const std::vector<float>& sorted, float fraction) {
  if (fraction <= 0) return sorted.front();
  if (fraction >= 1) return sorted.back();
  float p = fraction * float(sorted.size() - 1);
  const size_t ip = size_t(p);
  p -= float(ip);
  return (1 - p) * sorted[ip] + p * sorted[std::min(ip + 1, sorted.size() - 1)];
}

struct BaseFile {
  uint32_t n_ctx = 0;
  int32_t n_vocab = 0, n_chunk = 0;
  std::vector<int32_t> tokens;
  FILE* f = nullptr;
  ~BaseFile() {
    if (f) std::fclose(f);
  }
};

}  // namespace

PerplexityResult perplexity(const Model& model, const Tokenizer& tok, ThreadPool& pool, const std::string& text,
                            const PerplexityOptions& o, const std::function<void(int, int, double)>& on_chunk) {
  const auto t0 = std::chrono::steady_clock::now();
  const int V = model.n_vocab();
  int n_ctx = o.n_ctx;
  std::vector<int32_t> tokens;
  std::unique_ptr<BaseFile> base_file;
  if (!o.kl_base_file.empty()) {
    // The base file carries the tokens: both runs score exactly the same positions.
    base_file = std::make_unique<BaseFile>();
    BaseFile& b = *base_file;
    b.f = std::fopen(o.kl_base_file.c_str(), "rb");
    if (!b.f) throw Error(o.kl_base_file + ": cannot open the base log-probabilities");
    char magic[8];
    if (std::fread(magic, 1, 8, b.f) != 8 || std::memcmp(magic, kMagic, 8) != 0)
      throw Error(o.kl_base_file + ": not a llama.cpp/slm base log-probabilities file (no _logits_ header)");
    if (std::fread(&b.n_ctx, 4, 1, b.f) != 1 || std::fread(&b.n_vocab, 4, 1, b.f) != 1 || std::fread(&b.n_chunk, 4, 1, b.f) != 1)
      throw Error(o.kl_base_file + ": truncated header");
    if (b.n_vocab != V)
      throw Error(o.kl_base_file + ": made with a vocabulary of " + std::to_string(b.n_vocab) + " tokens, the model has " +
                  std::to_string(V));
    if (b.n_ctx < 4 || b.n_ctx > (1u << 20) || b.n_chunk < 1 || b.n_chunk > (1 << 24))
      throw Error(o.kl_base_file + ": implausible context or chunk count");
    b.tokens.resize(size_t(b.n_ctx) * size_t(b.n_chunk));
    if (std::fread(b.tokens.data(), 4, b.tokens.size(), b.f) != b.tokens.size()) throw Error(o.kl_base_file + ": truncated tokens");
    for (int32_t t : b.tokens)
      if (t < 0 || t >= V) throw Error(o.kl_base_file + ": token id out of the vocabulary");
    n_ctx = int(b.n_ctx);
    tokens = b.tokens;
  } else {
    tokens = tok.encode(text, true, false);
  }
  if (n_ctx < 4) throw Error("perplexity: -c must be at least 4");
  int n_chunk = int(tokens.size() / size_t(n_ctx));
  if (o.max_chunks > 0) n_chunk = std::min(n_chunk, o.max_chunks);
  if (n_chunk < 1)
    throw Error("perplexity: the text has " + std::to_string(tokens.size()) + " tokens, fewer than one chunk of " +
                std::to_string(n_ctx) + " (-c)");
  const int first = n_ctx / 2, n_scored = n_ctx - 1 - first, nv = nv_of(V);
  const bool add_bos = tok.add_bos() && tok.bos() >= 0;
  const bool kld = base_file || o.kl_base;

  FILE* save = nullptr;
  std::string save_tmp;
  if (!o.save_logits_file.empty()) {
    save_tmp = o.save_logits_file + ".tmp";
    save = std::fopen(save_tmp.c_str(), "wb");
    if (!save) throw Error(o.save_logits_file + ": cannot write");
    const uint32_t c = uint32_t(n_ctx);
    const int32_t v = V, k = n_chunk;
    std::fwrite(kMagic, 1, 8, save);
    std::fwrite(&c, 4, 1, save);
    std::fwrite(&v, 4, 1, save);
    std::fwrite(&k, 4, 1, save);
    std::fwrite(tokens.data(), 4, size_t(n_chunk) * size_t(n_ctx), save);
  }

  PerplexityResult r;
  r.n_ctx = n_ctx;
  r.n_chunks = n_chunk;
  double nll = 0, nll2 = 0;
  int64_t count = 0;
  KldSums k;
  std::vector<float> logits(size_t(n_ctx) * size_t(V)), base_logits;
  std::vector<uint16_t> rows(size_t(n_scored) * size_t(nv)), base_rows(size_t(n_scored) * size_t(nv));
  if (o.kl_base) base_logits.resize(logits.size());
  try {
    for (int c = 0; c < n_chunk; ++c) {
      std::vector<int32_t> chunk(tokens.begin() + int64_t(c) * n_ctx, tokens.begin() + int64_t(c + 1) * n_ctx);
      if (add_bos) chunk[0] = tok.bos();
      {
        KvCache cache(model.config(), n_ctx);
        model.forward(pool, cache, chunk.data(), n_ctx, 0, logits.data(), true, o.lora);
      }
      if (o.kl_base) {
        KvCache cache(o.kl_base->config(), n_ctx);
        o.kl_base->forward(pool, cache, chunk.data(), n_ctx, 0, base_logits.data(), true);
        for (int j = 0; j < n_scored; ++j)
          encode_log_probs(&base_logits[size_t(first + j) * V], V, tokens[size_t(c) * n_ctx + first + j + 1],
                           &base_rows[size_t(j) * nv]);
      } else if (base_file) {
        if (std::fread(base_rows.data(), sizeof(uint16_t), base_rows.size(), base_file->f) != base_rows.size())
          throw Error(o.kl_base_file + ": truncated at chunk " + std::to_string(c + 1));
      }
      for (int j = 0; j < n_scored; ++j) {
        const float* row = &logits[size_t(first + j) * V];
        const int target = tokens[size_t(c) * n_ctx + first + j + 1];
        if (kld) {
          kld_position(row, V, &base_rows[size_t(j) * nv], target, k);
          if (save) encode_log_probs(row, V, target, &rows[size_t(j) * nv]);
        } else {
          const double v = save ? encode_log_probs(row, V, target, &rows[size_t(j) * nv]) : [&] {
            float mx = row[0];
            for (int i = 1; i < V; ++i) mx = std::max(mx, row[i]);
            double se = 0;
            for (int i = 0; i < V; ++i) se += std::exp(row[i] - mx);
            return -(double(row[target]) - mx - std::log(se));
          }();
          nll += v, nll2 += v * v;
        }
        ++count;
      }
      if (save) std::fwrite(rows.data(), sizeof(uint16_t), rows.size(), save);
      const double running = kld ? std::exp(k.nll / double(k.count)) : std::exp(nll / double(count));
      r.chunk_ppl.push_back(running);
      if (on_chunk) on_chunk(c + 1, n_chunk, running);
    }
  } catch (...) {
    if (save) {
      std::fclose(save);
      std::remove(save_tmp.c_str());
    }
    throw;
  }
  if (save) {
    if (std::fclose(save) != 0 || std::rename(save_tmp.c_str(), o.save_logits_file.c_str()) != 0)
      throw Error(o.save_logits_file + ": write failed");
  }
  r.tokens_scored = count;
  if (kld) {
    const auto lp = mean_and_uncertainty(k.nll, k.nll2, k.count);
    r.ppl = std::exp(lp.first);
    r.ppl_stderr = r.ppl * lp.second;
    const auto lb = mean_and_uncertainty(k.nll_base, k.nll_base2, k.count);
    r.base_ppl = std::exp(lb.first);
    r.ln_ppl_ratio = lp.first - lb.first;
    const auto kl = mean_and_uncertainty(k.kld, k.kld2, k.count);
    r.has_kld = true;
    r.kld_mean = kl.first;
    r.kld_stderr = kl.second;
    std::sort(k.kld_values.begin(), k.kld_values.end());
    const size_t n = k.kld_values.size();
    r.kld_max = k.kld_values.back();
    r.kld_median = n % 2 == 0 ? 0.5 * (k.kld_values[n / 2] + k.kld_values[n / 2 - 1]) : k.kld_values[n / 2];
    r.kld_p99 = percentile(k.kld_values, 0.99f);
    r.kld_p95 = percentile(k.kld_values, 0.95f);
    r.same_top_p = 100.0 * double(k.same_top) / double(k.count);
    r.rms_dp = 100.0 * std::sqrt(mean_and_uncertainty(k.p_diff2, k.p_diff4, k.count).first);
  } else {
    // llama-perplexity's final estimate: exp(mean) ± exp(mean)·√(var/(N−1)).
    const double mean = nll / double(count);
    double var = nll2 / double(count) - mean * mean;
    r.ppl = std::exp(mean);
    r.ppl_stderr = var > 0 ? std::sqrt(var / double(count - 1)) * r.ppl : 0;
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace slm

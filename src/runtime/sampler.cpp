#include "slm/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <string>
#include <unordered_map>

#include "slm/error.h"

namespace slm {

namespace {
std::string num(float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}
}  // namespace

void SamplerParams::validate() const {
  auto bad = [](const std::string& what) { throw Error(what); };
  if (!(temp >= 0) || std::isinf(temp)) bad("temperature must be >= 0, got " + num(temp));
  if (!(top_p >= 0 && top_p <= 1)) bad("top-p must be in [0, 1], got " + num(top_p));
  if (!(min_p >= 0 && min_p <= 1)) bad("min-p must be in [0, 1], got " + num(min_p));
  if (!(repeat_penalty > 0) || std::isinf(repeat_penalty))
    bad("repeat penalty must be > 0, got " + num(repeat_penalty));
  if (repeat_last_n < 0) bad("repeat-last-n must be >= 0, got " + std::to_string(repeat_last_n));
  if (!std::isfinite(presence_penalty)) bad("presence penalty must be finite");
  if (!std::isfinite(frequency_penalty)) bad("frequency penalty must be finite");
}

Sampler::Sampler(const SamplerParams& params) : params_(params), rng_(params.seed) { params_.validate(); }

void Sampler::reset() {
  history_.clear();
  rng_.seed(params_.seed);
}

void Sampler::accept(int32_t token) {
  if (params_.repeat_last_n <= 0) return;
  history_.push_back(token);
  while (static_cast<int>(history_.size()) > params_.repeat_last_n) history_.pop_front();
}

void Sampler::apply_penalties(std::vector<float>& logits) const {
  const SamplerParams& p = params_;
  if (history_.empty() ||
      (p.repeat_penalty == 1.0f && p.presence_penalty == 0.0f && p.frequency_penalty == 0.0f))
    return;
  std::unordered_map<int32_t, int> count;
  for (int32_t t : history_) ++count[t];
  for (const auto& [t, c] : count) {
    if (t < 0 || t >= static_cast<int32_t>(logits.size())) continue;
    float& l = logits[t];
    // Repetition penalty pushes a seen token's logit towards "less likely" whatever its sign.
    l = l > 0 ? l / p.repeat_penalty : l * p.repeat_penalty;
    l -= c * p.frequency_penalty + (c > 0 ? p.presence_penalty : 0.0f);
  }
}

std::vector<TokenProb> Sampler::distribution(const float* logits_in, int n_vocab) const {
  if (n_vocab <= 0) throw Error("sampler: empty logits");
  std::vector<float> logits(logits_in, logits_in + n_vocab);
  for (const auto& [id, bias] : params_.logit_bias)
    if (id >= 0 && id < n_vocab) logits[size_t(id)] += bias;
  apply_penalties(logits);
  const SamplerParams& p = params_;

  if (p.temp <= 0.0f) {
    int best = 0;
    for (int i = 1; i < n_vocab; ++i)
      if (logits[i] > logits[best]) best = i;
    return {{best, 1.0f}};
  }

  // Candidates sorted by logit, highest first (ties: lower id first).
  std::vector<int32_t> ids(n_vocab);
  std::iota(ids.begin(), ids.end(), 0);
  auto by_logit = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  size_t keep = n_vocab;
  if (p.top_k > 0 && p.top_k < n_vocab) {
    keep = p.top_k;
    std::partial_sort(ids.begin(), ids.begin() + keep, ids.end(), by_logit);
  } else {
    std::sort(ids.begin(), ids.end(), by_logit);
  }
  ids.resize(keep);

  // Softmax of the candidates at temperature 1 (top-p and min-p look at these).
  auto probs_of = [&](float temp) {
    std::vector<float> pr(ids.size());
    const float mx = logits[ids[0]];
    double sum = 0;
    for (size_t i = 0; i < ids.size(); ++i) sum += pr[i] = std::exp((logits[ids[i]] - mx) / temp);
    for (float& x : pr) x = static_cast<float>(x / sum);
    return pr;
  };

  if (p.top_p < 1.0f) {
    std::vector<float> pr = probs_of(1.0f);
    double cum = 0;
    size_t n = 0;
    while (n < pr.size()) {
      cum += pr[n++];
      if (cum >= p.top_p) break;
    }
    ids.resize(std::max<size_t>(1, n));
  }
  if (p.min_p > 0.0f) {
    std::vector<float> pr = probs_of(1.0f);
    const float threshold = p.min_p * pr[0];
    size_t n = 0;
    while (n < pr.size() && pr[n] >= threshold) ++n;
    ids.resize(std::max<size_t>(1, n));
  }

  std::vector<float> pr = probs_of(p.temp);
  std::vector<TokenProb> out(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) out[i] = {ids[i], pr[i]};
  return out;
}

void Sampler::accept_generated(int32_t token) {
  accept(token);
  if (filter_) filter_->accept(token);
}

int32_t Sampler::sample(const float* logits, int n_vocab) {
  const int32_t first = draw(logits, n_vocab);
  if (!filter_ || filter_->allows(first)) return first;
  masked_.assign(logits, logits + n_vocab);
  filter_->mask(masked_.data(), n_vocab);
  bool any = false;
  for (float l : masked_) any = any || l != -std::numeric_limits<float>::infinity();
  if (!any) throw Error("grammar: no token of the vocabulary can continue the output");
  // logit_bias may have pushed every allowed token to -inf as well: fall back to the
  // allowed tokens alone rather than draw a refused one.
  const int32_t t = draw(masked_.data(), n_vocab);
  if (filter_->allows(t)) return t;
  for (int i = 0; i < n_vocab; ++i)
    if (masked_[size_t(i)] != -std::numeric_limits<float>::infinity()) return i;
  return t;
}

int32_t Sampler::draw(const float* logits, int n_vocab) {
  std::vector<TokenProb> d = distribution(logits, n_vocab);
  if (d.size() == 1) return d[0].id;
  // A uniform double in [0, 1) from 53 random bits: the same on every platform.
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
  double cum = 0;
  for (const TokenProb& c : d) {
    cum += c.p;
    if (u < cum) return c.id;
  }
  return d.back().id;
}

}  // namespace slm

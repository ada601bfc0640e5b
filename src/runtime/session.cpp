#include "slm/session.h"

#include <algorithm>

#include "model/config.h"
#include "slm/error.h"

namespace slm {

namespace {
constexpr int kMaxChunk = 512;  // tokens per forward pass when evaluating a long prompt
}  // namespace

int default_context(const Model& model) { return std::min(model.config().n_ctx_train, 4096); }

Session::Session(const Model& model, ThreadPool& pool, int n_ctx, GgmlType kv_type)
    : Session(model, pool, n_ctx, kv_type, kv_type) {}

Session::Session(const Model& model, ThreadPool& pool, int n_ctx, GgmlType k_type, GgmlType v_type)
    : model_(model), pool_(pool), cache_(model.config(), n_ctx > 0 ? n_ctx : default_context(model), k_type, v_type) {}

const std::vector<float>& Session::eval(const std::vector<int32_t>& tokens, bool all_logits) {
  const int n = static_cast<int>(tokens.size());
  if (n == 0) throw Error("eval: no tokens");
  if (int64_t(n_past_) + n > n_ctx()) {
    if (n_past_ == 0)
      throw Error("prompt of " + std::to_string(n) + " tokens is longer than the context of " +
                  std::to_string(n_ctx()) + " tokens");
    throw Error("context full: " + std::to_string(n_past_) + " + " + std::to_string(n) +
                " tokens exceed the context of " + std::to_string(n_ctx()));
  }
  // Long prompts go through in chunks: the results are the same (each token attends through
  // the cache) and the activation buffers stay bounded.
  const int V = model_.n_vocab();
  logits_.resize(size_t(all_logits ? n : 1) * V);
  for (int done = 0; done < n;) {
    const int m = std::min(n - done, kMaxChunk);
    const bool last = done + m == n;
    float* out = all_logits ? logits_.data() + size_t(done) * V : logits_.data();
    if (all_logits || last) {
      model_.forward(pool_, cache_, tokens.data() + done, m, n_past_, out, all_logits, lora_);
    } else {
      std::vector<float> discard(V);
      model_.forward(pool_, cache_, tokens.data() + done, m, n_past_, discard.data(), false, lora_);
    }
    n_past_ += m;
    done += m;
  }
  return logits_;
}

void Session::truncate(int n) {
  if (n < 0 || n > n_past_) throw Error("truncate: " + std::to_string(n) + " is not in 0.." + std::to_string(n_past_));
  n_past_ = n;
}

void Session::shift(int n_keep, int n_discard) {
  model_.shift_cache(cache_, n_keep, n_discard, n_past_);
  n_past_ -= n_discard;
}

}  // namespace slm

namespace slm {

void Session::restore(int n_past, std::vector<float> logits) {
  if (n_past < 0 || n_past > n_ctx())
    throw Error("restore: position " + std::to_string(n_past) + " is not in 0.." + std::to_string(n_ctx()));
  if (!logits.empty() && logits.size() % static_cast<size_t>(model_.n_vocab()) != 0)
    throw Error("restore: logits are not a multiple of the vocabulary size");
  n_past_ = n_past;
  logits_ = std::move(logits);
}

}  // namespace slm

#include "grammar/token_constraint.h"

#include <algorithm>
#include <cmath>

#include "slm/error.h"

namespace slm::grammar {

// Cached masks, in bytes (a 128k vocabulary's mask is 16 KiB, so about 1000 states).
static constexpr size_t kMaskCacheBytes = 16 << 20;

TokenConstraint::TokenConstraint(std::shared_ptr<const Grammar> grammar,
                                 std::shared_ptr<const VocabIndex> vocab)
    : grammar_(std::move(grammar)), vocab_(std::move(vocab)), current_(grammar_) {
  state_ = table_.intern(current_);
  state_at_depth_.resize(vocab_->max_depth() + 1);
}

void TokenConstraint::reset() {
  current_ = Matcher(grammar_);
  ended_ = false;
  state_ = table_.intern(current_);
}

void TokenConstraint::trim_caches() const {
  const size_t mask_bytes = (static_cast<size_t>(vocab_->n_vocab()) + 63) / 64 * 8;
  if (mask_cache_.size() * mask_bytes > kMaskCacheBytes) mask_cache_.clear();
  if (table_.over_budget()) {
    table_.clear();
    mask_cache_.clear();  // keyed by state ids, which are gone
    state_ = table_.intern(current_);
  }
}

bool TokenConstraint::allows(int32_t id) const {
  if (ended_ || id < 0 || id >= vocab_->n_vocab()) return false;
  if (vocab_->is_eog(id)) return table_.accepting(state_);
  if (!vocab_->is_text(id)) return false;
  int32_t state = state_;
  for (char c : vocab_->piece(id)) {
    state = table_.step(state, static_cast<uint8_t>(c));
    if (state == StateTable::kDead) return false;
  }
  return true;
}

void TokenConstraint::accept(int32_t id) {
  trim_caches();
  if (!allows(id)) {
    std::string what = "grammar: token " + std::to_string(id);
    if (id >= 0 && id < vocab_->n_vocab() && vocab_->is_text(id)) what += " '" + vocab_->piece(id) + "'";
    throw Error(what + " is not allowed here");
  }
  if (vocab_->is_eog(id)) {
    ended_ = true;
    return;
  }
  int32_t state = state_;
  for (char c : vocab_->piece(id)) state = table_.step(state, static_cast<uint8_t>(c));
  state_ = state;
  current_ = table_.matcher(state);
}

std::vector<uint64_t> TokenConstraint::compute_allowed_bits() const {
  const VocabIndex& vocab = *vocab_;
  std::vector<uint64_t> bits((static_cast<size_t>(vocab.n_vocab()) + 63) / 64, 0);
  if (ended_) return bits;
  const uint8_t* byte = vocab.node_byte().data();
  const uint16_t* depth = vocab.node_depth().data();
  const uint32_t* end = vocab.node_end().data();
  const uint32_t* offset = vocab.token_offset().data();
  const int32_t* tokens = vocab.tokens_at().data();
  int32_t* state_at = state_at_depth_.data();
  state_at[0] = state_;
  const size_t nodes = vocab.node_count();
  for (size_t i = 1; i < nodes;) {
    const int32_t state = table_.step(state_at[depth[i] - 1], byte[i]);
    if (state == StateTable::kDead) {
      i = end[i];  // no token under this prefix can match
      continue;
    }
    state_at[depth[i]] = state;
    for (uint32_t k = offset[i]; k < offset[i + 1]; ++k)
      bits[static_cast<uint32_t>(tokens[k]) >> 6] |= uint64_t{1} << (tokens[k] & 63);
    ++i;
  }
  if (table_.accepting(state_))
    for (int32_t id : vocab.eog_tokens()) bits[static_cast<uint32_t>(id) >> 6] |= uint64_t{1} << (id & 63);
  return bits;
}

const std::vector<uint64_t>& TokenConstraint::allowed_bits() const {
  trim_caches();
  const int32_t key = ended_ ? -1 : state_;
  auto it = mask_cache_.find(key);
  if (it == mask_cache_.end()) it = mask_cache_.emplace(key, compute_allowed_bits()).first;
  return it->second;
}

void TokenConstraint::mask(float* logits, int n_vocab) const {
  const std::vector<uint64_t>& bits = allowed_bits();
  const int known = std::min(n_vocab, vocab_->n_vocab());
  for (int word = 0; word * 64 < known; ++word) {
    const uint64_t allowed = bits[word];
    const int base = word * 64;
    const int count = std::min(64, known - base);
    if (allowed == ~uint64_t{0}) continue;
    if (allowed == 0) {  // the common case in a strict state: a plain (vectorized) fill
      std::fill(logits + base, logits + base + count, -INFINITY);
      continue;
    }
    uint64_t disallowed = ~allowed;
    if (count < 64) disallowed &= (uint64_t{1} << count) - 1;
    if (__builtin_popcountll(disallowed) <= 16) {  // few: visit just those
      for (; disallowed; disallowed &= disallowed - 1) logits[base + __builtin_ctzll(disallowed)] = -INFINITY;
      continue;
    }
    for (int j = 0; j < count; ++j) {  // many: branch-free select
      const float v = logits[base + j];
      logits[base + j] = ((allowed >> j) & 1) ? v : -INFINITY;
    }
  }
  for (int id = known; id < n_vocab; ++id) logits[id] = -INFINITY;
}

std::vector<int32_t> TokenConstraint::allowed_tokens() const {
  const std::vector<uint64_t>& bits = allowed_bits();
  std::vector<int32_t> out;
  for (size_t word = 0; word < bits.size(); ++word)
    for (uint64_t b = bits[word]; b; b &= b - 1)
      out.push_back(static_cast<int32_t>(word * 64 + __builtin_ctzll(b)));
  return out;
}

}  // namespace slm::grammar

#include "grammar/state_table.h"

#include "slm/error.h"

namespace slm::grammar {

size_t StateTable::KeyHash::operator()(const std::vector<uint32_t>& key) const {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a over the words
  for (uint32_t v : key) {
    h ^= v;
    h *= 0x100000001b3ull;
  }
  return static_cast<size_t>(h ^ (h >> 29));
}

int32_t StateTable::intern(const Matcher& matcher) {
  key_.clear();
  matcher.append_key(key_);
  auto it = ids_.find(key_);
  if (it != ids_.end()) return it->second;
  if (states_.size() >= 4 * max_states_)
    throw Error("grammar: over " + std::to_string(4 * max_states_) +
                " distinct automaton states without repeating; the grammar is too irregular");
  const int32_t id = static_cast<int32_t>(states_.size());
  states_.push_back({matcher, matcher.accepting(), matcher.can_continue()});
  next_.resize(next_.size() + 256, kUnknown);
  ids_.emplace(key_, id);
  return id;
}

int32_t StateTable::compute_step(int32_t state, uint8_t byte) {
  Matcher next = states_[state].matcher;
  const int32_t id = next.advance_byte(byte) ? intern(next) : kDead;
  next_[static_cast<size_t>(state) * 256 + byte] = id;
  return id;
}

void StateTable::clear() {
  states_.clear();
  next_.clear();
  ids_.clear();
}

}  // namespace slm::grammar

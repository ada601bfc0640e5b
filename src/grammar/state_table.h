// StateTable: the Matcher made deterministic and lazy. Each distinct Matcher state gets a
// small id, and each (state, byte) transition is computed once and then read from a table,
// so walking token bytes costs one array read per byte once the states have been seen.
// A cache: it is cleared when it grows past its budget (see TokenConstraint).
#pragma once
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "grammar/matcher.h"

namespace slm::grammar {

class StateTable {
 public:
  static constexpr int32_t kDead = -1;

  explicit StateTable(size_t max_states = 32768) : max_states_(max_states) {}

  // The id of this state, added when new. Throws slm::Error when the table has grown to
  // four times its budget without being cleared (a grammar whose states never repeat).
  int32_t intern(const Matcher& matcher);

  // The state after one more byte, or kDead.
  int32_t step(int32_t state, uint8_t byte) {
    const int32_t next = next_[static_cast<size_t>(state) * 256 + byte];
    return next != kUnknown ? next : compute_step(state, byte);
  }

  bool accepting(int32_t state) const { return states_[state].accepting; }
  bool can_continue(int32_t state) const { return states_[state].can_continue; }
  const Matcher& matcher(int32_t state) const { return states_[state].matcher; }

  size_t size() const { return states_.size(); }
  bool over_budget() const { return states_.size() > max_states_; }
  void clear();

 private:
  static constexpr int32_t kUnknown = -2;
  struct KeyHash {
    size_t operator()(const std::vector<uint32_t>& key) const;
  };
  struct State {
    Matcher matcher;
    bool accepting;
    bool can_continue;
  };
  int32_t compute_step(int32_t state, uint8_t byte);

  size_t max_states_;
  std::vector<State> states_;
  std::vector<int32_t> next_;  // 256 per state
  std::unordered_map<std::vector<uint32_t>, int32_t, KeyHash> ids_;
  std::vector<uint32_t> key_;  // scratch
};

}  // namespace slm::grammar

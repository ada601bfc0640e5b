// MergeHeap: the priority queue of candidate merges. A 4-ary min-heap over a 64-bit key
// (priority in the high half, left symbol index in the low half, so equal priorities pop
// leftmost first). Four children share one cache line of 16-byte entries, and the tree is
// half as deep as a binary heap: this is what keeps 1 MB of one repeated character (a single
// million-symbol word) fast.
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

namespace slm {

struct MergeCandidate {
  uint64_t key;    // (priority << 32) | left; smaller pops first
  uint32_t size;   // byte length of the pair when queued: tells a stale entry from a live one
  int32_t merged;  // BPE: token the merge produces (SPM: unused)
  int32_t left() const { return static_cast<int32_t>(key & 0xffffffffu); }
};

// SPM priority: higher score first, as an unsigned that sorts ascending.
inline uint32_t score_priority(float score) {
  uint32_t b;
  std::memcpy(&b, &score, sizeof b);
  const uint32_t ascending = (b & 0x80000000u) ? ~b : (b | 0x80000000u);  // float order
  return ~ascending;
}

class MergeHeap {
 public:
  void clear() { v_.clear(); }
  bool empty() const { return v_.empty(); }
  // Adds without ordering; call heapify() before the first pop.
  void add(const MergeCandidate& c) { v_.push_back(c); }
  void heapify() {
    if (v_.size() < 2) return;
    for (size_t i = (v_.size() - 2) / 4 + 1; i-- > 0;) sift_down(i);
  }
  void push(const MergeCandidate& c) {
    v_.push_back(c);
    size_t i = v_.size() - 1;
    while (i > 0) {
      const size_t parent = (i - 1) / 4;
      if (v_[parent].key <= c.key) break;
      v_[i] = v_[parent];
      i = parent;
    }
    v_[i] = c;
  }
  MergeCandidate pop() {
    const MergeCandidate top = v_[0];
    v_[0] = v_.back();
    v_.pop_back();
    if (!v_.empty()) sift_down(0);
    return top;
  }

 private:
  void sift_down(size_t i) {
    const MergeCandidate c = v_[i];
    const size_t n = v_.size();
    while (true) {
      const size_t first = 4 * i + 1;
      if (first >= n) break;
      size_t best = first;
      const size_t last = first + 4 < n ? first + 4 : n;
      for (size_t k = first + 1; k < last; ++k)
        if (v_[k].key < v_[best].key) best = k;
      if (c.key <= v_[best].key) break;
      v_[i] = v_[best];
      i = best;
    }
    v_[i] = c;
  }
  std::vector<MergeCandidate> v_;
};

}  // namespace slm

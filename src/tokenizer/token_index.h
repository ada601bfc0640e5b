// TokenIndex: token text -> id, an open-addressing hash table over the vocabulary's own
// strings. Lookups are the inner loop of both BPE variants; a flat table of (hash, id) slots
// costs one cache miss for a miss and two for a hit, where std::unordered_map costs three or
// four (bucket, node, key string).
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace slm {

// 64-bit hash of a short byte string: 8-byte words folded with multiply-xorshift.
inline uint64_t text_hash(std::string_view s) {
  const uint64_t k = 0x9E3779B97F4A7C15ull;
  uint64_t h = 0x243F6A8885A308D3ull ^ (s.size() * k);
  const char* p = s.data();
  size_t n = s.size();
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * k;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  uint64_t w = 0;
  std::memcpy(&w, p, n);
  h = (h ^ w) * k;
  h ^= h >> 32;
  h *= 0xD6E8FEB86659FD93ull;
  h ^= h >> 32;
  return h;
}

class TokenIndex {
 public:
  // The strings of `texts` must outlive the index and not change; the vector itself may be
  // moved (its buffer, which the index points at, stays). Later duplicates win.
  void build(const std::vector<std::string>& texts) {
    texts_ = texts.data();
    size_t cap = 16;
    while (cap < texts.size() * 2) cap <<= 1;
    mask_ = cap - 1;
    slots_.assign(cap, Slot{0, -1});
    for (size_t i = 0; i < texts.size(); ++i) insert(static_cast<int32_t>(i));
  }

  int32_t find(std::string_view s) const {
    if (slots_.empty()) return -1;
    const uint64_t h = text_hash(s);
    const uint32_t tag = static_cast<uint32_t>(h >> 32);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.id < 0) return -1;
      if (slot.tag == tag && texts_[slot.id] == s) return slot.id;
    }
  }

 private:
  struct Slot {
    uint32_t tag;  // high half of the hash
    int32_t id;    // -1: empty
  };
  void insert(int32_t id) {
    const std::string& s = texts_[id];
    const uint64_t h = text_hash(s);
    const uint32_t tag = static_cast<uint32_t>(h >> 32);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      Slot& slot = slots_[i];
      if (slot.id < 0 || (slot.tag == tag && texts_[slot.id] == s)) {
        slot = Slot{tag, id};
        return;
      }
    }
  }
  const std::string* texts_ = nullptr;
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

}  // namespace slm

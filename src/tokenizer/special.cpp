#include "tokenizer/special.h"

#include <algorithm>

namespace slm {

namespace {
bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}
bool always_matched(const Vocab& v, int32_t id) { return v.type[id] == TokenType::UserDefined; }
}  // namespace

SpecialMatcher::SpecialMatcher(const Vocab& vocab) : vocab_(vocab) {
  nodes_.push_back(Node{});
  for (int32_t id = 0; id < vocab.size(); ++id) {
    if (!vocab.is_special_candidate(id)) continue;
    int32_t node = 0;
    for (char ch : vocab.text[id]) {
      const unsigned char c = static_cast<unsigned char>(ch);
      int32_t next = child(node, c);
      if (next < 0) {
        next = static_cast<int32_t>(nodes_.size());
        nodes_.push_back(Node{-1, node});
        edges_.emplace((static_cast<uint64_t>(node) << 8) | c, next);
      }
      node = next;
    }
    // Duplicate texts: keep the id that text lookups give.
    if (nodes_[node].token < 0 || vocab.find(vocab.text[id]) == id) nodes_[node].token = id;
  }
  for (int mode = 0; mode < 2; ++mode) subtree_count_[mode].assign(nodes_.size(), 0);
  for (int32_t n = 1; n < static_cast<int32_t>(nodes_.size()); ++n) {
    const int32_t id = nodes_[n].token;
    if (id < 0) continue;
    const unsigned char first = static_cast<unsigned char>(vocab.text[id][0]);
    for (int mode = 0; mode < 2; ++mode) {
      if (mode == 0 && !always_matched(vocab, id)) continue;
      first_byte_[mode][first] = true;
      for (int32_t a = n; a >= 0; a = nodes_[a].parent) ++subtree_count_[mode][a];
    }
  }
}

void SpecialMatcher::partition(std::string_view text, bool parse_special,
                               std::vector<Fragment>& out) const {
  const int mode = parse_special ? 1 : 0;
  if (text.empty()) return;

  // 1. Which candidate tokens occur anywhere in the text?
  std::vector<int32_t> present;
  if (subtree_count_[mode][0] > 0) {
    std::vector<uint32_t> unseen;  // allocated on the first possible hit only
    std::vector<uint8_t> seen;     // per node: its own token was found
    for (size_t pos = 0; pos < text.size(); ++pos) {
      if (!first_byte_[mode][static_cast<unsigned char>(text[pos])]) continue;
      if (unseen.empty()) {
        unseen = subtree_count_[mode];
        seen.assign(nodes_.size(), 0);
      }
      if (unseen[0] == 0) break;  // every candidate already seen
      int32_t node = 0;
      for (size_t j = pos; j < text.size(); ++j) {
        node = child(node, static_cast<unsigned char>(text[j]));
        if (node < 0 || unseen[node] == 0) break;
        const int32_t id = nodes_[node].token;
        if (id >= 0 && !seen[node] && (mode == 1 || always_matched(vocab_, id))) {
          seen[node] = 1;
          // First sighting of this token: it no longer counts as unseen anywhere above.
          present.push_back(id);
          for (int32_t a = node; a >= 0; a = nodes_[a].parent) --unseen[a];
        }
      }
    }
  }

  // 2. Longest first (ties by id, for a stable order), split the raw fragments.
  std::sort(present.begin(), present.end(), [&](int32_t a, int32_t b) {
    const size_t la = vocab_.text[a].size(), lb = vocab_.text[b].size();
    return la != lb ? la > lb : a < b;
  });
  std::vector<Fragment> frags{Fragment{-1, 0, text.size()}}, next;
  for (int32_t id : present) {
    const std::string& tok = vocab_.text[id];
    next.clear();
    for (const Fragment& f : frags) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t begin = f.begin;
      while (begin < f.end) {
        const std::string_view rest = text.substr(begin, f.end - begin);
        const size_t at = rest.find(tok);
        if (at == std::string_view::npos) break;
        const size_t match = begin + at;
        size_t left_end = match;
        if (vocab_.lstrip[id])
          while (left_end > begin && is_ascii_space(text[left_end - 1])) --left_end;
        if (left_end > begin) next.push_back(Fragment{-1, begin, left_end});
        next.push_back(Fragment{id, match, match + tok.size()});
        begin = match + tok.size();
        if (vocab_.rstrip[id])
          while (begin < f.end && is_ascii_space(text[begin])) ++begin;
      }
      if (begin < f.end) next.push_back(Fragment{-1, begin, f.end});
    }
    frags.swap(next);
  }
  out.insert(out.end(), frags.begin(), frags.end());
}

}  // namespace slm

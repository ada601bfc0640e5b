#include "grammar/matcher.h"

#include <algorithm>
#include <set>

#include "slm/error.h"

namespace slm::grammar {

Matcher::Matcher(std::shared_ptr<const Grammar> grammar) : grammar_(std::move(grammar)) {
  std::vector<Stack> work;
  for (uint32_t start : grammar_->rules[grammar_->root].alternatives) work.push_back({start});
  expand(std::move(work), stacks_, accepting_);
}

void Matcher::expand(std::vector<Stack> work, std::vector<Stack>& frontier, bool& accepting) const {
  const std::vector<Element>& elements = grammar_->elements;
  std::set<Stack> seen(work.begin(), work.end());
  while (!work.empty()) {
    Stack stack = std::move(work.back());
    work.pop_back();
    while (true) {
      if (stack.empty()) {
        accepting = true;
        break;
      }
      const uint32_t pos = stack.back();
      const Element& e = elements[pos];
      if (e.kind == Element::Kind::Chars) {
        frontier.push_back(std::move(stack));
        break;
      }
      if (e.kind == Element::Kind::End) {
        stack.pop_back();
        continue;
      }
      // A call: the return frame goes below the callee, unless nothing follows the call.
      stack.back() = pos + 1;
      if (elements[pos + 1].kind == Element::Kind::End) stack.pop_back();
      if (stack.size() >= kMaxStackDepth) break;  // too deep: this parse is dropped
      const std::vector<uint32_t>& alternatives = grammar_->rules[e.rule].alternatives;
      for (size_t i = 0; i < alternatives.size(); ++i) {
        Stack next = stack;
        next.push_back(alternatives[i]);
        if (seen.insert(next).second) work.push_back(std::move(next));
      }
      if (seen.size() > 4 * kMaxParseStacks)
        throw Error("grammar too ambiguous: over " + std::to_string(kMaxParseStacks) +
                    " ways to parse the input at once");
      break;
    }
  }
  std::sort(frontier.begin(), frontier.end());
  frontier.erase(std::unique(frontier.begin(), frontier.end()), frontier.end());
  if (frontier.size() > kMaxParseStacks)
    throw Error("grammar too ambiguous: over " + std::to_string(kMaxParseStacks) +
                " ways to parse the input at once");
}

bool Matcher::advance(std::string_view bytes) {
  Matcher next = *this;
  for (char c : bytes)
    if (!next.advance_byte(static_cast<uint8_t>(c))) return false;
  *this = std::move(next);
  return true;
}

void Matcher::partial_range(uint32_t& lo, uint32_t& hi) const {
  const uint32_t shift = 6u * partial_remaining_;
  lo = partial_ << shift;
  hi = lo | ((1u << shift) - 1);
  static constexpr uint32_t kMinOfLength[] = {0, 0, 0x80, 0x800, 0x10000};
  static constexpr uint32_t kMaxOfLength[] = {0, 0x7F, 0x7FF, 0xFFFF, kMaxCodePoint};
  lo = std::max(lo, kMinOfLength[partial_length_]);
  hi = std::min(hi, kMaxOfLength[partial_length_]);
  // Surrogates are not characters: only 3-byte sequences from 0xED reach them.
  if (lo >= 0xD800 && lo <= 0xDFFF) lo = 0xE000;
  if (hi >= 0xD800 && hi <= 0xDFFF) hi = 0xD7FF;
}

bool Matcher::advance_byte(uint8_t byte) {
  if (partial_remaining_ == 0) {
    if (byte < 0x80) return advance_code_point(byte);
    uint8_t length;
    if (byte >= 0xC2 && byte <= 0xDF) length = 2;
    else if (byte >= 0xE0 && byte <= 0xEF) length = 3;
    else if (byte >= 0xF0 && byte <= 0xF4) length = 4;
    else return false;
    Matcher next = *this;
    next.partial_length_ = length;
    next.partial_remaining_ = static_cast<uint8_t>(length - 1);
    next.partial_ = byte & (0x7Fu >> length);
    uint32_t lo, hi;
    next.partial_range(lo, hi);
    if (lo > hi) return false;
    // Keep only the parses that can take some character with this prefix.
    std::erase_if(next.stacks_, [&](const Stack& s) { return !grammar_->intersects(s.back(), lo, hi); });
    if (next.stacks_.empty()) return false;
    next.canonicalize_partial(lo, hi);
    *this = std::move(next);
    return true;
  }
  if ((byte & 0xC0) != 0x80) return false;
  if (partial_ == kAnyCharacter) {
    Matcher next = *this;
    if (--next.partial_remaining_ == 0) {
      next.partial_ = 0;
      if (!next.advance_code_point(0, true)) return false;
    }
    *this = std::move(next);
    return true;
  }
  Matcher next = *this;
  next.partial_ = (partial_ << 6) | (byte & 0x3Fu);
  --next.partial_remaining_;
  uint32_t lo, hi;
  next.partial_range(lo, hi);  // rules out overlong forms, surrogates, > U+10FFFF
  if (lo > hi) return false;
  if (next.partial_remaining_ == 0) {
    next.partial_ = 0;
    next.partial_length_ = 0;
    if (!next.advance_code_point(lo)) return false;
  } else {
    std::erase_if(next.stacks_, [&](const Stack& s) { return !grammar_->intersects(s.back(), lo, hi); });
    if (next.stacks_.empty()) return false;
    next.canonicalize_partial(lo, hi);
  }
  *this = std::move(next);
  return true;
}

void Matcher::canonicalize_partial(uint32_t lo, uint32_t hi) {
  // Every continuation must be valid (no overlong / surrogate / too-large restriction left)
  // and every stack must take every character the prefix can become.
  if (hi - lo + 1 != (1u << (6u * partial_remaining_))) return;
  for (const Stack& s : stacks_)
    if (!grammar_->contains(s.back(), lo, hi)) return;
  partial_ = kAnyCharacter;
  partial_length_ = 0;
}

bool Matcher::advance_code_point(uint32_t cp, bool match_all) {
  std::vector<Stack> work;
  for (const Stack& s : stacks_) {
    if (!match_all && !grammar_->matches(s.back(), cp)) continue;
    Stack next = s;
    ++next.back();
    work.push_back(std::move(next));
  }
  if (work.empty()) return false;
  std::vector<Stack> frontier;
  bool accepting = false;
  expand(std::move(work), frontier, accepting);
  if (frontier.empty() && !accepting) return false;
  stacks_ = std::move(frontier);
  accepting_ = accepting;
  return true;
}

void Matcher::append_key(std::vector<uint32_t>& key) const {
  key.push_back(accepting_ ? 1u : 0u);
  key.push_back(partial_);
  key.push_back(static_cast<uint32_t>(partial_remaining_) << 8 | partial_length_);
  key.push_back(static_cast<uint32_t>(stacks_.size()));
  for (const Stack& s : stacks_) {
    key.push_back(static_cast<uint32_t>(s.size()));
    key.insert(key.end(), s.begin(), s.end());
  }
}

}  // namespace slm::grammar

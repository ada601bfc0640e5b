#include "grammar/grammar_builder.h"

#include <algorithm>

#include "slm/error.h"

namespace slm::grammar {

Symbol Symbol::terminal(std::vector<CharRange> ranges) {
  std::sort(ranges.begin(), ranges.end(),
            [](const CharRange& a, const CharRange& b) { return a.lo < b.lo; });
  std::vector<CharRange> merged;
  for (const CharRange& r : ranges) {
    if (!merged.empty() && r.lo <= merged.back().hi + 1)
      merged.back().hi = std::max(merged.back().hi, r.hi);
    else
      merged.push_back(r);
  }
  return Symbol{kTerminal, std::move(merged)};
}

uint32_t GrammarBuilder::named_rule(std::string_view name) {
  auto it = by_name_.find(std::string(name));
  if (it != by_name_.end()) return it->second;
  const uint32_t id = static_cast<uint32_t>(names_.size());
  names_.emplace_back(name);
  defined_.push_back(false);
  bodies_.emplace_back();
  by_name_.emplace(std::string(name), id);
  return id;
}

uint32_t GrammarBuilder::generated_rule(std::string base) {
  // '/' cannot appear in a rule name of the source, so generated names never collide.
  const uint32_t n = ++generated_count_[base];
  const uint32_t id = static_cast<uint32_t>(names_.size());
  names_.push_back(base + "/" + std::to_string(n));
  defined_.push_back(false);
  bodies_.emplace_back();
  return id;
}

void GrammarBuilder::count_symbols(size_t n) {
  symbols_ += n;
  if (symbols_ > kMaxGrammarSymbols)
    throw Error("grammar too large after expanding repetitions (over " +
                std::to_string(kMaxGrammarSymbols) + " symbols)");
}

void GrammarBuilder::define(uint32_t rule, std::vector<Sequence> alternatives) {
  size_t n = alternatives.size();
  for (const Sequence& s : alternatives) {
    n += s.size();
    for (const Symbol& sym : s) n += sym.chars.size();
  }
  count_symbols(n);
  bodies_[rule] = std::move(alternatives);
  defined_[rule] = true;
}

Sequence GrammarBuilder::repeat(const Sequence& item, uint32_t min, uint32_t max,
                                std::string base) {
  Sequence out;
  if (item.empty() || max == 0) return out;
  count_symbols(static_cast<size_t>(min) * item.size());
  for (uint32_t i = 0; i < min; ++i) out.insert(out.end(), item.begin(), item.end());
  if (max == kUnbounded) {
    // star ::= item star | (empty) — the self reference is a tail call, so the matcher's
    // stacks do not grow with the number of repetitions.
    const uint32_t star = generated_rule(base);
    Sequence again = item;
    again.push_back(Symbol::reference(star));
    define(star, {std::move(again), {}});
    out.push_back(Symbol::reference(star));
  } else if (max > min) {
    // opt_k ::= item opt_{k-1} | (empty): at most k more, one rule per count, tail calls.
    uint32_t previous = Symbol::kTerminal;
    for (uint32_t k = 1; k <= max - min; ++k) {
      const uint32_t opt = generated_rule(base);
      Sequence once = item;
      if (previous != Symbol::kTerminal) once.push_back(Symbol::reference(previous));
      define(opt, {std::move(once), {}});
      previous = opt;
    }
    out.push_back(Symbol::reference(previous));
  }
  return out;
}

namespace {

struct StartEdge {
  uint32_t to;
  bool tail;  // the reference is the last symbol: the matcher calls it without a return frame
};

// Strongly connected components (iterative Tarjan): component id per rule.
std::vector<uint32_t> components(const std::vector<std::vector<StartEdge>>& edges) {
  const uint32_t n = static_cast<uint32_t>(edges.size());
  constexpr uint32_t kUnvisited = std::numeric_limits<uint32_t>::max();
  std::vector<uint32_t> index(n, kUnvisited), low(n, 0), component(n, kUnvisited);
  std::vector<bool> on_stack(n, false);
  std::vector<uint32_t> stack;
  std::vector<std::pair<uint32_t, size_t>> call;  // (rule, next edge)
  uint32_t next_index = 0, next_component = 0;
  for (uint32_t start = 0; start < n; ++start) {
    if (index[start] != kUnvisited) continue;
    call.push_back({start, 0});
    while (!call.empty()) {
      auto& [v, e] = call.back();
      if (e == 0 && index[v] == kUnvisited) {
        index[v] = low[v] = next_index++;
        stack.push_back(v);
        on_stack[v] = true;
      }
      if (e < edges[v].size()) {
        const uint32_t w = edges[v][e++].to;
        if (index[w] == kUnvisited) {
          call.push_back({w, 0});
        } else if (on_stack[w]) {
          low[v] = std::min(low[v], index[w]);
        }
        continue;
      }
      if (low[v] == index[v]) {
        uint32_t w;
        do {
          w = stack.back();
          stack.pop_back();
          on_stack[w] = false;
          component[w] = next_component;
        } while (w != v);
        ++next_component;
      }
      const uint32_t done = v;
      call.pop_back();
      if (!call.empty()) low[call.back().first] = std::min(low[call.back().first], low[done]);
    }
  }
  return component;
}

}  // namespace

Grammar GrammarBuilder::finish(uint32_t root) const {
  const uint32_t n = static_cast<uint32_t>(names_.size());
  for (uint32_t r = 0; r < n; ++r)
    if (!defined_[r]) throw Error("grammar: unknown rule '" + names_[r] + "'");

  // Rules that can match the empty string.
  std::vector<bool> nullable(n, false);
  for (bool changed = true; changed;) {
    changed = false;
    for (uint32_t r = 0; r < n; ++r) {
      if (nullable[r]) continue;
      for (const Sequence& alt : bodies_[r]) {
        if (std::all_of(alt.begin(), alt.end(), [&](const Symbol& s) {
              return s.rule != Symbol::kTerminal && nullable[s.rule];
            })) {
          nullable[r] = changed = true;
          break;
        }
      }
    }
  }

  // A rule "starts with" every rule it can reach before consuming input. A cycle of such
  // calls that pushes a return frame makes the matcher's stacks grow forever: left
  // recursion. Cycles made only of tail calls are harmless (the stack stays the same).
  std::vector<std::vector<StartEdge>> edges(n);
  for (uint32_t r = 0; r < n; ++r) {
    for (const Sequence& alt : bodies_[r]) {
      for (size_t i = 0; i < alt.size(); ++i) {
        if (alt[i].rule == Symbol::kTerminal) break;
        edges[r].push_back({alt[i].rule, i + 1 == alt.size()});
        if (!nullable[alt[i].rule]) break;
      }
    }
  }
  const std::vector<uint32_t> component = components(edges);
  for (uint32_t r = 0; r < n; ++r)
    for (const StartEdge& e : edges[r])
      if (!e.tail && component[e.to] == component[r])
        throw Error("grammar: rule '" + names_[r] +
                    "' is left-recursive (it can reach itself without consuming input)");

  Grammar g;
  g.root = root;
  g.rules.resize(n);
  for (uint32_t r = 0; r < n; ++r) {
    g.rules[r].name = names_[r];
    for (const Sequence& alt : bodies_[r]) {
      g.rules[r].alternatives.push_back(static_cast<uint32_t>(g.elements.size()));
      for (const Symbol& s : alt) {
        Element e;
        if (s.rule == Symbol::kTerminal) {
          e.kind = Element::Kind::Chars;
          e.ranges_begin = static_cast<uint32_t>(g.ranges.size());
          g.ranges.insert(g.ranges.end(), s.chars.begin(), s.chars.end());
          e.ranges_end = static_cast<uint32_t>(g.ranges.size());
        } else {
          e.kind = Element::Kind::Rule;
          e.rule = s.rule;
        }
        g.elements.push_back(e);
      }
      g.elements.push_back(Element{});  // End
    }
  }
  return g;
}

}  // namespace slm::grammar

// Python str operations on UTF-8 strings: case mapping, strip, split, title.
#include <algorithm>

#include "chat/interp.h"
#include "chat/utf8.h"
#include "slm/error.h"

namespace slm::jinja {

static bool cased(uint32_t c) { return cp_upper(c) != c || cp_lower(c) != c; }

std::string py_upper(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (uint32_t c : utf8_decode(s)) {
    if (c == 0xdf) {
      out += "SS";
      continue;
    }
    utf8_append(out, cp_upper(c));
  }
  return out;
}

std::string py_lower(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (uint32_t c : utf8_decode(s)) utf8_append(out, cp_lower(c));
  return out;
}

std::string py_capitalize(const std::string& s) {
  auto cps = utf8_decode(s);
  std::string out;
  for (size_t k = 0; k < cps.size(); ++k) utf8_append(out, k == 0 ? cp_upper(cps[k]) : cp_lower(cps[k]));
  return out;
}

// str.title(): a cased character after an uncased one is upper-cased, the rest lower-cased.
std::string py_title(const std::string& s) {
  std::string out;
  bool prev_cased = false;
  for (uint32_t c : utf8_decode(s)) {
    if (!prev_cased && c == 0xdf) out += "Ss";
    else utf8_append(out, prev_cased ? cp_lower(c) : cp_upper(c));
    prev_cased = cased(c);
  }
  return out;
}

std::string py_strip(const std::string& s, const Value* chars, bool left, bool right) {
  auto cps = utf8_decode(s);
  std::vector<uint32_t> set;
  bool ws = !chars || chars->is_none() || chars->is_undefined();
  if (!ws) {
    if (!chars->is_string()) throw Error("strip arg must be None or str");
    set = utf8_decode(chars->s);
  }
  auto strip_it = [&](uint32_t c) {
    return ws ? cp_is_space(c) : std::find(set.begin(), set.end(), c) != set.end();
  };
  size_t a = 0, b = cps.size();
  if (left)
    while (a < b && strip_it(cps[a])) ++a;
  if (right)
    while (b > a && strip_it(cps[b - 1])) --b;
  return utf8_encode(cps, a, b);
}

}  // namespace slm::jinja

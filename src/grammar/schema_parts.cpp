#include "grammar/schema_parts.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace slm::grammar::schema {

const char* const kJsonPrelude = R"(json-value ::= json-object | json-array | json-string | json-number | "true" | "false" | "null"
json-object ::= "{" (json-string ":" json-value ("," json-string ":" json-value)*)? "}"
json-array ::= "[" (json-value ("," json-value)*)? "]"
json-string ::= "\"" json-char* "\""
json-char ::= [^"\\\x00-\x1F] | "\\" (["\\/bfnrt] | "u" json-hex4)
json-key-char ::= [^"\\\x00-\x1F]
json-hex ::= [0-9a-fA-F]
json-hex4 ::= [0-9a-cA-CefEF] json-hex json-hex json-hex | [dD] [0-7] json-hex json-hex | [dD] [89abAB] json-hex json-hex "\\u" [dD] [c-fC-F] json-hex json-hex
json-int ::= "-"? ("0" | [1-9] [0-9]{0,17})
json-number ::= json-int ("." [0-9]{1,15})? ([eE] [-+]? [0-9]{1,2})?
)";

static void append_code_point_escape(std::string& out, uint32_t cp) {
  char buf[16];
  if (cp < 0x80) std::snprintf(buf, sizeof buf, "\\x%02X", cp);
  else if (cp <= 0xFFFF) std::snprintf(buf, sizeof buf, "\\u%04X", cp);
  else std::snprintf(buf, sizeof buf, "\\U%08X", cp);
  out += buf;
}

std::string literal(std::string_view bytes) {
  std::string out = "\"";
  for (char ch : bytes) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (c < 0x20 || c == 0x7F) append_code_point_escape(out, c);
    else out += ch;  // UTF-8 bytes pass through as they are
  }
  return out + "\"";
}

std::string char_class(const std::vector<CharRange>& ranges) {
  std::string out = "[";
  auto put = [&](uint32_t cp) {
    const bool plain = (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
    if (plain) out += static_cast<char>(cp);
    else append_code_point_escape(out, cp);
  };
  for (const CharRange& r : ranges) {
    put(r.lo);
    if (r.hi != r.lo) {
      out += '-';
      put(r.hi);
    }
  }
  return out + "]";
}

// Numbers with exactly lo.size() digits between lo and hi (same length, lo <= hi).
static std::string same_length_range(const std::string& lo, const std::string& hi) {
  if (lo.empty()) return "\"\"";
  if (lo == hi) return literal(lo);
  const size_t rest = lo.size() - 1;
  const std::string lo_rest = lo.substr(1), hi_rest = hi.substr(1);
  const std::string any_rest = rest == 0 ? "" : " [0-9]{" + std::to_string(rest) + "}";
  if (lo[0] == hi[0]) return literal(lo.substr(0, 1)) + " (" + same_length_range(lo_rest, hi_rest) + ")";
  std::vector<std::string> alternatives;
  char first = lo[0], last = hi[0];
  if (lo_rest.find_first_not_of('0') != std::string::npos) {
    alternatives.push_back(literal(lo.substr(0, 1)) + " (" + same_length_range(lo_rest, std::string(rest, '9')) + ")");
    ++first;
  }
  std::string high;
  if (hi_rest.find_first_not_of('9') != std::string::npos) {
    high = literal(hi.substr(0, 1)) + " (" + same_length_range(std::string(rest, '0'), hi_rest) + ")";
    --last;
  }
  if (first <= last) {
    std::string middle = first == last ? literal(std::string(1, first))
                                       : std::string("[") + first + "-" + last + "]";
    alternatives.push_back(middle + any_rest);
  }
  if (!high.empty()) alternatives.push_back(high);
  std::string out;
  for (const std::string& a : alternatives) out += (out.empty() ? "" : " | ") + a;
  return out;
}

// Non-negative integers in [lo, hi].
static std::string unsigned_range(uint64_t lo, uint64_t hi) {
  std::vector<std::string> alternatives;
  uint64_t length_start = 0, length_end = 9;  // the numbers with d digits
  for (int digits = 1; digits <= 19 && length_start <= hi; ++digits) {
    const uint64_t a = std::max(lo, length_start), b = std::min(hi, length_end);
    if (a <= b) alternatives.push_back(same_length_range(std::to_string(a), std::to_string(b)));
    length_start = length_end + 1;
    length_end = length_end * 10 + 9;
  }
  std::string out;
  for (const std::string& a : alternatives) out += (out.empty() ? "" : " | ") + a;
  return out;
}

std::string integer_range(int64_t lo, int64_t hi) {
  lo = std::max(lo, -kMaxJsonInteger);
  hi = std::min(hi, kMaxJsonInteger);
  if (lo > hi) return "";
  std::string out;
  if (lo < 0) {  // negative part: "-" then the magnitudes
    const uint64_t mag_lo = hi < 0 ? static_cast<uint64_t>(-hi) : 1, mag_hi = static_cast<uint64_t>(-lo);
    out = "\"-\" (" + unsigned_range(mag_lo, mag_hi) + ")";
  }
  if (hi >= 0) {
    const std::string positive = unsigned_range(static_cast<uint64_t>(std::max<int64_t>(lo, 0)), hi);
    out += (out.empty() ? "" : " | ") + positive;
  }
  return out;
}

// Integer parts I (no sign) of numbers I or I.F within [lo, hi] for non-negative bounds.
static std::string unsigned_decimal(double lo, bool lo_exclusive, double hi, bool hi_exclusive) {
  const double cap = static_cast<double>(kMaxJsonInteger);
  hi = std::min(hi, cap);
  // Without a fraction: ceil(lo) .. floor(hi), one further in where the bound is exclusive.
  double whole_lo = std::ceil(lo), whole_hi = std::floor(hi);
  if (lo_exclusive && whole_lo == lo) whole_lo += 1;
  if (hi_exclusive && whole_hi == hi) whole_hi -= 1;
  // With a fraction I.F, I < I.F < I+1: I >= whole_lo keeps it above lo, I+1 <= hi below hi.
  const double fraction_hi = std::floor(hi) - 1;
  std::string out;
  if (whole_lo <= whole_hi)
    out = integer_range(static_cast<int64_t>(whole_lo), static_cast<int64_t>(whole_hi));
  if (whole_lo <= fraction_hi) {
    if (!out.empty()) out += " | ";
    out += '(';
    out += integer_range(static_cast<int64_t>(whole_lo), static_cast<int64_t>(fraction_hi));
    out += ") \".\" [0-9]{1,15}";
  }
  // An exclusive whole lower bound L: L.F is above it when F ends in a non-zero digit.
  if (lo_exclusive && std::floor(lo) == lo && lo + 1 <= hi) {
    if (!out.empty()) out += " | ";
    out += integer_range(static_cast<int64_t>(lo), static_cast<int64_t>(lo));
    out += " \".\" [0-9]{0,14} [1-9]";
  }
  return out;
}

std::string bounded_number(const NumberBounds& b) {
  const double cap = static_cast<double>(kMaxJsonInteger);
  const double lo = b.min ? std::max(*b.min, -cap) : -cap;
  const double hi = b.max ? std::min(*b.max, cap) : cap;
  std::string out;
  if (lo < 0 && !(hi < lo)) {
    // -m for magnitudes m in [max(-hi, 0), -lo], m > 0 (zero is the non-negative part's).
    const double mag_lo = hi < 0 ? -hi : 0;
    const bool mag_lo_exclusive = hi < 0 ? b.exclusive_max : true;
    const std::string magnitudes = unsigned_decimal(mag_lo, mag_lo_exclusive, -lo, b.min && b.exclusive_min);
    if (!magnitudes.empty()) out = "\"-\" (" + magnitudes + ")";
  }
  if (hi >= 0) {
    const double from = std::max(lo, 0.0);
    const bool from_exclusive = lo >= 0 && b.exclusive_min;
    const std::string positive = unsigned_decimal(from, from_exclusive, hi, b.max && b.exclusive_max);
    if (!positive.empty()) out += (out.empty() ? "" : " | ") + positive;
  }
  return out;
}

std::string format_content(std::string_view format) {
  const std::string day28 = R"(("0" [1-9] | "1" [0-9] | "2" [0-8]))";
  const std::string day30 = "(" + day28 + R"( | "29" | "30"))";
  const std::string day31 = "(" + day30 + R"( | "31"))";
  const std::string leap_year =
      R"(([1-9] [0-9] ("0" [48] | [2468] [048] | [13579] [26]) | ([2468] [048] | [13579] [26]) "00"))";
  const std::string date = R"(([1-9] [0-9]{3} "-" (("01" | "03" | "05" | "07" | "08" | "10" | "12") "-" )" + day31 +
                           R"( | ("04" | "06" | "09" | "11") "-" )" + day30 + R"( | "02-" )" + day28 + ") | " +
                           leap_year + R"( "-02-29"))";
  const std::string hour = R"(([01] [0-9] | "2" [0-3]))";
  const std::string minute = "[0-5] [0-9]";
  const std::string time = hour + " \":\" " + minute + " \":\" " + minute + R"( ("." [0-9]{1,6})? ("Z" | [-+] )" +
                           hour + " \":\" " + minute + ")";
  if (format == "date") return date;
  if (format == "time") return time;
  if (format == "date-time") return date + " \"T\" " + time;
  if (format == "uuid")
    return R"([0-9a-f]{8} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{12})";
  if (format == "email") {
    const std::string atom = "[a-zA-Z0-9_%+-]{1,16}";
    const std::string label = "[a-zA-Z0-9] ([a-zA-Z0-9-]{0,20} [a-zA-Z0-9])?";
    return atom + " (\".\" " + atom + "){0,3} \"@\" (" + label + " \".\"){1,3} [a-zA-Z]{2,6}";
  }
  if (format == "ipv4") {
    std::string octet = "(";
    octet += integer_range(0, 255);
    octet += ')';
    return octet + " \".\" " + octet + " \".\" " + octet + " \".\" " + octet;
  }
  return "";
}

std::string json_chars_of(const std::vector<CharRange>& ranges) {
  // Characters written as they are: not '"', not '\\', no control characters.
  std::vector<CharRange> raw;
  std::vector<std::string> escaped;
  for (const CharRange& r : ranges) {
    for (uint32_t cp = r.lo; cp <= std::min<uint32_t>(r.hi, 0x5C); ++cp) {
      if (cp < 0x20) {
        static const char* const kShort[] = {"\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005",
                                             "\\u0006", "\\u0007", "\\b", "\\t", "\\n", "\\u000b",
                                             "\\f", "\\r"};
        char buf[16];
        if (cp < 14) std::snprintf(buf, sizeof buf, "%s", kShort[cp]);
        else std::snprintf(buf, sizeof buf, "\\u%04x", cp);
        escaped.push_back(literal(buf));
      } else if (cp == '"') {
        escaped.push_back(literal("\\\""));
      } else if (cp == '\\') {
        escaped.push_back(literal("\\\\"));
      }
    }
    // The rest of the range, minus the characters handled above.
    uint32_t lo = r.lo;
    while (lo <= r.hi) {
      if (lo < 0x20) {
        lo = 0x20;
        continue;
      }
      if (lo == '"' || lo == '\\') {
        ++lo;
        continue;
      }
      uint32_t hi = r.hi;
      if (lo < '"' && hi >= '"') hi = '"' - 1;
      else if (lo < '\\' && hi >= '\\') hi = '\\' - 1;
      raw.push_back({lo, hi});
      if (hi == kMaxCodePoint) break;
      lo = hi + 1;
    }
  }
  std::string out;
  if (!raw.empty()) out = char_class(raw);
  for (const std::string& e : escaped) out += (out.empty() ? "" : " | ") + e;
  return out;
}

}  // namespace slm::grammar::schema

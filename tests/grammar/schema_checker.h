// An independent JSON Schema checker for the tests: the keywords the schemas here use,
// written straight from the specification (draft 2020-12), sharing no code with the
// converter. Returns an empty string when the instance is valid, else what is wrong.
#pragma once
#include <cmath>
#include <regex>
#include <string>

#include <nlohmann/json.hpp>

namespace slm::grammar::test {

using Json = nlohmann::ordered_json;

inline size_t code_points(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

inline bool full_match(const std::string& s, const char* re) { return std::regex_match(s, std::regex(re)); }

inline bool valid_date(const std::string& s) {
  if (!full_match(s, R"(\d{4}-\d{2}-\d{2})")) return false;
  const int y = std::stoi(s.substr(0, 4)), m = std::stoi(s.substr(5, 2)), d = std::stoi(s.substr(8, 2));
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m < 1 || m > 12 || d < 1) return false;
  return d <= kDays[m - 1] + (m == 2 && leap ? 1 : 0);
}

inline bool valid_time(const std::string& s) {
  std::smatch m;
  if (!std::regex_match(s, m, std::regex(R"((\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|z|[+-](\d{2}):(\d{2})))"))) return false;
  if (std::stoi(m[1]) > 23 || std::stoi(m[2]) > 59 || std::stoi(m[3]) > 59) return false;
  if (m[6].matched && (std::stoi(m[6]) > 23 || std::stoi(m[7]) > 59)) return false;
  return true;
}

inline bool valid_format(const std::string& format, const std::string& s) {
  if (format == "date") return valid_date(s);
  if (format == "time") return valid_time(s);
  if (format == "date-time") {
    const size_t t = s.find_first_of("Tt");
    return t == 10 && valid_date(s.substr(0, 10)) && valid_time(s.substr(11));
  }
  if (format == "uuid") return full_match(s, "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}");
  if (format == "email")
    return full_match(s, R"([A-Za-z0-9_%+-]+(\.[A-Za-z0-9_%+-]+)*@([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,})");
  if (format == "ipv4") {
    std::smatch m;
    if (!std::regex_match(s, m, std::regex(R"((\d+)\.(\d+)\.(\d+)\.(\d+))"))) return false;
    for (int i = 1; i <= 4; ++i)
      if (m[i].length() > 3 || std::stoi(m[i]) > 255 || (m[i].length() > 1 && m[i].str()[0] == '0')) return false;
    return true;
  }
  return false;
}

inline bool is_type(const Json& v, const std::string& t) {
  if (t == "null") return v.is_null();
  if (t == "boolean") return v.is_boolean();
  if (t == "string") return v.is_string();
  if (t == "number") return v.is_number();
  if (t == "integer") return v.is_number_integer() || (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
  if (t == "object") return v.is_object();
  if (t == "array") return v.is_array();
  return false;
}

inline std::string check(const Json& v, const Json& s, const Json& root, const std::string& at = "") {
  if (s.is_boolean()) return s.get<bool>() ? "" : at + ": schema false";
  if (s.contains("$ref")) {
    const std::string ref = s["$ref"];
    if (auto e = check(v, root.at(Json::json_pointer(ref.substr(1))), root, at); !e.empty()) return e;
  }
  if (s.contains("allOf"))
    for (const Json& sub : s["allOf"])
      if (auto e = check(v, sub, root, at); !e.empty()) return e;
  if (s.contains("anyOf")) {
    bool any = false;
    for (const Json& sub : s["anyOf"]) any = any || check(v, sub, root, at).empty();
    if (!any) return at + ": no anyOf alternative";
  }
  if (s.contains("oneOf")) {
    int n = 0;
    for (const Json& sub : s["oneOf"]) n += check(v, sub, root, at).empty();
    if (n != 1) return at + ": " + std::to_string(n) + " oneOf alternatives match";
  }
  if (s.contains("type")) {
    bool ok = false;
    if (s["type"].is_string()) ok = is_type(v, s["type"]);
    else for (const Json& t : s["type"]) ok = ok || is_type(v, t);
    if (!ok) return at + ": wrong type";
  }
  if (s.contains("const") && v != s["const"]) return at + ": not the const";
  if (s.contains("enum") && std::find(s["enum"].begin(), s["enum"].end(), v) == s["enum"].end()) return at + ": not in enum";
  if (v.is_number()) {
    const double x = v.get<double>();
    if (s.contains("minimum") && x < s["minimum"].get<double>()) return at + ": below minimum";
    if (s.contains("maximum") && x > s["maximum"].get<double>()) return at + ": above maximum";
    if (s.contains("exclusiveMinimum") && x <= s["exclusiveMinimum"].get<double>()) return at + ": not above exclusiveMinimum";
    if (s.contains("exclusiveMaximum") && x >= s["exclusiveMaximum"].get<double>()) return at + ": not below exclusiveMaximum";
  }
  if (v.is_string()) {
    const std::string str = v.get<std::string>();
    if (s.contains("minLength") && code_points(str) < s["minLength"].get<size_t>()) return at + ": too short";
    if (s.contains("maxLength") && code_points(str) > s["maxLength"].get<size_t>()) return at + ": too long";
    if (s.contains("pattern") && !std::regex_search(str, std::regex(s["pattern"].get<std::string>())))
      return at + ": pattern does not match";
    if (s.contains("format") && !valid_format(s["format"], str)) return at + ": not a valid " + s["format"].get<std::string>();
  }
  if (v.is_object()) {
    if (s.contains("required"))
      for (const Json& k : s["required"])
        if (!v.contains(k.get<std::string>())) return at + ": missing " + k.get<std::string>();
    if (s.contains("minProperties") && v.size() < s["minProperties"].get<size_t>()) return at + ": too few properties";
    if (s.contains("maxProperties") && v.size() > s["maxProperties"].get<size_t>()) return at + ": too many properties";
    for (const auto& [key, value] : v.items()) {
      if (s.contains("properties") && s["properties"].contains(key)) {
        if (auto e = check(value, s["properties"][key], root, at + "/" + key); !e.empty()) return e;
      } else if (s.contains("additionalProperties")) {
        if (auto e = check(value, s["additionalProperties"], root, at + "/" + key); !e.empty()) return e;
      }
    }
  }
  if (v.is_array()) {
    if (s.contains("minItems") && v.size() < s["minItems"].get<size_t>()) return at + ": too few items";
    if (s.contains("maxItems") && v.size() > s["maxItems"].get<size_t>()) return at + ": too many items";
    size_t prefix = 0;
    if (s.contains("prefixItems")) {
      prefix = s["prefixItems"].size();
      for (size_t i = 0; i < std::min(prefix, v.size()); ++i)
        if (auto e = check(v[i], s["prefixItems"][i], root, at + "/" + std::to_string(i)); !e.empty()) return e;
    }
    if (s.contains("items"))
      for (size_t i = prefix; i < v.size(); ++i)
        if (auto e = check(v[i], s["items"], root, at + "/" + std::to_string(i)); !e.empty()) return e;
  }
  return "";
}

inline std::string check(const Json& v, const Json& schema) { return check(v, schema, schema); }

}  // namespace slm::grammar::test

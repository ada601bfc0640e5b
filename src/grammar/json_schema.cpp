// JSON Schema -> GBNF: one rule per subschema, built by walking the schema; every keyword
// is either used, ignored as an annotation, or refused (never silently dropped).
#include "grammar/json_schema.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <nlohmann/json.hpp>

#include "grammar/grammar_builder.h"
#include "grammar/schema_parts.h"
#include "slm/error.h"

namespace slm::grammar {
namespace {

using Json = nlohmann::ordered_json;
using schema::literal;

const std::set<std::string> kAnnotations = {
    "description", "title", "$schema", "$id", "id", "default", "examples", "$comment",
    "deprecated", "readOnly", "writeOnly", "$defs", "definitions", "$anchor"};
const char* const kPrimitiveRules[] = {"root", "json-value", "json-object", "json-array",
                                       "json-string", "json-char", "json-key-char", "json-hex",
                                       "json-hex4", "json-int", "json-number"};
constexpr int64_t kMaxCount = kMaxRepetition;  // minItems, maxLength, ... beyond this: refused

std::string where(const std::string& path) { return path.empty() ? "/" : path; }

[[noreturn]] void fail(const std::string& what, const std::string& path) {
  throw Error("json schema: " + what + " at " + where(path));
}

std::string pointer_token(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

// A schema object and which of its keywords have been used.
struct Node {
  const Json& schema;
  std::string path;
  std::set<std::string> used;

  bool has(const std::string& key) const { return schema.contains(key); }
  const Json& take(const std::string& key) {
    used.insert(key);
    return schema.at(key);
  }
  // Throws for the first keyword nobody used.
  void check_all_used() const {
    for (const auto& [key, value] : schema.items())
      if (!used.count(key) && !kAnnotations.count(key)) fail("unsupported keyword '" + key + "'", path);
  }
};

int64_t count_value(const Json& v, const std::string& key, const std::string& path) {
  if (!v.is_number_integer() && !(v.is_number() && std::floor(v.get<double>()) == v.get<double>()))
    fail("'" + key + "' must be a non-negative integer", path);
  const double d = v.get<double>();
  if (d < 0) fail("'" + key + "' must be a non-negative integer", path);
  if (d > static_cast<double>(kMaxCount)) fail("'" + key + "' over " + std::to_string(kMaxCount), path);
  return static_cast<int64_t>(d);
}

class Converter {
 public:
  explicit Converter(const Json& root) : root_(root) {
    for (const char* name : kPrimitiveRules) names_.insert(name);
  }

  std::string run() {
    const std::string root_body = expr(root_, "", "root", 0);
    std::string out = "root ::= " + root_body + "\n";
    for (const auto& [name, body] : rules_) out += name + " ::= " + body + "\n";
    return out + schema::kJsonPrelude;
  }

 private:
  std::string unique_name(const std::string& hint) {
    std::string base;
    for (char c : hint.substr(0, 48)) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
      base += ok ? c : '-';
    }
    if (base.empty()) base = "x";
    std::string name = base;
    for (int n = 2; names_.count(name); ++n) name = base + "-" + std::to_string(n);
    names_.insert(name);
    return name;
  }

  // A rule with this body (an existing one when the body is the same).
  std::string add_rule(const std::string& hint, const std::string& body) {
    const bool is_name = !body.empty() && std::all_of(body.begin(), body.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '-';
    });
    if (is_name) return body;
    auto it = rule_of_body_.find(body);
    if (it != rule_of_body_.end()) return it->second;
    const std::string name = unique_name(hint);
    rules_.emplace_back(name, body);
    rule_of_body_.emplace(body, name);
    return name;
  }

  std::string rule(const Json& s, const std::string& path, const std::string& hint, int depth) {
    return add_rule(hint, expr(s, path, hint, depth));
  }

  const Json& resolve(const std::string& ref, const std::string& path) const {
    if (ref.empty() || ref[0] != '#') fail("only local $ref ('#/...') is supported, not '" + ref + "'", path);
    try {
      return root_.at(Json::json_pointer(ref.substr(1)));
    } catch (const nlohmann::json::exception&) {
      fail("$ref '" + ref + "' does not resolve", path);
    }
  }

  std::string ref_rule(const std::string& ref, const std::string& path, int depth) {
    auto it = ref_rules_.find(ref);
    if (it != ref_rules_.end()) return it->second;
    const Json& target = resolve(ref, path);
    const std::string name = unique_name(ref.substr(ref.find_last_of('/') + 1));
    ref_rules_.emplace(ref, name);  // before the body: the target may refer to itself
    const size_t slot = rules_.size();
    rules_.emplace_back(name, "");
    const std::string body = expr(target, ref.substr(1), name, depth + 1);
    rules_[slot].second = body;
    return name;
  }

  // The schema without these keywords and annotations; empty when nothing else is left.
  static Json rest_without(const Json& s, std::initializer_list<const char*> keys) {
    Json rest = Json::object();
    for (const auto& item : s.items()) {
      const std::string& key = item.key();
      if (kAnnotations.count(key)) continue;
      if (std::any_of(keys.begin(), keys.end(), [&](const char* k) { return key == k; })) continue;
      rest[key] = item.value();
    }
    return rest;
  }

  std::string expr(const Json& s, const std::string& path, const std::string& hint, int depth) {
    if (depth > kMaxSchemaDepth) fail("schema nested deeper than " + std::to_string(kMaxSchemaDepth), path);
    if (s.is_boolean()) {
      if (s.get<bool>()) return "json-value";
      fail("schema 'false' allows no value", path);
    }
    if (!s.is_object()) fail("a schema must be an object or a boolean", path);
    Node node{s, path, {}};

    if (node.has("$ref")) {
      const Json& ref = node.take("$ref");
      if (!ref.is_string()) fail("'$ref' must be a string", path);
      Json rest = rest_without(s, {"$ref"});
      if (rest.empty()) return ref_rule(ref.get<std::string>(), path, depth);
      Json parts = Json::array({resolve(ref.get<std::string>(), path), rest});
      return expr(merge_all(parts, path, depth + 1), path, hint, depth + 1);
    }
    if (node.has("allOf")) {
      const Json& all = node.take("allOf");
      if (!all.is_array() || all.empty()) fail("'allOf' must be a non-empty array", path);
      Json parts = all;
      Json rest = rest_without(s, {"allOf"});
      if (!rest.empty()) parts.push_back(rest);
      return expr(merge_all(parts, path, depth + 1), path, hint, depth + 1);
    }
    if (node.has("anyOf") || node.has("oneOf")) {
      if (node.has("anyOf") && node.has("oneOf")) fail("'anyOf' together with 'oneOf' is not supported", path);
      // oneOf is generated as anyOf: the alternatives are taken to be disjoint.
      const std::string key = node.has("anyOf") ? "anyOf" : "oneOf";
      const Json& alternatives = node.take(key);
      if (!alternatives.is_array() || alternatives.empty()) fail("'" + key + "' must be a non-empty array", path);
      const Json rest = rest_without(s, {"anyOf", "oneOf"});
      std::vector<std::string> out;
      for (size_t i = 0; i < alternatives.size(); ++i) {
        const std::string sub_path = path + "/" + key + "/" + std::to_string(i);
        const Json alt = rest.empty() ? alternatives[i] : merge_all(Json::array({rest, alternatives[i]}), sub_path, depth + 1);
        out.push_back(rule(alt, sub_path, hint + "-" + std::to_string(i), depth + 1));
      }
      return join(out, " | ");
    }

    std::vector<std::string> types;
    if (node.has("type")) {
      const Json& type = node.take("type");
      if (type.is_string()) types.push_back(type.get<std::string>());
      else if (type.is_array() && !type.empty())
        for (const Json& t : type) {
          if (!t.is_string()) fail("'type' must be a string or an array of strings", path);
          types.push_back(t.get<std::string>());
        }
      else fail("'type' must be a string or an array of strings", path);
    }
    if (node.has("nullable")) {
      if (!node.take("nullable").is_boolean()) fail("'nullable' must be a boolean", path);
      if (s["nullable"].get<bool>() && !types.empty()) types.push_back("null");
    }

    if (node.has("const") || node.has("enum")) {
      std::vector<Json> values;
      if (node.has("const")) values.push_back(node.take("const"));
      if (node.has("enum")) {
        const Json& e = node.take("enum");
        if (!e.is_array() || e.empty()) fail("'enum' must be a non-empty array", path);
        std::vector<Json> kept;
        for (const Json& v : e)
          if (values.empty() || v == values[0]) kept.push_back(v);  // with const: their intersection
        values = kept;
      }
      std::vector<std::string> out;
      for (const Json& v : values)
        if (types.empty() || std::any_of(types.begin(), types.end(), [&](const std::string& t) { return has_type(v, t); }))
          out.push_back(literal(v.dump()));
      node.check_all_used();
      if (out.empty()) fail("no value of 'enum'/'const' fits 'type'", path);
      return join(out, " | ");
    }

    if (types.empty()) types = inferred_types(s);
    if (types.empty()) {
      node.check_all_used();
      return "json-value";
    }
    std::vector<std::string> out;
    for (const std::string& t : types) out.push_back(type_expr(t, node, hint, depth));
    node.check_all_used();
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out.size() == 1 ? out[0] : "(" + join(out, ") | (") + ")";
  }

  static bool has_type(const Json& v, const std::string& type) {
    if (type == "string") return v.is_string();
    if (type == "integer") return v.is_number_integer() || (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
    if (type == "number") return v.is_number();
    if (type == "boolean") return v.is_boolean();
    if (type == "null") return v.is_null();
    if (type == "object") return v.is_object();
    if (type == "array") return v.is_array();
    return false;
  }

  // Without 'type', the keywords present say which kinds of value are meant.
  static std::vector<std::string> inferred_types(const Json& s) {
    std::vector<std::string> types;
    auto any = [&](std::initializer_list<const char*> keys) {
      return std::any_of(keys.begin(), keys.end(), [&](const char* k) { return s.contains(k); });
    };
    if (any({"properties", "required", "additionalProperties", "minProperties", "maxProperties"})) types.push_back("object");
    if (any({"items", "prefixItems", "minItems", "maxItems", "additionalItems"})) types.push_back("array");
    if (any({"minLength", "maxLength", "pattern", "format"})) types.push_back("string");
    if (any({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})) types.push_back("number");
    return types;
  }

  std::string type_expr(const std::string& type, Node& node, const std::string& hint, int depth) {
    if (type == "null") return "\"null\"";
    if (type == "boolean") return "\"true\" | \"false\"";
    if (type == "integer") return integer_expr(node);
    if (type == "number") return number_expr(node);
    if (type == "string") return string_expr(node);
    if (type == "object") return object_expr(node, hint, depth);
    if (type == "array") return array_expr(node, hint, depth);
    fail("unknown type '" + type + "'", node.path);
  }

  static schema::NumberBounds number_bounds(Node& node) {
    schema::NumberBounds b;
    auto number = [&](const char* key) {
      const Json& v = node.take(key);
      if (!v.is_number()) fail(std::string("'") + key + "' must be a number", node.path);
      return v.get<double>();
    };
    // Draft 4 wrote exclusiveMinimum: true beside minimum; later drafts give the bound.
    bool old_exclusive_min = false, old_exclusive_max = false;
    if (node.has("exclusiveMinimum") && node.schema.at("exclusiveMinimum").is_boolean())
      old_exclusive_min = node.take("exclusiveMinimum").get<bool>();
    if (node.has("exclusiveMaximum") && node.schema.at("exclusiveMaximum").is_boolean())
      old_exclusive_max = node.take("exclusiveMaximum").get<bool>();
    if (node.has("minimum")) {
      b.min = number("minimum");
      b.exclusive_min = old_exclusive_min;
    }
    if (node.has("maximum")) {
      b.max = number("maximum");
      b.exclusive_max = old_exclusive_max;
    }
    if (node.has("exclusiveMinimum") && !node.used.count("exclusiveMinimum")) {
      const double v = number("exclusiveMinimum");
      if (!b.min || v >= *b.min) {
        b.min = v;
        b.exclusive_min = true;
      }
    }
    if (node.has("exclusiveMaximum") && !node.used.count("exclusiveMaximum")) {
      const double v = number("exclusiveMaximum");
      if (!b.max || v <= *b.max) {
        b.max = v;
        b.exclusive_max = true;
      }
    }
    return b;
  }

  static std::string integer_expr(Node& node) {
    const schema::NumberBounds b = number_bounds(node);
    if (!b.min && !b.max) return "json-int";
    const double cap = static_cast<double>(schema::kMaxJsonInteger);
    double lo = -cap, hi = cap;
    if (b.min) lo = b.exclusive_min ? std::floor(*b.min) + 1 : std::ceil(*b.min);
    if (b.max) hi = b.exclusive_max ? std::ceil(*b.max) - 1 : std::floor(*b.max);
    lo = std::clamp(lo, -cap, cap);
    hi = std::clamp(hi, -cap, cap);
    const std::string out = lo <= hi ? schema::integer_range(static_cast<int64_t>(lo), static_cast<int64_t>(hi)) : "";
    if (out.empty()) fail("no integer between the bounds", node.path);
    return out;
  }

  static std::string number_expr(Node& node) {
    const schema::NumberBounds b = number_bounds(node);
    if (!b.min && !b.max) return "json-number";
    const std::string out = schema::bounded_number(b);
    if (out.empty()) fail("no number between the bounds", node.path);
    return out;
  }

  static std::string string_expr(Node& node) {
    const std::string quote = literal("\"");
    const bool lengths = node.has("minLength") || node.has("maxLength");
    if (node.has("format")) {
      const Json& f = node.take("format");
      if (!f.is_string()) fail("'format' must be a string", node.path);
      if (lengths || node.has("pattern")) fail("'format' together with 'pattern' or lengths is not supported", node.path);
      const std::string content = schema::format_content(f.get<std::string>());
      if (content.empty()) fail("unsupported format '" + f.get<std::string>() + "'", node.path);
      return quote + " " + content + " " + quote;
    }
    if (node.has("pattern")) {
      const Json& p = node.take("pattern");
      if (!p.is_string()) fail("'pattern' must be a string", node.path);
      if (lengths) fail("'pattern' together with 'minLength'/'maxLength' is not supported", node.path);
      return quote + " " + schema::pattern_content(p.get<std::string>()) + " " + quote;
    }
    const int64_t min = node.has("minLength") ? count_value(node.take("minLength"), "minLength", node.path) : 0;
    const int64_t max = node.has("maxLength") ? count_value(node.take("maxLength"), "maxLength", node.path) : -1;
    if (max >= 0 && max < min) fail("'maxLength' below 'minLength'", node.path);
    std::string chars = "json-char*";
    if (min > 0 || max >= 0)
      chars = "json-char{" + std::to_string(min) + "," + (max >= 0 ? std::to_string(max) : "") + "}";
    return quote + " " + chars + " " + quote;
  }

  // A key of an additional property: a JSON string, none of the declared names. Written
  // without escapes, so that no escaped spelling of a declared name slips through.
  std::string extra_key_rule(const std::vector<std::string>& declared, const std::string& hint) {
    if (declared.empty()) return "json-string";
    struct TrieNode {
      std::map<uint32_t, size_t> children;
      bool terminal = false;
    };
    std::vector<TrieNode> trie(1);
    for (const std::string& name : declared) {
      size_t at = 0;
      for (size_t i = 0; i < name.size();) {
        const unsigned char c = static_cast<unsigned char>(name[i]);
        const size_t len = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        uint32_t cp = len == 1 ? c : c & (0x7Fu >> len);
        for (size_t k = 1; k < len && i + k < name.size(); ++k) cp = (cp << 6) | (name[i + k] & 0x3F);
        i += len;
        if (cp < 0x20 || cp == '"' || cp == '\\') {  // only reachable escaped: never produced raw
          at = SIZE_MAX;
          break;
        }
        auto [it, added] = trie[at].children.emplace(cp, trie.size());
        if (added) trie.emplace_back();
        at = it->second;
      }
      if (at != SIZE_MAX) trie[at].terminal = true;
    }
    // Bottom-up (children have larger indices than their parents).
    std::vector<std::string> rule_of(trie.size());
    for (size_t n = trie.size(); n-- > 0;) {
      std::vector<std::string> alternatives;
      if (!trie[n].terminal) alternatives.push_back("\"\"");
      std::vector<CharRange> excluded = {{0, 0x1F}, {'"', '"'}, {'\\', '\\'}};
      for (const auto& [cp, child] : trie[n].children) {
        excluded.push_back({cp, cp});
        std::string utf8;
        if (cp < 0x80) utf8 += static_cast<char>(cp);
        else if (cp < 0x800) utf8 += {static_cast<char>(0xC0 | (cp >> 6)), static_cast<char>(0x80 | (cp & 0x3F))};
        else if (cp < 0x10000)
          utf8 += {static_cast<char>(0xE0 | (cp >> 12)), static_cast<char>(0x80 | ((cp >> 6) & 0x3F)), static_cast<char>(0x80 | (cp & 0x3F))};
        else
          utf8 += {static_cast<char>(0xF0 | (cp >> 18)), static_cast<char>(0x80 | ((cp >> 12) & 0x3F)),
                   static_cast<char>(0x80 | ((cp >> 6) & 0x3F)), static_cast<char>(0x80 | (cp & 0x3F))};
        alternatives.push_back(literal(utf8) + " " + rule_of[child]);
      }
      // Any character not continuing a declared name leaves them all behind.
      std::vector<CharRange> allowed;
      uint32_t next = 0;
      for (const CharRange& r : Symbol::terminal(excluded).chars) {
        if (r.lo > next) allowed.push_back({next, r.lo - 1});
        next = r.hi + 1;
      }
      if (next <= kMaxCodePoint) allowed.push_back({next, kMaxCodePoint});
      alternatives.push_back(schema::char_class(allowed) + " json-key-char*");
      rule_of[n] = add_rule(hint + "-key", join(alternatives, " | "));
    }
    return add_rule(hint + "-key", literal("\"") + " " + rule_of[0] + " " + literal("\""));
  }

  std::string object_expr(Node& node, const std::string& hint, int depth) {
    struct Property {
      std::string key_literal;  // "\"name\":"
      std::string value;        // rule name
      bool required;
    };
    std::vector<Property> properties;
    std::vector<std::string> declared;
    std::set<std::string> required;
    if (node.has("required")) {
      const Json& r = node.take("required");
      if (!r.is_array()) fail("'required' must be an array of strings", node.path);
      for (const Json& name : r) {
        if (!name.is_string()) fail("'required' must be an array of strings", node.path);
        required.insert(name.get<std::string>());
      }
    }
    const Json additional = node.has("additionalProperties") ? node.take("additionalProperties") : Json(true);
    const bool extras = !(additional.is_boolean() && !additional.get<bool>());
    if (node.has("properties")) {
      const Json& props = node.take("properties");
      if (!props.is_object()) fail("'properties' must be an object", node.path);
      for (const auto& [name, sub] : props.items()) {
        declared.push_back(name);
        const std::string sub_path = node.path + "/properties/" + pointer_token(name);
        if (sub.is_boolean() && !sub.get<bool>()) {
          if (required.count(name)) fail("required property '" + name + "' has schema false", node.path);
          continue;
        }
        properties.push_back({literal(Json(name).dump() + ":"), rule(sub, sub_path, hint + "-" + name, depth + 1),
                              required.count(name) > 0});
      }
    }
    std::string extra_value;
    if (extras)
      extra_value = additional.is_boolean() ? "json-value"
                                            : rule(additional, node.path + "/additionalProperties", hint + "-extra", depth + 1);
    for (const std::string& name : required) {
      if (std::find(declared.begin(), declared.end(), name) != declared.end()) continue;
      if (!extras) fail("required property '" + name + "' is not allowed by additionalProperties", node.path);
      properties.push_back({literal(Json(name).dump() + ":"), extra_value, true});
      declared.push_back(name);
    }
    const int64_t min_props = node.has("minProperties") ? count_value(node.take("minProperties"), "minProperties", node.path) : 0;
    const int64_t max_props = node.has("maxProperties") ? count_value(node.take("maxProperties"), "maxProperties", node.path) : -1;
    if (max_props >= 0 && max_props < min_props) fail("'maxProperties' below 'minProperties'", node.path);
    const bool bounded = max_props >= 0;
    std::string extra_pair;
    if (extras) extra_pair = add_rule(hint + "-extra-kv", extra_key_rule(declared, hint) + " \":\" " + extra_value);

    // Rule (i, c): the properties from i on, with c emitted so far (c > 0 means a comma
    // goes before the next one). Without maxProperties only c = 0, 1, .., minProperties
    // matter, so c saturates there.
    const int64_t n = static_cast<int64_t>(properties.size());
    const int64_t saturate = bounded ? max_props : std::max<int64_t>(min_props, 1);
    auto next_count = [&](int64_t c) { return std::min(c + 1, saturate); };
    const std::string comma = literal(",");
    std::map<std::pair<int64_t, int64_t>, std::string> rule_at;  // absent: cannot end validly
    for (int64_t c = 0; c <= std::min(n, saturate); ++c) {
      std::string body;
      if (extras && (!bounded || c < max_props)) {
        const int64_t need = std::max<int64_t>(min_props - c, 0);
        const std::string most = bounded ? std::to_string(max_props - c) : "";
        const std::string most_after_first = bounded ? std::to_string(max_props - c - 1) : "";
        if (c > 0) body = "(" + comma + " " + extra_pair + "){" + std::to_string(need) + "," + most + "}";
        else if (need == 0) body = "(" + extra_pair + " (" + comma + " " + extra_pair + "){0," + most_after_first + "})?";
        else body = extra_pair + " (" + comma + " " + extra_pair + "){" + std::to_string(need - 1) + "," + most_after_first + "}";
      } else if (c >= min_props) {
        body = "\"\"";
      }
      if (!body.empty()) rule_at[{n, c}] = add_rule(hint + "-tail", body);
    }
    for (int64_t i = n - 1; i >= 0; --i) {
      for (int64_t c = 0; c <= std::min(i, saturate); ++c) {
        std::vector<std::string> alternatives;
        const Property& p = properties[static_cast<size_t>(i)];
        if (!bounded || c < max_props) {
          auto next = rule_at.find({i + 1, next_count(c)});
          if (next != rule_at.end())
            alternatives.push_back((c > 0 ? comma + " " : "") + p.key_literal + " " + p.value + " " + next->second);
        }
        if (!p.required) {
          auto skip = rule_at.find({i + 1, c});
          if (skip != rule_at.end()) alternatives.push_back(skip->second);
        }
        if (!alternatives.empty()) rule_at[{i, c}] = add_rule(hint + "-props", join(alternatives, " | "));
      }
    }
    auto start = rule_at.find({0, 0});
    if (start == rule_at.end()) fail("no object satisfies 'required', 'minProperties' and 'maxProperties'", node.path);
    return literal("{") + " " + start->second + " " + literal("}");
  }

  std::string array_expr(Node& node, const std::string& hint, int depth) {
    std::vector<std::string> prefix;
    std::string rest = "json-value";  // empty: no further items
    auto tuple = [&](const Json& items, const std::string& key) {
      if (items.size() > 500) fail("over 500 '" + key + "'", node.path);
      for (size_t i = 0; i < items.size(); ++i)
        prefix.push_back(rule(items[i], node.path + "/" + key + "/" + std::to_string(i), hint + "-" + std::to_string(i), depth + 1));
    };
    auto rest_of = [&](const Json& items, const std::string& key) {
      if (items.is_boolean() && !items.get<bool>()) rest.clear();
      else rest = rule(items, node.path + "/" + key, hint + "-item", depth + 1);
    };
    if (node.has("prefixItems")) {
      const Json& p = node.take("prefixItems");
      if (!p.is_array()) fail("'prefixItems' must be an array", node.path);
      tuple(p, "prefixItems");
      if (node.has("items")) rest_of(node.take("items"), "items");
    } else if (node.has("items") && node.schema.at("items").is_array()) {  // draft 4-7 tuples
      tuple(node.take("items"), "items");
      if (node.has("additionalItems")) rest_of(node.take("additionalItems"), "additionalItems");
    } else if (node.has("items")) {
      rest_of(node.take("items"), "items");
    }
    if (node.has("uniqueItems") && node.schema.at("uniqueItems") == Json(false)) node.take("uniqueItems");
    const int64_t min_items = node.has("minItems") ? count_value(node.take("minItems"), "minItems", node.path) : 0;
    const int64_t max_items = node.has("maxItems") ? count_value(node.take("maxItems"), "maxItems", node.path) : -1;
    if (max_items >= 0 && max_items < min_items) fail("'maxItems' below 'minItems'", node.path);
    const int64_t k = static_cast<int64_t>(prefix.size());
    const std::string comma = literal(",");

    // The items from position j on; the first one without a comma.
    std::string tail;  // from position k on
    {
      const int64_t j = k;
      const int64_t need = std::max<int64_t>(min_items - j, 0);
      if (max_items >= 0 && j >= max_items) {
        tail = "";
      } else if (rest.empty()) {
        if (need > 0) fail("'minItems' needs more items than 'prefixItems' allows", node.path);
        tail = "";
      } else {
        const std::string most = max_items >= 0 ? std::to_string(max_items - j) : "";
        const std::string most_after_first = max_items >= 0 ? std::to_string(max_items - j - 1) : "";
        if (j > 0) tail = "(" + comma + " " + rest + "){" + std::to_string(need) + "," + most + "}";
        else if (need == 0) tail = "(" + rest + " (" + comma + " " + rest + "){0," + most_after_first + "})?";
        else tail = rest + " (" + comma + " " + rest + "){" + std::to_string(need - 1) + "," + most_after_first + "}";
      }
    }
    std::string body = tail;
    for (int64_t j = std::min(k, max_items >= 0 ? max_items : k) - 1; j >= 0; --j) {
      std::string inner = (j > 0 ? comma + " " : "") + prefix[static_cast<size_t>(j)] + (body.empty() ? "" : " " + body);
      body = j < min_items ? inner : "(" + inner + ")?";
    }
    return literal("[") + (body.empty() ? "" : " " + body) + " " + literal("]");
  }

  // allOf: one schema with the properties and 'required' of all, the tightest bounds, the
  // types they share. Keywords it cannot combine exactly are refused.
  Json merge_all(const Json& parts_in, const std::string& path, int depth) {
    if (depth > kMaxSchemaDepth) fail("schema nested deeper than " + std::to_string(kMaxSchemaDepth), path);
    std::vector<Json> parts;
    for (const Json& part : parts_in) {  // flatten $ref and nested allOf
      if (part.is_boolean()) {
        if (!part.get<bool>()) fail("'allOf' with schema false allows no value", path);
        continue;
      }
      if (!part.is_object()) fail("a schema must be an object or a boolean", path);
      if (part.contains("$ref") || part.contains("allOf")) {
        Json inner = Json::array();
        if (part.contains("$ref")) {
          if (!part["$ref"].is_string()) fail("'$ref' must be a string", path);
          inner.push_back(resolve(part["$ref"].get<std::string>(), path));
        }
        if (part.contains("allOf")) {
          if (!part["allOf"].is_array()) fail("'allOf' must be an array", path);
          for (const Json& p : part["allOf"]) inner.push_back(p);
        }
        inner.push_back(rest_without(part, {"$ref", "allOf"}));
        parts.push_back(merge_all(inner, path, depth + 1));
      } else {
        parts.push_back(part);
      }
    }
    Json out = Json::object();
    std::vector<const Json*> closed;  // parts with additionalProperties false
    int additional_schemas = 0;
    for (const Json& part : parts) {
      for (const auto& [key, value] : part.items()) {
        if (kAnnotations.count(key)) continue;
        if (!out.contains(key)) {
          if (key != "additionalProperties") out[key] = value;
        } else if (key == "properties") {
          for (const auto& [name, sub] : value.items()) {
            if (!out[key].contains(name)) out[key][name] = sub;
            else if (out[key][name] != sub) out[key][name] = Json{{"allOf", Json::array({out[key][name], sub})}};
          }
        } else if (key == "required") {
          for (const Json& name : value)
            if (std::find(out[key].begin(), out[key].end(), name) == out[key].end()) out[key].push_back(name);
        } else if (key == "type") {
          auto as_set = [](const Json& t) {
            std::set<std::string> s;
            if (t.is_string()) s.insert(t.get<std::string>());
            else for (const Json& x : t) s.insert(x.get<std::string>());
            if (s.count("number")) s.insert("integer");
            return s;
          };
          const std::set<std::string> a = as_set(out[key]), b = as_set(value);
          Json shared = Json::array();
          for (const std::string& t : a)
            if (b.count(t) && !(t == "number" && (!a.count("number") || !b.count("number")))) shared.push_back(t);
          if (shared.empty()) fail("'allOf' parts share no type", path);
          out[key] = shared.size() == 1 ? shared[0] : shared;
        } else if (key == "minimum" || key == "exclusiveMinimum" || key == "minLength" || key == "minItems" ||
                   key == "minProperties") {
          if (!value.is_number() || !out[key].is_number()) fail("'allOf' with different '" + key + "'", path);
          if (value > out[key]) out[key] = value;
        } else if (key == "maximum" || key == "exclusiveMaximum" || key == "maxLength" || key == "maxItems" ||
                   key == "maxProperties") {
          if (!value.is_number() || !out[key].is_number()) fail("'allOf' with different '" + key + "'", path);
          if (value < out[key]) out[key] = value;
        } else if (key != "additionalProperties" && out[key] != value) {
          fail("'allOf' with different '" + key + "' is not supported", path);
        }
      }
      if (part.contains("additionalProperties")) {
        const Json& a = part["additionalProperties"];
        if (a.is_boolean() && !a.get<bool>()) closed.push_back(&part);
        else if (a.is_object()) {
          ++additional_schemas;
          out["additionalProperties"] = a;
        }
      }
    }
    if (additional_schemas > 0 && (additional_schemas > 1 || parts.size() > 1))
      fail("'allOf' with an 'additionalProperties' schema is not supported", path);
    if (!closed.empty()) {
      // A part closed to other keys forbids every property it does not declare.
      out["additionalProperties"] = false;
      if (out.contains("properties")) {
        Json kept = Json::object();
        for (const auto& item : out["properties"].items()) {
          const std::string& name = item.key();
          const Json& sub = item.value();
          const bool everywhere = std::all_of(closed.begin(), closed.end(), [&](const Json* p) {
            return p->contains("properties") && (*p)["properties"].contains(name);
          });
          if (everywhere) kept[name] = sub;
          else if (out.contains("required") &&
                   std::find(out["required"].begin(), out["required"].end(), name) != out["required"].end())
            fail("'allOf': required property '" + name + "' is forbidden by additionalProperties false", path);
        }
        out["properties"] = kept;
      }
    }
    return out;
  }

  const Json& root_;
  std::set<std::string> names_;
  std::vector<std::pair<std::string, std::string>> rules_;
  std::map<std::string, std::string> rule_of_body_;
  std::map<std::string, std::string> ref_rules_;
};

}  // namespace

std::string json_schema_to_gbnf(const nlohmann::ordered_json& schema) {
  try {
    return Converter(schema).run();
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("json schema: ") + e.what());
  }
}

std::string json_schema_to_gbnf(const nlohmann::json& schema) {
  return json_schema_to_gbnf(nlohmann::ordered_json::parse(schema.dump()));
}

std::string json_any_object_gbnf() { return std::string("root ::= json-object\n") + schema::kJsonPrelude; }

}  // namespace slm::grammar

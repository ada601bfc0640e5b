#include "chat/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "chat/utf8.h"
#include "slm/error.h"

namespace slm::jinja {

namespace {

// Freeing a deeply nested value recursively could overflow the stack (a template can build
// a chain of a million one-element lists). Containers freed while another is being freed
// are queued and released one at a time by the outermost deleter instead.
struct Reaper {
  bool active = false;
  std::vector<List*> lists;
  std::vector<Dict*> dicts;
};
thread_local Reaper reaper;

template <class T>
void queue(T* p);
template <>
void queue(List* p) { reaper.lists.push_back(p); }
template <>
void queue(Dict* p) { reaper.dicts.push_back(p); }

template <class T>
void reap(T* p) {
  if (reaper.active) {
    queue(p);
    return;
  }
  reaper.active = true;
  delete p;
  while (!reaper.lists.empty() || !reaper.dicts.empty()) {
    if (!reaper.lists.empty()) {
      List* l = reaper.lists.back();
      reaper.lists.pop_back();
      delete l;
    } else {
      Dict* d = reaper.dicts.back();
      reaper.dicts.pop_back();
      delete d;
    }
  }
  reaper.active = false;
}

std::shared_ptr<List> new_list(List items) {
  return std::shared_ptr<List>(new List(std::move(items)), [](List* p) { reap(p); });
}

}  // namespace

Value Value::undefined(std::string name) {
  Value v;
  v.s = std::move(name);
  return v;
}
Value Value::none() {
  Value v;
  v.kind = Kind::None;
  return v;
}
Value Value::boolean(bool x) {
  Value v;
  v.kind = Kind::Bool;
  v.b = x;
  return v;
}
Value Value::integer(int64_t x) {
  Value v;
  v.kind = Kind::Int;
  v.i = x;
  return v;
}
Value Value::number(double x) {
  Value v;
  v.kind = Kind::Float;
  v.f = x;
  return v;
}
Value Value::string(std::string x) {
  Value v;
  v.kind = Kind::String;
  v.s = std::move(x);
  return v;
}
Value make_markup(std::string s) {
  Value v = Value::string(std::move(s));
  v.markup = true;
  return v;
}

std::string escape_html(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

Value Value::make_list(List items) {
  Value v;
  v.kind = Kind::List;
  v.list = new_list(std::move(items));
  return v;
}
Value Value::make_tuple(List items) {
  Value v;
  v.kind = Kind::Tuple;
  v.list = new_list(std::move(items));
  return v;
}
Value Value::make_dict() {
  Value v;
  v.kind = Kind::Dict;
  v.dict = std::shared_ptr<Dict>(new Dict(), [](Dict* p) { reap(p); });
  return v;
}
Value Value::make_namespace() {
  Value v = make_dict();
  v.kind = Kind::Namespace;
  return v;
}
Value Value::function(std::string name, std::function<Value(CallArgs&)> fn) {
  Value v;
  v.kind = Kind::Func;
  v.func = std::make_shared<Callable>(Callable{std::move(name), std::move(fn)});
  return v;
}

bool Value::truthy() const {
  switch (kind) {
    case Kind::Undefined:
    case Kind::None: return false;
    case Kind::Bool: return b;
    case Kind::Int: return i != 0;
    case Kind::Float: return f != 0;
    case Kind::String: return !s.empty();
    case Kind::List:
    case Kind::Tuple: return !list->empty();
    case Kind::Dict: return !dict->items.empty();
    case Kind::Namespace:
    case Kind::Func: return true;
  }
  return false;
}

const Value* Dict::find(const Value& key) const {
  for (auto& kv : items)
    if (equals(kv.first, key)) return &kv.second;
  return nullptr;
}
Value* Dict::find(const Value& key) {
  for (auto& kv : items)
    if (equals(kv.first, key)) return &kv.second;
  return nullptr;
}
const Value* Dict::find(const std::string& key) const {
  for (auto& kv : items)
    if (kv.first.kind == Kind::String && kv.first.s == key) return &kv.second;
  return nullptr;
}
void Dict::set(const Value& key, Value v) {
  if (Value* p = find(key)) {
    *p = std::move(v);
    return;
  }
  items.emplace_back(key, std::move(v));
}
bool Dict::erase(const Value& key) {
  for (auto it = items.begin(); it != items.end(); ++it)
    if (equals(it->first, key)) {
      items.erase(it);
      return true;
    }
  return false;
}

const Value* CallArgs::get(size_t index, const std::string& name) const {
  for (auto& kv : kw)
    if (kv.first == name) return &kv.second;
  if (index < pos.size()) return &pos[index];
  return nullptr;
}

std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
  // Shortest round-trip digits, then Python's layout: fixed for 1e-4 <= |d| < 1e16.
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, r.ptr);
  size_t e = sci.find('e');
  std::string mant = sci.substr(0, e);
  int exp = std::stoi(sci.substr(e + 1));
  bool neg = mant[0] == '-';
  if (neg) mant.erase(0, 1);
  std::string digits;
  for (char c : mant)
    if (c != '.') digits += c;
  std::string out = neg ? "-" : "";
  if (exp >= -5 + 1 && exp < 16) {
    if (exp >= 0) {
      if (digits.size() <= size_t(exp) + 1) {
        out += digits + std::string(exp + 1 - digits.size(), '0') + ".0";
      } else {
        out += digits.substr(0, exp + 1) + "." + digits.substr(exp + 1);
      }
    } else {
      out += "0." + std::string(-exp - 1, '0') + digits;
    }
  } else {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out += eb;
  }
  return out;
}

static std::string repr_string(const std::string& s) {
  bool has_single = s.find('\'') != std::string::npos;
  bool has_double = s.find('"') != std::string::npos;
  char q = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, q);
  for (uint32_t c : utf8_decode(s)) {
    if (c == uint32_t(q) || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (!cp_is_printable(c)) {
      char b[16];
      if (c < 0x100)
        std::snprintf(b, sizeof b, "\\x%02x", c);
      else if (c < 0x10000)
        std::snprintf(b, sizeof b, "\\u%04x", c);
      else
        std::snprintf(b, sizeof b, "\\U%08x", c);
      out += b;
    } else {
      utf8_append(out, c);
    }
  }
  out += q;
  return out;
}

std::string to_str(const Value& v) {
  switch (v.kind) {
    case Kind::Undefined: return "";
    case Kind::String: return v.s;
    default: return to_repr(v);
  }
}

static std::string repr_at(const Value& v, int depth);

std::string to_repr(const Value& v) { return repr_at(v, 0); }

static void check_depth(int depth) {
  if (depth > kMaxValueDepth) throw Error("value nested too deeply (or contains itself)");
}

static std::string repr_at(const Value& v, int depth) {
  check_depth(depth);
  switch (v.kind) {
    case Kind::Undefined: return "Undefined";
    case Kind::None: return "None";
    case Kind::Bool: return v.b ? "True" : "False";
    case Kind::Int: return std::to_string(v.i);
    case Kind::Float: return float_repr(v.f);
    case Kind::String: return repr_string(v.s);
    case Kind::List:
    case Kind::Tuple: {
      bool tuple = v.kind == Kind::Tuple;
      std::string out = tuple ? "(" : "[";
      for (size_t k = 0; k < v.list->size(); ++k) {
        if (k) out += ", ";
        out += repr_at((*v.list)[k], depth + 1);
      }
      if (tuple && v.list->size() == 1) out += ",";
      out += tuple ? ")" : "]";
      return out;
    }
    case Kind::Dict:
    case Kind::Namespace: {
      std::string out = v.kind == Kind::Namespace ? "<Namespace {" : "{";
      bool first = true;
      for (auto& [k, x] : v.dict->items) {
        if (!first) out += ", ";
        first = false;
        out += repr_at(k, depth + 1) + ": " + repr_at(x, depth + 1);
      }
      out += v.kind == Kind::Namespace ? "}>" : "}";
      return out;
    }
    case Kind::Func: return "<function " + v.func->name + ">";
  }
  return "";
}

std::string type_name(const Value& v) {
  switch (v.kind) {
    case Kind::Undefined: return "Undefined";
    case Kind::None: return "NoneType";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "str";
    case Kind::List: return "list";
    case Kind::Tuple: return "tuple";
    case Kind::Dict: return "dict";
    case Kind::Namespace: return "Namespace";
    case Kind::Func: return "function";
  }
  return "?";
}

static bool equals_at(const Value& a, const Value& b, int depth);
bool equals(const Value& a, const Value& b) { return equals_at(a, b, 0); }

static bool equals_at(const Value& a, const Value& b, int depth) {
  check_depth(depth);
  if (a.is_number() && b.is_number()) {
    if (a.kind == Kind::Float || b.kind == Kind::Float) return a.as_double() == b.as_double();
    return a.as_int() == b.as_int();
  }
  if (a.is_list_like() && b.is_list_like()) {
    if (a.kind != b.kind || a.list->size() != b.list->size()) return false;
    for (size_t k = 0; k < a.list->size(); ++k)
      if (!equals_at((*a.list)[k], (*b.list)[k], depth + 1)) return false;
    return true;
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Kind::Undefined:
    case Kind::None: return true;
    case Kind::String: return a.s == b.s;
    case Kind::Dict: {
      if (a.dict->items.size() != b.dict->items.size()) return false;
      for (auto& [k, x] : a.dict->items) {
        const Value* y = b.dict->find(k);
        if (!y || !equals_at(x, *y, depth + 1)) return false;
      }
      return true;
    }
    case Kind::Namespace: return a.dict == b.dict;
    case Kind::Func: return a.func == b.func;
    default: return false;
  }
}

static int compare_at(const Value& a, const Value& b, int depth);
int compare(const Value& a, const Value& b) { return compare_at(a, b, 0); }

static int compare_at(const Value& a, const Value& b, int depth) {
  check_depth(depth);
  if (a.is_undefined() && b.is_undefined()) return 0;
  if (a.is_number() && b.is_number()) {
    if (a.kind == Kind::Float || b.kind == Kind::Float) {
      double x = a.as_double(), y = b.as_double();
      return x < y ? -1 : x > y ? 1 : 0;
    }
    int64_t x = a.as_int(), y = b.as_int();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.kind == Kind::String && b.kind == Kind::String) {
    int c = a.s.compare(b.s);  // UTF-8 byte order is code point order
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (a.is_list_like() && a.kind == b.kind) {
    size_t n = std::min(a.list->size(), b.list->size());
    for (size_t k = 0; k < n; ++k) {
      const Value& x = (*a.list)[k];
      const Value& y = (*b.list)[k];
      if (!equals_at(x, y, depth + 1)) return compare_at(x, y, depth + 1);
    }
    return a.list->size() < b.list->size() ? -1 : a.list->size() > b.list->size() ? 1 : 0;
  }
  throw Error("'<' not supported between instances of '" + type_name(a) + "' and '" +
              type_name(b) + "'");
}

static Value from_json_at(const nlohmann::ordered_json& j, int depth) {
  check_depth(depth);  // request bodies come from the network: bound the recursion
  using T = nlohmann::ordered_json::value_t;
  switch (j.type()) {
    case T::null: return Value::none();
    case T::boolean: return Value::boolean(j.get<bool>());
    case T::number_integer: return Value::integer(j.get<int64_t>());
    case T::number_unsigned: {
      uint64_t u = j.get<uint64_t>();
      if (u <= uint64_t(INT64_MAX)) return Value::integer(int64_t(u));
      return Value::number(double(u));
    }
    case T::number_float: return Value::number(j.get<double>());
    case T::string: return Value::string(j.get<std::string>());
    case T::array: {
      List items;
      items.reserve(j.size());
      for (auto& x : j) items.push_back(from_json_at(x, depth + 1));
      return Value::make_list(std::move(items));
    }
    case T::object: {
      Value d = Value::make_dict();
      for (auto it = j.begin(); it != j.end(); ++it)
        d.dict->items.emplace_back(Value::string(it.key()), from_json_at(it.value(), depth + 1));
      return d;
    }
    default: return Value::none();
  }
}

Value from_json(const nlohmann::ordered_json& j) { return from_json_at(j, 0); }

static void json_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out += '"';
  auto hex4 = [&](uint32_t c) {
    char b[8];
    std::snprintf(b, sizeof b, "\\u%04x", c);
    out += b;
  };
  for (uint32_t c : utf8_decode(s)) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          hex4(c);
        } else if (ensure_ascii && c > 0x7e) {
          if (c >= 0x10000) {
            uint32_t v = c - 0x10000;
            hex4(0xd800 | (v >> 10));
            hex4(0xdc00 | (v & 0x3ff));
          } else {
            hex4(c);
          }
        } else {
          utf8_append(out, c);
        }
    }
  }
  out += '"';
}

static std::string json_key(const Value& k) {
  switch (k.kind) {
    case Kind::String: return k.s;
    case Kind::Bool: return k.b ? "true" : "false";
    case Kind::None: return "null";
    case Kind::Int: return std::to_string(k.i);
    case Kind::Float: return float_repr(k.f);
    default: throw Error("tojson: keys must be str, int, float, bool or None, not " + type_name(k));
  }
}

static void json_dump(std::string& out, const Value& v, const JsonOptions& opt, int level) {
  check_depth(level);
  if (out.size() > opt.max_size) throw Error("tojson: output size limit exceeded");
  bool pretty = opt.indent >= 0 || !opt.indent_str.empty();
  auto newline = [&](int lvl) {
    if (!pretty) return;
    out += '\n';
    for (int k = 0; k < lvl; ++k) out += opt.indent_str.empty() ? std::string(opt.indent, ' ') : opt.indent_str;
    if (out.size() > opt.max_size) throw Error("tojson: output size limit exceeded");
  };
  switch (v.kind) {
    case Kind::None: out += "null"; return;
    case Kind::Bool: out += v.b ? "true" : "false"; return;
    case Kind::Int: out += std::to_string(v.i); return;
    case Kind::Float:
      if (std::isnan(v.f)) out += "NaN";
      else if (std::isinf(v.f)) out += v.f < 0 ? "-Infinity" : "Infinity";
      else out += float_repr(v.f);
      return;
    case Kind::String: json_string(out, v.s, opt.ensure_ascii); return;
    case Kind::List:
    case Kind::Tuple: {
      if (v.list->empty()) {
        out += "[]";
        return;
      }
      out += '[';
      newline(level + 1);
      for (size_t k = 0; k < v.list->size(); ++k) {
        if (k) {
          out += opt.item_sep;
          newline(level + 1);
        }
        json_dump(out, (*v.list)[k], opt, level + 1);
      }
      newline(level);
      out += ']';
      return;
    }
    case Kind::Dict: {
      if (v.dict->items.empty()) {
        out += "{}";
        return;
      }
      std::vector<std::pair<std::string, const Value*>> items;
      for (auto& [k, x] : v.dict->items) items.emplace_back(json_key(k), &x);
      if (opt.sort_keys)
        std::stable_sort(items.begin(), items.end(),
                         [](auto& a, auto& b) { return a.first < b.first; });
      out += '{';
      newline(level + 1);
      for (size_t k = 0; k < items.size(); ++k) {
        if (k) {
          out += opt.item_sep;
          newline(level + 1);
        }
        json_string(out, items[k].first, opt.ensure_ascii);
        out += opt.key_sep;
        json_dump(out, *items[k].second, opt, level + 1);
      }
      newline(level);
      out += '}';
      return;
    }
    default:
      throw Error("tojson: object of type " + type_name(v) + " is not JSON serializable");
  }
}

static bool reaches(const Value& v, const void* target, int depth) {
  check_depth(depth);
  if (v.is_list_like()) {
    if (v.list.get() == target) return true;
    for (auto& x : *v.list)
      if (reaches(x, target, depth + 1)) return true;
  } else if (v.is_mapping()) {
    if (v.dict.get() == target) return true;
    for (auto& [k, x] : v.dict->items)
      if (reaches(x, target, depth + 1)) return true;
  }
  return false;
}

void check_no_cycle(const Value& v, const void* target) {
  if (reaches(v, target, 0)) throw Error("a list, dict or namespace cannot contain itself");
}

std::string to_json(const Value& v, const JsonOptions& opt) {
  std::string out;
  json_dump(out, v, opt, 0);
  return out;
}

}  // namespace slm::jinja

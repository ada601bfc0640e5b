// jinja2's built-in filters (plus Hugging Face's tojson), with their Python semantics.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "chat/interp.h"
#include "chat/utf8.h"
#include "slm/error.h"

namespace slm::jinja {

namespace {

// Argument `index`/`name` after the filtered value, or `def`.
Value arg(const CallArgs& a, size_t index, const char* name, Value def = Value()) {
  const Value* v = a.get(index, name);
  return v ? *v : def;
}

bool arg_bool(const CallArgs& a, size_t index, const char* name, bool def) {
  const Value* v = a.get(index, name);
  return v ? v->truthy() : def;
}

Value lower_if_str(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value::string(py_lower(v.s));
  return v;
}

// Attribute getter as jinja2's make_attrgetter / make_multi_attrgetter build it.
std::vector<std::string> split_attrs(const Value& attribute) {
  std::vector<std::string> out;
  if (attribute.is_undefined() || attribute.is_none()) return out;
  if (attribute.is_int()) return {std::to_string(attribute.as_int())};
  std::string s = arg_str(attribute, "attribute");
  size_t start = 0;
  for (;;) {
    size_t c = s.find(',', start);
    out.push_back(s.substr(start, c == std::string::npos ? std::string::npos : c - start));
    if (c == std::string::npos) break;
    start = c + 1;
  }
  return out;
}

Value sort_key(Interp& in, const Value& item, const std::vector<std::string>& attrs, bool cs) {
  if (attrs.empty()) return lower_if_str(item, cs);
  if (attrs.size() == 1) return lower_if_str(in.get_path(item, attrs[0]), cs);
  List parts;
  for (auto& a : attrs) parts.push_back(lower_if_str(in.get_path(item, a), cs));
  return Value::make_list(std::move(parts));
}

// Python int(str): optional sign, digits with single underscores, surrounding whitespace.
bool parse_py_int(const std::string& raw, int64_t base, int64_t& out) {
  std::string s = py_strip(raw, nullptr, true, true);
  std::string digits;
  size_t i = 0;
  bool neg = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
  if (base == 16 && s.compare(i, 2, "0x") == 0) i += 2;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c == '_' && !digits.empty() && i + 1 < s.size() && s[i + 1] != '_') continue;
    int d = (c >= '0' && c <= '9') ? c - '0' : ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ? (c | 0x20) - 'a' + 10 : 99;
    if (d >= base) return false;
    digits += c;
  }
  if (digits.empty()) return false;
  errno = 0;
  long long v = std::strtoll(digits.c_str(), nullptr, int(base));
  if (errno == ERANGE) return false;
  out = neg ? -v : v;
  return true;
}

bool parse_py_float(const std::string& raw, double& out) {
  std::string s = py_strip(raw, nullptr, true, true);
  std::string clean;
  for (size_t i = 0; i < s.size(); ++i)
    if (s[i] != '_') clean += s[i];
  if (clean.empty()) return false;
  std::string low = py_lower(clean);
  if (low == "inf" || low == "+inf" || low == "infinity" || low == "+infinity") { out = INFINITY; return true; }
  if (low == "-inf" || low == "-infinity") { out = -INFINITY; return true; }
  if (low == "nan" || low == "+nan" || low == "-nan") { out = NAN; return true; }
  for (char c : clean)
    if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-')) return false;
  char* end = nullptr;
  out = std::strtod(clean.c_str(), &end);
  return end && *end == 0;
}

Value filter_tojson(const Value& v, const CallArgs& a) {
  // Hugging Face's tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
  JsonOptions o;
  o.ensure_ascii = arg_bool(a, 0, "ensure_ascii", false);
  Value indent = arg(a, 1, "indent");
  if (indent.is_int()) {
    o.indent = int(std::max<int64_t>(0, std::min<int64_t>(indent.as_int(), 1000)));
    o.item_sep = ",";
  } else if (indent.is_string()) {
    o.indent = 0;
    o.indent_str = indent.s;
    o.item_sep = ",";
  }
  Value seps = arg(a, 2, "separators");
  if (seps.is_list_like()) {
    if (seps.list->size() != 2) throw Error("tojson: separators must be a pair");
    o.item_sep = arg_str((*seps.list)[0], "tojson separators");
    o.key_sep = arg_str((*seps.list)[1], "tojson separators");
  }
  o.sort_keys = arg_bool(a, 3, "sort_keys", false);
  return Value::string(to_json(v, o));
}

double py_round(double x, int64_t ndigits) {
  if (!std::isfinite(x)) return x;
  if (ndigits > 300) return x;
  char buf[512];
  if (ndigits >= 0) {
    std::snprintf(buf, sizeof buf, "%.*f", int(ndigits), x);  // correctly rounded, half-even
    return std::strtod(buf, nullptr);
  }
  double p = std::pow(10.0, double(-ndigits));
  double y = x / p;
  double r = std::nearbyint(y);
  return r * p;
}

List select_items(Interp& in, const Value& v, const CallArgs& a, bool want, bool by_attr) {
  List out;
  size_t first = by_attr ? 1 : 0;
  std::string attr = by_attr ? arg_str(arg(a, 0, "attribute"), "selectattr attribute") : "";
  std::string test = a.pos.size() > first ? arg_str(a.pos[first], "test name") : "";
  CallArgs targs;
  for (size_t k = first + 1; k < a.pos.size(); ++k) targs.pos.push_back(a.pos[k]);
  for (auto& item : in.iterate(v)) {
    in.step();
    Value x = by_attr ? in.get_path(item, attr) : item;
    bool r = test.empty() ? x.truthy() : apply_test(in, test, x, targs);
    if (r == want) out.push_back(item);
  }
  return out;
}

}  // namespace

static Value apply_filter_impl(Interp& in, const std::string& name, const Value& v, CallArgs& a);

Value apply_filter(Interp& in, const std::string& name, const Value& v, CallArgs& a) {
  Value r = apply_filter_impl(in, name, v, a);
  // Text filters keep a Markup string Markup (jinja2 runs them through Markup's methods).
  if (v.markup && r.is_string() &&
      (name == "upper" || name == "lower" || name == "trim" || name == "string" || name == "capitalize" ||
       name == "title" || name == "replace" || name == "indent" || name == "center" || name == "default" ||
       name == "d" || name == "first" || name == "last" || name == "reverse"))
    r.markup = true;
  return r;
}

static Value apply_filter_impl(Interp& in, const std::string& name, const Value& v, CallArgs& a) {
  const std::string& n = name;
  if (n == "safe") return v.markup ? v : make_markup(to_str(v));
  if (n == "default" || n == "d") {
    bool boolean = arg_bool(a, 1, "boolean", false);
    if (v.is_undefined() || (boolean && !v.truthy())) return arg(a, 0, "default_value", Value::string(""));
    return v;
  }
  if (n == "length" || n == "count") {
    switch (v.kind) {
      case Kind::Undefined: return Value::integer(0);
      case Kind::String: return Value::integer(int64_t(utf8_length(v.s)));
      case Kind::List:
      case Kind::Tuple: return Value::integer(int64_t(v.list->size()));
      case Kind::Dict: return Value::integer(int64_t(v.dict->items.size()));
      default: throw Error("object of type '" + type_name(v) + "' has no len()");
    }
  }
  if (n == "string") return Value::string(to_str(v));
  if (n == "upper") return Value::string(py_upper(to_str(v)));
  if (n == "lower") return Value::string(py_lower(to_str(v)));
  if (n == "capitalize") return Value::string(py_capitalize(to_str(v)));
  if (n == "title") {
    // jinja2's title: words start after '-', whitespace or an opening bracket.
    std::string s = to_str(v), out;
    bool start = true;
    for (uint32_t c : utf8_decode(s)) {
      bool sep = cp_is_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
      if (start && !sep && c == 0xdf) out += "SS";
      else utf8_append(out, sep ? c : start ? cp_upper(c) : cp_lower(c));
      start = sep;
    }
    return Value::string(out);
  }
  if (n == "trim") {
    Value chars = arg(a, 0, "chars");
    return Value::string(py_strip(to_str(v), &chars, true, true));
  }
  if (n == "replace") {
    CallArgs m;
    m.pos = a.pos;
    Value method = get_method(in, Value::string(to_str(v)), "replace");
    const Value* cnt = a.get(2, "count");
    if (cnt && m.pos.size() < 3) m.pos.push_back(*cnt);
    return in.call(method, m);
  }
  if (n == "join") {
    std::string sep = to_str(arg(a, 0, "d", Value::string("")));
    Value attribute = arg(a, 1, "attribute");
    std::string out;
    bool first = true;
    for (auto& x : in.iterate(v)) {
      if (!first) out += sep;
      first = false;
      out += to_str(attribute.is_undefined() || attribute.is_none() ? x : in.get_path(x, to_str(attribute)));
      in.check_size(out.size());
    }
    return Value::string(out);
  }
  if (n == "first") {
    if (v.is_string()) {
      auto cps = utf8_decode(v.s);
      return cps.empty() ? Value::undefined("no first item, sequence was empty") : Value::string(utf8_encode(cps, 0, 1));
    }
    List items = in.iterate(v);
    return items.empty() ? Value::undefined("no first item, sequence was empty") : items.front();
  }
  if (n == "last") {
    List items = in.iterate(v);
    return items.empty() ? Value::undefined("no last item, sequence was empty") : items.back();
  }
  if (n == "list") return Value::make_list(in.iterate(v));
  if (n == "items") {
    if (v.is_undefined()) return Value::make_list();
    if (!v.is_mapping()) throw Error("items filter: a mapping is required, not " + type_name(v));
    List out;
    for (auto& [k, x] : v.dict->items) out.push_back(Value::make_tuple({k, x}));
    return Value::make_list(std::move(out));
  }
  if (n == "reverse") {
    if (v.is_string()) {
      auto cps = utf8_decode(v.s);
      std::reverse(cps.begin(), cps.end());
      return Value::string(utf8_encode(cps, 0, cps.size()));
    }
    List items = in.iterate(v);
    std::reverse(items.begin(), items.end());
    return Value::make_list(std::move(items));
  }
  if (n == "tojson") return filter_tojson(v, a);
  if (n == "int") {
    Value def = arg(a, 0, "default", Value::integer(0));
    int64_t base = a.get(1, "base") ? arg_int(*a.get(1, "base"), "int base") : 10;
    if (v.is_int()) return Value::integer(v.as_int());
    if (v.kind == Kind::Float) {
      if (!std::isfinite(v.f) || std::fabs(v.f) > 9.2e18) return def;
      return Value::integer(int64_t(v.f));
    }
    if (v.is_string()) {
      int64_t r;
      if (parse_py_int(v.s, base, r)) return Value::integer(r);
      double d;
      if (parse_py_float(v.s, d) && std::isfinite(d) && std::fabs(d) < 9.2e18) return Value::integer(int64_t(d));
    }
    return def;
  }
  if (n == "float") {
    Value def = arg(a, 0, "default", Value::number(0.0));
    if (v.is_number()) return Value::number(v.as_double());
    double d;
    if (v.is_string() && parse_py_float(v.s, d)) return Value::number(d);
    return def;
  }
  if (n == "abs") {
    if (v.kind == Kind::Float) return Value::number(std::fabs(v.f));
    if (v.is_int()) return Value::integer(v.as_int() < 0 ? -v.as_int() : v.as_int());
    throw Error("bad operand type for abs(): '" + type_name(v) + "'");
  }
  if (n == "round") {
    int64_t prec = a.get(0, "precision") ? arg_int(*a.get(0, "precision"), "round precision") : 0;
    std::string method = to_str(arg(a, 1, "method", Value::string("common")));
    if (!v.is_number()) throw Error("round filter: a number is required, not " + type_name(v));
    if (method == "common") {
      if (v.is_int()) return Value::integer(v.as_int());
      return Value::number(py_round(v.f, prec));
    }
    double p = std::pow(10.0, double(prec));
    if (method == "floor") return Value::number(std::floor(v.as_double() * p) / p);
    if (method == "ceil") return Value::number(std::ceil(v.as_double() * p) / p);
    throw Error("round filter: method must be common, ceil or floor");
  }
  if (n == "escape" || n == "e") return v.markup ? v : make_markup(escape_html(to_str(v)));
  if (n == "forceescape") return make_markup(escape_html(to_str(v)));
  if (n == "pprint") return Value::string(to_repr(v));
  if (n == "center") {
    Value width = arg(a, 0, "width", Value::integer(80));
    CallArgs m;
    m.pos.push_back(width);
    return in.call(get_method(in, Value::string(to_str(v)), "center"), m);
  }
  if (n == "indent") {
    Value w = arg(a, 0, "width", Value::integer(4));
    std::string ind = w.is_string() ? w.s : std::string(size_t(std::clamp<int64_t>(arg_int(w, "indent width"), 0, 1000)), ' ');
    bool first = arg_bool(a, 1, "first", false), blank = arg_bool(a, 2, "blank", false);
    std::string s = to_str(v) + "\n";
    // splitlines on \n, \r\n, \r (the separators templates produce)
    std::vector<std::string> lines;
    size_t start = 0;
    for (size_t i = 0; i < s.size(); ++i)
      if (s[i] == '\n' || s[i] == '\r') {
        lines.push_back(s.substr(start, i - start));
        if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
        start = i + 1;
      }
    if (start < s.size()) lines.push_back(s.substr(start));
    std::string out;
    for (size_t k = 0; k < lines.size(); ++k) {
      if (k) out += "\n";
      if (k == 0 || blank || !lines[k].empty()) {
        if (k > 0 || first) out += ind;
      }
      out += lines[k];
      in.check_size(out.size());
    }
    return Value::string(out);
  }
  if (n == "wordcount") {
    int64_t count = 0;
    bool in_word = false;
    for (uint32_t c : utf8_decode(to_str(v))) {
      bool w = cp_is_alnum(c) || c == '_';
      if (w && !in_word) ++count;
      in_word = w;
    }
    return Value::integer(count);
  }
  if (n == "truncate") {
    std::string s = to_str(v);
    int64_t length = a.get(0, "length") ? arg_int(*a.get(0, "length"), "truncate length") : 255;
    bool killwords = arg_bool(a, 1, "killwords", false);
    std::string end = to_str(arg(a, 2, "end", Value::string("...")));
    int64_t leeway = a.get(3, "leeway") ? arg_int(*a.get(3, "leeway"), "truncate leeway") : 5;
    auto cps = utf8_decode(s);
    if (int64_t(cps.size()) <= length + leeway) return Value::string(s);
    int64_t keep = std::max<int64_t>(0, length - int64_t(utf8_length(end)));
    std::string head = utf8_encode(cps, 0, size_t(keep));
    if (!killwords) {
      size_t sp = head.rfind(' ');
      if (sp != std::string::npos) head = head.substr(0, sp);
    }
    return Value::string(head + end);
  }
  if (n == "striptags") {
    std::string s = to_str(v), out;
    bool tag = false;
    for (char c : s) {
      if (c == '<') tag = true;
      else if (c == '>' && tag) tag = false;
      else if (!tag) out += c;
    }
    CallArgs none;
    Value parts = in.call(get_method(in, Value::string(out), "split"), none);
    CallArgs j;
    j.pos.push_back(parts);
    return in.call(get_method(in, Value::string(" "), "join"), j);
  }
  if (n == "format") {
    if (!a.kw.empty()) {
      Value d = Value::make_dict();
      for (auto& [k, x] : a.kw) d.dict->set(k, x);
      return Value::string(py_format(in, to_str(v), d));
    }
    return Value::string(py_format(in, to_str(v), Value::make_tuple(a.pos)));
  }
  if (n == "attr") {
    std::string attr = arg_str(arg(a, 0, "name"), "attr");
    if (v.kind == Kind::Dict) return get_method(in, v, attr);
    return in.get_attr(v, attr);
  }
  if (n == "batch" || n == "slice") {
    int64_t size = arg_int(arg(a, 0, n == "batch" ? "linecount" : "slices"), n.c_str());
    if (size <= 0) throw Error(n + " filter: size must be positive");
    const Value* fill = a.get(1, "fill_with");
    List items = in.iterate(v), out;
    if (n == "batch") {
      for (size_t k = 0; k < items.size(); k += size_t(size)) {
        List chunk(items.begin() + long(k), items.begin() + long(std::min(items.size(), k + size_t(size))));
        if (fill && !fill->is_none())
          while (int64_t(chunk.size()) < size) chunk.push_back(*fill);
        out.push_back(Value::make_list(std::move(chunk)));
      }
    } else {
      size_t len = items.size(), per = len / size_t(size), extra = len % size_t(size), offset = 0;
      for (size_t k = 0; k < size_t(size); ++k) {
        size_t start = offset + k * per + std::min(k, extra);
        size_t end = offset + (k + 1) * per + std::min(k + 1, extra);
        List chunk(items.begin() + long(start), items.begin() + long(end));
        if (fill && !fill->is_none() && k >= extra) chunk.push_back(*fill);
        out.push_back(Value::make_list(std::move(chunk)));
      }
    }
    return Value::make_list(std::move(out));
  }
  if (n == "sort") {
    bool reverse = arg_bool(a, 0, "reverse", false), cs = arg_bool(a, 1, "case_sensitive", false);
    auto attrs = split_attrs(arg(a, 2, "attribute"));
    List items = in.iterate(v);
    std::vector<std::pair<Value, size_t>> keyed;
    for (size_t k = 0; k < items.size(); ++k) keyed.emplace_back(sort_key(in, items[k], attrs, cs), k);
    std::stable_sort(keyed.begin(), keyed.end(), [&](auto& x, auto& y) {
      return reverse ? compare(y.first, x.first) < 0 : compare(x.first, y.first) < 0;
    });
    List out;
    for (auto& [key, k] : keyed) out.push_back(items[k]);
    return Value::make_list(std::move(out));
  }
  if (n == "dictsort") {
    if (!v.is_mapping()) throw Error("dictsort: a mapping is required, not " + type_name(v));
    bool cs = arg_bool(a, 0, "case_sensitive", false);
    std::string by = to_str(arg(a, 1, "by", Value::string("key")));
    bool reverse = arg_bool(a, 2, "reverse", false);
    if (by != "key" && by != "value") throw Error("dictsort: by must be 'key' or 'value'");
    List out;
    for (auto& [k, x] : v.dict->items) out.push_back(Value::make_tuple({k, x}));
    size_t pos = by == "key" ? 0 : 1;
    std::stable_sort(out.begin(), out.end(), [&](const Value& x, const Value& y) {
      Value kx = lower_if_str((*x.list)[pos], cs), ky = lower_if_str((*y.list)[pos], cs);
      return reverse ? compare(ky, kx) < 0 : compare(kx, ky) < 0;
    });
    return Value::make_list(std::move(out));
  }
  if (n == "unique") {
    bool cs = arg_bool(a, 0, "case_sensitive", false);
    auto attrs = split_attrs(arg(a, 1, "attribute"));
    List out, seen;
    for (auto& item : in.iterate(v)) {
      Value key = sort_key(in, item, attrs, cs);
      bool dup = false;
      for (auto& s : seen) dup = dup || equals(s, key);
      if (!dup) {
        seen.push_back(key);
        out.push_back(item);
      }
    }
    return Value::make_list(std::move(out));
  }
  if (n == "min" || n == "max") {
    bool cs = arg_bool(a, 0, "case_sensitive", false);
    auto attrs = split_attrs(arg(a, 1, "attribute"));
    List items = in.iterate(v);
    if (items.empty()) return Value::undefined("no " + n + " item, sequence was empty");
    size_t best = 0;
    Value best_key = sort_key(in, items[0], attrs, cs);
    for (size_t k = 1; k < items.size(); ++k) {
      Value key = sort_key(in, items[k], attrs, cs);
      int c = compare(key, best_key);
      if (n == "min" ? c < 0 : c > 0) {
        best = k;
        best_key = key;
      }
    }
    return items[best];
  }
  if (n == "sum") {
    Value attribute = arg(a, 0, "attribute");
    Value total = arg(a, 1, "start", Value::integer(0));
    for (auto& item : in.iterate(v))
      total = binary_op(in, "+", total, attribute.is_undefined() || attribute.is_none() ? item : in.get_path(item, to_str(attribute)));
    return total;
  }
  if (n == "map") {
    List out;
    const Value* attribute = nullptr;
    for (auto& kv : a.kw)
      if (kv.first == "attribute") attribute = &kv.second;
    if (attribute) {
      const Value* def = nullptr;
      for (auto& kv : a.kw)
        if (kv.first == "default") def = &kv.second;
      for (auto& item : in.iterate(v)) {
        in.step();
        Value x = in.get_path(item, to_str(*attribute));
        out.push_back(x.is_undefined() && def ? *def : x);
      }
      return Value::make_list(std::move(out));
    }
    if (a.pos.empty()) throw Error("map: a filter name or attribute= is required");
    std::string fname = arg_str(a.pos[0], "map filter name");
    CallArgs fargs;
    fargs.pos.assign(a.pos.begin() + 1, a.pos.end());
    fargs.kw = a.kw;
    for (auto& item : in.iterate(v)) {
      in.step();
      CallArgs copy = fargs;
      out.push_back(apply_filter(in, fname, item, copy));
    }
    return Value::make_list(std::move(out));
  }
  if (n == "select" || n == "reject") return Value::make_list(select_items(in, v, a, n == "select", false));
  if (n == "selectattr" || n == "rejectattr")
    return Value::make_list(select_items(in, v, a, n == "selectattr", true));
  if (n == "groupby") {
    std::string attr = to_str(arg(a, 0, "attribute"));
    const Value* def = a.get(1, "default");
    bool cs = arg_bool(a, 2, "case_sensitive", false);
    List items = in.iterate(v);
    std::vector<std::pair<Value, Value>> keyed;
    for (auto& item : items) {
      Value k = in.get_path(item, attr);
      if (k.is_undefined() && def) k = *def;
      keyed.emplace_back(lower_if_str(k, cs), item);
    }
    std::stable_sort(keyed.begin(), keyed.end(), [](auto& x, auto& y) { return compare(x.first, y.first) < 0; });
    List out;
    for (size_t k = 0; k < keyed.size();) {
      List group;
      size_t j = k;
      for (; j < keyed.size() && equals(keyed[j].first, keyed[k].first); ++j) group.push_back(keyed[j].second);
      Value grouper = cs ? keyed[k].first : in.get_path(group[0], attr);
      if (grouper.is_undefined() && def) grouper = *def;
      out.push_back(Value::make_tuple({grouper, Value::make_list(std::move(group))}));
      k = j;
    }
    return Value::make_list(std::move(out));
  }
  throw Error("no filter named '" + name + "'");
}

}  // namespace slm::jinja

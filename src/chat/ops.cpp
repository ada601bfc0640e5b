// Python's arithmetic, concatenation and membership operators on template values.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "chat/interp.h"
#include "chat/utf8.h"
#include "slm/error.h"

namespace slm::jinja {

static Error type_error(const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined() && !a.s.empty()) return Error(a.s);
  if (b.is_undefined() && !b.s.empty()) return Error(b.s);
  return Error("unsupported operand type(s) for " + op + ": '" + type_name(a) + "' and '" +
               type_name(b) + "'");
}

static Value repeat(Interp& in, const Value& seq, int64_t n) {
  if (n < 0) n = 0;
  size_t total;
  if (__builtin_mul_overflow(seq.is_string() ? seq.s.size() : seq.list->size(), size_t(n), &total))
    throw Error("repeated sequence too large");
  if (seq.is_string()) {
    in.check_size(total);
    std::string out;
    out.reserve(seq.s.size() * size_t(n));
    for (int64_t k = 0; k < n; ++k) out += seq.s;
    Value r = Value::string(std::move(out));
    r.markup = seq.markup;
    return r;
  }
  in.check_items(total);
  List out;
  for (int64_t k = 0; k < n; ++k) out.insert(out.end(), seq.list->begin(), seq.list->end());
  return seq.kind == Kind::Tuple ? Value::make_tuple(std::move(out)) : Value::make_list(std::move(out));
}

static double py_fmod(double a, double b) {
  double m = std::fmod(a, b);
  if (m != 0 && ((m < 0) != (b < 0))) m += b;
  return m;
}

Value binary_op(Interp& in, const std::string& op, const Value& a, const Value& b) {
  if (op == "~") {
    std::string s = to_str(a);
    s += to_str(b);
    return Value::string(std::move(s));
  }
  bool nums = a.is_number() && b.is_number();
  bool floats = nums && (a.kind == Kind::Float || b.kind == Kind::Float);
  if (op == "+") {
    if (nums) {
      if (floats) return Value::number(a.as_double() + b.as_double());
      int64_t r;
      if (__builtin_add_overflow(a.as_int(), b.as_int(), &r)) throw Error("integer overflow");
      return Value::integer(r);
    }
    if (a.is_string() && b.is_string()) {
      // markupsafe: Markup + str escapes the plain side and stays Markup.
      if (a.markup || b.markup)
        return make_markup((a.markup ? a.s : escape_html(a.s)) + (b.markup ? b.s : escape_html(b.s)));
      return Value::string(a.s + b.s);
    }
    if (a.is_list_like() && a.kind == b.kind) {
      in.check_items(a.list->size() + b.list->size());
      List out = *a.list;
      out.insert(out.end(), b.list->begin(), b.list->end());
      return a.kind == Kind::Tuple ? Value::make_tuple(std::move(out)) : Value::make_list(std::move(out));
    }
    throw type_error("+", a, b);
  }
  if (op == "-") {
    if (!nums) throw type_error("-", a, b);
    if (floats) return Value::number(a.as_double() - b.as_double());
    int64_t r;
    if (__builtin_sub_overflow(a.as_int(), b.as_int(), &r)) throw Error("integer overflow");
    return Value::integer(r);
  }
  if (op == "*") {
    if (nums) {
      if (floats) return Value::number(a.as_double() * b.as_double());
      int64_t r;
      if (__builtin_mul_overflow(a.as_int(), b.as_int(), &r)) throw Error("integer overflow");
      return Value::integer(r);
    }
    if ((a.is_string() || a.is_list_like()) && b.is_int()) return repeat(in, a, b.as_int());
    if ((b.is_string() || b.is_list_like()) && a.is_int()) return repeat(in, b, a.as_int());
    throw type_error("*", a, b);
  }
  if (op == "/") {
    if (!nums) throw type_error("/", a, b);
    if (b.as_double() == 0) throw Error("division by zero");
    return Value::number(a.as_double() / b.as_double());
  }
  if (op == "//") {
    if (!nums) throw type_error("//", a, b);
    if (b.as_double() == 0) throw Error("integer division or modulo by zero");
    if (floats) return Value::number(std::floor(a.as_double() / b.as_double()));
    int64_t x = a.as_int(), y = b.as_int();
    if (x == INT64_MIN && y == -1) throw Error("integer overflow");
    int64_t q = x / y;
    if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
    return Value::integer(q);
  }
  if (op == "%") {
    if (a.is_string()) {
      if (!a.markup) return Value::string(py_format(in, a.s, b));
      // Markup % args escapes the arguments.
      auto esc = [](const Value& x) { return x.is_string() && !x.markup ? make_markup(escape_html(x.s)) : x; };
      Value args = b;
      if (b.kind == Kind::Tuple) {
        List items;
        for (auto& x : *b.list) items.push_back(esc(x));
        args = Value::make_tuple(std::move(items));
      } else {
        args = esc(b);
      }
      return make_markup(py_format(in, a.s, args));
    }
    if (!nums) throw type_error("%", a, b);
    if (b.as_double() == 0) throw Error("integer division or modulo by zero");
    if (floats) return Value::number(py_fmod(a.as_double(), b.as_double()));
    int64_t x = a.as_int(), y = b.as_int();
    if (y == -1) return Value::integer(0);
    int64_t m = x % y;
    if (m != 0 && ((m < 0) != (y < 0))) m += y;
    return Value::integer(m);
  }
  if (op == "**") {
    if (!nums) throw type_error("**", a, b);
    if (floats || b.as_int() < 0) return Value::number(std::pow(a.as_double(), b.as_double()));
    int64_t base = a.as_int(), e = b.as_int(), r = 1;
    while (e > 0) {
      if (e & 1)
        if (__builtin_mul_overflow(r, base, &r)) throw Error("integer overflow");
      e >>= 1;
      if (e > 0 && __builtin_mul_overflow(base, base, &base)) throw Error("integer overflow");
    }
    return Value::integer(r);
  }
  throw Error("unknown operator " + op);
}

bool contains(const Value& c, const Value& item) {
  switch (c.kind) {
    case Kind::Undefined: return false;
    case Kind::String:
      if (!item.is_string())
        throw Error("'in <string>' requires string as left operand, not " + type_name(item));
      return c.s.find(item.s) != std::string::npos;
    case Kind::List:
    case Kind::Tuple:
      for (auto& x : *c.list)
        if (equals(x, item)) return true;
      return false;
    case Kind::Dict: return c.dict->find(item) != nullptr;
    default: throw Error("argument of type '" + type_name(c) + "' is not iterable");
  }
}

// printf-style `str % args` for the conversions templates use: s r d i f F e g x X c %.
std::string py_format(Interp& in, const std::string& fmt, const Value& args) {
  List vals = args.kind == Kind::Tuple ? *args.list : List{args};
  size_t next = 0;
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out += fmt[i];
      continue;
    }
    if (++i >= fmt.size()) throw Error("incomplete format");
    if (fmt[i] == '%') {
      out += '%';
      continue;
    }
    const Value* named = nullptr;
    if (fmt[i] == '(') {
      size_t close = fmt.find(')', i);
      if (close == std::string::npos || !args.is_mapping()) throw Error("format requires a mapping");
      named = args.dict->find(fmt.substr(i + 1, close - i - 1));
      if (!named) throw Error("format key '" + fmt.substr(i + 1, close - i - 1) + "' missing");
      i = close + 1;
    }
    std::string spec = "%";
    while (i < fmt.size() && std::string("-+ #0123456789.").find(fmt[i]) != std::string::npos) spec += fmt[i++];
    if (i >= fmt.size()) throw Error("incomplete format");
    char conv = fmt[i];
    const Value* v = named;
    if (!v) {
      if (next >= vals.size()) throw Error("not enough arguments for format string");
      v = &vals[next++];
    }
    char buf[512];
    std::string s;
    switch (conv) {
      case 's':
      case 'r': {
        s = conv == 's' ? to_str(*v) : to_repr(*v);
        // width/alignment on text: apply by hand to stay UTF-8 safe
        int width = 0;
        bool left = spec.find('-') != std::string::npos;
        size_t dot = spec.find('.');
        std::string w = spec.substr(1, dot == std::string::npos ? std::string::npos : dot - 1);
        for (char c : w)
          if (c >= '0' && c <= '9') width = std::min(width * 10 + (c - '0'), 1 << 30);
        in.check_size(size_t(width));
        if (dot != std::string::npos) {
          size_t prec = size_t(std::atoi(spec.c_str() + dot + 1));
          auto cps = utf8_decode(s);
          if (cps.size() > prec) s = utf8_encode(cps, 0, prec);
        }
        size_t len = utf8_length(s);
        if (int(len) < width) s = left ? s + std::string(size_t(width) - len, ' ') : std::string(size_t(width) - len, ' ') + s;
        break;
      }
      case 'd':
      case 'i':
      case 'x':
      case 'X':
      case 'o': {
        if (!v->is_number()) throw Error("%" + std::string(1, conv) + " format: a number is required, not " + type_name(*v));
        long long n = v->kind == Kind::Float ? (long long)v->f : (long long)v->as_int();
        std::snprintf(buf, sizeof buf, (spec + "ll" + (conv == 'i' ? 'd' : conv)).c_str(), n);
        s = buf;
        break;
      }
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G':
        if (!v->is_number()) throw Error("%" + std::string(1, conv) + " format: a number is required, not " + type_name(*v));
        std::snprintf(buf, sizeof buf, (spec + conv).c_str(), v->as_double());
        s = buf;
        break;
      case 'c':
        if (v->is_int()) utf8_append(s, uint32_t(v->as_int()));
        else s = to_str(*v);
        break;
      default: throw Error(std::string("unsupported format character '") + conv + "'");
    }
    out += s;
    in.check_size(out.size());
  }
  if (next < vals.size() && args.kind == Kind::Tuple)
    throw Error("not all arguments converted during string formatting");
  return out;
}

}  // namespace slm::jinja

// jinja2's built-in tests (`x is defined`, `n is divisibleby 3`, ...).
#include <cmath>

#include "chat/interp.h"
#include "chat/utf8.h"
#include "slm/error.h"

namespace slm::jinja {

bool apply_test(Interp& in, const std::string& name, const Value& v, CallArgs& a) {
  (void)in;
  const std::string& n = name;
  auto other = [&]() -> const Value& {
    if (a.pos.empty() && a.kw.empty()) throw Error("test '" + name + "' needs an argument");
    return a.pos.empty() ? a.kw[0].second : a.pos[0];
  };
  if (n == "defined") return !v.is_undefined();
  if (n == "undefined") return v.is_undefined();
  if (n == "none") return v.is_none();
  if (n == "boolean") return v.kind == Kind::Bool;
  if (n == "true") return v.kind == Kind::Bool && v.b;
  if (n == "false") return v.kind == Kind::Bool && !v.b;
  if (n == "integer") return v.kind == Kind::Int;
  if (n == "float") return v.kind == Kind::Float;
  if (n == "number") return v.is_number();
  if (n == "string") return v.is_string();
  if (n == "mapping") return v.kind == Kind::Dict;
  if (n == "sequence") return v.is_string() || v.is_list_like() || v.kind == Kind::Dict;
  if (n == "iterable") return v.is_undefined() || v.is_string() || v.is_list_like() || v.kind == Kind::Dict;
  if (n == "callable") return v.kind == Kind::Func;
  if (n == "escaped") return false;
  if (n == "odd" || n == "even") {
    if (!v.is_number()) throw Error("test '" + n + "' needs a number, not " + type_name(v));
    if (v.kind == Kind::Float) {
      double m = std::fmod(v.f, 2.0);
      return n == "odd" ? std::fabs(m) == 1.0 : m == 0.0;
    }
    int64_t m = v.as_int() % 2;
    return n == "odd" ? m != 0 : m == 0;
  }
  if (n == "divisibleby") {
    const Value& d = other();
    if (!v.is_number() || !d.is_number()) throw Error("divisibleby needs numbers");
    if (d.as_double() == 0) throw Error("integer division or modulo by zero");
    if (v.kind == Kind::Float || d.kind == Kind::Float) return std::fmod(v.as_double(), d.as_double()) == 0;
    return v.as_int() % d.as_int() == 0;
  }
  if (n == "eq" || n == "equalto" || n == "==") return equals(v, other());
  if (n == "ne" || n == "!=") return !equals(v, other());
  if (n == "lt" || n == "lessthan" || n == "<") return compare(v, other()) < 0;
  if (n == "le" || n == "<=") return compare(v, other()) <= 0;
  if (n == "gt" || n == "greaterthan" || n == ">") return compare(v, other()) > 0;
  if (n == "ge" || n == ">=") return compare(v, other()) >= 0;
  if (n == "in") return contains(other(), v);
  if (n == "sameas") {
    const Value& o = other();
    if (v.kind != o.kind) return false;
    switch (v.kind) {
      case Kind::List:
      case Kind::Tuple: return v.list == o.list;
      case Kind::Dict:
      case Kind::Namespace: return v.dict == o.dict;
      case Kind::Func: return v.func == o.func;
      default: return equals(v, o);  // None, True, False and small values are singletons
    }
  }
  if (n == "lower" || n == "upper") {
    if (!v.is_string()) return false;
    bool any = false;
    for (uint32_t c : utf8_decode(v.s)) {
      if (n == "lower" ? cp_is_upper(c) : cp_is_lower(c)) return false;
      any = any || (n == "lower" ? cp_is_lower(c) : cp_is_upper(c));
    }
    return any;
  }
  throw Error("no test named '" + name + "'");
}

}  // namespace slm::jinja

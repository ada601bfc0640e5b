// Python methods of str, list and dict that chat templates call (.strip(), .split(),
// .items(), .get(), .append() ...), returned as bound callables.
#include <algorithm>

#include "chat/interp.h"
#include "chat/utf8.h"
#include "slm/error.h"

namespace slm::jinja {

int64_t arg_int(const Value& v, const char* what) {
  if (!v.is_int()) throw Error(std::string(what) + ": an integer is required, not " + type_name(v));
  return v.as_int();
}

std::string arg_str(const Value& v, const char* what) {
  if (!v.is_string()) throw Error(std::string(what) + ": a string is required, not " + type_name(v));
  return v.s;
}

static List to_strings(const std::vector<std::string>& parts) {
  List out;
  for (auto& p : parts) out.push_back(Value::string(p));
  return out;
}

// str.split / str.rsplit.
static std::vector<std::string> split(const std::string& s, const Value* sep_v, int64_t maxsplit, bool from_right) {
  std::vector<std::string> parts;
  if (!sep_v || sep_v->is_none()) {
    auto cps = utf8_decode(s);
    if (!from_right) {
      size_t i = 0, n = cps.size();
      while (true) {
        while (i < n && cp_is_space(cps[i])) ++i;
        if (i >= n) break;
        if (maxsplit >= 0 && int64_t(parts.size()) == maxsplit) {
          parts.push_back(utf8_encode(cps, i, n));
          break;
        }
        size_t j = i;
        while (j < n && !cp_is_space(cps[j])) ++j;
        parts.push_back(utf8_encode(cps, i, j));
        i = j;
      }
    } else {
      size_t n = cps.size(), i = n;
      while (true) {
        while (i > 0 && cp_is_space(cps[i - 1])) --i;
        if (i == 0) break;
        if (maxsplit >= 0 && int64_t(parts.size()) == maxsplit) {
          parts.push_back(utf8_encode(cps, 0, i));
          break;
        }
        size_t j = i;
        while (j > 0 && !cp_is_space(cps[j - 1])) --j;
        parts.push_back(utf8_encode(cps, j, i));
        i = j;
      }
      std::reverse(parts.begin(), parts.end());
    }
    return parts;
  }
  std::string sep = arg_str(*sep_v, "split");
  if (sep.empty()) throw Error("split: empty separator");
  if (!from_right) {
    size_t start = 0;
    while (true) {
      size_t at = s.find(sep, start);
      if (at == std::string::npos || (maxsplit >= 0 && int64_t(parts.size()) == maxsplit)) {
        parts.push_back(s.substr(start));
        break;
      }
      parts.push_back(s.substr(start, at - start));
      start = at + sep.size();
    }
  } else {
    size_t end = s.size();
    while (true) {
      size_t at = end >= sep.size() ? s.rfind(sep, end - sep.size()) : std::string::npos;
      if (at == std::string::npos || (maxsplit >= 0 && int64_t(parts.size()) == maxsplit)) {
        parts.push_back(s.substr(0, end));
        break;
      }
      parts.push_back(s.substr(at + sep.size(), end - at - sep.size()));
      end = at;
    }
    std::reverse(parts.begin(), parts.end());
  }
  return parts;
}

// Python's start/end arguments as byte offsets into a UTF-8 string.
static void str_range(const std::string& s, const CallArgs& a, size_t first, size_t& b, size_t& e) {
  auto cps = utf8_decode(s);
  int64_t n = int64_t(cps.size());
  auto norm = [&](const Value* v, int64_t def) {
    if (!v || v->is_none()) return def;
    int64_t i = arg_int(*v, "index");
    if (i < 0) i = std::max<int64_t>(0, i + n);
    return std::min(i, n);
  };
  int64_t cb = norm(first < a.pos.size() ? &a.pos[first] : nullptr, 0);
  int64_t ce = norm(first + 1 < a.pos.size() ? &a.pos[first + 1] : nullptr, n);
  b = utf8_encode(cps, 0, size_t(cb)).size();
  e = ce < cb ? b : utf8_encode(cps, 0, size_t(ce)).size();
}

static Value str_method(Interp& in, const std::string& self, const std::string& name) {
  auto fn = [&](auto body) { return Value::function(name, body); };
  auto arg0 = [](CallArgs& a, const char* kw) -> const Value* { return a.get(0, kw); };
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    bool l = name != "rstrip", r = name != "lstrip";
    return fn([self, l, r, arg0](CallArgs& a) { return Value::string(py_strip(self, arg0(a, "chars"), l, r)); });
  }
  if (name == "upper") return fn([self](CallArgs&) { return Value::string(py_upper(self)); });
  if (name == "casefold") return fn([self](CallArgs&) { return Value::string(py_lower(self)); });
  if (name == "removeprefix" || name == "removesuffix") {
    bool prefix = name == "removeprefix";
    return fn([self, prefix](CallArgs& a) {
      if (a.pos.empty()) throw Error("removeprefix/removesuffix: missing argument");
      std::string x = arg_str(a.pos[0], "removeprefix");
      if (x.size() <= self.size()) {
        if (prefix && self.compare(0, x.size(), x) == 0) return Value::string(self.substr(x.size()));
        if (!prefix && self.compare(self.size() - x.size(), x.size(), x) == 0)
          return Value::string(self.substr(0, self.size() - x.size()));
      }
      return Value::string(self);
    });
  }
  if (name == "partition" || name == "rpartition") {
    bool right = name == "rpartition";
    return fn([self, right](CallArgs& a) {
      if (a.pos.empty()) throw Error("partition: missing separator");
      std::string sep = arg_str(a.pos[0], "partition");
      if (sep.empty()) throw Error("partition: empty separator");
      size_t at = right ? self.rfind(sep) : self.find(sep);
      if (at == std::string::npos)
        return right ? Value::make_tuple({Value::string(""), Value::string(""), Value::string(self)})
                     : Value::make_tuple({Value::string(self), Value::string(""), Value::string("")});
      return Value::make_tuple({Value::string(self.substr(0, at)), Value::string(sep),
                                Value::string(self.substr(at + sep.size()))});
    });
  }
  if (name == "lower") return fn([self](CallArgs&) { return Value::string(py_lower(self)); });
  if (name == "title") return fn([self](CallArgs&) { return Value::string(py_title(self)); });
  if (name == "capitalize") return fn([self](CallArgs&) { return Value::string(py_capitalize(self)); });
  if (name == "swapcase")
    return fn([self](CallArgs&) {
      std::string out;
      for (uint32_t c : utf8_decode(self)) utf8_append(out, cp_is_upper(c) ? cp_lower(c) : cp_upper(c));
      return Value::string(out);
    });
  if (name == "split" || name == "rsplit") {
    bool right = name == "rsplit";
    return fn([self, right](CallArgs& a) {
      const Value* m = a.get(1, "maxsplit");
      return Value::make_list(to_strings(split(self, a.get(0, "sep"), m ? arg_int(*m, "maxsplit") : -1, right)));
    });
  }
  if (name == "splitlines")
    return fn([self](CallArgs& a) {
      const Value* keep = a.get(0, "keepends");
      bool keepends = keep && keep->truthy();
      List out;
      size_t start = 0;
      for (size_t i = 0; i < self.size(); ++i) {
        if (self[i] == '\n' || self[i] == '\r') {
          size_t end = i;
          if (self[i] == '\r' && i + 1 < self.size() && self[i + 1] == '\n') ++i;
          out.push_back(Value::string(self.substr(start, (keepends ? i + 1 : end) - start)));
          start = i + 1;
        }
      }
      if (start < self.size()) out.push_back(Value::string(self.substr(start)));
      return Value::make_list(std::move(out));
    });
  if (name == "startswith" || name == "endswith") {
    bool starts = name == "startswith";
    return fn([self, starts](CallArgs& a) {
      if (a.pos.empty()) throw Error("startswith/endswith: missing argument");
      size_t b, e;
      str_range(self, a, 1, b, e);
      std::string sub = self.substr(b, e - b);
      List cands = a.pos[0].kind == Kind::Tuple ? *a.pos[0].list : List{a.pos[0]};
      for (auto& c : cands) {
        std::string p = arg_str(c, starts ? "startswith" : "endswith");
        if (p.size() <= sub.size() &&
            (starts ? sub.compare(0, p.size(), p) == 0 : sub.compare(sub.size() - p.size(), p.size(), p) == 0))
          return Value::boolean(true);
      }
      return Value::boolean(false);
    });
  }
  if (name == "replace")
    return fn([&in, self](CallArgs& a) {
      if (a.pos.size() < 2) throw Error("replace: expected 2 arguments");
      std::string from = arg_str(a.pos[0], "replace"), to = arg_str(a.pos[1], "replace");
      int64_t count = a.pos.size() > 2 ? arg_int(a.pos[2], "replace count") : -1;
      std::string out;
      if (from.empty()) {
        // Python inserts `to` between characters (and at both ends).
        auto cps = utf8_decode(self);
        int64_t done = 0;
        for (size_t k = 0; k <= cps.size(); ++k) {
          if (count < 0 || done < count) {
            out += to;
            ++done;
          }
          if (k < cps.size()) utf8_append(out, cps[k]);
          in.check_size(out.size());
        }
        return Value::string(out);
      }
      size_t pos = 0;
      int64_t done = 0;
      while (count < 0 || done < count) {
        size_t at = self.find(from, pos);
        if (at == std::string::npos) break;
        out.append(self, pos, at - pos);
        out += to;
        in.check_size(out.size());
        pos = at + from.size();
        ++done;
      }
      out.append(self, pos, std::string::npos);
      return Value::string(out);
    });
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    return fn([self, name](CallArgs& a) {
      if (a.pos.empty()) throw Error(name + ": missing argument");
      std::string sub = arg_str(a.pos[0], name.c_str());
      size_t b, e;
      str_range(self, a, 1, b, e);
      std::string hay = self.substr(b, e - b);
      if (name == "count") {
        if (sub.empty()) return Value::integer(int64_t(utf8_length(hay)) + 1);
        int64_t n = 0;
        for (size_t at = hay.find(sub); at != std::string::npos; at = hay.find(sub, at + sub.size())) ++n;
        return Value::integer(n);
      }
      size_t at = (name == "find" || name == "index") ? hay.find(sub) : hay.rfind(sub);
      if (at == std::string::npos) {
        if (name == "index" || name == "rindex") throw Error("substring not found");
        return Value::integer(-1);
      }
      return Value::integer(int64_t(utf8_length(self.substr(0, b + at))));
    });
  }
  if (name == "join")
    return fn([&in, self](CallArgs& a) {
      if (a.pos.empty()) throw Error("join: missing argument");
      std::string out;
      bool first = true;
      for (auto& x : in.iterate(a.pos[0])) {
        if (!first) out += self;
        first = false;
        out += arg_str(x, "join item");
        in.check_size(out.size());
      }
      return Value::string(out);
    });
  if (name == "isdigit" || name == "isnumeric" || name == "isdecimal" || name == "isalpha" ||
      name == "isalnum" || name == "isspace" || name == "isupper" || name == "islower")
    return fn([self, name](CallArgs&) {
      auto cps = utf8_decode(self);
      if (cps.empty()) return Value::boolean(false);
      if (name == "isupper" || name == "islower") {
        bool any = false;
        for (uint32_t c : cps) {
          if (name == "isupper" ? cp_is_lower(c) : cp_is_upper(c)) return Value::boolean(false);
          any = any || (name == "isupper" ? cp_is_upper(c) : cp_is_lower(c));
        }
        return Value::boolean(any);
      }
      for (uint32_t c : cps) {
        bool ok = name == "isalpha" ? cp_is_alpha(c) : name == "isalnum" ? cp_is_alnum(c)
                : name == "isspace" ? cp_is_space(c) : cp_is_digit(c);
        if (!ok) return Value::boolean(false);
      }
      return Value::boolean(true);
    });
  if (name == "center" || name == "ljust" || name == "rjust" || name == "zfill")
    return fn([&in, self, name](CallArgs& a) {
      if (a.pos.empty()) throw Error(name + ": missing width");
      int64_t width = arg_int(a.pos[0], name.c_str());
      in.check_size(size_t(std::max<int64_t>(width, 0)));
      std::string fill = a.pos.size() > 1 ? arg_str(a.pos[1], "fillchar") : " ";
      int64_t len = int64_t(utf8_length(self));
      if (width <= len) return Value::string(self);
      int64_t pad = width - len;
      auto rep = [&](int64_t k) {
        std::string r;
        for (int64_t i = 0; i < k; ++i) r += fill;
        return r;
      };
      if (name == "ljust") return Value::string(self + rep(pad));
      if (name == "rjust") return Value::string(rep(pad) + self);
      if (name == "zfill") {
        if (!self.empty() && (self[0] == '-' || self[0] == '+'))
          return Value::string(self.substr(0, 1) + std::string(size_t(pad), '0') + self.substr(1));
        return Value::string(std::string(size_t(pad), '0') + self);
      }
      int64_t left = pad / 2 + (pad & width & 1);  // Python's rounding for center
      return Value::string(rep(left) + self + rep(pad - left));
    });
  if (name == "format")
    return fn([&in, self](CallArgs& a) {
      // str.format with {} / {0} / {name} fields (no format specs).
      std::string out;
      size_t auto_idx = 0;
      for (size_t i = 0; i < self.size(); ++i) {
        char c = self[i];
        if (c == '{' && i + 1 < self.size() && self[i + 1] == '{') {
          out += '{';
          ++i;
        } else if (c == '}' && i + 1 < self.size() && self[i + 1] == '}') {
          out += '}';
          ++i;
        } else if (c == '{') {
          size_t close = self.find('}', i);
          if (close == std::string::npos) throw Error("format: single '{' encountered");
          std::string field = self.substr(i + 1, close - i - 1);
          field = field.substr(0, field.find_first_of(":!"));
          const Value* v = nullptr;
          if (field.empty()) {
            v = auto_idx < a.pos.size() ? &a.pos[auto_idx] : nullptr;
            ++auto_idx;
          } else if (field.find_first_not_of("0123456789") == std::string::npos) {
            size_t k = std::stoul(field);
            v = k < a.pos.size() ? &a.pos[k] : nullptr;
          } else {
            for (auto& kv : a.kw)
              if (kv.first == field) v = &kv.second;
          }
          if (!v) throw Error("format: missing argument for {" + field + "}");
          out += to_str(*v);
          in.check_size(out.size());
          i = close;
        } else {
          out += c;
        }
      }
      return Value::string(out);
    });
  return Value::undefined("'str object' has no attribute '" + name + "'");
}

static Value list_method(Interp& in, const Value& self, const std::string& name) {
  auto lst = self.list;
  bool tuple = self.kind == Kind::Tuple;
  auto fn = [&](auto body) { return Value::function(name, body); };
  if (name == "index")
    return fn([lst](CallArgs& a) {
      if (a.pos.empty()) throw Error("index: missing argument");
      for (size_t k = 0; k < lst->size(); ++k)
        if (equals((*lst)[k], a.pos[0])) return Value::integer(int64_t(k));
      throw Error(to_repr(a.pos[0]) + " is not in list");
    });
  if (name == "count")
    return fn([lst](CallArgs& a) {
      if (a.pos.empty()) throw Error("count: missing argument");
      int64_t n = 0;
      for (auto& x : *lst) n += equals(x, a.pos[0]);
      return Value::integer(n);
    });
  if (tuple) return Value::undefined("'tuple object' has no attribute '" + name + "'");
  if (name == "append")
    return fn([&in, lst](CallArgs& a) {
      if (a.pos.size() != 1) throw Error("append: expected 1 argument");
      in.check_items(lst->size() + 1);
      check_no_cycle(a.pos[0], lst.get());
      lst->push_back(a.pos[0]);
      return Value::none();
    });
  if (name == "extend")
    return fn([&in, lst](CallArgs& a) {
      if (a.pos.size() != 1) throw Error("extend: expected 1 argument");
      List more = in.iterate(a.pos[0]);
      in.check_items(lst->size() + more.size());
      for (auto& x : more) check_no_cycle(x, lst.get());
      lst->insert(lst->end(), more.begin(), more.end());
      return Value::none();
    });
  if (name == "insert")
    return fn([&in, lst](CallArgs& a) {
      if (a.pos.size() != 2) throw Error("insert: expected 2 arguments");
      in.check_items(lst->size() + 1);
      int64_t n = int64_t(lst->size()), i = arg_int(a.pos[0], "insert");
      if (i < 0) i = std::max<int64_t>(0, i + n);
      i = std::min(i, n);
      check_no_cycle(a.pos[1], lst.get());
      lst->insert(lst->begin() + i, a.pos[1]);
      return Value::none();
    });
  if (name == "pop")
    return fn([lst](CallArgs& a) {
      if (lst->empty()) throw Error("pop from empty list");
      int64_t n = int64_t(lst->size()), i = a.pos.empty() ? n - 1 : arg_int(a.pos[0], "pop");
      if (i < 0) i += n;
      if (i < 0 || i >= n) throw Error("pop index out of range");
      Value v = (*lst)[size_t(i)];
      lst->erase(lst->begin() + i);
      return v;
    });
  if (name == "remove")
    return fn([lst](CallArgs& a) {
      if (a.pos.empty()) throw Error("remove: missing argument");
      for (auto it = lst->begin(); it != lst->end(); ++it)
        if (equals(*it, a.pos[0])) {
          lst->erase(it);
          return Value::none();
        }
      throw Error("list.remove(x): x not in list");
    });
  if (name == "reverse")
    return fn([lst](CallArgs&) {
      std::reverse(lst->begin(), lst->end());
      return Value::none();
    });
  if (name == "copy") return fn([lst](CallArgs&) { return Value::make_list(*lst); });
  if (name == "clear")
    return fn([lst](CallArgs&) {
      lst->clear();
      return Value::none();
    });
  return Value::undefined("'list object' has no attribute '" + name + "'");
}

static Value dict_method(Interp& in, const Value& self, const std::string& name) {
  auto d = self.dict;
  auto fn = [&](auto body) { return Value::function(name, body); };
  if (name == "items")
    return fn([d](CallArgs&) {
      List out;
      for (auto& [k, v] : d->items) out.push_back(Value::make_tuple({k, v}));
      return Value::make_list(std::move(out));
    });
  if (name == "keys")
    return fn([d](CallArgs&) {
      List out;
      for (auto& kv : d->items) out.push_back(kv.first);
      return Value::make_list(std::move(out));
    });
  if (name == "values")
    return fn([d](CallArgs&) {
      List out;
      for (auto& kv : d->items) out.push_back(kv.second);
      return Value::make_list(std::move(out));
    });
  if (name == "get")
    return fn([d](CallArgs& a) {
      if (a.pos.empty()) throw Error("get: missing key");
      if (const Value* v = d->find(a.pos[0])) return *v;
      return a.pos.size() > 1 ? a.pos[1] : Value::none();
    });
  if (name == "pop")
    return fn([d](CallArgs& a) {
      if (a.pos.empty()) throw Error("pop: missing key");
      if (const Value* v = d->find(a.pos[0])) {
        Value out = *v;
        d->erase(a.pos[0]);
        return out;
      }
      if (a.pos.size() > 1) return a.pos[1];
      throw Error("KeyError: " + to_repr(a.pos[0]));
    });
  if (name == "setdefault")
    return fn([d](CallArgs& a) {
      if (a.pos.empty()) throw Error("setdefault: missing key");
      if (const Value* v = d->find(a.pos[0])) return *v;
      Value def = a.pos.size() > 1 ? a.pos[1] : Value::none();
      check_no_cycle(def, d.get());
      d->set(a.pos[0], def);
      return def;
    });
  if (name == "update")
    return fn([&in, d](CallArgs& a) {
      for (auto& src : a.pos) {
        if (!src.is_mapping()) throw Error("update: a mapping is required");
        for (auto& [k, v] : src.dict->items) {
          check_no_cycle(v, d.get());
          d->set(k, v);
        }
      }
      for (auto& [k, v] : a.kw) {
        check_no_cycle(v, d.get());
        d->set(k, v);
      }
      in.check_items(d->items.size());
      return Value::none();
    });
  if (name == "copy")
    return fn([d](CallArgs&) {
      Value c = Value::make_dict();
      c.dict->items = d->items;
      return c;
    });
  if (name == "clear")
    return fn([d](CallArgs&) {
      d->items.clear();
      return Value::none();
    });
  return Value::undefined("'dict object' has no attribute '" + name + "'");
}

Value get_method(Interp& in, const Value& obj, const std::string& name) {
  switch (obj.kind) {
    case Kind::String: return str_method(in, obj.s, name);
    case Kind::List:
    case Kind::Tuple: return list_method(in, obj, name);
    case Kind::Dict: return dict_method(in, obj, name);
    default: return Value::undefined("'" + type_name(obj) + " object' has no attribute '" + name + "'");
  }
}

}  // namespace slm::jinja

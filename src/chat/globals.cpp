// Global functions a chat template can call: range, namespace, dict, joiner, cycler,
// raise_exception and strftime_now (the last two are Hugging Face's).
#include <ctime>

#include "chat/interp.h"
#include "slm/error.h"

namespace slm::jinja {

// strftime with Python's behaviour for the directives templates use; %-d style (glibc's
// no-padding flag) is passed through as well.
std::string strftime_py(const std::string& fmt, const std::tm& t) {
  if (fmt.empty()) return "";
  std::string out(fmt.size() * 4 + 64, '\0');
  for (int tries = 0; tries < 8; ++tries) {
    size_t n = std::strftime(out.data(), out.size(), fmt.c_str(), &t);
    if (n > 0 || out.size() > 1 << 16) {
      out.resize(n);
      return out;
    }
    out.resize(out.size() * 4);
  }
  return "";
}

void add_globals(Frame& f) {
  f.vars["range"] = Value::function("range", [](CallArgs& a) {
    if (a.pos.empty() || a.pos.size() > 3) throw Error("range expected 1 to 3 arguments");
    int64_t start = 0, stop, step = 1;
    if (a.pos.size() == 1) {
      stop = arg_int(a.pos[0], "range");
    } else {
      start = arg_int(a.pos[0], "range");
      stop = arg_int(a.pos[1], "range");
      if (a.pos.size() == 3) step = arg_int(a.pos[2], "range");
    }
    if (step == 0) throw Error("range() arg 3 must not be zero");
    // jinja2's sandbox refuses ranges longer than 100000 items.
    __int128 len = step > 0 ? (stop > start ? (__int128(stop) - start + step - 1) / step : 0)
                            : (start > stop ? (__int128(start) - stop - step - 1) / -step : 0);
    if (len > 100000) throw Error("range too big, maximum size for range is 100000");
    List out;
    out.reserve(size_t(len));
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) out.push_back(Value::integer(i));
    return Value::make_list(std::move(out));
  });
  f.vars["namespace"] = Value::function("namespace", [](CallArgs& a) {
    Value ns = Value::make_namespace();
    for (auto& p : a.pos) {
      if (!p.is_mapping()) throw Error("namespace() positional argument must be a mapping");
      for (auto& [k, v] : p.dict->items) ns.dict->set(k, v);
    }
    for (auto& [k, v] : a.kw) ns.dict->set(k, v);
    return ns;
  });
  f.vars["dict"] = Value::function("dict", [](CallArgs& a) {
    Value d = Value::make_dict();
    for (auto& p : a.pos) {
      if (p.is_mapping()) {
        for (auto& [k, v] : p.dict->items) d.dict->set(k, v);
      } else if (p.is_list_like()) {
        for (auto& pair : *p.list) {
          if (!pair.is_list_like() || pair.list->size() != 2) throw Error("dict(): items must be pairs");
          d.dict->set((*pair.list)[0], (*pair.list)[1]);
        }
      } else {
        throw Error("dict(): cannot convert " + type_name(p));
      }
    }
    for (auto& [k, v] : a.kw) d.dict->set(k, v);
    return d;
  });
  f.vars["joiner"] = Value::function("joiner", [](CallArgs& a) {
    std::string sep = a.pos.empty() ? ", " : to_str(a.pos[0]);
    auto used = std::make_shared<bool>(false);
    return Value::function("joiner", [sep, used](CallArgs&) {
      if (!*used) {
        *used = true;
        return Value::string("");
      }
      return Value::string(sep);
    });
  });
  f.vars["cycler"] = Value::function("cycler", [](CallArgs& a) {
    auto items = std::make_shared<List>(a.pos);
    auto pos = std::make_shared<size_t>(0);
    Value c = Value::make_namespace();
    c.dict->set("next", Value::function("next", [items, pos](CallArgs&) {
      if (items->empty()) return Value::none();
      Value v = (*items)[*pos % items->size()];
      ++*pos;
      return v;
    }));
    return c;
  });
  f.vars["raise_exception"] = Value::function("raise_exception", [](CallArgs& a) -> Value {
    throw Error("chat template raised an exception: " + (a.pos.empty() ? std::string() : to_str(a.pos[0])));
  });
}

}  // namespace slm::jinja

#include "chat/interp.h"

#include "chat/utf8.h"
#include "slm/error.h"

namespace slm::jinja {

const Value* Frame::lookup(const std::string& name) const {
  for (const Frame* f = this; f; f = f->parent.get()) {
    auto it = f->vars.find(name);
    if (it != f->vars.end()) return &it->second;
  }
  return nullptr;
}

void Interp::step() {
  if (++steps_ > limits_.max_steps)
    throw Error("chat template: step limit exceeded (" + std::to_string(limits_.max_steps) +
                "); the template loops too long");
}

void Interp::check_size(size_t n) const {
  if (n > limits_.max_output)
    throw Error("chat template: output size limit exceeded (" +
                std::to_string(limits_.max_output) + " bytes)");
}

void Interp::check_items(size_t n) const {
  if (n > limits_.max_items)
    throw Error("chat template: list size limit exceeded (" + std::to_string(limits_.max_items) +
                " items)");
}

Interp::EvalGuard::EvalGuard(Interp& i) : in(i) {
  if (++in.eval_depth_ > in.limits_.max_eval_depth) {
    --in.eval_depth_;
    throw Error("chat template: nesting depth limit exceeded (" +
                std::to_string(in.limits_.max_eval_depth) + ")");
  }
}

void Interp::append_out(std::string& out, const std::string& s) {
  check_size(out.size() + s.size());
  out += s;
}

std::string Interp::render(const Template& tpl, FramePtr globals) {
  std::string out;
  globals_ = globals;
  while (globals_->parent) globals_ = globals_->parent;
  try {
    exec(tpl.body, globals, out);
  } catch (const Error& e) {
    std::string msg = e.what();
    if (msg.rfind("chat template", 0) == 0) throw;
    throw Error("chat template line " + std::to_string(line_) + ": " + msg);
  }
  return out;
}

Flow Interp::exec(const Body& body, const FramePtr& f, std::string& out) {
  for (const auto& s : body) {
    Flow fl = exec_stmt(*s, f, out);
    if (fl != Flow::Normal) return fl;
  }
  return Flow::Normal;
}

Flow Interp::exec_stmt(const Stmt& s, const FramePtr& f, std::string& out) {
  step();
  EvalGuard guard(*this);
  line_ = s.line;
  switch (s.kind) {
    case StmtKind::Text: append_out(out, s.text); return Flow::Normal;
    case StmtKind::Output: append_out(out, to_str(eval(*s.expr, f))); return Flow::Normal;
    case StmtKind::If:
      for (size_t k = 0; k < s.conds.size(); ++k)
        if (eval(*s.conds[k], f).truthy()) return exec(s.bodies[k], f, out);
      if (s.bodies.size() > s.conds.size()) return exec(s.bodies.back(), f, out);
      return Flow::Normal;
    case StmtKind::For: return exec_for(s, f, out);
    case StmtKind::Set: assign(*s.target, eval(*s.expr, f), f); return Flow::Normal;
    case StmtKind::SetBlock: {
      std::string buf;
      exec(s.bodies[0], f, buf);
      Value v = Value::string(std::move(buf));
      if (s.expr) v = eval_filter(*s.expr, f, &v);
      assign(*s.target, std::move(v), f);
      return Flow::Normal;
    }
    case StmtKind::Macro:
      f->vars[s.text] = make_macro(f, &s.bodies[0], s.params, s.text);
      return Flow::Normal;
    case StmtKind::CallBlock: {
      const Expr& call_expr = *s.expr;
      Value fn = eval(*call_expr.kids[0], f);
      CallArgs args = eval_args(call_expr.args, f);
      args.kw.emplace_back("caller", make_macro(f, &s.bodies[0], s.params, "caller"));
      append_out(out, to_str(call(fn, args)));
      return Flow::Normal;
    }
    case StmtKind::FilterBlock: {
      std::string buf;
      exec(s.bodies[0], f, buf);
      Value v = Value::string(std::move(buf));
      append_out(out, to_str(eval_filter(*s.expr, f, &v)));
      return Flow::Normal;
    }
    case StmtKind::With: {
      auto inner = std::make_shared<Frame>();
      inner->parent = f;
      for (size_t k = 0; k < s.targets.size(); ++k)
        inner->vars[s.targets[k]] = eval(*s.values[k], f);
      return exec(s.bodies[0], inner, out);
    }
    case StmtKind::Do: eval(*s.expr, f); return Flow::Normal;
    case StmtKind::Break: return Flow::Break;
    case StmtKind::Continue: return Flow::Continue;
    case StmtKind::Scope: return exec(s.bodies[0], f, out);
  }
  return Flow::Normal;
}

static void bind_targets(const std::vector<std::string>& targets, const Value& item, Frame& fr) {
  if (targets.size() == 1) {
    fr.vars[targets[0]] = item;
    return;
  }
  List parts;
  if (item.is_list_like()) {
    parts = *item.list;
  } else if (item.is_string()) {
    for (uint32_t c : utf8_decode(item.s)) {
      std::string ch;
      utf8_append(ch, c);
      parts.push_back(Value::string(ch));
    }
  } else {
    throw Error("cannot unpack non-iterable " + type_name(item) + " object");
  }
  if (parts.size() != targets.size())
    throw Error(parts.size() > targets.size()
                    ? "too many values to unpack (expected " + std::to_string(targets.size()) + ")"
                    : "not enough values to unpack (expected " + std::to_string(targets.size()) +
                          ", got " + std::to_string(parts.size()) + ")");
  for (size_t k = 0; k < targets.size(); ++k) fr.vars[targets[k]] = parts[k];
}

Flow Interp::exec_for(const Stmt& s, const FramePtr& f, std::string& out) {
  return run_loop(s, f, eval(*s.expr, f), 1, out);
}

Flow Interp::run_loop(const Stmt& s, const FramePtr& f, const Value& seq, int64_t depth, std::string& out) {
  if (seq.kind == Kind::None || seq.kind == Kind::Bool || seq.is_number() || seq.kind == Kind::Func)
    throw Error("'" + type_name(seq) + "' object is not iterable");
  // Lists are walked by index on the list itself (no copy); the body may even append.
  std::shared_ptr<List> items = seq.is_list_like() ? seq.list : std::make_shared<List>(iterate(seq));
  auto fr = std::make_shared<Frame>();
  fr->parent = f;
  if (s.cond) {  // `for x in xs if cond`: filter first, so loop.length counts what is kept
    auto kept = std::make_shared<List>();
    for (size_t k = 0; k < items->size(); ++k) {
      step();
      Value it = (*items)[k];
      bind_targets(s.targets, it, *fr);
      if (eval(*s.cond, fr).truthy()) kept->push_back(std::move(it));
    }
    items = kept;
    fr->vars.clear();
  }
  if (items->empty()) {
    if (s.bodies.size() > 1) return exec(s.bodies[1], f, out);
    return Flow::Normal;
  }
  const int64_t n = int64_t(items->size());
  // One loop object per loop, updated in place each iteration.
  Value loop = Value::make_dict();
  Dict& d = *loop.dict;
  const char* keys[] = {"index", "index0", "revindex", "revindex0", "first", "last",
                        "length", "depth", "depth0", "previtem", "nextitem", "cycle", "changed"};
  for (const char* k : keys) d.items.emplace_back(Value::string(k), Value());
  auto cur = std::make_shared<int64_t>(0);
  d.items[6].second = Value::integer(n);
  d.items[7].second = Value::integer(depth);
  d.items[8].second = Value::integer(depth - 1);
  if (s.recursive) {  // {% for ... recursive %}: loop(children) renders the body one level down
    const Stmt* stmt = &s;
    std::weak_ptr<Frame> outer = f;
    d.items.emplace_back(Value::string("__call__"), Value::function("loop", [this, stmt, outer, depth](CallArgs& a) {
      if (a.pos.size() != 1) throw Error("loop() takes one iterable");
      if (++depth_ > limits_.max_call_depth) {
        --depth_;
        throw Error("chat template: recursion depth limit exceeded (" + std::to_string(limits_.max_call_depth) +
                    " nested calls)");
      }
      struct Release {
        int& d;
        ~Release() { --d; }
      } release{depth_};
      FramePtr fr = outer.lock();
      if (!fr) fr = globals_;
      std::string buf;
      run_loop(*stmt, fr, a.pos[0], depth + 1, buf);
      return Value::string(std::move(buf));
    }));
  }
  d.items[11].second = Value::function("cycle", [cur](CallArgs& a) {
    if (a.pos.empty()) throw Error("loop.cycle: no items given");
    return a.pos[size_t(*cur) % a.pos.size()];
  });
  // loop.changed(*values): true the first time and whenever the values differ from the last call.
  auto last_seen = std::make_shared<Value>();
  d.items[12].second = Value::function("changed", [last_seen](CallArgs& a) {
    Value now = Value::make_tuple(a.pos);
    if (!last_seen->is_undefined() && equals(*last_seen, now)) return Value::boolean(false);
    *last_seen = now;
    return Value::boolean(true);
  });
  for (int64_t k = 0; k < n && k < int64_t(items->size()); ++k) {
    step();
    *cur = k;
    d.items[0].second = Value::integer(k + 1);
    d.items[1].second = Value::integer(k);
    d.items[2].second = Value::integer(n - k);
    d.items[3].second = Value::integer(n - k - 1);
    d.items[4].second = Value::boolean(k == 0);
    d.items[5].second = Value::boolean(k == n - 1);
    d.items[9].second = k > 0 ? (*items)[size_t(k - 1)] : Value::undefined("'loop' has no previtem");
    d.items[10].second = size_t(k + 1) < items->size() ? (*items)[size_t(k + 1)]
                                                       : Value::undefined("'loop' has no nextitem");
    // jinja2 gives every iteration fresh locals: a {% set %} in the body does not carry
    // over to the next iteration (that is what namespace() is for).
    if (fr.use_count() == 1) {
      fr->vars.clear();
    } else {  // a macro defined in the body kept the old scope alive
      fr = std::make_shared<Frame>();
      fr->parent = f;
    }
    fr->vars["loop"] = loop;
    Value item = (*items)[size_t(k)];
    bind_targets(s.targets, item, *fr);
    Flow fl = exec(s.bodies[0], fr, out);
    if (fl == Flow::Break) break;
  }
  return Flow::Normal;
}

void Interp::assign(const Expr& target, Value v, const FramePtr& f) {
  switch (target.kind) {
    case ExprKind::Name: f->vars[target.name] = std::move(v); return;
    case ExprKind::Tuple: {
      std::vector<std::string> names;
      for (auto& k : target.kids) names.push_back(k->name);
      bind_targets(names, v, *f);
      return;
    }
    case ExprKind::Attr: {
      Value obj = eval(*target.kids[0], f);
      if (obj.kind != Kind::Namespace)
        throw Error("cannot assign attribute '" + target.name + "' on non-namespace object");
      check_no_cycle(v, obj.dict.get());
      obj.dict->set(target.name, std::move(v));
      return;
    }
    default: throw Error("cannot assign to this expression");
  }
}

Value Interp::make_macro(const FramePtr& closure, const Body* body,
                         const std::vector<Param>& params, const std::string& name) {
  // The macro usually lives in the very scope it closes over; holding that scope weakly
  // keeps the pair from keeping each other alive after the render.
  std::weak_ptr<Frame> weak = closure;
  return Value::function(name, [this, weak, body, &params, name](CallArgs& a) {
    if (++depth_ > limits_.max_call_depth) {
      --depth_;
      throw Error("chat template: recursion depth limit exceeded (" +
                  std::to_string(limits_.max_call_depth) + " nested calls)");
    }
    struct Release {
      int& d;
      ~Release() { --d; }
    } release{depth_};
    auto fr = std::make_shared<Frame>();
    fr->parent = weak.lock();
    if (!fr->parent) fr->parent = globals_;
    size_t k = 0;
    for (; k < params.size(); ++k) {
      const Param& p = params[k];
      const Value* given = nullptr;
      for (auto& kv : a.kw)
        if (kv.first == p.name) given = &kv.second;
      if (k < a.pos.size()) {
        if (given) throw Error("macro '" + name + "' got multiple values for '" + p.name + "'");
        fr->vars[p.name] = a.pos[k];
      } else if (given) {
        fr->vars[p.name] = *given;
      } else if (p.def) {
        fr->vars[p.name] = eval(*p.def, fr);
      } else {
        fr->vars[p.name] = Value::undefined("parameter '" + p.name + "' was not provided");
      }
    }
    List extra;
    for (; k < a.pos.size(); ++k) extra.push_back(a.pos[k]);
    fr->vars["varargs"] = Value::make_tuple(std::move(extra));
    Value kwargs = Value::make_dict();
    for (auto& kv : a.kw) {
      bool is_param = false;
      for (auto& p : params) is_param = is_param || p.name == kv.first;
      if (kv.first == "caller") {
        fr->vars["caller"] = kv.second;
      } else if (!is_param) {
        kwargs.dict->set(kv.first, kv.second);
      }
    }
    fr->vars["kwargs"] = kwargs;
    std::string out;
    int saved_line = line_;
    exec(*body, fr, out);
    line_ = saved_line;
    return Value::string(std::move(out));
  });
}

CallArgs Interp::eval_args(const std::vector<Arg>& args, const FramePtr& f) {
  CallArgs out;
  for (const Arg& a : args) {
    Value v = eval(*a.value, f);
    if (a.name.empty()) {
      out.pos.push_back(std::move(v));
    } else if (a.name == "*") {
      for (auto& x : iterate(v)) out.pos.push_back(x);
    } else if (a.name == "**") {
      if (!v.is_mapping()) throw Error("argument after ** must be a mapping, not " + type_name(v));
      for (auto& [k, x] : v.dict->items) out.kw.emplace_back(to_str(k), x);
    } else {
      out.kw.emplace_back(a.name, std::move(v));
    }
  }
  return out;
}

Value Interp::call(const Value& fn, CallArgs& args) {
  if (fn.is_undefined()) throw Error(fn.s.empty() ? "call of an undefined value" : fn.s);
  if (fn.kind == Kind::Dict)  // the loop object of a recursive loop
    if (const Value* c = fn.dict->find("__call__"); c && c->kind == Kind::Func) return c->func->fn(args);
  if (fn.kind != Kind::Func) throw Error("'" + type_name(fn) + "' object is not callable");
  return fn.func->fn(args);
}

List Interp::iterate(const Value& v) {
  switch (v.kind) {
    case Kind::Undefined: return {};
    case Kind::List:
    case Kind::Tuple: return *v.list;
    case Kind::Dict: {
      List keys;
      for (auto& kv : v.dict->items) keys.push_back(kv.first);
      return keys;
    }
    case Kind::String: {
      List chars;
      for (uint32_t c : utf8_decode(v.s)) {
        std::string ch;
        utf8_append(ch, c);
        chars.push_back(Value::string(std::move(ch)));
      }
      return chars;
    }
    default: throw Error("'" + type_name(v) + "' object is not iterable");
  }
}

static bool is_dict_method(const std::string& n) {
  return n == "items" || n == "keys" || n == "values" || n == "get" || n == "pop" ||
         n == "update" || n == "copy" || n == "setdefault" || n == "clear" || n == "popitem";
}

Value Interp::get_attr(const Value& obj, const std::string& name) {
  switch (obj.kind) {
    case Kind::Undefined:
      throw Error(obj.s.empty() ? "attribute '" + name + "' of an undefined value" : obj.s);
    case Kind::Dict: {
      if (is_dict_method(name)) return get_method(*this, obj, name);
      if (const Value* v = obj.dict->find(name)) return *v;
      return Value::undefined("'dict object' has no attribute '" + name + "'");
    }
    case Kind::Namespace: {
      if (const Value* v = obj.dict->find(name)) return *v;
      return Value::undefined("'Namespace' has no attribute '" + name + "'");
    }
    case Kind::Tuple:
      // groupby yields (grouper, list) named tuples
      if (obj.list->size() == 2 && (name == "grouper" || name == "list"))
        return (*obj.list)[name == "grouper" ? 0 : 1];
      [[fallthrough]];
    case Kind::String:
    case Kind::List: {
      Value m = get_method(*this, obj, name);
      if (m.is_undefined()) break;
      if (obj.markup) {  // Markup's methods return Markup
        auto inner = m.func;
        return Value::function(name, [inner](CallArgs& a) {
          Value r = inner->fn(a);
          if (r.is_string()) r.markup = true;
          if (r.is_list_like())
            for (auto& x : *r.list)
              if (x.is_string()) x.markup = true;
          return r;
        });
      }
      return m;
    }
    default: break;
  }
  return Value::undefined("'" + type_name(obj) + " object' has no attribute '" + name + "'");
}

Value Interp::get_item(const Value& obj, const Value& key) {
  switch (obj.kind) {
    case Kind::Undefined:
      throw Error(obj.s.empty() ? "item " + to_repr(key) + " of an undefined value" : obj.s);
    case Kind::Dict:
    case Kind::Namespace:
      if (const Value* v = obj.dict->find(key)) return *v;
      break;
    case Kind::List:
    case Kind::Tuple:
      if (key.is_int()) {
        int64_t n = int64_t(obj.list->size()), i = key.as_int();
        if (i < 0) i += n;
        if (i >= 0 && i < n) return (*obj.list)[size_t(i)];
        return Value::undefined(type_name(obj) + " index out of range");
      }
      break;
    case Kind::String:
      if (key.is_int()) {
        int64_t i = key.as_int();
        if (is_ascii(obj.s)) {
          int64_t n = int64_t(obj.s.size());
          if (i < 0) i += n;
          if (i >= 0 && i < n) return Value::string(std::string(1, obj.s[size_t(i)]));
        } else {
          auto cps = utf8_decode(obj.s);
          int64_t n = int64_t(cps.size());
          if (i < 0) i += n;
          if (i >= 0 && i < n) return Value::string(utf8_encode(cps, size_t(i), size_t(i) + 1));
        }
        return Value::undefined("string index out of range");
      }
      break;
    default: break;
  }
  if (key.is_string()) {
    if (obj.kind == Kind::Namespace) return Value::undefined("'Namespace' has no attribute '" + key.s + "'");
    Value m = get_method(*this, obj, key.s);
    if (!m.is_undefined()) return m;
  }
  return Value::undefined("'" + type_name(obj) + " object' has no attribute " + to_repr(key));
}

Value Interp::get_path(const Value& obj, const std::string& path) {
  Value cur = obj;
  size_t start = 0;
  for (;;) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool numeric = !part.empty() && part.find_first_not_of("0123456789") == std::string::npos;
    if (cur.is_undefined()) return cur;
    if (numeric) {
      Value v = get_item(cur, Value::integer(std::stoll(part)));
      if (v.is_undefined()) v = get_item(cur, Value::string(part));
      cur = v;
    } else {
      cur = get_item(cur, Value::string(part));
    }
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

static int64_t slice_bound(const Value* v, int64_t n, int64_t step, bool is_start) {
  if (!v || v->is_none() || v->is_undefined()) {
    if (step > 0) return is_start ? 0 : n;
    return is_start ? n - 1 : -1;
  }
  if (!v->is_int()) throw Error("slice indices must be integers or None");
  int64_t i = v->as_int();
  if (i < 0) {
    i += n;
    if (i < 0) i = step < 0 ? -1 : 0;
  } else if (i >= n) {
    i = step < 0 ? n - 1 : n;
  }
  return i;
}

Value Interp::eval_slice(const Expr& e, const FramePtr& f) {
  Value obj = eval(*e.kids[0], f);
  Value parts[3];
  const Value* ptr[3] = {nullptr, nullptr, nullptr};
  for (int k = 0; k < 3; ++k)
    if (e.kids[size_t(k) + 1]) {
      parts[k] = eval(*e.kids[size_t(k) + 1], f);
      ptr[k] = &parts[k];
    }
  int64_t step = 1;
  if (ptr[2] && !ptr[2]->is_none()) {
    if (!ptr[2]->is_int()) throw Error("slice indices must be integers or None");
    step = ptr[2]->as_int();
    if (step == 0) throw Error("slice step cannot be zero");
  }
  auto indices = [&](int64_t n) {
    std::vector<size_t> idx;
    int64_t a = slice_bound(ptr[0], n, step, true), b = slice_bound(ptr[1], n, step, false);
    for (int64_t i = a; step > 0 ? i < b : i > b; i += step) idx.push_back(size_t(i));
    return idx;
  };
  if (obj.is_list_like()) {
    List out;
    for (size_t i : indices(int64_t(obj.list->size()))) out.push_back((*obj.list)[i]);
    return obj.kind == Kind::Tuple ? Value::make_tuple(std::move(out)) : Value::make_list(std::move(out));
  }
  if (obj.is_string()) {
    auto cps = utf8_decode(obj.s);
    std::string out;
    for (size_t i : indices(int64_t(cps.size()))) utf8_append(out, cps[i]);
    return Value::string(std::move(out));
  }
  if (obj.is_undefined()) throw Error(obj.s.empty() ? "slice of an undefined value" : obj.s);
  return Value::undefined("'" + type_name(obj) + "' object is not subscriptable");
}

Value Interp::eval_filter(const Expr& e, const FramePtr& f, const Value* input) {
  Value v = e.kids[0] ? (e.kids[0]->kind == ExprKind::Filter ? eval_filter(*e.kids[0], f, input)
                                                             : eval(*e.kids[0], f))
                      : (input ? *input : Value());
  CallArgs args = eval_args(e.args, f);
  line_ = e.line;
  return apply_filter(*this, e.name, v, args);
}

Value Interp::eval_compare(const Expr& e, const FramePtr& f) {
  Value left = eval(*e.kids[0], f);
  for (size_t k = 0; k < e.ops.size(); ++k) {
    Value right = eval(*e.kids[k + 1], f);
    const std::string& op = e.ops[k];
    bool r;
    if (op == "==") r = equals(left, right);
    else if (op == "!=") r = !equals(left, right);
    else if (op == "in") r = contains(right, left);
    else if (op == "not in") r = !contains(right, left);
    else {
      if (left.is_undefined() || right.is_undefined())
        throw Error((left.is_undefined() ? left.s : right.s).empty() ? "comparison with an undefined value"
                                                                     : (left.is_undefined() ? left.s : right.s));
      int c = compare(left, right);
      r = op == "<" ? c < 0 : op == ">" ? c > 0 : op == "<=" ? c <= 0 : c >= 0;
    }
    if (!r) return Value::boolean(false);
    left = std::move(right);
  }
  return Value::boolean(true);
}

Value Interp::eval(const Expr& e, const FramePtr& f) {
  step();
  EvalGuard guard(*this);
  switch (e.kind) {
    case ExprKind::Literal: return e.literal;
    case ExprKind::Name: {
      if (const Value* v = f->lookup(e.name)) return *v;
      return Value::undefined("'" + e.name + "' is undefined");
    }
    case ExprKind::List:
    case ExprKind::Tuple: {
      List items;
      items.reserve(e.kids.size());
      for (auto& k : e.kids) items.push_back(eval(*k, f));
      return e.kind == ExprKind::List ? Value::make_list(std::move(items))
                                      : Value::make_tuple(std::move(items));
    }
    case ExprKind::Dict: {
      Value d = Value::make_dict();
      for (size_t k = 0; k + 1 < e.kids.size(); k += 2) {
        Value key = eval(*e.kids[k], f);
        d.dict->set(key, eval(*e.kids[k + 1], f));
      }
      return d;
    }
    case ExprKind::Attr: {
      Value obj = eval(*e.kids[0], f);
      line_ = e.line;
      return get_attr(obj, e.name);
    }
    case ExprKind::Item: {
      Value obj = eval(*e.kids[0], f);
      Value key = eval(*e.kids[1], f);
      line_ = e.line;
      return get_item(obj, key);
    }
    case ExprKind::Slice: return eval_slice(e, f);
    case ExprKind::Call: {
      Value fn = eval(*e.kids[0], f);
      CallArgs args = eval_args(e.args, f);
      line_ = e.line;
      return call(fn, args);
    }
    case ExprKind::Filter: return eval_filter(e, f, nullptr);
    case ExprKind::Test: {
      Value v = eval(*e.kids[0], f);
      CallArgs args = eval_args(e.args, f);
      line_ = e.line;
      bool r = apply_test(*this, e.name, v, args);
      return Value::boolean(e.negated ? !r : r);
    }
    case ExprKind::Unary: {
      Value v = eval(*e.kids[0], f);
      if (e.name == "not") return Value::boolean(!v.truthy());
      if (v.kind == Kind::Float) return Value::number(e.name == "-" ? -v.f : v.f);
      if (v.is_int()) {
        if (e.name == "-" && v.as_int() == INT64_MIN) throw Error("integer overflow");
        return Value::integer(e.name == "-" ? -v.as_int() : v.as_int());
      }
      if (v.is_undefined()) throw Error(v.s.empty() ? "unary operator on an undefined value" : v.s);
      throw Error("bad operand type for unary " + e.name + ": '" + type_name(v) + "'");
    }
    case ExprKind::Binary: return eval_binary(e, f);
    case ExprKind::Compare: return eval_compare(e, f);
    case ExprKind::Cond: {
      if (eval(*e.kids[0], f).truthy()) return eval(*e.kids[1], f);
      if (e.kids[2]) return eval(*e.kids[2], f);
      return Value::undefined("the inline if-expression evaluated to false and no else section was defined");
    }
  }
  return Value();
}

Value Interp::eval_binary(const Expr& e, const FramePtr& f) {
  if (e.name == "and") {
    Value a = eval(*e.kids[0], f);
    return a.truthy() ? eval(*e.kids[1], f) : a;
  }
  if (e.name == "or") {
    Value a = eval(*e.kids[0], f);
    return a.truthy() ? a : eval(*e.kids[1], f);
  }
  Value a = eval(*e.kids[0], f);
  Value b = eval(*e.kids[1], f);
  line_ = e.line;
  Value r = binary_op(*this, e.name, a, b);
  if (r.is_string()) check_size(r.s.size());
  if (r.is_list_like()) check_items(r.list->size());
  return r;
}

}  // namespace slm::jinja

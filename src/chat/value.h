// Value: the Jinja engine's data type, modelled on the Python objects jinja2 works with.
// int and float stay distinct, None differs from undefined, tuples differ from lists, and
// lists/dicts are shared by reference (so list.append and namespace updates are seen by
// every holder), as in Python.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace slm::jinja {

struct Value;
using List = std::vector<Value>;
struct Dict;
struct Callable;
struct CallArgs;

enum class Kind { Undefined, None, Bool, Int, Float, String, List, Tuple, Dict, Namespace, Func };

struct Value {
  Kind kind = Kind::Undefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;                   // String; for Undefined: the name that was missing
  bool markup = false;             // String marked safe (markupsafe.Markup): see ops.cpp
  std::shared_ptr<List> list;      // List, Tuple
  std::shared_ptr<Dict> dict;      // Dict, Namespace
  std::shared_ptr<Callable> func;  // Func

  Value() = default;
  static Value undefined(std::string name = {});
  static Value none();
  static Value boolean(bool v);
  static Value integer(int64_t v);
  static Value number(double v);
  static Value string(std::string v);
  static Value make_list(List items = {});
  static Value make_tuple(List items);
  static Value make_dict();
  static Value make_namespace();
  static Value function(std::string name, std::function<Value(CallArgs&)> fn);

  bool is_undefined() const { return kind == Kind::Undefined; }
  bool is_none() const { return kind == Kind::None; }
  bool is_string() const { return kind == Kind::String; }
  bool is_list_like() const { return kind == Kind::List || kind == Kind::Tuple; }
  bool is_mapping() const { return kind == Kind::Dict || kind == Kind::Namespace; }
  // Python numbers: bool counts as an int.
  bool is_int() const { return kind == Kind::Int || kind == Kind::Bool; }
  bool is_number() const { return is_int() || kind == Kind::Float; }
  int64_t as_int() const { return kind == Kind::Bool ? (b ? 1 : 0) : i; }
  double as_double() const { return kind == Kind::Float ? f : double(as_int()); }

  bool truthy() const;
};

// Insertion-ordered dictionary; keys are Values (almost always strings). Small in practice,
// so a linear scan is fine and keeps Python's ordering for free.
struct Dict {
  std::vector<std::pair<Value, Value>> items;
  const Value* find(const Value& key) const;
  Value* find(const Value& key);
  const Value* find(const std::string& key) const;
  void set(const Value& key, Value v);
  void set(const std::string& key, Value v) { set(Value::string(key), std::move(v)); }
  bool erase(const Value& key);
};

struct CallArgs {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
  // Takes keyword `name` if given, else positional `index`, else nullptr.
  const Value* get(size_t index, const std::string& name) const;
};

struct Callable {
  std::string name;
  std::function<Value(CallArgs&)> fn;
};

// Containers nested deeper than this cannot be printed, compared or serialised (Python
// stops at its recursion limit too); it also stops self-containing lists.
constexpr int kMaxValueDepth = 500;

// Python's str() and repr() of a value, as jinja2 prints them.
std::string to_str(const Value& v);
std::string to_repr(const Value& v);
std::string float_repr(double d);
std::string type_name(const Value& v);  // Python's type names: 'str', 'int', 'dict' ...

// == as Python does it (1 == 1.0 == True; lists and dicts compare by content).
bool equals(const Value& a, const Value& b);
// <, > ... as Python does it; throws slm::Error for unorderable types.
int compare(const Value& a, const Value& b);

Value from_json(const nlohmann::ordered_json& j);

struct JsonOptions {
  int indent = -1;            // -1: no indentation
  std::string indent_str;     // used when indent was given as a string
  std::string item_sep = ", ";
  std::string key_sep = ": ";
  bool sort_keys = false;
  bool ensure_ascii = false;
  size_t max_size = size_t(16) << 20;  // bytes; larger output throws slm::Error
};
// Python's json.dumps(value, ...) with the options above.
std::string to_json(const Value& v, const JsonOptions& opt);

// Throws slm::Error when storing `v` inside the container at `target` would make a value
// contain itself (Python allows it; we refuse, so values stay trees and are freed).
void check_no_cycle(const Value& v, const void* target);

// HTML escaping as markupsafe does it (& < > " ').
std::string escape_html(const std::string& s);
Value make_markup(std::string s);

}  // namespace slm::jinja

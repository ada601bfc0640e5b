// Interp: runs a parsed template. Holds the per-render state (step counter, call depth,
// clock) and the pieces that filters, tests and methods share (attribute access, calls).
#pragma once
#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <unordered_map>

#include "chat/ast.h"
#include "chat/value.h"

namespace slm::jinja {

// Bounds that turn a runaway template into an slm::Error instead of a hang or a crash.
struct Limits {
  uint64_t max_steps = 5'000'000;    // statements + expressions evaluated (~1 s)
  int max_call_depth = 200;          // nested macro / caller calls
  int max_eval_depth = 1500;         // nested evaluations (bounds C++ stack use)
  size_t max_output = 16u << 20;     // bytes in the output and in any one string
  size_t max_items = 1u << 20;       // elements in any one list
};

// A scope: names bound here plus the scope it sees through to.
struct Frame {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Frame> parent;
  const Value* lookup(const std::string& name) const;
};
using FramePtr = std::shared_ptr<Frame>;

enum class Flow { Normal, Break, Continue };

class Interp {
 public:
  Interp(const Limits& limits, const std::tm& now) : limits_(limits), now_(now) {}

  std::string render(const Template& tpl, FramePtr globals);

  // Shared by filters, tests and methods.
  Value get_attr(const Value& obj, const std::string& name);
  Value get_item(const Value& obj, const Value& key);
  // Dotted attribute path as filters take it ("details.priority", "items.0").
  Value get_path(const Value& obj, const std::string& path);
  Value call(const Value& fn, CallArgs& args);
  // Python iteration: list items, dict keys, string characters; undefined is empty.
  List iterate(const Value& v);
  void check_size(size_t n) const;
  void check_items(size_t n) const;
  void step();
  const std::tm& now() const { return now_; }

  Value eval(const Expr& e, const FramePtr& f);

 private:
  Limits limits_;
  std::tm now_;
  uint64_t steps_ = 0;
  FramePtr globals_;  // outermost scope (range, namespace, ...)
  int depth_ = 0;
  int eval_depth_ = 0;
  int line_ = 0;

  struct EvalGuard {
    Interp& in;
    explicit EvalGuard(Interp& i);
    ~EvalGuard() { --in.eval_depth_; }
  };

  Flow exec(const Body& body, const FramePtr& f, std::string& out);
  Flow exec_stmt(const Stmt& s, const FramePtr& f, std::string& out);
  Flow exec_for(const Stmt& s, const FramePtr& f, std::string& out);
  // One run of a for loop over `seq` (depth > 1 for `loop(children)` in recursive loops).
  Flow run_loop(const Stmt& s, const FramePtr& f, const Value& seq, int64_t depth, std::string& out);
  void assign(const Expr& target, Value v, const FramePtr& f);
  Value make_macro(const FramePtr& closure, const Body* body,
                   const std::vector<Param>& params, const std::string& name);
  Value eval_filter(const Expr& e, const FramePtr& f, const Value* input);
  Value eval_binary(const Expr& e, const FramePtr& f);
  Value eval_compare(const Expr& e, const FramePtr& f);
  Value eval_slice(const Expr& e, const FramePtr& f);
  CallArgs eval_args(const std::vector<Arg>& args, const FramePtr& f);
  void append_out(std::string& out, const std::string& s);
};

// Implemented in filters.cpp, tests.cpp, methods.cpp, ops.cpp, strings.cpp, globals.cpp.
Value apply_filter(Interp& in, const std::string& name, const Value& v, CallArgs& args);
bool apply_test(Interp& in, const std::string& name, const Value& v, CallArgs& args);
// Bound method of a str/list/dict, or undefined when there is none of that name.
Value get_method(Interp& in, const Value& obj, const std::string& name);
Value binary_op(Interp& in, const std::string& op, const Value& a, const Value& b);
bool contains(const Value& container, const Value& item);
void add_globals(Frame& f);
// Python str.split/strip helpers that filters and methods share.
std::string py_strip(const std::string& s, const Value* chars, bool left, bool right);
std::string py_upper(const std::string& s);
std::string py_lower(const std::string& s);
std::string py_capitalize(const std::string& s);
std::string py_title(const std::string& s);
std::string py_format(Interp& in, const std::string& fmt, const Value& args);  // str % args
std::string strftime_py(const std::string& fmt, const std::tm& t);

// Throws slm::Error naming what went wrong; argument helpers for builtins.
int64_t arg_int(const Value& v, const char* what);
std::string arg_str(const Value& v, const char* what);

}  // namespace slm::jinja

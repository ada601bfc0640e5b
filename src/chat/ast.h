// Syntax tree of a parsed template: expressions and statements as plain tagged structs.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/value.h"

namespace slm::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class ExprKind {
  Literal,   // literal
  Name,      // name
  List,      // kids
  Tuple,     // kids
  Dict,      // kids: key, value, key, value ...
  Attr,      // kids[0] . name
  Item,      // kids[0] [ kids[1] ]
  Slice,     // kids[0] [ kids[1] : kids[2] : kids[3] ] (missing parts are null)
  Call,      // kids[0] ( args )
  Filter,    // kids[0] | name ( args ); kids[0] null inside {% filter %}
  Test,      // kids[0] is [not] name ( args )
  Unary,     // name ("-", "+", "not") kids[0]
  Binary,    // kids[0] name kids[1]: + - * / // % ** ~ and or
  Compare,   // kids[0] ops[k] kids[k+1] ... (chained)
  Cond,      // kids[1] if kids[0] else kids[2] (kids[2] may be null)
};

// One call argument: positional (name empty), keyword, *args ("*") or **kwargs ("**").
struct Arg {
  std::string name;
  ExprPtr value;
};

struct Expr {
  ExprKind kind = ExprKind::Literal;
  int line = 0, col = 0;
  std::string name;
  Value literal;
  std::vector<ExprPtr> kids;
  std::vector<Arg> args;
  std::vector<std::string> ops;  // Compare
  bool negated = false;          // Test
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class StmtKind {
  Text,       // text
  Output,     // {{ expr }}
  If,         // conds[k] -> bodies[k]; bodies.size() == conds.size() + 1 when there is an else
  For,        // targets in expr [if cond] : bodies[0], else bodies[1]
  Set,        // target = expr
  SetBlock,   // target = rendered bodies[0] (| filter in expr, may be null)
  Macro,      // name(params) bodies[0]
  CallBlock,  // expr is the call; params are caller's parameters; bodies[0] is caller's body
  FilterBlock,// expr is a filter chain applied to rendered bodies[0]
  With,       // targets/values assigned in a new scope for bodies[0]
  Do,         // evaluate expr, discard
  Break,
  Continue,
  Scope,      // bodies[0] run as is ({% generation %})
};

struct Param {
  std::string name;
  ExprPtr def;  // may be null
};

struct Stmt {
  StmtKind kind = StmtKind::Text;
  int line = 0, col = 0;
  std::string text;               // Text; Macro name
  ExprPtr expr;                   // Output, For iterable, Set value, CallBlock call, FilterBlock
  ExprPtr target;                 // Set/SetBlock target (Name, Tuple of Names, or Attr)
  ExprPtr cond;                   // For filter
  std::vector<std::string> targets;  // For loop variables
  std::vector<ExprPtr> conds;     // If
  std::vector<ExprPtr> values;    // With
  std::vector<Body> bodies;
  std::vector<Param> params;      // Macro, CallBlock
  bool recursive = false;         // For ... recursive
};

struct Template {
  Body body;
};

}  // namespace slm::jinja

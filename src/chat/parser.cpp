#include "chat/parser.h"

#include <initializer_list>

#include "chat/lexer.h"

namespace slm::jinja {

namespace {

// Nesting deeper than this is refused, so hostile input cannot exhaust the stack.
constexpr int kMaxNesting = 300;

class Parser {
 public:
  explicit Parser(std::vector<Token> toks) : t_(std::move(toks)) {}

  Template run() {
    Template tpl;
    tpl.body = subparse({});
    if (cur().type != Tok::Eof) fail("unexpected tag");
    return tpl;
  }

 private:
  std::vector<Token> t_;
  size_t p_ = 0;
  int depth_ = 0;

  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxNesting) p.fail("template nested too deeply");
    }
    ~DepthGuard() { --p.depth_; }
  };

  // Operator chains (a ~ b ~ c ..., x|f|g ..., a.b.c ...) build trees as deep as they are
  // long, so each link counts as one level of nesting until the chain ends.
  struct ChainGuard {
    Parser& p;
    int saved;
    explicit ChainGuard(Parser& parser) : p(parser), saved(parser.depth_) {}
    void link() {
      if (++p.depth_ > kMaxNesting) p.fail("expression nested too deeply");
    }
    ~ChainGuard() { p.depth_ = saved; }
  };

  const Token& cur() const { return t_[p_]; }
  const Token& peek(size_t k = 1) const { return t_[std::min(p_ + k, t_.size() - 1)]; }
  [[noreturn]] void fail(const std::string& msg) const { syntax_error(cur().line, cur().col, msg); }
  std::string describe(const Token& t) const {
    switch (t.type) {
      case Tok::Eof: return "end of template";
      case Tok::VarEnd: return "'}}'";
      case Tok::BlockEnd: return "'%}'";
      case Tok::Text: return "text";
      case Tok::String: return "string";
      default: return "'" + t.text + "'";
    }
  }
  bool is_op(const char* op) const { return cur().type == Tok::Op && cur().text == op; }
  bool is_name(const char* n) const { return cur().type == Tok::Name && cur().text == n; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    ++p_;
    return true;
  }
  bool skip_name(const char* n) {
    if (!is_name(n)) return false;
    ++p_;
    return true;
  }
  void expect_op(const char* op) {
    if (!skip_op(op)) fail(std::string("expected '") + op + "', got " + describe(cur()));
  }
  void expect_name(const char* n) {
    if (!skip_name(n)) fail(std::string("expected '") + n + "', got " + describe(cur()));
  }
  std::string expect_identifier() {
    if (cur().type != Tok::Name) fail("expected a name, got " + describe(cur()));
    return t_[p_++].text;
  }
  void expect_block_end() {
    if (cur().type != Tok::BlockEnd) fail("expected '%}', got " + describe(cur()));
    ++p_;
  }

  ExprPtr node(ExprKind k, const Token& at) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->line = at.line;
    e->col = at.col;
    return e;
  }

  // ---- statements ----

  // Parses until a block tag whose first word is in `ends` (left unconsumed: the caller
  // reads the word). Empty `ends`: until end of template.
  Body subparse(std::initializer_list<const char*> ends) {
    DepthGuard g(*this);
    Body body;
    for (;;) {
      const Token& t = cur();
      if (t.type == Tok::Eof) {
        if (ends.size()) {
          std::string want;
          for (const char* e : ends) want += std::string(want.empty() ? "" : " or ") + "'" + e + "'";
          fail("unexpected end of template, expected " + want);
        }
        return body;
      }
      if (t.type == Tok::Text) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::Text;
        s->text = t.text;
        s->line = t.line;
        s->col = t.col;
        body.push_back(std::move(s));
        ++p_;
      } else if (t.type == Tok::VarBegin) {
        ++p_;
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::Output;
        s->line = t.line;
        s->col = t.col;
        s->expr = parse_tuple(true, false);
        if (cur().type != Tok::VarEnd) fail("expected '}}', got " + describe(cur()));
        ++p_;
        body.push_back(std::move(s));
      } else if (t.type == Tok::BlockBegin) {
        const Token& w = peek();
        if (w.type == Tok::Name)
          for (const char* e : ends)
            if (w.text == e) {
              ++p_;  // leave the word for the caller
              return body;
            }
        ++p_;
        body.push_back(parse_statement());
      } else {
        fail("unexpected " + describe(t));
      }
    }
  }

  StmtPtr make_stmt(StmtKind k, const Token& at) {
    auto s = std::make_unique<Stmt>();
    s->kind = k;
    s->line = at.line;
    s->col = at.col;
    return s;
  }

  StmtPtr parse_statement() {
    const Token& t = cur();
    if (t.type != Tok::Name) fail("tag name expected");
    std::string w = t.text;
    Token at = t;
    ++p_;
    if (w == "if") return parse_if(at);
    if (w == "for") return parse_for(at);
    if (w == "set") return parse_set(at);
    if (w == "macro") return parse_macro(at);
    if (w == "call") return parse_call_block(at);
    if (w == "filter") return parse_filter_block(at);
    if (w == "with") return parse_with(at);
    if (w == "break" || w == "continue") {
      auto s = make_stmt(w == "break" ? StmtKind::Break : StmtKind::Continue, at);
      expect_block_end();
      return s;
    }
    if (w == "do") {
      auto s = make_stmt(StmtKind::Do, at);
      s->expr = parse_tuple(true, false);
      expect_block_end();
      return s;
    }
    if (w == "generation") {
      auto s = make_stmt(StmtKind::Scope, at);
      expect_block_end();
      s->bodies.push_back(subparse({"endgeneration"}));
      ++p_;
      expect_block_end();
      return s;
    }
    --p_;
    fail("unknown tag '" + w + "'");
  }

  StmtPtr parse_if(const Token& at) {
    auto s = make_stmt(StmtKind::If, at);
    s->conds.push_back(parse_tuple(false, false));
    expect_block_end();
    for (;;) {
      s->bodies.push_back(subparse({"elif", "else", "endif"}));
      std::string w = t_[p_++].text;
      if (w == "elif") {
        s->conds.push_back(parse_tuple(false, false));
        expect_block_end();
        continue;
      }
      expect_block_end();
      if (w == "else") {
        s->bodies.push_back(subparse({"endif"}));
        ++p_;
        expect_block_end();
      }
      return s;
    }
  }

  StmtPtr parse_for(const Token& at) {
    auto s = make_stmt(StmtKind::For, at);
    bool paren = skip_op("(");
    do {
      if (paren && is_op(")")) break;
      s->targets.push_back(expect_identifier());
    } while (skip_op(","));
    if (paren) expect_op(")");
    expect_name("in");
    s->expr = parse_tuple(false, false, "recursive");
    if (skip_name("if")) s->cond = parse_expression(true);
    if (skip_name("recursive")) s->recursive = true;
    expect_block_end();
    s->bodies.push_back(subparse({"endfor", "else"}));
    std::string w = t_[p_++].text;
    expect_block_end();
    if (w == "else") {
      s->bodies.push_back(subparse({"endfor"}));
      ++p_;
      expect_block_end();
    }
    return s;
  }

  // Assignment target: name, name.attr (namespace), or a tuple of names.
  ExprPtr parse_assign_target() {
    const Token& at = cur();
    if (skip_op("(")) {  // {% set (x, y) = ... %}, as jinja2 allows
      auto tup = node(ExprKind::Tuple, at);
      while (!is_op(")")) {
        if (!tup->kids.empty()) expect_op(",");
        if (is_op(")")) break;
        auto e = node(ExprKind::Name, cur());
        e->name = expect_identifier();
        tup->kids.push_back(std::move(e));
      }
      expect_op(")");
      if (tup->kids.empty()) fail("an empty tuple cannot be assigned to");
      if (tup->kids.size() == 1 && !is_op(",")) return std::move(tup->kids[0]);
      append_target_names(*tup);
      return tup;
    }
    std::string n = expect_identifier();
    if (skip_op(".")) {
      auto e = node(ExprKind::Attr, at);
      auto base = node(ExprKind::Name, at);
      base->name = n;
      e->kids.push_back(std::move(base));
      e->name = expect_identifier();
      return e;
    }
    auto first = node(ExprKind::Name, at);
    first->name = n;
    if (!is_op(",")) return first;
    auto tup = node(ExprKind::Tuple, at);
    tup->kids.push_back(std::move(first));
    append_target_names(*tup);
    return tup;
  }

  // ", a, b" after the first target: more names for the tuple (a trailing comma is allowed).
  void append_target_names(Expr& tup) {
    while (skip_op(",")) {
      if (cur().type != Tok::Name) break;
      auto e = node(ExprKind::Name, cur());
      e->name = expect_identifier();
      tup.kids.push_back(std::move(e));
    }
  }

  StmtPtr parse_set(const Token& at) {
    auto s = make_stmt(StmtKind::Set, at);
    s->target = parse_assign_target();
    if (skip_op("=")) {
      s->expr = parse_tuple(true, false);
      expect_block_end();
      return s;
    }
    s->kind = StmtKind::SetBlock;
    if (s->target->kind != ExprKind::Name) fail("block set needs a plain name");
    if (is_op("|")) s->expr = parse_filter_chain(nullptr);
    expect_block_end();
    s->bodies.push_back(subparse({"endset"}));
    ++p_;
    expect_block_end();
    return s;
  }

  void parse_params(std::vector<Param>& params) {
    expect_op("(");
    while (!is_op(")")) {
      if (!params.empty()) expect_op(",");
      if (is_op(")")) break;
      Param prm;
      prm.name = expect_identifier();
      if (skip_op("=")) prm.def = parse_expression(true);
      params.push_back(std::move(prm));
    }
    expect_op(")");
  }

  StmtPtr parse_macro(const Token& at) {
    auto s = make_stmt(StmtKind::Macro, at);
    s->text = expect_identifier();
    parse_params(s->params);
    expect_block_end();
    s->bodies.push_back(subparse({"endmacro"}));
    ++p_;
    if (cur().type == Tok::Name) ++p_;  // {% endmacro name %}
    expect_block_end();
    return s;
  }

  StmtPtr parse_call_block(const Token& at) {
    auto s = make_stmt(StmtKind::CallBlock, at);
    if (is_op("(")) parse_params(s->params);
    s->expr = parse_expression(true);
    if (s->expr->kind != ExprKind::Call) fail("expected a call after 'call'");
    expect_block_end();
    s->bodies.push_back(subparse({"endcall"}));
    ++p_;
    expect_block_end();
    return s;
  }

  StmtPtr parse_filter_block(const Token& at) {
    auto s = make_stmt(StmtKind::FilterBlock, at);
    s->expr = parse_filter_chain(nullptr, true);
    expect_block_end();
    s->bodies.push_back(subparse({"endfilter"}));
    ++p_;
    expect_block_end();
    return s;
  }

  StmtPtr parse_with(const Token& at) {
    auto s = make_stmt(StmtKind::With, at);
    while (cur().type != Tok::BlockEnd) {
      if (!s->targets.empty()) expect_op(",");
      s->targets.push_back(expect_identifier());
      expect_op("=");
      s->values.push_back(parse_expression(true));
    }
    expect_block_end();
    s->bodies.push_back(subparse({"endwith"}));
    ++p_;
    expect_block_end();
    return s;
  }

  // ---- expressions ----

  // A comma-separated list becomes a tuple (as in {{ a, b }} or {% set x = 1, 2 %}).
  ExprPtr parse_tuple(bool condexpr, bool explicit_parens, const char* stop_word = nullptr) {
    const Token& at = cur();
    std::vector<ExprPtr> items;
    bool comma = false;
    for (;;) {
      if (!items.empty()) {
        if (!skip_op(",")) break;
        comma = true;
      }
      if (cur().type == Tok::VarEnd || cur().type == Tok::BlockEnd || is_op(")") ||
          (stop_word && is_name(stop_word)) || (!condexpr && is_name("if")))
        break;
      items.push_back(parse_expression(condexpr));
    }
    if (!comma && items.size() == 1) return std::move(items[0]);
    if (items.empty() && !explicit_parens) fail("expected an expression, got " + describe(cur()));
    auto e = node(ExprKind::Tuple, at);
    e->kids = std::move(items);
    return e;
  }

  ExprPtr parse_expression(bool condexpr) {
    ChainGuard chain(*this);
    DepthGuard g(*this);
    ExprPtr e = parse_or();
    if (!condexpr) return e;
    while (is_name("if")) {
      chain.link();
      const Token& at = cur();
      ++p_;
      auto c = node(ExprKind::Cond, at);
      ExprPtr test = parse_or();
      ExprPtr other;
      if (skip_name("else")) other = parse_expression(true);
      c->kids.push_back(std::move(test));
      c->kids.push_back(std::move(e));
      c->kids.push_back(std::move(other));
      e = std::move(c);
    }
    return e;
  }

  ExprPtr binary(const Token& at, const std::string& op, ExprPtr a, ExprPtr b) {
    auto e = node(ExprKind::Binary, at);
    e->name = op;
    e->kids.push_back(std::move(a));
    e->kids.push_back(std::move(b));
    return e;
  }

  ExprPtr parse_or() {
    ChainGuard chain(*this);
    ExprPtr e = parse_and();
    while (is_name("or")) {
      chain.link();
      Token at = t_[p_++];
      e = binary(at, "or", std::move(e), parse_and());
    }
    return e;
  }
  ExprPtr parse_and() {
    ChainGuard chain(*this);
    ExprPtr e = parse_not();
    while (is_name("and")) {
      chain.link();
      Token at = t_[p_++];
      e = binary(at, "and", std::move(e), parse_not());
    }
    return e;
  }
  ExprPtr parse_not() {
    if (is_name("not")) {
      DepthGuard g(*this);
      auto e = node(ExprKind::Unary, cur());
      ++p_;
      e->name = "not";
      e->kids.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }
  ExprPtr parse_compare() {
    ChainGuard chain(*this);
    const Token& at = cur();
    ExprPtr first = parse_math1();
    ExprPtr cmp;
    for (;;) {
      chain.link();
      std::string op;
      if (cur().type == Tok::Op &&
          (cur().text == "==" || cur().text == "!=" || cur().text == "<" || cur().text == ">" ||
           cur().text == "<=" || cur().text == ">=")) {
        op = cur().text;
        ++p_;
      } else if (is_name("in")) {
        op = "in";
        ++p_;
      } else if (is_name("not") && peek().type == Tok::Name && peek().text == "in") {
        op = "not in";
        p_ += 2;
      } else {
        break;
      }
      if (!cmp) {
        cmp = node(ExprKind::Compare, at);
        cmp->kids.push_back(std::move(first));
      }
      cmp->ops.push_back(op);
      cmp->kids.push_back(parse_math1());
    }
    return cmp ? std::move(cmp) : std::move(first);
  }
  ExprPtr parse_math1() {
    ChainGuard chain(*this);
    ExprPtr e = parse_concat();
    while (is_op("+") || is_op("-")) {
      chain.link();
      Token at = t_[p_++];
      e = binary(at, at.text, std::move(e), parse_concat());
    }
    return e;
  }
  ExprPtr parse_concat() {
    ChainGuard chain(*this);
    ExprPtr e = parse_math2();
    while (is_op("~")) {
      chain.link();
      Token at = t_[p_++];
      e = binary(at, "~", std::move(e), parse_math2());
    }
    return e;
  }
  ExprPtr parse_math2() {
    ChainGuard chain(*this);
    ExprPtr e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      chain.link();
      Token at = t_[p_++];
      e = binary(at, at.text, std::move(e), parse_pow());
    }
    return e;
  }
  ExprPtr parse_pow() {
    ChainGuard chain(*this);
    ExprPtr e = parse_unary(true);
    while (is_op("**")) {
      chain.link();
      Token at = t_[p_++];
      e = binary(at, "**", std::move(e), parse_unary(true));
    }
    return e;
  }
  ExprPtr parse_unary(bool with_filter) {
    DepthGuard g(*this);
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      auto u = node(ExprKind::Unary, cur());
      u->name = t_[p_++].text;
      u->kids.push_back(parse_unary(false));
      e = std::move(u);
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprPtr parse_primary() {
    const Token& t = cur();
    switch (t.type) {
      case Tok::Name: {
        ++p_;
        auto e = node(ExprKind::Literal, t);
        if (t.text == "true" || t.text == "True") e->literal = Value::boolean(true);
        else if (t.text == "false" || t.text == "False") e->literal = Value::boolean(false);
        else if (t.text == "none" || t.text == "None") e->literal = Value::none();
        else {
          e->kind = ExprKind::Name;
          e->name = t.text;
        }
        return e;
      }
      case Tok::String: {
        auto e = node(ExprKind::Literal, t);
        std::string s;
        while (cur().type == Tok::String) s += t_[p_++].text;  // adjacent literals join
        e->literal = Value::string(std::move(s));
        return e;
      }
      case Tok::Int: {
        ++p_;
        auto e = node(ExprKind::Literal, t);
        e->literal = Value::integer(t.ival);
        return e;
      }
      case Tok::Float: {
        ++p_;
        auto e = node(ExprKind::Literal, t);
        e->literal = Value::number(t.fval);
        return e;
      }
      case Tok::Op:
        if (t.text == "(") {
          ++p_;
          ExprPtr e = parse_tuple(true, true);
          expect_op(")");
          return e;
        }
        if (t.text == "[") {
          auto e = node(ExprKind::List, t);
          ++p_;
          while (!is_op("]")) {
            if (!e->kids.empty()) expect_op(",");
            if (is_op("]")) break;
            e->kids.push_back(parse_expression(true));
          }
          expect_op("]");
          return e;
        }
        if (t.text == "{") {
          auto e = node(ExprKind::Dict, t);
          ++p_;
          while (!is_op("}")) {
            if (!e->kids.empty()) expect_op(",");
            if (is_op("}")) break;
            e->kids.push_back(parse_expression(true));
            expect_op(":");
            e->kids.push_back(parse_expression(true));
          }
          expect_op("}");
          return e;
        }
        break;
      default: break;
    }
    fail("unexpected " + describe(t));
  }

  ExprPtr parse_postfix(ExprPtr e) {
    ChainGuard chain(*this);
    for (;;) {
      chain.link();
      if (is_op(".")) {
        const Token& at = cur();
        ++p_;
        if (cur().type == Tok::Name) {
          auto a = node(ExprKind::Attr, at);
          a->name = t_[p_++].text;
          a->kids.push_back(std::move(e));
          e = std::move(a);
        } else if (cur().type == Tok::Int) {
          auto a = node(ExprKind::Item, at);
          auto idx = node(ExprKind::Literal, cur());
          idx->literal = Value::integer(t_[p_++].ival);
          a->kids.push_back(std::move(e));
          a->kids.push_back(std::move(idx));
          e = std::move(a);
        } else {
          fail("expected a name after '.'");
        }
      } else if (is_op("[")) {
        e = parse_subscript(std::move(e));
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr obj) {
    DepthGuard g(*this);
    const Token& at = cur();
    expect_op("[");
    ExprPtr parts[3];
    bool slice = false;
    int k = 0;
    if (!is_op(":")) parts[0] = parse_expression(true);
    // A comma makes a tuple key (rare); handle a[1, 2] like Python.
    if (is_op(",")) {
      auto tup = node(ExprKind::Tuple, at);
      tup->kids.push_back(std::move(parts[0]));
      while (skip_op(",")) {
        if (is_op("]")) break;
        tup->kids.push_back(parse_expression(true));
      }
      parts[0] = std::move(tup);
    }
    while (skip_op(":")) {
      slice = true;
      if (++k > 2) fail("too many ':' in slice");
      if (!is_op(":") && !is_op("]")) parts[k] = parse_expression(true);
    }
    expect_op("]");
    auto e = node(slice ? ExprKind::Slice : ExprKind::Item, at);
    e->kids.push_back(std::move(obj));
    if (slice) {
      for (auto& part : parts) e->kids.push_back(std::move(part));
    } else {
      if (!parts[0]) fail("empty subscript");
      e->kids.push_back(std::move(parts[0]));
    }
    return e;
  }

  void parse_call_args(std::vector<Arg>& args) {
    expect_op("(");
    while (!is_op(")")) {
      if (!args.empty()) expect_op(",");
      if (is_op(")")) break;
      Arg a;
      if (skip_op("**")) {
        a.name = "**";
      } else if (skip_op("*")) {
        a.name = "*";
      } else if (cur().type == Tok::Name && peek().type == Tok::Op && peek().text == "=") {
        a.name = t_[p_].text;
        p_ += 2;
      }
      a.value = parse_expression(true);
      args.push_back(std::move(a));
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr callee) {
    DepthGuard g(*this);
    auto e = node(ExprKind::Call, cur());
    e->kids.push_back(std::move(callee));
    parse_call_args(e->args);
    return e;
  }

  // `| name(args) | name ...` applied to obj (null for {% filter %} / {% set x | f %}).
  ExprPtr parse_filter_chain(ExprPtr obj, bool start_inline = false) {
    ChainGuard chain(*this);
    bool first = true;
    while (is_op("|") || (start_inline && first)) {
      chain.link();
      if (!(start_inline && first)) ++p_;
      first = false;
      auto f = node(ExprKind::Filter, cur());
      f->name = expect_identifier();
      while (is_op(".") && peek().type == Tok::Name) {  // dotted filter names
        ++p_;
        f->name += "." + t_[p_++].text;
      }
      if (is_op("(")) parse_call_args(f->args);
      f->kids.push_back(std::move(obj));
      obj = std::move(f);
    }
    return obj;
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    ChainGuard chain(*this);
    for (;;) {
      chain.link();
      if (is_op("|")) {
        e = parse_filter_chain(std::move(e));
      } else if (is_name("is")) {
        e = parse_test(std::move(e));
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_test(ExprPtr obj) {
    auto e = node(ExprKind::Test, cur());
    ++p_;  // 'is'
    if (skip_name("not")) e->negated = true;
    e->name = expect_identifier();
    while (is_op(".") && peek().type == Tok::Name) {
      ++p_;
      e->name += "." + t_[p_++].text;
    }
    e->kids.push_back(std::move(obj));
    if (is_op("(")) {
      parse_call_args(e->args);
    } else {
      const Token& t = cur();
      bool arg_start = t.type == Tok::String || t.type == Tok::Int || t.type == Tok::Float ||
                       (t.type == Tok::Op && (t.text == "[" || t.text == "{" || t.text == "(")) ||
                       (t.type == Tok::Name && t.text != "else" && t.text != "or" &&
                        t.text != "and" && t.text != "if" && t.text != "in" && t.text != "not" &&
                        t.text != "is" && t.text != "recursive");
      if (arg_start && !(t.type == Tok::Op && t.text == "(")) {
        Arg a;
        a.value = parse_postfix(parse_primary());
        e->args.push_back(std::move(a));
      }
    }
    return e;
  }
};

}  // namespace

Template parse(const std::string& source) { return Parser(tokenize(source)).run(); }

}  // namespace slm::jinja

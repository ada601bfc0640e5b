// Parser: tokens -> syntax tree, following jinja2's grammar and operator precedence.
#pragma once
#include <string>

#include "chat/ast.h"

namespace slm::jinja {

// Throws slm::Error("chat template syntax error at line L, column C: ...") on bad input.
Template parse(const std::string& source);

}  // namespace slm::jinja

// slm::grammar — constrained decoding: GBNF and JSON Schema compiled to an automaton over
// bytes, and token masks for a vocabulary.
//
//   auto grammar = std::make_shared<const Grammar>(parse_gbnf(json_schema_to_gbnf(schema)));
//   auto vocab = std::make_shared<const VocabIndex>(tokenizer);   // once per tokenizer
//   TokenConstraint constraint(grammar, vocab);
//   ... token = sample(logits);
//   if (!constraint.allows(token)) { constraint.mask(logits, n); token = sample(logits); }
//   constraint.accept(token);  ... until constraint.finished() or an EOG token
#pragma once

#include "grammar/gbnf.h"
#include "grammar/json_schema.h"
#include "grammar/matcher.h"
#include "grammar/rules.h"
#include "grammar/token_constraint.h"
#include "grammar/vocab_index.h"

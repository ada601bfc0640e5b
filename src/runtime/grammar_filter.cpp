// The sampler's TokenFilter for grammars: a grammar::TokenConstraint behind the public
// interface, so include/slm stays free of the grammar engine's headers.
#include <nlohmann/json.hpp>

#include "grammar/grammar.h"
#include "grammar/schema_parts.h"
#include "slm/error.h"
#include "slm/sampler.h"

namespace slm {

namespace {

class GrammarFilter final : public TokenFilter {
 public:
  GrammarFilter(std::shared_ptr<const grammar::Grammar> g, std::shared_ptr<const grammar::VocabIndex> v)
      : constraint_(std::move(g), std::move(v)) {}
  bool allows(int32_t token) const override { return constraint_.allows(token); }
  void mask(float* logits, int n_vocab) const override { constraint_.mask(logits, n_vocab); }
  void accept(int32_t token) override { constraint_.accept(token); }
  bool finished() const override { return constraint_.finished(); }

 private:
  grammar::TokenConstraint constraint_;
};

}  // namespace

std::shared_ptr<const grammar::VocabIndex> grammar_vocabulary(const Tokenizer& tok) {
  return std::make_shared<const grammar::VocabIndex>(tok);
}

std::unique_ptr<TokenFilter> grammar_filter(std::shared_ptr<const grammar::VocabIndex> vocab, std::string_view gbnf) {
  if (!vocab) throw Error("grammar_filter: no vocabulary");
  auto g = std::make_shared<const grammar::Grammar>(grammar::parse_gbnf(gbnf));
  return std::make_unique<GrammarFilter>(std::move(g), std::move(vocab));
}

void check_grammar(std::string_view gbnf) { (void)grammar::parse_gbnf(gbnf); }

std::string json_schema_grammar(std::string_view schema_json) {
  nlohmann::ordered_json schema;
  try {
    schema = nlohmann::ordered_json::parse(schema_json, nullptr, true, false);
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("json schema: not valid JSON (") + e.what() + ")");
  }
  return grammar::json_schema_to_gbnf(schema);
}

std::string gbnf_literal(std::string_view text) { return grammar::schema::literal(text); }

std::string json_object_grammar() { return grammar::json_any_object_gbnf(); }

}  // namespace slm

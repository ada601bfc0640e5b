// Token constraints on real vocabularies: byte-fallback characters split over tokens, end of
// generation, control tokens, mask() against allows(), and random walks through every
// example schema (and a tool-call schema) whose output must parse and validate, and end.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <set>

#include "grammar_test_util.h"
#include "schema_checker.h"
#include "slm/error.h"

using namespace slm::grammar;
using slm::grammar::test::compile;
using slm::grammar::test::vocab;
using Json = nlohmann::ordered_json;

namespace {

const char* const kVocabs[] = {"llama-bpe", "llama-spm"};

// A tool call as Hermes-style function calling produces it: nested objects and arrays.
const char* const kToolCallSchema = R"({
  "type": "object",
  "properties": {
    "name": {"const": "get_forecast"},
    "arguments": {
      "type": "object",
      "properties": {
        "location": {"type": "string", "minLength": 1, "maxLength": 20},
        "units": {"enum": ["celsius", "fahrenheit"]},
        "days": {
          "type": "array",
          "items": {
            "type": "object",
            "properties": {
              "day": {"type": "integer", "minimum": 1, "maximum": 7},
              "hours": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 23}, "maxItems": 3}
            },
            "required": ["day"],
            "additionalProperties": false
          },
          "minItems": 1,
          "maxItems": 2
        }
      },
      "required": ["location", "days"],
      "additionalProperties": false
    }
  },
  "required": ["name", "arguments"],
  "additionalProperties": false
})";

std::vector<std::pair<std::string, Json>> walk_schemas() {
  std::vector<std::pair<std::string, Json>> out;
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(slm::test::shared("schemas")))
    if (entry.path().extension() == ".json") files.push_back(entry.path().string());
  std::sort(files.begin(), files.end());
  for (const std::string& f : files)
    out.emplace_back(std::filesystem::path(f).stem().string(), Json::parse(slm::test::read_file(f)));
  out.emplace_back("tool_call", Json::parse(kToolCallSchema));
  return out;
}

// Token ids spelling text exactly (greedy longest pieces; encode() may add a space prefix).
std::vector<int32_t> ids_for(const VocabIndex& v, const std::string& text) {
  std::vector<int32_t> out;
  for (size_t pos = 0; pos < text.size();) {
    int32_t best = -1;
    size_t best_len = 0;
    for (int32_t id = 0; id < v.n_vocab(); ++id) {
      const std::string& p = v.piece(id);
      if (v.is_text(id) && p.size() > best_len && text.compare(pos, p.size(), p) == 0) {
        best = id;
        best_len = p.size();
      }
    }
    if (best < 0) throw std::runtime_error("no token for " + text.substr(pos));
    out.push_back(best);
    pos += best_len;
  }
  return out;
}

// mask() and allows() agree, on every token, in the constraint's current state.
void expect_mask_agrees(const TokenConstraint& c, const VocabIndex& v, const std::string& where) {
  std::vector<float> logits(v.n_vocab() + 3, 0.0f);  // padding rows past the vocabulary
  c.mask(logits.data(), static_cast<int>(logits.size()));
  int disagreements = 0;
  for (int32_t id = 0; id < v.n_vocab(); ++id)
    disagreements += std::isinf(logits[id]) == c.allows(id);
  EXPECT_EQ(disagreements, 0) << where;
  for (size_t id = v.n_vocab(); id < logits.size(); ++id) EXPECT_TRUE(std::isinf(logits[id]));
}

TEST(TokenConstraint, RandomWalksThroughExampleSchemasValidateAndEnd) {
  for (const char* vocab_name : kVocabs) {
    const auto& voc = vocab(vocab_name);
    for (const auto& [name, schema] : walk_schemas()) {
      auto grammar = compile(json_schema_to_gbnf(schema));
      TokenConstraint constraint(grammar, voc.index);
      std::set<std::string> distinct;
      for (uint32_t seed = 0; seed < 25; ++seed) {
        const test::Walk walk = test::random_walk(constraint, *voc.index, seed);
        const std::string where = std::string(vocab_name) + " " + name + " seed " + std::to_string(seed) + ": " + walk.text;
        ASSERT_TRUE(walk.ended) << where;
        EXPECT_TRUE(test::accepts(grammar, walk.text)) << where;
        Json value;
        ASSERT_NO_THROW(value = Json::parse(walk.text)) << where;
        EXPECT_EQ(test::check(value, schema), "") << where;
        distinct.insert(walk.text);
      }
      EXPECT_GT(distinct.size(), name == "choice" ? 2u : 10u) << vocab_name << " " << name;
    }
  }
}

TEST(TokenConstraint, MaskAgreesWithAllowsAlongWalks) {
  const auto& voc = vocab("llama-bpe");
  for (const auto& [name, schema] : walk_schemas()) {
    auto grammar = compile(json_schema_to_gbnf(schema));
    TokenConstraint walker(grammar, voc.index);
    const test::Walk walk = test::random_walk(walker, *voc.index, 7);
    ASSERT_TRUE(walk.ended);
    // Replay the walk on a fresh constraint, checking every few steps.
    TokenConstraint c(grammar, voc.index);
    const std::vector<int32_t> ids = voc.tokenizer->encode(walk.text, false, false);
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i % 3 == 0) expect_mask_agrees(c, *voc.index, name + " step " + std::to_string(i));
      if (!c.allows(ids[i])) break;  // the tokenizer may split differently than the grammar allows mid-way
      c.accept(ids[i]);
    }
  }
}

TEST(TokenConstraint, ByteFallbackSplitsACharacter) {
  const auto& voc = vocab("llama-spm");
  auto grammar = compile("root ::= \"€\"");
  TokenConstraint c(grammar, voc.index);
  const int32_t e2 = voc.tokenizer->find_token("<0xE2>"), x82 = voc.tokenizer->find_token("<0x82>"),
                xac = voc.tokenizer->find_token("<0xAC>"), e3 = voc.tokenizer->find_token("<0xE3>");
  ASSERT_GE(e2, 0);
  EXPECT_TRUE(c.allows(e2));
  EXPECT_FALSE(c.allows(e3));
  EXPECT_FALSE(c.allows(x82));
  c.accept(e2);
  EXPECT_FALSE(c.accepting());
  EXPECT_TRUE(c.allows(x82));
  EXPECT_FALSE(c.allows(xac));
  c.accept(x82);
  c.accept(xac);
  EXPECT_TRUE(c.accepting());
  EXPECT_TRUE(c.finished());
  const std::vector<int32_t> left = c.allowed_tokens();
  EXPECT_FALSE(left.empty());
  for (int32_t id : left) EXPECT_TRUE(voc.index->is_eog(id)) << id;
}

TEST(TokenConstraint, EndOfGenerationAndControlTokens) {
  for (const char* vocab_name : kVocabs) {
    const auto& voc = vocab(vocab_name);
    const int32_t eos = voc.tokenizer->eos(), bos = voc.tokenizer->bos();
    ASSERT_GE(eos, 0);
    TokenConstraint once(compile("root ::= \"ab\""), voc.index);
    EXPECT_FALSE(once.allows(eos));
    EXPECT_FALSE(once.finished());
    for (int32_t id : ids_for(*voc.index, "ab")) once.accept(id);
    EXPECT_TRUE(once.finished());
    EXPECT_TRUE(once.allows(eos));
    EXPECT_EQ(once.allowed_tokens(), voc.index->eog_tokens());
    once.accept(eos);
    EXPECT_TRUE(once.finished());
    EXPECT_FALSE(once.allows(eos));

    TokenConstraint more(compile("root ::= [a-z]+"), voc.index);
    for (int32_t id : ids_for(*voc.index, "abc")) more.accept(id);
    EXPECT_TRUE(more.accepting());
    EXPECT_TRUE(more.can_continue());
    EXPECT_TRUE(more.allows(eos));
    EXPECT_TRUE(more.allows(ids_for(*voc.index, "x")[0]));

    TokenConstraint anything(compile("root ::= .*"), voc.index);
    if (bos >= 0) {
      EXPECT_FALSE(anything.allows(bos)) << vocab_name;
    }
    const std::vector<int32_t> allowed = anything.allowed_tokens();
    for (int32_t id : allowed) EXPECT_TRUE(voc.index->is_eog(id) || !voc.tokenizer->is_control(id)) << id;
    EXPECT_FALSE(anything.allows(-1));
    EXPECT_FALSE(anything.allows(voc.index->n_vocab()));

    TokenConstraint digits(compile("root ::= [0-9]+"), voc.index);
    const int32_t letter = ids_for(*voc.index, "hello")[0];
    std::string message;
    try {
      digits.accept(letter);
    } catch (const slm::Error& e) {
      message = e.what();
    }
    EXPECT_EQ(message.rfind("grammar: token " + std::to_string(letter) + " '", 0), 0u) << message;
    EXPECT_NE(message.find("is not allowed here"), std::string::npos);
  }
}

TEST(TokenConstraint, JsonGrammarWalksEnd) {
  const auto& voc = vocab("llama-bpe");
  auto grammar = compile(json_any_object_gbnf());
  TokenConstraint c(grammar, voc.index);
  for (uint32_t seed = 0; seed < 10; ++seed) {
    const test::Walk walk = test::random_walk(c, *voc.index, seed, 600, 40);
    ASSERT_TRUE(walk.ended) << walk.text;
    EXPECT_TRUE(Json::parse(walk.text).is_object()) << walk.text;
  }
}

}  // namespace

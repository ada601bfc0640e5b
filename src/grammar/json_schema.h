// JSON Schema -> GBNF, for constrained JSON output (response_format, tool parameters).
//
// The grammar produces compact JSON (no whitespace) that validates against the schema:
// where a keyword cannot be expressed exactly the grammar is narrower, never wider (e.g.
// numbers with bounds get no exponent). Keywords it does not support throw slm::Error
// naming the keyword and where it is, e.g.
// "json schema: unsupported keyword 'patternProperties' at /properties/x".
#pragma once
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace slm::grammar {

inline constexpr int kMaxSchemaDepth = 64;  // nested subschemas

// Properties come in the schema's order with ordered_json; nlohmann::json keeps its keys
// sorted, so with it they come alphabetically.
std::string json_schema_to_gbnf(const nlohmann::ordered_json& schema);
std::string json_schema_to_gbnf(const nlohmann::json& schema);

// Any JSON object (compact), for "JSON mode" without a schema.
std::string json_any_object_gbnf();

}  // namespace slm::grammar

// Options that several subcommands share, declared and validated in one place.
#pragma once
#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

#include "slm/adapter.h"

namespace slm {
class Model;
}

namespace slm::cli {

// --lora FILE[:SCALE] (repeatable, scale 1 by default) and llama.cpp's --lora-scaled
// FILE:SCALE. Adapters add up in the order given.
struct LoraOptions {
  std::vector<std::string> specs;         // --lora
  std::vector<std::string> scaled_specs;  // --lora-scaled
};
void add_lora_options(CLI::App* sub, LoraOptions& o);

struct LoadedLoras {
  std::vector<std::unique_ptr<LoraAdapter>> adapters;
  LoraSet set;  // every adapter with its scale
  const LoraSet* get() const { return adapters.empty() ? nullptr : &set; }
};
// Loads and checks the adapters against the base; reports each (file, rank, targets, memory,
// cost per token) on stderr, prefixed with `who`.
LoadedLoras load_loras(const LoraOptions& o, const Model& base, const char* who);

// FILE[:SCALE] → (FILE, SCALE). A ':' followed by something that is not a number belongs to
// the file name (so paths with colons still work); scale_required: --lora-scaled.
std::pair<std::string, float> parse_lora_spec(const std::string& spec, bool scale_required);

}  // namespace slm::cli

// Options that several subcommands share, declared and validated in one place.
#pragma once
#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "quant/types.h"
#include <vector>

#include "slm/adapter.h"
#include "slm/sampler.h"

namespace slm {
class Model;
}

namespace slm::cli {

// -t/--threads: 1..kMaxThreads (absent: every core). One rule for every subcommand.
constexpr int kMaxThreads = 512;
CLI::Option* add_threads_option(CLI::App* sub, int& threads, const char* help = "Threads (default: all cores)");
int resolve_threads(int threads);  // 0 → the machine's cores
// -c/--ctx/--ctx-size (llama.cpp's spelling too): 0 (the model's, at most 4096) .. 2^24.
CLI::Option* add_ctx_option(CLI::App* sub, int& ctx, const char* help = "Context size (default: the model's, at most 4096)");
// --kv-type f32|f16.
// --kv-type T for keys and values, and llama.cpp's --cache-type-k, --cache-type-v (also
// spelt -ctk, -ctv: main() maps them) for each: f32, f16, q8_0 or q4_0.
struct KvTypeNames {
  std::string both = "f32";
  std::string k, v;  // "" = both
  GgmlType key() const;
  GgmlType value() const;
  std::string describe() const;  // "f16", or "K q8_0, V f16"
};
void add_kv_type_option(CLI::App* sub, KvTypeNames& kv, const char* help = "KV cache element type for keys and values: f32, f16, q8_0 or q4_0");
// --context-shift and --keep N, as llama.cpp's: when the context fills, keep the first N
// tokens after BOS (-1: the whole prompt), drop half of the rest and go on.
struct ContextShiftOptions {
  bool enabled = false;
  int keep = 0;
  // Positions to keep for a prompt of n tokens starting with BOS or not.
  int n_keep(int n_prompt, bool bos) const;
};
void add_context_shift_options(CLI::App* sub, ContextShiftOptions& o);
// The whole of a text file, or of standard input for "-"; a directory, an unreadable or an
// empty file is an slm::Error naming it (`what` says what was being read).
std::string read_text_input(const std::string& path, const char* what);

// A warning on stderr when the context is longer than the one the model was trained for.
void warn_if_beyond_training(const Model& model, int n_ctx, const char* who);

// The sampling flags of run and chat (llama.cpp's names), validated by SamplerParams::validate.
void add_sampling_options(CLI::App* sub, SamplerParams& sampling);

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

// Fine-tuning data: JSONL files, one example per line, in one of three formats (detected
// from the first example, required of every line; errors name the file and line):
//   {"text": "..."}                          loss on every token
//   {"prompt": "...", "completion": "..."}   loss on the completion only
//   {"messages": [{"role", "content"}, ...]} rendered with the model's chat template, loss
//                                            on the assistant turns only
// Examples become token rows of at most n_ctx tokens: long ones are split, short ones packed
// side by side (each its own segment and positions, so attention never crosses them).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "train/backprop.h"

namespace slm {
class ChatFormatter;
class Tokenizer;
}  // namespace slm

namespace slm::train {

enum class DataFormat { Text, PromptCompletion, Messages };
const char* data_format_name(DataFormat f);

// One example as tokens, with weight[t] the loss weight of predicting tokens[t+1].
struct Example {
  std::vector<int32_t> tokens;
  std::vector<float> weight;
};

struct Dataset {
  DataFormat format = DataFormat::Text;
  std::vector<Example> examples;
  size_t n_lines = 0;
  uint64_t hash = 0;  // of the file's bytes (FNV-1a), recorded in the adapter
};

// chat is needed for the messages format (and may be null otherwise).
Dataset load_dataset(const std::string& path, const Tokenizer& tok, const ChatFormatter* chat);

// Rows of at most n_ctx tokens: examples longer than n_ctx are cut into pieces of n_ctx
// tokens; with pack, consecutive examples share a row while they fit.
std::vector<Sequence> make_rows(const std::vector<Example>& examples, int n_ctx, bool pack);

uint64_t fnv1a(const void* data, size_t n, uint64_t h = 1469598103934665603ull);

}  // namespace slm::train

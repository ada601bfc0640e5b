// Session: one sequence being evaluated by a Model — its KvCache, its position and the
// logits of its last evaluation. A server runs one Session per concurrent sequence over a
// shared Model and ThreadPool.
// generate(): the prompt -> sampled tokens -> streamed text loop used by `slm run`.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "slm/model.h"

namespace slm {

class Sampler;
class Tokenizer;

// The context size to use when the user gives none: the model's, capped at 4096.
int default_context(const Model& model);

class Session {
 public:
  // n_ctx <= 0 means default_context(model). kv_type: F32 or F16.
  Session(const Model& model, ThreadPool& pool, int n_ctx = 0, GgmlType kv_type = GgmlType::F32);
  // Keys and values of different types (F32, F16, Q8_0, Q4_0), as llama.cpp's -ctk/-ctv.
  Session(const Model& model, ThreadPool& pool, int n_ctx, GgmlType k_type, GgmlType v_type);

  // Appends tokens to the sequence and evaluates them in one batch. Returns the logits of
  // the last token (n_vocab values), or of every new token ([n][n_vocab]) with all_logits.
  // Throws slm::Error (naming both lengths) if they do not fit the remaining context.
  const std::vector<float>& eval(const std::vector<int32_t>& tokens, bool all_logits = false);

  int n_past() const { return n_past_; }
  int n_ctx() const { return cache_.n_ctx(); }
  const KvCache& cache() const { return cache_; }
  const Model& model() const { return model_; }
  const std::vector<float>& logits() const { return logits_; }
  // Forgets positions >= n (n <= n_past), e.g. to reuse a common prompt prefix.
  void truncate(int n);
  // Context shift (Model::shift_cache): keeps positions [0, n_keep), forgets the n_discard
  // after them and moves the rest down, keys re-rotated; n_past() falls by n_discard and the
  // last logits stay valid.
  void shift(int n_keep, int n_discard);
  // Adapters for the tokens evaluated from now on (nullptr: the base model). The set must
  // outlive its use; positions already in the cache keep what they were computed with.
  void set_lora(const LoraSet* lora) { lora_ = lora; }
  const LoraSet* lora() const { return lora_; }

  // For restoring a saved state (the C API): write the cache's rows back through
  // cache_for_restore(), then set the position and the last logits they lead to.
  KvCache& cache_for_restore() { return cache_; }
  void restore(int n_past, std::vector<float> logits);

 private:
  const Model& model_;
  ThreadPool& pool_;
  KvCache cache_;
  int n_past_ = 0;
  std::vector<float> logits_;
  const LoraSet* lora_ = nullptr;
};

struct GenerateParams {
  int n_predict = -1;              // tokens to generate; -1: until end of generation or context
  std::vector<std::string> stops;  // generation ends where one of these appears (not printed)
  std::function<bool()> cancelled;  // asked before each token; true ends with stop_reason "cancelled"
  // When the context fills: stop (stop_reason "context"), or with context_shift keep the
  // first n_keep positions, drop half of the rest and go on, as llama.cpp's --context-shift.
  bool context_shift = false;
  int n_keep = 0;
};

struct GenerateResult {
  int n_prompt = 0;
  int n_generated = 0;
  double prompt_seconds = 0;
  double generate_seconds = 0;
  std::string stop_reason;  // "eog", "length", "stop", "context", "cancelled"
  int n_shifts = 0;         // context shifts made on the way
  std::string text;         // everything passed to on_text
  std::vector<int32_t> tokens;
};

// Evaluates `prompt` in the session, then samples up to n_predict tokens, streaming their
// text through on_text as soon as it is complete UTF-8 and cannot be the start of a stop
// string. Stops at an end-of-generation token (not printed), a stop string, n_predict or a
// full context.
GenerateResult generate(Session& session, Sampler& sampler, const Tokenizer& tok,
                        const std::vector<int32_t>& prompt, const GenerateParams& params,
                        const std::function<void(const std::string&)>& on_text);

// Holds back streamed text that could be the beginning of a stop string.
class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  // Adds text; returns what can be shown now. After a stop string is found, stopped() is
  // true and the returned text ends right before it.
  std::string push(const std::string& text);
  std::string flush();  // the held-back tail (at the end of generation)
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace slm

// Scheduler: continuous batching over N slots. Requests wait in a bounded queue; each step
// admits waiting requests into free slots and advances every active slot at once — a chunk
// of its prompt or one decode token — in one batched forward pass, so throughput rises with
// concurrent users and a new request never waits for others to finish.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "quant/types.h"
#include "server/openai.h"
#include "slm/adapter.h"

namespace slm {
namespace grammar {
class VocabIndex;
}
class Model;
class Tokenizer;
class ThreadPool;
}  // namespace slm

namespace slm::server {

// What a request sees of its generation: text deltas, then one final event.
struct JobEvent {
  enum Kind { Text, Done, Failed };
  JobEvent() = default;
  JobEvent(Kind k, std::string t, std::string finish, std::string err)
      : kind(k), text(std::move(t)), finish_reason(std::move(finish)), error(std::move(err)) {}
  Kind kind = Text;
  std::string text;           // Text: new text (stop strings already held back / removed)
  std::string finish_reason;  // Done: "stop" or "length"
  std::string error;          // Failed
  std::vector<TokenLogprob> logprobs;  // Text: the tokens generated since the last event, when asked
};

struct Job {
  CompletionRequest request;
  std::vector<int32_t> prompt;
  LoraSet lora;  // the adapters this request runs with (empty: the base model)
  int prompt_tokens = 0;
  int completion_tokens = 0;
  std::atomic<bool> cancelled{false};  // the client went away: free the slot at once

  // Waits for the next event; false when timeout_ms passed without one.
  bool next(JobEvent* out, int timeout_ms);
  void push(JobEvent e);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<JobEvent> events_;
};

struct SchedulerOptions {
  int n_slots = 4;
  int n_ctx = 2048;      // per slot
  int n_threads = 2;
  int max_queue = 64;    // requests waiting for a slot beyond this get 429
  int prompt_chunk = 128;  // prompt tokens one slot may add to a step
  GgmlType kv_type_k = GgmlType::F32, kv_type_v = GgmlType::F32;  // KV cache element types
  // A slot whose context fills: finish with "length", or (context_shift) keep the first
  // n_keep tokens after BOS, drop half of the rest and go on, as llama-server's --context-shift.
  bool context_shift = false;
  int n_keep = 0;
};

struct SchedulerStats {
  uint64_t requests = 0, prompt_tokens = 0, completion_tokens = 0;
  uint64_t prompt_tokens_cached = 0;  // prompt tokens not evaluated: a slot's cache already held them
  uint64_t errors_4xx = 0, errors_5xx = 0, cancelled = 0;
  int queue_depth = 0, active_slots = 0, n_slots = 0;
  uint64_t kv_cells_used = 0, kv_cells_total = 0;
  uint64_t context_shifts = 0;
  uint64_t mixed_adapter_steps = 0;  // batch steps whose sequences ran different adapter sets
  double decode_tokens_per_s = 0;  // over the last steps with decoding
};

class Scheduler {
 public:
  Scheduler(const Model& model, const Tokenizer& tok, SchedulerOptions opt);
  ~Scheduler();

  // Queues a request (prompt already tokenized). Throws ApiError 429 when the queue is full,
  // 400 when the prompt does not fit the context, 503 after shutdown began.
  std::shared_ptr<Job> submit(CompletionRequest req, std::vector<int32_t> prompt, LoraSet lora = {});
  // Stops admitting; cancels what is queued; lets active slots finish for up to grace_ms,
  // then cancels them; joins the loop thread.
  void shutdown(int grace_ms);

  SchedulerStats stats() const;
  void count_error(int status);
  int n_ctx() const { return opt_.n_ctx; }
  size_t kv_bytes() const;  // memory of all slots' KV caches

 private:
  struct Slot;
  void loop();
  void step();
  TokenLogprob token_logprob(const float* logits, int32_t tok, int top) const;

  const Model& model_;
  const Tokenizer& tok_;
  SchedulerOptions opt_;
  std::unique_ptr<ThreadPool> pool_;
  // The vocabulary for grammar filters, built at start and shared by every constrained job.
  std::shared_ptr<const grammar::VocabIndex> vocab_;
  std::vector<std::unique_ptr<Slot>> slots_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stopping_ = false;
  bool closed_ = false;
  SchedulerStats stats_;
  std::thread thread_;
};

}  // namespace slm::server

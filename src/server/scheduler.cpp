#include "server/scheduler.h"

#include <algorithm>
#include <chrono>
#include <random>

#include "kernels/thread_pool.h"
#include "slm/error.h"
#include "slm/model.h"
#include "slm/sampler.h"
#include "slm/session.h"
#include "slm/tokenizer.h"

namespace slm::server {

using Clock = std::chrono::steady_clock;

bool Job::next(JobEvent* out, int timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return !events_.empty(); })) return false;
  *out = std::move(events_.front());
  events_.pop_front();
  return true;
}

void Job::push(JobEvent e) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(e));
  }
  cv_.notify_all();
}

// The sampler chain for a request; without a seed, a fresh random one.
static SamplerParams sampler_params(const SamplingParams& p) {
  SamplerParams sp;
  sp.temp = p.temperature;
  sp.top_k = p.top_k;
  sp.top_p = p.top_p;
  sp.min_p = p.min_p;
  sp.presence_penalty = p.presence_penalty;
  sp.frequency_penalty = p.frequency_penalty;
  sp.repeat_penalty = p.repeat_penalty;
  sp.seed = p.seed ? *p.seed : std::random_device{}();
  sp.logit_bias = p.logit_bias;
  return sp;
}

struct Scheduler::Slot {
  std::shared_ptr<Job> job;
  std::unique_ptr<KvCache> cache;
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<StreamDecoder> decoder;
  size_t n_prompt_done = 0;  // prompt tokens already in the cache
  int n_past = 0;            // positions in the cache
  int32_t pending = -1;      // sampled token still to be evaluated
  std::unique_ptr<StopMatcher> stops;  // holds back text that may begin a stop string
  std::vector<float> logits;
  std::vector<TokenLogprob> logprobs;  // not yet sent
  Clock::time_point deadline;
  // What the cache holds, kept after a request ends: the tokens whose keys and values are in
  // positions [0, cached.size()), and the adapters they were computed with. A new request
  // that begins with the same tokens (a chat's earlier turns, a shared system prompt) starts
  // after them instead of evaluating them again.
  std::vector<int32_t> cached;
  std::vector<std::pair<const LoraAdapter*, float>> cached_lora;
  // After a context shift only the kept positions equal a fresh evaluation of their tokens
  // (the moved ones were computed with the dropped context): no later request reuses more.
  size_t exact = SIZE_MAX;

  bool active() const { return job != nullptr; }
};

namespace {

// The adapters that change the output, in order (a zero scale changes nothing).
std::vector<std::pair<const LoraAdapter*, float>> effective(const LoraSet& set) {
  std::vector<std::pair<const LoraAdapter*, float>> out;
  for (const auto& a : set.adapters)
    if (a.first && a.second != 0.0f) out.push_back(a);
  return out;
}

// Prompt tokens a slot can skip: the common prefix of its cache and the prompt, leaving at
// least the prompt's last token to evaluate (its logits give the first sample).
size_t reusable(const std::vector<int32_t>& cached, const std::vector<int32_t>& prompt) {
  size_t n = 0;
  while (n < cached.size() && n < prompt.size() && cached[n] == prompt[n]) ++n;
  return std::min(n, prompt.empty() ? 0 : prompt.size() - 1);
}

}  // namespace

Scheduler::Scheduler(const Model& model, const Tokenizer& tok, SchedulerOptions opt)
    : model_(model), tok_(tok), opt_(opt) {
  pool_ = std::make_unique<ThreadPool>(opt_.n_threads);
  vocab_ = grammar_vocabulary(tok_);
  for (int k = 0; k < opt_.n_slots; ++k) {
    auto s = std::make_unique<Slot>();
    s->cache = std::make_unique<KvCache>(model_.config(), opt_.n_ctx, opt_.kv_type_k, opt_.kv_type_v);
    s->logits.resize(static_cast<size_t>(model_.n_vocab()));
    slots_.push_back(std::move(s));
  }
  stats_.n_slots = opt_.n_slots;
  stats_.kv_cells_total = static_cast<uint64_t>(opt_.n_slots) * static_cast<uint64_t>(opt_.n_ctx);
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() { shutdown(0); }

std::shared_ptr<Job> Scheduler::submit(CompletionRequest req, std::vector<int32_t> prompt, LoraSet lora) {
  ApiError e;
  if (prompt.empty()) {
    e.message = "the prompt is empty";
    e.param = req.chat ? "messages" : "prompt";
    throw e;
  }
  if (static_cast<int>(prompt.size()) > opt_.n_ctx) {
    e.message = "the prompt has " + std::to_string(prompt.size()) + " tokens but the context is " +
                std::to_string(opt_.n_ctx) + " tokens";
    e.param = req.chat ? "messages" : "prompt";
    e.code = "context_length_exceeded";
    throw e;
  }
  for (const auto& [id, bias] : req.sampling.logit_bias)
    if (id >= model_.n_vocab()) {
      e.message = "'logit_bias' names token " + std::to_string(id) + ", but the vocabulary has " +
                  std::to_string(model_.n_vocab()) + " tokens";
      e.param = "logit_bias";
      throw e;
    }
  try {
    sampler_params(req.sampling).validate();
  } catch (const Error& err) {
    e.message = err.what();
    throw e;
  }

  auto job = std::make_shared<Job>();
  job->request = std::move(req);
  job->lora = std::move(lora);
  job->prompt = std::move(prompt);
  job->prompt_tokens = static_cast<int>(job->prompt.size());
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) {
      e.status = 503;
      e.type = "server_error";
      e.message = "the server is shutting down";
      throw e;
    }
    // --queue is the waiting room beyond the slots: a request that finds a slot free (one
    // not taken by an earlier queued request) never waits, so --queue 0 still serves.
    const int free_slots = std::max(0, opt_.n_slots - stats_.active_slots);
    if (static_cast<int>(queue_.size()) >= opt_.max_queue + free_slots) {
      e.status = 429;
      e.type = "rate_limit_error";
      e.message = "all " + std::to_string(opt_.n_slots) + " slots are busy and " + std::to_string(queue_.size()) +
                  " requests are waiting; retry later";
      e.code = "queue_full";
      ++stats_.errors_4xx;
      throw e;
    }
    queue_.push_back(job);
    ++stats_.requests;
  }
  cv_.notify_all();
  return job;
}

size_t Scheduler::kv_bytes() const {
  size_t b = 0;
  for (const auto& s : slots_) b += s->cache->bytes();
  return b;
}

void Scheduler::count_error(int status) {
  std::lock_guard<std::mutex> lock(mu_);
  if (status >= 500) ++stats_.errors_5xx;
  else if (status >= 400 && status != 429) ++stats_.errors_4xx;
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  SchedulerStats s = stats_;
  s.queue_depth = static_cast<int>(queue_.size());
  return s;
}

void Scheduler::shutdown(int grace_ms) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    for (auto& j : queue_) j->push({JobEvent::Failed, "", "", "the server is shutting down"});
    queue_.clear();
  }
  auto until = Clock::now() + std::chrono::milliseconds(grace_ms);
  while (Clock::now() < until) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stats_.active_slots == 0) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (auto& s : slots_)
    if (s->job) {
      s->job->push({JobEvent::Failed, "", "", "the server is shutting down"});
      s->job.reset();
    }
}

void Scheduler::loop() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty() || stats_.active_slots > 0; });
      if (stopping_) return;
    }
    try {
      step();
    } catch (const std::exception& ex) {
      // A failure inside a step fails the requests in it, never the server.
      for (auto& s : slots_) {
        s->cached.clear();  // a failed step may have written part of its rows
        if (s->job) {
          s->job->push({JobEvent::Failed, "", "", std::string("generation failed: ") + ex.what()});
          s->job.reset();
        }
      }
      std::lock_guard<std::mutex> lock(mu_);
      stats_.active_slots = 0;
      ++stats_.errors_5xx;
    }
  }
}

// log softmax of the model's logits at the sampled token, and the top alternatives.
TokenLogprob Scheduler::token_logprob(const float* logits, int32_t tok, int top) const {
  const int V = model_.n_vocab();
  float mx = logits[0];
  for (int i = 1; i < V; ++i) mx = std::max(mx, logits[i]);
  double sum = 0;
  for (int i = 0; i < V; ++i) sum += std::exp(double(logits[i]) - mx);
  const double log_z = mx + std::log(sum);
  TokenLogprob t;
  t.token = tok_.token_to_piece(tok, false);
  t.logprob = double(logits[tok]) - log_z;
  if (top > 0) {
    std::vector<int32_t> ids(static_cast<size_t>(V));
    for (int i = 0; i < V; ++i) ids[size_t(i)] = i;
    const int k = std::min(top, V);
    std::partial_sort(ids.begin(), ids.begin() + k, ids.end(),
                      [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
    for (int i = 0; i < k; ++i) t.top.push_back({tok_.token_to_piece(ids[size_t(i)], false), double(logits[ids[size_t(i)]]) - log_z});
  }
  return t;
}

void Scheduler::step() {
  // 1. Admit waiting requests into free slots; drop requests whose client left.
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = queue_.begin(); it != queue_.end();)
      if ((*it)->cancelled) {
        ++stats_.cancelled;
        it = queue_.erase(it);
      } else {
        ++it;
      }
    while (!queue_.empty()) {
      // The free slot whose cache shares the longest prefix with the request (same adapters).
      const auto lora = effective(queue_.front()->lora);
      Slot* s = nullptr;
      size_t reuse = 0;
      for (auto& sp : slots_) {
        if (sp->active()) continue;
        const size_t n =
            sp->cached_lora == lora ? std::min(sp->exact, reusable(sp->cached, queue_.front()->prompt)) : 0;
        if (!s || n > reuse) {
          s = sp.get();
          reuse = n;
        }
      }
      if (!s) break;
      s->job = queue_.front();
      queue_.pop_front();
      s->cached.resize(reuse);
      s->cached_lora = lora;
      s->exact = SIZE_MAX;  // rows from here on are this request's own
      stats_.prompt_tokens_cached += reuse;
      s->sampler = std::make_unique<Sampler>(sampler_params(s->job->request.sampling));
      if (!s->job->request.grammar.empty()) {
        try {
          s->sampler->set_filter(grammar_filter(vocab_, s->job->request.grammar));
        } catch (const std::exception& ex) {  // checked at submit: only if the grammar cannot be compiled
          s->job->push({JobEvent::Failed, "", "", std::string("cannot compile the grammar: ") + ex.what()});
          s->job.reset();
          continue;
        }
      }
      for (int32_t t : s->job->prompt) s->sampler->accept(t);
      s->decoder = std::make_unique<StreamDecoder>(tok_);
      s->n_prompt_done = reuse;
      s->n_past = static_cast<int>(reuse);
      s->pending = -1;
      s->stops = std::make_unique<StopMatcher>(s->job->request.sampling.stop);
      s->logprobs.clear();
      s->deadline = Clock::now() + std::chrono::hours(24);
    }
  }

  auto finish = [&](Slot& s, const char* reason) {
    std::string rest = s.stops->push(s.decoder->flush());
    if (!s.stops->stopped()) rest += s.stops->flush();
    if (!rest.empty()) s.job->push({JobEvent::Text, rest, "", ""});
    s.job->push({JobEvent::Done, "", s.stops->stopped() ? "stop" : reason, ""});
    s.job.reset();
  };

  // --context-shift: keep n_keep tokens after BOS (-1: the prompt), drop half of the rest.
  auto shift_context = [&](Slot& s) {
    const bool bos = !s.cached.empty() && s.cached[0] == tok_.bos();
    const int want = opt_.n_keep < 0 ? static_cast<int>(s.job->prompt.size()) : opt_.n_keep + (bos ? 1 : 0);
    const int keep = std::min(s.n_past - 1, want);
    const int discard = (s.n_past - keep) / 2;
    if (discard <= 0) return false;
    model_.shift_cache(*s.cache, keep, discard, s.n_past);
    s.n_past -= discard;
    s.exact = std::min(s.exact, static_cast<size_t>(keep));
    if (s.cached.size() >= static_cast<size_t>(keep + discard))
      s.cached.erase(s.cached.begin() + keep, s.cached.begin() + keep + discard);
    else
      s.cached.clear();
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.context_shifts;
    return true;
  };

  // 2. Free slots whose client went away; finish requests that need no evaluation.
  for (auto& sp : slots_) {
    Slot& s = *sp;
    if (!s.active()) continue;
    if (s.job->cancelled) {
      s.job.reset();
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.cancelled;
      continue;
    }
    if (s.job->request.sampling.max_tokens == 0) finish(s, "length");
  }

  // 3. Evaluate, in one batched forward pass, a prompt chunk or the pending token of every
  //    active slot: the weights are read once per step for all of them.
  Clock::time_point t0 = Clock::now();
  int decoded = 0;
  uint64_t prompt_evaluated = 0;
  struct Work {
    Slot* slot;
    int n;
    bool prompt;
  };
  std::vector<SequenceBatch> batch;
  std::vector<Work> work;
  for (auto& sp : slots_) {
    Slot& s = *sp;
    if (!s.active()) continue;
    const std::vector<int32_t>& prompt = s.job->prompt;
    SequenceBatch b;
    b.cache = s.cache.get();
    b.lora = s.job->lora.empty() ? nullptr : &s.job->lora;
    b.pos0 = s.n_past;
    b.logits = s.logits.data();
    if (s.n_prompt_done < prompt.size()) {
      b.n = static_cast<int>(std::min<size_t>(opt_.prompt_chunk, prompt.size() - s.n_prompt_done));
      b.tokens = prompt.data() + s.n_prompt_done;
      work.push_back({&s, b.n, true});
    } else {
      if (s.n_past >= opt_.n_ctx && !(opt_.context_shift && shift_context(s))) {
        finish(s, "length");
        continue;
      }
      b.pos0 = s.n_past;  // after a shift
      b.n = 1;
      b.tokens = &s.pending;
      work.push_back({&s, 1, false});
    }
    batch.push_back(b);
  }
  bool mixed = false;
  for (const SequenceBatch& b : batch)
    if (b.lora != batch.front().lora &&
        !(b.lora && batch.front().lora && b.lora->adapters == batch.front().lora->adapters))
      mixed = true;
  if (!batch.empty()) model_.forward(*pool_, batch);

  for (const Work& w : work) {
    Slot& s = *w.slot;
    if (w.prompt)
      s.cached.insert(s.cached.end(), s.job->prompt.begin() + static_cast<std::ptrdiff_t>(s.n_prompt_done),
                      s.job->prompt.begin() + static_cast<std::ptrdiff_t>(s.n_prompt_done) + w.n);
    else
      s.cached.push_back(s.pending);
    s.n_past += w.n;
    if (w.prompt) {
      s.n_prompt_done += static_cast<size_t>(w.n);
      prompt_evaluated += static_cast<uint64_t>(w.n);
      if (s.n_prompt_done < s.job->prompt.size()) continue;  // more prompt next step
    } else {
      ++decoded;
    }

    // 4. Sample the next token and turn it into text.
    int32_t tok = s.sampler->sample(s.logits.data(), model_.n_vocab());
    s.sampler->accept_generated(tok);
    if (tok_.is_eog(tok)) {
      finish(s, "stop");
      continue;
    }
    s.job->completion_tokens++;
    s.pending = tok;
    if (s.job->request.logprobs) s.logprobs.push_back(token_logprob(s.logits.data(), tok, s.job->request.top_logprobs));
    std::string text = s.stops->push(s.decoder->push(tok));
    if (!text.empty() || !s.logprobs.empty()) {
      JobEvent ev{JobEvent::Text, std::move(text), "", ""};
      ev.logprobs.swap(s.logprobs);
      s.job->push(std::move(ev));
    }
    if (s.stops->stopped()) {
      s.job->push({JobEvent::Done, "", "stop", ""});
      s.job.reset();
      continue;
    }
    int max_tokens = s.job->request.sampling.max_tokens;
    if (max_tokens > 0 && s.job->completion_tokens >= max_tokens) finish(s, "length");
  }

  // 5. Statistics.
  double dt = std::chrono::duration<double>(Clock::now() - t0).count();
  std::lock_guard<std::mutex> lock(mu_);
  int active = 0;
  uint64_t cells = 0;
  for (auto& s : slots_)
    if (s->active()) {
      ++active;
      cells += static_cast<uint64_t>(s->n_past);
    }
  stats_.active_slots = active;
  stats_.kv_cells_used = cells;
  stats_.prompt_tokens += prompt_evaluated;
  if (mixed) ++stats_.mixed_adapter_steps;
  stats_.completion_tokens += static_cast<uint64_t>(decoded);
  if (decoded > 0 && dt > 0) {
    double rate = decoded / dt;
    stats_.decode_tokens_per_s = stats_.decode_tokens_per_s == 0 ? rate : 0.9 * stats_.decode_tokens_per_s + 0.1 * rate;
  }
}

}  // namespace slm::server

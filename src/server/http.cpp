// The HTTP side of `slm serve`: routes, authentication, body limits, SSE streaming, metrics
// and graceful shutdown. Generation itself happens in the Scheduler.
#include "server/http.h"

#include <signal.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "app/chat_format.h"
#include "app/energy.h"
#include "gguf/gguf.h"
#include "model/config.h"
#include "server/http_server.h"
#include "server/scheduler.h"
#include "slm/adapter.h"
#include "slm/error.h"
#include "slm/model.h"
#include "slm/tokenizer.h"

namespace slm::server {
namespace {

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string make_id(const char* prefix) {
  static std::atomic<uint64_t> counter{0};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s-%llx%06llx", prefix, static_cast<unsigned long long>(unix_now()),
                static_cast<unsigned long long>(counter.fetch_add(1)));
  return buf;
}

void send_error(http::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(error_body(e), "application/json");
}

ApiError bad_request(const std::string& message) {
  ApiError e;
  e.status = 400;
  e.message = message;
  return e;
}

ApiError status_error(int status) {
  ApiError e;
  e.status = status;
  switch (status) {
    case 404: e.message = "not found"; e.code = "not_found"; break;
    case 405: e.message = "method not allowed"; break;
    case 413: e.message = "request body too large"; e.code = "request_too_large"; break;
    case 414: e.message = "request URI too long"; break;
    case 429: e.message = "too many requests"; e.type = "rate_limit_error"; break;
    case 503: e.message = "service unavailable"; e.type = "server_error"; break;
    case 504: e.message = "timed out"; e.type = "server_error"; break;
    default:
      e.message = "HTTP error " + std::to_string(status);
      if (status >= 500) e.type = "server_error";
  }
  return e;
}

// Message contents given as a list of parts become one string (text parts joined by
// newlines), the form chat templates expect; other part types are refused.
ojson text_only(const ojson& messages) {
  ojson out = messages;
  for (size_t k = 0; k < out.size(); ++k) {
    ojson& m = out[k];
    if (m.contains("content") && m["content"].is_null()) m["content"] = "";  // a tool-call turn
    if (!m.contains("content") || !m["content"].is_array()) continue;
    std::string text;
    bool first = true;
    for (const ojson& part : m["content"]) {
      if (part["type"] != "text") {
        ApiError e;
        e.message = "messages[" + std::to_string(k) + "]: content parts of type " + part["type"].dump() +
                    " are not supported by this model (text only)";
        e.param = "messages";
        throw e;
      }
      if (!first) text += "\n";
      text += part["text"].get<std::string>();
      first = false;
    }
    m["content"] = text;
  }
  return out;
}

struct Server {
  ServeOptions opt;
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tok;
  std::unique_ptr<ChatFormatter> chat;
  ToolCallFormat tool_format = ToolCallFormat::generic_json;  // what the chat template teaches
  std::unique_ptr<Scheduler> sched;
  std::string model_id;
  std::atomic<bool> ready{false};
  // Adapters loaded at start; their default scales change through POST /lora-adapters.
  struct Adapter {
    std::unique_ptr<LoraAdapter> lora;
    std::string name;
    float scale = 1.0f;
    std::atomic<uint64_t> requests{0};
  };
  std::vector<std::unique_ptr<Adapter>> adapters;
  std::mutex adapters_mu;
  EnergyMeter energy;  // joules in /metrics where the machine exposes a counter

  // The adapter set of a request: its own "lora" list (unnamed adapters at 0), else the
  // defaults.
  LoraSet lora_set_for(const CompletionRequest& r) {
    LoraSet set;
    std::lock_guard<std::mutex> lock(adapters_mu);
    for (size_t id = 0; id < adapters.size(); ++id) {
      float scale = adapters[id]->scale;
      if (r.lora) {
        scale = 0.0f;
        for (const auto& [k, s] : *r.lora)
          if (size_t(k) == id) scale = s;
      }
      if (scale != 0.0f) {
        set.adapters.push_back({adapters[id]->lora.get(), scale});
        adapters[id]->requests++;
      }
    }
    return set;
  }

  ojson adapters_json() {
    std::lock_guard<std::mutex> lock(adapters_mu);
    ojson list = ojson::array();
    for (size_t id = 0; id < adapters.size(); ++id)
      list.push_back({{"id", id}, {"name", adapters[id]->name}, {"path", adapters[id]->lora->path()},
                      {"scale", adapters[id]->scale}, {"rank", adapters[id]->lora->max_rank()},
                      {"alpha", adapters[id]->lora->alpha()}});
    return list;
  }
  std::unique_ptr<http::Server> http;

  bool authorized(const http::Request& req, http::Response& res) {
    if (opt.api_key.empty()) return true;
    if (req.get_header_value("Authorization") == "Bearer " + opt.api_key) return true;
    ApiError e;
    e.status = 401;
    e.message = req.has_header("Authorization") ? "incorrect API key provided" : "missing API key (Authorization: Bearer ...)";
    e.code = "invalid_api_key";
    sched->count_error(401);
    send_error(res, e);
    return false;
  }

  bool loaded(http::Response& res) {
    if (ready) return true;
    ApiError e = status_error(503);
    e.message = "the model is still loading";
    send_error(res, e);
    return false;
  }

  // The checks before a body is parsed: loaded, authorized, within the size limit.
  bool admit(const http::Request& req, http::Response& res) {
    if (!loaded(res) || !authorized(req, res)) return false;
    if (req.body.size() > opt.max_body) {
      ApiError e = status_error(413);
      e.message = "request body of " + std::to_string(req.body.size()) + " bytes is larger than the limit of " +
                  std::to_string(opt.max_body) + " bytes";
      sched->count_error(413);
      send_error(res, e);
      return false;
    }
    return true;
  }

  void completions(const http::Request& req, http::Response& res, bool chat_api) {
    if (!admit(req, res)) return;
    std::vector<std::shared_ptr<Job>> jobs;
    try {
      CompletionRequest r = parse_completion_request(req.body, chat_api);
      // One model is served whatever name the client sends (clients ship fixed names such as
      // "gpt-4o-mini", as llama-server accepts); the response carries the served name.
      r.model = model_id;
      if (r.lora)
        for (const auto& [id, scale] : *r.lora)
          if (size_t(id) >= adapters.size()) {
            ApiError e;
            e.message = "'lora' names adapter " + std::to_string(id) + ", but the server has " +
                        std::to_string(adapters.size()) + " (see GET /lora-adapters)";
            e.param = "lora";
            throw e;
          }
      if (r.n > opt.n_parallel) {
        ApiError e;
        e.message = "'n' is " + std::to_string(r.n) + ", but the server has " + std::to_string(opt.n_parallel) +
                    " slots (--parallel): each choice takes one";
        e.param = "n";
        throw e;
      }
      apply_tool_choice(r, tool_format);  // a forced call: its grammar, before anything is queued
      LoraSet lora = lora_set_for(r);
      std::vector<int32_t> prompt;
      try {
        ojson extra = ojson::object();
        if (r.parse_tools()) extra["tools"] = r.tools;  // as sent: the template lays them out
        prompt = chat_api ? chat->encode(text_only(r.messages), true, extra) : tok->encode(r.prompt, true, false);
      } catch (const Error& err) {
        ApiError e;
        e.status = 400;
        e.message = std::string("cannot format the conversation: ") + err.what();
        e.param = chat_api ? "messages" : "prompt";
        throw e;
      }
      // n choices: n sequences of the same prompt, side by side in the batch (with a seed,
      // choice i samples with seed + i, so the choices differ and the request stays repeatable).
      for (int i = 0; i < r.n; ++i) {
        CompletionRequest ri = r;
        if (ri.sampling.seed && i > 0) ri.sampling.seed = *ri.sampling.seed + uint64_t(i);
        jobs.push_back(sched->submit(std::move(ri), prompt, lora));
      }
    } catch (const ApiError& e) {
      for (const auto& j : jobs) j->cancelled = true;
      sched->count_error(e.status);
      send_error(res, e);
      return;
    }

    const std::string id = make_id(chat_api ? "chatcmpl" : "cmpl");
    const int64_t created = unix_now();
    const int timeout_ms = opt.timeout_s * 1000;
    const CompletionRequest& request = jobs[0]->request;
    const ToolCallFormat tool_format = this->tool_format;
    const std::string echoed = request.echo ? request.prompt : std::string();
    auto cancel_all = [jobs] {
      for (const auto& j : jobs) j->cancelled = true;
    };
    if (!request.stream) {
      // Every choice in its own slot, generated side by side; collected in index order.
      ojson body;
      int completion_tokens = 0;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
      for (size_t i = 0; i < jobs.size(); ++i) {
        const std::shared_ptr<Job>& job = jobs[i];
        std::string text = echoed;
        std::vector<TokenLogprob> logprobs;
        JobEvent ev;
        for (;;) {
          if (!job->next(&ev, 200)) {
            if (std::chrono::steady_clock::now() > deadline) {
              cancel_all();
              ApiError e = status_error(504);
              e.message = "generation timed out";
              send_error(res, e);
              return;
            }
            continue;
          }
          if (ev.kind == JobEvent::Text) {
            text += ev.text;
            logprobs.insert(logprobs.end(), ev.logprobs.begin(), ev.logprobs.end());
          }
          if (ev.kind == JobEvent::Failed) {
            cancel_all();
            ApiError e = status_error(500);
            e.message = ev.error;
            send_error(res, e);
            return;
          }
          if (ev.kind == JobEvent::Done) break;
        }
        completion_tokens += job->completion_tokens;
        ojson one = completion_response(job->request, id, created, text, ev.finish_reason, job->prompt_tokens,
                                        job->completion_tokens);
        if (request.parse_tools()) {
          IdSource ids;
          ToolReply reply = tool_reply(tool_format, text, ids);
          if (!reply.tool_calls.empty()) {
            one["choices"][0]["message"] = tool_message(reply);
            if (ev.finish_reason == "stop") one["choices"][0]["finish_reason"] = "tool_calls";
          }
        }
        one["choices"][0]["index"] = i;
        if (request.logprobs) one["choices"][0]["logprobs"] = logprobs_json(request, logprobs, echoed.size());
        if (i == 0) body = one;
        else body["choices"].push_back(one["choices"][0]);
      }
      body["usage"] = usage_json(jobs[0]->prompt_tokens, completion_tokens);
      res.set_header("X-Slm-Tokens", std::to_string(jobs[0]->prompt_tokens) + "+" + std::to_string(completion_tokens));
      res.set_content(body.dump(-1, ' ', false, ojson::error_handler_t::replace), "application/json");
      return;
    }

    // Streaming: the choices' events interleave as they come, each chunk naming its index.
    struct Choice {
      bool first = true, done = false;
      size_t sent_text = 0;
      // With tools: the reply goes through the tool-call parser (ids before the parser).
      std::shared_ptr<IdSource> ids;
      std::shared_ptr<ToolDeltaStream> tools;
    };
    std::vector<Choice> choices(jobs.size());
    if (request.parse_tools())
      for (Choice& c : choices) {
        c.ids = std::make_shared<IdSource>();
        c.tools = std::make_shared<ToolDeltaStream>(tool_format, *c.ids);
      }
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [jobs, id, created, timeout_ms, echoed, cancel_all, state = std::move(choices)](
            http::Sink& sink) mutable {
          const CompletionRequest& request = jobs[0]->request;
          auto send = [&](ojson j, size_t index) {
            if (!j["choices"].empty()) j["choices"][0]["index"] = index;
            std::string s = "data: " + j.dump(-1, ' ', false, ojson::error_handler_t::replace) + "\n\n";
            return sink.write(s.data(), s.size());
          };
          // A chat chunk with this delta (the role on the choice's first chunk).
          auto delta_chunk = [&](const ojson& delta, size_t i) {
            ojson chunk = completion_chunk(request, id, created, "", nullptr, false);
            ojson d = ojson::object();
            if (state[i].first) d["role"] = "assistant";
            d.update(delta);
            chunk["choices"][0]["delta"] = d;
            state[i].first = false;
            return chunk;
          };
          const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
          for (size_t i = 0; i < jobs.size(); ++i) {
            state[i].sent_text = echoed.size();
            if (!echoed.empty() && !send(completion_chunk(request, id, created, echoed, nullptr, true), i)) {
              cancel_all();
              return false;
            }
            if (!echoed.empty()) state[i].first = false;
          }
          size_t remaining = jobs.size();
          while (remaining > 0) {
            bool any = false;
            for (size_t i = 0; i < jobs.size(); ++i) {
              if (state[i].done) continue;
              JobEvent ev;
              if (!jobs[i]->next(&ev, jobs.size() > 1 ? 5 : 100)) continue;
              any = true;
              if (ev.kind == JobEvent::Text && state[i].tools) {
                // Content until a call begins, then the call's deltas.
                std::vector<ojson> deltas = state[i].tools->feed(ev.text);
                if (deltas.empty() && !ev.logprobs.empty()) deltas.push_back(ojson::object());
                for (size_t d = 0; d < deltas.size(); ++d) {
                  ojson chunk = delta_chunk(deltas[d], i);
                  if (request.logprobs && d == 0) {
                    chunk["choices"][0]["logprobs"] = logprobs_json(request, ev.logprobs, state[i].sent_text);
                    for (const TokenLogprob& t : ev.logprobs) state[i].sent_text += t.token.size();
                  }
                  if (!send(chunk, i)) {
                    cancel_all();
                    return false;
                  }
                }
                continue;
              }
              if (ev.kind == JobEvent::Text) {
                if (ev.text.empty() && ev.logprobs.empty()) continue;
                ojson chunk = completion_chunk(request, id, created, ev.text, nullptr, state[i].first);
                if (request.logprobs) {
                  chunk["choices"][0]["logprobs"] = logprobs_json(request, ev.logprobs, state[i].sent_text);
                  for (const TokenLogprob& t : ev.logprobs) state[i].sent_text += t.token.size();
                }
                if (!send(chunk, i)) {
                  cancel_all();
                  return false;
                }
                state[i].first = false;
                continue;
              }
              if (ev.kind == JobEvent::Failed) {
                ApiError e = status_error(500);
                e.message = ev.error;
                std::string msg = "data: " + error_body(e) + "\n\n";
                sink.write(msg.data(), msg.size());
                cancel_all();
                static const char done[] = "data: [DONE]\n\n";
                sink.write(done, sizeof done - 1);
                sink.done();
                return true;
              }
              std::string finish_reason = ev.finish_reason;
              if (state[i].tools) {
                for (const ojson& delta : state[i].tools->finish())
                  if (!send(delta_chunk(delta, i), i)) {
                    cancel_all();
                    return false;
                  }
                if (state[i].tools->has_calls() && finish_reason == "stop") finish_reason = "tool_calls";
              }
              send(completion_chunk(request, id, created, "", &finish_reason, state[i].first), i);
              state[i].done = true;
              --remaining;
            }
            if (!any && (!sink.is_writable() || std::chrono::steady_clock::now() > deadline)) {
              cancel_all();  // the client left: free the slots now
              return false;
            }
          }
          if (request.include_usage) {
            int completion_tokens = 0;
            for (const auto& j : jobs) completion_tokens += j->completion_tokens;
            ojson u = completion_chunk(request, id, created, "", nullptr, false);
            u["choices"] = ojson::array();
            u["usage"] = usage_json(jobs[0]->prompt_tokens, completion_tokens);
            send(u, 0);
          }
          static const char done[] = "data: [DONE]\n\n";
          sink.write(done, sizeof done - 1);
          sink.done();
          return true;
        },
        [cancel_all](bool success) {
          if (!success) cancel_all();
        });
  }

  // POST /v1/responses: the Responses API on the chat machinery (one output, no storage).
  void responses(const http::Request& req, http::Response& res) {
    if (!admit(req, res)) return;
    std::shared_ptr<Job> job;
    ResponsesRequest rr;
    try {
      rr = parse_responses_request(req.body);
      CompletionRequest& r = rr.chat;
      r.model = model_id;  // one model is served, whatever name is sent
      apply_tool_choice(r, tool_format);
      LoraSet lora = lora_set_for(r);
      std::vector<int32_t> prompt;
      try {
        ojson extra = ojson::object();
        if (r.parse_tools()) extra["tools"] = r.tools;
        prompt = chat->encode(text_only(r.messages), true, extra);
      } catch (const Error& err) {
        ApiError e;
        e.message = std::string("cannot format the conversation: ") + err.what();
        e.param = "input";
        throw e;
      }
      job = sched->submit(r, prompt, lora);
    } catch (ApiError& e) {
      if (e.param == "messages") e.param = "input";
      if (job) job->cancelled = true;
      sched->count_error(e.status);
      send_error(res, e);
      return;
    }
    IdSource ids;
    const std::string id = responses_id("resp", ids);
    const int64_t created = unix_now();
    const int timeout_ms = opt.timeout_s * 1000;
    const ToolCallFormat format = tool_format;
    const bool parse_tools = rr.chat.parse_tools();
    if (!rr.chat.stream) {
      std::string text;
      JobEvent ev;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
      for (;;) {
        if (!job->next(&ev, 200)) {
          if (std::chrono::steady_clock::now() > deadline) {
            job->cancelled = true;
            ApiError e = status_error(504);
            e.message = "generation timed out";
            send_error(res, e);
            return;
          }
          continue;
        }
        if (ev.kind == JobEvent::Text) text += ev.text;
        if (ev.kind == JobEvent::Failed) {
          ApiError e = status_error(500);
          e.message = ev.error;
          send_error(res, e);
          return;
        }
        if (ev.kind == JobEvent::Done) break;
      }
      const bool incomplete = ev.finish_reason == "length";
      ojson output;
      if (parse_tools) {
        ToolReply reply = tool_reply(format, text, ids);
        output = responses_output(text, &reply, incomplete, ids);
      } else {
        output = responses_output(text, nullptr, incomplete, ids);
      }
      ojson body = responses_object(rr, id, created, incomplete ? "incomplete" : "completed", output, job->prompt_tokens,
                                    job->completion_tokens);
      res.set_header("X-Slm-Tokens", std::to_string(job->prompt_tokens) + "+" + std::to_string(job->completion_tokens));
      res.set_content(body.dump(-1, ' ', false, ojson::error_handler_t::replace), "application/json");
      return;
    }
    auto stream = std::make_shared<ResponsesStream>(std::move(rr), id, created, parse_tools ? &format : nullptr);
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [job, stream, timeout_ms](http::Sink& sink) {
          auto send = [&](const std::string& s) { return s.empty() || sink.write(s.data(), s.size()); };
          if (!send(stream->start())) {
            job->cancelled = true;
            return false;
          }
          const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
          for (;;) {
            JobEvent ev;
            if (!job->next(&ev, 100)) {
              if (!sink.is_writable() || std::chrono::steady_clock::now() > deadline) {
                job->cancelled = true;
                return false;
              }
              continue;
            }
            if (ev.kind == JobEvent::Text) {
              if (!send(stream->feed(ev.text))) {
                job->cancelled = true;
                return false;
              }
              continue;
            }
            if (ev.kind == JobEvent::Failed) send(stream->fail(ev.error));
            else send(stream->finish(ev.finish_reason, job->prompt_tokens, job->completion_tokens));
            sink.done();
            return true;
          }
        },
        [job](bool success) {
          if (!success) job->cancelled = true;
        });
  }

  std::string metrics() const {
    SchedulerStats s = sched->stats();
    std::string m;
    auto metric = [&](const char* name, const char* type, const char* help, double v, const char* labels = "") {
      char buf[512];
      std::snprintf(buf, sizeof buf, "# HELP %s %s\n# TYPE %s %s\n%s%s %.17g\n", name, help, name, type, name, labels, v);
      m += buf;
    };
    metric("slm_requests_total", "counter", "Completion requests accepted", double(s.requests));
    metric("slm_prompt_tokens_total", "counter", "Prompt tokens evaluated", double(s.prompt_tokens));
    metric("slm_prompt_tokens_cached_total", "counter", "Prompt tokens a slot's cache already held (not evaluated again)",
           double(s.prompt_tokens_cached));
    metric("slm_completion_tokens_total", "counter", "Tokens generated", double(s.completion_tokens));
    metric("slm_decode_tokens_per_second", "gauge", "Recent decode throughput over all slots", s.decode_tokens_per_s);
    metric("slm_queue_depth", "gauge", "Requests waiting for a slot", s.queue_depth);
    metric("slm_slots_active", "gauge", "Slots generating", s.active_slots);
    metric("slm_slots_total", "gauge", "Slots", s.n_slots);
    metric("slm_kv_cache_cells_used", "gauge", "KV cache positions in use over all slots", double(s.kv_cells_used));
    metric("slm_kv_cache_cells_total", "gauge", "KV cache positions over all slots", double(s.kv_cells_total));
    if (energy.available())
      metric("slm_energy_joules_total", "counter", "Energy used since the server started (powercap)", energy.joules());
    else
      m += "# slm_energy_joules_total: " + energy.describe(0, 0) + "\n";
    metric("slm_mixed_adapter_steps_total", "counter", "Batch steps that ran sequences with different adapters together",
           double(s.mixed_adapter_steps));
    metric("slm_context_shifts_total", "counter", "Times a slot's full context dropped its oldest half (--context-shift)",
           double(s.context_shifts));
    if (!adapters.empty()) {
      m += "# HELP slm_lora_requests_total Requests that ran with each adapter\n# TYPE slm_lora_requests_total counter\n";
      for (size_t id = 0; id < adapters.size(); ++id)
        m += "slm_lora_requests_total{id=\"" + std::to_string(id) + "\",name=\"" + adapters[id]->name + "\"} " +
             std::to_string(adapters[id]->requests.load()) + "\n";
    }
    m += "# HELP slm_errors_total Requests answered with an error\n# TYPE slm_errors_total counter\n";
    m += "slm_errors_total{kind=\"client\"} " + std::to_string(s.errors_4xx) + "\n";
    m += "slm_errors_total{kind=\"server\"} " + std::to_string(s.errors_5xx) + "\n";
    m += "slm_errors_total{kind=\"cancelled\"} " + std::to_string(s.cancelled) + "\n";
    return m;
  }

  void routes() {
    http::Limits limits;
    // Bodies somewhat over --max-body are still read, so the client gets its 413 instead of a
    // reset connection while it is sending; only absurd sizes are cut off mid-upload.
    limits.max_body = std::max<size_t>(opt.max_body, std::min<size_t>(opt.max_body * 16, 64u << 20));
    // A request's head and body must arrive within this, however slowly they trickle.
    limits.request_timeout_ms = int(std::min(opt.timeout_s, 30)) * 1000;
    limits.write_timeout_ms = opt.timeout_s * 1000;
    limits.idle_timeout_ms = 5000;  // also bounds how long shutdown waits on idle connections
    // One thread per open connection, started as it opens; one that is still sending its
    // request sleeps in poll and costs a few pages, so many may wait (a slowloris must open
    // hundreds to matter, and each is cut off by the request deadline). Beyond this many — the
    // descriptor limit less a margin for the model and logs, at most 1024 — new ones get a 503.
    rlimit fds{};
    const long fd_limit = getrlimit(RLIMIT_NOFILE, &fds) == 0 && fds.rlim_cur != RLIM_INFINITY ? long(fds.rlim_cur) : 1024;
    limits.max_connections = int(std::clamp(fd_limit - 64, 16L, 1024L));
    http = std::make_unique<http::Server>(limits);
    // Access log: one line per request on stderr.
    if (!opt.quiet)
      http->set_logger([](const http::Request& req, const http::Response& res, double ms) {
        const std::string tokens = res.get_header_value("X-Slm-Tokens");
        std::fprintf(stderr, "serve: %s %s %d%s%s %.1f ms\n", req.method.empty() ? "-" : req.method.c_str(),
                     req.path.empty() ? "-" : req.path.c_str(), res.status, tokens.empty() ? "" : " tokens ",
                     tokens.c_str(), ms);
      });
    http->set_error_handler([this](const http::Request&, http::Response& res) {
      if (res.body.empty()) {
        if (sched) sched->count_error(res.status);
        ApiError e = status_error(res.status);
        if (!res.error.empty()) e.message = res.error;
        send_error(res, e);
      }
    });
    http->set_exception_handler([this](const http::Request&, http::Response& res, std::exception_ptr ep) {
      ApiError e = status_error(500);
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& x) {
        e.message = x.what();
      } catch (...) {
        e.message = "internal error";
      }
      if (sched) sched->count_error(500);
      send_error(res, e);
    });
    // Browsers' preflight requests, so web UIs on other origins can call the API.
    http->set_default_headers({{"Access-Control-Allow-Origin", "*"},
                              {"Access-Control-Allow-Headers", "Authorization, Content-Type"},
                              {"Access-Control-Allow-Methods", "GET, POST, OPTIONS"}});
    http->Options(R"(.*)", [](const http::Request&, http::Response& res) { res.status = 204; });
    http->Get(R"(/v1/models/(.+))", [this](const http::Request& req, http::Response& res) {
      if (!loaded(res) || !authorized(req, res)) return;
      if (req.matches[1] != model_id) {
        ApiError e;
        e.status = 404;
        e.message = "the model '" + std::string(req.matches[1]) + "' does not exist";
        e.code = "model_not_found";
        send_error(res, e);
        return;
      }
      ojson j = {{"id", model_id}, {"object", "model"}, {"created", unix_now()}, {"owned_by", "slm"}};
      res.set_content(j.dump(), "application/json");
    });
    http->Get("/health", [this](const http::Request&, http::Response& res) {
      if (ready) {
        res.set_content("{\"status\":\"ok\"}", "application/json");
      } else {
        res.status = 503;
        res.set_content("{\"status\":\"loading\"}", "application/json");
      }
    });
    http->Get("/metrics", [this](const http::Request&, http::Response& res) {
      if (!loaded(res)) return;
      res.set_content(metrics(), "text/plain; version=0.0.4");
    });
    http->Get("/v1/models", [this](const http::Request& req, http::Response& res) {
      if (!loaded(res) || !authorized(req, res)) return;
      ojson j = {{"object", "list"},
                 {"data", ojson::array({{{"id", model_id}, {"object", "model"}, {"created", unix_now()}, {"owned_by", "slm"}}})}};
      res.set_content(j.dump(), "application/json");
    });
    // llama-server's adapter endpoints: the list with current scales, and new default scales.
    http->Get("/lora-adapters", [this](const http::Request& req, http::Response& res) {
      if (!loaded(res) || !authorized(req, res)) return;
      res.set_content(adapters_json().dump(), "application/json");
    });
    http->Post("/lora-adapters", [this](const http::Request& req, http::Response& res) {
      if (!loaded(res) || !authorized(req, res)) return;
      try {
        if (json_nesting_depth(req.body) > kMaxRequestDepth) throw bad_request("the body is nested too deeply");
        ojson body;
        try {
          body = ojson::parse(req.body);
        } catch (const ojson::exception& x) {
          throw bad_request(std::string("malformed JSON in the request body: ") + x.what());
        }
        const auto scales = parse_lora_scales(body, int(adapters.size()), "body");
        std::lock_guard<std::mutex> lock(adapters_mu);
        for (const auto& [id, scale] : scales) adapters[size_t(id)]->scale = scale;
      } catch (const ApiError& e) {
        sched->count_error(e.status);
        send_error(res, e);
        return;
      }
      res.set_content(adapters_json().dump(), "application/json");
    });
    http->Post("/v1/chat/completions", [this](const http::Request& req, http::Response& res) {
      completions(req, res, true);
    });
    http->Post("/v1/completions", [this](const http::Request& req, http::Response& res) {
      completions(req, res, false);
    });
    http->Post("/v1/responses", [this](const http::Request& req, http::Response& res) { responses(req, res); });
    // A known path with the wrong method is a 405 (with Allow), not a 404.
    auto wrong_method = [this](const char* allow) {
      return [this, allow](const http::Request&, http::Response& res) {
        res.set_header("Allow", allow);
        if (sched) sched->count_error(405);
        send_error(res, status_error(405));
        res.status = 405;
      };
    };
    for (const char* path : {"/v1/chat/completions", "/v1/completions", "/v1/responses"}) {
      http->Get(path, wrong_method("POST, OPTIONS"));
      http->Put(path, wrong_method("POST, OPTIONS"));
      http->Delete(path, wrong_method("POST, OPTIONS"));
    }
    for (const char* path : {"/v1/models", "/health", "/metrics"}) {
      http->Post(path, wrong_method("GET, OPTIONS"));
      http->Put(path, wrong_method("GET, OPTIONS"));
      http->Delete(path, wrong_method("GET, OPTIONS"));
    }
  }
};

}  // namespace

int serve(const ServeOptions& opt_in) {
  // SIGINT/SIGTERM are taken by a dedicated thread (sigwait), so block them everywhere first.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  Server s;
  s.opt = opt_in;
  ServeOptions& opt = s.opt;
  if (opt.n_parallel < 1 || opt.n_parallel > 256) throw Error("--parallel must be in 1..256");
  if (opt.port < 0 || opt.port > 65535) throw Error("--port must be in 0..65535");

  // Bind first: a port in use fails at once, and /health answers 503 "loading" while the
  // model loads.
  s.routes();
  std::string why;
  const int port = s.http->bind(opt.host, opt.port, &why);
  if (port < 0)
    throw Error("cannot listen on " + opt.host + ":" + std::to_string(opt.port) + ": " + why +
                (opt.port != 0 ? " (the port may be in use by another program, or the address is not this machine's)" : ""));
  std::fprintf(stderr, "serve: listening on http://%s:%d\n", opt.host.c_str(), port);
  std::thread listener([&] { s.http->listen(); });
  auto stop_listening = [&] {
    s.http->stop();
    listener.join();
  };

  SchedulerOptions so;
  try {
    std::fprintf(stderr, "serve: loading %s\n", opt.model_path.c_str());
    s.model = Model::load(opt.model_path);
    s.tok = Tokenizer::from_gguf(s.model->file());
    std::string warning;
    s.chat = std::make_unique<ChatFormatter>(s.model->file(), *s.tok, opt.chat_template_path, &warning);
    if (!warning.empty()) std::fprintf(stderr, "serve: warning: %s\n", warning.c_str());
    s.tool_format = detect_tool_call_format(s.chat->source());
    s.model_id = opt.alias.empty() ? std::filesystem::path(opt.model_path).stem().string() : opt.alias;
    for (const auto& [path, scale] : opt.lora) {
      auto a = std::make_unique<Server::Adapter>();
      a->lora = LoraAdapter::load(path, *s.model);
      a->name = std::filesystem::path(path).stem().string();
      a->scale = scale;
      std::fprintf(stderr, "serve: adapter %zu '%s': rank %d, %.2f MiB, default scale %g\n", s.adapters.size(),
                   a->name.c_str(), a->lora->max_rank(), a->lora->bytes() / 1048576.0, scale);
      s.adapters.push_back(std::move(a));
    }
    so.n_slots = opt.n_parallel;
    int train_ctx = s.model->config().n_ctx_train;
    so.n_ctx = opt.n_ctx > 0 ? opt.n_ctx : std::min(train_ctx > 0 ? train_ctx : 4096, 4096);
    so.n_threads = opt.n_threads > 0 ? opt.n_threads : std::max(1u, std::thread::hardware_concurrency());
    so.max_queue = opt.max_queue;
    so.kv_type_k = opt.kv_type_k;
    so.kv_type_v = opt.kv_type_v;
    so.context_shift = opt.context_shift;
    so.n_keep = opt.n_keep;
    s.sched = std::make_unique<Scheduler>(*s.model, *s.tok, so);
  } catch (...) {
    stop_listening();
    throw;
  }
  s.ready = true;
  std::fprintf(stderr, "serve: model '%s', %d slots × %d context, %d threads, KV cache %.1f MiB (%s)\n",
               s.model_id.c_str(), so.n_slots, so.n_ctx, so.n_threads, s.sched->kv_bytes() / 1048576.0,
               opt.kv_type.c_str());
  std::fprintf(stderr, "serve: ready on http://%s:%d\n", opt.host.c_str(), port);

  std::atomic<bool> signalled{false};
  std::thread signals([&] {
    int sig = 0;
    sigwait(&sigs, &sig);
    signalled = true;
    std::fprintf(stderr, "serve: %s received: finishing in-flight requests\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    s.ready = false;
    s.sched->shutdown(5000);
    s.http->stop();
  });
  listener.join();
  // listen returned: either a signal stopped it, or it failed; make the signal thread finish.
  if (!signalled) pthread_kill(signals.native_handle(), SIGTERM);
  signals.join();
  std::fprintf(stderr, "serve: stopped\n");
  return 0;
}

}  // namespace slm::server

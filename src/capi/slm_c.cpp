// The C API (include/slm/slm.h) over the C++ one. Every entry point catches everything:
// failures become a NULL / negative return and a message for slm_last_error().
#include "slm/slm.h"

#include <climits>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/chat_format.h"
#include "kernels/thread_pool.h"
#include "model/config.h"
#include "slm/error.h"
#include "slm/model.h"
#include "slm/sampler.h"
#include "slm/session.h"
#include "slm/tokenizer.h"

#ifndef SLM_VERSION
#define SLM_VERSION "unknown"
#endif

struct slm_model {
  std::unique_ptr<slm::Model> model;
  std::unique_ptr<slm::Tokenizer> tok;
  std::unique_ptr<slm::ChatFormatter> chat;
  std::shared_ptr<const slm::grammar::VocabIndex> grammar_vocab;  // built on first use
  std::once_flag grammar_once;
};

struct slm_session {
  const slm_model* model;
  std::unique_ptr<slm::ThreadPool> pool;
  std::unique_ptr<slm::Session> session;
};

struct slm_sampler {
  std::unique_ptr<slm::Sampler> sampler;
};

namespace {

thread_local std::string last_error;

void fail(const std::string& msg) { last_error = msg; }

// Runs f; any exception becomes `on_error` and a message.
template <typename R, typename F>
R guarded(R on_error, F&& f) {
  try {
    return f();
  } catch (const std::exception& e) {
    fail(e.what());
  } catch (...) {
    fail("unknown error");
  }
  return on_error;
}

int32_t copy_out(const std::string& s, char* buf, int32_t len, bool nul) {
  const size_t need = s.size() + (nul ? 1 : 0);
  if (need > static_cast<size_t>(INT32_MAX)) {
    fail("result too large");
    return INT32_MIN;
  }
  if (!buf || len < 0 || static_cast<size_t>(len) < need) return -static_cast<int32_t>(need);
  std::memcpy(buf, s.data(), s.size());
  if (nul) buf[s.size()] = '\0';
  return static_cast<int32_t>(s.size());
}

constexpr uint32_t kStateMagic = 0x534c4d53;  // "SLMS"

}  // namespace

extern "C" {

const char* slm_version(void) { return SLM_VERSION " (C API 1)"; }

const char* slm_last_error(void) { return last_error.c_str(); }

slm_model* slm_model_load(const char* path, const slm_model_params*, char* err_buf, size_t err_len) {
  slm_model* m = guarded<slm_model*>(nullptr, [&]() -> slm_model* {
    if (!path) throw slm::Error("slm_model_load: path is NULL");
    auto out = std::make_unique<slm_model>();
    out->model = slm::Model::load(path);
    out->tok = slm::Tokenizer::from_gguf(out->model->file());
    return out.release();
  });
  if (!m && err_buf && err_len > 0) {
    const size_t n = std::min(err_len - 1, last_error.size());
    std::memcpy(err_buf, last_error.data(), n);
    err_buf[n] = '\0';
  }
  return m;
}

void slm_model_free(slm_model* model) { delete model; }

int32_t slm_n_vocab(const slm_model* m) { return m ? m->model->n_vocab() : -1; }
int32_t slm_n_ctx_train(const slm_model* m) { return m ? m->model->config().n_ctx_train : -1; }
int32_t slm_token_bos(const slm_model* m) { return m ? m->tok->bos() : -1; }
int32_t slm_token_eos(const slm_model* m) { return m ? m->tok->eos() : -1; }
int slm_token_is_eog(const slm_model* m, int32_t t) {
  return m && t >= 0 && t < m->tok->n_vocab() && m->tok->is_eog(t) ? 1 : 0;
}

int32_t slm_tokenize(const slm_model* m, const char* text, int add_bos, int32_t* ids, int32_t max) {
  return guarded<int32_t>(INT32_MIN, [&]() -> int32_t {
    if (!m || !text) throw slm::Error("slm_tokenize: NULL model or text");
    const std::vector<int32_t> out = m->tok->encode(text, add_bos != 0, false);
    if (out.size() > static_cast<size_t>(INT32_MAX)) throw slm::Error("slm_tokenize: too many tokens");
    const auto n = static_cast<int32_t>(out.size());
    if (!ids || max < n) return -n;
    std::memcpy(ids, out.data(), out.size() * sizeof(int32_t));
    return n;
  });
}

int32_t slm_token_to_piece(const slm_model* m, int32_t token, char* buf, int32_t len) {
  return guarded<int32_t>(INT32_MIN, [&]() -> int32_t {
    if (!m) throw slm::Error("slm_token_to_piece: NULL model");
    return copy_out(m->tok->token_to_piece(token), buf, len, false);
  });
}

int32_t slm_chat_apply(const slm_model* cm, const char* messages_json, int add_generation_prompt, char* buf,
                       int32_t len) {
  return guarded<int32_t>(INT32_MIN, [&]() -> int32_t {
    if (!cm || !messages_json) throw slm::Error("slm_chat_apply: NULL model or messages");
    auto* m = const_cast<slm_model*>(cm);
    if (!m->chat) {
      std::string warning;
      m->chat = std::make_unique<slm::ChatFormatter>(m->model->file(), *m->tok, "", &warning);
    }
    nlohmann::ordered_json msgs = nlohmann::ordered_json::parse(messages_json, nullptr, false);
    if (msgs.is_discarded() || !msgs.is_array()) throw slm::Error("slm_chat_apply: messages are not a JSON array");
    return copy_out(m->chat->render(msgs, add_generation_prompt != 0), buf, len, true);
  });
}

slm_session* slm_session_new(const slm_model* m, int32_t n_ctx, int32_t n_threads) {
  return guarded<slm_session*>(nullptr, [&]() -> slm_session* {
    if (!m) throw slm::Error("slm_session_new: NULL model");
    auto s = std::make_unique<slm_session>();
    s->model = m;
    const int threads = n_threads > 0 ? n_threads : std::max(1u, std::thread::hardware_concurrency());
    s->pool = std::make_unique<slm::ThreadPool>(threads);
    s->session = std::make_unique<slm::Session>(*m->model, *s->pool, n_ctx);
    return s.release();
  });
}

void slm_session_free(slm_session* s) { delete s; }

int slm_eval(slm_session* s, const int32_t* ids, int32_t n) {
  return guarded<int>(-1, [&]() -> int {
    if (!s || (!ids && n > 0) || n < 0) throw slm::Error("slm_eval: NULL session or ids, or a negative count");
    if (n == 0) return 0;
    const int32_t vocab = s->model->model->n_vocab();
    for (int32_t i = 0; i < n; ++i)
      if (ids[i] < 0 || ids[i] >= vocab)
        throw slm::Error("slm_eval: token " + std::to_string(ids[i]) + " is outside the vocabulary of " +
                         std::to_string(vocab));
    s->session->eval(std::vector<int32_t>(ids, ids + n));
    return 0;
  });
}

const float* slm_logits(const slm_session* s) {
  if (!s || s->session->logits().empty()) return nullptr;
  return s->session->logits().data();
}

int32_t slm_n_past(const slm_session* s) { return s ? s->session->n_past() : -1; }
int32_t slm_n_ctx(const slm_session* s) { return s ? s->session->n_ctx() : -1; }

int slm_truncate(slm_session* s, int32_t n_past) {
  return guarded<int>(-1, [&]() -> int {
    if (!s) throw slm::Error("slm_truncate: NULL session");
    s->session->truncate(n_past);
    return 0;
  });
}

// State layout: magic, n_vocab, n_ctx, n_past, n_logits, then the logits, then for each
// layer the K and V rows of positions [0, n_past) as f32.
size_t slm_state_size(const slm_session* s) {
  if (!s) return 0;
  const slm::KvCache& c = s->session->cache();
  size_t floats = s->session->logits().size();
  for (int il = 0; il < s->model->model->config().n_layer; ++il)
    floats += static_cast<size_t>(s->session->n_past()) * static_cast<size_t>(c.k_width(il) + c.v_width(il));
  return 5 * sizeof(uint32_t) + floats * sizeof(float);
}

size_t slm_state_save(const slm_session* s, void* buf, size_t len) {
  return guarded<size_t>(0, [&]() -> size_t {
    if (!s || !buf) throw slm::Error("slm_state_save: NULL session or buffer");
    const size_t need = slm_state_size(s);
    if (len < need) throw slm::Error("slm_state_save: the buffer has " + std::to_string(len) + " bytes, " +
                                     std::to_string(need) + " are needed");
    auto* p = static_cast<uint8_t*>(buf);
    const slm::KvCache& c = s->session->cache();
    const std::vector<float>& logits = s->session->logits();
    const uint32_t head[5] = {kStateMagic, static_cast<uint32_t>(s->model->model->n_vocab()),
                              static_cast<uint32_t>(c.n_ctx()), static_cast<uint32_t>(s->session->n_past()),
                              static_cast<uint32_t>(logits.size())};
    std::memcpy(p, head, sizeof head);
    p += sizeof head;
    std::memcpy(p, logits.data(), logits.size() * sizeof(float));
    p += logits.size() * sizeof(float);
    std::vector<float> tmp;
    for (int il = 0; il < s->model->model->config().n_layer; ++il)
      for (int pos = 0; pos < s->session->n_past(); ++pos) {
        tmp.resize(static_cast<size_t>(std::max(c.k_width(il), c.v_width(il))));
        const float* k = c.key(il, pos, 0, c.k_width(il), tmp.data());
        std::memcpy(p, k, static_cast<size_t>(c.k_width(il)) * sizeof(float));
        p += static_cast<size_t>(c.k_width(il)) * sizeof(float);
        const float* v = c.value(il, pos, 0, c.v_width(il), tmp.data());
        std::memcpy(p, v, static_cast<size_t>(c.v_width(il)) * sizeof(float));
        p += static_cast<size_t>(c.v_width(il)) * sizeof(float);
      }
    return need;
  });
}

int slm_state_load(slm_session* s, const void* buf, size_t len) {
  return guarded<int>(-1, [&]() -> int {
    if (!s || !buf) throw slm::Error("slm_state_load: NULL session or buffer");
    uint32_t head[5];
    if (len < sizeof head) throw slm::Error("slm_state_load: not a session state (too short)");
    std::memcpy(head, buf, sizeof head);
    slm::KvCache& c = s->session->cache_for_restore();
    if (head[0] != kStateMagic) throw slm::Error("slm_state_load: not a session state (bad magic)");
    if (head[1] != static_cast<uint32_t>(s->model->model->n_vocab()) || head[2] != static_cast<uint32_t>(c.n_ctx()))
      throw slm::Error("slm_state_load: the state is of another model or context size");
    const int n_past = static_cast<int>(head[3]);
    if (head[3] > head[2] || (head[4] != 0 && head[4] != head[1]))
      throw slm::Error("slm_state_load: the state's position or logits are out of range");
    size_t floats = head[4];
    for (int il = 0; il < s->model->model->config().n_layer; ++il)
      floats += static_cast<size_t>(n_past) * static_cast<size_t>(c.k_width(il) + c.v_width(il));
    if (len != sizeof head + floats * sizeof(float))
      throw slm::Error("slm_state_load: the state has " + std::to_string(len) + " bytes, " +
                       std::to_string(sizeof head + floats * sizeof(float)) + " expected");
    const auto* p = static_cast<const uint8_t*>(buf) + sizeof head;
    std::vector<float> logits(head[4]);
    std::memcpy(logits.data(), p, logits.size() * sizeof(float));
    p += logits.size() * sizeof(float);
    std::vector<float> k, v;
    for (int il = 0; il < s->model->model->config().n_layer; ++il)
      for (int pos = 0; pos < n_past; ++pos) {
        k.resize(static_cast<size_t>(c.k_width(il)));
        v.resize(static_cast<size_t>(c.v_width(il)));
        std::memcpy(k.data(), p, k.size() * sizeof(float));
        p += k.size() * sizeof(float);
        std::memcpy(v.data(), p, v.size() * sizeof(float));
        p += v.size() * sizeof(float);
        c.store(il, pos, k.data(), v.data());
      }
    s->session->restore(n_past, std::move(logits));
    return 0;
  });
}

slm_sampler_params slm_sampler_default_params(void) {
  const slm::SamplerParams d;
  slm_sampler_params p;
  p.temp = d.temp;
  p.top_k = d.top_k;
  p.top_p = d.top_p;
  p.min_p = d.min_p;
  p.repeat_penalty = d.repeat_penalty;
  p.repeat_last_n = d.repeat_last_n;
  p.seed = d.seed;
  return p;
}

slm_sampler* slm_sampler_new(const slm_sampler_params* params) {
  return guarded<slm_sampler*>(nullptr, [&]() -> slm_sampler* {
    const slm_sampler_params p = params ? *params : slm_sampler_default_params();
    slm::SamplerParams sp;
    sp.temp = p.temp;
    sp.top_k = p.top_k;
    sp.top_p = p.top_p;
    sp.min_p = p.min_p;
    sp.repeat_penalty = p.repeat_penalty;
    sp.repeat_last_n = p.repeat_last_n;
    sp.seed = p.seed;
    auto s = std::make_unique<slm_sampler>();
    s->sampler = std::make_unique<slm::Sampler>(sp);  // validates
    return s.release();
  });
}

void slm_sampler_free(slm_sampler* s) { delete s; }

int slm_sampler_set_grammar(slm_sampler* s, const slm_model* cm, const char* gbnf) {
  return guarded<int>(-1, [&]() -> int {
    if (!s || !cm) throw slm::Error("slm_sampler_set_grammar: NULL sampler or model");
    if (!gbnf || !*gbnf) {
      s->sampler->set_filter(nullptr);
      return 0;
    }
    auto* m = const_cast<slm_model*>(cm);
    std::call_once(m->grammar_once, [&] { m->grammar_vocab = slm::grammar_vocabulary(*m->tok); });
    s->sampler->set_filter(slm::grammar_filter(m->grammar_vocab, gbnf));
    return 0;
  });
}

int32_t slm_json_schema_to_grammar(const char* schema_json, char* buf, int32_t len) {
  return guarded<int32_t>(INT32_MIN, [&]() -> int32_t {
    if (!schema_json) throw slm::Error("slm_json_schema_to_grammar: NULL schema");
    return copy_out(slm::json_schema_grammar(schema_json), buf, len, true);
  });
}

int32_t slm_sample(slm_sampler* s, const slm_session* sess) {
  return guarded<int32_t>(-1, [&]() -> int32_t {
    if (!s || !sess) throw slm::Error("slm_sample: NULL sampler or session");
    const std::vector<float>& l = sess->session->logits();
    const int V = sess->model->model->n_vocab();
    if (l.size() < static_cast<size_t>(V)) throw slm::Error("slm_sample: the session has no logits yet");
    return s->sampler->sample(l.data() + (l.size() - static_cast<size_t>(V)), V);
  });
}

int slm_sampler_accept(slm_sampler* s, int32_t token, int generated) {
  return guarded<int>(-1, [&]() -> int {
    if (!s) throw slm::Error("slm_sampler_accept: NULL sampler");
    if (generated)
      s->sampler->accept_generated(token);
    else
      s->sampler->accept(token);
    return 0;
  });
}

int32_t slm_generate(slm_session* s, slm_sampler* smp, const int32_t* prompt, int32_t n_prompt, int32_t n_predict,
                     slm_text_callback on_text, void* user_data) {
  return guarded<int32_t>(-1, [&]() -> int32_t {
    if (!s || !smp || !prompt || n_prompt <= 0) throw slm::Error("slm_generate: NULL session, sampler or prompt");
    const int32_t vocab = s->model->model->n_vocab();
    for (int32_t i = 0; i < n_prompt; ++i)
      if (prompt[i] < 0 || prompt[i] >= vocab)
        throw slm::Error("slm_generate: token " + std::to_string(prompt[i]) + " is outside the vocabulary");
    bool stop = false;
    slm::GenerateParams gp;
    gp.n_predict = n_predict;
    gp.cancelled = [&] { return stop; };
    slm::GenerateResult r = slm::generate(*s->session, *smp->sampler, *s->model->tok,
                                          std::vector<int32_t>(prompt, prompt + n_prompt), gp,
                                          [&](const std::string& text) {
                                            if (on_text && !stop && on_text(text.data(), text.size(), user_data)) stop = true;
                                          });
    return r.n_generated;
  });
}

}  // extern "C"

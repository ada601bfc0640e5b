/* slm.h — the C API of slm, for programs and bindings in other languages (Python, Go,
 * Rust, Swift …). C11 and C++ compatible; includes nothing of slm's C++ headers.
 *
 * Conventions
 * - Objects are opaque pointers, created by *_new / *_load and released by *_free (free of
 *   NULL does nothing). A model may be shared by many sessions and threads; a session and
 *   a sampler belong to one thread at a time.
 * - Functions that can fail return NULL or a negative number and leave a one-line message
 *   for slm_last_error() (per thread, valid until the next failing call on that thread).
 *   No C++ exception ever crosses this boundary.
 * - Buffers: functions writing into a caller's buffer return the count written, or minus
 *   the size needed when the buffer is too small (nothing useful is written then).
 * - Text is UTF-8. Token ids are int32_t.
 *
 * Build against it with pkg-config:  cc prog.c $(pkg-config --cflags --libs slm)
 */
#ifndef SLM_SLM_H
#define SLM_SLM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLM_API_VERSION 1

typedef struct slm_model slm_model;
typedef struct slm_session slm_session;
typedef struct slm_sampler slm_sampler;

/* "0.4.0 (C API 1)" — the library's version. */
const char* slm_version(void);

/* The message of the last failure on this thread ("" when none). */
const char* slm_last_error(void);

/* ---- models ---- */

typedef struct slm_model_params {
  int reserved; /* no options yet: pass NULL; kept so later options need no new function */
} slm_model_params;

/* Opens and maps a GGUF file. On failure returns NULL and, when err_buf is not NULL,
 * writes the message there (truncated to err_len - 1 bytes and NUL-terminated). */
slm_model* slm_model_load(const char* path, const slm_model_params* params, char* err_buf, size_t err_len);
void slm_model_free(slm_model* model);

int32_t slm_n_vocab(const slm_model* model);
int32_t slm_n_ctx_train(const slm_model* model);
int32_t slm_token_bos(const slm_model* model); /* -1 when none */
int32_t slm_token_eos(const slm_model* model); /* -1 when none */
/* 1 for end-of-generation tokens (eos, eot, <|im_end|> …), 0 otherwise. */
int slm_token_is_eog(const slm_model* model, int32_t token);

/* Text -> ids. add_bos: add BOS (and EOS) as the model's metadata asks. Special-token text
 * in `text` is treated as plain text. Returns the count, or minus the count needed when
 * max is too small, or INT32_MIN on error. */
int32_t slm_tokenize(const slm_model* model, const char* text, int add_bos, int32_t* ids, int32_t max);
/* The bytes one token stands for (not NUL-terminated). Returns the length, minus the
 * length needed when len is too small, or INT32_MIN for a bad id. */
int32_t slm_token_to_piece(const slm_model* model, int32_t token, char* buf, int32_t len);

/* Renders a conversation with the model's chat template. messages_json: a JSON array of
 * {"role","content"} objects. Writes the prompt text (NUL-terminated); returns its length,
 * minus the size needed including the NUL, or INT32_MIN on error. */
int32_t slm_chat_apply(const slm_model* model, const char* messages_json, int add_generation_prompt, char* buf,
                       int32_t len);

/* ---- sessions: one sequence and its KV cache ---- */

/* n_ctx <= 0: the model's context capped at 4096. n_threads <= 0: all cores. */
slm_session* slm_session_new(const slm_model* model, int32_t n_ctx, int32_t n_threads);
void slm_session_free(slm_session* session);

/* Appends n tokens to the context and evaluates them. 0 on success, -1 on error (the
 * context is then unchanged). */
int slm_eval(slm_session* session, const int32_t* ids, int32_t n);
/* The last evaluated position's n_vocab logits (NULL before any evaluation). Valid until
 * the next slm_eval on the session. */
const float* slm_logits(const slm_session* session);
int32_t slm_n_past(const slm_session* session);
int32_t slm_n_ctx(const slm_session* session);
/* Forgets positions >= n_past (0 <= n_past <= slm_n_past): rewinds the context. */
int slm_truncate(slm_session* session, int32_t n_past);

/* State: the evaluated tokens' cache and the last logits, to resume later in a session of
 * the same model and context size. slm_state_size gives the bytes slm_state_save writes. */
size_t slm_state_size(const slm_session* session);
/* Returns the bytes written, or 0 on error (buffer too small). */
size_t slm_state_save(const slm_session* session, void* buf, size_t len);
/* 0 on success, -1 when the data is not a state of this model and context size. */
int slm_state_load(slm_session* session, const void* buf, size_t len);

/* ---- sampling ---- */

typedef struct slm_sampler_params {
  float temp;           /* <= 0: greedy */
  int32_t top_k;        /* <= 0: off */
  float top_p;          /* 1: off */
  float min_p;          /* 0: off */
  float repeat_penalty; /* 1: off */
  int32_t repeat_last_n;
  uint64_t seed;
} slm_sampler_params;

/* llama.cpp's usual defaults: temp 0.8, top_k 40, top_p 0.95, min_p 0.05, no penalty. */
slm_sampler_params slm_sampler_default_params(void);
slm_sampler* slm_sampler_new(const slm_sampler_params* params); /* NULL params: defaults */
void slm_sampler_free(slm_sampler* sampler);
/* Constrains the sampler's output to a GBNF grammar (NULL or "": none); for a JSON Schema,
 * first turn it into GBNF with slm_json_schema_to_grammar. 0 on success, -1 on error. */
int slm_sampler_set_grammar(slm_sampler* sampler, const slm_model* model, const char* gbnf);
/* Writes the GBNF for a JSON Schema (NUL-terminated); length, minus the size needed, or
 * INT32_MIN on error (an unsupported keyword is named in slm_last_error). */
int32_t slm_json_schema_to_grammar(const char* schema_json, char* buf, int32_t len);
/* The next token for the session's last logits (-1 on error). Does not record it. */
int32_t slm_sample(slm_sampler* sampler, const slm_session* session);
/* Records a token of the sequence: generated = 1 for sampled tokens (advances the grammar),
 * 0 for prompt tokens (only the penalties' history). 0 on success, -1 on error. */
int slm_sampler_accept(slm_sampler* sampler, int32_t token, int generated);

/* ---- generation ---- */

/* Called with each piece of text as soon as it is complete UTF-8; return nonzero to stop. */
typedef int (*slm_text_callback)(const char* text, size_t len, void* user_data);

/* Evaluates the prompt ids, then samples up to n_predict tokens (-1: until end of
 * generation or a full context), calling on_text with the text. Returns the number of
 * tokens generated, or -1 on error. Stops early when on_text returns nonzero. */
int32_t slm_generate(slm_session* session, slm_sampler* sampler, const int32_t* prompt, int32_t n_prompt,
                     int32_t n_predict, slm_text_callback on_text, void* user_data);

#ifdef __cplusplus
}
#endif

#endif /* SLM_SLM_H */

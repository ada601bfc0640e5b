/* The C API from C11: stories260K's greedy continuations against llama.cpp's (the shared
 * reference file), through the low-level loop (slm_eval + slm_logits) and through
 * slm_generate; state save/restore, cancellation and errors.
 * Usage: greedy MODEL.gguf REFERENCE.greedy.json */
#include <slm/slm.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;
#define CHECK(cond, ...)                                    \
  do {                                                      \
    if (!(cond)) {                                          \
      ++failures;                                           \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);  \
      fprintf(stderr, __VA_ARGS__);                         \
      fprintf(stderr, "\n");                                \
    }                                                       \
  } while (0)

static char* read_all(const char* path) {
  FILE* f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char* s = malloc((size_t)n + 1);
  if (s && fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
  if (s) s[n] = '\0';
  fclose(f);
  return s;
}

/* The integer after "key": at or after p (0 when absent). */
static long int_after(const char* p, const char* key) {
  const char* k = strstr(p, key);
  return k ? strtol(k + strlen(key) + 2, NULL, 10) : 0;
}

/* Parses the array after "key": [ into out (at most max); returns the count, -1 if absent. */
static int ints_after(const char* p, const char* key, int* out, int max, const char** end) {
  const char* k = strstr(p, key);
  if (!k) return -1;
  const char* q = strchr(k, '[');
  int n = 0;
  for (++q; *q && *q != ']';) {
    char* e;
    long v = strtol(q, &e, 10);
    if (e == q) { ++q; continue; }
    if (n < max) out[n++] = (int)v;
    q = e;
  }
  if (end) *end = q;
  return n;
}

/* The string value after "key": (simple escapes) into out. */
static const char* string_after(const char* p, const char* key, char* out, size_t max) {
  const char* k = strstr(p, key);
  if (!k) return NULL;
  const char* q = strchr(k + strlen(key) + 1, '"');
  size_t n = 0;
  for (++q; *q && *q != '"'; ++q) {
    char c = *q;
    if (c == '\\' && q[1]) c = *++q == 'n' ? '\n' : *q;
    if (n + 1 < max) out[n++] = c;
  }
  out[n] = '\0';
  return q;
}

static int32_t argmax(const float* l, int32_t n) {
  int32_t best = 0;
  for (int32_t i = 1; i < n; ++i)
    if (l[i] > l[best]) best = i;
  return best;
}

struct collect { char text[4096]; size_t len; int calls; int stop_after; };
static int on_text(const char* t, size_t n, void* user) {
  struct collect* c = user;
  if (c->len + n < sizeof c->text) { memcpy(c->text + c->len, t, n); c->len += n; }
  ++c->calls;
  return c->stop_after > 0 && c->calls >= c->stop_after;
}

int main(int argc, char** argv) {
  if (argc != 3) { fprintf(stderr, "usage: greedy MODEL.gguf REFERENCE.json\n"); return 2; }
  char err[256];
  CHECK(slm_model_load("/nonexistent.gguf", NULL, err, sizeof err) == NULL, "loading a missing file succeeded");
  CHECK(strstr(err, "/nonexistent.gguf") != NULL, "the error does not name the file: %s", err);

  slm_model* model = slm_model_load(argv[1], NULL, err, sizeof err);
  if (!model) { fprintf(stderr, "cannot load %s: %s\n", argv[1], err); return 1; }
  char* ref = read_all(argv[2]);
  if (!ref) { fprintf(stderr, "cannot read %s\n", argv[2]); return 1; }
  const int n_ctx = (int)int_after(ref, "\"n_ctx\""), n_predict = (int)int_after(ref, "\"n_predict\"");
  const int32_t V = slm_n_vocab(model);
  CHECK(V > 0 && n_ctx > 0 && n_predict > 0, "bad vocabulary or reference header");
  printf("slm %s, vocabulary %d\n", slm_version(), V);

  const char* p = strstr(ref, "\"prompts\"");
  int cases = 0;
  char prompt[1024];
  while (p && (p = string_after(p, "\"prompt\"", prompt, sizeof prompt)) != NULL) {
    int want_prompt[256], want_out[256];
    const int np = ints_after(p, "\"prompt_ids\"", want_prompt, 256, &p);
    const int no = ints_after(p, "\"output_ids\"", want_out, 256, &p);
    if (np <= 0 || no <= 0) break;
    ++cases;

    int32_t ids[256];
    CHECK(slm_tokenize(model, prompt, 1, ids, 1) == -np, "the size query should give -%d", np);
    const int32_t n = slm_tokenize(model, prompt, 1, ids, 256);
    CHECK(n == np, "'%s': %d ids, reference %d", prompt, n, np);
    for (int i = 0; i < n && i < np; ++i) CHECK(ids[i] == want_prompt[i], "'%s': id %d differs", prompt, i);

    /* The low-level loop. */
    slm_session* s = slm_session_new(model, n_ctx, 2);
    CHECK(s && slm_eval(s, ids, n) == 0, "eval: %s", slm_last_error());
    const size_t state_len = slm_state_size(s);
    void* state = malloc(state_len);
    CHECK(slm_state_save(s, state, state_len) == state_len, "state save: %s", slm_last_error());
    int32_t got[256];
    for (int i = 0; i < n_predict; ++i) {
      got[i] = argmax(slm_logits(s), V);
      CHECK(slm_eval(s, &got[i], 1) == 0, "eval: %s", slm_last_error());
    }
    for (int i = 0; i < n_predict && i < no; ++i)
      CHECK(got[i] == want_out[i], "'%s': token %d is %d, reference %d", prompt, i, got[i], want_out[i]);

    /* Restored into a fresh session, the state continues the same way. */
    slm_session* r = slm_session_new(model, n_ctx, 1);
    CHECK(slm_state_load(r, state, state_len) == 0, "state load: %s", slm_last_error());
    CHECK(slm_n_past(r) == n, "restored position %d, want %d", slm_n_past(r), n);
    for (int i = 0; i < 8; ++i) {
      const int32_t t = argmax(slm_logits(r), V);
      CHECK(t == got[i], "restored: token %d is %d, want %d", i, t, got[i]);
      slm_eval(r, &t, 1);
    }
    CHECK(slm_state_load(r, state, state_len - 1) == -1, "a truncated state was accepted");
    slm_session_free(r);
    free(state);

    /* slm_generate with a greedy sampler gives the same tokens' text. */
    slm_sampler_params sp = slm_sampler_default_params();
    sp.temp = 0;
    slm_sampler* smp = slm_sampler_new(&sp);
    slm_session* g = slm_session_new(model, n_ctx, 2);
    struct collect c = {0};
    CHECK(slm_generate(g, smp, ids, n, n_predict, on_text, &c) == n_predict, "generate: %s", slm_last_error());
    char expect[4096];
    size_t elen = 0;
    for (int i = 0; i < n_predict; ++i) {
      char piece[64];
      const int32_t k = slm_token_to_piece(model, got[i], piece, sizeof piece);
      if (k > 0 && elen + (size_t)k < sizeof expect) { memcpy(expect + elen, piece, (size_t)k); elen += (size_t)k; }
    }
    CHECK(c.len == elen && memcmp(c.text, expect, elen) == 0, "generated text differs from the tokens' pieces");
    slm_session_free(g);

    /* Cancellation: the callback asks to stop after its first piece. */
    g = slm_session_new(model, n_ctx, 2);
    struct collect c2 = {0};
    c2.stop_after = 1;
    const int32_t k = slm_generate(g, smp, ids, n, n_predict, on_text, &c2);
    CHECK(k >= 1 && k < n_predict && c2.calls == 1, "cancel: %d tokens, %d calls", k, c2.calls);
    slm_session_free(g);
    slm_sampler_free(smp);

    /* Errors come back as -1 with a message, never a crash. */
    const int32_t bad = V + 5;
    CHECK(slm_eval(s, &bad, 1) == -1 && strstr(slm_last_error(), "outside") != NULL, "bad token: %s", slm_last_error());
    slm_session_free(s);
  }
  CHECK(cases > 0, "no prompts in the reference file");

  /* A grammar constrains sampling at any temperature. */
  {
    slm_sampler_params sp = slm_sampler_default_params();
    sp.temp = 1.0f;
    sp.seed = 7;
    slm_sampler* smp = slm_sampler_new(&sp);
    CHECK(slm_sampler_set_grammar(smp, model, "root ::= \"yes\" | \"no\"") == 0, "grammar: %s", slm_last_error());
    CHECK(slm_sampler_set_grammar(smp, model, "root ::= oops") == -1, "a bad grammar was accepted");
    slm_sampler_set_grammar(smp, model, "root ::= \"yes\" | \"no\"");
    slm_session* g = slm_session_new(model, 64, 1);
    int32_t ids[16];
    const int32_t n = slm_tokenize(model, "Once", 1, ids, 16);
    struct collect c = {0};
    slm_generate(g, smp, ids, n, 20, on_text, &c);
    c.text[c.len] = '\0';
    CHECK(strcmp(c.text, "yes") == 0 || strcmp(c.text, "no") == 0, "constrained output '%s'", c.text);
    char gbnf[8192];
    CHECK(slm_json_schema_to_grammar("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}}}", gbnf, sizeof gbnf) > 0,
          "schema: %s", slm_last_error());
    CHECK(slm_json_schema_to_grammar("{\"type\":\"object\",\"patternProperties\":{}}", gbnf, sizeof gbnf) == -2147483647 - 1 &&
              strstr(slm_last_error(), "patternProperties") != NULL,
          "unsupported keyword: %s", slm_last_error());
    slm_session_free(g);
    slm_sampler_free(smp);
  }

  free(ref);
  slm_model_free(model);
  if (failures) { fprintf(stderr, "%d failures\n", failures); return 1; }
  printf("C API: %d prompts match the greedy reference; state, cancellation, grammar and errors checked\n", cases);
  return 0;
}

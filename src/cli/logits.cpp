// slm logits: the reference-check interface.
//   slm logits -m FILE --ids "1 2 3" -o OUT.f32      every position's logits, one batch,
//                                                   raw little-endian f32 [n_ids][n_vocab]
//   slm logits -m FILE --ids "..." --greedy N --prompt-ids K
//                                                   evaluate the first K ids, then N greedy
//                                                   tokens one at a time; prints their ids
#include <cstdio>
#include <sstream>
#include <thread>

#include "cli/commands.h"
#include "cli/options.h"
#include "kernels/thread_pool.h"
#include "model/config.h"
#include "slm/error.h"
#include "slm/model.h"
#include "slm/session.h"

namespace slm::cli {
namespace {

struct LogitsOptions {
  std::string model;
  std::string ids;
  std::string out;
  int ctx = 0;
  int threads = 0;
  int greedy = -1;
  int prompt_ids = -1;
  LoraOptions lora;
};

std::vector<int32_t> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  std::string s = text;
  for (char& ch : s)
    if (ch == ',') ch = ' ';
  std::istringstream in(s);
  std::string word;
  while (in >> word) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(word, &used);
    } catch (...) {
      used = 0;
    }
    if (used != word.size() || v < 0 || v > INT32_MAX) throw Error("--ids: '" + word + "' is not a token id");
    ids.push_back(static_cast<int32_t>(v));
  }
  if (ids.empty()) throw Error("--ids: no token ids given");
  return ids;
}

int argmax(const float* x, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return best;
}

int run(const LogitsOptions& o) {
  if (o.ctx < 0) throw Error("--ctx must be positive (0: the default), got " + std::to_string(o.ctx));
  std::vector<int32_t> ids = parse_ids(o.ids);
  std::unique_ptr<Model> model = Model::load(o.model);
  ThreadPool pool(o.threads > 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency()));
  LoadedLoras adapters = load_loras(o.lora, *model, "logits");
  Session session(*model, pool, o.ctx);
  session.set_lora(adapters.get());
  const int V = model->n_vocab();

  if (o.greedy >= 0) {
    if (o.prompt_ids < 1 || o.prompt_ids > static_cast<int>(ids.size()))
      throw Error("--prompt-ids must be in 1.." + std::to_string(ids.size()) + ", got " + std::to_string(o.prompt_ids));
    std::vector<int32_t> prompt(ids.begin(), ids.begin() + o.prompt_ids);
    if (int64_t(prompt.size()) + std::max(0, o.greedy - 1) > session.n_ctx())
      throw Error("prompt of " + std::to_string(prompt.size()) + " tokens plus " + std::to_string(o.greedy) +
                  " generated do not fit the context of " + std::to_string(session.n_ctx()));
    session.eval(prompt);
    std::string line;
    for (int i = 0; i < o.greedy; ++i) {
      int32_t tok = argmax(session.logits().data(), V);
      line += (i ? " " : "") + std::to_string(tok);
      if (i + 1 < o.greedy) session.eval({tok});
    }
    std::printf("%s\n", line.c_str());
    return 0;
  }

  if (o.out.empty()) throw Error("logits: give -o OUT.f32 (or --greedy N --prompt-ids K)");
  const std::vector<float>& logits = session.eval(ids, true);
  FILE* f = std::fopen(o.out.c_str(), "wb");
  if (!f) throw Error(o.out + ": cannot open for writing");
  size_t wrote = std::fwrite(logits.data(), sizeof(float), logits.size(), f);
  if (std::fclose(f) != 0 || wrote != logits.size()) throw Error(o.out + ": write failed");
  std::fprintf(stderr, "slm: wrote %zu x %d logits to %s\n", ids.size(), V, o.out.c_str());
  return 0;
}

}  // namespace

Action add_logits(CLI::App& app) {
  auto o = std::make_shared<LogitsOptions>();
  CLI::App* sub = app.add_subcommand("logits", "Evaluate token ids and write logits (reference checks)");
  sub->add_option("-m,--model", o->model, "GGUF model file")->required();
  sub->add_option("--ids", o->ids, "Token ids, space separated")->required();
  sub->add_option("-o,--out", o->out, "Output file: raw f32 [n_ids][n_vocab]");
  add_ctx_option(sub, o->ctx);
  add_threads_option(sub, o->threads);
  sub->add_option("--greedy", o->greedy, "Generate this many tokens greedily and print their ids");
  sub->add_option("--prompt-ids", o->prompt_ids, "With --greedy: how many of the ids form the prompt");
  add_lora_options(sub, o->lora);
  return [o] { return run(*o); };
}

}  // namespace slm::cli

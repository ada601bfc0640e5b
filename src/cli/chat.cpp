// slm chat: an interactive conversation with the model's own chat template. The history
// lives in the KV cache: each turn only the tokens that differ from what is cached are
// evaluated. Ctrl-C stops the current answer, not the program. Without a terminal on stdin,
// every input line is one user turn and gets one answer line (for scripts).
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "app/chat_format.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "kernels/thread_pool.h"
#include "slm/error.h"
#include "slm/model.h"
#include "slm/sampler.h"
#include "slm/session.h"
#include "slm/tokenizer.h"

namespace slm::cli {
namespace {

using ojson = nlohmann::ordered_json;

std::atomic<bool> g_interrupted{false};  // set by SIGINT while an answer streams
void on_sigint(int) { g_interrupted = true; }

struct ChatOptions {
  std::string model_path;
  std::string system;
  std::string template_path;
  int n_predict = -1;
  int n_ctx = 0;
  int n_threads = 0;
  KvTypeNames kv_type;
  SamplerParams sampling;
  LoraOptions lora;
  ContextShiftOptions shift;
};

const char* kHelp =
    "commands: /reset (forget the conversation), /save FILE (write it as JSON), /load FILE (read it),\n"
    "          /help, /exit. Ctrl-C stops an answer; Ctrl-D (end of input) quits.\n";

class ChatLoop {
 public:
  ChatLoop(const ChatOptions& o, bool interactive)
      : opt_(o), interactive_(interactive) {
    model_ = Model::load(o.model_path);
    tok_ = Tokenizer::from_gguf(model_->file());
    std::string warning;
    fmt_ = std::make_unique<ChatFormatter>(model_->file(), *tok_, o.template_path, &warning);
    if (!warning.empty()) std::fprintf(stderr, "chat: warning: %s\n", warning.c_str());
    int threads = o.n_threads > 0 ? o.n_threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    pool_ = std::make_unique<ThreadPool>(threads);
    adapters_ = load_loras(o.lora, *model_, "chat");
    session_ = std::make_unique<Session>(*model_, *pool_, o.n_ctx, o.kv_type.key(), o.kv_type.value());
    session_->set_lora(adapters_.get());
    sampler_ = std::make_unique<Sampler>(o.sampling);
    reset();
  }

  void reset() {
    messages_ = ojson::array();
    if (!opt_.system.empty()) messages_.push_back({{"role", "system"}, {"content", opt_.system}});
    cached_.clear();
    session_->truncate(0);
    sampler_->reset();
  }

  // One user turn: returns false when the turn could not be taken (an error was shown).
  bool turn(const std::string& user) {
    messages_.push_back({{"role", "user"}, {"content", user}});
    std::vector<int32_t> ids;
    int dropped = 0;
    const int reserve = std::min(session_->n_ctx() / 4, opt_.n_predict > 0 ? opt_.n_predict : 256);
    for (;;) {
      ids = fmt_->encode(messages_, true);
      if (static_cast<int>(ids.size()) + reserve <= session_->n_ctx()) break;
      // Drop the oldest turn after the system message; never the newest input.
      size_t first = (!messages_.empty() && messages_[0]["role"] == "system") ? 1 : 0;
      if (messages_.size() - first <= 1) {
        std::fprintf(stderr, "chat: this message needs %zu tokens, more than the context of %d leaves room for "
                     "(%d kept free for the answer); not sent\n", ids.size(), session_->n_ctx(), reserve);
        messages_.erase(messages_.end() - 1);
        return false;
      }
      messages_.erase(messages_.begin() + static_cast<long>(first));
      ++dropped;
    }
    if (dropped)
      std::fprintf(stderr, "chat: context full (%d tokens): dropped the oldest %d message%s\n", session_->n_ctx(),
                   dropped, dropped == 1 ? "" : "s");

    // Reuse the cached prefix; evaluate only what differs.
    size_t common = 0;
    while (common < cached_.size() && common < ids.size() && cached_[common] == ids[common]) ++common;
    if (common == ids.size()) --common;  // at least one token must be evaluated for fresh logits
    session_->truncate(static_cast<int>(common));
    cached_.resize(common);
    std::vector<int32_t> fresh(ids.begin() + static_cast<long>(common), ids.end());

    g_interrupted = false;
    auto t0 = std::chrono::steady_clock::now();
    session_->eval(fresh);
    cached_.insert(cached_.end(), fresh.begin(), fresh.end());
    for (int32_t t : fresh) sampler_->accept(t);
    auto t1 = std::chrono::steady_clock::now();

    StreamDecoder decoder(*tok_);
    std::string answer;
    int n = 0;
    int shifts = 0;
    while (!g_interrupted && (opt_.n_predict < 0 || n < opt_.n_predict)) {
      if (session_->n_past() >= session_->n_ctx()) {
        if (!opt_.shift.enabled || !shift_context()) break;
        ++shifts;
      }
      int32_t next = sampler_->sample(session_->logits().data(), model_->n_vocab());
      if (tok_->is_eog(next)) break;
      sampler_->accept_generated(next);
      ++n;
      std::string piece = decoder.push(next);
      answer += piece;
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
      session_->eval({next});
      cached_.push_back(next);
    }
    std::string rest = decoder.flush();
    answer += rest;
    std::fwrite(rest.data(), 1, rest.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
    if (g_interrupted && interactive_) std::fprintf(stderr, "chat: [stopped]\n");
    g_interrupted = false;
    messages_.push_back({{"role", "assistant"}, {"content", answer}});
    auto t2 = std::chrono::steady_clock::now();
    if (interactive_) {
      double pp = std::chrono::duration<double>(t1 - t0).count(), tg = std::chrono::duration<double>(t2 - t1).count();
      std::fprintf(stderr, "[%zu new prompt tokens %.1f t/s, %d generated %.1f t/s, context %d/%d%s]\n", fresh.size(),
                   pp > 0 ? fresh.size() / pp : 0.0, n, tg > 0 ? n / tg : 0.0, session_->n_past(), session_->n_ctx(),
                   shifts ? (", shifted " + std::to_string(shifts) + "x").c_str() : "");
    }
    return true;
  }

  // --context-shift: keep the first --keep tokens (after BOS), drop half of the rest of the
  // cache; the next turn re-renders the conversation and reuses what is still cached.
  bool shift_context() {
    const int n_past = session_->n_past();
    const bool bos = !cached_.empty() && cached_[0] == tok_->bos();
    const int keep = std::min(opt_.shift.n_keep(n_past, bos), n_past - 1);
    const int discard = (n_past - keep) / 2;
    if (discard <= 0) return false;
    session_->shift(keep, discard);
    cached_.erase(cached_.begin() + keep, cached_.begin() + keep + discard);
    return true;
  }

  void save(const std::string& path) const {
    std::ofstream f(path, std::ios::binary);
    if (!f) throw Error(path + ": cannot write");
    f << messages_.dump(2) << "\n";
    if (!f) throw Error(path + ": write failed");
  }

  void load(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error(path + ": cannot open");
    ojson j;
    try {
      j = ojson::parse(f);
    } catch (const std::exception& e) {
      throw Error(path + ": not JSON: " + e.what());
    }
    if (!j.is_array()) throw Error(path + ": want a JSON array of {\"role\",\"content\"} messages");
    for (const auto& m : j)
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
        throw Error(path + ": every message needs a string \"role\"");
    messages_ = j;
    cached_.clear();
    session_->truncate(0);
  }

  size_t n_messages() const { return messages_.size(); }

 private:
  ChatOptions opt_;
  bool interactive_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tok_;
  std::unique_ptr<ChatFormatter> fmt_;
  std::unique_ptr<ThreadPool> pool_;
  LoadedLoras adapters_;
  std::unique_ptr<Session> session_;
  std::unique_ptr<Sampler> sampler_;
  ojson messages_;
  std::vector<int32_t> cached_;  // the token ids whose keys/values are in the cache
};

enum class LineRead { Line, End, Interrupted };

// One line from the terminal, read with read(2) so that a Ctrl-C (SIGINT without SA_RESTART)
// is told apart from the end of input: std::getline reports both as end of file.
LineRead read_terminal_line(std::string& line) {
  line.clear();
  for (;;) {
    char c;
    const ssize_t n = ::read(STDIN_FILENO, &c, 1);
    if (n == 1) {
      if (c == '\n') return LineRead::Line;
      line += c;
      continue;
    }
    if (n < 0 && errno == EINTR) {
      if (g_interrupted) return LineRead::Interrupted;
      continue;
    }
    return line.empty() ? LineRead::End : LineRead::Line;
  }
}

int run_chat(const ChatOptions& o) {
  o.sampling.validate();
  const bool interactive = isatty(STDIN_FILENO);
  ChatLoop chat(o, interactive);

  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a Ctrl-C at the prompt interrupts the read
  sigaction(SIGINT, &sa, nullptr);

  if (interactive) std::fprintf(stderr, "chat: ready. %s", kHelp);
  std::string line;
  for (;;) {
    if (interactive) {
      std::fputs("> ", stdout);
      std::fflush(stdout);
    }
    const LineRead got = interactive ? read_terminal_line(line) : (std::getline(std::cin, line) ? LineRead::Line : LineRead::End);
    if (got == LineRead::Interrupted) {  // Ctrl-C at the prompt: drop the line, keep the conversation
      g_interrupted = false;
      std::fputc('\n', stdout);
      continue;
    }
    if (got == LineRead::End) break;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (interactive && !line.empty() && line[0] == '/') {
      std::string cmd = line.substr(0, line.find(' '));
      std::string arg = line.find(' ') == std::string::npos ? "" : line.substr(line.find(' ') + 1);
      try {
        if (cmd == "/exit" || cmd == "/quit") break;
        if (cmd == "/help") std::fputs(kHelp, stderr);
        else if (cmd == "/reset") { chat.reset(); std::fprintf(stderr, "chat: conversation cleared\n"); }
        else if ((cmd == "/save" || cmd == "/load") && arg.empty()) std::fprintf(stderr, "chat: %s needs a file name: %s FILE\n", cmd.c_str(), cmd.c_str());
        else if (cmd == "/save" && !arg.empty()) { chat.save(arg); std::fprintf(stderr, "chat: saved %zu messages to %s\n", chat.n_messages(), arg.c_str()); }
        else if (cmd == "/load" && !arg.empty()) { chat.load(arg); std::fprintf(stderr, "chat: loaded %zu messages from %s\n", chat.n_messages(), arg.c_str()); }
        else std::fprintf(stderr, "chat: unknown command '%s'. %s", line.c_str(), kHelp);
      } catch (const Error& e) {
        std::fprintf(stderr, "chat: error: %s\n", e.what());
      }
      continue;
    }
    if (line.empty() && interactive) continue;
    chat.turn(line);
  }
  return 0;
}

}  // namespace

Action add_chat(CLI::App& app) {
  auto* sub = app.add_subcommand("chat", "Chat with a model interactively, using its own chat template");
  auto o = std::make_shared<ChatOptions>();
  o->sampling.temp = 0.8f;
  o->sampling.seed = std::random_device{}();  // --seed makes a conversation repeatable
  sub->add_option("-m,--model", o->model_path, "GGUF model file")->required();
  sub->add_option("--system", o->system, "System message at the start of the conversation");
  sub->add_option("--chat-template", o->template_path, "Jinja chat template file (overrides the model's)");
  sub->add_option("-n,--n-predict", o->n_predict, "Most tokens per answer (-1: until the model stops)")
      ->capture_default_str();
  add_ctx_option(sub, o->n_ctx);
  add_threads_option(sub, o->n_threads);
  add_kv_type_option(sub, o->kv_type);
  add_context_shift_options(sub, o->shift);
  add_sampling_options(sub, o->sampling);
  sub->add_option("--seed", o->sampling.seed, "Random seed");
  add_lora_options(sub, o->lora);
  return [o] { return run_chat(*o); };
}

}  // namespace slm::cli

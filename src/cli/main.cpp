// slm: one binary for the whole life of a small language model.
// Exit codes: 0 success, 1 an error while working, 2 a usage error (unknown command or flag,
// bad value); every message is one line starting with "slm: error:".
#include <algorithm>
#include <cstring>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "kernels/rows_x8.h"
#include "kernels/tier.h"
#include "slm/error.h"

namespace {

// The CPU tier the kernels run at (chosen at start; SLM_CPU forces one) and the tiers this
// binary carries that the CPU can run.
std::string version_text() {
  std::string kernels;
  try {
    kernels = std::string(slm::cpu_tier_name(slm::cpu_tier())) + " (this CPU runs: " + slm::cpu_tiers_supported() +
              ")" + (slm::rows_x8_available() ? "; interleaved Q4_0/Q8_0/Q4_K/Q5_K/Q6_K rows" : "");
  } catch (const slm::Error& e) {
    kernels = e.what();
  }
  return std::string("slm ") + SLM_VERSION + " (" + SLM_BUILD_TYPE + " build; CPU kernels: " + kernels + ")";
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// The closest of `names` to `word` ("" when nothing is close): prefixes and small typos.
std::string nearest(const std::string& word, const std::vector<std::string>& names) {
  std::string best;
  size_t best_d = std::max<size_t>(3, word.size() / 3) + 1;
  for (const std::string& n : names) {
    size_t d = edit_distance(word, n);
    if (n.size() > 2 && (word.rfind(n, 0) == 0 || n.rfind(word, 0) == 0)) d = std::min<size_t>(d, 1);
    if (d < best_d) best_d = d, best = n;
  }
  return best;
}

// Every long flag of a subcommand (and its own subcommands' names), for suggestions.
std::vector<std::string> flags_of(const CLI::App* app) {
  std::vector<std::string> out;
  for (const CLI::Option* opt : app->get_options()) {
    for (const std::string& l : opt->get_lnames()) out.push_back("--" + l);
    for (const std::string& s : opt->get_snames()) out.push_back("-" + s);
  }
  return out;
}

int usage_error(const std::string& message) {
  std::fprintf(stderr, "slm: error: %s (see slm --help)\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"slm — run, chat with, serve, adapt, quantize and measure small language models (GGUF)"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every subcommand");
  app.set_version_flag("--version,-V", version_text(), "Version, build type and the CPU kernels in use");

  std::vector<std::pair<CLI::App*, slm::cli::Action>> commands;
  auto add = [&](slm::cli::Action (*reg)(CLI::App&)) {
    size_t before = app.get_subcommands({}).size();
    slm::cli::Action act = reg(app);
    auto subs = app.get_subcommands({});
    if (subs.size() > before) commands.emplace_back(subs.back(), std::move(act));
  };
  add(slm::cli::add_run);
  add(slm::cli::add_chat);
  add(slm::cli::add_serve);
  add(slm::cli::add_info);
  add(slm::cli::add_tokenize);
  add(slm::cli::add_template);
  add(slm::cli::add_quantize);
  add(slm::cli::add_convert);
  add(slm::cli::add_lora);
  add(slm::cli::add_finetune);
  add(slm::cli::add_perplexity);
  add(slm::cli::add_bench);
  add(slm::cli::add_logits);
  add(slm::cli::add_synth);
  CLI::App* help = app.add_subcommand("help", "Show this help (slm help COMMAND: that command's)");
  std::string help_topic;
  help->add_option("command", help_topic, "A command");

  std::vector<std::string> command_names;
  for (const auto& [sub, act] : commands) command_names.push_back(sub->get_name());

  // llama.cpp's multi-letter single-dash flags, which CLI11 cannot declare, as their long forms.
  std::vector<std::string> args(argv, argv + argc);
  for (std::string& a : args)
    for (auto [from, to] : {std::pair{"-ctk", "--cache-type-k"}, std::pair{"-ctv", "--cache-type-v"}})
      if (a == from || a.rfind(std::string(from) + "=", 0) == 0) a = to + a.substr(std::strlen(from));
  std::vector<char*> mapped;
  for (std::string& a : args) mapped.push_back(a.data());
  argv = mapped.data();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // Which subcommand was being parsed: its flags are the candidates for a suggestion.
    const CLI::App* scope = &app;
    for (const auto& [sub, act] : commands)
      if (sub->parsed()) scope = sub;
    std::string message = e.what();
    if (scope == &app && argc > 1 && argv[1][0] != '-' &&
        std::find(command_names.begin(), command_names.end(), argv[1]) == command_names.end() &&
        std::string(argv[1]) != "help") {
      const std::string guess = nearest(argv[1], command_names);
      return usage_error("unknown command '" + std::string(argv[1]) + "'" +
                         (guess.empty() ? "" : " (did you mean '" + guess + "'?)"));
    }
    if (dynamic_cast<const CLI::ExtrasError*>(&e)) {
      for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg.size() < 2 || arg[0] != '-') continue;
        const std::string flag = arg.substr(0, arg.find('='));
        const std::vector<std::string> known = flags_of(scope);
        if (std::find(known.begin(), known.end(), flag) != known.end()) continue;
        const std::string guess = nearest(flag, known);
        return usage_error("unknown flag '" + flag + "' for '" + scope->get_name() + "'" +
                           (guess.empty() ? "" : " (did you mean '" + guess + "'?)"));
      }
    }
    for (char& c : message)
      if (c == '\n') c = ' ';
    return usage_error(message);
  }
  if (help->parsed()) {
    for (const auto& [sub, act] : commands)
      if (sub->get_name() == help_topic) {
        std::printf("%s", sub->help().c_str());
        return 0;
      }
    if (!help_topic.empty()) return usage_error("unknown command '" + help_topic + "'");
    std::printf("%s", app.help().c_str());
    return 0;
  }
  try {
    slm::cpu_tier();  // a bad SLM_CPU stops here, before any work
  } catch (const slm::Error& e) {
    return usage_error(e.what());
  }
  try {
    for (auto& [sub, act] : commands)
      if (sub->parsed()) return act();
  } catch (const CLI::Error& e) {  // a usage problem found by the command itself
    return usage_error(e.what());
  } catch (const slm::Error& e) {
    std::fprintf(stderr, "slm: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "slm: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "slm: error: %s\n", e.what());
    return 1;
  }
  return 0;
}

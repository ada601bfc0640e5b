// slm: one binary for the whole life of a small language model.
#include <cstdio>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "slm/error.h"

int main(int argc, char** argv) {
  CLI::App app{"slm — run, chat with, serve, quantize and measure small language models (GGUF)"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every subcommand");

  std::vector<std::pair<CLI::App*, slm::cli::Action>> commands;
  auto add = [&](slm::cli::Action (*reg)(CLI::App&)) {
    size_t before = app.get_subcommands({}).size();
    slm::cli::Action act = reg(app);
    auto subs = app.get_subcommands({});
    if (subs.size() > before) commands.emplace_back(subs.back(), std::move(act));
  };
  add(slm::cli::add_info);
  add(slm::cli::add_synth);
  add(slm::cli::add_bench);
  add(slm::cli::add_quantize);
  add(slm::cli::add_logits);
  add(slm::cli::add_run);
  add(slm::cli::add_tokenize);
  add(slm::cli::add_template);
  add(slm::cli::add_chat);
  add(slm::cli::add_serve);
  add(slm::cli::add_lora);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (auto& [sub, act] : commands)
      if (sub->parsed()) return act();
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

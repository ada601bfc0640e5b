// Each subcommand lives in its own file and registers itself on the CLI11 app here.
// A registration returns the callback main() runs when that subcommand was chosen.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>

namespace slm::cli {

using Action = std::function<int()>;

Action add_info(CLI::App& app);
Action add_synth(CLI::App& app);
Action add_bench(CLI::App& app);
Action add_quantize(CLI::App& app);
Action add_tokenize(CLI::App& app);
Action add_run(CLI::App& app);
Action add_logits(CLI::App& app);
Action add_template(CLI::App& app);
Action add_serve(CLI::App& app);
Action add_chat(CLI::App& app);
Action add_lora(CLI::App& app);
Action add_finetune(CLI::App& app);
Action add_perplexity(CLI::App& app);
Action add_convert(CLI::App& app);

}  // namespace slm::cli

#include "cli/options.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "slm/error.h"
#include "slm/model.h"

namespace slm::cli {

void add_lora_options(CLI::App* sub, LoraOptions& o) {
  sub->add_option("--lora", o.specs, "LoRA adapter FILE[:SCALE] (repeatable; scale 1 by default; adapters add up)")
      ->type_name("FILE[:SCALE]");
  sub->add_option("--lora-scaled", o.scaled_specs, "LoRA adapter with a user scale, FILE:SCALE (as llama.cpp)")
      ->type_name("FILE:SCALE");
}

std::pair<std::string, float> parse_lora_spec(const std::string& spec, bool scale_required) {
  const size_t colon = spec.rfind(':');
  if (colon != std::string::npos && colon + 1 < spec.size()) {
    const std::string tail = spec.substr(colon + 1);
    char* end = nullptr;
    const float scale = std::strtof(tail.c_str(), &end);
    if (end && *end == '\0') {
      if (!std::isfinite(scale)) throw Error("--lora " + spec + ": the scale must be a finite number");
      if (colon == 0) throw Error("--lora " + spec + ": no adapter file before the scale");
      return {spec.substr(0, colon), scale};
    }
  }
  if (scale_required) throw Error("--lora-scaled " + spec + ": expected FILE:SCALE (e.g. adapter.gguf:0.5)");
  if (spec.empty()) throw Error("--lora: no adapter file given");
  return {spec, 1.0f};
}

LoadedLoras load_loras(const LoraOptions& o, const Model& base, const char* who) {
  LoadedLoras out;
  std::vector<std::pair<std::string, float>> all;
  for (const std::string& s : o.specs) all.push_back(parse_lora_spec(s, false));
  for (const std::string& s : o.scaled_specs) all.push_back(parse_lora_spec(s, true));
  for (const auto& [path, scale] : all) {
    out.adapters.push_back(LoraAdapter::load(path, base));
    const LoraAdapter& a = *out.adapters.back();
    out.set.adapters.push_back({&a, scale});
    std::fprintf(stderr, "%s: adapter %s: scale %g, rank %d, alpha %g, %zu tensors, %.2f MiB, %.2f MFLOP per token\n",
                 who, path.c_str(), scale, a.max_rank(), a.alpha(), a.targets().size(), a.bytes() / 1048576.0,
                 2.0 * a.flops_per_token() / 1e6);
  }
  return out;
}

}  // namespace slm::cli

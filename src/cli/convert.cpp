// slm convert HF_DIR -o OUT.gguf [--outtype auto|f32|f16|bf16|q8_0|Q4_K_M ...] [--vocab-only]
// [--pre NAME]: a Hugging Face checkpoint folder → GGUF, in C++ (no Python), the file
// llama.cpp's convert_hf_to_gguf.py makes from it; a quantize type goes through slm's
// quantizer in the same pass. Progress on stderr; the file appears only when complete.
// slm convert --lora ADAPTER_DIR --base HF_DIR|BASE.gguf -o A.gguf: a PEFT adapter → GGUF.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/progress.h"
#include "convert/convert.h"
#include "slm/error.h"

namespace slm::cli {
namespace {

struct Options {
  convert::ConvertOptions model;
  std::string lora, base;
};

int run_lora(const Options& opt) {
  if (!opt.model.dir.empty()) throw Error("convert --lora: give the adapter folder to --lora, not as a positional folder");
  if (opt.base.empty()) throw Error("convert --lora: give --base (the base model's Hugging Face folder or GGUF file)");
  convert::LoraConvertOptions o;
  o.adapter_dir = opt.lora;
  o.base = opt.base;
  o.out = opt.model.out;
  o.outtype = opt.model.outtype == "auto" ? "f16" : opt.model.outtype;
  const convert::LoraConvertResult r = convert::convert_peft_lora(o);
  std::fprintf(stderr, "%s: %s LoRA adapter, %zu pairs, rank %lld, alpha %g\n", o.out.c_str(), r.arch.c_str(), r.n_pairs,
               static_cast<long long>(r.rank), r.alpha);
  return 0;
}

int run_convert(const Options& opt) {
  if (!opt.lora.empty()) return run_lora(opt);
  if (opt.model.dir.empty()) throw Error("convert: give the Hugging Face folder (or --lora ADAPTER_DIR --base BASE)");
  convert::ConvertOptions o = opt.model;
  std::unique_ptr<Progress> bar;
  o.progress = [&bar](uint64_t done, uint64_t total, const std::string& what) {
    if (!bar) bar = std::make_unique<Progress>(total);
    bar->update(done, what);
  };
  const auto t0 = std::chrono::steady_clock::now();
  const convert::ConvertResult r = convert::convert_hf(o);
  if (bar) bar->done();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "%s: %s, %zu tensors, %.2f MiB -> %.2f MiB (%s, %.2f s)\n", o.out.c_str(), r.arch.c_str(),
               r.n_tensors, r.bytes_in / 1048576.0, r.bytes_out / 1048576.0, r.outtype.c_str(), secs);
  return 0;
}

}  // namespace

Action add_convert(CLI::App& app) {
  auto opt = std::make_shared<Options>();
  convert::ConvertOptions* o = &opt->model;
  CLI::App* sub = app.add_subcommand(
      "convert", "Convert a Hugging Face model folder (config.json, safetensors, tokenizer) to GGUF");
  sub->add_option("dir", o->dir, "The Hugging Face folder")->check(CLI::ExistingDirectory);
  sub->add_option("-o,--outfile", o->out, "Destination GGUF file")->required();
  sub->add_option("--outtype", o->outtype,
                  "auto (BF16 stays BF16, F32/F16 become F16), f32, f16, bf16, q8_0, or any `slm quantize` "
                  "type (Q4_K_M, Q6_K ...), quantized in the same pass")
      ->capture_default_str();
  sub->add_option("--pre", o->pre,
                  "tokenizer.ggml.pre to write when the BPE pre-tokenizer is not one slm recognises "
                  "(llama-bpe, qwen2, gpt-2 ...)");
  sub->add_flag("--vocab-only", o->vocab_only, "Write the metadata and vocabulary only, no tensors");
  sub->add_option("-t,--threads", o->threads, "Threads for quantizing (default: all cores)")->check(CLI::Range(1, 1024));
  sub->add_option("--lora", opt->lora, "Convert a PEFT LoRA adapter folder (adapter_config.json, "
                  "adapter_model.safetensors) instead; needs --base")->check(CLI::ExistingDirectory);
  sub->add_option("--base", opt->base, "With --lora: the base model, as its Hugging Face folder or a GGUF file")
      ->check(CLI::ExistingPath);
  return [opt] { return run_convert(*opt); };
}

}  // namespace slm::cli

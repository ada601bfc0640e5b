// slm convert: a Hugging Face folder (config.json, safetensors, tokenizer) → one GGUF file,
// the one llama.cpp's convert_hf_to_gguf.py makes from it. Tensor by tensor: the weights are
// mapped, each output tensor is made when the writer reaches it, so memory is bounded by the
// largest tensor, not the model. The file is written to a temporary name and renamed.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

namespace slm::convert {

struct ConvertOptions {
  std::string dir;              // the Hugging Face folder
  std::string out;              // OUT.gguf
  std::string outtype = "auto"; // auto (BF16 stays BF16, otherwise F16), f32, f16, bf16, q8_0 or any
                                // type `slm quantize` takes (q4_k_m ...), quantized in the same pass
  std::string pre;              // tokenizer.ggml.pre for an unknown BPE pre-tokenizer ("" = detect)
  bool vocab_only = false;      // metadata and vocabulary, no tensors
  int threads = 0;              // for quantizing (0 = all cores)
  // Called as tensors are made: elements done of the total, and what is being made.
  std::function<void(uint64_t done, uint64_t total, const std::string& what)> progress;
};

struct ConvertResult {
  std::string arch;       // general.architecture written
  std::string outtype;    // "BF16", "F16", "Q4_K_M" ...
  size_t n_tensors = 0;
  uint64_t bytes_in = 0;  // checkpoint tensor bytes
  uint64_t bytes_out = 0; // GGUF tensor bytes
};

// Throws slm::Error (one line naming the file and the problem) on any bad input.
ConvertResult convert_hf(const ConvertOptions& o);

// A PEFT LoRA folder (adapter_config.json + adapter_model.safetensors) → llama.cpp's GGUF
// adapter, with the base family's transforms applied to each A/B pair (Q/K row permutation
// on B, fused matrices split on B, experts stacked).
struct LoraConvertOptions {
  std::string adapter_dir;
  std::string base;              // the base model: its Hugging Face folder or a GGUF file
  std::string out;
  std::string outtype = "f16";   // f32 or f16 (the reference's default)
};

struct LoraConvertResult {
  std::string arch;
  size_t n_pairs = 0;
  int64_t rank = 0;
  float alpha = 0;  // as written: lora_alpha, or lora_alpha·√r for rsLoRA (same scale under alpha/r)
};

LoraConvertResult convert_peft_lora(const LoraConvertOptions& o);

}  // namespace slm::convert

// slm synth --preset NAME --type TYPE -o FILE [--seed S]: writes a GGUF with random weights in
// the exact shape and metadata of a real model, for measuring speed and memory without
// downloading checkpoints. The file loads like the real one (same architecture keys, tensor
// names and shapes, a tokenizer of the real vocabulary size and kind with the family's
// special tokens at their real ids); only the numbers mean nothing.
//
// Weights: each matrix row is drawn from a bell-shaped distribution with standard deviation
// 1/sqrt(n_in) (sum of four uniforms: cheap and deterministic), so every projection keeps
// activations at unit scale and the residual stream stays finite over many layers; norm
// weights are 1. Rows are generated and quantized in parallel; each row's random stream
// depends only on (seed, tensor name, row), so a file is reproducible for any thread count.
// The tensor types come from src/quant/mixture.h, the rules `slm quantize` uses (Q4_K_M:
// Q6_K for the output matrix and for attn_v/ffn_down in llama.cpp's use_more_bits layers).
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "gguf/gguf.h"
#include "quant/mixture.h"
#include "quant/quant.h"
#include "slm/error.h"

namespace slm::cli {
namespace {

// ---- model description ------------------------------------------------------------------

struct TensorSpec {
  std::string name;
  std::vector<int64_t> ne;      // ggml order, ne[0] = row length
  float std = 0;                // > 0: random rows with this deviation; 0: use `values` / ones
  std::vector<float> values;    // explicit contents (rope factors); empty and std == 0: all ones
};

enum class VocabKind { Spm, Bpe };

struct VocabSpec {
  VocabKind kind = VocabKind::Spm;
  int64_t n_vocab = 0;
  std::map<int64_t, std::string> specials;  // id → text, typed CONTROL (UNKNOWN for the unk id)
  int64_t byte_start = -1;                  // SPM: <0x00>..<0xFF> from this id (or first free)
  std::string pre;                          // BPE pre-tokenizer
  int64_t bos = -1, eos = -1, unk = -1, pad = -1;
  bool add_bos = true, add_eos = false;
  int add_space_prefix = -1;                // -1: leave the key out
};

struct ModelSpec {
  std::string arch;
  std::vector<std::pair<std::string, GgufValue>> kv;  // architecture keys, in file order
  VocabSpec vocab;
  std::vector<TensorSpec> tensors;
  int n_layer = 0;
};

struct Dims {
  int64_t n_embd, n_layer, n_head, n_kv, head_dim, n_ff, n_vocab, n_ctx;
  float rope_base, eps;
  bool tied;
  int64_t n_expert = 0, n_expert_used = 0;
};

void kv_u32(ModelSpec& m, const std::string& k, int64_t v) {
  m.kv.emplace_back(m.arch + "." + k, GgufValue::make_u32(static_cast<uint32_t>(v)));
}
void kv_f32(ModelSpec& m, const std::string& k, float v) {
  m.kv.emplace_back(m.arch + "." + k, GgufValue::make_f32(v));
}
void kv_i32_array(ModelSpec& m, const std::string& k, const std::vector<int64_t>& v) {
  std::vector<GgufValue> a;
  for (int64_t x : v) a.push_back(GgufValue::make_i32(static_cast<int32_t>(x)));
  m.kv.emplace_back(m.arch + "." + k, GgufValue::make_array(GgufType::INT32, std::move(a)));
}

float proj_std(int64_t n_in) { return 1.0f / std::sqrt(static_cast<float>(n_in)); }

void matrix(ModelSpec& m, const std::string& name, int64_t n_in, int64_t n_out, int64_t n_expert = 0) {
  TensorSpec t{name, {n_in, n_out}, proj_std(n_in), {}};
  if (n_expert > 0) t.ne.push_back(n_expert);
  m.tensors.push_back(std::move(t));
}
void norm(ModelSpec& m, const std::string& name, int64_t n) { m.tensors.push_back({name, {n}, 0, {}}); }

std::string blk(int il, const char* what) { return fmt::format("blk.{}.{}.weight", il, what); }

// Common keys of the llama-style families.
void base_keys(ModelSpec& m, const Dims& d) {
  kv_u32(m, "context_length", d.n_ctx);
  kv_u32(m, "embedding_length", d.n_embd);
  kv_u32(m, "block_count", d.n_layer);
  kv_u32(m, "feed_forward_length", d.n_ff);
  kv_u32(m, "attention.head_count", d.n_head);
  kv_u32(m, "attention.head_count_kv", d.n_kv);
  kv_f32(m, "attention.layer_norm_rms_epsilon", d.eps);
  kv_f32(m, "rope.freq_base", d.rope_base);
  m.n_layer = static_cast<int>(d.n_layer);
}

// Llama 3.1-style frequency divisors (docs/architectures.md §4.3), as the converter writes
// them into rope_freqs.weight.
std::vector<float> llama3_rope_freqs(int64_t n_rot, float base, float factor, float low, float high, float orig) {
  std::vector<float> f;
  const float low_wl = orig / low, high_wl = orig / high;
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    const float inv = std::pow(base, -2.0f * static_cast<float>(i) / static_cast<float>(n_rot));
    const float wl = 2.0f * static_cast<float>(M_PI) / inv;
    if (wl < high_wl) {
      f.push_back(1.0f);
    } else if (wl > low_wl) {
      f.push_back(factor);
    } else {
      const float smooth = (orig / wl - low) / (high - low);
      f.push_back(1.0f / ((1 - smooth) / factor + smooth));
    }
  }
  return f;
}

// llama (dense and Mixtral-style MoE), granite: separate Q/K/V, SwiGLU.
ModelSpec llama_like(const std::string& arch, const Dims& d) {
  ModelSpec m;
  m.arch = arch;
  base_keys(m, d);
  kv_u32(m, "rope.dimension_count", d.head_dim);
  if (d.head_dim != d.n_embd / d.n_head) {
    kv_u32(m, "attention.key_length", d.head_dim);
    kv_u32(m, "attention.value_length", d.head_dim);
  }
  kv_u32(m, "vocab_size", d.n_vocab);
  if (d.n_expert) {
    kv_u32(m, "expert_count", d.n_expert);
    kv_u32(m, "expert_used_count", d.n_expert_used);
  }
  matrix(m, "token_embd.weight", d.n_embd, d.n_vocab);
  for (int il = 0; il < d.n_layer; ++il) {
    norm(m, blk(il, "attn_norm"), d.n_embd);
    matrix(m, blk(il, "attn_q"), d.n_embd, d.n_head * d.head_dim);
    matrix(m, blk(il, "attn_k"), d.n_embd, d.n_kv * d.head_dim);
    matrix(m, blk(il, "attn_v"), d.n_embd, d.n_kv * d.head_dim);
    matrix(m, blk(il, "attn_output"), d.n_head * d.head_dim, d.n_embd);
    norm(m, blk(il, "ffn_norm"), d.n_embd);
    if (d.n_expert) {
      matrix(m, blk(il, "ffn_gate_inp"), d.n_embd, d.n_expert);
      matrix(m, blk(il, "ffn_gate_exps"), d.n_embd, d.n_ff, d.n_expert);
      matrix(m, blk(il, "ffn_down_exps"), d.n_ff, d.n_embd, d.n_expert);
      matrix(m, blk(il, "ffn_up_exps"), d.n_embd, d.n_ff, d.n_expert);
    } else {
      matrix(m, blk(il, "ffn_gate"), d.n_embd, d.n_ff);
      matrix(m, blk(il, "ffn_down"), d.n_ff, d.n_embd);
      matrix(m, blk(il, "ffn_up"), d.n_embd, d.n_ff);
    }
  }
  norm(m, "output_norm.weight", d.n_embd);
  if (!d.tied) matrix(m, "output.weight", d.n_embd, d.n_vocab);
  return m;
}

// ---- vocabularies -----------------------------------------------------------------------

VocabSpec llama3_vocab(int64_t n_vocab) {
  VocabSpec v;
  v.kind = VocabKind::Bpe;
  v.n_vocab = n_vocab;
  v.pre = "llama-bpe";
  const char* named[] = {"<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                         "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>",
                         "<|reserved_special_token_2|>", "<|start_header_id|>", "<|end_header_id|>",
                         "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"};
  const int64_t first = n_vocab - 256;
  for (int i = 0; i < 256; ++i)
    v.specials[first + i] = i < 11 ? named[i] : fmt::format("<|reserved_special_token_{}|>", i - 8);
  v.bos = first;
  v.eos = first + 9;
  v.add_bos = true;
  return v;
}

VocabSpec llama2_vocab(int64_t n_vocab) {  // Llama 2 / Mistral / OpenELM SentencePiece layout
  VocabSpec v;
  v.n_vocab = n_vocab;
  v.specials = {{0, "<unk>"}, {1, "<s>"}, {2, "</s>"}};
  v.byte_start = 3;
  v.unk = 0;
  v.bos = 1;
  v.eos = 2;
  return v;
}

VocabSpec phi3_vocab() {
  VocabSpec v = llama2_vocab(32064);
  const char* names[] = {"<|endoftext|>", "<|assistant|>", "<|placeholder1|>", "<|placeholder2|>",
                         "<|placeholder3|>", "<|placeholder4|>", "<|system|>", "<|end|>",
                         "<|placeholder5|>", "<|placeholder6|>", "<|user|>"};
  for (int i = 0; i < 64; ++i)
    v.specials[32000 + i] = i < 11 ? names[i] : fmt::format("<|placeholder{}|>", i - 4);
  v.eos = 32000;
  v.pad = 32000;
  v.add_bos = false;
  return v;
}

VocabSpec gemma_vocab(int64_t n_vocab) {
  VocabSpec v;
  v.n_vocab = n_vocab;
  v.specials = {{0, "<pad>"}, {1, "<eos>"}, {2, "<bos>"}, {3, "<unk>"}, {4, "<mask>"}};
  for (int i = 5; i < 106; ++i) v.specials[i] = fmt::format("<unused{}>", i - 5);
  v.specials[106] = "<start_of_turn>";
  v.specials[107] = "<end_of_turn>";
  v.byte_start = 108;
  v.pad = 0;
  v.eos = 1;
  v.bos = 2;
  v.unk = 3;
  v.add_space_prefix = 0;
  return v;
}

VocabSpec granite_vocab() {
  VocabSpec v;
  v.kind = VocabKind::Bpe;
  v.n_vocab = 49155;
  v.pre = "refact";
  v.specials = {{0, "<|end_of_text|>"}, {49152, "<|start_of_role|>"}, {49153, "<|end_of_role|>"},
                {49154, "<|tool_call|>"}};
  v.bos = v.eos = v.unk = v.pad = 0;
  v.add_bos = false;
  return v;
}

void append_utf8(std::string& s, uint32_t cp) {
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// GPT-2's byte → character map (docs/architectures.md §5.5).
std::vector<std::string> gpt2_byte_chars() {
  std::vector<std::string> out(256);
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    append_utf8(out[b], printable ? static_cast<uint32_t>(b) : next++);
  }
  return out;
}

void write_vocab(GgufWriter& w, const VocabSpec& v) {
  std::vector<std::string> tokens(v.n_vocab);
  std::vector<int32_t> types(v.n_vocab, 1);
  std::vector<bool> used(v.n_vocab, false);
  for (auto& [id, text] : v.specials) {
    tokens[id] = text;
    types[id] = id == v.unk ? 2 : 3;
    used[id] = true;
  }
  int64_t next = 0;
  auto next_free = [&] {
    while (next < v.n_vocab && used[next]) ++next;
    if (next >= v.n_vocab) throw Error("synth: vocabulary too small for its special tokens");
    used[next] = true;
    return next;
  };
  std::vector<GgufValue> merges;
  const std::string letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  if (v.kind == VocabKind::Spm) {
    if (v.byte_start >= 0) next = v.byte_start;
    for (int b = 0; b < 256; ++b) {
      const int64_t id = next_free();
      tokens[id] = fmt::format("<0x{:02X}>", b);
      types[id] = 6;
    }
    next = 0;
    // Pieces "▁a", "a", "▁b", ... then two letters, three: unique, with falling scores.
    for (int64_t k = 0; next < v.n_vocab; ++k) {
      int64_t q = k / 2 + 1;
      std::string s;
      while (q > 0) {
        --q;
        s.insert(s.begin(), letters[q % 26]);
        q /= 26;
      }
      const std::string piece = (k % 2 == 0 ? "\xE2\x96\x81" : "") + s;
      while (next < v.n_vocab && used[next]) ++next;
      if (next >= v.n_vocab) break;
      tokens[next_free()] = piece;
    }
  } else {
    const auto bytes = gpt2_byte_chars();
    for (int b = 0; b < 256; ++b) tokens[next_free()] = bytes[b];
    // Merged tokens: pairs over an alphabet of letters and 'Ġ' (space), then triples; every
    // merge joins two tokens already in the vocabulary.
    std::vector<std::string> alpha;
    for (char c : letters) alpha.emplace_back(1, c);
    alpha.push_back(bytes[' ']);
    std::vector<std::string> pairs;
    auto add_merge = [&](const std::string& l, const std::string& r) {
      while (next < v.n_vocab && used[next]) ++next;
      if (next >= v.n_vocab) return false;
      tokens[next_free()] = l + r;
      merges.push_back(GgufValue::make_string(l + " " + r));
      return true;
    };
    bool room = true;
    for (size_t i = 0; i < alpha.size() && room; ++i)
      for (size_t j = 0; j < alpha.size() && room; ++j) {
        room = add_merge(alpha[i], alpha[j]);
        pairs.push_back(alpha[i] + alpha[j]);
      }
    for (size_t i = 0; i < pairs.size() && room; ++i)
      for (size_t j = 0; j < alpha.size() && room; ++j) room = add_merge(pairs[i], alpha[j]);
    if (room) throw Error("synth: BPE vocabulary larger than the generated merges");
  }
  std::vector<GgufValue> tok, typ, scores;
  for (int64_t i = 0; i < v.n_vocab; ++i) {
    tok.push_back(GgufValue::make_string(tokens[i]));
    typ.push_back(GgufValue::make_i32(types[i]));
    scores.push_back(GgufValue::make_f32(types[i] == 1 ? -static_cast<float>(i) : 0.0f));
  }
  w.set("tokenizer.ggml.model", GgufValue::make_string(v.kind == VocabKind::Spm ? "llama" : "gpt2"));
  if (v.kind == VocabKind::Bpe) w.set("tokenizer.ggml.pre", GgufValue::make_string(v.pre));
  w.set("tokenizer.ggml.tokens", GgufValue::make_array(GgufType::STRING, std::move(tok)));
  if (v.kind == VocabKind::Spm) w.set("tokenizer.ggml.scores", GgufValue::make_array(GgufType::FLOAT32, std::move(scores)));
  w.set("tokenizer.ggml.token_type", GgufValue::make_array(GgufType::INT32, std::move(typ)));
  if (v.kind == VocabKind::Bpe) w.set("tokenizer.ggml.merges", GgufValue::make_array(GgufType::STRING, std::move(merges)));
  if (v.bos >= 0) w.set("tokenizer.ggml.bos_token_id", GgufValue::make_u32(static_cast<uint32_t>(v.bos)));
  if (v.eos >= 0) w.set("tokenizer.ggml.eos_token_id", GgufValue::make_u32(static_cast<uint32_t>(v.eos)));
  if (v.unk >= 0) w.set("tokenizer.ggml.unknown_token_id", GgufValue::make_u32(static_cast<uint32_t>(v.unk)));
  if (v.pad >= 0) w.set("tokenizer.ggml.padding_token_id", GgufValue::make_u32(static_cast<uint32_t>(v.pad)));
  w.set("tokenizer.ggml.add_bos_token", GgufValue::make_bool(v.add_bos));
  w.set("tokenizer.ggml.add_eos_token", GgufValue::make_bool(v.add_eos));
  if (v.add_space_prefix >= 0) w.set("tokenizer.ggml.add_space_prefix", GgufValue::make_bool(v.add_space_prefix != 0));
}

// ---- presets ------------------------------------------------------------------------------

ModelSpec llama32(int64_t n_embd, int64_t n_layer, int64_t n_head, int64_t n_kv, int64_t head_dim, int64_t n_ff,
                  int64_t vocab) {
  Dims d{n_embd, n_layer, n_head, n_kv, head_dim, n_ff, vocab, 131072, 500000.0f, 1e-5f, true};
  ModelSpec m = llama_like("llama", d);
  m.tensors.insert(m.tensors.begin() + 1,
                   TensorSpec{"rope_freqs.weight", {head_dim / 2}, 0,
                              llama3_rope_freqs(head_dim, 500000.0f, 32.0f, 1.0f, 4.0f, 8192.0f)});
  m.vocab = llama3_vocab(vocab);
  return m;
}

ModelSpec mixtral_like(int64_t n_embd, int64_t n_layer, int64_t n_head, int64_t n_kv, int64_t n_ff, int64_t vocab) {
  Dims d{n_embd, n_layer, n_head, n_kv, n_embd / n_head, n_ff, vocab, 32768, 1e6f, 1e-5f, false, 8, 2};
  ModelSpec m = llama_like("llama", d);
  m.vocab = llama2_vocab(vocab);
  return m;
}

ModelSpec granite(int64_t n_embd, int64_t n_layer, int64_t n_head, int64_t n_kv, int64_t n_ff, int64_t vocab) {
  Dims d{n_embd, n_layer, n_head, n_kv, n_embd / n_head, n_ff, vocab, 131072, 5e6f, 1e-5f, true};
  ModelSpec m = llama_like("granite", d);
  kv_f32(m, "embedding_scale", 12.0f);
  kv_f32(m, "residual_scale", 0.22f);
  kv_f32(m, "attention.scale", 1.0f / static_cast<float>(d.head_dim));
  kv_f32(m, "logit_scale", 8.0f);
  m.vocab = vocab == 49155 ? granite_vocab() : llama2_vocab(vocab);
  return m;
}

ModelSpec phi3(int64_t n_embd, int64_t n_layer, int64_t n_head, int64_t n_ff, int64_t vocab, int64_t orig_ctx) {
  ModelSpec m;
  m.arch = "phi3";
  const int64_t hd = n_embd / n_head;
  Dims d{n_embd, n_layer, n_head, n_head, hd, n_ff, vocab, 131072, 10000.0f, 1e-5f, false};
  base_keys(m, d);
  kv_u32(m, "rope.dimension_count", hd);
  kv_u32(m, "rope.scaling.original_context_length", orig_ctx);
  kv_f32(m, "rope.scaling.attn_factor", 1.1902381f);
  kv_u32(m, "attention.sliding_window", 262144);
  matrix(m, "token_embd.weight", n_embd, vocab);
  // LongRoPE factors: short ≈ 1, long rising to ~40 over the pairs (real values are learned).
  std::vector<float> shortf(hd / 2), longf(hd / 2);
  for (int64_t i = 0; i < hd / 2; ++i) {
    shortf[i] = 1.0f + 0.02f * static_cast<float>(i) / static_cast<float>(hd / 2);
    longf[i] = 1.0f + 39.0f * static_cast<float>(i) / static_cast<float>(hd / 2 - 1);
  }
  m.tensors.push_back({"rope_factors_long.weight", {hd / 2}, 0, longf});
  m.tensors.push_back({"rope_factors_short.weight", {hd / 2}, 0, shortf});
  for (int il = 0; il < n_layer; ++il) {
    norm(m, blk(il, "attn_norm"), n_embd);
    matrix(m, blk(il, "attn_qkv"), n_embd, 3 * n_embd);
    matrix(m, blk(il, "attn_output"), n_embd, n_embd);
    norm(m, blk(il, "ffn_norm"), n_embd);
    matrix(m, blk(il, "ffn_up"), n_embd, 2 * n_ff);
    matrix(m, blk(il, "ffn_down"), n_ff, n_embd);
  }
  norm(m, "output_norm.weight", n_embd);
  matrix(m, "output.weight", n_embd, vocab);
  m.vocab = vocab == 32064 ? phi3_vocab() : llama2_vocab(vocab);
  return m;
}

ModelSpec gemma2(int64_t n_embd, int64_t n_layer, int64_t n_head, int64_t n_kv, int64_t hd, int64_t n_ff,
                 int64_t vocab, int64_t window) {
  ModelSpec m;
  m.arch = "gemma2";
  Dims d{n_embd, n_layer, n_head, n_kv, hd, n_ff, vocab, 8192, 10000.0f, 1e-6f, true};
  base_keys(m, d);
  kv_u32(m, "attention.key_length", hd);
  kv_u32(m, "attention.value_length", hd);
  kv_f32(m, "attn_logit_softcapping", 50.0f);
  kv_f32(m, "final_logit_softcapping", 30.0f);
  kv_u32(m, "attention.sliding_window", window);
  matrix(m, "token_embd.weight", n_embd, vocab);
  for (int il = 0; il < n_layer; ++il) {
    norm(m, blk(il, "attn_norm"), n_embd);
    matrix(m, blk(il, "attn_q"), n_embd, n_head * hd);
    matrix(m, blk(il, "attn_k"), n_embd, n_kv * hd);
    matrix(m, blk(il, "attn_v"), n_embd, n_kv * hd);
    matrix(m, blk(il, "attn_output"), n_head * hd, n_embd);
    norm(m, blk(il, "post_attention_norm"), n_embd);
    norm(m, blk(il, "ffn_norm"), n_embd);
    matrix(m, blk(il, "ffn_gate"), n_embd, n_ff);
    matrix(m, blk(il, "ffn_up"), n_embd, n_ff);
    matrix(m, blk(il, "ffn_down"), n_ff, n_embd);
    norm(m, blk(il, "post_ffw_norm"), n_embd);
  }
  norm(m, "output_norm.weight", n_embd);
  m.vocab = vocab == 256000 ? gemma_vocab(vocab) : llama2_vocab(vocab);
  if (vocab != 256000) m.vocab.add_space_prefix = 0;
  return m;
}

// OpenELM: per-layer head counts and FFN widths; n_ff by OpenELM's make-divisible rule.
ModelSpec openelm(int64_t n_embd, const std::vector<int64_t>& heads, const std::vector<int64_t>& kv_heads,
                  const std::vector<float>& ffn_mult, int64_t hd, int64_t vocab) {
  ModelSpec m;
  m.arch = "openelm";
  const int64_t n_layer = static_cast<int64_t>(heads.size());
  std::vector<int64_t> n_ff;
  for (float mult : ffn_mult) {
    const int64_t div = 256;
    const double v = mult * static_cast<double>(n_embd);
    int64_t f = std::max<int64_t>(div, static_cast<int64_t>((v + div / 2.0) / div) * div);
    if (static_cast<double>(f) < 0.9 * v) f += div;
    n_ff.push_back(f);
  }
  kv_u32(m, "context_length", 2048);
  kv_u32(m, "embedding_length", n_embd);
  kv_u32(m, "block_count", n_layer);
  kv_i32_array(m, "feed_forward_length", n_ff);
  kv_i32_array(m, "attention.head_count", heads);
  kv_i32_array(m, "attention.head_count_kv", kv_heads);
  kv_f32(m, "attention.layer_norm_rms_epsilon", 1e-6f);
  kv_u32(m, "attention.key_length", hd);
  kv_u32(m, "attention.value_length", hd);
  kv_u32(m, "rope.dimension_count", hd);
  kv_f32(m, "rope.freq_base", 10000.0f);
  m.n_layer = static_cast<int>(n_layer);
  matrix(m, "token_embd.weight", n_embd, vocab);
  for (int il = 0; il < n_layer; ++il) {
    norm(m, blk(il, "attn_norm"), n_embd);
    matrix(m, blk(il, "attn_qkv"), n_embd, (heads[il] + 2 * kv_heads[il]) * hd);
    norm(m, blk(il, "attn_q_norm"), hd);
    norm(m, blk(il, "attn_k_norm"), hd);
    matrix(m, blk(il, "attn_output"), heads[il] * hd, n_embd);
    norm(m, blk(il, "ffn_norm"), n_embd);
    matrix(m, blk(il, "ffn_gate"), n_embd, n_ff[il]);
    matrix(m, blk(il, "ffn_up"), n_embd, n_ff[il]);
    matrix(m, blk(il, "ffn_down"), n_ff[il], n_embd);
  }
  norm(m, "output_norm.weight", n_embd);
  m.vocab = llama2_vocab(vocab);
  return m;
}

struct Preset {
  const char* name;
  const char* about;
  bool hidden;  // small shapes for tests, not listed
  std::function<ModelSpec()> make;
};

const std::vector<Preset>& presets() {
  static const std::vector<Preset> p = {
      {"llama-3.2-1b", "Llama 3.2 1B: 16 layers, 2048 wide, 32/8 heads, n_ff 8192, vocab 128256, tied", false,
       [] { return llama32(2048, 16, 32, 8, 64, 8192, 128256); }},
      {"llama-3.2-3b", "Llama 3.2 3B: 28 layers, 3072 wide, 24/8 heads (hd 128), n_ff 8192, tied", false,
       [] { return llama32(3072, 28, 24, 8, 128, 8192, 128256); }},
      {"phi-3.5-mini", "Phi-3.5 mini: 32 layers, 3072 wide, 32 heads, fused QKV and gate/up, LongRoPE", false,
       [] { return phi3(3072, 32, 32, 8192, 32064, 4096); }},
      {"gemma-2-2b", "Gemma 2 2B: 26 layers, 2304 wide, 8/4 heads of 256, n_ff 9216, vocab 256000", false,
       [] { return gemma2(2304, 26, 8, 4, 256, 9216, 256000, 4096); }},
      {"granite-3.1-2b", "Granite 3.1 2B: 40 layers, 2048 wide, 32/8 heads, n_ff 8192, vocab 49155, tied", false,
       [] { return granite(2048, 40, 32, 8, 8192, 49155); }},
      {"openelm-270m", "OpenELM 270M: 16 layers, 1280 wide, 12-20 heads per layer, vocab 32000", false,
       [] {
         std::vector<float> mult;
         for (int i = 0; i < 16; ++i) mult.push_back(0.5f + 3.5f * static_cast<float>(i) / 15.0f);
         return openelm(1280, {12, 12, 12, 12, 12, 16, 16, 16, 16, 16, 16, 16, 20, 20, 20, 20},
                        {3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5}, mult, 64, 32000);
       }},
      {"mixtral-8x-1b", "Small Mixtral: 8 experts (top 2), 16 layers, 1024 wide, n_ff 2816; 1.2B total, 0.38B active",
       false, [] { return mixtral_like(1024, 16, 16, 4, 2816, 32000); }},
      {"tiny-llama", "", true, [] {
         Dims d{256, 2, 4, 2, 64, 512, 512, 2048, 10000.0f, 1e-5f, false};
         ModelSpec m = llama_like("llama", d);
         m.vocab = llama2_vocab(512);
         return m;
       }},
      {"tiny-llama3", "", true, [] { return llama32(256, 2, 4, 2, 64, 512, 2048); }},
      {"tiny-phi3", "", true, [] { return phi3(256, 2, 4, 256, 512, 256); }},
      {"tiny-gemma2", "", true, [] { return gemma2(256, 4, 4, 2, 64, 512, 512, 8); }},
      {"tiny-granite", "", true, [] { return granite(256, 2, 4, 2, 512, 512); }},
      {"tiny-openelm", "", true, [] { return openelm(256, {2, 4, 4}, {1, 1, 2}, {1.0f, 2.0f, 1.0f}, 64, 512); }},
      {"tiny-mixtral", "", true, [] { return mixtral_like(256, 2, 4, 2, 256, 512); }},
  };
  return p;
}

// ---- generation -------------------------------------------------------------------------

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

uint64_t hash_name(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

// n values with mean 0 and deviation `std`: a sum of four uniforms (Irwin-Hall), rescaled.
void random_row(uint64_t seed, float std, float* out, int64_t n) {
  uint64_t s = seed;
  const float k = std * std::sqrt(3.0f) / 2.0f / static_cast<float>(1ULL << 31);  // 4 × U(−1,1): var 4/3
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t a = splitmix(s), b = splitmix(s);
    const int64_t sum = static_cast<int64_t>(static_cast<int32_t>(a)) + static_cast<int32_t>(a >> 32) +
                        static_cast<int32_t>(b) + static_cast<int32_t>(b >> 32);
    out[i] = static_cast<float>(sum) * k;
  }
}

struct Options {
  std::string preset, type = "Q4_K_M", out;
  uint64_t seed = 42;
  int threads = 0;
  bool list = false;
};

// Fills `dst` with the tensor's rows in type `to`, rows split over `threads` workers.
void generate(const TensorSpec& t, GgmlType to, uint64_t seed, int threads, uint8_t* dst) {
  const int64_t n = t.ne[0];
  int64_t rows = 1;
  for (size_t i = 1; i < t.ne.size(); ++i) rows *= t.ne[i];
  const size_t rb = row_bytes(to, n);
  const uint64_t base = seed ^ hash_name(t.name);
  auto work = [&](int64_t r0, int64_t r1) {
    std::vector<float> row(static_cast<size_t>(n));
    for (int64_t r = r0; r < r1; ++r) {
      if (t.std > 0) {
        uint64_t s = base + static_cast<uint64_t>(r) * 0x632BE59BD9B4E019ULL;
        random_row(splitmix(s), t.std, row.data(), n);
      } else if (!t.values.empty()) {
        std::copy(t.values.begin() + r * n, t.values.begin() + (r + 1) * n, row.begin());
      } else {
        std::fill(row.begin(), row.end(), 1.0f);
      }
      quantize_row(to, row.data(), dst + static_cast<size_t>(r) * rb, n);
    }
  };
  const int workers = static_cast<int>(std::min<int64_t>(threads, std::max<int64_t>(1, rows / 16)));
  if (workers <= 1) return work(0, rows);
  std::vector<std::thread> pool;
  std::vector<std::exception_ptr> errors(workers);
  for (int w = 0; w < workers; ++w)
    pool.emplace_back([&, w] {
      try {
        work(rows * w / workers, rows * (w + 1) / workers);
      } catch (...) {
        errors[w] = std::current_exception();
      }
    });
  for (auto& th : pool) th.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

int list_presets() {
  for (const Preset& p : presets())
    if (!p.hidden) std::printf("%-16s %s\n", p.name, p.about);
  return 0;
}

int run_synth(const Options& o) {
  if (o.list) return list_presets();
  if (o.preset.empty() || o.out.empty()) throw Error("synth: --preset and -o are required (see --list)");
  const Preset* preset = nullptr;
  for (const Preset& p : presets())
    if (o.preset == p.name) preset = &p;
  if (!preset) {
    std::string names;
    for (const Preset& p : presets())
      if (!p.hidden) names += std::string(names.empty() ? "" : ", ") + p.name;
    throw Error("synth: unknown preset '" + o.preset + "' (choose from " + names + ")");
  }
  QuantTarget target = parse_quant_target(o.type);
  target.output_q6_k = true;  // the file llama-quantize makes by default, as benchmarks compare
  const ModelSpec m = preset->make();
  const int threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  std::vector<TensorDesc> descs;
  for (const TensorSpec& t : m.tensors)
    descs.push_back({t.name, static_cast<uint32_t>(t.ne.size()), t.ne[0], GgmlType::F32});
  const std::vector<TensorPlan> plan = plan_quantization(target, descs);

  GgufWriter w;
  w.set("general.architecture", GgufValue::make_string(m.arch));
  w.set("general.name", GgufValue::make_string(std::string("slm synth ") + preset->name));
  w.set("general.file_type", GgufValue::make_u32(target.file_type));
  w.set("general.quantization_version", GgufValue::make_u32(2));
  for (const auto& [k, v] : m.kv) w.set(k, v);
  write_vocab(w, m.vocab);

  uint64_t total = 0, params = 0;
  for (size_t i = 0; i < m.tensors.size(); ++i) {
    int64_t rows = 1;
    for (size_t d = 1; d < m.tensors[i].ne.size(); ++d) rows *= m.tensors[i].ne[d];
    total += row_bytes(plan[i].type, m.tensors[i].ne[0]) * static_cast<uint64_t>(rows);
    params += static_cast<uint64_t>(m.tensors[i].ne[0] * rows);
  }
  std::fprintf(stderr, "synth: %s as %s: %zu tensors, %.2fB parameters, %.2f GiB, %d threads\n", preset->name,
               target.name.c_str(), m.tensors.size(), static_cast<double>(params) / 1e9,
               static_cast<double>(total) / (1 << 30), threads);

  const bool tty = isatty(2);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::vector<uint8_t>> data(m.tensors.size());
  uint64_t done = 0;
  for (size_t i = 0; i < m.tensors.size(); ++i) {
    const TensorSpec& t = m.tensors[i];
    int64_t rows = 1;
    for (size_t d = 1; d < t.ne.size(); ++d) rows *= t.ne[d];
    data[i].resize(row_bytes(plan[i].type, t.ne[0]) * static_cast<size_t>(rows));
    generate(t, plan[i].type, o.seed, threads, data[i].data());
    w.add_tensor(t.name, plan[i].type, t.ne, data[i].data(), data[i].size());
    done += data[i].size();
    const std::string line = fmt::format("synth: [{:3d}%] {}/{} {} {}", static_cast<int>(100 * done / std::max<uint64_t>(total, 1)),
                                         i + 1, m.tensors.size(), t.name, type_name(plan[i].type));
    if (tty)
      std::fprintf(stderr, "\r%-80s", line.c_str());
    else if (t.ne.size() > 1 && (i % 16 == 0 || i + 1 == m.tensors.size()))
      std::fprintf(stderr, "%s\n", line.c_str());
  }
  if (tty) std::fprintf(stderr, "\n");
  std::fprintf(stderr, "synth: writing %s\n", o.out.c_str());
  w.write(o.out);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "synth: wrote %s (%.2f GiB) in %.1f s\n", o.out.c_str(), static_cast<double>(total) / (1 << 30), secs);
  return 0;
}

}  // namespace

Action add_synth(CLI::App& app) {
  auto o = std::make_shared<Options>();
  CLI::App* sub = app.add_subcommand(
      "synth", "Write a random-weight GGUF with a real model's exact shape and metadata (for benchmarks)");
  sub->add_option("--preset", o->preset, "Model shape: see --list");
  sub->add_option("--type", o->type, "Tensor type: F16, Q8_0, Q4_0, Q4_K_M, ... (default Q4_K_M)");
  sub->add_option("-o,--output", o->out, "Output GGUF file");
  sub->add_option("--seed", o->seed, "Random seed (default 42)");
  sub->add_option("-t,--threads", o->threads, "Worker threads (default: all cores)")->check(CLI::Range(1, 1024));
  sub->add_flag("--list", o->list, "List the presets");
  return [o] { return run_synth(*o); };
}

}  // namespace slm::cli

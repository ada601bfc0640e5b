// `slm synth`: the files it writes open with GgufFile and carry what the preset promises:
// the family's keys and tensors with the right shapes, a vocabulary of n_vocab entries,
// the Q4_K_M type mixture, weights of the intended scale, and the same bytes whatever the
// thread count.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <unistd.h>
#include <filesystem>
#include <string>
#include <vector>

#include "common/shared.h"
#include "gguf/gguf.h"
#include "quant/quant.h"

namespace slm {
namespace {

namespace fs = std::filesystem;

std::string tmp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("slm_synth_test_" + std::to_string(::getpid()) + "_" + name)).string();
}

std::unique_ptr<GgufFile> synth(const std::string& preset, const std::string& type, const std::string& extra = "") {
  const std::string out = tmp_path(preset + "_" + type + extra.substr(0, 4) + ".gguf");
  const std::string cmd = test::slm_bin() + " synth --preset " + preset + " --type " + type + " -o " + out +
                          " " + extra + " 2>/dev/null";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto f = GgufFile::open(out);
  fs::remove(out);
  return f;
}

const GgufTensor& tensor(const GgufFile& f, const std::string& name) {
  const GgufTensor* t = f.find_tensor(name);
  if (!t) throw std::runtime_error("missing tensor " + name);
  return *t;
}

TEST(Synth, TinyLlamaHasLlamaLayoutAndQ4KMMixture) {
  auto f = synth("tiny-llama", "Q4_K_M");
  EXPECT_EQ(f->get_string("general.architecture"), "llama");
  EXPECT_EQ(f->get_int("llama.block_count"), 2);
  EXPECT_EQ(f->get_int("llama.embedding_length"), 256);
  EXPECT_EQ(f->get_int("general.file_type"), 15);
  EXPECT_EQ(f->get_string("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(f->get_string_array("tokenizer.ggml.tokens").size(), 512u);
  EXPECT_EQ(f->get_array("tokenizer.ggml.scores").size(), 512u);
  EXPECT_EQ(f->get_array("tokenizer.ggml.token_type").size(), 512u);
  EXPECT_EQ(f->get_string_array("tokenizer.ggml.tokens")[3], "<0x00>");
  // 1 embedding + 2 × 9 per layer + output_norm + output
  EXPECT_EQ(f->tensors().size(), 1u + 2 * 9 + 2);
  EXPECT_EQ(tensor(*f, "token_embd.weight").type, GgmlType::Q4_K);
  EXPECT_EQ(tensor(*f, "output.weight").type, GgmlType::Q6_K);
  EXPECT_EQ(tensor(*f, "blk.0.attn_q.weight").type, GgmlType::Q4_K);
  EXPECT_EQ(tensor(*f, "blk.1.attn_v.weight").type, GgmlType::Q6_K);  // last layer: more bits
  EXPECT_EQ(tensor(*f, "blk.1.ffn_down.weight").type, GgmlType::Q6_K);
  EXPECT_EQ(tensor(*f, "blk.0.attn_norm.weight").type, GgmlType::F32);
  const GgufTensor& k = tensor(*f, "blk.0.attn_k.weight");
  EXPECT_EQ(k.ne[0], 256);
  EXPECT_EQ(k.ne[1], 128);  // 2 KV heads of 64

  // Rows of a projection have deviation 1/sqrt(n_in); norms are ones.
  const GgufTensor& q = tensor(*f, "blk.0.attn_q.weight");
  std::vector<float> row(q.ne[0]);
  double sum2 = 0;
  for (int r = 0; r < 16; ++r) {
    dequantize_row(q.type, q.data + r * q.row_size(), row.data(), q.ne[0]);
    for (float v : row) sum2 += static_cast<double>(v) * v;
  }
  EXPECT_NEAR(std::sqrt(sum2 / (16.0 * q.ne[0])), 1.0 / 16, 0.1 / 16);
  const GgufTensor& n = tensor(*f, "blk.0.attn_norm.weight");
  EXPECT_EQ(reinterpret_cast<const float*>(n.data)[7], 1.0f);
}

TEST(Synth, EveryFamilyOpensWithItsTensors) {
  struct Case { const char* preset; const char* arch; std::vector<std::string> tensors; };
  const Case cases[] = {
      {"tiny-llama3", "llama", {"rope_freqs.weight", "blk.1.ffn_up.weight"}},
      {"tiny-phi3", "phi3", {"blk.0.attn_qkv.weight", "rope_factors_long.weight", "output.weight"}},
      {"tiny-gemma2", "gemma2", {"blk.3.post_ffw_norm.weight", "blk.0.post_attention_norm.weight"}},
      {"tiny-granite", "granite", {"blk.1.attn_output.weight"}},
      {"tiny-openelm", "openelm", {"blk.2.attn_q_norm.weight", "blk.1.attn_qkv.weight"}},
      {"tiny-mixtral", "llama", {"blk.0.ffn_gate_inp.weight", "blk.1.ffn_down_exps.weight"}},
  };
  for (const Case& c : cases) {
    auto f = synth(c.preset, "Q8_0");
    EXPECT_EQ(f->get_string("general.architecture"), c.arch) << c.preset;
    for (const auto& name : c.tensors) EXPECT_NE(f->find_tensor(name), nullptr) << c.preset << " " << name;
    const int64_t n_vocab = tensor(*f, "token_embd.weight").ne[1];
    EXPECT_EQ(static_cast<int64_t>(f->get_string_array("tokenizer.ggml.tokens").size()), n_vocab) << c.preset;
    if (f->get_string("tokenizer.ggml.model") == "gpt2") {
      EXPECT_GT(f->get_array("tokenizer.ggml.merges").size(), 100u) << c.preset;
    }
  }
  auto elm = synth("tiny-openelm", "F16");
  EXPECT_EQ(elm->get_int_array("openelm.attention.head_count"), (std::vector<int64_t>{2, 4, 4}));
  EXPECT_EQ(tensor(*elm, "blk.1.attn_qkv.weight").ne[1], (4 + 2 * 1) * 64);
  EXPECT_EQ(tensor(*elm, "blk.1.attn_qkv.weight").type, GgmlType::F16);
  auto moe = synth("tiny-mixtral", "Q4_0");
  EXPECT_EQ(tensor(*moe, "blk.0.ffn_up_exps.weight").ne[2], 8);
  EXPECT_EQ(moe->get_int("llama.expert_used_count"), 2);
}

TEST(Synth, SameBytesForAnyThreadCount) {
  const std::string a = tmp_path("a.gguf"), b = tmp_path("b.gguf");
  const std::string base = test::slm_bin() + " synth --preset tiny-llama3 --type Q4_K_M --seed 7 ";
  ASSERT_EQ(std::system((base + "-t 1 -o " + a + " 2>/dev/null").c_str()), 0);
  ASSERT_EQ(std::system((base + "-t 3 -o " + b + " 2>/dev/null").c_str()), 0);
  EXPECT_EQ(test::read_file(a), test::read_file(b));
  fs::remove(a);
  fs::remove(b);
}

TEST(Synth, RefusesUnknownPresetAndType) {
  const std::string out = tmp_path("bad.gguf");
  EXPECT_NE(std::system((test::slm_bin() + " synth --preset nope -o " + out + " 2>/dev/null").c_str()), 0);
  EXPECT_NE(std::system((test::slm_bin() + " synth --preset tiny-llama --type Q9 -o " + out + " 2>/dev/null").c_str()), 0);
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace slm

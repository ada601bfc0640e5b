// Loading: the config each family's switches come out as, and bad files (made by editing a
// fixture with GgufWriter) failing with an error that names the key or tensor at fault.
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <unistd.h>

#include "common/shared.h"
#include "gguf/gguf.h"
#include "kernels/thread_pool.h"
#include "model/config.h"
#include "slm/error.h"
#include "slm/model.h"

namespace slm {
namespace {

ModelConfig config_of(const std::string& fixture) {
  return Model::load(test::shared("fixtures/" + fixture + ".gguf"))->config();
}

TEST(Config, FamilySwitches) {
  ModelConfig llama = config_of("llama-f32");
  EXPECT_EQ(llama.rope_mode, RopeMode::Norm);
  EXPECT_TRUE(llama.has_rope_freqs);
  EXPECT_FALSE(llama.tied_output);
  EXPECT_EQ(llama.layers[0].n_head_kv, 2);
  EXPECT_FLOAT_EQ(llama.layers[0].rope_base, 500000.0f);

  EXPECT_TRUE(config_of("llama-tied-f32").tied_output);

  ModelConfig mixtral = config_of("mixtral-f32");
  EXPECT_EQ(mixtral.n_expert, 4);
  EXPECT_EQ(mixtral.n_expert_used, 2);

  ModelConfig phi3 = config_of("phi3-f32");
  EXPECT_EQ(phi3.rope_mode, RopeMode::Neox);
  EXPECT_TRUE(phi3.fused_qkv && phi3.fused_gate_up && phi3.has_longrope);
  EXPECT_EQ(phi3.rope_orig_ctx, 256);
  EXPECT_NEAR(phi3.rope_attn_factor, 1.118, 1e-3);

  ModelConfig gemma = config_of("gemma-f32");
  EXPECT_EQ(gemma.head_dim_k, 128);  // from key_length, not n_embd / n_head
  EXPECT_FLOAT_EQ(gemma.embd_scale, 16.0f);
  EXPECT_EQ(gemma.activation, FfnActivation::GeLU);
  EXPECT_TRUE(gemma.tied_output);

  ModelConfig g2 = config_of("gemma2-f32");
  EXPECT_FLOAT_EQ(g2.attn_softcap, 50.0f);
  EXPECT_FLOAT_EQ(g2.final_softcap, 30.0f);
  EXPECT_EQ(g2.sliding_window, 8);
  for (int il = 0; il < 4; ++il) EXPECT_EQ(g2.layers[il].sliding, il % 2 == 0) << il;
  EXPECT_TRUE(g2.post_norms);
  EXPECT_NE(g2.describe().find("softcap attn 50 / final 30"), std::string::npos) << g2.describe();
  EXPECT_NE(g2.describe().find("sliding window 8 on layers 0 2"), std::string::npos) << g2.describe();

  ModelConfig g3 = config_of("gemma3-f32");
  for (int il = 0; il < 6; ++il) {
    EXPECT_EQ(g3.layers[il].sliding, il != 5) << il;
    EXPECT_FLOAT_EQ(g3.layers[il].rope_base, il == 5 ? 1e6f : 1e4f) << il;
  }
  EXPECT_TRUE(g3.qk_norm);
  EXPECT_EQ(g3.attn_softcap, 0.0f);

  ModelConfig elm = config_of("openelm-f32");
  std::vector<int> heads, kv, ff;
  for (const LayerConfig& L : elm.layers) {
    heads.push_back(L.n_head);
    kv.push_back(L.n_head_kv);
    ff.push_back(L.n_ff);
  }
  EXPECT_EQ(heads, (std::vector<int>{2, 4, 4}));
  EXPECT_EQ(kv, (std::vector<int>{1, 1, 2}));
  EXPECT_EQ(ff, (std::vector<int>{256, 512, 256}));
  EXPECT_TRUE(elm.fused_qkv && elm.qk_norm && elm.tied_output);

  ModelConfig granite = config_of("granitemoe-f32");
  EXPECT_FLOAT_EQ(granite.embd_scale, 12.0f);
  EXPECT_FLOAT_EQ(granite.residual_scale, 0.22f);
  EXPECT_FLOAT_EQ(granite.attn_scale, 1.0f / 128);
  EXPECT_FLOAT_EQ(granite.logit_scale, 8.0f);
  EXPECT_EQ(granite.n_expert, 4);
}

TEST(Config, KvCacheWidthsPerLayer) {
  auto m = Model::load(test::shared("fixtures/openelm-f32.gguf"));
  KvCache f32(m->config(), 16), f16(m->config(), 16, GgmlType::F16);
  EXPECT_EQ(f32.k_width(0), 64);
  EXPECT_EQ(f32.k_width(2), 128);
  EXPECT_EQ(f32.bytes(), size_t(16) * (64 + 64 + 128) * 2 * 4);
  EXPECT_EQ(f16.bytes() * 2, f32.bytes());
  // Q8_0 rows: 34 bytes per 32 values; types a cache cannot hold, and quantized heads that
  // are not whole blocks, are refused.
  EXPECT_EQ(KvCache(m->config(), 16, GgmlType::Q8_0).bytes(), size_t(16) * (64 + 64 + 128) * 2 / 32 * 34);
  EXPECT_THROW(KvCache(m->config(), 16, GgmlType::Q4_K), Error);
  auto small = Model::load(test::shared("models/stories260K.gguf"));  // head size 8
  EXPECT_THROW(KvCache(small->config(), 16, GgmlType::Q8_0), Error);
  EXPECT_NO_THROW(KvCache(small->config(), 16, GgmlType::F16));
}

// Writes a copy of the llama-f32 fixture after `edit` changes its metadata and tensors.
struct Edited {
  std::string path;
  explicit Edited(const std::function<void(std::vector<std::pair<std::string, GgufValue>>&,
                                           std::vector<GgufTensor>&)>& edit,
                  const std::string& fixture = "llama-f32") {
    auto src = GgufFile::open(test::shared("fixtures/" + fixture + ".gguf"));
    auto kv = src->metadata();
    std::vector<GgufTensor> tensors = src->tensors();
    edit(kv, tensors);
    GgufWriter w;
    for (auto& [k, v] : kv) w.set(k, v);
    for (const GgufTensor& t : tensors)
      w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne, t.ne + std::max<uint32_t>(1, t.n_dims)), t.data,
                   t.nbytes);
    path = ::testing::TempDir() + "/slm_edited_" + std::to_string(::getpid()) + ".gguf";
    w.write(path);
  }
  ~Edited() { std::remove(path.c_str()); }
};

void expect_load_error(const Edited& e, const std::vector<std::string>& needles) {
  try {
    Model::load(e.path);
    FAIL() << "loaded without error";
  } catch (const Error& err) {
    std::string m = err.what();
    for (const std::string& n : needles) EXPECT_NE(m.find(n), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << "one line: " << m;
  }
}

void set_key(std::vector<std::pair<std::string, GgufValue>>& kv, const std::string& key, GgufValue v) {
  for (auto& [k, val] : kv)
    if (k == key) val = v;
}

TEST(Load, UnsupportedArchitectureIsNamed) {
  Edited e([](auto& kv, auto&) { set_key(kv, "general.architecture", GgufValue::make_string("mamba")); });
  expect_load_error(e, {"unsupported architecture", "mamba"});
}

TEST(Load, MissingKeyIsNamed) {
  Edited e([](auto& kv, auto&) {
    std::erase_if(kv, [](const auto& p) { return p.first == "llama.embedding_length"; });
  });
  expect_load_error(e, {"llama.embedding_length"});
}

TEST(Load, MissingTensorIsNamed) {
  Edited e([](auto&, auto& ts) { std::erase_if(ts, [](const GgufTensor& t) { return t.name == "blk.1.ffn_up.weight"; }); });
  expect_load_error(e, {"missing tensor blk.1.ffn_up.weight", "[256, 256]"});
}

TEST(Load, MisshapedTensorNamesBothShapes) {
  Edited e([](auto&, auto& ts) {
    const GgufTensor* k = nullptr;
    for (const GgufTensor& t : ts)
      if (t.name == "blk.0.attn_k.weight") k = &t;
    for (GgufTensor& t : ts)
      if (t.name == "blk.0.attn_q.weight") {  // K's data and shape under Q's name
        std::string name = t.name;
        t = *k;
        t.name = name;
      }
  });
  expect_load_error(e, {"blk.0.attn_q.weight", "[256, 128]", "expected [256, 256]"});
}

TEST(Load, HeadCountsThatDoNotDivideAreRejected) {
  Edited e([](auto& kv, auto&) { set_key(kv, "llama.attention.head_count_kv", GgufValue::make_u32(3)); });
  expect_load_error(e, {"head_count_kv"});
}

// LongRoPE factor choice: long when the context, padded up to a multiple of 256 as the
// reference pads it, exceeds original_context_length (here set to 300).
TEST(Load, LongRopeChoiceUsesPaddedContext) {
  Edited e([](auto& kv, auto&) {
    set_key(kv, "phi3.rope.scaling.original_context_length", GgufValue::make_u32(300));
  }, "phi3-f32");
  auto m = Model::load(e.path);
  ThreadPool pool(1);
  std::vector<int32_t> ids = {1, 20, 30, 40, 50, 60, 70, 80};
  auto eval = [&](int n_ctx) {
    KvCache kv(m->config(), n_ctx);
    std::vector<float> out(m->n_vocab());
    m->forward(pool, kv, ids.data(), int(ids.size()), 0, out.data(), false);
    return out;
  };
  std::vector<float> short_ctx = eval(256), padded_long = eval(290), long_ctx = eval(512);
  EXPECT_EQ(padded_long, long_ctx);  // 290 pads to 512 > 300
  EXPECT_NE(short_ctx, long_ctx);    // 256 stays 256 <= 300: the short factors
}

}  // namespace
}  // namespace slm

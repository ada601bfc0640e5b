// Merging: for every family's F32 fixture, a random adapter on every matrix slm adapts
// (attention, FFN, router, experts, shared experts, output, the token_embd pair) gives the
// same logits applied on the fly as folded into the weights by merge_lora — two independent
// computations of W + s·B·A. Also: the merged file keeps every other tensor byte for byte.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <unistd.h>

#include "common/shared.h"
#include "gguf/gguf.h"
#include "kernels/thread_pool.h"
#include "model/config.h"
#include "model/lora.h"
#include "slm/adapter.h"
#include "slm/error.h"
#include "slm/model.h"

namespace slm {
namespace {

// Every adaptable matrix of the base with a random pair of the given rank.
std::vector<LoraPairData> random_pairs(const Model& base, int rank, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, 0.15f);
  std::vector<std::string> names = {"token_embd.weight", "output.weight"};
  for (int il = 0; il < base.config().n_layer; ++il)
    for (int t = 0; t < int(LoraTarget::count); ++t)
      names.push_back("blk." + std::to_string(il) + "." + lora_target_name(LoraTarget(t)) + ".weight");
  std::vector<LoraPairData> pairs;
  for (const std::string& name : names) {
    const GgufTensor* w = base.file().find_tensor(name);
    if (!w) continue;
    LoraPairData p;
    p.target = name;
    if (name == "token_embd.weight") {
      p.a_shape = {rank, w->ne[1]};
      p.b_shape = {rank, w->ne[0]};
    } else if (w->n_dims == 3) {
      p.a_shape = {w->ne[0], rank, w->ne[2]};
      p.b_shape = {rank, w->ne[1], w->ne[2]};
    } else {
      p.a_shape = {w->ne[0], rank};
      p.b_shape = {rank, w->ne[1]};
    }
    auto count = [](const std::vector<int64_t>& s) {
      int64_t n = 1;
      for (int64_t d : s) n *= d;
      return size_t(n);
    };
    p.a.resize(count(p.a_shape));
    p.b.resize(count(p.b_shape));
    for (float& x : p.a) x = dist(rng);
    for (float& x : p.b) x = dist(rng);
    pairs.push_back(std::move(p));
  }
  return pairs;
}

std::vector<float> eval(const Model& model, const std::vector<int32_t>& ids, const LoraSet* set) {
  ThreadPool pool(2);
  KvCache cache(model.config(), 64);
  std::vector<float> out(size_t(model.n_vocab()) * ids.size());
  model.forward(pool, cache, ids.data(), int(ids.size()), 0, out.data(), true, set);
  return out;
}

class LoraMerge : public ::testing::TestWithParam<std::string> {};

TEST_P(LoraMerge, OnTheFlyEqualsMergedWeights) {
  const std::string base_path = test::shared("fixtures/" + GetParam() + ".gguf");
  std::unique_ptr<Model> base = Model::load(base_path);
  const std::string tmp = "/tmp/slm_merge_" + std::to_string(getpid()) + "_" + GetParam();
  const std::vector<LoraPairData> pairs = random_pairs(*base, 4, 7);
  write_lora_adapter(tmp + ".adapter.gguf", base->config().arch, 8.0f, pairs);
  auto adapter = LoraAdapter::load(tmp + ".adapter.gguf", *base);
  EXPECT_EQ(adapter->targets().size(), pairs.size());
  LoraSet set{{{adapter.get(), 0.75f}}};

  LoraMergeOptions mo;
  mo.n_threads = 2;
  merge_lora(*base, set, tmp + ".merged.gguf", mo);
  std::unique_ptr<Model> merged = Model::load(tmp + ".merged.gguf");

  std::vector<int32_t> ids;
  std::mt19937 rng(3);
  for (int i = 0; i < 16; ++i) ids.push_back(int32_t(rng() % uint32_t(base->n_vocab())));
  const std::vector<float> plain = eval(*base, ids, nullptr);
  const std::vector<float> fly = eval(*base, ids, &set);
  const std::vector<float> folded = eval(*merged, ids, nullptr);
  double max_abs = 0, max_logit = 0, effect = 0;
  for (size_t i = 0; i < fly.size(); ++i) {
    max_abs = std::max(max_abs, double(std::fabs(fly[i] - folded[i])));
    max_logit = std::max(max_logit, double(std::fabs(fly[i])));
    effect = std::max(effect, double(std::fabs(fly[i] - plain[i])));
  }
  std::printf("[%s] %zu pairs: max|fly - merged| = %.3g, max|logit| = %.3g, adapter effect %.3g\n", GetParam().c_str(),
              pairs.size(), max_abs, max_logit, effect);
  EXPECT_GT(effect, 0.05 * max_logit) << "the adapter should move the logits";
  // Gemma's GELU goes through llama.cpp's f16 table, which turns rounding-level differences of
  // its input into steps of the table (the same reason the base fixtures allow 5x more there).
  const bool gemma = base->config().arch.rfind("gemma", 0) == 0;
  EXPECT_LE(max_abs, (gemma ? 1e-4 : 1e-5) * std::max(1.0, max_logit));

  // Tensors without an adapter are copied byte for byte; adapted ones changed.
  auto in = GgufFile::open(base_path), out = GgufFile::open(tmp + ".merged.gguf");
  ASSERT_EQ(in->tensors().size(), out->tensors().size());
  for (const GgufTensor& t : in->tensors()) {
    const GgufTensor* u = out->find_tensor(t.name);
    ASSERT_TRUE(u) << t.name;
    const bool adapted = std::any_of(pairs.begin(), pairs.end(), [&](const LoraPairData& p) { return p.target == t.name; });
    ASSERT_EQ(u->nbytes, t.nbytes) << t.name;
    EXPECT_EQ(std::memcmp(u->data, t.data, t.nbytes) != 0, adapted) << t.name;
  }
  std::remove((tmp + ".adapter.gguf").c_str());
  std::remove((tmp + ".merged.gguf").c_str());
}

INSTANTIATE_TEST_SUITE_P(Shared, LoraMerge, ::testing::ValuesIn(test::f32_fixtures()), test::ParamName());

// A quantized base merged to its own type stays that type; --type F16 gives export-lora's F16.
TEST(LoraMergeTypes, KeepsOrForcesTheType) {
  std::unique_ptr<Model> base = Model::load(test::shared("fixtures/llama-q8_0.gguf"));
  auto adapter = LoraAdapter::load(test::shared("fixtures/lora/llama-q8_0-lora-all.adapter0.gguf"), *base);
  LoraSet set{{{adapter.get(), 1.0f}}};
  const std::string tmp = "/tmp/slm_merge_types_" + std::to_string(getpid()) + ".gguf";
  for (const std::string type : {"", "F16"}) {
    LoraMergeOptions mo;
    mo.out_type = type;
    merge_lora(*base, set, tmp, mo);
    auto out = GgufFile::open(tmp);
    const GgufTensor* q = out->find_tensor("blk.0.attn_q.weight");
    ASSERT_TRUE(q);
    EXPECT_EQ(type_name(q->type), type.empty() ? std::string("Q8_0") : type);
    EXPECT_EQ(type_name(out->find_tensor("blk.0.attn_norm.weight")->type), std::string("F32"));
  }
  LoraMergeOptions bad;
  bad.out_type = "Q4_K_M";
  EXPECT_THROW(merge_lora(*base, set, tmp, bad), Error);
  std::remove(tmp.c_str());
}

}  // namespace
}  // namespace slm

// LoRA adapters at inference: every adapter fixture in ../shared/fixtures/lora gives
// llama.cpp's logits and greedy ids at the base type's tolerance; sequences with different
// adapters in one batch give what each gives alone; bad adapters fail naming what is wrong.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "common/shared.h"
#include "gguf/gguf.h"
#include "kernels/thread_pool.h"
#include "model/config.h"
#include "model/reference_check.h"
#include "slm/adapter.h"
#include "slm/error.h"
#include "slm/model.h"

namespace slm {
namespace {

using nlohmann::json;

std::vector<std::string> lora_fixture_names() {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(test::shared("fixtures/lora"))) {
    const std::string f = e.path().filename().string();
    if (f.ends_with(".json") && f != "summary.json") names.push_back(f.substr(0, f.size() - 5));
  }
  std::sort(names.begin(), names.end());
  return names;
}

struct LoraFixture {
  json j;
  std::unique_ptr<Model> model;
  std::vector<std::unique_ptr<LoraAdapter>> adapters;
  LoraSet set;
  explicit LoraFixture(const std::string& name) {
    j = json::parse(test::read_file(test::shared("fixtures/lora/" + name + ".json")));
    model = Model::load(test::shared("fixtures/" + j["base_file"].get<std::string>()));
    for (const json& a : j["adapters"]) {
      adapters.push_back(LoraAdapter::load(test::shared("fixtures/lora/" + a["file"].get<std::string>()), *model));
      set.adapters.push_back({adapters.back().get(), a["scale"].get<float>()});
    }
  }
  std::string type() const { return j["type"]; }
  bool gemma() const { return j["arch"].get<std::string>().rfind("gemma", 0) == 0; }
  int n_ctx() const { return j["n_ctx"]; }
  std::vector<int32_t> ids() const { return j["input_ids"].get<std::vector<int32_t>>(); }
  float logits_std() const { return j["stats"]["logits_std"]; }
};

class LoraFixtureTest : public ::testing::TestWithParam<std::string> {};

TEST_P(LoraFixtureTest, LogitsAndGreedyMatchLlamaCpp) {
  LoraFixture fx(GetParam());
  const std::vector<float> ref = test::read_f32(test::shared("fixtures/lora/" + GetParam() + ".logits.f32"));
  const std::vector<int32_t> ids = fx.ids();
  const int n = int(ids.size()), V = fx.model->n_vocab();
  ASSERT_EQ(ref.size(), size_t(n) * V);

  // What the file says about each adapter is what was loaded.
  for (size_t k = 0; k < fx.adapters.size(); ++k) {
    const json& a = fx.j["adapters"][k];
    EXPECT_EQ(fx.adapters[k]->max_rank(), a["rank"].get<int>());
    EXPECT_FLOAT_EQ(fx.adapters[k]->alpha(), a["alpha"].get<float>());
    EXPECT_EQ(fx.adapters[k]->targets(), a["tensors"].get<std::vector<std::string>>());
  }

  ThreadPool pool(2);
  KvCache cache(fx.model->config(), fx.n_ctx());
  std::vector<float> got(size_t(n) * V);
  fx.model->forward(pool, cache, ids.data(), n, 0, got.data(), true, &fx.set);
  const double max_abs = test::expect_logits_match(fx.type(), fx.gemma(), {}, got, ref, n, V, fx.logits_std());
  std::printf("[%s] max|d| = %.3g (%.3g std)\n", GetParam().c_str(), max_abs, max_abs / fx.logits_std());
  test::expect_greedy_matches(fx.j["greedy"], fx.type(), max_abs, *fx.model, fx.n_ctx(), &fx.set);
}

INSTANTIATE_TEST_SUITE_P(Shared, LoraFixtureTest, ::testing::ValuesIn(lora_fixture_names()),
                         test::ParamName());

// Two sequences in one batch — one with the adapter, one without, one with it at another
// scale — give exactly what each gives in a pass of its own.
TEST(Lora, SequencesWithDifferentAdaptersShareABatch) {
  LoraFixture fx("llama-f32-lora-all");
  const Model& model = *fx.model;
  const int V = model.n_vocab();
  std::vector<int32_t> ids = fx.ids();
  ids.resize(12);
  LoraSet half{{{fx.adapters[0].get(), 0.5f}}};
  const LoraSet* sets[3] = {&fx.set, nullptr, &half};
  ThreadPool pool(2);

  std::vector<std::vector<float>> alone(3, std::vector<float>(size_t(V) * ids.size()));
  for (int s = 0; s < 3; ++s) {
    KvCache cache(model.config(), 64);
    model.forward(pool, cache, ids.data(), int(ids.size()), 0, alone[s].data(), true, sets[s]);
  }
  std::vector<std::unique_ptr<KvCache>> caches;
  std::vector<std::vector<float>> together(3, std::vector<float>(size_t(V) * ids.size()));
  std::vector<SequenceBatch> batch;
  for (int s = 0; s < 3; ++s) {
    caches.push_back(std::make_unique<KvCache>(model.config(), 64));
    batch.push_back({caches.back().get(), ids.data(), int(ids.size()), 0, together[s].data(), true, sets[s]});
  }
  model.forward(pool, batch);
  for (int s = 0; s < 3; ++s) EXPECT_EQ(alone[s], together[s]) << "sequence " << s;
  EXPECT_NE(alone[0], alone[1]);  // the adapter does change the logits
  EXPECT_NE(alone[0], alone[2]);
}

// An adapter at user scale 0 is the base model; scale s on one file equals two copies of it
// at s/2 (the terms add).
TEST(Lora, ScalesAddUp) {
  LoraFixture fx("llama-f32-lora-attn");
  const Model& model = *fx.model;
  const int V = model.n_vocab();
  std::vector<int32_t> ids = fx.ids();
  ids.resize(8);
  ThreadPool pool(1);
  auto eval = [&](const LoraSet* set) {
    KvCache cache(model.config(), 32);
    std::vector<float> out(size_t(V) * ids.size());
    model.forward(pool, cache, ids.data(), int(ids.size()), 0, out.data(), true, set);
    return out;
  };
  const LoraAdapter* a = fx.adapters[0].get();
  LoraSet zero{{{a, 0.0f}}}, one{{{a, 1.0f}}}, halves{{{a, 0.5f}, {a, 0.5f}}};
  EXPECT_EQ(eval(&zero), eval(nullptr));
  std::vector<float> x = eval(&one), y = eval(&halves);
  double max_abs = 0;
  for (size_t i = 0; i < x.size(); ++i) max_abs = std::max(max_abs, double(std::fabs(x[i] - y[i])));
  EXPECT_LT(max_abs, 1e-4);
  EXPECT_NE(x, eval(nullptr));
}

// Bad adapters, written by editing a fixture adapter with GgufWriter.
class BadAdapter : public ::testing::Test {
 protected:
  void SetUp() override {
    base = Model::load(test::shared("fixtures/llama-f32.gguf"));
    good = GgufFile::open(test::shared("fixtures/lora/llama-f32-lora-attn.adapter0.gguf"));
    path = "/tmp/slm_bad_adapter_" + std::to_string(getpid()) + ".gguf";
  }
  void TearDown() override { std::remove(path.c_str()); }

  // The good adapter with `edit` applied to its metadata and tensor list.
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> ne;
    const uint8_t* data;
    size_t nbytes;
  };
  std::string write(const std::function<void(GgufWriter&, std::vector<Tensor>&)>& edit) {
    GgufWriter w;
    for (const auto& [k, v] : good->metadata()) w.set(k, v);
    std::vector<Tensor> tensors;
    for (const GgufTensor& t : good->tensors())
      tensors.push_back({t.name, t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims), t.data, t.nbytes});
    edit(w, tensors);
    for (const Tensor& t : tensors) w.add_tensor(t.name, t.type, t.ne, t.data, t.nbytes);
    w.write(path);
    return path;
  }
  std::string error_of(const std::string& file) {
    try {
      LoraAdapter::load(file, *base);
    } catch (const Error& e) {
      return e.what();
    }
    return "(loaded)";
  }
  std::unique_ptr<Model> base;
  std::unique_ptr<GgufFile> good;
  std::string path;
};

TEST_F(BadAdapter, WrongArchitecture) {
  std::string e = error_of(write([](GgufWriter& w, auto&) { w.set("general.architecture", GgufValue::make_string("gemma")); }));
  EXPECT_NE(e.find("'gemma'"), std::string::npos) << e;
  EXPECT_NE(e.find("'llama'"), std::string::npos) << e;
  EXPECT_NE(e.find(path), std::string::npos) << e;
}

TEST_F(BadAdapter, NotAnAdapter) {
  EXPECT_NE(error_of(test::shared("fixtures/llama-f32.gguf")).find("not an adapter"), std::string::npos);
  std::string e = error_of(write([](GgufWriter& w, auto&) { w.set("adapter.type", GgufValue::make_string("control_vector")); }));
  EXPECT_NE(e.find("control_vector"), std::string::npos) << e;
}

TEST_F(BadAdapter, IncompletePair) {
  std::string e = error_of(write([](GgufWriter&, std::vector<Tensor>& t) {
    t.erase(std::find_if(t.begin(), t.end(), [](const Tensor& x) { return x.name == "blk.1.attn_k.weight.lora_b"; }));
  }));
  EXPECT_NE(e.find("blk.1.attn_k.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("no lora_b"), std::string::npos) << e;
}

TEST_F(BadAdapter, TargetMissingFromBase) {
  std::string e = error_of(write([](GgufWriter&, std::vector<Tensor>& t) {
    for (Tensor& x : t)
      if (x.name.rfind("blk.0.attn_q.", 0) == 0) x.name.replace(0, 12, "blk.0.attn_qkv");
  }));
  EXPECT_NE(e.find("blk.0.attn_qkv.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("does not have"), std::string::npos) << e;
}

TEST_F(BadAdapter, MisshapedPairNamesAllThreeShapes) {
  // lora_a of attn_q given to attn_k: n_in matches, but the pair's rank/shape checks see it.
  std::string e = error_of(write([](GgufWriter&, std::vector<Tensor>& t) {
    const Tensor* v = nullptr;
    for (const Tensor& x : t)
      if (x.name == "blk.0.attn_v.weight.lora_b") v = &x;
    for (Tensor& x : t)
      if (x.name == "blk.0.attn_q.weight.lora_b") {
        x.ne = v->ne;
        x.data = v->data;
        x.nbytes = v->nbytes;
      }
  }));
  EXPECT_NE(e.find("blk.0.attn_q.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("lora_a ["), std::string::npos) << e;
  EXPECT_NE(e.find("lora_b ["), std::string::npos) << e;
}

TEST_F(BadAdapter, StrayTensor) {
  std::string e = error_of(write([](GgufWriter&, std::vector<Tensor>& t) { t[0].name = "blk.0.attn_q.weight"; }));
  EXPECT_NE(e.find("neither a .lora_a nor a .lora_b"), std::string::npos) << e;
}

}  // namespace
}  // namespace slm

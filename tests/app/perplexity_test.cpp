// slm perplexity against llama-perplexity's figures in ../shared/perplexity/ref.json (PPL within
// 0.1% for F32 files and 0.5% for quantized ones, mean KLD within 10% or 2e-4, same-top within
// a point), and the base log-probabilities file: written by slm and read back, it gives the
// same KLD as the base model evaluated in the same run.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "app/perplexity.h"
#include "common/shared.h"
#include "kernels/thread_pool.h"
#include "slm/error.h"
#include "slm/model.h"
#include "slm/tokenizer.h"

using namespace slm;

TEST(Perplexity, MatchesLlamaPerplexity) {
  const nlohmann::json ref = nlohmann::json::parse(test::read_file(test::shared("perplexity/ref.json")));
  ThreadPool pool(2);
  for (const auto& c : ref["cases"]) {
    const std::string model_path = c["model"];
    auto model = Model::load(test::shared(model_path));
    auto tok = Tokenizer::from_gguf(model->file());
    PerplexityOptions o;
    o.n_ctx = c["ctx"];
    std::unique_ptr<Model> base;
    if (c.contains("kl_base")) {
      base = Model::load(test::shared(c["kl_base"].get<std::string>()));
      o.kl_base = base.get();
    }
    const PerplexityResult r = perplexity(*model, *tok, pool, test::read_file(test::shared(c["text"].get<std::string>())), o);
    const bool f32 = model_path.find("q") == std::string::npos || model_path.find("stories") != std::string::npos;
    const double ppl = c["ppl"];
    EXPECT_NEAR(r.ppl, ppl, (f32 ? 1e-3 : 5e-3) * ppl) << model_path;
    if (c.contains("ppl_stderr")) EXPECT_NEAR(r.ppl_stderr, c["ppl_stderr"].get<double>(), 0.01 * c["ppl_stderr"].get<double>());
    if (c.contains("kld_mean")) {
      const double kld = c["kld_mean"];
      EXPECT_NEAR(r.kld_mean, kld, std::max(0.1 * kld, 2e-4)) << model_path;
      EXPECT_NEAR(r.same_top_p, c["same_top_p"].get<double>(), 1.0) << model_path;
      EXPECT_NEAR(r.kld_median, c["kld_median"].get<double>(), std::max(0.1 * c["kld_median"].get<double>(), 2e-4));
      EXPECT_NEAR(r.kld_p99, c["kld_p99"].get<double>(), std::max(0.1 * c["kld_p99"].get<double>(), 2e-4));
    }
    std::printf("%s on %s, c=%d: PPL %.4f (llama-perplexity %.4f)%s\n", model_path.c_str(),
                c["text"].get<std::string>().c_str(), o.n_ctx, r.ppl, ppl,
                r.has_kld ? (" KLD " + std::to_string(r.kld_mean) + " same-top " + std::to_string(r.same_top_p)).c_str() : "");
  }
}

TEST(Perplexity, BaseLogitsFileRoundTrips) {
  ThreadPool pool(2);
  auto base = Model::load(test::shared("fixtures/llama-f32.gguf"));
  auto model = Model::load(test::shared("fixtures/llama-q4_k_m.gguf"));
  auto tok = Tokenizer::from_gguf(model->file());
  const std::string text = test::read_file(test::shared("perplexity/wap-60k.txt"));
  const std::string file = "/tmp/slm_kld_" + std::to_string(getpid()) + ".bin";
  PerplexityOptions save;
  save.n_ctx = 128;
  save.max_chunks = 20;
  save.save_logits_file = file;
  const PerplexityResult plain = perplexity(*base, *tok, pool, text, save);
  PerplexityOptions in_run;
  in_run.n_ctx = 128;
  in_run.max_chunks = 20;
  in_run.kl_base = base.get();
  const PerplexityResult a = perplexity(*model, *tok, pool, text, in_run);
  PerplexityOptions from_file;
  from_file.kl_base_file = file;
  const PerplexityResult b = perplexity(*model, *tok, pool, "", from_file);
  EXPECT_EQ(b.n_ctx, 128);
  EXPECT_EQ(b.n_chunks, 20);
  EXPECT_EQ(a.kld_mean, b.kld_mean);
  EXPECT_EQ(a.same_top_p, b.same_top_p);
  EXPECT_EQ(a.ppl, b.ppl);
  EXPECT_GT(a.kld_mean, 0.0);
  EXPECT_NEAR(a.base_ppl, plain.ppl, 1e-3 * plain.ppl);  // the stored base reproduces the base's PPL
  // A file made for another vocabulary, or truncated, is refused.
  { FILE* f = std::fopen(file.c_str(), "r+b"); std::fseek(f, 12, SEEK_SET); int32_t v = 7; std::fwrite(&v, 4, 1, f); std::fclose(f); }
  EXPECT_THROW(perplexity(*model, *tok, pool, "", from_file), Error);
  std::remove(file.c_str());
}

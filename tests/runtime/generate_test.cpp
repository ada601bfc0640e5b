// The whole path on stories260K: tokenizer -> Session -> Sampler -> streamed text, against
// llama.cpp's greedy continuations; and `slm run` / `slm logits` on good and bad input.
#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "common/shared.h"
#include "gguf/gguf.h"
#include "kernels/thread_pool.h"
#include "slm/model.h"
#include "slm/sampler.h"
#include "slm/session.h"
#include "slm/tokenizer.h"

namespace slm {
namespace {

using nlohmann::json;

TEST(Generate, Stories260KGreedyTextMatchesReference) {
  json j = json::parse(test::read_file(test::shared("models/stories260K.greedy.json")));
  auto model = Model::load(test::shared("models/stories260K.gguf"));
  auto tok = Tokenizer::from_gguf(model->file());
  ThreadPool pool(2);
  SamplerParams sp;
  sp.temp = 0;
  for (const json& pr : j["prompts"]) {
    std::vector<int32_t> ids = tok->encode(pr["prompt"].get<std::string>(), true, false);
    EXPECT_EQ(ids, pr["prompt_ids"].get<std::vector<int32_t>>()) << pr["prompt"];
    Session s(*model, pool, j["n_ctx"].get<int>());
    Sampler sampler(sp);
    GenerateParams gp;
    gp.n_predict = j["n_predict"];
    std::string streamed;
    GenerateResult r = generate(s, sampler, *tok, ids, gp, [&](const std::string& t) { streamed += t; });
    EXPECT_EQ(r.tokens, pr["output_ids"].get<std::vector<int32_t>>()) << pr["prompt"];
    // output_text is a stand-alone decode (its first piece loses SentencePiece's space); a
    // continuation keeps it, so prompt + streamed text is the whole story.
    EXPECT_EQ(tok->decode(r.tokens), pr["output_text"].get<std::string>()) << pr["prompt"];
    const std::string first = tok->token_to_piece(r.tokens.at(0));
    EXPECT_EQ(streamed, (first[0] == ' ' ? " " : "") + pr["output_text"].get<std::string>()) << pr["prompt"];
    EXPECT_EQ(r.stop_reason, "length");
  }
}

TEST(Generate, StopStringEndsGenerationAndIsNotShown) {
  auto model = Model::load(test::shared("models/stories260K.gguf"));
  auto tok = Tokenizer::from_gguf(model->file());
  ThreadPool pool(1);
  SamplerParams sp;
  sp.temp = 0;
  Session s(*model, pool, 128);
  Sampler sampler(sp);
  GenerateParams gp;
  gp.n_predict = 48;
  gp.stops = {"Lily."};
  std::string streamed;
  GenerateResult r = generate(s, sampler, *tok, tok->encode("Once upon a time", true, false), gp,
                              [&](const std::string& t) { streamed += t; });
  EXPECT_EQ(r.stop_reason, "stop");
  EXPECT_EQ(streamed, ", there was a little girl named ");
}

std::string cmd(const std::string& args) {
  return test::slm_bin() + " " + args + " 2>&1";
}

TEST(Cli, RunGreedyPrintsReferenceText) {
  json j = json::parse(test::read_file(test::shared("models/stories260K.greedy.json")));
  const json& pr = j["prompts"].back();
  int rc = -1;
  std::string out = test::run_cmd(test::slm_bin() + " run -m " + test::shared("models/stories260K.gguf") + " -p '" +
                                      pr["prompt"].get<std::string>() + "' -n 48 --temp 0 --ctx 128 2>/dev/null", &rc);
  EXPECT_EQ(rc, 0);
  // The continuation with its first space kept: prompt + output reads as one text.
  auto tok = Tokenizer::from_gguf(Model::load(test::shared("models/stories260K.gguf"))->file());
  const std::string first = tok->token_to_piece(pr["output_ids"][0].get<int32_t>());
  EXPECT_EQ(out, (first[0] == ' ' ? " " : "") + pr["output_text"].get<std::string>() + "\n");
}

TEST(Cli, RunRejectsBadInputWithOneLineError) {
  const std::string m = " -m " + test::shared("models/stories260K.gguf");
  struct Case {
    std::string args, needle;
  } cases[] = {
      {"run" + m + " -p hi --temp -0.5", "temperature"},
      {"run" + m + " -p hi --top-p 1.5", "top-p"},
      {"run" + m + " -p 'Once upon a time there was' --ctx 4", "longer than the context"},
      {"run -m /nonexistent.gguf -p hi", "/nonexistent.gguf"},
      {"run" + m + " -p hi --kv-type q4", "kv-type"},
      {"logits" + m + " --ids '1 2 x' -o /dev/null", "'x'"},
      {"logits" + m + " --ids '1 2 3 4 5' --ctx 3 -o /dev/null", "context"},
      {"logits" + m + " --ids '1 600' -o /dev/null", "600"},
      {"logits -m " + test::shared("vocab/ggml-vocab-llama-spm.gguf") + " --ids '1 2' -o /dev/null", "tensor"},
      {"run" + m + " -p hi --grammar /nonexistent.gbnf", "/nonexistent.gbnf"},
      {"run" + m + " -p hi --json --json-schema " + test::shared("schemas/choice.json"), "one of"},
  };
  for (const Case& c : cases) {
    int rc = 0;
    std::string out = test::run_cmd(cmd(c.args), &rc);
    EXPECT_NE(rc, 0) << c.args;
    EXPECT_NE(out.find("error"), std::string::npos) << c.args << "\n" << out;
    EXPECT_NE(out.find(c.needle), std::string::npos) << c.args << "\n" << out;
    EXPECT_EQ(out.find("Segmentation"), std::string::npos) << c.args;
  }
  int rc = -1;
  std::string out = test::run_cmd(test::slm_bin() + " run" + m + " -p hi -n 0 2>/dev/null", &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(out, "");  // -n 0: no tokens, no text
}

TEST(Cli, LogitsWritesEveryPositionAndGreedyIds) {
  json fx = json::parse(test::read_file(test::shared("fixtures/llama-f32.json")));
  std::string ids;
  for (int id : fx["input_ids"]) ids += std::to_string(id) + " ";
  const std::string out_path = ::testing::TempDir() + "/slm_logits_test.f32";
  const std::string model = test::shared("fixtures/llama-f32.gguf");
  int rc = -1;
  test::run_cmd(cmd("logits -m " + model + " --ids '" + ids + "' -o " + out_path + " --ctx 128"), &rc);
  ASSERT_EQ(rc, 0);
  std::vector<float> got = test::read_f32(out_path), ref = test::read_f32(test::shared("fixtures/llama-f32.logits.f32"));
  ASSERT_EQ(got.size(), ref.size());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], ref[i], 1e-3) << i;
  std::remove(out_path.c_str());

  std::string greedy = test::run_cmd(test::slm_bin() + " logits -m " + model + " --ids '" + ids +
                                         "' --greedy 24 --prompt-ids 8 --ctx 128 2>/dev/null", &rc);
  ASSERT_EQ(rc, 0);
  std::string want;
  for (int id : fx["greedy"]["output_ids"]) want += (want.empty() ? "" : " ") + std::to_string(id);
  EXPECT_EQ(greedy, want + "\n");
}

// generate() with context_shift runs past the context (the shift keeps n_keep and halves the
// rest each time); without it, it stops there.
TEST(ContextShiftGenerate, GoesOnPastAFullContextOnlyWhenAsked) {
  auto model = Model::load(test::shared("models/stories260K.gguf"));
  auto tok = Tokenizer::from_gguf(model->file());
  ThreadPool pool(1);
  for (bool on : {false, true}) {
    Session s(*model, pool, 32);
    SamplerParams sp;
    sp.temp = 0;
    Sampler sampler(sp);
    GenerateParams gp;
    gp.n_predict = 100;
    gp.context_shift = on;
    gp.n_keep = 1;
    const GenerateResult r = generate(s, sampler, *tok, tok->encode("Once upon a time", true, false), gp,
                                      [](const std::string&) {});
    if (!on) {
      EXPECT_EQ(r.stop_reason, "context");
      EXPECT_EQ(s.n_past(), 32);
    } else {
      EXPECT_TRUE(r.stop_reason == "length" || r.stop_reason == "eog") << r.stop_reason;
      if (r.stop_reason == "length") {
        EXPECT_EQ(r.n_generated, 100);
      }
      EXPECT_GT(r.n_shifts, 0);
      EXPECT_LE(s.n_past(), 32);
    }
  }
}

}  // namespace
}  // namespace slm

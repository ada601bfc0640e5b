// Fine-tuning end to end on ../shared/finetune: stories that all carry one made-up fact. After
// training on stories260K the validation perplexity falls below 0.6x the base model's and
// the greedy continuations of facts.json state the fact (read back through the adapter file
// the run wrote, as any user of it would); chat data trains only on assistant tokens; a run
// stopped at a checkpoint and resumed writes the same adapter, bit for bit.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "app/chat_format.h"
#include "common/shared.h"
#include "gguf/gguf.h"
#include "kernels/thread_pool.h"
#include "slm/adapter.h"
#include "slm/error.h"
#include "slm/model.h"
#include "slm/sampler.h"
#include "slm/session.h"
#include "slm/tokenizer.h"
#include "slm/train.h"
#include "train/data.h"

namespace slm {
namespace {

std::string tmp(const std::string& name) { return "/tmp/slm_ft_" + std::to_string(getpid()) + "_" + name; }

FinetuneOptions stories_options(const std::string& data) {
  FinetuneOptions o;
  o.model_path = test::shared("models/stories260K.gguf");
  o.data_path = test::shared("finetune/" + data);
  o.n_ctx = 128;
  o.lr = 5e-3f;  // a 260K-parameter model: far above what real models want (2e-4)
  o.epochs = 2;
  o.n_threads = 2;
  return o;
}

// Greedy continuation of `prompt` (tokens after it, as text) with the adapter applied.
std::string continue_greedy(const Model& model, const LoraSet* lora, const std::string& prompt, int n) {
  auto tok = Tokenizer::from_gguf(model.file());
  ThreadPool pool(2);
  Session session(model, pool, 256);
  session.set_lora(lora);
  SamplerParams sp;
  sp.temp = 0;
  Sampler sampler(sp);
  GenerateParams gp;
  gp.n_predict = n;
  return generate(session, sampler, *tok, tok->encode(prompt, true, false), gp, [](const std::string&) {}).text;
}

// With every default but the number of epochs (rank 8, alpha 16, the learning rate by size,
// rows of 512 tokens), as a user would first try it.
TEST(Finetune, StoriesLearnTheFact) {
  FinetuneOptions o;
  o.model_path = test::shared("models/stories260K.gguf");
  o.data_path = test::shared("finetune/train.jsonl");
  o.epochs = 3;
  o.n_threads = 2;
  o.val_path = test::shared("finetune/val.jsonl");
  o.out_path = tmp("pimlo.gguf");
  const FinetuneResult r = finetune(o, nullptr);
  ASSERT_TRUE(r.has_val);
  const double base_ppl = std::exp(r.base_val_loss), ppl = std::exp(r.final_val_loss);
  std::printf("validation perplexity %.3f -> %.3f after %d steps at peak lr %.2g\n", base_ppl, ppl, r.steps, r.lr);
  EXPECT_NEAR(r.lr, 3.9e-3, 0.3e-3) << "the default for a 260K-parameter model";
  EXPECT_LE(ppl, 0.6 * base_ppl);

  auto model = Model::load(o.model_path);
  auto adapter = LoraAdapter::load(o.out_path, *model);
  LoraSet set{{{adapter.get(), 1.0f}}};
  const nlohmann::json facts = nlohmann::json::parse(test::read_file(test::shared("finetune/facts.json")));
  for (const auto& pair : facts["prompts"]) {
    const std::string prompt = pair[0], expected = pair[1];
    const std::string base = continue_greedy(*model, nullptr, prompt, 6);
    const std::string tuned = continue_greedy(*model, &set, prompt, 6);
    EXPECT_EQ(tuned.rfind(expected, 0), 0u) << prompt << " → '" << tuned << "' (base: '" << base << "')";
    EXPECT_NE(base.rfind(expected, 0), 0u) << "the base model already knew: " << base;
  }
  // What the run records about itself.
  auto f = GgufFile::open(o.out_path);
  EXPECT_EQ(f->get_string("training.base_file"), "stories260K.gguf");
  EXPECT_EQ(f->get_string("training.data_format"), "text");
  EXPECT_EQ(f->get_string("training.steps"), std::to_string(r.steps));
  EXPECT_FLOAT_EQ(f->get_f32("adapter.lora.alpha"), 16.0f);
  std::remove(o.out_path.c_str());
}

TEST(Finetune, ChatDataTrainsOnlyTheAssistantTurns) {
  auto model = Model::load(test::shared("models/stories260K.gguf"));
  auto tok = Tokenizer::from_gguf(model->file());
  ChatFormatter chat(model->file(), *tok, "", nullptr);
  const train::Dataset d = train::load_dataset(test::shared("finetune/chat-train.jsonl"), *tok, &chat);
  ASSERT_EQ(d.format, train::DataFormat::Messages);
  for (const train::Example& e : d.examples) {
    // The weighted predictions are exactly the tokens of the assistant's turn: the rendering
    // of the conversation through the user turn (with the generation prompt) carries none.
    const nlohmann::ordered_json user = nlohmann::ordered_json::array({{{"role", "user"}, {"content", "Who lives in the green house?"}}});
    const size_t prompt_len = chat.encode(user, true).size();
    for (size_t t = 0; t + 1 < prompt_len; ++t) ASSERT_EQ(e.weight[t], 0.0f) << "prompt position " << t;
    size_t weighted = 0;
    for (size_t t = prompt_len - 1; t + 1 < e.tokens.size(); ++t) weighted += e.weight[t] != 0.0f;
    EXPECT_GT(weighted, 5u);
  }
  FinetuneOptions o = stories_options("chat-train.jsonl");
  o.epochs = 4;
  o.out_path = tmp("chat.gguf");
  finetune(o, nullptr);
  auto adapter = LoraAdapter::load(o.out_path, *model);
  LoraSet set{{{adapter.get(), 1.0f}}};
  const nlohmann::ordered_json msgs = nlohmann::ordered_json::array({{{"role", "user"}, {"content", "Who lives in the green house?"}}});
  ThreadPool pool(2);
  Session session(*model, pool, 256);
  session.set_lora(&set);
  SamplerParams sp;
  sp.temp = 0;
  Sampler sampler(sp);
  GenerateParams gp;
  gp.n_predict = 10;
  const std::string answer = generate(session, sampler, *tok, chat.encode(msgs, true), gp, [](const std::string&) {}).text;
  EXPECT_NE(answer.find("Pimlo"), std::string::npos) << answer;
  std::remove(o.out_path.c_str());
}

TEST(Finetune, ResumedRunEqualsUninterruptedRunBitForBit) {
  FinetuneOptions o = stories_options("train.jsonl");
  o.steps = 12;
  o.batch = 2;
  o.warmup = 3;
  o.weight_decay = 0.01f;
  o.out_path = tmp("straight.gguf");
  finetune(o, nullptr);

  FinetuneOptions first = o;
  first.out_path = tmp("first.gguf");
  first.save_every = 5;  // checkpoints after steps 5 and 10
  first.checkpoint_path = tmp("ckpt.gguf");
  std::atomic<bool> stop{false};
  int seen = 0;
  finetune(first, [&](const FinetuneProgress& p) { if ((seen = p.step) >= 5) stop = true; }, &stop);
  EXPECT_EQ(seen, 5);
  FinetuneOptions second = o;
  second.out_path = tmp("resumed.gguf");
  second.resume_path = first.checkpoint_path;
  finetune(second, nullptr);

  auto a = GgufFile::open(o.out_path), b = GgufFile::open(second.out_path);
  ASSERT_EQ(a->tensors().size(), b->tensors().size());
  for (const GgufTensor& t : a->tensors()) {
    const GgufTensor* u = b->find_tensor(t.name);
    ASSERT_TRUE(u);
    ASSERT_EQ(t.nbytes, u->nbytes);
    EXPECT_EQ(std::memcmp(t.data, u->data, t.nbytes), 0) << t.name;
  }
  // A checkpoint of other settings is refused, naming what differs.
  FinetuneOptions other = second;
  other.rank = 4;
  try {
    finetune(other, nullptr);
    ADD_FAILURE() << "resumed with another rank";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--rank"), std::string::npos) << e.what();
  }
  for (const std::string& f : {o.out_path, first.out_path, second.out_path, first.checkpoint_path}) std::remove(f.c_str());
}

TEST(Finetune, BadDataNamesTheLine) {
  auto model = Model::load(test::shared("models/stories260K.gguf"));
  auto tok = Tokenizer::from_gguf(model->file());
  const std::string path = tmp("bad.jsonl");
  auto error_of = [&](const std::string& content) {
    std::ofstream(path) << content;
    try {
      train::load_dataset(path, *tok, nullptr);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(loaded)");
  };
  EXPECT_NE(error_of("{\"text\":\"a b c\"}\n{\"text\": 5}\n").find(":2: 'text' must be a string"), std::string::npos);
  EXPECT_NE(error_of("{\"text\":\"a b c\"}\n\n{bad json\n").find(":3: not valid JSON"), std::string::npos);
  EXPECT_NE(error_of("{\"text\":\"a b c\"}\n{\"prompt\":\"a\",\"completion\":\"b\"}\n").find(":2: a prompt example"),
            std::string::npos);
  EXPECT_NE(error_of("{\"txt\":\"a\"}\n").find(":1: expected"), std::string::npos);
  EXPECT_NE(error_of("{\"text\":\"a\",\"extra\":1}\n").find("unknown field 'extra'"), std::string::npos);
  EXPECT_NE(error_of("\n\n").find("no examples"), std::string::npos);
  // prompt/completion: the loss is on the completion only.
  std::ofstream(path) << "{\"prompt\":\"Once upon a time\",\"completion\":\", there was a dog.\"}\n";
  const train::Dataset d = train::load_dataset(path, *tok, nullptr);
  const train::Example& e = d.examples[0];
  const size_t n_prompt = tok->encode("Once upon a time", true, false).size();
  for (size_t t = 0; t + 1 < n_prompt; ++t) EXPECT_EQ(e.weight[t], 0.0f);
  for (size_t t = n_prompt - 1; t + 1 < e.tokens.size(); ++t) EXPECT_EQ(e.weight[t], 1.0f);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace slm

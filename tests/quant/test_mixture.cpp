// The per-tensor type plan against the types llama.cpp chose for every fixture file.
#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/shared.h"
#include "gguf/gguf.h"
#include "quant/mixture.h"
#include "slm/error.h"

namespace slm {
namespace {

namespace fs = std::filesystem;

TEST(QuantMixture, PlanMatchesLlamaCppOnEveryFixture) {
  int files = 0;
  for (const auto& e : fs::directory_iterator(test::shared("fixtures"))) {
    const std::string fname = e.path().filename().string();
    if (e.path().extension() != ".json" || fname.find(".info.") != std::string::npos) continue;
    auto j = nlohmann::json::parse(test::read_file(e.path().string()));
    const std::string type = j["type"];
    if (type == "F32") continue;
    SCOPED_TRACE(fname + " (" + type + ")");
    // The F32 file of the same family: same model, unquantized.
    std::string file = j["file"];
    const std::string f32_file = file.substr(0, file.rfind('-')) + "-f32.gguf";
    auto src = GgufFile::open(test::shared("fixtures/" + f32_file));
    std::vector<TensorDesc> descs;
    for (const GgufTensor& t : src->tensors()) descs.push_back({t.name, t.n_dims, t.ne[0], t.type});
    const QuantTarget target = parse_quant_target(type);
    const auto plans = plan_quantization(target, descs);
    ASSERT_EQ(plans.size(), descs.size());
    const auto& want = j["tensor_types"];
    ASSERT_EQ(want.size(), descs.size());
    for (size_t i = 0; i < descs.size(); ++i)
      EXPECT_EQ(type_name(plans[i].type), want[descs[i].name].get<std::string>()) << descs[i].name;
    // general.file_type as llama.cpp wrote it.
    auto qf = GgufFile::open(test::shared("fixtures/" + file));
    EXPECT_EQ(static_cast<uint32_t>(qf->get_int("general.file_type")), target.file_type);
    ++files;
  }
  EXPECT_GE(files, 25);
}

TEST(QuantMixture, Targets) {
  EXPECT_EQ(parse_quant_target("q4_k_m").base, GgmlType::Q4_K);
  EXPECT_TRUE(parse_quant_target("Q4_K_M").k_mixture);
  EXPECT_FALSE(parse_quant_target("Q4_K").k_mixture);
  EXPECT_EQ(parse_quant_target("bf16").file_type, 32u);
  EXPECT_THROW(parse_quant_target("Q8_K"), Error);  // activation-only format
  EXPECT_THROW(parse_quant_target("Q4_K_L"), Error);
  EXPECT_THROW(parse_quant_target("IQ2_XXS"), Error);
}

TEST(QuantMixture, KeptAndFallbackTensors) {
  const std::vector<TensorDesc> t = {
      {"blk.0.attn_norm.weight", 1, 256, GgmlType::F32},
      {"blk.0.ffn_gate_inp.weight", 2, 256, GgmlType::F32},
      {"rope_freqs.weight", 1, 32, GgmlType::F32},
      {"blk.0.attn_q.weight", 2, 256, GgmlType::F32},
      {"blk.0.attn_output.weight", 2, 96, GgmlType::F32},   // 96: only 32-blocks fit
      {"blk.0.ffn_up.weight", 2, 100, GgmlType::F16},       // 100: nothing fits
      {"blk.0.ffn_down.weight", 2, 256, GgmlType::Q4_K},    // already the target type
  };
  const auto p = plan_quantization(parse_quant_target("Q4_K"), t);
  EXPECT_FALSE(p[0].convert);
  EXPECT_FALSE(p[1].convert);
  EXPECT_FALSE(p[2].convert);
  EXPECT_TRUE(p[3].convert);
  EXPECT_EQ(p[3].type, GgmlType::Q4_K);
  EXPECT_EQ(p[4].type, GgmlType::Q5_0);
  EXPECT_FALSE(p[4].note.empty());
  EXPECT_FALSE(p[5].convert);  // llama-quantize's last resort, F16: the source already is
  EXPECT_EQ(p[5].type, GgmlType::F16);
  EXPECT_NE(p[5].note.find("F16"), std::string::npos);
  EXPECT_FALSE(p[6].convert);
  EXPECT_EQ(p[6].type, GgmlType::Q4_K);
}

TEST(QuantMixture, OutputQ6KAsLlamaQuantizeDefault) {
  // Tied model (no output.weight): token_embd is the output matrix.
  const std::vector<TensorDesc> tied = {{"token_embd.weight", 2, 2048, GgmlType::F32},
                                        {"blk.0.attn_q.weight", 2, 2048, GgmlType::F32}};
  QuantTarget q4 = parse_quant_target("Q4_0");
  EXPECT_EQ(plan_quantization(q4, tied)[0].type, GgmlType::Q4_0);  // plain = --pure by default
  q4.output_q6_k = true;
  auto p = plan_quantization(q4, tied);
  EXPECT_EQ(p[0].type, GgmlType::Q6_K);
  EXPECT_EQ(p[1].type, GgmlType::Q4_0);
  // With a separate output.weight, token_embd keeps the base type.
  const std::vector<TensorDesc> untied = {{"token_embd.weight", 2, 2048, GgmlType::F32},
                                          {"output.weight", 2, 2048, GgmlType::F32}};
  p = plan_quantization(q4, untied);
  EXPECT_EQ(p[0].type, GgmlType::Q4_0);
  EXPECT_EQ(p[1].type, GgmlType::Q6_K);
  // Q8_0 keeps its output at Q8_0, as llama-quantize does.
  QuantTarget q8 = parse_quant_target("Q8_0");
  q8.output_q6_k = true;
  EXPECT_EQ(plan_quantization(q8, untied)[1].type, GgmlType::Q8_0);
}

// The _S and _L mixtures against llama-quantize (commit 34af94cd, no imatrix) on every family's
// F32 fixture: each tensor that llama-quantize gave a type other than the mixture's base type
// (the table, recorded from its output) gets that type here, and every other matrix the base.
TEST(QuantMixture, SmallAndLargeKMixturesAsLlamaQuantize) {
  struct Case {
    const char* fixture;
    const char* mixture;
    const char* others;  // "name=TYPE ..." as llama-quantize wrote them
  } cases[] = {
  {"llama-f32", "Q3_K_S", "output.weight=Q6_K"},
  {"llama-f32", "Q3_K_L", "output.weight=Q6_K blk.0.attn_output.weight=Q5_K blk.0.attn_v.weight=Q5_K blk.0.ffn_down.weight=Q5_K blk.1.attn_output.weight=Q5_K blk.1.attn_v.weight=Q5_K blk.1.ffn_down.weight=Q5_K"},
  {"llama-f32", "Q4_K_S", "output.weight=Q6_K blk.0.attn_v.weight=Q5_K blk.1.attn_v.weight=Q5_K"},
  {"llama-f32", "Q5_K_S", "output.weight=Q6_K"},
  {"mixtral-f32", "Q3_K_S", "output.weight=Q6_K"},
  {"mixtral-f32", "Q3_K_L", "output.weight=Q6_K blk.0.attn_output.weight=Q5_K blk.0.attn_v.weight=Q5_K blk.0.ffn_down_exps.weight=Q5_K blk.1.attn_output.weight=Q5_K blk.1.attn_v.weight=Q5_K blk.1.ffn_down_exps.weight=Q5_K"},
  {"mixtral-f32", "Q4_K_S", "output.weight=Q6_K blk.0.attn_v.weight=Q5_K blk.1.attn_v.weight=Q5_K"},
  {"mixtral-f32", "Q5_K_S", "output.weight=Q6_K"},
  {"phi3-f32", "Q3_K_S", "output.weight=Q6_K"},
  {"phi3-f32", "Q3_K_L", "output.weight=Q6_K blk.0.attn_output.weight=Q5_K blk.0.attn_qkv.weight=Q5_K blk.0.ffn_down.weight=Q5_K blk.1.attn_output.weight=Q5_K blk.1.attn_qkv.weight=Q5_K blk.1.ffn_down.weight=Q5_K"},
  {"phi3-f32", "Q4_K_S", "output.weight=Q6_K blk.0.attn_qkv.weight=Q5_K blk.1.attn_qkv.weight=Q5_K"},
  {"phi3-f32", "Q5_K_S", "output.weight=Q6_K"},
  {"gemma2-f32", "Q3_K_S", "token_embd.weight=Q6_K"},
  {"gemma2-f32", "Q3_K_L", "token_embd.weight=Q6_K blk.0.attn_output.weight=Q5_K blk.0.attn_v.weight=Q5_K blk.0.ffn_down.weight=Q5_K blk.1.attn_output.weight=Q5_K blk.1.attn_v.weight=Q5_K blk.1.ffn_down.weight=Q5_K blk.2.attn_output.weight=Q5_K blk.2.attn_v.weight=Q5_K blk.2.ffn_down.weight=Q5_K blk.3.attn_output.weight=Q5_K blk.3.attn_v.weight=Q5_K blk.3.ffn_down.weight=Q5_K"},
  {"gemma2-f32", "Q4_K_S", "token_embd.weight=Q6_K blk.0.attn_v.weight=Q5_K blk.1.attn_v.weight=Q5_K blk.2.attn_v.weight=Q5_K blk.3.attn_v.weight=Q5_K"},
  {"gemma2-f32", "Q5_K_S", "token_embd.weight=Q6_K"},
  {"granitemoe-f32", "Q3_K_S", "output.weight=Q6_K blk.0.ffn_down_exps.weight=Q4_0 blk.1.ffn_down_exps.weight=Q4_0"},
  {"granitemoe-f32", "Q3_K_L", "output.weight=Q6_K blk.0.attn_output.weight=Q5_K blk.0.attn_v.weight=Q5_K blk.0.ffn_down_exps.weight=Q5_1 blk.1.attn_output.weight=Q5_K blk.1.attn_v.weight=Q5_K blk.1.ffn_down_exps.weight=Q5_1"},
  {"granitemoe-f32", "Q4_K_S", "output.weight=Q6_K blk.0.attn_v.weight=Q5_K blk.0.ffn_down_exps.weight=Q5_0 blk.1.attn_v.weight=Q5_K blk.1.ffn_down_exps.weight=Q5_0"},
  {"granitemoe-f32", "Q5_K_S", "output.weight=Q6_K blk.0.ffn_down_exps.weight=Q5_1 blk.1.ffn_down_exps.weight=Q5_1"},
  {"openelm-f32", "Q3_K_S", "token_embd.weight=Q6_K blk.0.attn_output.weight=Q4_0"},
  {"openelm-f32", "Q3_K_L", "token_embd.weight=Q6_K blk.0.attn_output.weight=Q5_1 blk.0.attn_qkv.weight=Q5_K blk.0.ffn_down.weight=Q5_K blk.1.attn_output.weight=Q5_K blk.1.attn_qkv.weight=Q5_K blk.1.ffn_down.weight=Q5_K blk.2.attn_output.weight=Q5_K blk.2.attn_qkv.weight=Q5_K blk.2.ffn_down.weight=Q5_K"},
  {"openelm-f32", "Q4_K_S", "token_embd.weight=Q6_K blk.0.attn_output.weight=Q5_0 blk.0.attn_qkv.weight=Q5_K blk.1.attn_qkv.weight=Q5_K blk.2.attn_qkv.weight=Q5_K"},
  {"openelm-f32", "Q5_K_S", "token_embd.weight=Q6_K blk.0.attn_output.weight=Q5_1"},
  };
  for (const Case& c : cases) {
    auto f = GgufFile::open(test::shared(std::string("fixtures/") + c.fixture + ".gguf"));
    std::vector<TensorDesc> descs;
    for (const GgufTensor& t : f->tensors()) descs.push_back({t.name, t.n_dims, t.ne[0], t.type});
    ModelFacts facts;
    const std::string arch = f->get_string("general.architecture");
    facts.n_expert = int(f->get_int_or(arch + ".expert_count", 0));
    const QuantTarget target = parse_quant_target(c.mixture);
    const auto plans = plan_quantization(target, descs, facts);
    std::map<std::string, std::string> want;
    std::istringstream in(c.others);
    for (std::string item; in >> item;) want[item.substr(0, item.find('='))] = item.substr(item.find('=') + 1);
    for (size_t i = 0; i < descs.size(); ++i) {
      if (descs[i].n_dims < 2 || descs[i].name.find("ffn_gate_inp") != std::string::npos) continue;
      const std::string expected = want.count(descs[i].name) ? want[descs[i].name] : type_name(target.base);
      EXPECT_EQ(type_name(plans[i].type), expected) << c.fixture << " " << c.mixture << " " << descs[i].name;
    }
  }
}

}  // namespace
}  // namespace slm

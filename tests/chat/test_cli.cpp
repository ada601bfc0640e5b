// slm template: prints exactly the rendering (checked against the shared reference cases),
// reads the template and BOS/EOS text from a GGUF file with -m, and fails cleanly.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/shared.h"

using nlohmann::ordered_json;
namespace fs = std::filesystem;

namespace {

std::string tmp_path(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("slm_chat_cli_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return (dir / name).string();
}

void write(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

std::string quote(const std::string& s) {  // for the shell
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

void cleanup() { fs::remove_all(fs::path(tmp_path("x")).parent_path()); }

bool have_binary() { return fs::exists(slm::test::slm_bin()); }

// A minimal GGUF v3 file with metadata only, written byte by byte from the format spec.
struct GgufBytes {
  std::string b;
  void u32(uint32_t v) { b.append(reinterpret_cast<const char*>(&v), 4); }
  void u64(uint64_t v) { b.append(reinterpret_cast<const char*>(&v), 8); }
  void str(const std::string& s) {
    u64(s.size());
    b += s;
  }
};

std::string make_gguf(const std::string& chat_template) {
  GgufBytes g;
  g.b = "GGUF";
  g.u32(3);
  g.u64(0);  // tensors
  g.u64(5);  // metadata keys
  g.str("general.architecture");
  g.u32(8);
  g.str("llama");
  g.str("tokenizer.ggml.tokens");
  g.u32(9);
  g.u32(8);
  g.u64(3);
  g.str("<unk>");
  g.str("<|begin|>");
  g.str("<|end|>");
  g.str("tokenizer.ggml.bos_token_id");
  g.u32(4);
  g.u32(1);
  g.str("tokenizer.ggml.eos_token_id");
  g.u32(4);
  g.u32(2);
  g.str("tokenizer.chat_template");
  g.u32(8);
  g.str(chat_template);
  while (g.b.size() % 32) g.b += '\0';
  return g.b;
}

}  // namespace

TEST(ChatCli, RendersReferenceCasesByteForByte) {
  if (!have_binary()) GTEST_SKIP() << "no slm binary at " << slm::test::slm_bin();
  ordered_json cases = ordered_json::parse(slm::test::read_file(slm::test::shared("templates/cases.json")));
  int checked = 0;
  for (auto& c : cases) {
    if (c.contains("strftime_now") && c["strftime_now"].is_string()) continue;  // needs a fixed clock
    if (checked == 12) break;
    std::string tpl = tmp_path("t.jinja"), msgs = tmp_path("m.json"), ctx = tmp_path("c.json");
    write(tpl, c["template"].get<std::string>());
    write(msgs, c["messages"].dump());
    write(ctx, c["extra"].dump());
    std::string cmd = slm::test::slm_bin() + " template --chat-template " + tpl + " --messages " + msgs +
                      " --context " + ctx + " --bos " + quote(c["bos_token"]) + " --eos " + quote(c["eos_token"]) +
                      (c["add_generation_prompt"].get<bool>() ? " --add-generation-prompt" : "") + " 2>/dev/null";
    int rc = -1;
    std::string out = slm::test::run_cmd(cmd, &rc);
    EXPECT_EQ(rc, 0) << c["name"];
    EXPECT_EQ(out, c["expected"].get<std::string>()) << c["name"];
    ++checked;
  }
  EXPECT_EQ(checked, 12);
  cleanup();
}

TEST(ChatCli, TemplateAndSpecialTokensFromGguf) {
  if (!have_binary()) GTEST_SKIP() << "no slm binary at " << slm::test::slm_bin();
  std::string model = tmp_path("tiny.gguf"), msgs = tmp_path("m2.json");
  write(model, make_gguf("{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{{ eos_token }}{% endfor %}"
                         "{% if add_generation_prompt %}[assistant]{% endif %}"));
  write(msgs, R"([{"role": "user", "content": "hi"}])");
  int rc = -1;
  std::string out = slm::test::run_cmd(slm::test::slm_bin() + " template -m " + model + " --messages " + msgs +
                                           " --add-generation-prompt",
                                       &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(out, "<|begin|>[user]hi<|end|>[assistant]");
  out = slm::test::run_cmd(slm::test::slm_bin() + " template -m " + model + " --messages " + msgs + " --bos B --eos ''", &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(out, "B[user]hi");
  cleanup();
}

TEST(ChatCli, BadInputFailsWithOneLine) {
  if (!have_binary()) GTEST_SKIP() << "no slm binary at " << slm::test::slm_bin();
  std::string tpl = tmp_path("bad.jinja"), msgs = tmp_path("m3.json"), notjson = tmp_path("x.json");
  write(tpl, "ok\n{% if %}");
  write(msgs, "[]");
  write(notjson, "{not json");
  int rc = -1;
  std::string err = slm::test::run_cmd(slm::test::slm_bin() + " template --chat-template " + tpl + " --messages " +
                                           msgs + " 2>&1 >/dev/null",
                                       &rc);
  EXPECT_NE(rc, 0);
  EXPECT_NE(err.find("line 2"), std::string::npos) << err;
  slm::test::run_cmd(slm::test::slm_bin() + " template --chat-template " + tpl + " --messages " + notjson + " 2>/dev/null", &rc);
  EXPECT_NE(rc, 0);
  write(tpl, "{{ raise_exception('nope') }}");
  err = slm::test::run_cmd(slm::test::slm_bin() + " template --chat-template " + tpl + " --messages " + msgs + " 2>&1", &rc);
  EXPECT_NE(rc, 0);
  EXPECT_NE(err.find("nope"), std::string::npos) << err;
  slm::test::run_cmd(slm::test::slm_bin() + " template --messages " + msgs + " 2>/dev/null", &rc);
  EXPECT_NE(rc, 0);  // neither -m nor --chat-template
  cleanup();
}

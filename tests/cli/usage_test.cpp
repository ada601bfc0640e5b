// The command line as a new user meets it: one-line errors with the same prefix, exit code 2
// for usage errors and 1 for failures, suggestions for typos, shared validation of -t/--ctx.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <unistd.h>

#include "common/shared.h"

namespace test = slm::test;

namespace {

struct Result {
  int rc;
  std::string out;
};

Result run_slm(const std::string& args, const std::string& stdin_text = "") {
  int rc = -1;
  std::string cmd = test::slm_bin() + " " + args + " 2>&1";
  if (!stdin_text.empty()) cmd = "printf '%s' '" + stdin_text + "' | " + cmd;
  else cmd += " < /dev/null";
  std::string out = test::run_cmd(cmd, &rc);
  return {rc, out};
}

const std::string kModel = " -m " + test::shared("models/stories260K.gguf");

bool one_error_line(const std::string& out) {
  return out.rfind("slm: error: ", 0) == 0 && out.find('\n') == out.size() - 1;
}

}  // namespace

TEST(CliUsage, VersionNamesBuildAndKernels) {
  Result r = run_slm("--version");
  EXPECT_EQ(r.rc, 0);
  EXPECT_EQ(r.out.rfind("slm ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("build"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("CPU kernels"), std::string::npos) << r.out;
  EXPECT_EQ(run_slm("help").rc, 0);
  EXPECT_NE(run_slm("help run").out.find("--prompt"), std::string::npos);
}

TEST(CliUsage, UnknownCommandAndFlagSuggestTheNearest) {
  Result r = run_slm("rnu");
  EXPECT_EQ(r.rc, 2);
  EXPECT_TRUE(one_error_line(r.out)) << r.out;
  EXPECT_NE(r.out.find("did you mean 'run'"), std::string::npos) << r.out;
  r = run_slm("run" + kModel + " -p hi --temperature 0");
  EXPECT_EQ(r.rc, 2);
  EXPECT_TRUE(one_error_line(r.out)) << r.out;
  EXPECT_NE(r.out.find("'--temperature'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("did you mean '--temp'"), std::string::npos) << r.out;
  // llama.cpp's spelling is accepted as it is.
  r = run_slm("run" + kModel + " -p hi -n 1 --ctx-size 64");
  EXPECT_EQ(r.rc, 0) << r.out;
}

TEST(CliUsage, ThreadsAndContextAreCheckedBeforeAnyWork) {
  for (const std::string cmd : {"run" + kModel + " -p hi", "chat" + kModel, "bench" + kModel, "logits" + kModel + " --ids 1"}) {
    const auto t0 = std::chrono::steady_clock::now();
    Result r = run_slm(cmd + " -t 100000");
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0) << cmd;
    EXPECT_EQ(r.rc, 2) << cmd << ": " << r.out;
    EXPECT_NE(r.out.find("threads"), std::string::npos) << r.out;
    EXPECT_TRUE(one_error_line(r.out)) << r.out;
  }
  Result r = run_slm("run" + kModel + " -p hi --ctx -5");
  EXPECT_EQ(r.rc, 2) << r.out;
  // A KV cache larger than the machine is refused at once with one line, not allocated.
  const auto t0 = std::chrono::steady_clock::now();
  r = run_slm("run -m " + test::shared("fixtures/llama-f32.gguf") + " -p hi --ctx 16777216");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("slm: error: a KV cache for a context of 16777216 tokens"), std::string::npos) << r.out;
  // Past the trained context: a warning, and it still runs.
  r = run_slm("run" + kModel + " -p hi -n 1 --ctx 4096");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("longer than the 2048 tokens"), std::string::npos) << r.out;
}

TEST(CliUsage, RunNamesMissingModelAndReadsThePromptFromAFileOrStdin) {
  Result r = run_slm("run -p hi");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.out.find("--model"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("shared"), std::string::npos) << r.out;  // no repository path
  const std::string greedy = " -n 8 --temp 0 2>/dev/null";
  const std::string direct = test::run_cmd(test::slm_bin() + " run" + kModel + " -p 'Once upon a time'" + greedy);
  const std::string file = "/tmp/slm_prompt_" + std::to_string(getpid()) + ".txt";
  std::ofstream(file) << "Once upon a time";
  EXPECT_EQ(test::run_cmd(test::slm_bin() + " run" + kModel + " -f " + file + greedy), direct);
  EXPECT_EQ(test::run_cmd("printf 'Once upon a time' | " + test::slm_bin() + " run" + kModel + greedy), direct);
  std::remove(file.c_str());
  r = run_slm("run" + kModel + " -f /tmp");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("is a directory"), std::string::npos) << r.out;
  r = run_slm("tokenize" + kModel + " -f /tmp");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("is a directory"), std::string::npos) << r.out;
}

TEST(CliUsage, ChatTemplateThatIsADirectoryOrDropsTheMessageIsAnError) {
  Result r = run_slm("run" + kModel + " --chat -p hi --chat-template /tmp");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("is a directory"), std::string::npos) << r.out;
  const std::string tpl = "/tmp/slm_tpl_" + std::to_string(getpid()) + ".jinja";
  std::ofstream(tpl) << "{{ bos_token }}{% if add_generation_prompt %}assistant:{% endif %}";
  r = run_slm("run" + kModel + " --chat -p 'where is my message' --chat-template " + tpl);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("leaves out the user's last message"), std::string::npos) << r.out;
  std::remove(tpl.c_str());
}

TEST(CliUsage, InfoTakesMLikeEveryCommandAndNamesTheFileType) {
  const std::string f = test::shared("fixtures/llama-q4_k_m.gguf");
  Result a = run_slm("info " + f), b = run_slm("info -m " + f);
  EXPECT_EQ(a.rc, 0);
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(a.out.find("file type: Q4_K - Medium"), std::string::npos) << a.out;
  EXPECT_NE(a.out.find("bits per weight"), std::string::npos);
  EXPECT_NE(a.out.find("KV cache: 1.00 MiB per 1k tokens (f16)"), std::string::npos) << a.out;
  EXPECT_EQ(run_slm("info").rc, 2);
}

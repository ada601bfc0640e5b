// `slm chat` without a terminal: one answer per input line, history kept across turns.
#include <gtest/gtest.h>

#include "common/shared.h"

using namespace slm::test;

TEST(ChatCli, FirstAnswerEqualsRunChatAndHistoryIsKept) {
  const std::string m = shared("models/stories260K.gguf");
  int rc = -1;
  std::string one = run_cmd(slm_bin() + " run --chat -m " + m + " -p 'Tell me about Lily' -n 12 --temp 0 2>/dev/null", &rc);
  ASSERT_EQ(rc, 0);
  std::string chat =
      run_cmd("printf 'Tell me about Lily\\nAnd her dog\\n' | " + slm_bin() + " chat -m " + m + " -n 12 --temp 0 2>/dev/null", &rc);
  ASSERT_EQ(rc, 0);
  // run ends its output with a newline, chat ends every answer with one.
  ASSERT_GE(chat.size(), one.size());
  EXPECT_EQ(chat.substr(0, one.size()), one);
  EXPECT_GT(chat.size(), one.size()) << "a second answer follows";
}

TEST(ChatCli, FullContextDropsOldestTurnsWithAMessage) {
  const std::string m = shared("models/stories260K.gguf");
  int rc = -1;
  std::string out = run_cmd("for i in 1 2 3 4 5 6; do echo 'Once upon a time there was a little girl named Lily who loved to play'; done | " +
                                slm_bin() + " chat -m " + m + " --ctx 160 -n 16 --temp 0 2>&1 >/dev/null",
                            &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_NE(out.find("context full"), std::string::npos) << out;
  EXPECT_NE(out.find("dropped the oldest"), std::string::npos) << out;
}

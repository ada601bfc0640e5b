// `slm chat` without a terminal: one answer per input line, history kept across turns.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>

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

// On a terminal (tmux gives the chat one): Ctrl-C at an idle prompt drops the half-typed
// line and keeps the conversation; /save without a file name says what it needs.
TEST(ChatCli, CtrlCAtThePromptKeepsTheConversation) {
  int rc = -1;
  run_cmd("command -v tmux", &rc);
  ASSERT_EQ(rc, 0) << "tmux is needed (scripts/setup.sh installs it)";
  const std::string session = "slmchat" + std::to_string(getpid());
  const std::string conv = "/tmp/" + session + ".json";
  const std::string tm = "tmux -L " + session + " ";
  run_cmd(tm + "new-session -d -x 150 -y 40 '" + slm_bin() + " chat -m " + shared("models/stories260K.gguf") +
          " --temp 0 -n 6 2>&1; sleep 20'");
  auto keys = [&](const std::string& k, double wait) {
    run_cmd(tm + "send-keys " + k);
    usleep(useconds_t(wait * 1e6));
  };
  usleep(1500000);
  keys("'Once upon' Enter", 1.5);
  keys("'half typed'", 0.3);
  keys("C-c", 0.5);
  keys("'/save' Enter", 0.5);
  keys("'/save " + conv + "' Enter", 1.0);
  const std::string screen = run_cmd(tm + "capture-pane -p");
  run_cmd(tm + "kill-server");
  EXPECT_NE(screen.find("/save needs a file name"), std::string::npos) << screen;
  EXPECT_NE(screen.find("saved 2 messages"), std::string::npos) << screen;
  const std::string saved = read_file(conv);
  EXPECT_NE(saved.find("Once upon"), std::string::npos);
  EXPECT_EQ(saved.find("half typed"), std::string::npos);
  std::remove(conv.c_str());
}

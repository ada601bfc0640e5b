// `slm run --chat` sends -p as a user turn: with a model without a template (ChatML
// fallback) and no control tokens in its vocabulary, that is exactly the plain prompt
// "<|im_start|>user\n…<|im_end|>\n<|im_start|>assistant\n".
#include <gtest/gtest.h>

#include "common/shared.h"

using namespace slm::test;

TEST(RunChat, UserTurnThroughTheTemplate) {
  const std::string m = shared("models/stories260K.gguf");
  int rc1 = -1, rc2 = -1;
  std::string chat = run_cmd(slm_bin() + " run --chat -m " + m + " -p 'Tell me about Lily' -n 24 --temp 0 2>/dev/null", &rc1);
  // (printf, then strip a sentinel: $(…) would drop the trailing newline)
  std::string plain = run_cmd("P=$(printf '<|im_start|>user\\nTell me about Lily<|im_end|>\\n<|im_start|>assistant\\nX'); " +
                                  slm_bin() + " run -m " + m + " -p \"${P%X}\" -n 24 --temp 0 2>/dev/null",
                              &rc2);
  ASSERT_EQ(rc1, 0);
  ASSERT_EQ(rc2, 0);
  EXPECT_FALSE(chat.empty());
  EXPECT_EQ(chat, plain);
}

TEST(RunChat, SystemNeedsChat) {
  int rc = 0;
  std::string out = run_cmd(slm_bin() + " run -m " + shared("models/stories260K.gguf") + " -p hi --system x 2>&1", &rc);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("--chat"), std::string::npos) << out;
}

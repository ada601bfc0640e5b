// `slm tokenize` end to end: the ids it prints for reference texts equal the reference ids,
// and the per-token listing shows each id with its quoted piece.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <unistd.h>

#include "common/shared.h"

using slm::test::read_file;
using slm::test::run_cmd;
using slm::test::shared;
using slm::test::slm_bin;

namespace {

std::string temp_file(const std::string& content) {
  const std::string path = "/tmp/slm-tokenize-cli-" + std::to_string(getpid()) + ".txt";
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

TEST(CliTokenize, IdsOfReferenceTextsFromAFile) {
  for (const char* name : {"llama-bpe", "gemma", "mistral-7b"}) {
    const std::string vocab = shared(std::string("vocab/ggml-vocab-") + name + ".gguf");
    const std::string inp = read_file(vocab + ".inp"), out = read_file(vocab + ".out");
    const std::string sep = "\n__ggml_vocab_test__\n";
    // The first case and its line of ids.
    const std::string text = inp.substr(0, inp.find(sep));
    std::string want = out.substr(0, out.find('\n'));  // stripped, as the README says
    want.erase(0, want.find_first_not_of(' '));
    want.erase(want.find_last_not_of(' ') + 1);
    want += '\n';
    const std::string path = temp_file(text);
    int rc = -1;
    const std::string got = run_cmd(slm_bin() + " tokenize -m " + vocab + " --ids --no-bos -f " + path, &rc);
    std::remove(path.c_str());
    EXPECT_EQ(rc, 0) << name;
    EXPECT_EQ(got, want) << name;
  }
}

TEST(CliTokenize, ListsIdAndQuotedPiece) {
  const std::string vocab = shared("vocab/ggml-vocab-llama-bpe.gguf");
  int rc = -1;
  const std::string got = run_cmd(slm_bin() + " tokenize -m " + vocab + " -p 'Hello world'", &rc);
  EXPECT_EQ(rc, 0);
  // BOS (added by default), then the two words; Llama 3: 9906 "Hello", 1917 " world".
  EXPECT_EQ(got, "128000 \"<|begin_of_text|>\"\n9906 \"Hello\"\n1917 \" world\"\n");
  const std::string special =
      run_cmd(slm_bin() + " tokenize -m " + vocab + " --ids --no-bos --special -p 'a<|eot_id|>'", &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(special, "64 128009\n");
  const std::string plain = run_cmd(slm_bin() + " tokenize -m " + vocab + " --ids --no-bos -p '<|eot_id|>'", &rc);
  EXPECT_EQ(plain.find("128009"), std::string::npos);
}

TEST(CliTokenize, ErrorsAreOneLineAndNonZero) {
  int rc = 0;
  const std::string out = run_cmd(slm_bin() + " tokenize -m /nonexistent.gguf -p x 2>&1", &rc);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("nonexistent.gguf"), std::string::npos) << out;
  run_cmd(slm_bin() + " tokenize -m " + shared("vocab/ggml-vocab-gpt-2.gguf") + " 2>&1", &rc);
  EXPECT_NE(rc, 0) << "neither -p nor -f";
}

}  // namespace

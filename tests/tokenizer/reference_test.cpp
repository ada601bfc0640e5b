// Every vocabulary in ../shared/vocab against the ids its reference tokenizer produced for
// each input text (no BOS/EOS, control-token text not parsed), and decode(encode(text)) ==
// text. The folder is listed, not hard-coded: any vocabulary dropped in is checked too.
#include <gtest/gtest.h>

#include <dirent.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/shared.h"
#include "gguf/gguf.h"
#include "slm/tokenizer.h"

using namespace slm;
using slm::test::read_file;
using slm::test::shared;

namespace {

std::vector<std::string> vocab_files() {
  std::vector<std::string> out;
  const std::string dir = shared("vocab");
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    const std::string n = e->d_name;
    if (n.size() > 5 && n.compare(n.size() - 5, 5, ".gguf") == 0) out.push_back(n);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> split_cases(const std::string& inp) {
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> cases;
  size_t pos = 0;
  while (true) {
    const size_t at = inp.find(sep, pos);
    if (at == std::string::npos) break;
    cases.push_back(inp.substr(pos, at - pos));
    pos = at + sep.size();
  }
  return cases;
}

std::vector<std::vector<int32_t>> parse_out(const std::string& out) {
  std::vector<std::vector<int32_t>> rows;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream ws(line);
    std::vector<int32_t> ids;
    long v;
    while (ws >> v) ids.push_back(static_cast<int32_t>(v));
    rows.push_back(ids);
  }
  return rows;
}

std::string show(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += std::to_string(id) + " ";
  return s;
}

class VocabReference : public ::testing::TestWithParam<std::string> {};

TEST_P(VocabReference, IdsMatchAndDecodeRoundTrips) {
  const std::string path = shared("vocab/" + GetParam());
  auto file = GgufFile::open(path);
  auto tok = Tokenizer::from_gguf(*file);
  const auto cases = split_cases(read_file(path + ".inp"));
  const auto expected = parse_out(read_file(path + ".out"));
  ASSERT_GT(cases.size(), 0u);
  ASSERT_GE(expected.size(), cases.size()) << "fewer .out lines than .inp cases";
  int mismatches = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::vector<int32_t> ids = tok->encode(cases[i], false, false);
    if (ids != expected[i]) {
      ++mismatches;
      ADD_FAILURE() << GetParam() << " case " << i << " " << nlohmann::json(cases[i]).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                    << "\n  want: " << show(expected[i]) << "\n  got:  " << show(ids);
    }
    // Round trip, wherever the reference ids themselves carry the whole text (no <unk>).
    const bool has_unk = tok->unk() >= 0 &&
                         std::find(expected[i].begin(), expected[i].end(), tok->unk()) != expected[i].end();
    if (!has_unk) {
      EXPECT_EQ(tok->decode(ids), cases[i]) << GetParam() << " case " << i;
    }
  }
  EXPECT_EQ(mismatches, 0);
}

INSTANTIATE_TEST_SUITE_P(SharedVocab, VocabReference, ::testing::ValuesIn(vocab_files()),
                         [](const ::testing::TestParamInfo<std::string>& p) {
                           std::string n = p.param;
                           for (char& c : n)
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

TEST(VocabReference, FolderIsNotEmpty) { EXPECT_GE(vocab_files().size(), 1u) << shared("vocab"); }

// stories260K: BOS + the model's own tokenization of each prompt.
TEST(Stories260K, PromptIdsMatchReference) {
  auto file = GgufFile::open(shared("models/stories260K.gguf"));
  auto tok = Tokenizer::from_gguf(*file);
  const auto j = nlohmann::json::parse(read_file(shared("models/stories260K.greedy.json")));
  ASSERT_FALSE(j.at("prompts").empty());
  for (const auto& p : j.at("prompts")) {
    const std::string text = p.at("prompt");
    const std::vector<int32_t> want = p.at("prompt_ids").get<std::vector<int32_t>>();
    EXPECT_EQ(tok->encode(text, true, false), want) << text;
    // output_text is output_ids decoded with the first piece's leading space dropped.
    const std::vector<int32_t> out_ids = p.at("output_ids").get<std::vector<int32_t>>();
    EXPECT_EQ(tok->decode(out_ids), p.at("output_text").get<std::string>()) << text;
  }
}

}  // namespace

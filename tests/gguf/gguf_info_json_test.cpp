// `slm info --json` equals the shipped *.info.json of every fixture and of stories260K,
// compared as JSON values (floats as float32), and `slm info` reads every GGUF in ../shared.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/shared.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

void expect_same(const json& got, const json& want, const std::string& where) {
  if (want.is_number_float() || got.is_number_float()) {
    ASSERT_TRUE(got.is_number()) << where << ": got " << got.dump();
    EXPECT_EQ(static_cast<float>(got.get<double>()), static_cast<float>(want.get<double>())) << where;
    return;
  }
  ASSERT_EQ(got.type(), want.type()) << where << ": got " << got.dump().substr(0, 80) << " want "
                                     << want.dump().substr(0, 80);
  if (want.is_object()) {
    ASSERT_EQ(got.size(), want.size()) << where;
    for (auto it = want.begin(); it != want.end(); ++it) {
      ASSERT_TRUE(got.contains(it.key())) << where << ": missing " << it.key();
      expect_same(got[it.key()], it.value(), where + "." + it.key());
    }
  } else if (want.is_array()) {
    ASSERT_EQ(got.size(), want.size()) << where;
    for (size_t k = 0; k < want.size(); ++k) expect_same(got[k], want[k], where + "[" + std::to_string(k) + "]");
  } else {
    EXPECT_EQ(got, want) << where;
  }
}

std::vector<std::string> info_files() {
  std::vector<std::string> out;
  for (const char* dir : {"fixtures", "models"})
    for (auto& e : fs::directory_iterator(slm::test::shared(dir)))
      if (e.path().string().ends_with(".info.json")) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST(InfoJson, MatchesEveryShippedHeader) {
  auto files = info_files();
  ASSERT_GT(files.size(), 10u);
  for (const std::string& info : files) {
    std::string gguf = info.substr(0, info.size() - std::string(".info.json").size()) + ".gguf";
    int rc = -1;
    std::string out = slm::test::run_cmd(slm::test::slm_bin() + " info --json '" + gguf + "'", &rc);
    ASSERT_EQ(rc, 0) << gguf;
    json got = json::parse(out);
    json want = json::parse(slm::test::read_file(info));
    expect_same(got, want, fs::path(gguf).filename().string());
  }
}

TEST(InfoText, ReadsEveryGgufInShared) {
  int n = 0;
  for (auto& e : fs::recursive_directory_iterator(slm::test::shared_dir())) {
    if (e.path().extension() != ".gguf") continue;
    int rc = -1;
    std::string out = slm::test::run_cmd(slm::test::slm_bin() + " info '" + e.path().string() + "' 2>&1", &rc);
    EXPECT_EQ(rc, 0) << e.path() << ": " << out.substr(0, 300);
    EXPECT_NE(out.find("totals:"), std::string::npos) << e.path();
    ++n;
  }
  EXPECT_GT(n, 40);
}

TEST(InfoText, BadFileGivesOneLineErrorAndNonZeroExit) {
  int rc = 0;
  std::string out = slm::test::run_cmd(slm::test::slm_bin() + " info " + slm::test::shared("fixtures/README.md") + " 2>&1", &rc);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("not a GGUF file"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
}

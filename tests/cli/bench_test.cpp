// `slm bench` on a tiny synthetic model: the records of -o json/csv and the table's columns
// as llama-bench has them, one per combination of the -t/-p/-n/-d lists, with sane values
// (speeds are not asserted: that is what the benchmark is for).
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>
#include <unistd.h>

#include "common/shared.h"

namespace slm {
namespace {

std::string capture(const std::string& cmd) {
  std::string out;
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
  if (!p) return out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p.get())) > 0) out.append(buf.data(), n);
  return out;
}

class Bench : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = (std::filesystem::temp_directory_path() / ("slm_bench_test_" + std::to_string(::getpid()) + ".gguf")).string();
    ASSERT_EQ(std::system((test::slm_bin() + " synth --preset tiny-llama --type Q4_0 -o " + model_ + " 2>/dev/null").c_str()), 0);
  }
  static void TearDownTestSuite() { std::filesystem::remove(model_); }
  static std::string model_;
};
std::string Bench::model_;

// One record per test, llama-bench's fields, for every combination of the lists: threads
// outermost, then depth, then the pp sizes and the tg sizes.
TEST_F(Bench, JsonHasARecordPerTest) {
  const std::string out =
      capture(test::slm_bin() + " bench -m " + model_ + " -t 1,2 -p 16,32 -n 4 -d 0,20 -r 3 -o json 2>/dev/null");
  const auto j = nlohmann::json::parse(out);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 2u * 2u * 3u);
  size_t i = 0;
  for (int threads : {1, 2})
    for (int depth : {0, 20})
      for (auto [p, n] : {std::pair{16, 0}, std::pair{32, 0}, std::pair{0, 4}}) {
        const auto& r = j[i++];
        EXPECT_EQ(r["model_filename"], model_);
        EXPECT_EQ(r["model_type"], "llama 1M Q4_0");  // architecture, size class, file type
        EXPECT_EQ(r["backend"], "CPU");
        EXPECT_EQ(r["n_threads"], threads);
        EXPECT_EQ(r["n_depth"], depth);
        EXPECT_EQ(r["n_prompt"], p);
        EXPECT_EQ(r["n_gen"], n);
        const std::string name = (p > 0 ? "pp" + std::to_string(p) : "tg" + std::to_string(n)) +
                                 (depth > 0 ? " @ d" + std::to_string(depth) : "");
        EXPECT_EQ(r["test"], name);
        ASSERT_EQ(r["samples_ts"].size(), 3u);
        double sum = 0;
        for (const auto& v : r["samples_ts"]) {
          EXPECT_GT(v.get<double>(), 0.0);
          sum += v.get<double>();
        }
        EXPECT_NEAR(r["avg_ts"].get<double>(), sum / 3, 1e-9 * sum);
        EXPECT_GE(r["stddev_ts"].get<double>(), 0.0);
        EXPECT_GT(r["model_size"].get<uint64_t>(), 0u);
        EXPECT_GT(r["model_n_params"].get<uint64_t>(), 1000000u);
        EXPECT_GT(r["peak_rss_bytes"].get<uint64_t>(), 1u << 20);
        // Energy: joules where measured, else null and a note saying why (never a guess).
        ASSERT_TRUE(r.contains("energy_j"));
        if (r["energy_j"].is_null())
          EXPECT_NE(r["energy_note"].get<std::string>().find("not measured"), std::string::npos);
      }
  // --json is -o json.
  const auto k = nlohmann::json::parse(capture(test::slm_bin() + " bench -m " + model_ + " -p 8 -n 0 -r 1 --json 2>/dev/null"));
  ASSERT_EQ(k.size(), 1u);
  EXPECT_EQ(k[0]["test"], "pp8");
}

TEST_F(Bench, CsvHasAHeaderAndARowPerTest) {
  const std::string out = capture(test::slm_bin() + " bench -m " + model_ + " -t 2 -p 8 -n 2 -d 5 -r 2 -o csv 2>/dev/null");
  std::vector<std::string> lines;
  for (size_t a = 0, b; a < out.size(); a = b + 1) {
    b = out.find('\n', a);
    if (b == std::string::npos) b = out.size();
    lines.push_back(out.substr(a, b - a));
  }
  ASSERT_EQ(lines.size(), 3u) << out;
  EXPECT_EQ(lines[0].rfind("model_filename,model_type,model_size,model_n_params,backend,n_threads,", 0), 0u) << lines[0];
  EXPECT_NE(lines[1].find("\"pp8 @ d5\""), std::string::npos) << lines[1];
  EXPECT_NE(lines[2].find("\"tg2 @ d5\""), std::string::npos) << lines[2];
}

TEST_F(Bench, TableHasLlamaBenchsColumns) {
  const std::string out = capture(test::slm_bin() + " bench -m " + model_ + " -t 2 -p 8 -n 2 -d 3 -r 1 2>/dev/null");
  EXPECT_EQ(out.rfind("| model ", 0), 0u) << out;
  const std::string header = out.substr(0, out.find('\n'));
  for (const char* col : {"| model ", " size |", " params |", " backend |", " threads |", " test |", " t/s |"})
    EXPECT_NE(header.find(col), std::string::npos) << col << " in " << header;
  EXPECT_NE(out.find("| llama 1M Q4_0 |"), std::string::npos) << out;
  EXPECT_NE(out.find("pp8 @ d3"), std::string::npos) << out;
  EXPECT_NE(out.find("tg2 @ d3"), std::string::npos) << out;
}

TEST_F(Bench, BadListsAreUsageErrors) {
  for (const char* args : {" -p 8,x", " -p 8,,16", " -d -1", " -t 1,100000", " -o xml"}) {
    const std::string out = capture(test::slm_bin() + " bench -m " + model_ + args + " 2>&1; echo rc=$?");
    EXPECT_NE(out.find("rc=2"), std::string::npos) << args << ": " << out;
    EXPECT_NE(out.find("slm: error: "), std::string::npos) << args << ": " << out;
  }
}

}  // namespace
}  // namespace slm

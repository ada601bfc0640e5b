// `slm bench --json` on a tiny synthetic model: one JSON object with exactly the promised
// fields and sane values (speeds are not asserted: that is what the benchmark is for).
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
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

TEST(Bench, JsonHasTheDocumentedFields) {
  const std::string model =
      (std::filesystem::temp_directory_path() / ("slm_bench_test_" + std::to_string(::getpid()) + ".gguf")).string();
  ASSERT_EQ(std::system((test::slm_bin() + " synth --preset tiny-llama --type Q4_0 -o " + model + " 2>/dev/null").c_str()), 0);
  const std::string out = capture(test::slm_bin() + " bench -m " + model + " -t 2 -p 32 -n 8 -r 2 --json 2>/dev/null");
  std::filesystem::remove(model);
  const auto j = nlohmann::json::parse(out);
  // model, threads, pp, tg, peak_rss_bytes and the energy: joules where measured, else null
  // and a note saying why (never a guess).
  EXPECT_EQ(j.size(), 7u);
  ASSERT_TRUE(j.contains("energy_j"));
  if (j["energy_j"].is_null())
    EXPECT_NE(j["energy_note"].get<std::string>().find("not measured"), std::string::npos);
  else
    EXPECT_GE(j["energy_j"].get<double>(), 0.0);
  EXPECT_EQ(j["model"], model);
  EXPECT_EQ(j["threads"], 2);
  EXPECT_EQ(j["pp"]["n"], 32);
  EXPECT_EQ(j["tg"]["n"], 8);
  for (const char* test : {"pp", "tg"}) {
    EXPECT_EQ(j[test].size(), 3u);
    EXPECT_GT(j[test]["tokens_per_s"].get<double>(), 0.0);
    EXPECT_GE(j[test]["stddev"].get<double>(), 0.0);
  }
  EXPECT_GT(j["peak_rss_bytes"].get<uint64_t>(), 1u << 20);
  // Key order as documented.
  EXPECT_LT(out.find("\"model\""), out.find("\"threads\""));
  EXPECT_LT(out.find("\"threads\""), out.find("\"pp\""));
  EXPECT_LT(out.find("\"pp\""), out.find("\"tg\""));
  EXPECT_LT(out.find("\"tg\""), out.find("\"peak_rss_bytes\""));
}

}  // namespace
}  // namespace slm

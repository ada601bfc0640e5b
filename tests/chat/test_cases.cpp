// Every reference rendering in /work/shared/templates must come out byte-identical.
#include <gtest/gtest.h>

#include <ctime>
#include <nlohmann/json.hpp>

#include "common/shared.h"
#include "slm/chat.h"
#include "slm/error.h"

using nlohmann::ordered_json;

namespace {

std::tm parse_local(const std::string& iso) {  // "2025-07-10T12:00:00"
  std::tm t{};
  if (!strptime(iso.c_str(), "%Y-%m-%dT%H:%M:%S", &t)) throw std::runtime_error("bad time " + iso);
  t.tm_isdst = -1;
  std::mktime(&t);  // fills in weekday and day of year
  return t;
}

// Renders each case; returns how many matched, printing the failures.
int run_file(const std::string& rel, int* total) {
  ordered_json cases = ordered_json::parse(slm::test::read_file(slm::test::shared(rel)));
  int ok = 0;
  *total = int(cases.size());
  for (auto& c : cases) {
    std::string name = c["name"];
    slm::ChatTemplateOptions opt;
    opt.add_generation_prompt = c.value("add_generation_prompt", false);
    opt.bos_token = c.value("bos_token", "");
    opt.eos_token = c.value("eos_token", "");
    opt.extra = c.value("extra", ordered_json::object());
    if (c.contains("strftime_now") && c["strftime_now"].is_string()) opt.now = parse_local(c["strftime_now"]);
    std::string got;
    try {
      slm::ChatTemplate tpl(c["template"].get<std::string>());
      got = tpl.render(c["messages"], opt);
    } catch (const slm::Error& e) {
      ADD_FAILURE() << rel << " [" << name << "] threw: " << e.what();
      continue;
    }
    std::string want = c["expected"];
    if (got == want) {
      ++ok;
    } else {
      ADD_FAILURE() << rel << " [" << name << "]\n--- expected ---\n" << want << "\n--- got ---\n" << got;
    }
  }
  return ok;
}

TEST(ChatCases, RealChatTemplates) {
  int total = 0, ok = run_file("templates/cases.json", &total);
  EXPECT_GT(total, 0);
  std::printf("cases.json: %d/%d byte-identical\n", ok, total);
}

TEST(ChatCases, JinjaFeatures) {
  int total = 0, ok = run_file("templates/jinja-features.json", &total);
  EXPECT_GT(total, 0);
  std::printf("jinja-features.json: %d/%d byte-identical\n", ok, total);
}

}  // namespace

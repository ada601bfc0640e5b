// Test helpers: where the shared reference material and the slm binary are.
#pragma once
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sys/wait.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace slm::test {

// SLM_SHARED if set, else the default CMake passes (../shared from the repository root).
inline std::string shared_dir() {
  if (const char* s = std::getenv("SLM_SHARED"); s && *s) return s;
  if (const char* s = std::getenv("SLM_SHARED_DEFAULT"); s && *s) return s;
  return "../shared";
}
inline std::string shared(const std::string& rel) { return shared_dir() + "/" + rel; }

// Every family's F32 fixture (../shared/fixtures/NAME-f32.gguf), names without ".gguf", sorted.
inline std::vector<std::string> f32_fixtures() {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(shared("fixtures"))) {
    const std::string f = e.path().filename().string();
    if (f.ends_with("-f32.gguf")) names.push_back(f.substr(0, f.size() - 5));
  }
  std::sort(names.begin(), names.end());
  return names;
}

inline std::string slm_bin() {
  if (const char* s = std::getenv("SLM_BIN"); s && *s) return s;
  return "build/slm";
}

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline std::vector<float> read_f32(const std::string& path) {
  std::string s = read_file(path);
  std::vector<float> v(s.size() / 4);
  std::memcpy(v.data(), s.data(), v.size() * 4);
  return v;
}

// Runs a shell command, returns its stdout; *rc gets the exit status.
inline std::string run_cmd(const std::string& cmd, int* rc = nullptr) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) throw std::runtime_error("popen failed: " + cmd);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = pclose(p);
  if (rc) *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

// A parameterised test's name from a fixture name ("llama-f32" → "llama_f32"): gtest allows
// only letters, digits and underscores.
struct ParamName {
  template <class Info>
  std::string operator()(const Info& info) const {
    std::string s = info.param;
    for (char& ch : s)
      if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
    return s;
  }
};

}  // namespace slm::test

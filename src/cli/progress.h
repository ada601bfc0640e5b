// A progress bar on stderr for long work (quantize, merge, convert): redrawn in place on a
// terminal, one line per step in a log.
#pragma once
#include <fmt/format.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

namespace slm::cli {

class Progress {
 public:
  explicit Progress(uint64_t total) : total_(total ? total : 1), tty_(isatty(2)) {}
  void update(uint64_t done, const std::string& what) {
    const int width = 30;
    const int filled = static_cast<int>(width * done / total_);
    const std::string bar = std::string(filled, '#') + std::string(width - filled, ' ');
    const std::string line = fmt::format("[{}] {:3d}% {}", bar, static_cast<int>(100 * done / total_), what);
    // On a terminal the bar redraws in place; in a log each step is one line.
    if (tty_)
      std::fprintf(stderr, "\r%-100s", line.c_str());
    else
      std::fprintf(stderr, "%s\n", line.c_str());
    std::fflush(stderr);
  }
  void done() {
    if (tty_) std::fprintf(stderr, "\n");
  }

 private:
  uint64_t total_;
  bool tty_;
};

}  // namespace slm::cli

// slm::Error — the one exception type of the library. Its message names the file, tensor,
// key or field at fault; the CLI prints it on one line, the server maps it to an HTTP error.
#pragma once
#include <stdexcept>
#include <string>

namespace slm {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace slm

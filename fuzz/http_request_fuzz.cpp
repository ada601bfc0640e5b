// libFuzzer target for the HTTP request reader: any byte stream, cut into pieces at the
// places the first bytes choose, gives requests and then either more to wait for or one
// error status; the same stream fed whole gives the same requests. Nothing may crash, and
// no request may hold more than the limits allow.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "server/http_server.h"

namespace {

struct Outcome {
  std::vector<std::string> requests;  // method, target, body of each
  int error = 0;
};

Outcome read_all(const std::string& bytes, const std::vector<size_t>& cuts, const slm::http::Limits& limits) {
  slm::http::RequestReader reader(limits);
  Outcome out;
  size_t at = 0;
  for (size_t i = 0; i <= cuts.size() && out.error == 0; ++i) {
    const size_t end = i < cuts.size() ? std::min(bytes.size(), cuts[i]) : bytes.size();
    if (end > at) reader.append(bytes.data() + at, end - at);
    at = std::max(at, end);
    for (;;) {
      slm::http::Request req;
      int status = 0;
      std::string why;
      const auto st = reader.next(&req, &status, &why);
      if (st == slm::http::RequestReader::State::need_more) break;
      if (st == slm::http::RequestReader::State::error) {
        if (status < 400 || status > 505 || why.empty()) __builtin_trap();
        out.error = status;
        break;
      }
      if (req.body.size() > limits.max_body || int(req.headers.size()) > limits.max_headers) __builtin_trap();
      out.requests.push_back(req.method + " " + req.target + " " + req.body);
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  slm::http::Limits limits;
  limits.max_body = 4096;
  limits.max_headers = 16;
  limits.max_header_bytes = 2048;
  limits.max_header_line = 512;
  limits.max_request_line = 512;
  const std::string bytes(reinterpret_cast<const char*>(data) + 2, size - 2);
  std::vector<size_t> cuts;
  for (size_t c = data[0] % 7 + 1; c < bytes.size(); c += size_t(data[1] % 13) + 1) cuts.push_back(c);
  const Outcome whole = read_all(bytes, {}, limits), pieces = read_all(bytes, cuts, limits);
  // Pieces see at least the requests that the whole stream gives before any error.
  if (whole.requests.size() > pieces.requests.size() && pieces.error == 0) __builtin_trap();
  for (size_t i = 0; i < std::min(whole.requests.size(), pieces.requests.size()); ++i)
    if (whole.requests[i] != pieces.requests[i]) __builtin_trap();
  return 0;
}

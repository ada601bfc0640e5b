#include "server/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <thread>

namespace slm::http {

namespace {

using Clock = std::chrono::steady_clock;

bool iequals(const std::string& a, const std::string& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// RFC 9110 token characters (method and field names).
bool token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
  return s.substr(b, e - b);
}

// Decimal digits only, no sign, at most 18 of them (so no overflow).
bool parse_length(const std::string& s, uint64_t* out) {
  if (s.empty() || s.size() > 18) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + uint64_t(c - '0');
  }
  *out = v;
  return true;
}

int ms_left(Clock::time_point deadline) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return ms <= 0 ? 0 : int(std::min<int64_t>(ms, 1 << 30));
}

// Sends all of data before the deadline; false when the client is gone or too slow.
bool send_all(int fd, const char* data, size_t n, int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (n > 0) {
    const ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) {
      data += w;
      n -= size_t(w);
      continue;
    }
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
    pollfd p{fd, POLLOUT, 0};
    const int left = ms_left(deadline);
    if (left == 0 || ::poll(&p, 1, left) <= 0 || (p.revents & (POLLERR | POLLHUP | POLLNVAL))) return false;
  }
  return true;
}

class ChunkedSink final : public Sink {
 public:
  ChunkedSink(int fd, int timeout_ms) : fd_(fd), timeout_ms_(timeout_ms) {}
  bool write(const char* data, size_t n) override {
    if (failed_ || finished_) return false;
    if (n == 0) return true;
    char size[32];
    const int len = std::snprintf(size, sizeof size, "%zx\r\n", n);
    std::string chunk(size, size_t(len));
    chunk.append(data, n);
    chunk += "\r\n";
    if (!send_all(fd_, chunk.data(), chunk.size(), timeout_ms_)) failed_ = true;
    return !failed_;
  }
  void done() override {
    if (failed_ || finished_) return;
    finished_ = true;
    if (!send_all(fd_, "0\r\n\r\n", 5, timeout_ms_)) failed_ = true;
  }
  bool is_writable() const override {
    if (failed_) return false;
    // A closed peer reads as end of stream; pipelined bytes waiting mean it is still there.
    char c;
    const ssize_t r = ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (r == 0) return false;
    if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
    pollfd p{fd_, POLLOUT, 0};
    return ::poll(&p, 1, 0) >= 0 && !(p.revents & (POLLERR | POLLHUP | POLLNVAL));
  }
  bool finished() const { return finished_ && !failed_; }

 private:
  int fd_, timeout_ms_;
  bool failed_ = false, finished_ = false;
};

}  // namespace

std::string field(const Fields& fields, const std::string& name) {
  for (const auto& [k, v] : fields)
    if (iequals(k, name)) return v;
  return "";
}

bool has_field(const Fields& fields, const std::string& name) {
  for (const auto& f : fields)
    if (iequals(f.first, name)) return true;
  return false;
}

void Response::set_header(const std::string& name, const std::string& value) {
  for (auto& f : headers)
    if (iequals(f.first, name)) {
      f.second = value;
      return;
    }
  headers.emplace_back(name, value);
}

void Response::set_content(std::string content, const std::string& type) {
  body = std::move(content);
  set_header("Content-Type", type);
}

void Response::set_chunked_content_provider(const std::string& type, std::function<bool(Sink&)> provider,
                                            std::function<void(bool)> finished) {
  set_header("Content-Type", type);
  stream = std::move(provider);
  stream_finished = std::move(finished);
}

const char* reason_phrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Status";
  }
}

// ---- the reader ----

RequestReader::State RequestReader::fail(int status, const std::string& why, int* st, std::string* w) {
  *st = status;
  *w = why;
  return State::error;
}

// The head is buf_[pos_, end of the blank line); checks and splits it into req_.
RequestReader::State RequestReader::parse_head(int* status, std::string* why) {
  while (buf_.compare(pos_, 2, "\r\n") == 0) pos_ += 2;  // empty lines before a request are ignored (RFC 9112)
  const size_t end = buf_.find("\r\n\r\n", pos_);
  const size_t line_end = buf_.find("\r\n", pos_);
  // The request line first: its own limit, then the rest of the head's.
  if (line_end == std::string::npos || line_end > end) {
    if (buf_.size() - pos_ > limits_.max_request_line)
      return fail(414, "the request line is longer than " + std::to_string(limits_.max_request_line) + " bytes",
                  status, why);
  } else if (line_end - pos_ > limits_.max_request_line) {
    return fail(414, "the request line is longer than " + std::to_string(limits_.max_request_line) + " bytes", status,
                why);
  }
  if (end == std::string::npos) {
    const size_t head_so_far = buf_.size() - pos_;
    if (line_end != std::string::npos && head_so_far > limits_.max_request_line + limits_.max_header_bytes + 4)
      return fail(431, "the request's header fields exceed " + std::to_string(limits_.max_header_bytes) + " bytes",
                  status, why);
    // Count complete header lines so far, so a flood of small ones stops at the count limit.
    if (line_end != std::string::npos) {
      int lines = 0;
      for (size_t p = line_end + 2; (p = buf_.find("\r\n", p)) != std::string::npos; p += 2)
        if (++lines > limits_.max_headers) return fail(431, "more than " + std::to_string(limits_.max_headers) + " header fields", status, why);
      const size_t last = buf_.rfind("\r\n");
      if (buf_.size() - (last == std::string::npos ? pos_ : last + 2) > limits_.max_header_line)
        return fail(431, "a header field is longer than " + std::to_string(limits_.max_header_line) + " bytes", status,
                    why);
    }
    return State::need_more;
  }
  req_ = Request{};
  // Request line: METHOD SP target SP HTTP/1.x
  const std::string line = buf_.substr(pos_, line_end - pos_);
  const size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
  if (sp1 == std::string::npos || sp2 == sp1) return fail(400, "malformed request line", status, why);
  req_.method = line.substr(0, sp1);
  req_.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  req_.version = line.substr(sp2 + 1);
  if (req_.method.empty() || !std::all_of(req_.method.begin(), req_.method.end(), token_char))
    return fail(400, "malformed request method", status, why);
  if (req_.target.empty() || req_.target.find_first_of(" \t") != std::string::npos ||
      std::any_of(req_.target.begin(), req_.target.end(), [](char c) { return static_cast<unsigned char>(c) < 0x21 || c == 0x7f; }))
    return fail(400, "malformed request target", status, why);
  if (req_.version != "HTTP/1.1" && req_.version != "HTTP/1.0") {
    if (req_.version.rfind("HTTP/", 0) == 0) return fail(505, "only HTTP/1.0 and HTTP/1.1 are served", status, why);
    return fail(400, "malformed request line", status, why);
  }
  req_.path = req_.target.substr(0, req_.target.find('?'));
  // Header fields.
  size_t total = 0;
  for (size_t p = line_end + 2; p < end + 2;) {
    const size_t e = buf_.find("\r\n", p);
    const std::string h = buf_.substr(p, e - p);
    p = e + 2;
    if (h.size() > limits_.max_header_line)
      return fail(431, "a header field is longer than " + std::to_string(limits_.max_header_line) + " bytes", status, why);
    total += h.size() + 2;
    if (total > limits_.max_header_bytes)
      return fail(431, "the request's header fields exceed " + std::to_string(limits_.max_header_bytes) + " bytes", status,
                  why);
    if (h.empty()) break;
    if (int(req_.headers.size()) >= limits_.max_headers)
      return fail(431, "more than " + std::to_string(limits_.max_headers) + " header fields", status, why);
    if (h[0] == ' ' || h[0] == '\t') return fail(400, "obsolete line folding in the header fields", status, why);
    const size_t colon = h.find(':');
    if (colon == std::string::npos || colon == 0) return fail(400, "malformed header field", status, why);
    const std::string name = h.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(), token_char)) return fail(400, "malformed header field name", status, why);
    const std::string value = trim(h.substr(colon + 1));
    if (std::any_of(value.begin(), value.end(), [](char c) { return c == '\0' || c == '\r' || c == '\n'; }))
      return fail(400, "malformed header field value", status, why);
    req_.headers.emplace_back(name, value);
  }
  pos_ = end + 4;
  // Framing: Content-Length (one value, repeats identical) or chunked, not both.
  bool has_length = false, chunked = false;
  uint64_t length = 0;
  for (const auto& [k, v] : req_.headers) {
    if (iequals(k, "Content-Length")) {
      uint64_t n = 0;
      if (!parse_length(v, &n)) return fail(400, "malformed Content-Length '" + v.substr(0, 40) + "'", status, why);
      if (has_length && n != length) return fail(400, "conflicting Content-Length fields", status, why);
      has_length = true;
      length = n;
    } else if (iequals(k, "Transfer-Encoding")) {
      if (chunked) return fail(400, "repeated Transfer-Encoding", status, why);
      if (lower(v) != "chunked") return fail(501, "transfer coding '" + v.substr(0, 40) + "' is not supported", status, why);
      chunked = true;
    }
  }
  if (chunked && has_length) return fail(400, "both Content-Length and Transfer-Encoding", status, why);
  if (has_length && length > limits_.max_body)
    return fail(413, "the body is larger than " + std::to_string(limits_.max_body) + " bytes", status, why);
  const bool expect = iequals(req_.get_header_value("Expect"), "100-continue");
  if (chunked) {
    phase_ = Phase::chunk_size;
    continue_pending_ = expect;
  } else {
    remaining_ = length;
    phase_ = Phase::body_length;
    continue_pending_ = expect && length > 0;
  }
  return State::need_more;
}

// The request is whole: hand it over and start on the next one.
RequestReader::State RequestReader::complete(Request* req) {
  *req = std::move(req_);
  req_ = Request{};
  phase_ = Phase::head;
  continue_pending_ = false;
  buf_.erase(0, pos_);
  pos_ = 0;
  return State::done;
}

RequestReader::State RequestReader::next(Request* req, int* status, std::string* why) {
  for (;;) {
    switch (phase_) {
      case Phase::head: {
        const State s = parse_head(status, why);
        if (s == State::error || phase_ == Phase::head) return s;
        break;
      }
      case Phase::body_length: {
        const size_t take = size_t(std::min<uint64_t>(remaining_, buf_.size() - pos_));
        req_.body.append(buf_, pos_, take);
        pos_ += take;
        remaining_ -= take;
        if (remaining_ > 0) {
          buf_.erase(0, pos_);
          pos_ = 0;
          return State::need_more;
        }
        return complete(req);
      }
      case Phase::chunk_size: {
        const size_t e = buf_.find("\r\n", pos_);
        if (e == std::string::npos) {
          if (buf_.size() - pos_ > 1024) return fail(400, "malformed chunk size line", status, why);
          return State::need_more;
        }
        std::string line = buf_.substr(pos_, e - pos_);
        line = trim(line.substr(0, line.find(';')));  // chunk extensions are ignored
        if (line.empty() || line.size() > 15 || !std::all_of(line.begin(), line.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); }))
          return fail(400, "malformed chunk size '" + line.substr(0, 20) + "'", status, why);
        remaining_ = std::stoull(line, nullptr, 16);
        if (req_.body.size() + remaining_ > limits_.max_body)
          return fail(413, "the body is larger than " + std::to_string(limits_.max_body) + " bytes", status, why);
        pos_ = e + 2;
        phase_ = remaining_ == 0 ? Phase::trailers : Phase::chunk_data;
        trailer_lines_ = 0;
        break;
      }
      case Phase::chunk_data: {
        const size_t take = size_t(std::min<uint64_t>(remaining_, buf_.size() - pos_));
        req_.body.append(buf_, pos_, take);
        pos_ += take;
        remaining_ -= take;
        buf_.erase(0, pos_);
        pos_ = 0;
        if (remaining_ > 0) return State::need_more;
        phase_ = Phase::chunk_data_end;
        break;
      }
      case Phase::chunk_data_end: {
        if (buf_.size() - pos_ < 2) return State::need_more;
        if (buf_.compare(pos_, 2, "\r\n") != 0) return fail(400, "a chunk does not end where its size says", status, why);
        pos_ += 2;
        phase_ = Phase::chunk_size;
        break;
      }
      case Phase::trailers: {  // trailer fields are read and dropped, up to the blank line
        const size_t e = buf_.find("\r\n", pos_);
        if (e == std::string::npos) {
          if (buf_.size() - pos_ > limits_.max_header_line) return fail(431, "a trailer field is too long", status, why);
          return State::need_more;
        }
        const bool blank = e == pos_;
        pos_ = e + 2;
        if (!blank) {
          if (++trailer_lines_ > limits_.max_headers) return fail(431, "too many trailer fields", status, why);
          break;
        }
        return complete(req);
      }
    }
  }
}

// ---- the server ----

Server::~Server() {
  stop();
  if (listen_fd_ >= 0) ::close(listen_fd_);  // bound but never listened
}

void Server::route(const std::string& method, const std::string& pattern, Handler h) {
  routes_.push_back({method, std::regex(pattern), std::move(h)});
}

int Server::bind(const std::string& host, int port, std::string* why) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &res); rc != 0) {
    *why = std::string("cannot resolve ") + host + ": " + gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  std::string last = "no address";
  for (addrinfo* a = res; a; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    // SO_REUSEADDR only (restart while old connections linger); no SO_REUSEPORT, so a port
    // in use fails here instead of silently sharing the traffic.
    int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 512) == 0) break;
    last = std::strerror(errno);
    ::close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0) {
    *why = last;
    return -1;
  }
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  listen_fd_ = fd;
  return addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                                    : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
}

void Server::listen() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;  // wakes every 100 ms to see stop()
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (active_ >= limits_.max_connections) {  // refused at once, with a status line
      static const std::string body =
          "{\"error\":{\"message\":\"too many open connections\",\"type\":\"server_error\",\"code\":\"unavailable\"}}";
      static const std::string busy =
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
          "Retry-After: 1\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
      ::send(fd, busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      ::close(fd);
      continue;
    }
    ++active_;
    try {
      std::thread([this, fd] {
        try {
          serve_connection(fd);
        } catch (...) {
        }
        ::close(fd);
        std::lock_guard<std::mutex> lock(mu_);
        if (--active_ == 0) all_closed_.notify_all();
      }).detach();
    } catch (...) {  // no thread to be had: refuse this one
      ::close(fd);
      std::lock_guard<std::mutex> lock(mu_);
      --active_;
    }
  }
  std::unique_lock<std::mutex> lock(mu_);
  all_closed_.wait(lock, [this] { return active_ == 0; });
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
}

// listen() polls every 100 ms and sees the flag; the socket stays its to close.
void Server::stop() { stopping_ = true; }

void Server::dispatch(Request& req, Response& res) {
  res.headers = default_headers_;
  for (const Route& r : routes_) {
    std::smatch m;
    if (r.method != req.method || !std::regex_match(req.path, m, r.pattern)) continue;
    req.matches.assign(m.begin(), m.end());
    try {
      r.handler(req, res);
    } catch (...) {
      res.status = 500;
      res.body.clear();
      res.stream = nullptr;
      if (exception_handler_) exception_handler_(req, res, std::current_exception());
    }
    return;
  }
  res.status = 404;
  res.error = "no route for " + req.method + " " + req.path.substr(0, 200);
  if (error_handler_) error_handler_(req, res);
}

bool Server::write_response(int fd, const Request& req, Response& res, bool keep_alive) {
  std::string head = "HTTP/1.1 " + std::to_string(res.status) + " " + reason_phrase(res.status) + "\r\n";
  for (const auto& [k, v] : res.headers)
    if (!iequals(k, "Content-Length") && !iequals(k, "Transfer-Encoding") && !iequals(k, "Connection"))
      head += k + ": " + v + "\r\n";
  head += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  if (!res.stream) {
    const bool no_body = res.status == 204 || res.status == 304 || req.method == "HEAD";
    if (!no_body) head += "Content-Length: " + std::to_string(res.body.size()) + "\r\n";
    head += "\r\n";
    if (!no_body) head += res.body;
    return send_all(fd, head.data(), head.size(), limits_.write_timeout_ms);
  }
  head += "Transfer-Encoding: chunked\r\n\r\n";
  bool ok = send_all(fd, head.data(), head.size(), limits_.write_timeout_ms);
  ChunkedSink sink(fd, limits_.write_timeout_ms);
  while (ok && !sink.finished()) {
    if (!res.stream(sink)) ok = false;
    if (ok && !sink.finished() && !sink.is_writable()) ok = false;
  }
  if (res.stream_finished) res.stream_finished(ok && sink.finished());
  return ok && sink.finished();
}

void Server::serve_connection(int fd) {
  RequestReader reader(limits_);
  char buf[16384];
  for (int served = 0; served < limits_.max_requests_per_connection && !stopping_; ++served) {
    // Wait for the next request: idle_timeout for its first byte, then request_timeout for
    // the whole of it, however its bytes trickle.
    Request req;
    int status = 0;
    std::string why;
    auto idle_deadline = Clock::now() + std::chrono::milliseconds(limits_.idle_timeout_ms);
    Clock::time_point request_deadline{};
    bool started = reader.has_bytes();
    if (started) request_deadline = Clock::now() + std::chrono::milliseconds(limits_.request_timeout_ms);
    RequestReader::State st;
    while ((st = reader.next(&req, &status, &why)) == RequestReader::State::need_more) {
      if (reader.take_continue() && !send_all(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25, limits_.write_timeout_ms))
        return;
      const auto deadline = started ? request_deadline : idle_deadline;
      const int left = ms_left(deadline);
      if (left == 0 || stopping_) {
        if (!started || stopping_) return;  // an idle connection just closes
        st = RequestReader::State::error;
        status = 408;
        why = "the request did not arrive within " + std::to_string(limits_.request_timeout_ms / 1000) + " s";
        break;
      }
      pollfd p{fd, POLLIN, 0};
      const int r = ::poll(&p, 1, std::min(left, 100));
      if (r < 0 && errno != EINTR) return;
      if (r <= 0) continue;
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return;  // closed (or reset) by the client
      if (!started) {
        started = true;
        request_deadline = Clock::now() + std::chrono::milliseconds(limits_.request_timeout_ms);
      }
      reader.append(buf, size_t(n));
    }
    const auto t0 = Clock::now();
    Response res;
    if (st == RequestReader::State::error) {
      res.headers = default_headers_;
      res.status = status;
      res.error = why;
      if (error_handler_) error_handler_(req, res);
      if (res.body.empty()) res.set_content(why + "\n", "text/plain");
      write_response(fd, req, res, false);
      if (logger_) logger_(req, res, std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      // Lingering close: closing with unread bytes would reset the connection and could
      // discard the answer before the client reads it, so read and drop what it still sends
      // (for at most 2 s: reading costs little, and a flood must not reset the answer away)
      // until it closes its side.
      ::shutdown(fd, SHUT_WR);
      const auto linger_end = Clock::now() + std::chrono::milliseconds(2000);
      for (;;) {
        pollfd p{fd, POLLIN, 0};
        const int left = ms_left(linger_end);
        if (left == 0 || ::poll(&p, 1, left) <= 0) break;
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
      }
      return;
    }
    const std::string connection = lower(req.get_header_value("Connection"));
    bool keep_alive = req.version == "HTTP/1.1" ? connection.find("close") == std::string::npos
                                                 : connection.find("keep-alive") != std::string::npos;
    if (served + 1 >= limits_.max_requests_per_connection || stopping_) keep_alive = false;
    dispatch(req, res);
    const bool ok = write_response(fd, req, res, keep_alive);
    if (logger_) logger_(req, res, std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    if (!ok || !keep_alive) return;
  }
}

}  // namespace slm::http

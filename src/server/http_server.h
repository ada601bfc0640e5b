// The HTTP/1.1 layer of `slm serve`, written for a server that may be exposed: every limit a
// client could push is bounded and answered with its status, not a dropped connection.
//   - request line ≤ max_request_line (414 when the target is longer), at most max_headers
//     header lines of at most max_header_line bytes, max_header_bytes in all (431);
//   - a body by Content-Length or chunked transfer coding, at most max_body bytes (413);
//     malformed framing (a bad or repeated Content-Length, both framings, a bad chunk size,
//     an unknown transfer coding, obsolete line folding) is a 400 with a status line;
//   - a request must arrive whole within request_timeout_ms of its first byte, however
//     slowly its bytes trickle in (408), and an idle kept-alive connection is closed after
//     idle_timeout_ms;
//   - at most max_connections open at once; the next is answered 503 at once and closed;
//     one thread per open connection, started when it opens (none at launch);
//   - pipelined requests are answered in order.
// Routes are (method, regular expression over the path) → handler; a response is a body or
// a chunked stream written through a Sink (server-sent events).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <regex>
#include <string>
#include <utility>
#include <vector>

namespace slm::http {

struct Limits {
  size_t max_request_line = 8192;
  size_t max_header_line = 8192;
  size_t max_header_bytes = 32768;
  int max_headers = 100;
  size_t max_body = size_t(16) << 20;
  int request_timeout_ms = 30000;  // first byte of a request → its last
  int idle_timeout_ms = 5000;      // a kept-alive connection waiting for its next request
  int write_timeout_ms = 600000;   // one write blocked on a client that does not read
  int max_connections = 256;
  int max_requests_per_connection = 1000;
};

using Fields = std::vector<std::pair<std::string, std::string>>;

// One field's value (names compare without case), or "".
std::string field(const Fields& fields, const std::string& name);
bool has_field(const Fields& fields, const std::string& name);

struct Request {
  std::string method, target, path, version;  // path: the target up to '?'
  Fields headers;
  std::string body;
  std::vector<std::string> matches;  // the route's match: [0] the path, then its groups
  bool has_header(const std::string& name) const { return has_field(headers, name); }
  std::string get_header_value(const std::string& name) const { return field(headers, name); }
};

// A streamed body's writer: each write is one chunk on the wire.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual bool write(const char* data, size_t n) = 0;  // false: the client is gone
  virtual void done() = 0;                              // the last chunk
  virtual bool is_writable() const = 0;                 // the client is still connected
};

struct Response {
  int status = 200;
  Fields headers;
  std::string body;
  // Called until it returns false (abandon the connection) or has called sink.done().
  std::function<bool(Sink&)> stream;
  std::function<void(bool completed)> stream_finished;
  std::string error;  // why the server refused the request (for the error handler's body)

  void set_header(const std::string& name, const std::string& value);
  std::string get_header_value(const std::string& name) const { return field(headers, name); }
  void set_content(std::string content, const std::string& type);
  void set_chunked_content_provider(const std::string& type, std::function<bool(Sink&)> provider,
                                    std::function<void(bool)> finished = {});
};

// Splits a connection's bytes into requests, in order, under the limits. Bytes may come in
// any pieces; each call to next() resumes where the last stopped.
class RequestReader {
 public:
  enum class State { need_more, done, error };
  explicit RequestReader(const Limits& limits) : limits_(limits) {}
  void append(const char* data, size_t n) { buf_.append(data, n); }
  // done: *req is the next request (its bytes consumed). error: *status and *why say what is
  // wrong; the connection cannot go on.
  State next(Request* req, int* status, std::string* why);
  bool has_bytes() const { return buf_.size() > 0; }
  // The head asked "Expect: 100-continue" and the body is still to come (asked once).
  bool take_continue() {
    const bool c = continue_pending_;
    continue_pending_ = false;
    return c;
  }

 private:
  enum class Phase { head, body_length, chunk_size, chunk_data, chunk_data_end, trailers };
  State fail(int status, const std::string& why, int* st, std::string* w);
  State parse_head(int* status, std::string* why);
  State complete(Request* req);

  Limits limits_;
  std::string buf_;
  size_t pos_ = 0;  // parsed up to here in buf_
  Phase phase_ = Phase::head;
  Request req_;
  uint64_t remaining_ = 0;  // body bytes (or this chunk's bytes) still to come
  bool continue_pending_ = false;
  int trailer_lines_ = 0;
};

class Server {
 public:
  using Handler = std::function<void(const Request&, Response&)>;
  explicit Server(const Limits& limits) : limits_(limits) {}
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void route(const std::string& method, const std::string& pattern, Handler h);
  void Get(const std::string& p, Handler h) { route("GET", p, std::move(h)); }
  void Post(const std::string& p, Handler h) { route("POST", p, std::move(h)); }
  void Put(const std::string& p, Handler h) { route("PUT", p, std::move(h)); }
  void Delete(const std::string& p, Handler h) { route("DELETE", p, std::move(h)); }
  void Options(const std::string& p, Handler h) { route("OPTIONS", p, std::move(h)); }
  // No route (404) or a request refused by the limits: res.status is set, res.body empty.
  void set_error_handler(Handler h) { error_handler_ = std::move(h); }
  void set_exception_handler(std::function<void(const Request&, Response&, std::exception_ptr)> h) {
    exception_handler_ = std::move(h);
  }
  // After each response: the request, the response and the milliseconds it took.
  void set_logger(std::function<void(const Request&, const Response&, double ms)> h) { logger_ = std::move(h); }
  void set_default_headers(Fields f) { default_headers_ = std::move(f); }

  // Binds host:port (port 0: any free port). Returns the port, or −1 with *why set.
  int bind(const std::string& host, int port, std::string* why);
  // Accepts until stop(); returns when every connection has ended.
  void listen();
  void stop();
  int open_connections() const { return active_; }

 private:
  struct Route {
    std::string method;
    std::regex pattern;
    Handler handler;
  };
  void serve_connection(int fd);
  void dispatch(Request& req, Response& res);
  bool write_response(int fd, const Request& req, Response& res, bool keep_alive);

  Limits limits_;
  std::vector<Route> routes_;
  Handler error_handler_;
  std::function<void(const Request&, Response&, std::exception_ptr)> exception_handler_;
  std::function<void(const Request&, const Response&, double)> logger_;
  Fields default_headers_;
  int listen_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::atomic<int> active_{0};
  std::mutex mu_;
  std::condition_variable all_closed_;
};

// The reason phrase of a status code.
const char* reason_phrase(int status);

}  // namespace slm::http

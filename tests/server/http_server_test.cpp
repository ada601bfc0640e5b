// The HTTP layer: the request reader against hand-written byte streams (framing, limits,
// pipelining, any split of the bytes), and a live server on loopback driven through raw
// sockets the way abusive clients drive it (trickling bytes, floods, idle connections,
// bad framing), checking the status line each gets and that others are still served.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "server/http_server.h"

namespace slm::http {
namespace {

using State = RequestReader::State;

struct Read {
  std::vector<Request> requests;
  int error = 0;
  std::string why;
};

// Feeds bytes in pieces of `step` (0: all at once) and collects what the reader gives.
Read read(const std::string& bytes, size_t step = 0, Limits limits = Limits{}) {
  RequestReader r(limits);
  Read out;
  for (size_t at = 0; at < bytes.size() || at == 0;) {
    const size_t n = step == 0 ? bytes.size() : std::min(step, bytes.size() - at);
    r.append(bytes.data() + at, n);
    at += n;
    for (;;) {
      Request req;
      const State st = r.next(&req, &out.error, &out.why);
      if (st == State::done) {
        out.requests.push_back(std::move(req));
        continue;
      }
      if (st == State::error) return out;
      break;
    }
    if (bytes.empty()) break;
  }
  return out;
}

TEST(HttpReader, PipelinedRequestsComeOutInOrderWhateverTheSplit) {
  const std::string bytes =
      "POST /v1/completions?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
      "GET /health HTTP/1.1\r\nHost: a\r\n\r\n"
      "\r\nPOST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n";
  for (size_t step : {size_t(0), size_t(1), size_t(2), size_t(7), size_t(64)}) {
    const Read r = read(bytes, step);
    ASSERT_EQ(r.error, 0) << r.why;
    ASSERT_EQ(r.requests.size(), 3u) << "step " << step;
    EXPECT_EQ(r.requests[0].method, "POST");
    EXPECT_EQ(r.requests[0].path, "/v1/completions");
    EXPECT_EQ(r.requests[0].target, "/v1/completions?x=1");
    EXPECT_EQ(r.requests[0].body, "hello");
    EXPECT_EQ(r.requests[0].get_header_value("host"), "a");  // names compare without case
    EXPECT_EQ(r.requests[1].path, "/health");
    EXPECT_EQ(r.requests[1].body, "");
    EXPECT_EQ(r.requests[2].body, "abcde");
  }
}

TEST(HttpReader, MalformedFramingIsA400WithItsReason) {
  struct Case {
    std::string bytes;
    int status;
  };
  const Case cases[] = {
      {"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
      {"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n", 400},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", 400},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
      {"GET / HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nBad Name: 1\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\n: empty\r\n\r\n", 400},
      {"GET /\r\n\r\n", 400},
      {"G(T / HTTP/1.1\r\n\r\n", 400},
      {"GET / HTTP/2.0\r\n\r\n", 505},
      {"\x16\x03\x01\x02\x01 hello\r\n\r\n", 400},  // TLS on a plain port
  };
  for (const Case& c : cases) {
    const Read r = read(c.bytes);
    EXPECT_EQ(r.error, c.status) << c.bytes;
    EXPECT_FALSE(r.why.empty());
    EXPECT_EQ(read(c.bytes, 1).error, c.status) << "byte by byte: " << c.bytes;
  }
}

TEST(HttpReader, LimitsGiveTheirStatusBeforeTheBytesPileUp) {
  Limits l;
  l.max_headers = 10;
  l.max_header_bytes = 1000;
  l.max_header_line = 200;
  l.max_request_line = 100;
  l.max_body = 50;
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 11; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(read(many + "\r\n", 0, l).error, 431);
  EXPECT_EQ(read(many, 0, l).error, 431);  // refused before the head even ends
  std::string ten = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 10; ++i) ten += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(read(ten + "\r\n", 0, l).error, 0);  // exactly the limit is fine
  EXPECT_EQ(read("GET / HTTP/1.1\r\nX: " + std::string(300, 'a') + "\r\n\r\n", 0, l).error, 431);
  EXPECT_EQ(read("GET / HTTP/1.1\r\nX: " + std::string(300, 'a'), 0, l).error, 431);  // a line without end
  EXPECT_EQ(read("GET /" + std::string(200, 'a') + " HTTP/1.1\r\n\r\n", 0, l).error, 414);
  EXPECT_EQ(read("GET /" + std::string(200, 'a'), 0, l).error, 414);
  EXPECT_EQ(read("POST / HTTP/1.1\r\nContent-Length: 51\r\n\r\n", 0, l).error, 413);  // before the body
  EXPECT_EQ(read("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n" + std::string(32, 'a') + "\r\n20\r\n", 0, l).error,
            413);
  const Read fifty = read("POST / HTTP/1.1\r\nContent-Length: 50\r\n\r\n" + std::string(50, 'b'), 0, l);
  ASSERT_EQ(fifty.requests.size(), 1u);
  EXPECT_EQ(fifty.requests[0].body.size(), 50u);
}

TEST(HttpReader, ExpectContinueIsAskedOnceBeforeTheBody) {
  RequestReader r{Limits{}};
  const std::string head = "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
  r.append(head.data(), head.size());
  Request req;
  int status = 0;
  std::string why;
  EXPECT_EQ(r.next(&req, &status, &why), State::need_more);
  EXPECT_TRUE(r.take_continue());
  EXPECT_FALSE(r.take_continue());
  r.append("ok", 2);
  EXPECT_EQ(r.next(&req, &status, &why), State::done);
  EXPECT_EQ(req.body, "ok");
}

// ---- a live server ----

class LiveServer : public ::testing::Test {
 protected:
  void SetUp() override {
    limits.request_timeout_ms = 1500;
    limits.idle_timeout_ms = 1000;
    limits.max_connections = 6;
    server = std::make_unique<Server>(limits);
    server->Get("/echo", [](const Request& req, Response& res) { res.set_content("echo " + req.target, "text/plain"); });
    server->Post("/len", [](const Request& req, Response& res) {
      res.set_content(std::to_string(req.body.size()), "text/plain");
    });
    server->Get("/stream", [](const Request&, Response& res) {
      res.set_chunked_content_provider("text/event-stream", [](Sink& sink) {
        for (int i = 0; i < 3; ++i) {
          const std::string s = "data: " + std::to_string(i) + "\n\n";
          if (!sink.write(s.data(), s.size())) return false;
        }
        sink.done();
        return true;
      });
    });
    server->Get("/throw", [](const Request&, Response&) { throw std::runtime_error("boom"); });
    server->set_exception_handler([](const Request&, Response& res, std::exception_ptr) {
      res.set_content("caught", "text/plain");
    });
    std::string why;
    port = server->bind("127.0.0.1", 0, &why);
    ASSERT_GT(port, 0) << why;
    thread = std::thread([this] { server->listen(); });
  }
  void TearDown() override {
    server->stop();
    thread.join();
  }

  int connect_client() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    return fd;
  }
  static void send_str(int fd, const std::string& s) { ASSERT_EQ(send(fd, s.data(), s.size(), MSG_NOSIGNAL), ssize_t(s.size())); }
  // Everything the server sends until it closes or `ms` pass.
  static std::string receive(int fd, int ms, size_t until_bytes = SIZE_MAX) {
    std::string got;
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    char buf[4096];
    while (got.size() < until_bytes) {
      const int left = int(std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now()).count());
      pollfd p{fd, POLLIN, 0};
      if (left <= 0 || poll(&p, 1, left) <= 0) break;
      const ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, size_t(n));
    }
    return got;
  }
  // One whole request on a fresh connection: the status line and body of the answer.
  std::string ask(const std::string& request, int ms = 2000) {
    const int fd = connect_client();
    send_str(fd, request);
    std::string got = receive(fd, ms);
    close(fd);
    return got;
  }

  Limits limits;
  std::unique_ptr<Server> server;
  std::thread thread;
  int port = 0;
};

int count(const std::string& s, const std::string& what) {
  int n = 0;
  for (size_t p = 0; (p = s.find(what, p)) != std::string::npos; p += what.size()) ++n;
  return n;
}

TEST_F(LiveServer, PipelinedRequestsAreAnsweredInOrder) {
  const int fd = connect_client();
  send_str(fd, "GET /echo?1 HTTP/1.1\r\n\r\nPOST /len HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcdGET /echo?3 HTTP/1.1\r\nConnection: close\r\n\r\n");
  const std::string got = receive(fd, 3000);
  close(fd);
  ASSERT_EQ(count(got, "HTTP/1.1 200 OK"), 3) << got;
  const size_t a = got.find("echo /echo?1"), b = got.find("\r\n\r\n4"), c = got.find("echo /echo?3");
  ASSERT_NE(a, std::string::npos);
  ASSERT_NE(b, std::string::npos);
  ASSERT_NE(c, std::string::npos);
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
}

TEST_F(LiveServer, BadFramingGetsAStatusLine) {
  EXPECT_EQ(ask("POST /len HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab").rfind("HTTP/1.1 400 ", 0), 0u);
  EXPECT_EQ(ask("POST /len HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nqq\r\n").rfind("HTTP/1.1 400 ", 0), 0u);
  std::string flood = "GET /echo HTTP/1.1\r\n";
  for (int i = 0; i < 200; ++i) flood += "X-Flood-" + std::to_string(i) + ": " + std::string(100, 'f') + "\r\n";
  EXPECT_EQ(ask(flood + "\r\n").rfind("HTTP/1.1 431 ", 0), 0u);
  EXPECT_EQ(ask("GET /" + std::string(10000, 'u') + " HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 414 ", 0), 0u);
  EXPECT_EQ(ask("GET /nowhere HTTP/1.1\r\nConnection: close\r\n\r\n").rfind("HTTP/1.1 404 ", 0), 0u);
  const std::string thrown = ask("GET /throw HTTP/1.1\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(thrown.rfind("HTTP/1.1 500 ", 0), 0u);
  EXPECT_NE(thrown.find("caught"), std::string::npos);
}

TEST_F(LiveServer, ChunkedStreamAndExpectContinue) {
  const std::string got = ask("GET /stream HTTP/1.1\r\nConnection: close\r\n\r\n");
  EXPECT_NE(got.find("Transfer-Encoding: chunked"), std::string::npos);
  EXPECT_NE(got.find("9\r\ndata: 0\n\n\r\n9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n0\r\n\r\n"), std::string::npos) << got;
  const int fd = connect_client();
  send_str(fd, "POST /len HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
  EXPECT_EQ(receive(fd, 1000, 25), "HTTP/1.1 100 Continue\r\n\r\n");
  send_str(fd, "xyz");
  const std::string rest = receive(fd, 1000);
  EXPECT_EQ(rest.rfind("HTTP/1.1 200 OK", 0), 0u);
  EXPECT_NE(rest.find("\r\n\r\n3"), std::string::npos);
  close(fd);
}

// Trickling a byte at a time does not extend the request's time: 408 by the deadline, while
// another client is served at once; an idle kept-alive connection is closed.
TEST_F(LiveServer, SlowClientsGet408AndOthersAreServedMeanwhile) {
  const int slow = connect_client();
  const auto t0 = std::chrono::steady_clock::now();
  send_str(slow, "GET /echo HTTP/1.1\r\n");
  std::string reply;
  std::thread trickle([&] {
    for (int i = 0; i < 30; ++i) {
      if (send(slow, "X", 1, MSG_NOSIGNAL) != 1) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto q0 = std::chrono::steady_clock::now();
  EXPECT_EQ(ask("GET /echo HTTP/1.1\r\nConnection: close\r\n\r\n").rfind("HTTP/1.1 200 OK", 0), 0u);
  EXPECT_LT(std::chrono::steady_clock::now() - q0, std::chrono::milliseconds(500));
  reply = receive(slow, 4000);
  const auto waited = std::chrono::steady_clock::now() - t0;
  trickle.join();
  close(slow);
  EXPECT_EQ(reply.rfind("HTTP/1.1 408 ", 0), 0u) << reply;
  EXPECT_GE(waited, std::chrono::milliseconds(1400));
  EXPECT_LT(waited, std::chrono::milliseconds(3000));

  const int idle = connect_client();  // says nothing: closed after the idle timeout, no reply
  const auto i0 = std::chrono::steady_clock::now();
  EXPECT_EQ(receive(idle, 3000), "");
  EXPECT_LT(std::chrono::steady_clock::now() - i0, std::chrono::milliseconds(2000));
  close(idle);
}

TEST_F(LiveServer, ConnectionsBeyondTheLimitAreRefusedAtOnce) {
  std::vector<int> held;
  for (int i = 0; i < limits.max_connections; ++i) {
    held.push_back(connect_client());
    send_str(held.back(), "GET /echo HTTP/1.1\r\n");  // a request begun, never finished
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(server->open_connections(), limits.max_connections);
  const auto t0 = std::chrono::steady_clock::now();
  const std::string refused = ask("GET /echo HTTP/1.1\r\n\r\n");
  EXPECT_EQ(refused.rfind("HTTP/1.1 503 ", 0), 0u) << refused;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(500));
  for (int fd : held) close(fd);
  // Once they are gone, new clients are served again.
  for (int i = 0; i < 50 && server->open_connections() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(ask("GET /echo HTTP/1.1\r\nConnection: close\r\n\r\n").rfind("HTTP/1.1 200 OK", 0), 0u);
}

}  // namespace
}  // namespace slm::http

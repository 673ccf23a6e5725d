// server_util.h - helpers of the suites that talk to kvs-server: a RESP
// client connection with deadlines (Conn), a kvs-server child process
// (Server), and replies as text (ReplyText).
#ifndef KVS_SERVER_UTIL_H
#define KVS_SERVER_UTIL_H

#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "resp.h"
#include "test_util.h"

namespace kvstest {

using Clock = std::chrono::steady_clock;

// One reply as text: "bulk:v", "nil", "int:1", "simple:OK", "error:...",
// "array:N[a,b]" (elements as text), or "<...>" when something failed.
inline std::string ReplyText(const net_resp_reply* r) {
  switch (r->type) {
    case NET_RESP_T_BULK: return "bulk:" + std::string(r->str, r->len);
    case NET_RESP_T_NULL: return "nil";
    case NET_RESP_T_INTEGER: return "int:" + std::to_string(r->integer);
    case NET_RESP_T_SIMPLE: return "simple:" + std::string(r->str, r->len);
    case NET_RESP_T_ERROR: return "error:" + std::string(r->str, r->len);
    case NET_RESP_T_NULL_ARRAY: return "nilarray";
    case NET_RESP_T_ARRAY: {
      std::string s = "array:" + std::to_string(r->nelem) + "[";
      const net_resp_reply* e = r + 1;
      for (size_t i = 0; i < r->nelem; i++, e = net_resp_reply_next(e))
        s += (i ? "," : "") + ReplyText(e);
      return s + "]";
    }
  }
  return "<?>";
}

// A client connection speaking RESP with deadlines.
class Conn {
 public:
  explicit Conn(int port) : fd_(kvstest::ConnectLoopback(port)) { net_resp_reader_init(&rd_); }
  // Adopt a connected socket (or -1).
  static Conn Adopt(int fd) { return Conn(fd, 0); }
  Conn(Conn&& o) noexcept : fd_(o.fd_), in_(o.in_), rd_(o.rd_) {
    o.fd_ = -1;
    o.in_ = NET_BUF_INIT;
    net_resp_reader_init(&o.rd_);
  }
  ~Conn() {
    if (fd_ >= 0) close(fd_);
    net_buf_free(&in_);
    net_resp_reader_free(&rd_);
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }

  bool SendRaw(const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  static std::string Encode(const std::vector<std::string>& args) {
    net_buf b = NET_BUF_INIT;
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    net_resp_put_command(&b, argv.size(), argv.data(), lens.data());
    std::string s(b.data, b.len);
    net_buf_free(&b);
    return s;
  }
  bool Send(const std::vector<std::string>& args) { return SendRaw(Encode(args)); }

  // The next reply as text; "<closed>" or "<timeout>" otherwise.
  std::string Read(int timeout_ms = 10000) {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      const net_resp_reply* r = nullptr;
      size_t used = 0;
      int rc = net_resp_read_reply(&rd_, in_.data, in_.len, &r, &used);
      if (rc == NET_RESP_OK) {
        std::string s = ReplyText(r);
        net_buf_consume(&in_, used);
        return s;
      }
      if (rc != NET_RESP_NEED_MORE) return "<bad reply>";
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      pollfd p{fd_, POLLIN, 0};
      if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) return "<timeout>";
      if (net_buf_reserve(&in_, 1 << 20) != NET_RESP_OK) return "<oom>";
      ssize_t n = recv(fd_, in_.data + in_.len, in_.cap - in_.len, 0);
      if (n <= 0) return "<closed>";
      in_.len += static_cast<size_t>(n);
    }
  }
  std::string Cmd(const std::vector<std::string>& args, int timeout_ms = 10000) {
    if (!Send(args)) return "<send failed>";
    return Read(timeout_ms);
  }
  // Did the server close the connection (within the deadline)?
  bool Closed(int timeout_ms = 5000) {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    char buf[65536];
    while (Clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return true;
    }
    return false;
  }

 private:
  Conn(int fd, int) : fd_(fd) { net_resp_reader_init(&rd_); }
  int fd_;
  net_buf in_ = NET_BUF_INIT;
  net_resp_reader rd_;
};

// A kvs-server child process.
class Server {
 public:
  Server() = default;
  // The log and port file sit beside the data directory, which may be
  // /tmp itself: kept only when the test failed (its log explains why).
  ~Server() {
    Kill();
    RemoveLog();
  }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Start it on 127.0.0.1:0 (unless args has --addr) with its data in dir;
  // wait (with a deadline) for the port file.  Returns false if it exited.
  // child_setup runs in the child just before exec (e.g. a setrlimit).
  bool Start(const std::string& dir, std::vector<std::string> args = {},
             const std::vector<std::string>& env = {},
             const std::function<void()>& child_setup = nullptr) {
    static int serial = 0;
    Kill();       // a restart without a Stop
    RemoveLog();  // a restart's earlier log
    log_ = dir + "/../server-" + std::to_string(getpid()) + "-" + std::to_string(serial++) + ".log";
    port_file_ = log_ + ".port";
    unlink(port_file_.c_str());
    bool has_addr = false;
    for (const auto& a : args) has_addr |= a == "--addr";
    std::vector<std::string> argv{Bin("kvs-server"), "--dir", dir, "--port-file", port_file_,
                                  "--threads", "2"};
    if (!has_addr) {
      argv.push_back("--addr");
      argv.push_back("127.0.0.1:0");
    }
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int in = open("/dev/null", O_RDONLY);
      if (fd < 0 || in < 0) _exit(126);
      dup2(in, 0);
      dup2(fd, 1);
      dup2(fd, 2);
      for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
      if (child_setup) child_setup();
      std::vector<char*> a;
      for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
      a.push_back(nullptr);
      execv(a[0], a.data());
      _exit(127);
    }
    auto deadline = Clock::now() + std::chrono::seconds(20);
    while (Clock::now() < deadline) {
      int st;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        pid_ = -1;
        return false;
      }
      std::string p = kvstest::ReadFile(port_file_);
      if (!p.empty() && p.back() == '\n') {
        port_ = std::stoi(p);
        return true;
      }
      usleep(10000);
    }
    ADD_FAILURE() << "kvs-server wrote no port file within 20 s";
    Kill();
    return false;
  }

  // SIGTERM (or another signal) and wait; returns the exit status.
  int Stop(int sig = SIGTERM, int timeout_ms = 10000) {
    if (pid_ <= 0) return status_;
    kill(pid_, sig);
    int st = 0;
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (waitpid(pid_, &st, WNOHANG) != pid_) {
      if (Clock::now() > deadline) {
        ADD_FAILURE() << "kvs-server did not stop within " << timeout_ms << " ms";
        kill(pid_, SIGKILL);
        waitpid(pid_, &st, 0);
        break;
      }
      usleep(5000);
    }
    pid_ = -1;
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    CheckLog();
    return status_;
  }
  void Kill() {
    if (pid_ > 0) Stop(SIGKILL);
  }
  void CheckLog() {
    std::string l = log();
    EXPECT_FALSE(kvstest::HasSanitizerReport(l)) << l;
  }
  bool alive() const { return pid_ > 0 && kill(pid_, 0) == 0; }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  int status() const { return status_; }
  std::string log() const { return kvstest::ReadFile(log_); }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  int status_ = -1;
  void RemoveLog() {
    if (!log_.empty() && !::testing::Test::HasFailure()) {
      unlink(log_.c_str());
      unlink(port_file_.c_str());
    }
  }

  std::string log_, port_file_;
};

}  // namespace kvstest

#endif  // KVS_SERVER_UTIL_H

// test_util.h - helpers shared by the googletest suites: temporary
// directories, running the project's binaries and capturing their output.
#ifndef KVS_TEST_UTIL_H
#define KVS_TEST_UTIL_H

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kvs.h"

namespace kvstest {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents when
// the object goes away.
class TempDir {
 public:
  // Under `base` when given (e.g. /dev/shm, where fsync costs nothing),
  // else $TMPDIR or /tmp.
  explicit TempDir(const char* base = nullptr) {
    if (!base || access(base, W_OK) != 0) base = getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/kvs-test-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) abort();
    path_ = buf.data();
  }
  ~TempDir() { RemoveTree(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

  static void RemoveTree(const std::string& p) {
    DIR* d = opendir(p.c_str());
    if (d) {
      while (dirent* e = readdir(d)) {
        std::string n = e->d_name;
        if (n == "." || n == "..") continue;
        std::string c = p + "/" + n;
        struct stat st;
        if (lstat(c.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
          RemoveTree(c);
        else
          unlink(c.c_str());
      }
      closedir(d);
    }
    rmdir(p.c_str());
  }

 private:
  std::string path_;
};

// The result of running a program.
struct RunResult {
  int status = -1;  // exit code, or 128+signal
  std::string out;
  std::string err;
};

inline std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
}

// Run argv (argv[0] is a path) with stdin from /dev/null and stdout/stderr
// captured, in directory `cwd` if not empty.  A deadline kills the child.
inline RunResult Run(const std::vector<std::string>& argv, const std::string& cwd = "",
                     int timeout_sec = 60) {
  RunResult r;
  char out_tmpl[] = "/tmp/kvs-out-XXXXXX";
  char err_tmpl[] = "/tmp/kvs-err-XXXXXX";
  int ofd = mkstemp(out_tmpl), efd = mkstemp(err_tmpl);
  if (ofd < 0 || efd < 0) abort();
  pid_t pid = fork();
  if (pid == 0) {
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(126);
    int in = open("/dev/null", O_RDONLY);
    dup2(in, 0);
    dup2(ofd, 1);
    dup2(efd, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  int st = 0;
  for (int waited_ms = 0;; waited_ms += 10) {
    pid_t w = waitpid(pid, &st, WNOHANG);
    if (w == pid) break;
    if (waited_ms > timeout_sec * 1000) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      ADD_FAILURE() << argv[0] << " timed out after " << timeout_sec << "s";
      break;
    }
    usleep(10000);
  }
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.out = ReadFile(out_tmpl);
  r.err = ReadFile(err_tmpl);
  close(ofd);
  close(efd);
  unlink(out_tmpl);
  unlink(err_tmpl);
  return r;
}

// Start argv with stdout on a pipe; once `marker` has appeared on it, let it
// run for `ms` more milliseconds, then SIGKILL it.  Returns all it wrote
// (what a killed child wrote is complete up to its last write()).
inline std::string RunAndKill(const std::vector<std::string>& argv, const std::string& marker, int ms) {
  int fds[2];
  if (pipe(fds) != 0) abort();
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(fds[1]);
  std::string out;
  char buf[65536];
  bool started = false;
  auto start = std::chrono::steady_clock::now();
  auto deadline = start;
  for (;;) {
    auto now = std::chrono::steady_clock::now();
    if (started && now >= deadline) break;
    if (now - start > std::chrono::seconds(30)) {
      ADD_FAILURE() << argv[0] << " did not print '" << marker << "' within 30 s";
      break;
    }
    struct pollfd p = {fds[0], POLLIN, 0};
    if (poll(&p, 1, 5) > 0) {
      ssize_t n = read(fds[0], buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
      if (!started && out.find(marker) != std::string::npos) {
        started = true;  // count from here: sanitizer start-up is slow
        deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
      }
    }
  }
  kill(pid, SIGKILL);
  for (;;) {
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  int st;
  waitpid(pid, &st, 0);
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) << argv[0] << " ended before it was killed";
  return out;
}

inline std::string Bin(const std::string& name) { return std::string(KVS_BIN_DIR) + "/" + name; }

// Segment files of a store directory, oldest first.
inline std::vector<std::string> Segments(const std::string& dir) {
  std::vector<std::string> v;
  DIR* d = opendir(dir.c_str());
  if (!d) return v;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.size() == 14 && n.substr(10) == ".seg") v.push_back(dir + "/" + n);
  }
  closedir(d);
  std::sort(v.begin(), v.end());
  return v;
}

inline off_t FileSize(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

// Does the sanitizer (or anything else) report trouble in a child's stderr?
inline bool HasSanitizerReport(const std::string& err) {
  return err.find("Sanitizer") != std::string::npos || err.find("runtime error:") != std::string::npos;
}

// ---- loopback sockets (servers in tests use 127.0.0.1 only) -------------

// 127.0.0.1:port.
inline sockaddr_in LoopbackAddr(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  return a;
}

// A socket bound to 127.0.0.1:port (0: any free port) and, when `listening`,
// listening.  Returns the fd (or -1); *bound gets the port.
inline int LoopbackSocket(int port, bool listening, int* bound) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a = LoopbackAddr(port);
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      (listening && listen(fd, 64) != 0) ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(fd);
    return -1;
  }
  *bound = ntohs(a.sin_port);
  return fd;
}

// A port nothing listens on right now (bound, read, closed), or -1.
// Poll pred every 10 ms until it holds or `ms` have passed; returns its
// last value.  For what a background thread finishes a moment later (the
// compaction helper writing a hint file through a temporary one).
inline bool Eventually(const std::function<bool()>& pred, int ms = 5000) {
  for (int waited = 0; !pred(); waited += 10) {
    if (waited >= ms) return false;
    usleep(10000);
  }
  return true;
}

inline int FreePort() {
  int port = -1;
  int fd = LoopbackSocket(0, false, &port);
  if (fd < 0) return -1;
  close(fd);
  return port;
}

// A connection to 127.0.0.1:port, or -1.
inline int ConnectLoopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a = LoopbackAddr(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace kvstest

#endif  // KVS_TEST_UTIL_H

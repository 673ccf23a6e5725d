// client_test.cc - kvs-client as a real process: talent-plan project 3's client
// behaviour against a real redis-server, argument and address errors, a refused
// connection, and servers that answer badly.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "resp.h"
#include "server_util.h"
#include "test_util.h"

namespace {

using kvstest::Bin;
using kvstest::RunResult;
using kvstest::TempDir;
using kvstest::ConnectLoopback;
using kvstest::FreePort;
using kvstest::LoopbackSocket;

constexpr const char kRedisServer[] = "/usr/bin/redis-server";
constexpr const char kNotFound[] = "Key not found\n";

// Send one command to 127.0.0.1:port and return the reply as text
// ("bulk:value", "nil", "int:1", "simple:OK", "error:..."), or "<...>" on
// failure.  Independent of kvs-client (it uses only the codec), so it can
// check what the client did.
std::string Command(int port, const std::vector<std::string>& args, int timeout_ms = 5000) {
  int fd = ConnectLoopback(port);
  if (fd < 0) return "<connect failed>";
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  net_buf out = NET_BUF_INIT, in = NET_BUF_INIT;
  net_resp_reader rd;
  net_resp_reader_init(&rd);
  std::string result = "<no reply>";
  if (net_resp_put_command(&out, argv.size(), argv.data(), lens.data()) != NET_RESP_OK ||
      send(fd, out.data, out.len, MSG_NOSIGNAL) != static_cast<ssize_t>(out.len)) {
    result = "<send failed>";
  } else {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      const net_resp_reply* r = nullptr;
      size_t used = 0;
      int rc = net_resp_read_reply(&rd, in.data, in.len, &r, &used);
      if (rc == NET_RESP_OK) {
        switch (r->type) {
          case NET_RESP_T_BULK: result = "bulk:" + std::string(r->str, r->len); break;
          case NET_RESP_T_NULL: result = "nil"; break;
          case NET_RESP_T_INTEGER: result = "int:" + std::to_string(r->integer); break;
          case NET_RESP_T_SIMPLE: result = "simple:" + std::string(r->str, r->len); break;
          case NET_RESP_T_ERROR: result = "error:" + std::string(r->str, r->len); break;
          default: result = "<other reply>";
        }
        break;
      }
      if (rc != NET_RESP_NEED_MORE) {
        result = "<bad reply>";
        break;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd pfd{fd, POLLIN, 0};
      if (left.count() <= 0 || poll(&pfd, 1, static_cast<int>(left.count())) <= 0) {
        result = "<timeout>";
        break;
      }
      if (net_buf_reserve(&in, 65536) != NET_RESP_OK) break;
      ssize_t n = recv(fd, in.data + in.len, in.cap - in.len, 0);
      if (n <= 0) {
        result = "<closed>";
        break;
      }
      in.len += static_cast<size_t>(n);
    }
  }
  close(fd);
  net_buf_free(&out);
  net_buf_free(&in);
  net_resp_reader_free(&rd);
  return result;
}

// Run kvs-client; every run is checked for a sanitizer report.
RunResult Client(const std::vector<std::string>& args) {
  std::vector<std::string> argv{Bin("kvs-client")};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = kvstest::Run(argv, "", 30);
  std::string cmd;
  for (const auto& a : args) cmd += " " + a;
  EXPECT_FALSE(kvstest::HasSanitizerReport(r.err)) << "kvs-client" << cmd << ":\n" << r.err;
  return r;
}

// A failure: a non-zero exit that is not a crash, a message on stderr, and
// nothing on stdout.
void ExpectFailure(const RunResult& r, const std::string& what) {
  EXPECT_GT(r.status, 0) << what;
  EXPECT_LT(r.status, 128) << what << " (killed by a signal?)\nstderr: " << r.err;
  EXPECT_EQ(r.out, "") << what;
  EXPECT_NE(r.err, "") << what;
}

void ExpectOk(const RunResult& r, const std::string& what) {
  EXPECT_EQ(r.status, 0) << what << "\nstderr: " << r.err;
  EXPECT_EQ(r.err, "") << what;
}

// Is kvs-client built?  Until the Makefile has a rule for it, a missing
// binary skips these tests instead of failing everyone's `make test`; once
// the rule is there, a missing binary is a failure.
bool ClientBuilt() {
  if (access(Bin("kvs-client").c_str(), X_OK) == 0) return true;
  if (kvstest::ReadFile(std::string(KVS_SRC_DIR) + "/Makefile").find("bin/kvs-client") !=
      std::string::npos)
    ADD_FAILURE() << "kvs-client is not built at " << Bin("kvs-client");
  return false;
}
#define REQUIRE_CLIENT() \
  if (!ClientBuilt()) GTEST_SKIP() << "kvs-client is not built (no Makefile rule yet)"

// ---- against a real Redis server ----------------------------------------------------

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_CLIENT();
    if (access(kRedisServer, X_OK) != 0)
      GTEST_SKIP() << kRedisServer << " not found: install Debian's redis-server package "
                   << "to run the kvs-client tests against a real Redis";
    // The port was free a moment ago; if another process takes it before
    // redis-server binds it, redis-server exits and we try another.
    for (int attempt = 0; attempt < 5 && pid_ < 0; attempt++) StartRedis();
    ASSERT_GT(pid_, 0) << "redis-server did not start; its log:\n"
                       << kvstest::ReadFile(dir_.file("redis.log"));
    addr_ = "127.0.0.1:" + std::to_string(port_);
  }

  void TearDown() override {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int st = 0;
    for (int waited_ms = 0; waitpid(pid_, &st, WNOHANG) != pid_; waited_ms += 10) {
      if (waited_ms > 5000) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &st, 0);
        break;
      }
      usleep(10000);
    }
    pid_ = -1;
  }

  void StartRedis() {
    port_ = FreePort();
    ASSERT_GT(port_, 0);
    std::string log = dir_.file("redis.log");
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      int in = open("/dev/null", O_RDONLY);
      if (fd < 0 || in < 0) _exit(126);
      dup2(in, 0);
      dup2(fd, 1);
      dup2(fd, 2);
      std::string port = std::to_string(port_);
      execl(kRedisServer, kRedisServer, "--bind", "127.0.0.1", "--port", port.c_str(), "--save",
            "", "--appendonly", "no", "--daemonize", "no", "--dir", dir_.path().c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    // Wait, with a deadline, until it answers PING (or gives up).
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      int st = 0;
      if (waitpid(pid, &st, WNOHANG) == pid) return;  // exited: port taken?
      if (Command(port_, {"PING"}, 1000) == "simple:PONG") {
        pid_ = pid;
        return;
      }
      usleep(20000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }

  RunResult Run(std::vector<std::string> args) {
    args.push_back("--addr");
    args.push_back(addr_);
    return Client(args);
  }

  TempDir dir_;
  pid_t pid_ = -1;
  int port_ = 0;
  std::string addr_;
};

TEST_F(ClientTest, Set) {
  RunResult r = Run({"set", "key1", "value1"});
  ExpectOk(r, "set key1 value1");
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(Command(port_, {"GET", "key1"}), "bulk:value1");
}

TEST_F(ClientTest, GetStored) {
  ASSERT_EQ(Command(port_, {"SET", "key1", "value1"}), "simple:OK");
  ASSERT_EQ(Command(port_, {"SET", "key2", "value2"}), "simple:OK");
  RunResult r = Run({"get", "key1"});
  ExpectOk(r, "get key1");
  EXPECT_EQ(r.out, "value1\n");
  r = Run({"get", "key2"});
  ExpectOk(r, "get key2");
  EXPECT_EQ(r.out, "value2\n");
}

TEST_F(ClientTest, GetNonExistentKey) {
  RunResult r = Run({"get", "key1"});
  ExpectOk(r, "get key1");
  EXPECT_EQ(r.out, kNotFound);
}

TEST_F(ClientTest, RmStored) {
  ASSERT_EQ(Command(port_, {"SET", "key1", "value1"}), "simple:OK");
  RunResult r = Run({"rm", "key1"});
  ExpectOk(r, "rm key1");
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(Command(port_, {"EXISTS", "key1"}), "int:0");
  r = Run({"get", "key1"});
  ExpectOk(r, "get key1 after rm");
  EXPECT_EQ(r.out, kNotFound);
}

TEST_F(ClientTest, RmNonExistentKey) {
  RunResult r = Run({"rm", "key1"});
  ExpectFailure(r, "rm key1");
  EXPECT_EQ(r.err, kNotFound);
}

TEST_F(ClientTest, SetGetRmAcrossRuns) {
  // Every command is its own process, as in talent-plan's cli_access_server.
  ExpectOk(Run({"set", "key1", "value1"}), "set 1");
  ExpectOk(Run({"set", "key2", "value2"}), "set 2");
  ExpectOk(Run({"set", "key1", "value3"}), "overwrite");
  RunResult r = Run({"get", "key1"});
  EXPECT_EQ(r.out, "value3\n");
  r = Run({"get", "key2"});
  EXPECT_EQ(r.out, "value2\n");
  ExpectOk(Run({"rm", "key1"}), "rm");
  r = Run({"get", "key1"});
  EXPECT_EQ(r.out, kNotFound);
  ExpectFailure(Run({"rm", "key1"}), "second rm");
}

TEST_F(ClientTest, ValuesAreSentAsTheyAre) {
  // Spaces, quotes, UTF-8, RESP syntax and an empty value.
  for (const std::string v : {"hello world", "\"quoted\" 'single'", "caf\xc3\xa9 \xe2\x9c\x93",
                              "*1\r\n$4\r\nPING\r\n", "$-1", ""}) {
    ExpectOk(Run({"set", "k", v}), "set " + v);
    EXPECT_EQ(Command(port_, {"GET", "k"}), "bulk:" + v);
    RunResult r = Run({"get", "k"});
    ExpectOk(r, "get " + v);
    EXPECT_EQ(r.out, v + "\n");
  }
}

TEST_F(ClientTest, BinaryValueFromTheServer) {
  std::string v("a\0b\r\nc\n", 7);
  ASSERT_EQ(Command(port_, {"SET", "bin", v}), "simple:OK");
  RunResult r = Run({"get", "bin"});
  ExpectOk(r, "get bin");
  EXPECT_EQ(r.out, v + "\n");
}

TEST_F(ClientTest, LargeValue) {
  // Bigger than one read; near the 128 KiB limit of one command-line argument.
  std::string v(120000, 'x');
  for (size_t i = 0; i < v.size(); i += 1000) v[i] = static_cast<char>('a' + i % 26);
  ExpectOk(Run({"set", "big", v}), "set big");
  EXPECT_EQ(Command(port_, {"STRLEN", "big"}), "int:120000");
  // A 4 MB value set directly, read back by the client.
  std::string huge(4 << 20, 'h');
  ASSERT_EQ(Command(port_, {"SET", "huge", huge}), "simple:OK");
  RunResult r = Run({"get", "big"});
  ExpectOk(r, "get big");
  EXPECT_EQ(r.out, v + "\n");
  r = Run({"get", "huge"});
  ExpectOk(r, "get huge");
  EXPECT_TRUE(r.out == huge + "\n") << "got " << r.out.size() << " bytes";
}

TEST_F(ClientTest, AddrAnywhereAndDoubleDash) {
  ExpectOk(Client({"--addr", addr_, "set", "k", "v"}), "--addr first");
  RunResult r = Client({"get", "--addr", addr_, "k"});
  ExpectOk(r, "--addr between");
  EXPECT_EQ(r.out, "v\n");
  r = Client({"get", "k", "--addr=" + addr_});
  ExpectOk(r, "--addr=");
  EXPECT_EQ(r.out, "v\n");
  // A value starting with '-' needs "--".
  ExpectFailure(Run({"set", "k", "-1"}), "set k -1 (an unknown flag)");
  ExpectOk(Client({"--addr", addr_, "set", "--", "-k", "-1"}), "set -- -k -1");
  EXPECT_EQ(Command(port_, {"GET", "-k"}), "bulk:-1");
  r = Client({"--addr", addr_, "get", "--", "-k"});
  ExpectOk(r, "get -- -k");
  EXPECT_EQ(r.out, "-1\n");
  ExpectOk(Client({"--addr", addr_, "rm", "--", "-k"}), "rm -- -k");
}

TEST_F(ClientTest, ServerErrorReplies) {
  // A wrong-type error for GET.
  ASSERT_EQ(Command(port_, {"LPUSH", "list", "a"}), "int:1");
  RunResult r = Run({"get", "list"});
  ExpectFailure(r, "get of a list");
  EXPECT_NE(r.err.find("WRONGTYPE"), std::string::npos) << r.err;
  // Out of memory for SET.
  ASSERT_EQ(Command(port_, {"CONFIG", "SET", "maxmemory-policy", "noeviction"}), "simple:OK");
  ASSERT_EQ(Command(port_, {"CONFIG", "SET", "maxmemory", "1"}), "simple:OK");
  r = Run({"set", "k", "v"});
  ExpectFailure(r, "set over maxmemory");
  EXPECT_NE(r.err.find("OOM"), std::string::npos) << r.err;
  ASSERT_EQ(Command(port_, {"CONFIG", "SET", "maxmemory", "0"}), "simple:OK");
  // Every command refused without authentication.
  ASSERT_EQ(Command(port_, {"CONFIG", "SET", "requirepass", "secret"}), "simple:OK");
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"set", "k", "v"}, {"get", "k"}, {"rm", "k"}}) {
    r = Run(args);
    ExpectFailure(r, args[0] + " without auth");
    EXPECT_NE(r.err.find("NOAUTH"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("Key not found"), std::string::npos) << r.err;
  }
}

// ---- without a server ---------------------------------------------------------------

TEST(ClientArgs, Version) {
  REQUIRE_CLIENT();
  for (const char* flag : {"-V", "--version"}) {
    RunResult r = Client({flag});
    ExpectOk(r, flag);
    EXPECT_EQ(r.out, "kvs-client " KVS_VERSION "\n");
  }
}

TEST(ClientArgs, Help) {
  REQUIRE_CLIENT();
  for (const char* flag : {"--help", "-h"}) {
    RunResult r = Client({flag});
    ExpectOk(r, flag);
    EXPECT_NE(r.out.find("usage"), std::string::npos) << r.out;
    for (const char* s : {"set", "get", "rm", "--addr"})
      EXPECT_NE(r.out.find(s), std::string::npos) << flag << " does not mention " << s;
  }
}

// talent-plan's client_cli_invalid_get/set/rm/subcommand, plus a few more.
TEST(ClientArgs, InvalidArguments) {
  REQUIRE_CLIENT();
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"get"},
      {"get", "extra", "field"},
      {"get", "key", "--unknown-flag"},
      {"get", "key", "--addr"},
      {"set"},
      {"set", "missing_field"},
      {"set", "key", "value", "extra_field"},
      {"set", "key", "value", "--unknown-flag"},
      {"rm"},
      {"rm", "extra", "field"},
      {"rm", "key", "--unknown-flag"},
      {"unknown"},
      {"unknown", "key"},
      {"-x"},
  };
  for (const auto& args : cases) {
    std::string what = "kvs-client";
    for (const auto& a : args) what += " " + a;
    RunResult r = Client(args);
    ExpectFailure(r, what);
    EXPECT_NE(r.err.find("usage"), std::string::npos) << what << "\nstderr: " << r.err;
  }
}

TEST(ClientArgs, InvalidAddress) {
  REQUIRE_CLIENT();
  for (const char* addr : {"invalid-addr", "127.0.0.1", "127.0.0.1:", ":4000", "127.0.0.1:0",
                           "127.0.0.1:65536", "127.0.0.1:99999999", "127.0.0.1:40x",
                           "127.0.0.1:+40", "localhost:4000", "::1:4000", "[::1]", "[::1]4000",
                           "[::1:4000", "300.0.0.1:4000", ""}) {
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"get", "key"}, {"set", "key", "value"}, {"rm", "key"}}) {
      std::vector<std::string> a = args;
      a.push_back("--addr");
      a.push_back(addr);
      RunResult r = Client(a);
      ExpectFailure(r, args[0] + " --addr " + addr);
      // A usage error, as kvs-server and kvs-bench exit for a bad address.
      EXPECT_EQ(r.status, 2) << addr;
      EXPECT_NE(r.err.find("invalid address"), std::string::npos) << addr << ": " << r.err;
    }
  }
}

TEST(ClientArgs, RefusedConnection) {
  REQUIRE_CLIENT();
  int port = FreePort();
  ASSERT_GT(port, 0);
  std::string addr = "127.0.0.1:" + std::to_string(port);
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"get", "key"}, {"set", "key", "value"}, {"rm", "key"}}) {
    std::vector<std::string> a = args;
    a.push_back("--addr");
    a.push_back(addr);
    RunResult r = Client(a);
    ExpectFailure(r, args[0] + " to a closed port");
    EXPECT_NE(r.err.find(addr), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("refused"), std::string::npos) << r.err;
  }
}

TEST(ClientArgs, DefaultAddress) {
  // Only checkable when nothing listens on 127.0.0.1:4000.
  REQUIRE_CLIENT();
  int fd = ConnectLoopback(4000);
  if (fd >= 0) {
    close(fd);
    GTEST_SKIP() << "something listens on 127.0.0.1:4000";
  }
  RunResult r = Client({"get", "key"});
  ExpectFailure(r, "get without --addr");
  EXPECT_NE(r.err.find("127.0.0.1:4000"), std::string::npos) << r.err;
}

TEST(ClientArgs, Ipv6AddressIsAccepted) {
  // Nothing listens on this port: the address must parse and the failure be
  // the connection's (refused, or no IPv6 on this host), not the address's.
  REQUIRE_CLIENT();
  int port = FreePort();
  std::string addr = "[::1]:" + std::to_string(port);
  RunResult r = Client({"get", "key", "--addr", addr});
  ExpectFailure(r, "get --addr " + addr);
  EXPECT_EQ(r.err.find("invalid address"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("connect to " + addr), std::string::npos) << r.err;
}

// A one-connection server on 127.0.0.1 that reads a request and answers
// with fixed bytes (or closes), for replies no real server sends.
class FakeServer {
 public:
  explicit FakeServer(std::string reply) : reply_(std::move(reply)) {
    fd_ = LoopbackSocket(0, true, &port_);
    if (fd_ >= 0) thread_ = std::thread([this] { Serve(); });
  }
  ~FakeServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) close(fd_);
  }
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;
  std::string addr() const { return "127.0.0.1:" + std::to_string(port_); }
  bool ok() const { return fd_ >= 0; }

 private:
  void Serve() {
    // Every wait is bounded: 10 s for the client, 5 s for its request.
    pollfd pfd{fd_, POLLIN, 0};
    for (int i = 0; i < 100 && !stop_; i++) {
      if (poll(&pfd, 1, 100) > 0) break;
    }
    if (stop_ || !(pfd.revents & POLLIN)) return;
    int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    pollfd cp{c, POLLIN, 0};
    char buf[4096];
    if (poll(&cp, 1, 5000) > 0) {
      ssize_t n = recv(c, buf, sizeof buf, 0);
      (void)n;
    }
    if (!reply_.empty()) {
      ssize_t n = send(c, reply_.data(), reply_.size(), MSG_NOSIGNAL);
      (void)n;
    }
    close(c);
  }

  std::string reply_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(ClientArgs, BadReplies) {
  REQUIRE_CLIENT();
  struct Case {
    std::string reply;
    std::vector<std::string> args;
    std::string err;
  };
  const std::vector<Case> cases = {
      {"HTTP/1.1 400 Bad Request\r\n\r\n", {"get", "k"}, "Protocol error"},
      {"$5\r\nabc", {"get", "k"}, "closed the connection"},
      {"", {"get", "k"}, "closed the connection"},
      {":1\r\n", {"get", "k"}, "unexpected reply"},
      {"$3\r\nabc\r\n", {"set", "k", "v"}, "unexpected reply"},
      {"+OK\r\n", {"rm", "k"}, "unexpected reply"},
      {"$-2\r\n", {"get", "k"}, "invalid bulk length"},
  };
  for (const auto& c : cases) {
    FakeServer server(c.reply);
    ASSERT_TRUE(server.ok());
    std::vector<std::string> args = c.args;
    args.push_back("--addr");
    args.push_back(server.addr());
    RunResult r = Client(args);
    ExpectFailure(r, testing::PrintToString(c.reply));
    EXPECT_NE(r.err.find(c.err), std::string::npos) << testing::PrintToString(c.reply) << ": "
                                                     << r.err;
  }
  // And the good replies a kvs server sends, from the fake server too.
  {
    FakeServer server("$5\r\nhello\r\n");
    RunResult r = Client({"get", "k", "--addr", server.addr()});
    ExpectOk(r, "get from the fake server");
    EXPECT_EQ(r.out, "hello\n");
  }
  {
    FakeServer server(":0\r\n");
    RunResult r = Client({"rm", "k", "--addr", server.addr()});
    ExpectFailure(r, "rm :0");
    EXPECT_EQ(r.err, kNotFound);
  }
}

}  // namespace

// ---- against kvs-server with a password ------------------------------------------

// Run kvs-client with KVS_PASSWORD set to pw in its environment ("" unset).
RunResult ClientWithEnv(const std::string& pw, const std::vector<std::string>& args) {
  if (pw.empty())
    unsetenv("KVS_PASSWORD");
  else
    setenv("KVS_PASSWORD", pw.c_str(), 1);
  RunResult r = Client(args);
  unsetenv("KVS_PASSWORD");
  return r;
}

// The README's example (KVS_PASSWORD=secret kvs-server) followed by
// kvs-client: --password or KVS_PASSWORD (the option wins) AUTHs first; a
// wrong password is a clear error naming AUTH, not a NOAUTH later.
TEST(ClientAuth, PasswordOptionAndEnvironment) {
  REQUIRE_CLIENT();
  TempDir t;
  kvstest::Server srv;
  ASSERT_EQ(mkdir(t.file("db").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(t.file("db2").c_str(), 0755), 0);
  ASSERT_TRUE(srv.Start(t.file("db"), {}, {"KVS_PASSWORD=secret"})) << srv.log();
  const std::string addr = "127.0.0.1:" + std::to_string(srv.port());

  RunResult r = ClientWithEnv("", {"--addr", addr, "set", "k", "v"});
  ExpectFailure(r, "set without a password");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("NOAUTH"), std::string::npos) << r.err;

  ExpectOk(ClientWithEnv("", {"--addr", addr, "--password", "secret", "set", "k", "v"}),
           "set --password");
  r = ClientWithEnv("", {"get", "k", "--addr", addr, "--password=secret"});
  ExpectOk(r, "get --password=");
  EXPECT_EQ(r.out, "v\n");
  r = ClientWithEnv("secret", {"--addr", addr, "get", "k"});
  ExpectOk(r, "get with KVS_PASSWORD");
  EXPECT_EQ(r.out, "v\n");
  r = ClientWithEnv("wrong", {"--addr", addr, "--password", "secret", "get", "k"});
  ExpectOk(r, "--password over a wrong KVS_PASSWORD");
  EXPECT_EQ(r.out, "v\n");
  r = ClientWithEnv("secret", {"--addr", addr, "rm", "k"});
  ExpectOk(r, "rm with KVS_PASSWORD");
  r = ClientWithEnv("secret", {"--addr", addr, "rm", "k"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, kNotFound);

  for (std::string how : {"option", "env"}) {
    r = how == "option" ? ClientWithEnv("", {"--addr", addr, "--password", "nope", "get", "k"})
                        : ClientWithEnv("nope", {"--addr", addr, "get", "k"});
    ExpectFailure(r, "a wrong password by " + how);
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("AUTH failed"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("WRONGPASS"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("Key not found"), std::string::npos) << r.err;
  }
  EXPECT_EQ(srv.Stop(), 0);

  // --requirepass, the other way to give the server its password.
  kvstest::Server srv2;
  ASSERT_TRUE(srv2.Start(t.file("db2"), {"--requirepass", "pw2"})) << srv2.log();
  const std::string addr2 = "127.0.0.1:" + std::to_string(srv2.port());
  ExpectOk(ClientWithEnv("", {"--addr", addr2, "--password", "pw2", "set", "a", "b"}),
           "set against --requirepass");
  r = ClientWithEnv("pw2", {"--addr", addr2, "get", "a"});
  ExpectOk(r, "get against --requirepass");
  EXPECT_EQ(r.out, "b\n");
  EXPECT_EQ(srv2.Stop(), 0);
}

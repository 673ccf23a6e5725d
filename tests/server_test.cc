// server_test.cc - kvs-server as a real process: options and start-up,
// every command's replies, real clients (kvs-client, redis-cli, redis-py,
// redis-benchmark), many and misbehaving clients, authentication, and
// durability across SIGKILL and SIGTERM.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "resp.h"
#include "server.h"
#include "server_util.h"
#include "test_util.h"

namespace {

using kvstest::Bin;
using kvstest::Conn;
using kvstest::Server;
using kvstest::RunResult;
using kvstest::TempDir;
using Clock = std::chrono::steady_clock;

constexpr const char kRedisCli[] = "/usr/bin/redis-cli";
constexpr const char kRedisBenchmark[] = "/usr/bin/redis-benchmark";


// Run kvs-server to completion (for option errors).
RunResult RunServer(const std::vector<std::string>& args) {
  std::vector<std::string> argv{Bin("kvs-server")};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = kvstest::Run(argv, "", 30);
  EXPECT_FALSE(kvstest::HasSanitizerReport(r.err)) << r.err;
  return r;
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = tmp_.file("data");
    mkdir(data_.c_str(), 0755);
    ASSERT_TRUE(srv_.Start(data_, ExtraArgs())) << srv_.log();
    port_ = srv_.port();
  }
  void TearDown() override {
    if (srv_.alive()) {
      EXPECT_EQ(srv_.Stop(SIGTERM), 0) << srv_.log();
    }
    srv_.CheckLog();
  }
  virtual std::vector<std::string> ExtraArgs() { return {}; }
  std::string Cmd(const std::vector<std::string>& args) {
    Conn c(port_);
    if (!c.ok()) return "<connect failed>";
    return c.Cmd(args);
  }
  RunResult RedisCli(std::vector<std::string> args) {
    std::vector<std::string> argv{kRedisCli, "-p", std::to_string(port_)};
    argv.insert(argv.end(), args.begin(), args.end());
    return kvstest::Run(argv, "", 60);
  }

  TempDir tmp_;
  std::string data_;
  Server srv_;
  int port_ = 0;
};

// ---- options and start-up ------------------------------------------------------------

TEST(ServerArgs, VersionAndHelp) {
  RunResult r = RunServer({"-V"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "kvs-server " KVS_VERSION "\n");
  r = RunServer({"--help"});
  EXPECT_EQ(r.status, 0);
  for (const char* s : {"usage", "--addr", "--engine", "--dir", "--threads", "--fsync",
                        "--requirepass", "--requirepass-file", "--port-file"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s;
}

TEST(ServerArgs, InvalidOptionsExitNonZero) {
  TempDir t;
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--engine", "redis"},
           {"--addr", "nonsense"},
           {"--addr", "127.0.0.1"},
           {"--addr", "127.0.0.1:65536"},
           {"--addr", "[::1:4000"},
           {"--fsync", "sometimes"},
           {"--threads", "0"},
           {"--segment-size", "12x"},
           {"--segment-size", "-4096"},
           {"--segment-size", "1k"},
           {"--segment-size", "0"},
           {"--segment-size", "2048m"},
           {"--bogus"},
           {"extra"}}) {
    std::vector<std::string> a = args;
    a.push_back("--dir");
    a.push_back(t.path());
    RunResult r = RunServer(a);
    EXPECT_GT(r.status, 0) << args[0];
    EXPECT_LT(r.status, 128) << args[0];
    EXPECT_NE(r.err, "") << args[0];
  }
  RunResult r = RunServer({"--engine", "redis", "--dir", t.path()});
  EXPECT_NE(r.err.find("redis"), std::string::npos) << r.err;
}

TEST(ServerArgs, BindFailureExitsNonZero) {
  TempDir t;
  // A port in use: bound (and listening) here.
  int port = 0;
  int fd = kvstest::LoopbackSocket(0, true, &port);
  ASSERT_GE(fd, 0);
  std::string addr = "127.0.0.1:" + std::to_string(port);
  RunResult r = RunServer({"--addr", addr, "--dir", t.path()});
  close(fd);
  EXPECT_GT(r.status, 0);
  EXPECT_LT(r.status, 128);
  EXPECT_NE(r.err.find("bind"), std::string::npos) << r.err;
  // An address that is not this host's.
  r = RunServer({"--addr", "192.0.2.1:0", "--dir", t.path()});
  EXPECT_GT(r.status, 0);
  EXPECT_LT(r.status, 128);
}

TEST(ServerArgs, WrongEngineIsRefused) {
  for (const std::string first : {"kvs", "lmdb"}) {
    const std::string other = first == "kvs" ? "lmdb" : "kvs";
    TempDir t;
    {
      Server s;
      ASSERT_TRUE(s.Start(t.path(), {"--engine", first})) << s.log();
      Conn c(s.port());
      EXPECT_EQ(c.Cmd({"SET", "k", first}), "simple:OK");
      EXPECT_EQ(s.Stop(), 0) << s.log();
    }
    RunResult r = RunServer({"--addr", "127.0.0.1:0", "--engine", other, "--dir", t.path()});
    EXPECT_GT(r.status, 0) << r.err;
    EXPECT_LT(r.status, 128) << r.err;
    EXPECT_NE(r.err.find("'" + first + "'"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("'" + other + "'"), std::string::npos) << r.err;
    // Without --engine, the recorded one is used.
    Server s;
    ASSERT_TRUE(s.Start(t.path())) << s.log();
    EXPECT_NE(s.log().find("engine " + first), std::string::npos) << s.log();
    Conn c(s.port());
    EXPECT_EQ(c.Cmd({"GET", "k"}), "bulk:" + first);
    EXPECT_EQ(s.Stop(), 0);
  }
}

TEST_F(ServerTest, StartupLogNamesVersionEngineAddress) {
  std::string l = srv_.log();
  EXPECT_NE(l.find("kvs-server " KVS_VERSION), std::string::npos) << l;
  EXPECT_NE(l.find("engine kvs"), std::string::npos) << l;
  EXPECT_NE(l.find("127.0.0.1"), std::string::npos) << l;
  EXPECT_NE(l.find(std::to_string(port_)), std::string::npos) << l;
  EXPECT_NE(l.find("[info]"), std::string::npos) << l;
  EXPECT_NE(l.find("fsync everysec"), std::string::npos) << l;
  EXPECT_NE(l.find("2 worker threads"), std::string::npos) << l;
}

// ---- commands --------------------------------------------------------------------------

TEST_F(ServerTest, StringCommands) {
  Conn c(port_);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c.Cmd({"PING"}), "simple:PONG");
  EXPECT_EQ(c.Cmd({"ping", "hi"}), "bulk:hi");
  EXPECT_EQ(c.Cmd({"ECHO", "x y"}), "bulk:x y");
  EXPECT_EQ(c.Cmd({"GET", "k"}), "nil");
  EXPECT_EQ(c.Cmd({"SET", "k", "v"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"get", "k"}), "bulk:v");
  EXPECT_EQ(c.Cmd({"SET", "k", "w", "NX"}), "nil");
  EXPECT_EQ(c.Cmd({"SET", "k2", "w", "XX"}), "nil");
  EXPECT_EQ(c.Cmd({"SET", "k", "w", "xx"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"SET", "k", "w", "NX", "XX"}), "error:ERR syntax error");
  EXPECT_EQ(c.Cmd({"SET", "k", "w", "BOGUS"}), "error:ERR syntax error");
  EXPECT_EQ(c.Cmd({"SET", "k", "w", "EX"}), "error:ERR syntax error");
  EXPECT_EQ(c.Cmd({"SET", "k", "w", "EX", "0"}), "error:ERR invalid expire time in 'set' command");
  EXPECT_EQ(c.Cmd({"SET", "k", "w", "PX", "x"}), "error:ERR value is not an integer or out of range");
  EXPECT_EQ(c.Cmd({"SETNX", "k", "z"}), "int:0");
  EXPECT_EQ(c.Cmd({"SETNX", "n", "z"}), "int:1");
  EXPECT_EQ(c.Cmd({"STRLEN", "k"}), "int:1");
  EXPECT_EQ(c.Cmd({"STRLEN", "nope"}), "int:0");
  EXPECT_EQ(c.Cmd({"EXISTS", "k", "nope", "k"}), "int:2");
  EXPECT_EQ(c.Cmd({"MSET", "a", "1", "b", "2"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"MSET", "a", "1", "b"}), "error:ERR wrong number of arguments for 'mset' command");
  EXPECT_EQ(c.Cmd({"MGET", "a", "nope", "b"}), "array:3[bulk:1,nil,bulk:2]");
  EXPECT_EQ(c.Cmd({"DEL", "a", "b", "nope", ""}), "int:2");
  EXPECT_EQ(c.Cmd({"DEL", "a"}), "int:0");
  EXPECT_EQ(c.Cmd({"GET", ""}), "nil");
  EXPECT_EQ(c.Cmd({"SET", "", "v"}).substr(0, 10), "error:ERR ");
  EXPECT_EQ(c.Cmd({"INCR", "i"}), "int:1");
  EXPECT_EQ(c.Cmd({"INCRBY", "i", "41"}), "int:42");
  EXPECT_EQ(c.Cmd({"DECR", "i"}), "int:41");
  EXPECT_EQ(c.Cmd({"DECRBY", "i", "-9"}), "int:50");
  EXPECT_EQ(c.Cmd({"INCRBY", "i", "x"}), "error:ERR value is not an integer or out of range");
  EXPECT_EQ(c.Cmd({"INCRBY", "i", "01"}), "error:ERR value is not an integer or out of range");
  EXPECT_EQ(c.Cmd({"INCR", "k"}), "error:ERR value is not an integer or out of range");
  EXPECT_EQ(c.Cmd({"SET", "big", "9223372036854775807"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"INCR", "big"}), "error:ERR increment or decrement would overflow");
  EXPECT_EQ(c.Cmd({"DECRBY", "i", "-9223372036854775808"}), "error:ERR decrement would overflow");
  EXPECT_EQ(c.Cmd({"DBSIZE"}), "int:4");  // k n i big
  EXPECT_EQ(c.Cmd({"UNLINK", "n"}), "int:1");
}

TEST_F(ServerTest, ErrorsAndConnectionCommands) {
  Conn c(port_);
  EXPECT_EQ(c.Cmd({"FOO", "a", "b"}), "error:ERR unknown command 'FOO', with args beginning with: 'a' 'b' ");
  EXPECT_EQ(c.Cmd({"foo"}), "error:ERR unknown command 'foo', with args beginning with: ");
  EXPECT_EQ(c.Cmd({"GET"}), "error:ERR wrong number of arguments for 'get' command");
  EXPECT_EQ(c.Cmd({"GET", "a", "b"}), "error:ERR wrong number of arguments for 'get' command");
  EXPECT_EQ(c.Cmd({"SELECT", "0"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"SELECT", "1"}), "error:ERR DB index is out of range");
  EXPECT_EQ(c.Cmd({"SELECT", "x"}), "error:ERR value is not an integer or out of range");
  EXPECT_EQ(c.Cmd({"CLIENT", "SETNAME", "me"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"CLIENT", "GETNAME"}), "bulk:me");
  EXPECT_EQ(c.Cmd({"CLIENT", "SETNAME", "a b"}).substr(0, 36), "error:ERR Client names cannot contai");
  EXPECT_EQ(c.Cmd({"CLIENT", "SETINFO", "LIB-NAME", "x"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"CLIENT", "ID"}).substr(0, 4), "int:");
  EXPECT_EQ(c.Cmd({"CLIENT", "NOPE"}), "error:ERR unknown subcommand 'NOPE'. Try CLIENT HELP.");
  EXPECT_EQ(c.Cmd({"HELLO", "3"}), "error:NOPROTO unsupported protocol version");
  EXPECT_EQ(c.Cmd({"HELLO", "2"}).substr(0, 30), "array:14[bulk:server,bulk:kvs,");
  EXPECT_EQ(c.Cmd({"AUTH", "x"}).substr(0, 40), "error:ERR AUTH <password> called without");
  EXPECT_EQ(c.Cmd({"CONFIG", "GET", "save"}), "array:2[bulk:save,bulk:]");
  EXPECT_EQ(c.Cmd({"CONFIG", "GET", "appendonly"}), "array:2[bulk:appendonly,bulk:no]");
  EXPECT_EQ(c.Cmd({"CONFIG", "GET", "nothing"}), "array:0[]");
  EXPECT_EQ(c.Cmd({"CONFIG", "GET"}), "error:ERR wrong number of arguments for 'config|get' command");
  EXPECT_EQ(c.Cmd({"COMMAND", "DOCS"}), "array:0[]");
  std::string count = c.Cmd({"COMMAND", "COUNT"});
  EXPECT_EQ(count.substr(0, 4), "int:");
  std::string all = c.Cmd({"COMMAND"});
  EXPECT_EQ(all.substr(0, 6 + count.size() - 4), "array:" + count.substr(4));
  EXPECT_EQ(c.Cmd({"SET", "x", "1"}), "simple:OK");
  std::string info = c.Cmd({"INFO"});
  for (const char* s : {"# Server", "redis_version:7.0.0", "kvs_version:" KVS_VERSION,
                        "engine:kvs", "tcp_port:", "uptime_in_seconds:", "# Clients",
                        "connected_clients:", "# Stats", "total_connections_received:",
                        "total_commands_processed:", "rejected_connections:", "# Persistence",
                        "# Keyspace", "db0:keys=1,expires=0,avg_ttl=0"})
    EXPECT_NE(info.find(s), std::string::npos) << s << "\n" << info;
  EXPECT_NE(info.find("tcp_port:" + std::to_string(port_)), std::string::npos);
  std::string ks = c.Cmd({"INFO", "keyspace"});
  EXPECT_EQ(ks.find("# Server"), std::string::npos);
  EXPECT_NE(ks.find("db0:keys=1"), std::string::npos);
  EXPECT_EQ(c.Cmd({"QUIT"}), "simple:OK");
  EXPECT_TRUE(c.Closed());
}

TEST_F(ServerTest, PipelinedAndInline) {
  Conn c(port_);
  std::string batch;
  for (int i = 0; i < 1000; i++) batch += Conn::Encode({"SET", "p" + std::to_string(i), std::to_string(i)});
  for (int i = 0; i < 1000; i++) batch += Conn::Encode({"GET", "p" + std::to_string(i)});
  batch += "PING\r\nECHO \"a b\"\r\n";
  ASSERT_TRUE(c.SendRaw(batch));
  for (int i = 0; i < 1000; i++) ASSERT_EQ(c.Read(), "simple:OK") << i;
  for (int i = 0; i < 1000; i++) ASSERT_EQ(c.Read(), "bulk:" + std::to_string(i)) << i;
  EXPECT_EQ(c.Read(), "simple:PONG");
  EXPECT_EQ(c.Read(), "bulk:a b");
  // A command split byte by byte.
  std::string one = Conn::Encode({"SET", "split", "value"});
  for (char ch : one) ASSERT_TRUE(c.SendRaw(std::string(1, ch)));
  EXPECT_EQ(c.Read(), "simple:OK");
  // Half-closed after sending: the replies still come.
  Conn h(port_);
  ASSERT_TRUE(h.SendRaw("SET hc 1\r\nGET hc\r\n"));
  shutdown(h.fd(), SHUT_WR);
  EXPECT_EQ(h.Read(), "simple:OK");
  EXPECT_EQ(h.Read(), "bulk:1");
  EXPECT_TRUE(h.Closed());
}

// ---- real clients ------------------------------------------------------------------------

TEST_F(ServerTest, KvsClient) {
  std::string addr = "127.0.0.1:" + std::to_string(port_);
  auto client = [&](std::vector<std::string> args) {
    args.insert(args.begin(), Bin("kvs-client"));
    args.push_back("--addr");
    args.push_back(addr);
    return kvstest::Run(args, "", 30);
  };
  RunResult r = client({"set", "key1", "value1"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "");
  r = client({"get", "key1"});
  EXPECT_EQ(r.out, "value1\n");
  r = client({"set", "key1", "value2"});
  r = client({"get", "key1"});
  EXPECT_EQ(r.out, "value2\n");
  r = client({"get", "key2"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "Key not found\n");
  r = client({"rm", "key1"});
  EXPECT_EQ(r.status, 0) << r.err;
  r = client({"get", "key1"});
  EXPECT_EQ(r.out, "Key not found\n");
  r = client({"rm", "key1"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "Key not found\n");
}

TEST_F(ServerTest, RedisCli) {
  if (access(kRedisCli, X_OK) != 0) GTEST_SKIP() << "no redis-cli";
  EXPECT_EQ(RedisCli({"SET", "a", "1"}).out, "OK\n");
  EXPECT_EQ(RedisCli({"GET", "a"}).out, "1\n");
  EXPECT_EQ(RedisCli({"MSET", "b", "2", "c", "3"}).out, "OK\n");
  EXPECT_EQ(RedisCli({"MGET", "a", "b", "c", "d"}).out, "1\n2\n3\n\n");
  EXPECT_EQ(RedisCli({"INCR", "a"}).out, "2\n");
  EXPECT_EQ(RedisCli({"DEL", "a", "b", "zz"}).out, "2\n");
  EXPECT_EQ(RedisCli({"PING"}).out, "PONG\n");
  // A binary value with NUL and CRLF, set through redis-cli's -x (stdin)
  // is awkward with Run(); use a raw connection and read back with redis-cli.
  std::string bin("x\0y\r\nz", 6);
  EXPECT_EQ(Cmd({"SET", "bin", bin}), "simple:OK");
  EXPECT_EQ(Cmd({"GET", "bin"}), "bulk:" + bin);
  EXPECT_EQ(RedisCli({"STRLEN", "bin"}).out, "6\n");
  // --pipe: 1000 commands of raw RESP from a file.
  std::string f = tmp_.file("pipe.txt");
  std::string cmds;
  for (int i = 0; i < 1000; i++) cmds += Conn::Encode({"SET", "pipe" + std::to_string(i), "v"});
  kvstest::WriteFile(f, cmds);
  RunResult r = kvstest::Run({"/bin/sh", "-c",
                              std::string(kRedisCli) + " -p " + std::to_string(port_) + " --pipe < " + f},
                             "", 60);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("errors: 0, replies: 1000"), std::string::npos) << r.out;
  EXPECT_EQ(RedisCli({"DBSIZE"}).out, "1002\n");
}

TEST_F(ServerTest, RedisPy) {
  if (kvstest::Run({"/usr/bin/python3", "-c", "import redis"}).status != 0)
    GTEST_SKIP() << "python3-redis is not installed";
  std::string script = R"PY(
import sys, redis
r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]))
assert r.ping()
assert r.set("a", b"1")
assert r.get("a") == b"1"
assert r.mset({"b": "2", "c": "3"})
assert r.mget("a", "b", "c", "d") == [b"1", b"2", b"3", None]
assert r.delete("a", "b", "zz") == 2
assert r.incr("n") == 1 and r.incrby("n", 9) == 10
p = r.pipeline(transaction=False)
for i in range(500):
    p.set("k%d" % i, "v%d" % i)
for i in range(500):
    p.get("k%d" % i)
out = p.execute()
assert out[:500] == [True] * 500, out[:3]
assert out[500:] == [("v%d" % i).encode() for i in range(500)]
big = bytes(range(256)) * (64 * 1024 * 1024 // 256)
assert r.set("big", big)
assert r.get("big") == big
assert r.strlen("big") == len(big)
assert r.get("nope") is None
try:
    r.incr("c2") ; r.set("s", "x"); r.incr("s")
    assert False
except redis.ResponseError as e:
    assert "not an integer" in str(e)
print("ok")
)PY";
  std::string f = tmp_.file("t.py");
  kvstest::WriteFile(f, script);
  RunResult r = kvstest::Run({"/usr/bin/python3", f, std::to_string(port_)}, "", 90);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "ok\n") << r.err;
}

TEST_F(ServerTest, Scan) {
  if (kvstest::Run({"/usr/bin/python3", "-c", "import redis"}).status != 0)
    GTEST_SKIP() << "python3-redis is not installed";
  std::string script = R"PY(
import sys, redis
r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]))
r.mset({"user:%d" % i: i for i in range(300)})
r.mset({"other:%d" % i: i for i in range(50)})
keys = set(r.scan_iter(count=37))
assert len(keys) == 350, len(keys)
users = set(r.scan_iter(match="user:1?", count=1000))
assert users == {("user:1%d" % i).encode() for i in range(10)}, users
assert set(r.scan_iter(match="nothing*")) == set()
print("ok")
)PY";
  std::string f = tmp_.file("scan.py");
  kvstest::WriteFile(f, script);
  RunResult r = kvstest::Run({"/usr/bin/python3", f, std::to_string(port_)}, "", 60);
  EXPECT_EQ(r.out, "ok\n") << r.err;
  Conn c(port_);
  EXPECT_EQ(c.Cmd({"SCAN", "x"}), "error:ERR invalid cursor");
  EXPECT_EQ(c.Cmd({"SCAN", "0", "COUNT", "0"}), "error:ERR syntax error");
  EXPECT_EQ(c.Cmd({"SCAN", "0", "BOGUS", "1"}), "error:ERR syntax error");
}

TEST_F(ServerTest, RedisBenchmark) {
  if (access(kRedisBenchmark, X_OK) != 0) GTEST_SKIP() << "no redis-benchmark";
  for (const std::string pipeline : {"1", "16"}) {
    RunResult r = kvstest::Run({kRedisBenchmark, "-p", std::to_string(port_), "-t",
                                "ping,set,get,incr,mset", "-n", "2000", "-q", "-P", pipeline},
                               "", 90);
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_EQ(r.err.find("WARN"), std::string::npos) << r.err;
    EXPECT_EQ(r.out.find("ERR"), std::string::npos) << r.out;
    for (const char* t : {"PING_INLINE", "SET", "GET", "INCR", "MSET"})
      EXPECT_NE(r.out.find(t), std::string::npos) << t << "\n" << r.out;
  }
  EXPECT_TRUE(srv_.alive());
}

// ---- many and misbehaving clients ------------------------------------------------------

TEST_F(ServerTest, ManyIdleConnections) {
  rlimit rl;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
  rlimit saved = rl;
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  // The server was started before the raise; it raised its own soft limit
  // to the hard one.  Leave room for both.
  size_t want = 10000;
  if (rl.rlim_cur < want + 200) want = rl.rlim_cur > 400 ? rl.rlim_cur - 300 : 100;
  std::vector<int> fds;
  auto deadline = Clock::now() + std::chrono::seconds(30);
  for (size_t i = 0; i < want && Clock::now() < deadline; i++) {
    int fd = kvstest::ConnectLoopback(port_);
    if (fd < 0) break;
    fds.push_back(fd);
  }
  EXPECT_GE(fds.size(), std::min<size_t>(want, 1000)) << "connections opened";
  RecordProperty("idle_connections", static_cast<int>(fds.size()));
  Conn c(port_);
  ASSERT_TRUE(c.ok());
  auto t0 = Clock::now();
  EXPECT_EQ(c.Cmd({"PING"}, 5000), "simple:PONG");
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(2));
  // Every idle one is still served.
  for (size_t i = 0; i < fds.size(); i += fds.size() / 10 + 1) {
    ASSERT_EQ(send(fds[i], "PING\r\n", 6, MSG_NOSIGNAL), 6);
    char buf[16];
    pollfd p{fds[i], POLLIN, 0};
    ASSERT_GT(poll(&p, 1, 5000), 0) << i;
    ASSERT_EQ(recv(fds[i], buf, sizeof buf, 0), 7) << i;
  }
  for (int fd : fds) close(fd);
  setrlimit(RLIMIT_NOFILE, &saved);
  std::printf("[          ] %zu idle connections\n", fds.size());
}

TEST_F(ServerTest, StalledAndNonReadingClientsDoNotBlockOthers) {
  // Half a command, then silence.
  Conn stalled(port_);
  ASSERT_TRUE(stalled.SendRaw("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nabc"));
  // A client that asks for a lot and never reads.
  Conn hog(port_);
  ASSERT_TRUE(hog.ok());
  std::string v(1 << 20, 'v');
  ASSERT_EQ(Cmd({"SET", "big", v}), "simple:OK");
  std::string gets;
  for (int i = 0; i < 200; i++) gets += Conn::Encode({"GET", "big"});
  std::thread sender([&] { hog.SendRaw(gets); });
  Conn c(port_);
  for (int i = 0; i < 20; i++) {
    auto t0 = Clock::now();
    ASSERT_EQ(c.Cmd({"PING"}, 5000), "simple:PONG");
    EXPECT_LT(Clock::now() - t0, std::chrono::seconds(2));
  }
  sender.join();
  EXPECT_EQ(c.Cmd({"SET", "after", "1"}), "simple:OK");
}

TEST_F(ServerTest, OutputLimitClosesNonReader) {
  // With the default 64 MiB limit: 200 GETs of 1 MiB, never read.
  Conn hog(port_);
  std::string v(1 << 20, 'v');
  ASSERT_EQ(Cmd({"SET", "big", v}), "simple:OK");
  std::string gets;
  for (int i = 0; i < 200; i++) gets += Conn::Encode({"GET", "big"});
  std::thread sender([&] { hog.SendRaw(gets); });
  // The server closes it once over the limit: the sender's writes fail or
  // finish, and the log says why.
  auto deadline = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < deadline && srv_.log().find("output limit") == std::string::npos) usleep(20000);
  shutdown(hog.fd(), SHUT_RDWR);
  sender.join();
  EXPECT_NE(srv_.log().find("output limit"), std::string::npos) << srv_.log();
  EXPECT_EQ(Cmd({"PING"}), "simple:PONG");
}

// The limit holds inside one reply too: MGET of the same big value many
// times would otherwise build a reply of any size in memory.
TEST(ServerLimits, OutputLimitInsideOneReply) {
  TempDir t;
  Server s;
  ASSERT_TRUE(s.Start(t.path(), {"--client-output-limit", "1048576"})) << s.log();
  Conn c(s.port());
  std::string v(256 << 10, 'v');
  ASSERT_EQ(c.Cmd({"SET", "big", v}), "simple:OK");
  std::vector<std::string> mget = {"MGET"};
  for (int i = 0; i < 4096; i++) mget.push_back("big");  // 1 GiB of reply
  ASSERT_TRUE(c.Send(mget));
  EXPECT_TRUE(c.Closed(10000));
  EXPECT_NE(s.log().find("output limit"), std::string::npos) << s.log();
  Conn d(s.port());
  EXPECT_EQ(d.Cmd({"PING"}), "simple:PONG");
  // A big reply of one value alone still goes through.
  std::string big(3 << 20, 'w');
  ASSERT_EQ(d.Cmd({"SET", "big3", big}), "simple:OK");
  EXPECT_EQ(d.Cmd({"GET", "big3"}).size(), std::string("bulk:").size() + big.size());
}

// A client pipelining far more than it reads back: the server reads no more
// while commands wait, so the backlog stays one read big and every command
// is answered in order, in bounded time.
// Pipelined writes go to the engine as one batch: each sees the writes
// before it (read-modify-write, NX), errors keep their place among the
// replies, and a read after the batch sees all of it.
TEST_F(ServerTest, PipelinedWritesBatchInOrder) {
  Conn c(port_);
  const std::vector<std::vector<std::string>> cmds = {
      {"SET", "k", "1"},         {"INCR", "k"},           {"INCR", "k"},
      {"SET", "k", "v", "NX"},   {"SETNX", "k2", "a"},    {"SETNX", "k2", "b"},
      {"SET", "k", "5", "EX", "0"}, {"INCRBY", "k", "x"}, {"SET", "onlykey"},
      {"DEL", "k", "k2", "nokey"}, {"INCR", "k"},          {"GET", "k"},
      {"MSET", "a", "1", "b", "2"}, {"DEL", "a"},           {"EXISTS", "a", "b"},
  };
  const std::vector<std::string> want = {
      "simple:OK", "int:2", "int:3", "nil", "int:1", "int:0",
      "error:ERR invalid expire time in 'set' command",
      "error:ERR value is not an integer or out of range",
      "error:ERR wrong number of arguments for 'set' command",
      "int:2", "int:1", "bulk:1", "simple:OK", "int:1", "int:1",
  };
  std::string all;
  for (const auto& cmd : cmds) all += Conn::Encode(cmd);
  ASSERT_TRUE(c.SendRaw(all));
  for (size_t i = 0; i < want.size(); i++) EXPECT_EQ(c.Read(), want[i]) << i;
  // Many clients pipelining INCRs of one key: none is lost.
  const int kClients = 8, kIncrs = 500;
  std::vector<std::thread> ts;
  std::atomic<int> bad{0};
  for (int t = 0; t < kClients; t++)
    ts.emplace_back([&] {
      Conn d(port_);
      std::string p;
      for (int i = 0; i < kIncrs; i++) p += Conn::Encode({"INCR", "counter"});
      if (!d.SendRaw(p)) bad++;
      long last = 0;
      for (int i = 0; i < kIncrs; i++) {
        std::string r = d.Read();
        long v = r.rfind("int:", 0) == 0 ? std::stol(r.substr(4)) : -1;
        if (v <= last) bad++;  // one connection's replies increase
        last = v;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(c.Cmd({"GET", "counter"}), "bulk:" + std::to_string(kClients * kIncrs));
}

// Defect 1 of issue 11: kvs_submit refuses a whole batch for one invalid
// op, so a bad key pipelined among good writes failed them all.  Each
// command must get the reply it gets when sent alone, however TCP splits
// the stream: both engines, keys empty or over the engine's limit (511
// bytes for lmdb), in SET, SETNX, MSET, INCR/DECR/INCRBY and DEL.
TEST(ServerBatch, OneBadKeyDoesNotFailItsPipelinedBatch) {
  for (const std::string engine : {"kvs", "lmdb"}) {
    SCOPED_TRACE(engine);
    TempDir t;
    Server s;
    ASSERT_TRUE(s.Start(t.path(), {"--engine", engine})) << s.log();
    const std::string empty_err = "error:ERR empty keys are not supported";
    // The engine's own limits (issue 14: lmdb's error said 1 MiB).
    const std::string big_err = engine == "lmdb" ? "error:ERR key or value too large (keys up to 511 bytes, "
                                                   "values up to 512 MiB with the lmdb engine)"
                                                 : "error:ERR key or value too large (keys up to 1 MiB, "
                                                   "values up to 512 MiB with the kvs engine)";
    // Over this engine's limit.
    const std::string too_long(engine == "lmdb" ? 512 : (1 << 20) + 1, 'k');
    struct Step {
      std::vector<std::string> cmd;
      std::string want;
    };
    const std::vector<Step> steps = {
        {{"SET", "a", "1"}, "simple:OK"},
        {{"SET", "", "x"}, empty_err},
        {{"SET", "c", "3"}, "simple:OK"},
        {{"SET", too_long, "x"}, big_err},
        {{"SETNX", "", "x"}, empty_err},
        {{"SETNX", "d", "4"}, "int:1"},
        {{"MSET", "e", "5", "", "x"}, empty_err},  // all or nothing: e is not set
        {{"MSET", "f", "6", too_long, "x"}, big_err},
        {{"MSET", "g", "7", "h", "8"}, "simple:OK"},
        {{"INCR", ""}, empty_err},
        {{"INCR", "n"}, "int:1"},
        {{"DECR", too_long}, big_err},
        {{"INCRBY", "", "5"}, empty_err},
        {{"INCRBY", "n", "5"}, "int:6"},
        {{"DEL", "", too_long, "g"}, "int:1"},
        {{"SET", "z", "26"}, "simple:OK"},
    };
    const std::vector<std::pair<std::string, std::string>> after = {
        {"a", "bulk:1"}, {"c", "bulk:3"}, {"d", "bulk:4"}, {"e", "nil"}, {"f", "nil"},
        {"g", "nil"},    {"h", "bulk:8"}, {"n", "bulk:6"}, {"z", "bulk:26"},
    };
    auto check_after = [&](Conn& c) {
      for (const auto& kv : after) EXPECT_EQ(c.Cmd({"GET", kv.first}), kv.second) << kv.first;
    };
    // One command per packet, each reply awaited: the reference.
    {
      Conn c(s.port());
      for (size_t i = 0; i < steps.size(); i++) EXPECT_EQ(c.Cmd(steps[i].cmd), steps[i].want) << i;
      check_after(c);
      std::vector<std::string> del{"DEL"};
      for (const auto& kv : after) del.push_back(kv.first);
      EXPECT_EQ(c.Cmd(del).substr(0, 4), "int:");
    }
    // The issue's three SETs in one write().
    {
      Conn c(s.port());
      ASSERT_TRUE(c.SendRaw(Conn::Encode({"SET", "a", "1"}) + Conn::Encode({"SET", "", "x"}) +
                            Conn::Encode({"SET", "c", "3"})));
      EXPECT_EQ(c.Read(), "simple:OK");
      EXPECT_EQ(c.Read(), empty_err);
      EXPECT_EQ(c.Read(), "simple:OK");
      EXPECT_EQ(c.Cmd({"GET", "a"}), "bulk:1");
      EXPECT_EQ(c.Cmd({"GET", "c"}), "bulk:3");
      EXPECT_EQ(c.Cmd({"DEL", "a", "c"}), "int:2");
    }
    // Every step in one write(): the same replies, the same store.
    {
      Conn c(s.port());
      std::string all;
      for (const auto& st : steps) all += Conn::Encode(st.cmd);
      ASSERT_TRUE(c.SendRaw(all));
      for (size_t i = 0; i < steps.size(); i++) EXPECT_EQ(c.Read(), steps[i].want) << i;
      check_after(c);
    }
    EXPECT_EQ(s.Stop(), 0) << s.log();
  }
}

// The writes pipelined before a malformed command in the same packet are
// applied and answered, then the protocol error closes the connection, as
// when the malformed command arrives in a later packet.  They used to join
// one batch with it and be dropped without a reply (the look ahead read
// "$01" and a bulk without its CRLF as a complete write).
TEST_F(ServerTest, WritesBeforeAMalformedCommandAreAnswered) {
  const std::string pe = "error:ERR Protocol error: ";
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$01\r\n2\r\n", pe + "invalid bulk length"},
      {"*03\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\n2\r\n", pe + "invalid multibulk length"},
      {"*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\n2XX", pe + "bulk string not terminated by CRLF"},
  };
  int i = 0;
  for (const auto& k : bad) {
    SCOPED_TRACE(testing::PrintToString(k.first));
    const std::string key = "before" + std::to_string(i++);
    Conn c(port_);
    ASSERT_TRUE(c.SendRaw(Conn::Encode({"SET", key, "1"}) + Conn::Encode({"INCR", key}) + k.first));
    EXPECT_EQ(c.Read(5000), "simple:OK");
    EXPECT_EQ(c.Read(5000), "int:2");
    EXPECT_EQ(c.Read(5000), k.second);
    EXPECT_TRUE(c.Closed());
    EXPECT_EQ(Cmd({"GET", key}), "bulk:2");
  }
}

TEST_F(ServerTest, PipelineFloodAnsweredInOrder) {
  Conn c(port_);
  const int n = 200000;
  std::string all;
  for (int i = 0; i < n; i++) all += "PING\r\n";
  std::thread sender([&] { c.SendRaw(all); });
  auto start = Clock::now();
  size_t got = 0;
  std::string buf;
  char tmp[65536];
  while (got < static_cast<size_t>(n) * 7 && Clock::now() - start < std::chrono::seconds(60)) {
    pollfd p{c.fd(), POLLIN, 0};
    if (poll(&p, 1, 1000) <= 0) continue;
    ssize_t k = recv(c.fd(), tmp, sizeof tmp, 0);
    if (k <= 0) break;
    got += static_cast<size_t>(k);
  }
  sender.join();
  EXPECT_EQ(got, static_cast<size_t>(n) * 7);  // "+PONG\r\n" each
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(60));
}

TEST_F(ServerTest, MalformedInput) {
  // Each input's own outcome: the exact reply (none: "" - a truncated
  // frame waits for more), whether the connection is then closed, and for
  // those left open, what a follow-up gets (the connection still works,
  // and nothing of the input was left behind in it).  Compared with
  // redis-server 7.0 (Debian 12); where kvs differs it is on purpose and
  // listed in docs/PROTOCOL.md (a bulk not followed by CRLF is refused).
  struct Case {
    std::string in, reply;
    bool closed;
    std::string then, then_reply;
  };
  const std::string pe = "error:ERR Protocol error: ";
  const std::vector<Case> cases = {
      {"!bad\r\n", "error:ERR unknown command '!bad', with args beginning with: ", false, "PING\r\n",
       "simple:PONG"},
      {"*1\r\n!3\r\nGET\r\n", pe + "expected '$', got '!'", true, "", ""},
      // Negative counts are skipped, as Redis does.
      {"*-5\r\n", "", false, "PING\r\n", "simple:PONG"},
      {"*-10\r\n", "", false, "PING\r\n", "simple:PONG"},
      {"*-0\r\n", pe + "invalid multibulk length", true, "", ""},
      {"*x\r\n", pe + "invalid multibulk length", true, "", ""},
      {"*1\r\n$-3\r\n", pe + "invalid bulk length", true, "", ""},
      {"*1\r\n$abc\r\n", pe + "invalid bulk length", true, "", ""},
      {"*1\r\n$10737418240\r\n", pe + "invalid bulk length", true, "", ""},
      {"*2147483648\r\n", pe + "invalid multibulk length", true, "", ""},
      {"*1048577\r\n", pe + "invalid multibulk length", true, "", ""},
      // Redis takes "vXX" as "v" and waits; kvs refuses the bytes after it.
      {"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nvXX", pe + "bulk string not terminated by CRLF", true, "", ""},
      {"*1\r\n$4\r\nPING", "", false, "\r\n", "simple:PONG"},
      {"*2\r\n$4\r\nECHO\r\n$5\r\nab", "", false, "cde\r\n", "bulk:abcde"},
      {"\"unbalanced\r\n", pe + "unbalanced quotes in request", true, "", ""},
      {std::string(70000, 'a'), pe + "too big inline request", true, "", ""},
      // Inline arguments are binary-safe; the name shows up to its NUL.
      {std::string("\x00\xff\x01*\r\n$", 7), "error:ERR unknown command '', with args beginning with: ", false,
       "\r\n", "error:ERR unknown command '$', with args beginning with: "},
      {"*1\r\n$0\r\n\r\n", "error:ERR unknown command '', with args beginning with: ", false, "PING\r\n",
       "simple:PONG"},
  };
  for (const auto& k : cases) {
    const std::string what = testing::PrintToString(k.in.substr(0, 40));
    Conn c(port_);
    ASSERT_TRUE(c.ok());
    c.SendRaw(k.in);  // may fail part way when the server closes first
    if (!k.reply.empty()) {
      EXPECT_EQ(c.Read(5000), k.reply) << what;
    } else {
      EXPECT_EQ(c.Read(300), "<timeout>") << what;  // nothing, and still open
    }
    if (k.closed) {
      EXPECT_TRUE(c.Closed()) << what;
      continue;
    }
    ASSERT_TRUE(c.SendRaw(k.then)) << what;
    EXPECT_EQ(c.Read(5000), k.then_reply) << what;
    EXPECT_EQ(c.Cmd({"PING"}, 5000), "simple:PONG") << what;
  }
  // Random junk: whatever it gets, the server goes on.
  std::mt19937 rng(42);
  for (int i = 0; i < 50; i++) {
    std::string junk(1 + rng() % 2000, '\0');
    for (auto& ch : junk) ch = static_cast<char>(rng());
    Conn c(port_);
    c.SendRaw(junk);
    c.Read(200);
  }
  EXPECT_EQ(Cmd({"PING"}), "simple:PONG");
  EXPECT_TRUE(srv_.alive());
}

// ---- durability --------------------------------------------------------------------------

TEST(ServerDurability, KillAndRestartBothEngines) {
  for (const std::string engine : {"kvs", "lmdb"}) {
    TempDir t;
    Server s;
    ASSERT_TRUE(s.Start(t.path(), {"--engine", engine})) << s.log();
    {
      Conn c(s.port());
      EXPECT_EQ(c.Cmd({"SET", "a", "1"}), "simple:OK");
      EXPECT_EQ(c.Cmd({"SET", "b", "2"}), "simple:OK");
      EXPECT_EQ(c.Cmd({"SET", "a", "3"}), "simple:OK");
      EXPECT_EQ(c.Cmd({"DEL", "b"}), "int:1");
      EXPECT_EQ(c.Cmd({"INCRBY", "n", "5"}), "int:5");
    }
    EXPECT_EQ(s.Stop(SIGKILL), 128 + SIGKILL);
    ASSERT_TRUE(s.Start(t.path())) << s.log();
    {
      Conn c(s.port());
      EXPECT_EQ(c.Cmd({"GET", "a"}), "bulk:3") << engine;
      EXPECT_EQ(c.Cmd({"GET", "b"}), "nil") << engine;
      EXPECT_EQ(c.Cmd({"GET", "n"}), "bulk:5") << engine;
      EXPECT_EQ(c.Cmd({"DEL", "a"}), "int:1");
    }
    EXPECT_EQ(s.Stop(SIGINT), 0) << s.log();
    ASSERT_TRUE(s.Start(t.path())) << s.log();
    {
      Conn c(s.port());
      EXPECT_EQ(c.Cmd({"GET", "a"}), "nil") << engine;
      EXPECT_EQ(c.Cmd({"DBSIZE"}), "int:1") << engine;
    }
    EXPECT_EQ(s.Stop(), 0);
  }
}

TEST(ServerDurability, ConcurrentClientsThenSigterm) {
  TempDir t;
  Server s;
  ASSERT_TRUE(s.Start(t.path(), {"--threads", "4"})) << s.log();
  const int kClients = 50, kOps = 1000;
  std::vector<std::map<std::string, std::string>> acked(kClients);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int ci = 0; ci < kClients; ci++) {
    threads.emplace_back([&, ci] {
      Conn c(s.port());
      std::mt19937 rng(static_cast<unsigned>(ci));
      auto& mine = acked[ci];
      for (int i = 0; i < kOps; i++) {
        std::string k = "c" + std::to_string(ci) + "-" + std::to_string(rng() % 50);
        int op = static_cast<int>(rng() % 4);
        std::string r;
        if (op == 0 || op == 1) {
          std::string v = std::to_string(i);
          r = c.Cmd({"SET", k, v});
          if (r == "simple:OK") mine[k] = v; else failures++;
        } else if (op == 2) {
          r = c.Cmd({"GET", k});
          auto it = mine.find(k);
          if (r != (it == mine.end() ? "nil" : "bulk:" + it->second)) failures++;
        } else {
          r = c.Cmd({"DEL", k});
          if (r != (mine.erase(k) ? "int:1" : "int:0")) failures++;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(s.Stop(SIGTERM, 5000), 0) << s.log();
  ASSERT_TRUE(s.Start(t.path())) << s.log();
  Conn c(s.port());
  size_t total = 0;
  for (int ci = 0; ci < kClients; ci++) {
    for (const auto& kv : acked[ci]) ASSERT_EQ(c.Cmd({"GET", kv.first}), "bulk:" + kv.second) << kv.first;
    total += acked[ci].size();
  }
  EXPECT_EQ(c.Cmd({"DBSIZE"}), "int:" + std::to_string(total));
  EXPECT_EQ(s.Stop(), 0);
}

TEST(ServerDurability, SigtermWhileClientsAreBusy) {
  // Stop in the middle of a pipelined write load: exit 0, promptly, and
  // every acknowledged write is there afterwards.
  TempDir t;
  Server s;
  ASSERT_TRUE(s.Start(t.path(), {"--fsync", "always"})) << s.log();
  Conn c(s.port());
  std::string batch;
  for (int i = 0; i < 5000; i++) batch += Conn::Encode({"SET", "k" + std::to_string(i), "v"});
  ASSERT_TRUE(c.SendRaw(batch));
  std::vector<int> acked;
  for (int i = 0; i < 100; i++) {
    if (c.Read() == "simple:OK") acked.push_back(i);
  }
  auto t0 = Clock::now();
  EXPECT_EQ(s.Stop(SIGTERM, 8000), 0) << s.log();
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5));
  for (;;) {
    std::string r = c.Read(2000);
    if (r != "simple:OK") break;
    acked.push_back(static_cast<int>(acked.size()));
  }
  ASSERT_TRUE(s.Start(t.path())) << s.log();
  Conn d(s.port());
  for (int i : acked) ASSERT_EQ(d.Cmd({"GET", "k" + std::to_string(i)}), "bulk:v") << i;
  EXPECT_EQ(s.Stop(), 0);
}

// ---- security ------------------------------------------------------------------------------

void CheckAuth(int port, Server& s) {
  Conn c(port);
  EXPECT_EQ(c.Cmd({"GET", "k"}), "error:NOAUTH Authentication required.");
  EXPECT_EQ(c.Cmd({"SET", "k", "v"}), "error:NOAUTH Authentication required.");
  EXPECT_EQ(c.Cmd({"AUTH", "wrong"}),
            "error:WRONGPASS invalid username-password pair or user is disabled.");
  EXPECT_EQ(c.Cmd({"AUTH", "other", "s3cret pass"}),
            "error:WRONGPASS invalid username-password pair or user is disabled.");
  EXPECT_EQ(c.Cmd({"HELLO", "2"}).substr(0, 12), "error:NOAUTH");
  EXPECT_EQ(c.Cmd({"AUTH", "s3cret pass"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"SET", "k", "v"}), "simple:OK");
  Conn d(port);
  EXPECT_EQ(d.Cmd({"AUTH", "default", "s3cret pass"}), "simple:OK");
  EXPECT_EQ(d.Cmd({"GET", "k"}), "bulk:v");
  Conn e(port);
  EXPECT_EQ(e.Cmd({"HELLO", "2", "AUTH", "default", "s3cret pass"}).substr(0, 8), "array:14");
  EXPECT_EQ(e.Cmd({"GET", "k"}), "bulk:v");
  EXPECT_EQ(e.Cmd({"QUIT"}), "simple:OK");
  EXPECT_NE(s.log().find("wrong password"), std::string::npos) << s.log();
  EXPECT_EQ(s.log().find("s3cret"), std::string::npos) << s.log();
}

TEST(ServerAuth, PasswordFromEnvironment) {
  TempDir t;
  Server s;
  ASSERT_TRUE(s.Start(t.path(), {}, {"KVS_PASSWORD=s3cret pass"})) << s.log();
  CheckAuth(s.port(), s);
  EXPECT_EQ(s.Stop(), 0);
}

TEST(ServerAuth, PasswordFromFileAndOption) {
  TempDir t;
  std::string pf = t.file("pass");
  kvstest::WriteFile(pf, "s3cret pass\n");
  Server s;
  ASSERT_TRUE(s.Start(t.path(), {"--requirepass-file", pf})) << s.log();
  CheckAuth(s.port(), s);
  EXPECT_EQ(s.Stop(), 0);
  ASSERT_TRUE(s.Start(t.path(), {"--requirepass", "s3cret pass"})) << s.log();
  CheckAuth(s.port(), s);
  EXPECT_EQ(s.Stop(), 0);
}

TEST(ServerProtected, LoopbackDecision) {
  sockaddr_storage ss;
  socklen_t len;
  for (const char* a : {"127.0.0.1:1", "127.9.9.9:1", "[::1]:1", "[::ffff:127.0.0.1]:1"}) {
    ASSERT_EQ(net_parse_addr(a, &ss, &len), 0) << a;
    EXPECT_TRUE(net_addr_is_loopback(reinterpret_cast<sockaddr*>(&ss))) << a;
  }
  for (const char* a : {"10.0.0.1:1", "0.0.0.0:1", "[::]:1", "[2001:db8::1]:1", "[::ffff:10.0.0.1]:1",
                        "192.168.1.1:0"}) {
    ASSERT_EQ(net_parse_addr(a, &ss, &len), 0) << a;
    EXPECT_FALSE(net_addr_is_loopback(reinterpret_cast<sockaddr*>(&ss))) << a;
  }
  for (const char* a : {"", "1.2.3.4", "1.2.3.4:", ":80", "1.2.3.4:65536", "::1:80", "[::1]", "host:80",
                        "1.2.3.4:8a"})
    EXPECT_NE(net_parse_addr(a, &ss, &len), 0) << a;
}

TEST(ServerProtected, AnyAddressServesLoopbackOnly) {
  TempDir t;
  Server s;
  ASSERT_TRUE(s.Start(t.path(), {"--addr", "0.0.0.0:0"})) << s.log();
  EXPECT_NE(s.log().find("protected mode is on"), std::string::npos) << s.log();
  Conn c(s.port());
  EXPECT_EQ(c.Cmd({"PING"}), "simple:PONG");
  EXPECT_EQ(c.Cmd({"INFO", "server"}).find("protected_mode:yes") != std::string::npos, true);
  EXPECT_EQ(s.Stop(), 0);
}

TEST(ServerIpv6, ListensOnLoopbackV6) {
  int probe = socket(AF_INET6, SOCK_STREAM, 0);
  if (probe < 0) GTEST_SKIP() << "no IPv6";
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  bool ok = bind(probe, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(probe);
  if (!ok) GTEST_SKIP() << "no IPv6 loopback";
  TempDir t;
  Server s;
  ASSERT_TRUE(s.Start(t.path(), {"--addr", "[::1]:0"})) << s.log();
  RunResult r = kvstest::Run({Bin("kvs-client"), "set", "k", "v6", "--addr",
                              "[::1]:" + std::to_string(s.port())});
  EXPECT_EQ(r.status, 0) << r.err;
  r = kvstest::Run({Bin("kvs-client"), "get", "k", "--addr", "[::1]:" + std::to_string(s.port())});
  EXPECT_EQ(r.out, "v6\n");
  EXPECT_EQ(s.Stop(), 0);
}

// ---- the glob matcher ------------------------------------------------------------------------

bool Glob(const std::string& p, const std::string& s, int nocase = 0) {
  return net_glob_match(p.data(), p.size(), s.data(), s.size(), nocase) == 1;
}

TEST(ServerGlob, Patterns) {
  EXPECT_TRUE(Glob("*", ""));
  EXPECT_TRUE(Glob("*", "abc"));
  EXPECT_TRUE(Glob("a*", "abc"));
  EXPECT_FALSE(Glob("a*", "bac"));
  EXPECT_TRUE(Glob("*c", "abc"));
  EXPECT_TRUE(Glob("a*b*c", "aXbYc"));
  EXPECT_FALSE(Glob("a*b*c", "aXbY"));
  EXPECT_TRUE(Glob("h?llo", "hello"));
  EXPECT_FALSE(Glob("h?llo", "hllo"));
  EXPECT_TRUE(Glob("h[ae]llo", "hallo"));
  EXPECT_FALSE(Glob("h[ae]llo", "hillo"));
  EXPECT_TRUE(Glob("h[^e]llo", "hallo"));
  EXPECT_FALSE(Glob("h[^e]llo", "hello"));
  EXPECT_TRUE(Glob("h[a-b]llo", "hbllo"));
  EXPECT_TRUE(Glob("h[b-a]llo", "hbllo"));
  EXPECT_FALSE(Glob("h[a-b]llo", "hcllo"));
  EXPECT_TRUE(Glob("\\*", "*"));
  EXPECT_FALSE(Glob("\\*", "a"));
  EXPECT_TRUE(Glob("[\\]]", "]"));
  EXPECT_TRUE(Glob("a[", "a["));
  EXPECT_TRUE(Glob("KEY*", "key1", 1));
  EXPECT_FALSE(Glob("KEY*", "key1", 0));
  EXPECT_TRUE(Glob(std::string("a\0*", 3), std::string("a\0zz", 4)));
  // No exponential blow-up.
  EXPECT_FALSE(Glob("a*a*a*a*a*a*a*a*a*a*a*a*a*b", std::string(5000, 'a')));
}

}  // namespace

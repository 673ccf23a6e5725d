// server_expire_test.cc - key expiry in kvs-server: Redis's expiry-time
// arithmetic (keyop.c), SET's expiry options and GET, SETEX, PSETEX, GETEX,
// GETDEL, the EXPIRE family with NX/XX/GT/LT, the TTL family, PERSIST,
// TIME; a key that expires is gone for every command; TTLs survive a
// restart; redis-py.  Replies were compared by hand with Debian's
// redis-server 7.0.15 and are hard-coded here.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "ttl.h"
#include "server_util.h"
#include "test_util.h"

namespace {

using kvstest::Conn;
using kvstest::RunResult;
using kvstest::Server;
using kvstest::TempDir;

// ---- the arithmetic, alone -------------------------------------------------------

int Option(const std::string& s, net_ttl_unit u, int64_t now, int64_t* ms) {
  return net_expire_option(s.data(), s.size(), u, now, ms);
}
int When(const std::string& s, net_ttl_unit u, int64_t now, int64_t* ms) {
  return net_expire_when(s.data(), s.size(), u, now, ms);
}

TEST(ExpireArith, OptionsAsRedisChecksThem) {
  int64_t ms = 0;
  EXPECT_EQ(Option("10", NET_TTL_EX, 1000, &ms), 0);
  EXPECT_EQ(ms, 11000);
  EXPECT_EQ(Option("10", NET_TTL_PX, 1000, &ms), 0);
  EXPECT_EQ(ms, 1010);
  EXPECT_EQ(Option("10", NET_TTL_EXAT, 1000, &ms), 0);
  EXPECT_EQ(ms, 10000);
  EXPECT_EQ(Option("10", NET_TTL_PXAT, 1000, &ms), 0);
  EXPECT_EQ(ms, 10);
  EXPECT_EQ(Option("abc", NET_TTL_EX, 0, &ms), -1);
  EXPECT_EQ(Option(" 1", NET_TTL_EX, 0, &ms), -1);
  EXPECT_EQ(Option("0", NET_TTL_EX, 0, &ms), -2);
  EXPECT_EQ(Option("-1", NET_TTL_PXAT, 0, &ms), -2);
  EXPECT_EQ(Option("9223372036854775807", NET_TTL_EX, 0, &ms), -2);
  EXPECT_EQ(Option("9223372036854775", NET_TTL_EXAT, 0, &ms), 0);
  EXPECT_EQ(Option("9223372036854776", NET_TTL_EXAT, 0, &ms), -2);
  EXPECT_EQ(Option("9223372036854775807", NET_TTL_PX, 1, &ms), -2);
  EXPECT_EQ(Option("9223372036854775807", NET_TTL_PXAT, 1, &ms), 0);
}

TEST(ExpireArith, ExpireTimesMayBePast) {
  int64_t ms = 0;
  EXPECT_EQ(When("-5", NET_TTL_EX, 10000, &ms), 0);
  EXPECT_EQ(ms, 5000);
  EXPECT_EQ(When("0", NET_TTL_PXAT, 10000, &ms), 0);
  EXPECT_EQ(ms, 0);
  EXPECT_EQ(When("x", NET_TTL_EX, 0, &ms), -1);
  EXPECT_EQ(When("9223372036854775807", NET_TTL_EX, 0, &ms), -2);
  EXPECT_EQ(When("-9223372036854775807", NET_TTL_EXAT, 0, &ms), -2);
  EXPECT_EQ(When("9223372036854775807", NET_TTL_PX, 1, &ms), -2);
  EXPECT_EQ(When("9223372036854775807", NET_TTL_PXAT, 1, &ms), 0);
}

TEST(ExpireArith, TtlFigures) {
  EXPECT_EQ(net_ttl_figure(false, 0, 0, false, false), -2);
  EXPECT_EQ(net_ttl_figure(true, 0, 0, true, false), -1);
  EXPECT_EQ(net_ttl_figure(true, 10499, 0, false, false), 10);  // rounded
  EXPECT_EQ(net_ttl_figure(true, 10500, 0, false, false), 11);
  EXPECT_EQ(net_ttl_figure(true, 10500, 100, true, false), 10400);
  EXPECT_EQ(net_ttl_figure(true, 5, 100, true, false), 0);  // past: 0
  EXPECT_EQ(net_ttl_figure(true, 33177600000000, 5, false, true), 33177600000);
  EXPECT_EQ(net_ttl_figure(true, 33177600000000, 5, true, true), 33177600000000);
}

// ---- a server ---------------------------------------------------------------------

// Every test runs on both engines.
class ServerExpire : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    data_ = tmp_.file("data");
    mkdir(data_.c_str(), 0755);
    ASSERT_TRUE(srv_.Start(data_, {"--engine", GetParam()})) << srv_.log();
  }
  void TearDown() override {
    if (srv_.alive()) {
      EXPECT_EQ(srv_.Stop(SIGTERM), 0) << srv_.log();
    }
    srv_.CheckLog();
  }
  // A reply "int:N" as N, or a huge number.
  static long long Int(const std::string& r) {
    return r.rfind("int:", 0) == 0 ? std::stoll(r.substr(4)) : (1LL << 62);
  }
  TempDir tmp_;
  std::string data_;
  Server srv_;
};

void Sleep(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

TEST_P(ServerExpire, SetOptions) {
  Conn c(srv_.port());
  const char* bad = "error:ERR invalid expire time in 'set' command";
  EXPECT_EQ(c.Cmd({"SET", "k", "v", "EX", "0"}), bad);
  EXPECT_EQ(c.Cmd({"SET", "k", "v", "EX", "-1"}), bad);
  EXPECT_EQ(c.Cmd({"SET", "k", "v", "PX", "9223372036854775807"}), bad);
  EXPECT_EQ(c.Cmd({"SET", "k", "v", "EX", "9223372036854775807"}), bad);
  EXPECT_EQ(c.Cmd({"SET", "k", "v", "EX", "abc"}), "error:ERR value is not an integer or out of range");
  EXPECT_EQ(c.Cmd({"SET", "k", "v", "EX", "10", "PX", "10"}), "error:ERR syntax error");
  EXPECT_EQ(c.Cmd({"SET", "k", "v", "EX", "10", "KEEPTTL"}), "error:ERR syntax error");
  EXPECT_EQ(c.Cmd({"SET", "k", "v", "KEEPTTL", "EX", "10"}), "error:ERR syntax error");
  EXPECT_EQ(c.Cmd({"SET", "k", "v", "NX", "XX"}), "error:ERR syntax error");
  EXPECT_EQ(c.Cmd({"EXISTS", "k"}), "int:0");
  // An expiry option may repeat: the last one counts (Redis 7.0).
  EXPECT_EQ(c.Cmd({"SET", "k", "v", "EX", "10", "EX", "20"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"TTL", "k"}), "int:20");
  long long pttl = Int(c.Cmd({"PTTL", "k"}));
  EXPECT_GT(pttl, 18000);
  EXPECT_LE(pttl, 20000);
  // KEEPTTL keeps it, a SET without it clears it.
  EXPECT_EQ(c.Cmd({"SET", "k", "w", "KEEPTTL"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"TTL", "k"}), "int:20");
  EXPECT_EQ(c.Cmd({"SET", "k", "x"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"TTL", "k"}), "int:-1");
  EXPECT_EQ(c.Cmd({"TTL", "nokey"}), "int:-2");
  EXPECT_EQ(c.Cmd({"PTTL", "nokey"}), "int:-2");
  // GET, and with NX/XX (NX GET is allowed since 7.0).
  EXPECT_EQ(c.Cmd({"SET", "k", "v", "GET"}), "bulk:x");
  EXPECT_EQ(c.Cmd({"SET", "k", "v2", "NX", "GET"}), "bulk:v");
  EXPECT_EQ(c.Cmd({"GET", "k"}), "bulk:v");
  EXPECT_EQ(c.Cmd({"SET", "k3", "v3", "NX", "GET"}), "nil");
  EXPECT_EQ(c.Cmd({"GET", "k3"}), "bulk:v3");
  EXPECT_EQ(c.Cmd({"SET", "k4", "v4", "XX", "GET"}), "nil");
  EXPECT_EQ(c.Cmd({"EXISTS", "k4"}), "int:0");
  EXPECT_EQ(c.Cmd({"SET", "k", "v5", "XX", "GET", "PX", "100000"}), "bulk:v");
  EXPECT_EQ(c.Cmd({"TTL", "k"}), "int:100");
  // EXAT in the past: OK, and the key is gone.
  EXPECT_EQ(c.Cmd({"SET", "k", "v", "EXAT", "1"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"GET", "k"}), "nil");
  EXPECT_EQ(c.Cmd({"SET", "k", "v", "PXAT", "33177600000000"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"PEXPIRETIME", "k"}), "int:33177600000000");
  EXPECT_EQ(c.Cmd({"EXPIRETIME", "k"}), "int:33177600000");
  EXPECT_EQ(c.Cmd({"EXPIRETIME", "nokey"}), "int:-2");
  EXPECT_EQ(c.Cmd({"EXPIRETIME", "k3"}), "int:-1");
  // SETEX, PSETEX.
  EXPECT_EQ(c.Cmd({"SETEX", "s", "0", "v"}), "error:ERR invalid expire time in 'setex' command");
  EXPECT_EQ(c.Cmd({"PSETEX", "s", "-5", "v"}), "error:ERR invalid expire time in 'psetex' command");
  EXPECT_EQ(c.Cmd({"SETEX", "s", "abc", "v"}), "error:ERR value is not an integer or out of range");
  EXPECT_EQ(c.Cmd({"SETEX", "s", "100", "v"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"TTL", "s"}), "int:100");
  EXPECT_EQ(c.Cmd({"PSETEX", "s", "50000", "w"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"TTL", "s"}), "int:50");
  EXPECT_EQ(c.Cmd({"GET", "s"}), "bulk:w");
  // INCR keeps the expiry.
  EXPECT_EQ(c.Cmd({"SET", "n", "10", "EX", "100"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"INCR", "n"}), "int:11");
  EXPECT_EQ(c.Cmd({"TTL", "n"}), "int:100");
}

TEST_P(ServerExpire, ExpireOptions) {
  Conn c(srv_.port());
  EXPECT_EQ(c.Cmd({"EXPIRE", "nokey", "10"}), "int:0");
  EXPECT_EQ(c.Cmd({"SET", "k", "v"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"EXPIRE", "k", "100", "XX"}), "int:0");  // no TTL yet
  EXPECT_EQ(c.Cmd({"EXPIRE", "k", "100", "GT"}), "int:0");  // none = infinite
  EXPECT_EQ(c.Cmd({"EXPIRE", "k", "100", "LT"}), "int:1");
  EXPECT_EQ(c.Cmd({"EXPIRE", "k", "100", "NX"}), "int:0");
  EXPECT_EQ(c.Cmd({"EXPIRE", "k", "200", "XX"}), "int:1");
  EXPECT_EQ(c.Cmd({"TTL", "k"}), "int:200");
  EXPECT_EQ(c.Cmd({"EXPIRE", "k", "50", "GT"}), "int:0");
  EXPECT_EQ(c.Cmd({"EXPIRE", "k", "500", "gt"}), "int:1");
  EXPECT_EQ(c.Cmd({"EXPIRE", "k", "600", "LT"}), "int:0");
  EXPECT_EQ(c.Cmd({"EXPIRE", "k", "50", "LT"}), "int:1");
  EXPECT_EQ(c.Cmd({"TTL", "k"}), "int:50");
  EXPECT_EQ(c.Cmd({"EXPIRE", "k", "50", "NX", "XX"}),
            "error:ERR NX and XX, GT or LT options at the same time are not compatible");
  EXPECT_EQ(c.Cmd({"EXPIRE", "k", "50", "GT", "LT"}),
            "error:ERR GT and LT options at the same time are not compatible");
  EXPECT_EQ(c.Cmd({"EXPIRE", "k", "50", "foo"}), "error:ERR Unsupported option foo");
  // As Redis's addReplyErrorFormat(): CR/LF at the end of the message are
  // cut, inside they become spaces (kvs made them all spaces; fuzz_cmd).
  EXPECT_EQ(c.Cmd({"EXPIRE", "k", "50", "f\r\no\r"}), "error:ERR Unsupported option f  o");
  EXPECT_EQ(c.Cmd({"EXPIRE", "k", "50", "\n\r\n"}), "error:ERR Unsupported option ");
  EXPECT_EQ(c.Cmd({"EXPIRE", "k", "abc"}), "error:ERR value is not an integer or out of range");
  EXPECT_EQ(c.Cmd({"EXPIRE", "k", "9223372036854775807"}),
            "error:ERR invalid expire time in 'expire' command");
  EXPECT_EQ(c.Cmd({"PEXPIRE", "k", "9223372036854775807"}),
            "error:ERR invalid expire time in 'pexpire' command");
  EXPECT_EQ(c.Cmd({"EXPIREAT", "k", "9223372036854775807"}),
            "error:ERR invalid expire time in 'expireat' command");
  EXPECT_EQ(c.Cmd({"TTL", "k"}), "int:50");
  EXPECT_EQ(c.Cmd({"PEXPIREAT", "k", "33177600000000"}), "int:1");
  EXPECT_EQ(c.Cmd({"EXPIRETIME", "k"}), "int:33177600000");
  EXPECT_EQ(c.Cmd({"EXPIREAT", "k", "33177600001"}), "int:1");
  EXPECT_EQ(c.Cmd({"PEXPIRETIME", "k"}), "int:33177600001000");
  EXPECT_EQ(c.Cmd({"PERSIST", "k"}), "int:1");
  EXPECT_EQ(c.Cmd({"PERSIST", "k"}), "int:0");
  EXPECT_EQ(c.Cmd({"PERSIST", "nokey"}), "int:0");
  EXPECT_EQ(c.Cmd({"TTL", "k"}), "int:-1");
  EXPECT_EQ(c.Cmd({"GET", "k"}), "bulk:v");
  // A time already past removes the key and answers 1.
  EXPECT_EQ(c.Cmd({"EXPIRE", "k", "-1"}), "int:1");
  EXPECT_EQ(c.Cmd({"EXISTS", "k"}), "int:0");
  EXPECT_EQ(c.Cmd({"SET", "k", "v"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"EXPIREAT", "k", "1"}), "int:1");
  EXPECT_EQ(c.Cmd({"GET", "k"}), "nil");
  EXPECT_EQ(c.Cmd({"SET", "k", "v"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"PEXPIRE", "k", "0", "LT"}), "int:1");
  EXPECT_EQ(c.Cmd({"EXISTS", "k"}), "int:0");
}

TEST_P(ServerExpire, GetexGetdel) {
  Conn c(srv_.port());
  // GETEX checks its expiry only once the key is found, as Redis.
  EXPECT_EQ(c.Cmd({"GETEX", "nokey", "EX", "-1"}), "nil");
  EXPECT_EQ(c.Cmd({"SET", "k", "v"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"GETEX", "k", "EX", "-1"}), "error:ERR invalid expire time in 'getex' command");
  EXPECT_EQ(c.Cmd({"GETEX", "k", "PX", "0"}), "error:ERR invalid expire time in 'getex' command");
  EXPECT_EQ(c.Cmd({"GETEX", "k", "EX", "abc"}), "error:ERR value is not an integer or out of range");
  EXPECT_EQ(c.Cmd({"GETEX", "k", "NX"}), "error:ERR syntax error");
  EXPECT_EQ(c.Cmd({"GETEX", "k", "KEEPTTL"}), "error:ERR syntax error");
  EXPECT_EQ(c.Cmd({"GETEX", "k", "EX", "100", "PERSIST"}), "error:ERR syntax error");
  EXPECT_EQ(c.Cmd({"GETEX", "k", "PERSIST", "EX", "100"}), "error:ERR syntax error");
  EXPECT_EQ(c.Cmd({"GETEX", "k", "EX", "100", "PX", "5"}), "error:ERR syntax error");
  EXPECT_EQ(c.Cmd({"GETEX", "k"}), "bulk:v");
  EXPECT_EQ(c.Cmd({"TTL", "k"}), "int:-1");
  EXPECT_EQ(c.Cmd({"GETEX", "k", "EX", "100"}), "bulk:v");
  EXPECT_EQ(c.Cmd({"TTL", "k"}), "int:100");
  EXPECT_EQ(c.Cmd({"GETEX", "k", "PERSIST"}), "bulk:v");
  EXPECT_EQ(c.Cmd({"TTL", "k"}), "int:-1");
  EXPECT_EQ(c.Cmd({"GETEX", "k", "EXAT", "33177600000"}), "bulk:v");
  EXPECT_EQ(c.Cmd({"EXPIRETIME", "k"}), "int:33177600000");
  EXPECT_EQ(c.Cmd({"GETEX", "k", "PXAT", "1"}), "bulk:v");  // past: removed
  EXPECT_EQ(c.Cmd({"EXISTS", "k"}), "int:0");
  EXPECT_EQ(c.Cmd({"SET", "k", "v"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"GETDEL", "k"}), "bulk:v");
  EXPECT_EQ(c.Cmd({"GETDEL", "k"}), "nil");
  EXPECT_EQ(c.Cmd({"EXISTS", "k"}), "int:0");
  EXPECT_EQ(c.Cmd({"GETDEL", ""}), "nil");
}

// A key that expires is gone for every command, without anyone deleting it.
TEST_P(ServerExpire, ExpiredKeyIsGoneEverywhere) {
  Conn c(srv_.port());
  EXPECT_EQ(c.Cmd({"SET", "short", "v", "PX", "150"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"SET", "pset", "v"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"PEXPIRE", "pset", "150"}), "int:1");
  EXPECT_EQ(c.Cmd({"DBSIZE"}), "int:2");
  EXPECT_EQ(c.Cmd({"EXISTS", "short", "pset"}), "int:2");
  Sleep(400);
  for (const char* k : {"short", "pset"}) {
    EXPECT_EQ(c.Cmd({"GET", k}), "nil") << k;
    EXPECT_EQ(c.Cmd({"TTL", k}), "int:-2") << k;
    EXPECT_EQ(c.Cmd({"TYPE", k}), "simple:none") << k;
    EXPECT_EQ(c.Cmd({"STRLEN", k}), "int:0") << k;
    EXPECT_EQ(c.Cmd({"GETDEL", k}), "nil") << k;
    EXPECT_EQ(c.Cmd({"EXPIRE", k, "100"}), "int:0") << k;
  }
  EXPECT_EQ(c.Cmd({"MGET", "short", "pset"}), "array:2[nil,nil]");
  EXPECT_EQ(c.Cmd({"EXISTS", "short", "pset"}), "int:0");
  EXPECT_EQ(c.Cmd({"KEYS", "*"}), "array:0[]");
  EXPECT_EQ(c.Cmd({"SCAN", "0", "COUNT", "100"}), "array:2[bulk:0,array:0[]]");
  EXPECT_EQ(c.Cmd({"RANDOMKEY"}), "nil");
  EXPECT_EQ(c.Cmd({"DBSIZE"}), "int:0");
  EXPECT_EQ(c.Cmd({"RENAME", "short", "x"}), "error:ERR no such key");
  EXPECT_EQ(c.Cmd({"INCR", "short"}), "int:1");
  EXPECT_EQ(c.Cmd({"TTL", "short"}), "int:-1");
}

// The expiry is part of the durable record: a TTL survives a restart, and a
// key whose time passed while the server was down is gone.
TEST_P(ServerExpire, TtlSurvivesRestart) {
  {
    Conn c(srv_.port());
    EXPECT_EQ(c.Cmd({"SET", "long", "v", "EX", "100"}), "simple:OK");
    EXPECT_EQ(c.Cmd({"SET", "short", "v", "PX", "300"}), "simple:OK");
    EXPECT_EQ(c.Cmd({"SET", "plain", "v"}), "simple:OK");
    EXPECT_EQ(c.Cmd({"SET", "gone", "v"}), "simple:OK");
    EXPECT_EQ(c.Cmd({"PEXPIRE", "gone", "200"}), "int:1");
  }
  srv_.Stop(SIGKILL);
  Sleep(400);
  ASSERT_TRUE(srv_.Start(data_, {"--engine", GetParam()})) << srv_.log();
  Conn c(srv_.port());
  long long ttl = ServerExpire::Int(c.Cmd({"TTL", "long"}));
  EXPECT_GE(ttl, 95);
  EXPECT_LE(ttl, 100);
  EXPECT_EQ(c.Cmd({"TTL", "plain"}), "int:-1");
  EXPECT_EQ(c.Cmd({"GET", "short"}), "nil");
  EXPECT_EQ(c.Cmd({"GET", "gone"}), "nil");
  EXPECT_EQ(c.Cmd({"DBSIZE"}), "int:2");
  EXPECT_EQ(c.Cmd({"GET", "long"}), "bulk:v");
}

TEST_P(ServerExpire, Time) {
  Conn c(srv_.port());
  std::string r = c.Cmd({"TIME"});
  ASSERT_EQ(r.rfind("array:2[bulk:", 0), 0u) << r;
  long long secs = std::stoll(r.substr(13));
  EXPECT_LE(std::llabs(secs - static_cast<long long>(time(nullptr))), 2);
  EXPECT_EQ(c.Cmd({"TIME", "x"}), "error:ERR wrong number of arguments for 'time' command");
}

// Pipelined: each write sees the ones before it, in one engine batch.
TEST_P(ServerExpire, PipelinedExpiryWrites) {
  Conn c(srv_.port());
  const std::vector<std::vector<std::string>> cmds = {
      {"SET", "k", "1", "EX", "100"}, {"INCR", "k"},          {"EXPIRE", "k", "50", "LT"},
      {"SET", "k", "9", "KEEPTTL", "GET"}, {"PERSIST", "k"}, {"GETEX", "k", "PX", "5000"},
      {"EXPIRE", "k", "-1"},            {"GETDEL", "k"},       {"TTL", "k"},
  };
  const std::vector<std::string> want = {
      "simple:OK", "int:2", "int:1", "bulk:2", "int:1", "bulk:9", "int:1", "nil", "int:-2",
  };
  std::string all;
  for (const auto& cmd : cmds) all += Conn::Encode(cmd);
  ASSERT_TRUE(c.SendRaw(all));
  for (size_t i = 0; i < want.size(); i++) EXPECT_EQ(c.Read(), want[i]) << i;
}

TEST_P(ServerExpire, RedisPy) {
  if (kvstest::Run({"/usr/bin/python3", "-c", "import redis"}).status != 0)
    GTEST_SKIP() << "python3-redis is not installed";
  std::string script = R"PY(
import sys, time, redis
r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]))
assert r.set("a", "1", ex=100)
assert r.ttl("a") == 100, r.ttl("a")
assert 99000 < r.pttl("a") <= 100000
assert r.set("b", "2", px=200)
assert r.expire("c", 10) is False
assert r.set("c", "3")
assert r.expire("c", 1000) is True
assert r.ttl("c") == 1000
assert r.persist("c") is True and r.ttl("c") == -1
assert r.getex("c", ex=50) == b"3" and r.ttl("c") == 50
assert r.getdel("c") == b"3" and r.get("c") is None
for i in range(50):
    r.set("s%d" % i, i, px=300 if i % 2 else None)
assert sorted(r.keys("s1*")) == sorted([("s%d" % i).encode() for i in [1, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]])
assert len(set(r.scan_iter(match="s*", count=7))) == 50
time.sleep(0.5)
left = set(r.scan_iter(match="s*", count=7))
assert left == set(("s%d" % i).encode() for i in range(0, 50, 2)), left
assert len(r.keys("s*")) == 25
assert r.get("b") is None and r.ttl("b") == -2
assert r.type("a") == b"string" and r.type("b") == b"none"
print("ok")
)PY";
  std::string f = tmp_.file("t.py");
  kvstest::WriteFile(f, script);
  RunResult r = kvstest::Run({"/usr/bin/python3", f, std::to_string(srv_.port())}, "", 60);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "ok\n") << r.err;
}

INSTANTIATE_TEST_SUITE_P(Engines, ServerExpire, ::testing::Values("kvs", "lmdb"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

}  // namespace

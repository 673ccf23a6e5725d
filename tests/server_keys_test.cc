// server_keys_test.cc - the keyspace commands of kvs-server: KEYS, TYPE,
// TOUCH, RENAME, RENAMENX (keeping the TTL), COPY, UNLINK, RANDOMKEY,
// FLUSHDB and FLUSHALL (durable: after its reply a SIGKILL brings nothing
// back).  Replies were compared by hand with Debian's redis-server 7.0.15
// and are hard-coded here.
#include <sys/stat.h>
#include <unistd.h>

#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "server_util.h"
#include "test_util.h"

namespace {

using kvstest::Conn;
using kvstest::Server;
using kvstest::TempDir;

// Every test runs on both engines.
class ServerKeys : public ::testing::TestWithParam<std::string> {
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
  TempDir tmp_;
  std::string data_;
  Server srv_;
};

TEST_P(ServerKeys, TypeKeysTouch) {
  Conn c(srv_.port());
  EXPECT_EQ(c.Cmd({"TYPE", "k"}), "simple:none");
  EXPECT_EQ(c.Cmd({"KEYS", "*"}), "array:0[]");
  EXPECT_EQ(c.Cmd({"MSET", "k1", "a", "k2", "b", "x3", "c", "k[", "d"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"TYPE", "k1"}), "simple:string");
  std::string all = c.Cmd({"KEYS", "*"});
  for (const char* k : {"bulk:k1", "bulk:k2", "bulk:x3", "bulk:k["})
    EXPECT_NE(all.find(k), std::string::npos) << all;
  EXPECT_EQ(all.rfind("array:4[", 0), 0u) << all;
  EXPECT_EQ(c.Cmd({"KEYS", "x*"}), "array:1[bulk:x3]");
  EXPECT_EQ(c.Cmd({"KEYS", "k\\["}), "array:1[bulk:k[]");
  EXPECT_EQ(c.Cmd({"KEYS", "nomatch*"}), "array:0[]");
  EXPECT_EQ(c.Cmd({"KEYS"}), "error:ERR wrong number of arguments for 'keys' command");
  EXPECT_EQ(c.Cmd({"TOUCH", "k1", "k2", "nokey", "k1"}), "int:3");
  EXPECT_EQ(c.Cmd({"UNLINK", "k1", "nokey"}), "int:1");
  EXPECT_EQ(c.Cmd({"TYPE", "k1"}), "simple:none");
}

TEST_P(ServerKeys, RenameAndCopy) {
  Conn c(srv_.port());
  EXPECT_EQ(c.Cmd({"RENAME", "nokey", "x"}), "error:ERR no such key");
  EXPECT_EQ(c.Cmd({"RENAMENX", "nokey", "x"}), "error:ERR no such key");
  EXPECT_EQ(c.Cmd({"RENAME", "nokey", "nokey"}), "error:ERR no such key");
  EXPECT_EQ(c.Cmd({"SET", "k", "v", "EX", "100"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"SET", "k2", "w"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"RENAME", "k", "k"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"RENAMENX", "k", "k"}), "int:0");
  EXPECT_EQ(c.Cmd({"RENAMENX", "k", "k2"}), "int:0");
  EXPECT_EQ(c.Cmd({"GET", "k"}), "bulk:v");
  // RENAME keeps the TTL and overwrites the destination (and its TTL).
  EXPECT_EQ(c.Cmd({"RENAME", "k", "k2"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"EXISTS", "k"}), "int:0");
  EXPECT_EQ(c.Cmd({"GET", "k2"}), "bulk:v");
  EXPECT_EQ(c.Cmd({"TTL", "k2"}), "int:100");
  EXPECT_EQ(c.Cmd({"RENAMENX", "k2", "k3"}), "int:1");
  EXPECT_EQ(c.Cmd({"TTL", "k3"}), "int:100");
  EXPECT_EQ(c.Cmd({"EXISTS", "k2"}), "int:0");
  EXPECT_EQ(c.Cmd({"RENAME", "k3", ""}), "error:ERR empty keys are not supported");
  EXPECT_EQ(c.Cmd({"RENAME", "k3"}), "error:ERR wrong number of arguments for 'rename' command");
  // COPY: the one database is 0.
  EXPECT_EQ(c.Cmd({"COPY", "k3", "k3"}), "error:ERR source and destination objects are the same");
  EXPECT_EQ(c.Cmd({"COPY", "k3", "c", "DB", "1"}), "error:ERR DB index is out of range");
  EXPECT_EQ(c.Cmd({"COPY", "k3", "c", "DB", "abc"}),
            "error:ERR value is not an integer or out of range");
  EXPECT_EQ(c.Cmd({"COPY", "k3", "c", "foo"}), "error:ERR syntax error");
  EXPECT_EQ(c.Cmd({"COPY", "nokey", "c"}), "int:0");
  EXPECT_EQ(c.Cmd({"COPY", "k3", "c", "DB", "0"}), "int:1");
  EXPECT_EQ(c.Cmd({"GET", "c"}), "bulk:v");
  EXPECT_EQ(c.Cmd({"TTL", "c"}), "int:100");
  EXPECT_EQ(c.Cmd({"GET", "k3"}), "bulk:v");
  EXPECT_EQ(c.Cmd({"SET", "k3", "new"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"COPY", "k3", "c"}), "int:0");
  EXPECT_EQ(c.Cmd({"COPY", "k3", "c", "REPLACE"}), "int:1");
  EXPECT_EQ(c.Cmd({"GET", "c"}), "bulk:new");
  EXPECT_EQ(c.Cmd({"TTL", "c"}), "int:-1");
}

TEST_P(ServerKeys, RandomKey) {
  Conn c(srv_.port());
  EXPECT_EQ(c.Cmd({"RANDOMKEY"}), "nil");
  std::set<std::string> keys, seen;
  for (int i = 0; i < 20; i++) {
    std::string k = "key" + std::to_string(i);
    keys.insert("bulk:" + k);
    EXPECT_EQ(c.Cmd({"SET", k, "v"}), "simple:OK");
  }
  for (int i = 0; i < 200; i++) {
    std::string r = c.Cmd({"RANDOMKEY"});
    ASSERT_TRUE(keys.count(r)) << r;
    seen.insert(r);
  }
  EXPECT_GT(seen.size(), 5u) << "RANDOMKEY is not random";
  // An expired key is never the answer.
  EXPECT_EQ(c.Cmd({"FLUSHALL"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"SET", "only", "v", "PX", "100"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"RANDOMKEY"}), "bulk:only");
  usleep(300 * 1000);
  EXPECT_EQ(c.Cmd({"RANDOMKEY"}), "nil");
}

TEST_P(ServerKeys, Flush) {
  Conn c(srv_.port());
  EXPECT_EQ(c.Cmd({"MSET", "a", "1", "b", "2"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"FLUSHALL", "foo"}), "error:ERR syntax error");
  EXPECT_EQ(c.Cmd({"FLUSHALL", "ASYNC", "x"}), "error:ERR syntax error");
  EXPECT_EQ(c.Cmd({"FLUSHDB", "SYNC"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"DBSIZE"}), "int:0");
  EXPECT_EQ(c.Cmd({"MSET", "a", "1", "b", "2"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"FLUSHALL", "async"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"EXISTS", "a", "b"}), "int:0");
  EXPECT_EQ(c.Cmd({"FLUSHDB"}), "simple:OK");
  // Pipelined: the writes before see the keys, the ones after do not.
  std::string p = Conn::Encode({"SET", "x", "1"}) + Conn::Encode({"FLUSHALL"}) +
                  Conn::Encode({"INCR", "x"});
  ASSERT_TRUE(c.SendRaw(p));
  EXPECT_EQ(c.Read(), "simple:OK");
  EXPECT_EQ(c.Read(), "simple:OK");
  EXPECT_EQ(c.Read(), "int:1");
}

// FLUSHALL is durable: once answered, a SIGKILL and a restart find nothing,
// and the writes after it are kept.
TEST_P(ServerKeys, FlushallSurvivesSigkill) {
  {
    Conn c(srv_.port());
    std::string p;
    for (int i = 0; i < 2000; i++)
      p += Conn::Encode({"SET", "k" + std::to_string(i), "v", i % 2 ? "EX" : "KEEPTTL", "1000"});
    // KEEPTTL takes no number: every other SET is a syntax error.
    ASSERT_TRUE(c.SendRaw(p));
    for (int i = 0; i < 2000; i++) c.Read();
    EXPECT_EQ(c.Cmd({"DBSIZE"}), "int:1000");
    EXPECT_EQ(c.Cmd({"SET", "before", "v"}), "simple:OK");
    EXPECT_EQ(c.Cmd({"FLUSHALL"}), "simple:OK");
    EXPECT_EQ(c.Cmd({"SET", "after", "v"}), "simple:OK");
  }
  srv_.Stop(SIGKILL);
  ASSERT_TRUE(srv_.Start(data_, {"--engine", GetParam()})) << srv_.log();
  Conn c(srv_.port());
  EXPECT_EQ(c.Cmd({"DBSIZE"}), "int:1");
  EXPECT_EQ(c.Cmd({"KEYS", "*"}), "array:1[bulk:after]");
}

// A pipeline of keyspace writes is one engine batch: each sees the ones
// before it.
TEST_P(ServerKeys, PipelinedRenames) {
  Conn c(srv_.port());
  const std::vector<std::vector<std::string>> cmds = {
      {"SET", "a", "1"},     {"RENAME", "a", "b"}, {"RENAME", "a", "c"},
      {"COPY", "b", "c"},    {"RENAMENX", "b", "c"}, {"INCR", "c"},
      {"GETDEL", "b"},       {"MGET", "a", "b", "c"},
  };
  const std::vector<std::string> want = {
      "simple:OK", "simple:OK", "error:ERR no such key", "int:1", "int:0", "int:2",
      "bulk:1",    "array:3[nil,nil,bulk:2]",
  };
  std::string all;
  for (const auto& cmd : cmds) all += Conn::Encode(cmd);
  ASSERT_TRUE(c.SendRaw(all));
  for (size_t i = 0; i < want.size(); i++) EXPECT_EQ(c.Read(), want[i]) << i;
}

INSTANTIATE_TEST_SUITE_P(Engines, ServerKeys, ::testing::Values("kvs", "lmdb"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

}  // namespace

// keys_update_test.cc - net_keys_as_update (cmd_keys.h), the form of the
// key commands that a transaction uses: every command becomes update ops of
// one write batch, sees the effects of the commands before it in that
// batch, and gets the reply it would get alone, argument errors included,
// in its place.  Runs the net/ code in-process on a fake connection whose
// worker is the test's thread.
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

// server_int.h is C11: its atomics, as C++ spells them (the same layout
// for these lock-free types).
#include <atomic>
typedef std::atomic<int> atomic_int;
typedef std::atomic<long long> atomic_llong;
typedef std::atomic<unsigned long long> atomic_ullong;
#define _Atomic(T) std::atomic<T>
using std::memory_order_acquire;
using std::memory_order_relaxed;
extern "C" {
#include "batch.h"
#include "cmd_keys.h"
#include "reply.h"
}
#include "server_util.h"
#include "test_util.h"

namespace {

std::atomic<int> g_done{0};
void Done(net_conn*) { g_done.store(1); }

class KeysAsUpdate : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    kvs_options o{};
    o.engine = GetParam() == "lmdb" ? KVS_ENGINE_LMDB : KVS_ENGINE_KVS;
    ASSERT_EQ(kvs_open(tmp_.file("db").c_str(), &o, &db_), KVS_OK) << kvs_errmsg();
    srv_ = static_cast<net_server*>(calloc(1, sizeof *srv_));
    w_ = static_cast<net_worker*>(calloc(1, sizeof *w_));
    c_ = static_cast<net_conn*>(calloc(1, sizeof *c_));
    srv_->db = db_;
    srv_->output_limit = 1 << 30;
    w_->srv = srv_;
    w_->thread = pthread_self();
    c_->w = w_;
    c_->fd = -1;
    c_->state = NET_CONN_ACTIVE;
    c_->authed = 1;
  }
  void TearDown() override {
    net_batch_free(c_);
    net_reply_free(c_);
    free(c_);
    free(w_->subs);
    free(w_);
    free(srv_);
    if (db_) {
      EXPECT_EQ(kvs_close(db_), KVS_OK);
    }
  }
  // Add one command; returns net_keys_as_update's answer.
  bool Add(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    net_resp_cmd cmd{args.size(), argv.data(), lens.data()};
    bool r = net_keys_as_update(c_, &cmd);
    return r;
  }
  // Run the batch; the replies as text.
  std::vector<std::string> Run() {
    g_done.store(0);
    if (net_batch_submit(c_, Done)) {
      net_batch_flush(w_);  // as the worker does before it waits
      auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (!g_done.load() && std::chrono::steady_clock::now() < end)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      EXPECT_EQ(g_done.load(), 1);
      net_batch_complete(c_);
    }
    std::vector<std::string> out;
    net_resp_reader rd;
    net_resp_reader_init(&rd);
    size_t off = c_->out_pos;
    while (off < c_->out.len) {
      const net_resp_reply* r = nullptr;
      size_t used = 0;
      if (net_resp_read_reply(&rd, c_->out.data + off, c_->out.len - off, &r, &used) != NET_RESP_OK)
        break;
      out.push_back(kvstest::ReplyText(r));
      off += used;
    }
    net_resp_reader_free(&rd);
    c_->out_pos = c_->out.len = 0;
    return out;
  }
  kvstest::TempDir tmp_;
  kvs* db_ = nullptr;
  net_server* srv_ = nullptr;
  net_worker* w_ = nullptr;
  net_conn* c_ = nullptr;
};

TEST_P(KeysAsUpdate, OneBatchInOrder) {
  EXPECT_FALSE(Add({"PING"}));
  EXPECT_FALSE(Add({"KEYS", "*"}));
  EXPECT_FALSE(Add({"RANDOMKEY"}));
  const std::vector<std::vector<std::string>> cmds = {
      {"SET", "a", "1"},
      {"GET", "a"},
      {"INCR", "a"},
      {"INCRBY", "a", "x"},
      {"SET", "a", "v", "EX", "0"},
      {"SET", "a", "v", "BOGUS"},
      {"GET"},
      {"SET", "", "v"},
      {"SET", "a", "3", "GET"},
      {"SETNX", "a", "z"},
      {"MSET", "b", "2", "c", "3"},
      {"MGET", "a", "b", "nokey", ""},
      {"EXISTS", "a", "b", "nokey", "a"},
      {"STRLEN", "b"},
      {"DEL", "b", "nokey", ""},
      {"TYPE", "b"},
      {"RENAME", "c", "d"},
      {"RENAME", "c", "d"},
      {"COPY", "d", "e"},
      {"RENAMENX", "d", "e"},
      {"GETDEL", "e"},
      {"TOUCH", "a", "d", "e"},
      {"DECRBY", "a", "1"},
      {"UNLINK", "d"},
      {"TTL", "a"},
      {"EXPIRE", "a", "100", "FOO"},
      {"PERSIST", "a"},
      {"GETEX", "a"},
      {"GETEX", "nokey", "EX", "-1"},
      {"EXPIRE", "nokey", "10"},
      {"GET", "a"},
  };
  const std::vector<std::string> want = {
      "simple:OK",
      "bulk:1",
      "int:2",
      "error:ERR value is not an integer or out of range",
      "error:ERR invalid expire time in 'set' command",
      "error:ERR syntax error",
      "error:ERR wrong number of arguments for 'get' command",
      "error:ERR empty keys are not supported",
      "bulk:2",
      "int:0",
      "simple:OK",
      "array:4[bulk:3,bulk:2,nil,nil]",
      "int:3",
      "int:1",
      "int:1",
      "simple:none",
      "simple:OK",
      "error:ERR no such key",
      "int:1",
      "int:0",
      "bulk:3",
      "int:2",
      "int:2",
      "int:1",
      "int:-1",
      "error:ERR Unsupported option FOO",
      "int:0",
      "bulk:2",
      "nil",
      "int:0",
      "bulk:2",
  };
  for (const auto& cmd : cmds) EXPECT_TRUE(Add(cmd)) << cmd[0];
  std::vector<std::string> got = Run();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); i++) EXPECT_EQ(got[i], want[i]) << i << " " << cmds[i][0];
  // Nothing was written to the placeholder key of the argument errors.
  uint64_t cursor = 0;
  int keys = 0;
  ASSERT_EQ(kvs_scan(db_, 0, 1000, [](void* n, const void*, size_t) { ++*static_cast<int*>(n); return 0; },
                     &keys, &cursor), KVS_OK);
  EXPECT_EQ(keys, 1);  // a
}

// The expiry commands read the expiry that earlier commands of the same
// batch wrote.
TEST_P(KeysAsUpdate, ExpiryInOneBatch) {
  const std::vector<std::vector<std::string>> cmds = {
      {"SET", "a", "v", "EX", "100"}, {"TTL", "a"},          {"EXPIRE", "a", "50", "GT"},
      {"EXPIRE", "a", "50", "LT"},    {"PTTL", "a"},         {"SET", "a", "w", "KEEPTTL"},
      {"EXPIRETIME", "a"},            {"PERSIST", "a"},      {"TTL", "a"},
      {"SETEX", "b", "10", "x"},      {"RENAME", "b", "c"},  {"TTL", "c"},
      {"GETEX", "c", "PERSIST"},      {"TTL", "c"},          {"PEXPIRE", "c", "-1"},
      {"EXISTS", "c"},                {"FLUSHALL"},          {"EXISTS", "a"},
      {"TIME"},
  };
  for (const auto& cmd : cmds) EXPECT_TRUE(Add(cmd)) << cmd[0];
  int64_t now = kvs_now_ms();
  std::vector<std::string> got = Run();
  ASSERT_EQ(got.size(), cmds.size());
  EXPECT_EQ(got[0], "simple:OK");
  EXPECT_EQ(got[1], "int:100");
  EXPECT_EQ(got[2], "int:0");
  EXPECT_EQ(got[3], "int:1");
  ASSERT_EQ(got[4].rfind("int:", 0), 0u);
  EXPECT_GT(std::stoll(got[4].substr(4)), 45000);
  EXPECT_EQ(got[5], "simple:OK");
  ASSERT_EQ(got[6].rfind("int:", 0), 0u);
  EXPECT_NEAR(std::stoll(got[6].substr(4)), (now + 50000) / 1000, 3);
  EXPECT_EQ(got[7], "int:1");
  EXPECT_EQ(got[8], "int:-1");
  EXPECT_EQ(got[9], "simple:OK");
  EXPECT_EQ(got[10], "simple:OK");
  EXPECT_EQ(got[11], "int:10");
  EXPECT_EQ(got[12], "bulk:x");
  EXPECT_EQ(got[13], "int:-1");
  EXPECT_EQ(got[14], "int:1");
  EXPECT_EQ(got[15], "int:0");
  EXPECT_EQ(got[16], "simple:OK");
  EXPECT_EQ(got[17], "int:0");
  EXPECT_EQ(got[18].rfind("array:2[bulk:", 0), 0u) << got[18];
}

INSTANTIATE_TEST_SUITE_P(Engines, KeysAsUpdate, ::testing::Values("kvs", "lmdb"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

}  // namespace

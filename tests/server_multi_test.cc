// server_multi_test.cc - transactions against a real kvs-server: MULTI,
// EXEC, DISCARD, WATCH, UNWATCH with Redis 7.0's replies; queued reads see
// queued writes; WATCH conflicts from another connection and by expiry;
// redis-py's pipeline() and transaction(); and EXEC's atomicity across a
// SIGKILL of the server.
#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "kvs.h"
#include "server_util.h"
#include "test_util.h"

namespace {

using kvstest::Conn;
using kvstest::RunResult;
using kvstest::Server;
using kvstest::TempDir;

class MultiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = tmp_.file("data");
    mkdir(data_.c_str(), 0755);
    ASSERT_TRUE(srv_.Start(data_)) << srv_.log();
  }
  void TearDown() override {
    if (srv_.alive()) {
      EXPECT_EQ(srv_.Stop(SIGTERM), 0) << srv_.log();
    }
    srv_.CheckLog();
  }
  bool HavePy() { return kvstest::Run({"/usr/bin/python3", "-c", "import redis"}).status == 0; }
  RunResult Py(const std::string& script) {
    std::string f = tmp_.file("t.py");
    kvstest::WriteFile(f, script);
    return kvstest::Run({"/usr/bin/python3", f, std::to_string(srv_.port())}, "", 120);
  }

  TempDir tmp_;
  std::string data_;
  Server srv_;
};

TEST_F(MultiTest, QueuedCommandsRunInOrderAndReadsSeeQueuedWrites) {
  Conn c(srv_.port());
  EXPECT_EQ(c.Cmd({"SET", "x", "1"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"MULTI"}), "simple:OK");
  for (auto cmd : std::vector<std::vector<std::string>>{
           {"SET", "a", "5"}, {"GET", "a"}, {"INCR", "a"}, {"MGET", "a", "x", "nope"},
           {"EXISTS", "a", "x", "q"}, {"STRLEN", "a"}, {"PING"}, {"DEL", "a"}, {"GET", "a"}})
    EXPECT_EQ(c.Cmd(cmd), "simple:QUEUED");
  EXPECT_EQ(c.Cmd({"EXEC"}),
            "array:9[simple:OK,bulk:5,int:6,array:3[bulk:6,bulk:1,nil],int:2,int:1,"
            "simple:PONG,int:1,nil]");
  EXPECT_EQ(c.Cmd({"GET", "a"}), "nil");
  EXPECT_EQ(c.Cmd({"EXEC"}), "error:ERR EXEC without MULTI");
}

// KEYS, DBSIZE, RANDOMKEY and SCAN read the whole store: inside EXEC they
// run once the transaction is applied, so they see its writes (a reviewer
// found them answering from before it: [] and 0).
TEST_F(MultiTest, WholeStoreReadsInExecSeeTheTransactionsWrites) {
  Conn c(srv_.port());
  EXPECT_EQ(c.Cmd({"MULTI"}), "simple:OK");
  for (auto cmd : std::vector<std::vector<std::string>>{
           {"SET", "a", "1"}, {"KEYS", "*"}, {"DBSIZE"}, {"RANDOMKEY"}, {"SCAN", "0"}})
    EXPECT_EQ(c.Cmd(cmd), "simple:QUEUED");
  EXPECT_EQ(c.Cmd({"EXEC"}),
            "array:5[simple:OK,array:1[bulk:a],int:1,bulk:a,array:2[bulk:0,array:1[bulk:a]]]");
}

TEST_F(MultiTest, RuntimeErrorsArePerCommand) {
  Conn c(srv_.port());
  EXPECT_EQ(c.Cmd({"SET", "s", "text"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"MULTI"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"SET", "a", "1"}), "simple:QUEUED");
  EXPECT_EQ(c.Cmd({"INCR", "s"}), "simple:QUEUED");       // not an integer
  EXPECT_EQ(c.Cmd({"SET", "a", "b", "XYZ"}), "simple:QUEUED");  // syntax: at EXEC, as Redis 7.0
  EXPECT_EQ(c.Cmd({"INCR", "a"}), "simple:QUEUED");
  EXPECT_EQ(c.Cmd({"EXEC"}),
            "array:4[simple:OK,error:ERR value is not an integer or out of range,"
            "error:ERR syntax error,int:2]");
  EXPECT_EQ(c.Cmd({"GET", "a"}), "bulk:2");
}

TEST_F(MultiTest, QueueingErrorsAbortExec) {
  Conn c(srv_.port());
  EXPECT_EQ(c.Cmd({"MULTI"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"SET", "foo1", "bar1"}), "simple:QUEUED");
  EXPECT_EQ(c.Cmd({"NON-EXISTING-COMMAND"}),
            "error:ERR unknown command 'NON-EXISTING-COMMAND', with args beginning with: ");
  EXPECT_EQ(c.Cmd({"GET"}), "error:ERR wrong number of arguments for 'get' command");
  EXPECT_EQ(c.Cmd({"SET", "foo2", "bar2"}), "simple:QUEUED");
  EXPECT_EQ(c.Cmd({"EXEC"}),
            "error:EXECABORT Transaction discarded because of previous errors.");
  EXPECT_EQ(c.Cmd({"EXISTS", "foo1", "foo2"}), "int:0");
  EXPECT_EQ(c.Cmd({"PING"}), "simple:PONG");  // no longer in MULTI
}

// EXEC with arguments, or before AUTH, is refused as Redis 7.0's
// rejectCommand() refuses it: -EXECABORT with the reason, and the
// transaction (with its watches) is discarded, in MULTI or not.  kvs
// answered the plain arity error and stayed in MULTI (found by fuzz_cmd).
TEST_F(MultiTest, RefusedExecDiscardsTheTransaction) {
  Conn c(srv_.port());
  const std::string abort_arity =
      "error:EXECABORT Transaction discarded because of: wrong number of arguments for "
      "'exec' command";
  EXPECT_EQ(c.Cmd({"EXEC", "x"}), abort_arity);
  EXPECT_EQ(c.Cmd({"MULTI"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"SET", "a", "1"}), "simple:QUEUED");
  EXPECT_EQ(c.Cmd({"EXEC", "x"}), abort_arity);
  EXPECT_EQ(c.Cmd({"EXEC"}), "error:ERR EXEC without MULTI");
  EXPECT_EQ(c.Cmd({"GET", "a"}), "nil");
  EXPECT_EQ(c.Cmd({"WATCH", "w"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"EXEC", "y"}), abort_arity);  // unwatches
  Conn d(srv_.port());
  EXPECT_EQ(d.Cmd({"SET", "w", "changed"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"MULTI"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"SET", "a", "2"}), "simple:QUEUED");
  EXPECT_EQ(c.Cmd({"EXEC"}), "array:1[simple:OK]");
  EXPECT_EQ(c.Cmd({"CONFIG", "SET", "requirepass", "pw"}), "simple:OK");
  Conn e(srv_.port());
  EXPECT_EQ(e.Cmd({"EXEC"}),
            "error:EXECABORT Transaction discarded because of: NOAUTH Authentication required.");
  EXPECT_EQ(c.Cmd({"CONFIG", "SET", "requirepass", ""}), "simple:OK");
}

TEST_F(MultiTest, NestingWatchInsideAndDiscard) {
  Conn c(srv_.port());
  EXPECT_EQ(c.Cmd({"DISCARD"}), "error:ERR DISCARD without MULTI");
  EXPECT_EQ(c.Cmd({"MULTI"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"MULTI"}), "error:ERR MULTI calls can not be nested");
  EXPECT_EQ(c.Cmd({"WATCH", "x"}), "error:ERR WATCH inside MULTI is not allowed");
  EXPECT_EQ(c.Cmd({"EXEC"}), "array:0[]");  // neither error aborts it, as Redis
  EXPECT_EQ(c.Cmd({"MULTI"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"SET", "d", "1"}), "simple:QUEUED");
  EXPECT_EQ(c.Cmd({"DISCARD"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"GET", "d"}), "nil");
  EXPECT_EQ(c.Cmd({"EXEC"}), "error:ERR EXEC without MULTI");
}

// A pipeline sent in one write: MULTI, queued commands, EXEC and a write
// after it.  The write after EXEC must not join the transaction's batch.
TEST_F(MultiTest, PipelinedTransactionAndWriteAfterIt) {
  Conn c(srv_.port());
  std::string p;
  for (auto cmd : std::vector<std::vector<std::string>>{
           {"SET", "w", "0"}, {"WATCH", "w"}, {"SET", "w", "1"}, {"MULTI"},
           {"SET", "t", "1"}, {"EXEC"}, {"SET", "after", "1"}, {"MULTI"},
           {"INCR", "n"}, {"PING"}, {"EXEC"}, {"GET", "n"}})
    p += Conn::Encode(cmd);
  ASSERT_TRUE(c.SendRaw(p));
  std::vector<std::string> want{"simple:OK", "simple:OK", "simple:OK", "simple:OK",
                                "simple:QUEUED", "nilarray", "simple:OK", "simple:OK",
                                "simple:QUEUED", "simple:QUEUED", "array:2[int:1,simple:PONG]",
                                "bulk:1"};
  for (const auto& w : want) EXPECT_EQ(c.Read(), w);
  EXPECT_EQ(c.Cmd({"GET", "t"}), "nil");  // the aborted transaction wrote nothing
  EXPECT_EQ(c.Cmd({"GET", "after"}), "bulk:1");
}

TEST_F(MultiTest, WatchConflictFromAnotherConnection) {
  Conn a(srv_.port()), b(srv_.port());
  EXPECT_EQ(a.Cmd({"SET", "x", "30"}), "simple:OK");
  EXPECT_EQ(a.Cmd({"WATCH", "a", "b", "x", "k"}), "simple:OK");
  EXPECT_EQ(b.Cmd({"SET", "x", "40"}), "simple:OK");
  EXPECT_EQ(a.Cmd({"MULTI"}), "simple:OK");
  EXPECT_EQ(a.Cmd({"SET", "y", "1"}), "simple:QUEUED");
  EXPECT_EQ(a.Cmd({"EXEC"}), "nilarray");
  EXPECT_EQ(a.Cmd({"GET", "y"}), "nil");
  // After a failed EXEC nothing is watched any more.
  EXPECT_EQ(b.Cmd({"SET", "x", "50"}), "simple:OK");
  EXPECT_EQ(a.Cmd({"MULTI"}), "simple:OK");
  EXPECT_EQ(a.Cmd({"PING"}), "simple:QUEUED");
  EXPECT_EQ(a.Cmd({"EXEC"}), "array:1[simple:PONG]");
  // A deleted key, and a key created after WATCH, are changes too.
  EXPECT_EQ(a.Cmd({"WATCH", "x", "fresh"}), "simple:OK");
  EXPECT_EQ(b.Cmd({"SET", "fresh", "1"}), "simple:OK");
  EXPECT_EQ(a.Cmd({"MULTI"}), "simple:OK");
  EXPECT_EQ(a.Cmd({"PING"}), "simple:QUEUED");
  EXPECT_EQ(a.Cmd({"EXEC"}), "nilarray");
  EXPECT_EQ(a.Cmd({"WATCH", "x"}), "simple:OK");
  EXPECT_EQ(b.Cmd({"DEL", "x"}), "int:1");
  EXPECT_EQ(a.Cmd({"MULTI"}), "simple:OK");
  EXPECT_EQ(a.Cmd({"PING"}), "simple:QUEUED");
  EXPECT_EQ(a.Cmd({"EXEC"}), "nilarray");
  // UNWATCH forgets, and so does DISCARD.
  EXPECT_EQ(a.Cmd({"WATCH", "x"}), "simple:OK");
  EXPECT_EQ(b.Cmd({"SET", "x", "1"}), "simple:OK");
  EXPECT_EQ(a.Cmd({"UNWATCH"}), "simple:OK");
  EXPECT_EQ(a.Cmd({"MULTI"}), "simple:OK");
  EXPECT_EQ(a.Cmd({"INCR", "x"}), "simple:QUEUED");
  EXPECT_EQ(a.Cmd({"EXEC"}), "array:1[int:2]");
  EXPECT_EQ(a.Cmd({"WATCH", "x"}), "simple:OK");
  EXPECT_EQ(b.Cmd({"SET", "x", "10"}), "simple:OK");
  EXPECT_EQ(a.Cmd({"MULTI"}), "simple:OK");
  EXPECT_EQ(a.Cmd({"DISCARD"}), "simple:OK");
  EXPECT_EQ(a.Cmd({"MULTI"}), "simple:OK");
  EXPECT_EQ(a.Cmd({"INCR", "x"}), "simple:QUEUED");
  EXPECT_EQ(a.Cmd({"EXEC"}), "array:1[int:11]");
  // Untouched watched keys let EXEC through.
  EXPECT_EQ(a.Cmd({"WATCH", "x", "nokey"}), "simple:OK");
  EXPECT_EQ(b.Cmd({"SET", "other", "1"}), "simple:OK");
  EXPECT_EQ(a.Cmd({"MULTI"}), "simple:OK");
  EXPECT_EQ(a.Cmd({"GET", "x"}), "simple:QUEUED");
  EXPECT_EQ(a.Cmd({"EXEC"}), "array:1[bulk:11]");
}

// Optimistic increments from several connections at once: every EXEC that
// succeeded counted once, none was lost (the WATCH check in the batch
// catches a write between EXEC's look and the writer).
TEST_F(MultiTest, ConcurrentWatchedIncrementsLoseNothing) {
  constexpr int kThreads = 4, kEach = 150;
  std::atomic<int> committed{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; t++) {
    ts.emplace_back([&] {
      Conn c(srv_.port());
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      for (int i = 0; i < kEach && std::chrono::steady_clock::now() < deadline; i++) {
        c.Cmd({"WATCH", "ctr"});
        std::string v = c.Cmd({"GET", "ctr"});
        long n = v == "nil" ? 0 : std::stol(v.substr(5));
        c.Cmd({"MULTI"});
        c.Cmd({"SET", "ctr", std::to_string(n + 1)});
        if (c.Cmd({"EXEC"}) == "array:1[simple:OK]") committed++;
      }
    });
  }
  for (auto& t : ts) t.join();
  Conn c(srv_.port());
  EXPECT_GT(committed.load(), 0);
  EXPECT_EQ(c.Cmd({"GET", "ctr"}), "bulk:" + std::to_string(committed.load()));
}

// Redis 7.0: a watched key that expires before EXEC aborts it; one that had
// already expired when watched does not.  Needs SET ... PX (skipped on a
// server without expiry).
TEST_F(MultiTest, WatchAndExpiry) {
  Conn c(srv_.port());
  if (c.Cmd({"SET", "e", "1", "PX", "200"}) != "simple:OK") GTEST_SKIP() << "no expiry yet";
  EXPECT_EQ(c.Cmd({"WATCH", "e"}), "simple:OK");
  usleep(400 * 1000);
  EXPECT_EQ(c.Cmd({"MULTI"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"PING"}), "simple:QUEUED");
  EXPECT_EQ(c.Cmd({"EXEC"}), "nilarray");

  EXPECT_EQ(c.Cmd({"SET", "stale", "1", "PX", "1"}), "simple:OK");
  usleep(20 * 1000);
  EXPECT_EQ(c.Cmd({"WATCH", "stale"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"EXISTS", "stale"}), "int:0");
  EXPECT_EQ(c.Cmd({"MULTI"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"PING"}), "simple:QUEUED");
  EXPECT_EQ(c.Cmd({"EXEC"}), "array:1[simple:PONG]");
}

TEST_F(MultiTest, RedisPyPipelineAndTransaction) {
  if (!HavePy()) GTEST_SKIP() << "python3-redis is not installed";
  RunResult r = Py(R"PY(
import sys, threading, redis
port = int(sys.argv[1])
r = redis.Redis(host="127.0.0.1", port=port)
p = r.pipeline()            # MULTI/EXEC by default
p.set("a", 1).incr("a").get("a").ping()
assert p.execute() == [True, 2, b"2", True]
p = r.pipeline()
p.set("s", "x").incr("s").set("t", 1)
try:
    p.execute()
    assert False, "no error"
except redis.ResponseError as e:
    assert "not an integer" in str(e), e
assert r.get("t") == b"1"   # runtime errors do not undo the rest

other = redis.Redis(host="127.0.0.1", port=port)
tries = []
def incr_twice(pipe):
    v = int(pipe.get("ctr") or 0)
    if not tries:
        other.set("ctr", 100)   # a conflicting write: the first try fails
    tries.append(v)
    pipe.multi()
    pipe.set("ctr", v + 2)
res = r.transaction(incr_twice, "ctr")
assert res == [True], res
assert tries == [0, 100], tries
assert r.get("ctr") == b"102"
print("ok")
)PY");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "ok\n") << r.err;
}

// EXEC is one KVS_BATCH_ATOMIC batch: after a SIGKILL of the server in the
// middle of a stream of transactions, each one's keys are all there or none.
TEST_F(MultiTest, ExecIsAtomicAcrossSigkill) {
  constexpr int kKeys = 8;
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    Conn c(srv_.port());
    std::string batch;
    for (int t = 0; t < 100000 && !stop; t++) {
      std::string p = Conn::Encode({"MULTI"});
      for (int k = 0; k < kKeys; k++)
        p += Conn::Encode({"SET", "t" + std::to_string(t) + "-" + std::to_string(k),
                           std::string(200, 'v')});
      p += Conn::Encode({"EXEC"});
      if (!c.SendRaw(p)) break;
      if (t % 4 == 3) {  // keep several transactions in flight
        for (int i = 0; i < 4 * (kKeys + 2); i++)
          if (c.Read(5000)[0] == '<') return;
      }
    }
  });
  usleep(700 * 1000);
  srv_.Stop(SIGKILL);
  stop = true;
  writer.join();

  struct kvs* db = nullptr;
  ASSERT_EQ(kvs_open(data_.c_str(), nullptr, &db), KVS_OK);
  int complete = 0;
  for (int t = 0; t < 100000; t++) {
    int found = 0;
    for (int k = 0; k < kKeys; k++) {
      std::string key = "t" + std::to_string(t) + "-" + std::to_string(k);
      void* v = nullptr;
      size_t vl = 0;
      if (kvs_get(db, key.data(), key.size(), &v, &vl) == KVS_OK) {
        found++;
        kvs_free(v);
      }
    }
    EXPECT_TRUE(found == 0 || found == kKeys) << "transaction " << t << ": " << found << " keys";
    if (found == 0 && t > complete + 64) break;  // past the last one
    if (found == kKeys) complete = t;
  }
  EXPECT_GT(complete, 0);
  kvs_close(db);
}

// A big transaction and many small ones: replies stay in order and the
// queue's memory is given back (ASan would see a leak).
TEST_F(MultiTest, LargeTransaction) {
  Conn c(srv_.port());
  std::string p = Conn::Encode({"MULTI"});
  for (int i = 0; i < 3000; i++) p += Conn::Encode({"INCR", "big"});
  p += Conn::Encode({"EXEC"});
  ASSERT_TRUE(c.SendRaw(p));
  EXPECT_EQ(c.Read(), "simple:OK");
  for (int i = 0; i < 3000; i++) ASSERT_EQ(c.Read(), "simple:QUEUED");
  std::string r = c.Read();
  EXPECT_EQ(r.substr(0, 18), "array:3000[int:1,i");
  EXPECT_NE(r.find("int:3000]"), std::string::npos);
  // A connection that goes away inside MULTI frees its queue.
  {
    Conn d(srv_.port());
    EXPECT_EQ(d.Cmd({"MULTI"}), "simple:OK");
    EXPECT_EQ(d.Cmd({"SET", "q", "1"}), "simple:QUEUED");
    EXPECT_EQ(d.Cmd({"WATCH", "q"}), "error:ERR WATCH inside MULTI is not allowed");
  }
  EXPECT_EQ(c.Cmd({"GET", "q"}), "nil");
}

}  // namespace

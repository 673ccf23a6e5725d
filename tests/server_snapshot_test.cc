// server_snapshot_test.cc - kvs-server's BGSAVE, SAVE and LASTSAVE: Redis's
// replies, INFO persistence, a snapshot taken under write load holding
// exactly a prefix of the acknowledged writes (both engines), the snapshot
// opened by kvs, kvs-server and kvs-dump --verify, --snapshot-dir, and a
// clean SIGTERM while a BGSAVE runs.
#include <gtest/gtest.h>
#include <dirent.h>
#include <sys/stat.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "kvs.h"
#include "server_util.h"
#include "test_util.h"

using kvstest::Bin;
using kvstest::Conn;
using kvstest::Server;
using kvstest::TempDir;

namespace {

// The value of field `name` in an INFO reply ("" if absent).
std::string InfoField(Conn& c, const std::string& name) {
  std::string info = c.Cmd({"INFO", "persistence"});
  size_t at = info.find("\r\n" + name + ":");
  if (at == std::string::npos) return "<absent>";
  at += name.size() + 3;
  return info.substr(at, info.find("\r\n", at) - at);
}

// The entries of dir, "." and ".." left out.
std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> v;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d))
      if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") v.push_back(e->d_name);
    closedir(d);
  }
  return v;
}

bool WaitSaved(Conn& c) {
  return kvstest::Eventually([&] { return InfoField(c, "rdb_bgsave_in_progress") == "0"; }, 30000);
}

constexpr int kSlots = 53;
std::string Val(uint64_t i) { return std::to_string(i) + "-value"; }

// One client writing SET k<i % kSlots> Val(i), i = 1, 2, ..., each after
// the previous reply.
struct Writer {
  std::atomic<uint64_t> submitted{0}, acked{0};
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::thread t;
  explicit Writer(int port) {
    t = std::thread([this, port] {
      Conn c(port);
      for (uint64_t i = 1; !stop.load() && i < 10000000; i++) {
        submitted.store(i);
        if (c.Cmd({"SET", "k" + std::to_string(i % kSlots), Val(i)}) != "simple:OK") {
          errors++;
          return;
        }
        acked.store(i);
      }
    });
  }
  void Join() {
    stop = true;
    t.join();
  }
};

// The snapshot holds exactly writes 1..m for some before <= m <= after.
void CheckPrefix(const std::string& snap, uint64_t before, uint64_t after) {
  kvs* db = nullptr;
  ASSERT_EQ(KVS_OK, kvs_open(snap.c_str(), nullptr, &db)) << kvs_errmsg();
  std::vector<int64_t> got(kSlots, -1);
  uint64_t m = 0;
  for (int j = 0; j < kSlots; j++) {
    std::string k = "k" + std::to_string(j);
    void* v = nullptr;
    size_t n = 0;
    int rc = kvs_get(db, k.data(), k.size(), &v, &n);
    if (rc == KVS_NOT_FOUND) continue;
    ASSERT_EQ(KVS_OK, rc);
    std::string s(static_cast<char*>(v), n);
    kvs_free(v);
    uint64_t i = std::stoull(s);
    ASSERT_EQ(Val(i), s);
    ASSERT_EQ(static_cast<uint64_t>(j), i % kSlots);
    got[j] = static_cast<int64_t>(i);
    m = std::max(m, i);
  }
  EXPECT_GE(m, before) << "a write acknowledged before the command is missing";
  EXPECT_LE(m, after) << "a write sent after the snapshot completed is in it";
  for (int j = 0; j < kSlots; j++) {
    int64_t want = -1;
    if (m >= static_cast<uint64_t>(j)) {
      uint64_t i = m - ((m - j) % kSlots);
      if (i >= 1) want = static_cast<int64_t>(i);
    }
    EXPECT_EQ(want, got[j]) << "k" << j << ": not the state after write " << m;
  }
  EXPECT_EQ(KVS_OK, kvs_close(db));
}

void UnderLoad(const std::string& engine) {
  TempDir t;
  std::string dir = t.file("db");
  mkdir(dir.c_str(), 0755);
  Server srv;
  ASSERT_TRUE(srv.Start(dir, {"--engine", engine, "--segment-size", "8k"})) << srv.log();
  Writer w(srv.port());
  Conn c(srv.port());
  ASSERT_TRUE(kvstest::Eventually([&] { return w.acked.load() > 200; }, 10000));
  // SAVE: the snapshot point lies between the command and its reply.
  uint64_t before = w.acked.load();
  ASSERT_EQ("simple:OK", c.Cmd({"SAVE"}, 30000));
  uint64_t after = w.submitted.load();
  std::string saved = InfoField(c, "kvs_last_snapshot_path");
  // BGSAVE: every write acknowledged before it is in; the point is before
  // the snapshot is reported complete.
  usleep(50000);
  uint64_t before2 = w.acked.load();
  ASSERT_EQ("simple:Background saving started", c.Cmd({"BGSAVE"}));
  ASSERT_TRUE(WaitSaved(c));
  uint64_t after2 = w.submitted.load();
  std::string saved2 = InfoField(c, "kvs_last_snapshot_path");
  w.Join();
  EXPECT_EQ(0, w.errors.load());
  EXPECT_EQ("ok", InfoField(c, "rdb_last_bgsave_status"));
  EXPECT_EQ(0, srv.Stop());
  ASSERT_NE(saved, saved2);
  CheckPrefix(saved, before, after);
  CheckPrefix(saved2, before2, after2);
}

}  // namespace

TEST(ServerSnapshot, SaveAndBgsaveUnderWriteLoadLog) { UnderLoad("kvs"); }
TEST(ServerSnapshot, SaveAndBgsaveUnderWriteLoadLmdb) { UnderLoad("lmdb"); }

TEST(ServerSnapshot, RepliesLastsaveAndInfo) {
  TempDir t;
  std::string dir = t.file("db");
  mkdir(dir.c_str(), 0755);
  Server srv;
  ASSERT_TRUE(srv.Start(dir, {"--segment-size", "64k"})) << srv.log();
  Conn c(srv.port());
  std::string last0 = c.Cmd({"LASTSAVE"});
  ASSERT_EQ(0u, last0.find("int:"));
  long long t0 = std::stoll(last0.substr(4));
  EXPECT_LE(std::llabs(t0 - static_cast<long long>(time(nullptr))), 5) << "LASTSAVE at start: the start time";
  EXPECT_EQ("0", InfoField(c, "rdb_bgsave_in_progress"));
  EXPECT_EQ("ok", InfoField(c, "rdb_last_bgsave_status"));
  EXPECT_EQ("-1", InfoField(c, "rdb_last_bgsave_time_sec"));
  EXPECT_EQ("", InfoField(c, "kvs_last_snapshot_path"));
  // About 6 MB, so that a snapshot takes a while (copy and fsync).
  std::string big(2000, 'v');
  for (int i = 0; i < 3000; i++)
    ASSERT_EQ("simple:OK", c.Cmd({"SET", "key" + std::to_string(i), big}));
  EXPECT_EQ("3000", InfoField(c, "rdb_changes_since_last_save"));

  EXPECT_EQ("error:ERR syntax error", c.Cmd({"BGSAVE", "now"}));
  // A second BGSAVE, or a SAVE, while one runs: Redis's error.  Pipelined,
  // so they arrive while the first is still copying.
  ASSERT_TRUE(c.SendRaw(Conn::Encode({"BGSAVE"}) + Conn::Encode({"BGSAVE"}) +
                        Conn::Encode({"SAVE"}) + Conn::Encode({"INFO", "persistence"})));
  EXPECT_EQ("simple:Background saving started", c.Read());
  EXPECT_EQ("error:ERR Background save already in progress", c.Read());
  EXPECT_EQ("error:ERR Background save already in progress", c.Read());
  std::string info = c.Read();
  EXPECT_NE(std::string::npos, info.find("rdb_bgsave_in_progress:1")) << info;
  ASSERT_TRUE(WaitSaved(c));
  EXPECT_EQ("ok", InfoField(c, "rdb_last_bgsave_status"));
  EXPECT_EQ("0", InfoField(c, "rdb_changes_since_last_save"));
  EXPECT_EQ("1", InfoField(c, "rdb_saves"));
  EXPECT_NE("-1", InfoField(c, "rdb_last_bgsave_time_sec"));
  std::string snap = InfoField(c, "kvs_last_snapshot_path");
  ASSERT_EQ(0u, snap.find(dir + "/snapshots/")) << snap;
  std::string name = snap.substr(snap.rfind('/') + 1);
  long long ms = std::stoll(name);
  EXPECT_LE(std::llabs(ms / 1000 - static_cast<long long>(time(nullptr))), 60) << name;
  long long t1 = std::stoll(c.Cmd({"LASTSAVE"}).substr(4));
  EXPECT_GE(t1, t0);
  EXPECT_EQ(std::to_string(t1), InfoField(c, "rdb_last_save_time"));

  // SCHEDULE is accepted; a SAVE a second later moves LASTSAVE on.
  ASSERT_EQ("simple:Background saving started", c.Cmd({"BGSAVE", "SCHEDULE"}));
  ASSERT_TRUE(WaitSaved(c));
  ASSERT_EQ("simple:OK", c.Cmd({"SET", "later", "1"}));
  EXPECT_EQ("1", InfoField(c, "rdb_changes_since_last_save"));
  sleep(1);
  ASSERT_EQ("simple:OK", c.Cmd({"SAVE"}, 30000));
  long long t2 = std::stoll(c.Cmd({"LASTSAVE"}).substr(4));
  EXPECT_GT(t2, t1);
  EXPECT_EQ("3", InfoField(c, "rdb_saves"));
  std::string snap3 = InfoField(c, "kvs_last_snapshot_path");
  EXPECT_NE(snap, snap3);
  EXPECT_EQ(3u, Entries(dir + "/snapshots").size());
  EXPECT_EQ(0, srv.Stop());

  // The store itself reopens with its snapshots inside it.
  Server again;
  ASSERT_TRUE(again.Start(dir)) << again.log();
  Conn c2(again.port());
  EXPECT_EQ("int:3001", c2.Cmd({"DBSIZE"}));
  EXPECT_EQ(0, again.Stop());

  // Each tool opens the snapshot: kvs get, kvs-dump --verify, kvs-server.
  auto r = kvstest::Run({Bin("kvs"), "--dir", snap, "get", "key2999"});
  EXPECT_EQ(0, r.status) << r.err;
  EXPECT_EQ(big + "\n", r.out);
  r = kvstest::Run({Bin("kvs"), "--dir", snap, "get", "later"});
  EXPECT_EQ(0, r.status) << r.err;
  EXPECT_EQ("Key not found\n", r.out);
  r = kvstest::Run({Bin("kvs-dump"), "--verify", snap});
  EXPECT_EQ(0, r.status) << r.out << r.err;
  r = kvstest::Run({Bin("kvs-dump"), "--verify", snap3});
  EXPECT_EQ(0, r.status) << r.out << r.err;
  Server from_snap;
  ASSERT_TRUE(from_snap.Start(snap3)) << from_snap.log();
  Conn c3(from_snap.port());
  EXPECT_EQ("int:3001", c3.Cmd({"DBSIZE"}));
  EXPECT_EQ("bulk:1", c3.Cmd({"GET", "later"}));
  EXPECT_EQ("bulk:" + big, c3.Cmd({"GET", "key0"}));
  EXPECT_EQ(0, from_snap.Stop());
}

TEST(ServerSnapshot, SnapshotDirOptionAndFailure) {
  TempDir t;
  std::string dir = t.file("db"), snaps = t.file("backups/kvs");
  mkdir(dir.c_str(), 0755);
  Server srv;
  ASSERT_TRUE(srv.Start(dir, {"--snapshot-dir", snaps})) << srv.log();
  Conn c(srv.port());
  ASSERT_EQ("simple:OK", c.Cmd({"SET", "a", "1"}));
  ASSERT_EQ("simple:OK", c.Cmd({"SAVE"}, 30000));
  EXPECT_EQ(0u, InfoField(c, "kvs_last_snapshot_path").find(snaps + "/"));
  EXPECT_EQ(1u, Entries(snaps).size());
  struct stat sb;
  EXPECT_NE(0, stat((dir + "/snapshots").c_str(), &sb));
  // A snapshot directory that cannot be made: an error, status err.
  TempDir::RemoveTree(t.file("backups"));
  kvstest::WriteFile(t.file("backups"), "a file in the way");
  std::string r = c.Cmd({"SAVE"}, 30000);
  EXPECT_EQ(0u, r.find("error:ERR snapshot failed: ")) << r;
  EXPECT_EQ("err", InfoField(c, "rdb_last_bgsave_status"));
  ASSERT_EQ("simple:Background saving started", c.Cmd({"BGSAVE"}));
  ASSERT_TRUE(WaitSaved(c));
  EXPECT_EQ("err", InfoField(c, "rdb_last_bgsave_status"));
  EXPECT_EQ("simple:OK", c.Cmd({"SET", "b", "2"})) << "writes go on after a failed snapshot";
  EXPECT_EQ(0, srv.Stop());
  EXPECT_NE(std::string::npos, srv.log().find("snapshot failed")) << srv.log();
}

// SIGTERM while a BGSAVE runs: the server waits for it, exits 0, and the
// snapshot is complete (no temporary directory left).
TEST(ServerSnapshot, SigtermDuringBgsave) {
  for (const char* engine : {"kvs", "lmdb"}) {
    SCOPED_TRACE(engine);
    TempDir t;
    std::string dir = t.file("db");
    mkdir(dir.c_str(), 0755);
    Server srv;
    ASSERT_TRUE(srv.Start(dir, {"--engine", engine})) << srv.log();
    Conn c(srv.port());
    std::string big(4000, 'x');
    for (int i = 0; i < 1500; i++)
      ASSERT_EQ("simple:OK", c.Cmd({"SET", "key" + std::to_string(i), big}));
    ASSERT_EQ("simple:Background saving started", c.Cmd({"BGSAVE"}));
    EXPECT_EQ(0, srv.Stop());
    auto names = Entries(dir + "/snapshots");
    ASSERT_EQ(1u, names.size());
    EXPECT_NE(0u, names[0].find(".tmp-")) << "SIGTERM left a half snapshot";
    kvs* db = nullptr;
    ASSERT_EQ(KVS_OK, kvs_open((dir + "/snapshots/" + names[0]).c_str(), nullptr, &db)) << kvs_errmsg();
    kvs_store_stats st{};
    ASSERT_EQ(KVS_OK, kvs_stats(db, &st));
    EXPECT_EQ(1500u, st.live_keys);
    EXPECT_EQ(KVS_OK, kvs_close(db));
  }
}

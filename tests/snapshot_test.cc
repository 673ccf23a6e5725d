// snapshot_test.cc - kvs_snapshot(): the contract under write load (every
// write acknowledged before the call is in, the snapshot is exactly a prefix
// of the sequence of writes, nothing submitted after the return), with
// compaction running; sealed segments hard-linked; the copy fallback; and
// failures that leave no directory that looks complete.  Both engines.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "kvs.h"
#include "kvs_testhook.h"
#include "test_util.h"

using kvstest::TempDir;

namespace {

constexpr int kSlots = 97;  // keys the sequence rotates through

std::string Key(uint64_t i) { return "k" + std::to_string(i % kSlots); }
// The value of write i: its number, padded so records have some size.
std::string Val(uint64_t i) { return std::to_string(i) + std::string(24, '.'); }

kvs* Open(const std::string& dir, kvs_engine eng, uint64_t seg = 0) {
  kvs_options o{};
  o.engine = eng;
  o.segment_size = seg;
  o.compact_min_dead = 4096;
  kvs* db = nullptr;
  EXPECT_EQ(KVS_OK, kvs_open(dir.c_str(), &o, &db)) << kvs_errmsg();
  return db;
}

// One writer thread: write i goes to Key(i) with Val(i), i = 1, 2, ...
// submitted: the last i handed to kvs_set; acked: the last i it returned OK.
struct Sequencer {
  kvs* db;
  std::atomic<uint64_t> submitted{0}, acked{0};
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::thread t;
  explicit Sequencer(kvs* d) : db(d) {
    t = std::thread([this] {
      for (uint64_t i = 1; !stop.load() && i < 50000000; i++) {
        std::string k = Key(i), v = Val(i);
        submitted.store(i);
        if (kvs_set(db, k.data(), k.size(), v.data(), v.size()) != KVS_OK) errors++;
        acked.store(i);
      }
    });
  }
  void Join() {
    stop = true;
    t.join();
  }
};

// Other clients' load: their own keys, a per-key counter each.
struct Noise {
  std::atomic<bool> stop{false};
  std::vector<std::thread> ts;
  Noise(kvs* db, int n) {
    for (int w = 0; w < n; w++)
      ts.emplace_back([this, db, w] {
        for (uint64_t i = 0; !stop.load() && i < 50000000; i++) {
          std::string k = "n" + std::to_string(w) + "-" + std::to_string(i % 50);
          std::string v = std::to_string(i);
          kvs_set(db, k.data(), k.size(), v.data(), v.size());
        }
      });
  }
  void Join() {
    stop = true;
    for (auto& t : ts) t.join();
  }
};

// Open the snapshot and check it holds exactly the first M writes of the
// sequence for some before <= M <= after.
void CheckPrefix(const std::string& snap, kvs_engine eng, uint64_t before, uint64_t after) {
  kvs* db = Open(snap, eng);
  ASSERT_NE(nullptr, db);
  std::vector<int64_t> got(kSlots, -1);
  uint64_t m = 0;
  for (int j = 0; j < kSlots; j++) {
    std::string k = "k" + std::to_string(j);
    void* v = nullptr;
    size_t n = 0;
    int rc = kvs_get(db, k.data(), k.size(), &v, &n);
    if (rc == KVS_NOT_FOUND) continue;
    ASSERT_EQ(KVS_OK, rc) << kvs_errmsg();
    std::string s(static_cast<char*>(v), n);
    kvs_free(v);
    uint64_t i = std::stoull(s);
    ASSERT_EQ(Val(i), s) << "not a value that was written: " << k;
    ASSERT_EQ(static_cast<uint64_t>(j), i % kSlots) << "value of another key in " << k;
    got[j] = static_cast<int64_t>(i);
    m = std::max(m, i);
  }
  EXPECT_GE(m, before) << "a write acknowledged before the call is missing";
  EXPECT_LE(m, after) << "a write submitted after the call returned is in";
  // Exactly the state after write m: each key holds its last write <= m.
  for (int j = 0; j < kSlots; j++) {
    int64_t want = -1;  // absent: no write i <= m, i >= 1, went to it
    if (m >= static_cast<uint64_t>(j)) {
      uint64_t i = m - ((m - j) % kSlots);
      if (i >= 1) want = static_cast<int64_t>(i);
    }
    EXPECT_EQ(want, got[j]) << "key k" << j << ": not the state after write " << m;
  }
  EXPECT_EQ(KVS_OK, kvs_close(db));
}

void Contract(kvs_engine eng, uint64_t seg) {
  TempDir t;
  std::string dir = t.file("db");
  kvs* db = Open(dir, eng, seg);
  ASSERT_NE(nullptr, db);
  Sequencer sq(db);
  Noise noise(db, 2);
  struct Taken {
    std::string path;
    uint64_t before, after;
  };
  std::vector<Taken> snaps;
  for (int s = 0; s < 4; s++) {
    usleep(60000);
    Taken k;
    k.path = t.file("snap" + std::to_string(s));
    k.before = sq.acked.load();
    ASSERT_EQ(KVS_OK, kvs_snapshot(db, k.path.c_str())) << kvs_errmsg();
    k.after = sq.submitted.load();
    snaps.push_back(k);
  }
  noise.Join();
  sq.Join();
  EXPECT_EQ(0, sq.errors.load());
  kvs_store_stats st{};
  ASSERT_EQ(KVS_OK, kvs_stats(db, &st));
  EXPECT_EQ(KVS_OK, kvs_close(db));
  if (eng == KVS_ENGINE_KVS && seg) {
    EXPECT_GT(st.compactions, 0u) << "compaction never ran during the test";
  }
  for (const auto& k : snaps) {
    SCOPED_TRACE(k.path);
    EXPECT_GT(k.after, k.before);
    CheckPrefix(k.path, eng, k.before, k.after);
    struct stat sb;
    EXPECT_NE(0, stat((t.path() + "/.tmp-" + k.path.substr(k.path.rfind('/') + 1)).c_str(), &sb));
  }
  // The tool's check passes on a snapshot of the log engine.
  if (eng == KVS_ENGINE_KVS) {
    auto r = kvstest::Run({kvstest::Bin("kvs-dump"), "--verify", snaps.back().path});
    EXPECT_EQ(0, r.status) << r.out << r.err;
  }
}

}  // namespace

TEST(Snapshot, ContractUnderWriteLoadLog) { Contract(KVS_ENGINE_KVS, 0); }

// 4 KiB segments and automatic compaction: segments are sealed, compacted
// and deleted all through the snapshots.
TEST(Snapshot, ContractWhileCompactingSmallSegments) { Contract(KVS_ENGINE_KVS, 4096); }

TEST(Snapshot, ContractUnderWriteLoadLmdb) { Contract(KVS_ENGINE_LMDB, 0); }

TEST(Snapshot, SealedSegmentsAreHardLinksActiveIsACopy) {
  TempDir t;
  kvs_options o{};
  o.segment_size = 4096;
  o.no_auto_compact = 1;
  kvs* db = nullptr;
  ASSERT_EQ(KVS_OK, kvs_open(t.file("db").c_str(), &o, &db));
  for (int i = 0; i < 400; i++) {
    std::string k = "key" + std::to_string(i), v(40, 'a' + i % 26);
    ASSERT_EQ(KVS_OK, kvs_set(db, k.data(), k.size(), v.data(), v.size()));
  }
  std::string snap = t.file("snap");
  ASSERT_EQ(KVS_OK, kvs_snapshot(db, snap.c_str())) << kvs_errmsg();
  std::vector<std::string> segs;
  for (const auto& p : kvstest::Segments(snap)) segs.push_back(p.substr(p.rfind('/') + 1));
  ASSERT_GE(segs.size(), 3u);
  for (size_t i = 0; i < segs.size(); i++) {
    struct stat a, b;
    ASSERT_EQ(0, stat((snap + "/" + segs[i]).c_str(), &a));
    ASSERT_EQ(0, stat((t.file("db") + "/" + segs[i]).c_str(), &b)) << segs[i];
    if (i + 1 < segs.size()) {
      EXPECT_EQ(a.st_ino, b.st_ino) << segs[i] << " is not a hard link";
      EXPECT_GE(a.st_nlink, 2u);
    } else {
      EXPECT_NE(a.st_ino, b.st_ino) << "the active segment must be a copy";
    }
  }
  struct stat sb;
  EXPECT_NE(0, stat((snap + "/LOCK").c_str(), &sb)) << "the LOCK file was copied";
  EXPECT_EQ("kvs\n", kvstest::ReadFile(snap + "/ENGINE"));
  // Writes after the snapshot go on, and do not reach it.
  ASSERT_EQ(KVS_OK, kvs_set(db, "after", 5, "x", 1));
  ASSERT_EQ(KVS_OK, kvs_close(db));
  kvs* s = nullptr;
  ASSERT_EQ(KVS_OK, kvs_open(snap.c_str(), nullptr, &s));
  kvs_store_stats st{};
  ASSERT_EQ(KVS_OK, kvs_stats(s, &st));
  EXPECT_EQ(400u, st.live_keys);
  void* v = nullptr;
  size_t n = 0;
  EXPECT_EQ(KVS_NOT_FOUND, kvs_get(s, "after", 5, &v, &n));
  ASSERT_EQ(KVS_OK, kvs_get(s, "key399", 6, &v, &n));
  EXPECT_EQ(std::string(40, 'a' + 399 % 26), std::string(static_cast<char*>(v), n));
  kvs_free(v);
  EXPECT_EQ(KVS_OK, kvs_close(s));
}

// Another file system (EXDEV): the files are copied instead.
TEST(Snapshot, CopiesWhatCannotBeLinked) {
  TempDir t;
  kvs_options o{};
  o.segment_size = 4096;
  kvs* db = nullptr;
  ASSERT_EQ(KVS_OK, kvs_open(t.file("db").c_str(), &o, &db));
  for (int i = 0; i < 300; i++) {
    std::string k = "key" + std::to_string(i);
    ASSERT_EQ(KVS_OK, kvs_set(db, k.data(), k.size(), k.data(), k.size()));
  }
  kvs__hook_snapshot_link(-1, EXDEV);
  std::string snap = t.file("snap");
  int rc = kvs_snapshot(db, snap.c_str());
  kvs__hook_snapshot_link(0, 0);
  ASSERT_EQ(KVS_OK, rc) << kvs_errmsg();
  for (const auto& p : kvstest::Segments(snap)) {
    std::string s = p.substr(p.rfind('/') + 1);
    struct stat a, b;
    ASSERT_EQ(0, stat((snap + "/" + s).c_str(), &a));
    ASSERT_EQ(0, stat((t.file("db") + "/" + s).c_str(), &b));
    EXPECT_NE(a.st_ino, b.st_ino) << s;
  }
  ASSERT_EQ(KVS_OK, kvs_close(db));
  kvs* s = nullptr;
  ASSERT_EQ(KVS_OK, kvs_open(snap.c_str(), nullptr, &s));
  kvs_store_stats st{};
  ASSERT_EQ(KVS_OK, kvs_stats(s, &st));
  EXPECT_EQ(300u, st.live_keys);
  EXPECT_EQ(KVS_OK, kvs_close(s));
}

// A failure in the middle (disk full while copying), a missing parent, an
// existing path: an error, and no directory under the final name nor a
// temporary one left behind.
static void Failures(kvs_engine eng) {
  TempDir t;
  kvs* db = Open(t.file("db"), eng, eng == KVS_ENGINE_KVS ? 4096 : 0);
  ASSERT_NE(nullptr, db);
  for (int i = 0; i < 300; i++) {
    std::string k = "key" + std::to_string(i);
    ASSERT_EQ(KVS_OK, kvs_set(db, k.data(), k.size(), k.data(), k.size()));
  }
  std::string snap = t.file("snap");
  struct stat sb;
  kvs__hook_snapshot_write(1, ENOSPC);
  int rc = kvs_snapshot(db, snap.c_str());
  kvs__hook_snapshot_write(0, 0);
  EXPECT_EQ(KVS_ENOSPC, rc) << kvs_errmsg();
  EXPECT_NE(0, stat(snap.c_str(), &sb)) << "a failed snapshot left its directory";
  EXPECT_NE(0, stat(t.file(".tmp-snap").c_str(), &sb)) << "the temporary directory stayed";

  EXPECT_EQ(KVS_EIO, kvs_snapshot(db, t.file("missing/snap").c_str()));
  EXPECT_NE(0, stat(t.file("missing").c_str(), &sb));

  ASSERT_EQ(0, mkdir(snap.c_str(), 0755));
  EXPECT_EQ(KVS_EEXIST, kvs_snapshot(db, snap.c_str()));
  EXPECT_EQ(KVS_EINVAL, kvs_snapshot(db, ""));
  rmdir(snap.c_str());

  // A crash in the middle left a temporary directory: the next snapshot of
  // that name replaces it, and the store still writes.
  ASSERT_EQ(0, mkdir(t.file(".tmp-snap").c_str(), 0755));
  kvstest::WriteFile(t.file(".tmp-snap/0000000001.seg"), "half");
  ASSERT_EQ(KVS_OK, kvs_snapshot(db, snap.c_str())) << kvs_errmsg();
  EXPECT_NE(0, stat(t.file(".tmp-snap").c_str(), &sb));
  ASSERT_EQ(KVS_OK, kvs_set(db, "x", 1, "y", 1));
  ASSERT_EQ(KVS_OK, kvs_close(db));
  kvs* s = Open(snap, eng);
  ASSERT_NE(nullptr, s);
  kvs_store_stats st{};
  ASSERT_EQ(KVS_OK, kvs_stats(s, &st));
  EXPECT_EQ(300u, st.live_keys);
  EXPECT_EQ(KVS_OK, kvs_close(s));
}

TEST(Snapshot, FailureLeavesNoDirectoryLog) { Failures(KVS_ENGINE_KVS); }
TEST(Snapshot, FailureLeavesNoDirectoryLmdb) { Failures(KVS_ENGINE_LMDB); }

// The server's default puts snapshots inside the store's directory: its
// recovery ignores them (and a snapshot of a store holding snapshots holds
// none of them).
TEST(Snapshot, SnapshotsInsideTheStoreAreIgnored) {
  for (kvs_engine eng : {KVS_ENGINE_KVS, KVS_ENGINE_LMDB}) {
    TempDir t;
    std::string dir = t.file("db");
    kvs* db = Open(dir, eng);
    ASSERT_NE(nullptr, db);
    ASSERT_EQ(KVS_OK, kvs_set(db, "a", 1, "1", 1));
    ASSERT_EQ(0, mkdir((dir + "/snapshots").c_str(), 0755));
    ASSERT_EQ(KVS_OK, kvs_snapshot(db, (dir + "/snapshots/1").c_str())) << kvs_errmsg();
    ASSERT_EQ(KVS_OK, kvs_set(db, "b", 1, "2", 1));
    ASSERT_EQ(KVS_OK, kvs_snapshot(db, (dir + "/snapshots/2").c_str())) << kvs_errmsg();
    ASSERT_EQ(KVS_OK, kvs_compact(db));
    ASSERT_EQ(KVS_OK, kvs_close(db));
    db = Open(dir, eng);
    ASSERT_NE(nullptr, db);
    kvs_store_stats st{};
    ASSERT_EQ(KVS_OK, kvs_stats(db, &st));
    EXPECT_EQ(2u, st.live_keys);
    EXPECT_EQ(KVS_OK, kvs_close(db));
    struct stat sb;
    EXPECT_NE(0, stat((dir + "/snapshots/2/snapshots").c_str(), &sb));
    kvs* s = Open(dir + "/snapshots/1", eng);
    ASSERT_NE(nullptr, s);
    ASSERT_EQ(KVS_OK, kvs_stats(s, &st));
    EXPECT_EQ(1u, st.live_keys);
    EXPECT_EQ(KVS_OK, kvs_close(s));
  }
}

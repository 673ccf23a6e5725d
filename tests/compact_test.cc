// compact_test.cc - compaction: space is reclaimed, readers never see the
// past, tombstones never let a removed key come back, a crash at any moment
// loses nothing, and hint files make the open fast and are checked.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "kvs_fault.h"
#include "kvs_testhook.h"
#include "test_util.h"

using kvstest::TempDir;

namespace {

int64_t DirBytes(const std::string& dir) {
  int64_t total = 0;
  DIR* d = opendir(dir.c_str());
  if (!d) return -1;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    total += kvstest::FileSize(dir + "/" + n);
  }
  closedir(d);
  return total;
}

kvs* Open(const std::string& dir, kvs_options o = {}) {
  kvs* db = nullptr;
  EXPECT_EQ(kvs_open(dir.c_str(), &o, &db), KVS_OK) << kvs_errmsg();
  return db;
}

std::string Get(kvs* db, const std::string& k) {
  void* v;
  size_t n;
  int rc = kvs_get(db, k.data(), k.size(), &v, &n);
  if (rc != KVS_OK) return rc == KVS_ENOTFOUND ? "<not found>" : "<error " + std::to_string(rc) + ">";
  std::string s(static_cast<char*>(v), n);
  kvs_free(v);
  return s;
}

int Set(kvs* db, const std::string& k, const std::string& v) {
  return kvs_set(db, k.data(), k.size(), v.data(), v.size());
}

int Remove(kvs* db, const std::string& k) { return kvs_remove(db, k.data(), k.size()); }

kvs_store_stats Stats(kvs* db) {
  kvs_store_stats st{};
  EXPECT_EQ(kvs_stats(db, &st), KVS_OK);
  return st;
}

// talent-plan's compaction test: 1000 rounds of setting the same 1000 keys
// with the default options; the directory must shrink at some point, and
// after a reopen every key has its last value.
TEST(Compaction, TalentPlanDirectoryShrinks) {
  TempDir d;
  kvs* db = Open(d.path());
  int64_t prev = DirBytes(d.path());
  bool shrank = false;
  const int rounds = getenv("KVS_SANITIZER") ? 300 : 1000;  // ~1M sets plain
  for (int iter = 0; iter < rounds && !shrank; iter++) {
    for (int k = 0; k < 1000; k++)
      ASSERT_EQ(Set(db, "key" + std::to_string(k), std::to_string(iter)), KVS_OK);
    // Compaction runs in the background: give it a moment to catch up.
    for (int wait = 0; wait < 20 && !shrank; wait++) {
      int64_t now = DirBytes(d.path());
      if (now < prev) shrank = true;
      prev = now;
      if (Stats(db).compactions == 0) break;
      usleep(5000);
    }
  }
  EXPECT_TRUE(shrank) << "the directory never shrank";
  kvs_store_stats st = Stats(db);
  EXPECT_GT(st.compactions, 0u);
  EXPECT_GT(st.bytes_reclaimed, 0u);
  std::string last = Get(db, "key0");
  ASSERT_EQ(kvs_close(db), KVS_OK);
  db = Open(d.path());
  for (int k = 0; k < 1000; k++) ASSERT_EQ(Get(db, "key" + std::to_string(k)), last) << k;
  ASSERT_EQ(kvs_close(db), KVS_OK);
}

TEST(Compaction, ForcedCompactionKeepsEveryLiveValue) {
  TempDir d;
  kvs_options o{};
  o.segment_size = 8192;
  o.no_auto_compact = 1;
  kvs* db = Open(d.path(), o);
  std::map<std::string, std::string> want;
  std::mt19937 rng(7);
  for (int i = 0; i < 5000; i++) {
    std::string k = "k" + std::to_string(rng() % 300);
    if (rng() % 4 == 0) {
      int rc = Remove(db, k);
      ASSERT_EQ(rc, want.count(k) ? KVS_OK : KVS_ENOTFOUND);
      want.erase(k);
    } else {
      std::string v = "v" + std::to_string(i) + std::string(rng() % 50, 'x');
      ASSERT_EQ(Set(db, k, v), KVS_OK);
      want[k] = v;
    }
  }
  kvs_store_stats before = Stats(db);
  int64_t bytes_before = DirBytes(d.path());
  ASSERT_EQ(kvs_compact(db), KVS_OK) << kvs_errmsg();
  kvs_store_stats after = Stats(db);
  EXPECT_GT(after.compactions, before.compactions);
  EXPECT_LT(after.dead_bytes, before.dead_bytes / 10) << "most garbage is gone";
  EXPECT_LT(DirBytes(d.path()), bytes_before / 2);
  EXPECT_EQ(after.live_keys, want.size());
  auto check = [&] {
    for (int k = 0; k < 300; k++) {
      std::string key = "k" + std::to_string(k);
      EXPECT_EQ(Get(db, key), want.count(key) ? want[key] : "<not found>") << key;
    }
  };
  check();
  ASSERT_EQ(kvs_close(db), KVS_OK);
  db = Open(d.path(), o);
  check();
  EXPECT_EQ(Stats(db).live_keys, want.size());
  // A second forced compaction right after has nothing left to do.
  ASSERT_EQ(kvs_compact(db), KVS_OK);
  ASSERT_EQ(kvs_compact(db), KVS_OK);
  check();
  ASSERT_EQ(kvs_close(db), KVS_OK);
  kvstest::RunResult v = kvstest::Run({kvstest::Bin("kvs-dump"), "--verify", d.path()});
  EXPECT_EQ(v.status, 0) << v.out << v.err;
}

// A store of small segments without automatic compaction in which a few keys
// were overwritten round after round: all but the newest segments are
// garbage, and the live data fits one compaction output.
constexpr int kChurnKeys = 10, kChurnRounds = 30;

kvs_options ChurnOptions(kvs_fsync fsync) {
  kvs_options o{};
  o.segment_size = 4096;
  o.no_auto_compact = 1;
  o.fsync = fsync;
  return o;
}

std::string ChurnValue(int round) { return std::string(100, 'p') + std::to_string(round); }

void Churn(kvs* db) {
  for (int r = 0; r < kChurnRounds; r++)
    for (int i = 0; i < kChurnKeys; i++) ASSERT_EQ(Set(db, "k" + std::to_string(i), ChurnValue(r)), KVS_OK);
}

// A pass's output takes an id left free below the active segment's, so the
// pass need not seal the active segment (a rotation: two fdatasyncs and a
// directory fsync on the writer thread) to keep the newest segment the only
// one that may lack a footer.
TEST(Compaction, PassDoesNotRotateTheActiveSegment) {
  TempDir d;
  kvs_options o = ChurnOptions(KVS_FSYNC_EVERYSEC);
  kvs* db = Open(d.path(), o);
  ASSERT_NO_FATAL_FAILURE(Churn(db));
  // kvs_compact() seals the active segment (its garbage is covered too) and
  // starts a new one; its pass then leaves that one alone.
  ASSERT_EQ(kvs_compact(db), KVS_OK) << kvs_errmsg();
  std::vector<std::string> segs = kvstest::Segments(d.path());
  ASSERT_EQ(segs.size(), 2u) << "the output and the active segment, nothing sealed after the pass";
  EXPECT_EQ(Stats(db).segments, 2u);
  ASSERT_EQ(Set(db, "after", "x"), KVS_OK);
  ASSERT_EQ(kvs_close(db), KVS_OK);
  // The output is sealed, the newest (the active) is not: the open accepts it.
  db = Open(d.path(), o);
  for (int i = 0; i < kChurnKeys; i++) EXPECT_EQ(Get(db, "k" + std::to_string(i)), ChurnValue(kChurnRounds - 1));
  EXPECT_EQ(Get(db, "after"), "x");
  ASSERT_EQ(kvs_close(db), KVS_OK);
  kvstest::RunResult v = kvstest::Run({kvstest::Bin("kvs-dump"), "--verify", d.path()});
  EXPECT_EQ(v.status, 0) << v.out << v.err;
}

// Under fsync everysec or never, the records that made a victim's records
// dead may still be only in the page cache when the pass ends.  They must be
// synced before the victims are unlinked, or a power cut would lose the new
// value and the old one with it.  Power cuts cannot be simulated here, so
// the sync is observed through fault injection: failing each fdatasync of a
// forced compaction in turn, one of them must be that sync.  It is told from
// the others by what it leaves: a published output (a new sealed segment),
// victims still on disk, and a failed handle (a failure to seal an output
// only stops compaction; rotations fail before any output is published).
// kvs_compact() may run one pass or two (a segment whose hint is still being
// written waits for the next), so the victims are any segment from before.
TEST(Compaction, OverwritesAreSyncedBeforeVictimsGo) {
  bool seen = false;
  for (int nth = 1; nth <= 16 && !seen; nth++) {
    TempDir d;
    kvs_options o = ChurnOptions(KVS_FSYNC_NEVER);
    kvs* db = Open(d.path(), o);
    ASSERT_NO_FATAL_FAILURE(Churn(db));
    std::vector<std::string> before = kvstest::Segments(d.path());
    ASSERT_GT(before.size(), 3u);
    kvs__fault_sync(nth, EIO);
    int rc = kvs_compact(db);
    kvs__fault_sync(0, 0);
    if (rc == KVS_OK) break;  // nth was past the last sync
    std::vector<std::string> after = kvstest::Segments(d.path());
    auto existed = [&](const std::string& s) { return std::find(before.begin(), before.end(), s) != before.end(); };
    size_t kept = 0, outputs = 0;
    for (size_t i = 0; i < after.size(); i++) {
      if (existed(after[i])) kept++;
      else if (i + 1 < after.size()) outputs++;  // new, and not the active (newest) one
    }
    bool failed = Set(db, "x", "y") == KVS_EFAILED;
    if (failed && kept > 0 && outputs > 0) seen = true;
    kvs_close(db);
    db = Open(d.path(), o);
    for (int i = 0; i < kChurnKeys; i++)
      EXPECT_EQ(Get(db, "k" + std::to_string(i)), ChurnValue(kChurnRounds - 1)) << "nth " << nth;
    ASSERT_EQ(kvs_close(db), KVS_OK);
  }
  EXPECT_TRUE(seen) << "no fdatasync between the output's publication and the victims' removal";
}

// A removed key must not come back when the segment holding its tombstone
// is compacted while an older segment still holds a set of it.
TEST(Compaction, RemovedKeyNeverComesBack) {
  TempDir d;
  kvs_options o{};
  o.segment_size = 4096;
  o.no_auto_compact = 1;
  kvs* db = Open(d.path(), o);
  const std::string pad(200, 'p');
  ASSERT_EQ(Set(db, "victim", "old"), KVS_OK);
  for (int i = 0; i < 40; i++) ASSERT_EQ(Set(db, "keep" + std::to_string(i), pad), KVS_OK);
  ASSERT_EQ(Remove(db, "victim"), KVS_OK);
  // Make the tombstone's segment mostly dead, the set's segment mostly live.
  for (int r = 0; r < 5; r++)
    for (int i = 0; i < 20; i++) ASSERT_EQ(Set(db, "churn" + std::to_string(i), pad), KVS_OK);
  for (int pass = 0; pass < 3; pass++) {
    ASSERT_EQ(kvs_compact(db), KVS_OK);
    EXPECT_EQ(Get(db, "victim"), "<not found>");
    ASSERT_EQ(kvs_close(db), KVS_OK);
    db = Open(d.path(), o);
    EXPECT_EQ(Get(db, "victim"), "<not found>") << "pass " << pass;
  }
  // Once the old set is gone too, the tombstone can go as well.
  for (int i = 0; i < 40; i++) ASSERT_EQ(Set(db, "keep" + std::to_string(i), pad + "2"), KVS_OK);
  ASSERT_EQ(kvs_compact(db), KVS_OK);
  ASSERT_EQ(kvs_compact(db), KVS_OK);
  ASSERT_EQ(kvs_close(db), KVS_OK);
  db = Open(d.path(), o);
  EXPECT_EQ(Get(db, "victim"), "<not found>");
  ASSERT_EQ(kvs_close(db), KVS_OK);
  kvstest::RunResult dump = kvstest::Run({kvstest::Bin("kvs-dump"), d.path()});
  EXPECT_EQ(dump.out.find("\"victim\""), std::string::npos) << "no record of the key is left:\n" << dump.out;
}

// A pass tells a dead SET from a live one by the marks the writer (and the
// open) left in the segment, not by looking each record's key up in the
// index; and the marks an open leaves are complete: no dead record is
// copied as live, after an open with one thread or two.
TEST(Compaction, PassDecidesSetsWithoutIndexLookups) {
  for (unsigned threads : {1u, 2u}) {
    SCOPED_TRACE("open with " + std::to_string(threads) + " thread(s)");
    kvs__hook_replay_threads(threads);
    TempDir d;
    kvs_options o{};
    o.segment_size = 64 << 10;
    o.no_auto_compact = 1;
    kvs* db = Open(d.path(), o);
    const int kKeys = 2000;
    auto val = [](int k, int gen) { return "v" + std::to_string(gen) + "-" + std::string(80 + k % 40, 'a' + k % 26); };
    std::vector<int> gen(kKeys, 0);
    for (int k = 0; k < kKeys; k++) ASSERT_EQ(Set(db, "key" + std::to_string(k), val(k, 0)), KVS_OK);
    for (int k = 0; k < kKeys; k += 4) ASSERT_EQ(Set(db, "key" + std::to_string(k), val(k, gen[k] = 1)), KVS_OK);
    unsigned long before = kvs__hook_compact_lookups();
    ASSERT_EQ(kvs_compact(db), KVS_OK);
    EXPECT_EQ(kvs__hook_compact_lookups() - before, 0u) << "2500 SETs decided";
    EXPECT_EQ(Stats(db).dead_bytes, 0u) << "no garbage copied";
    // Dead records found by the open: overwrites in older segments, and
    // duplicates of the same key within a segment.
    for (int k = 1; k < kKeys; k += 3) ASSERT_EQ(Set(db, "key" + std::to_string(k), val(k, gen[k] = 2)), KVS_OK);
    for (int k = 2; k < kKeys; k += 5) ASSERT_EQ(Set(db, "key" + std::to_string(k), val(k, gen[k] = 3)), KVS_OK);
    ASSERT_EQ(kvs_close(db), KVS_OK);
    db = Open(d.path(), o);
    before = kvs__hook_compact_lookups();
    ASSERT_EQ(kvs_compact(db), KVS_OK);
    EXPECT_EQ(kvs__hook_compact_lookups() - before, 0u);
    EXPECT_EQ(Stats(db).dead_bytes, 0u) << "no garbage copied: the open marked every dead record";
    for (int k = 0; k < kKeys; k++) ASSERT_EQ(Get(db, "key" + std::to_string(k)), val(k, gen[k])) << k;
    ASSERT_EQ(kvs_close(db), KVS_OK);
    db = Open(d.path(), o);
    for (int k = 0; k < kKeys; k++) ASSERT_EQ(Get(db, "key" + std::to_string(k)), val(k, gen[k])) << k;
    ASSERT_EQ(kvs_close(db), KVS_OK);
  }
  kvs__hook_replay_threads(0);
}

long ResidentBytes() {
  long size = 0, resident = 0;
  if (FILE* f = fopen("/proc/self/statm", "r")) {
    if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
    fclose(f);
  }
  return resident * sysconf(_SC_PAGESIZE);
}

// A segment's dead-record marks take 1/64 of its size (16 MiB for one of
// 1 GiB), but only the pages that hold a mark become resident: a few
// overwrites near the start of a segment cost a page, not the map.
TEST(Compaction, DeadRecordMarksCostOnlyThePagesTheyTouch) {
  TempDir d;
  kvs_options o{};
  o.segment_size = 1ull << 30;
  o.fsync = KVS_FSYNC_NEVER;
  o.no_auto_compact = 1;
  kvs* db = Open(d.path(), o);
  const std::string v(1000, 'v');
  for (int k = 0; k < 64; k++) ASSERT_EQ(Set(db, "k" + std::to_string(k), v), KVS_OK);
  long before = ResidentBytes();
  for (int k = 0; k < 64; k++) ASSERT_EQ(Set(db, "k" + std::to_string(k), v + "2"), KVS_OK);
  long grew = ResidentBytes() - before;
#if defined(__SANITIZE_THREAD__)
  // TSan's calloc clears what it returns: the pages are resident there.
  (void)grew;
#else
  EXPECT_LT(grew, 1 << 20) << "the 16 MiB map of the segment became resident";
#endif
  EXPECT_GT(Stats(db).dead_bytes, 64000u);
  ASSERT_EQ(kvs_close(db), KVS_OK);
}

// A caller writing in a loop runs its rounds itself (kvs__write_inline):
// after each it asks whether a compaction step is due, and with no pass
// running that means a walk of the segment list, which it takes only once
// per quarter segment written, not per round.  (Per round, a store of
// thousands of segments tripled the cost of a small SET.)
TEST(Compaction, CallersRoundsDoNotWalkTheSegmentsEachTime) {
  TempDir d;
  kvs_options o{};
  o.segment_size = 64 << 10;
  o.fsync = KVS_FSYNC_NEVER;
  kvs* db = Open(d.path(), o);
  const int kSets = 20000;  // new keys: no garbage, no pass
  unsigned long before = kvs__hook_compact_list_walks();  // this thread's
  for (int k = 0; k < kSets; k++) ASSERT_EQ(Set(db, "key" + std::to_string(k), "v"), KVS_OK);
  unsigned long walks = kvs__hook_compact_list_walks() - before;
  // About 600 KB written: about 40 looks, at 16 KiB each.  (The writer
  // thread's own looks, on its thread, are not counted.)
  EXPECT_LT(walks, 100u);
  ASSERT_EQ(kvs_close(db), KVS_OK);
}

// Overwriting a fixed set of keys forever keeps the directory under about
// twice the live data plus two segments.
TEST(Compaction, DiskUseStaysBounded) {
  TempDir d;
  kvs_options o{};
  o.segment_size = 64 << 10;
  o.compact_min_dead = 64 << 10;
  kvs* db = Open(d.path(), o);
  const int kKeys = 500;
  const std::string val(200, 'v');
  int64_t worst = 0, live = 0;
  for (int round = 0; round < 60; round++) {
    for (int k = 0; k < kKeys; k++) ASSERT_EQ(Set(db, "key" + std::to_string(k), val), KVS_OK);
    kvs_store_stats st = Stats(db);
    live = static_cast<int64_t>(st.live_bytes);
    worst = std::max(worst, DirBytes(d.path()));
  }
  usleep(200000);
  int64_t bound = 2 * live + 2 * static_cast<int64_t>(o.segment_size) + 64 * 1024;  // + hints, marker
  EXPECT_LE(worst, bound) << "live " << live << " bytes";
  EXPECT_GT(Stats(db).compactions, 5u);
  ASSERT_EQ(kvs_close(db), KVS_OK);
}

// Readers check that versions never go backwards and never vanish while
// writers overwrite and remove and compactions run back to back.
TEST(Compaction, StressReadersNeverSeeThePast) {
  TempDir d;
  kvs_options o{};
  o.segment_size = 16384;
  kvs* db = Open(d.path(), o);
  const int kKeys = 64;
  // Key k is written only by writer k % 2.  Version v of key k sets
  // "k:v", except every 7th version, which removes it.
  std::vector<std::atomic<long>> acked(kKeys);  // last acked version
  for (auto& a : acked) a = -1;
  std::atomic<bool> stop{false};
  std::atomic<long> bad{0}, reads{0}, compactions{0};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(getenv("KVS_SANITIZER") ? 4 : 3);
  std::vector<std::thread> ts;
  for (int w = 0; w < 2; w++)
    ts.emplace_back([&, w] {
      for (long v = 0; std::chrono::steady_clock::now() < deadline; v++)
        for (int k = w; k < kKeys; k += 2) {
          std::string key = "k" + std::to_string(k);
          int rc = v % 7 == 6 ? Remove(db, key) : Set(db, key, key + ":" + std::to_string(v));
          if (rc != KVS_OK) bad++;
          acked[k] = v;
        }
    });
  ts.emplace_back([&] {
    while (!stop) {
      if (kvs_compact(db) != KVS_OK) bad++;
      compactions++;
    }
  });
  for (int r = 0; r < 2; r++)
    ts.emplace_back([&] {
      std::vector<long> seen(kKeys, -1);
      while (!stop) {
        for (int k = 0; k < kKeys; k++) {
          long floor = acked[k].load();
          std::string key = "k" + std::to_string(k);
          std::string got = Get(db, key);
          reads++;
          long ver;
          if (got == "<not found>") {
            long base = std::max(seen[k], floor);
            if (base < 0) continue;  // nothing written yet
            // It was removed by a remove (version 6 mod 7) at or after
            // everything seen: later reads must show a newer version.
            ver = base;
            while (ver % 7 != 6) ver++;
          } else if (got.compare(0, key.size() + 1, key + ":") == 0) {
            ver = std::stol(got.substr(key.size() + 1));
            if (ver % 7 == 6) bad++;  // that version was a remove
          } else {
            bad++;
            continue;
          }
          if (ver < seen[k] || ver < floor) bad++;
          seen[k] = ver;
        }
      }
    });
  ts[0].join();
  ts[1].join();
  stop = true;
  for (size_t i = 2; i < ts.size(); i++) ts[i].join();
  EXPECT_EQ(bad.load(), 0) << reads.load() << " reads, " << compactions.load() << " compactions";
  EXPECT_GT(compactions.load(), 3);
  // Final state: every key holds its last version (or is removed).
  for (int k = 0; k < kKeys; k++) {
    std::string key = "k" + std::to_string(k);
    long v = acked[k];
    EXPECT_EQ(Get(db, key), v % 7 == 6 ? "<not found>" : key + ":" + std::to_string(v));
  }
  ASSERT_EQ(kvs_close(db), KVS_OK);
  db = Open(d.path(), o);
  for (int k = 0; k < kKeys; k++) {
    std::string key = "k" + std::to_string(k);
    long v = acked[k];
    EXPECT_EQ(Get(db, key), v % 7 == 6 ? "<not found>" : key + ":" + std::to_string(v)) << "after reopen";
  }
  ASSERT_EQ(kvs_close(db), KVS_OK);
}

// ---- crash during compaction -------------------------------------------------

// The op sequence of crash-child's "compact" mode, for thread t.
struct OpModel {
  static constexpr int kKeys = 50;
  static std::string Key(int t, long n) { return "c-" + std::to_string(t) + "-" + std::to_string(n % kKeys); }
  static bool IsRemove(long n) { return (n / kKeys) % 5 == 4; }
  static std::string Value(const std::string& prefix, int t, long n) {
    return prefix + "-" + std::to_string(t) + "-" + std::to_string(n);
  }
};

TEST(CrashCompaction, KillDuringCompactionLosesNothing) {
  TempDir d;
  const int kThreads = 2;
  const char* env = getenv("KVS_STRESS_ROUNDS");
  const int rounds = env ? atoi(env) : 20;
  std::mt19937 rng(4242);
  std::map<std::string, std::string> state;  // key -> value, or "" removed
  for (int round = 0; round < rounds; round++) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::string prefix = "r" + std::to_string(round);
    std::string out = kvstest::RunAndKill({std::string(KVS_TEST_DIR) + "/crash-child", d.path(), prefix, "everysec",
                                           std::to_string(kThreads), "compact"},
                                          "O open\n", 30 + static_cast<int>(rng() % 300));
    std::vector<long> last(kThreads, -1);
    size_t pos = 0;
    while (pos < out.size()) {
      size_t nl = out.find('\n', pos);
      if (nl == std::string::npos) break;
      std::string line = out.substr(pos, nl - pos);
      pos = nl + 1;
      int t;
      long n;
      if (sscanf(line.c_str(), "N %d %ld", &t, &n) == 2 && t >= 0 && t < kThreads) last[t] = std::max(last[t], n);
    }
    // Every acknowledged op happened; the one after it may have.
    std::map<std::string, std::vector<std::string>> either;
    for (int t = 0; t < kThreads; t++) {
      for (long n = 0; n <= last[t]; n++)
        state[OpModel::Key(t, n)] = OpModel::IsRemove(n) ? "" : OpModel::Value(prefix, t, n);
      long n = last[t] + 1;
      std::string k = OpModel::Key(t, n);
      either[k] = {state.count(k) ? state[k] : "", OpModel::IsRemove(n) ? "" : OpModel::Value(prefix, t, n)};
    }
    kvs* db = Open(d.path());
    ASSERT_NE(db, nullptr);
    for (auto& [k, v] : state) {
      if (either.count(k)) continue;
      EXPECT_EQ(Get(db, k), v.empty() ? "<not found>" : v) << k;
    }
    for (auto& [k, vs] : either) {
      std::string got = Get(db, k), want0 = vs[0].empty() ? "<not found>" : vs[0],
                  want1 = vs[1].empty() ? "<not found>" : vs[1];
      EXPECT_TRUE(got == want0 || got == want1) << k << ": " << got;
      state[k] = got == "<not found>" ? "" : got;  // what the next round builds on
    }
    ASSERT_EQ(kvs_close(db), KVS_OK);
    kvstest::RunResult v = kvstest::Run({kvstest::Bin("kvs-dump"), "--verify", d.path()});
    EXPECT_EQ(v.status, 0) << v.out << v.err;
    for (const auto& name : {std::string(".tmp")}) {
      DIR* dir = opendir(d.path().c_str());
      while (dirent* e = readdir(dir)) {
        std::string n = e->d_name;
        EXPECT_FALSE(n.size() > 4 && n.substr(n.size() - 4) == name) << "leftover " << n;
      }
      closedir(dir);
    }
  }
}

// ---- hint files ------------------------------------------------------------------

class HintTest : public ::testing::Test {
 protected:
  static std::string V(int i) { return "v" + std::to_string(i) + std::string(40, '.'); }
  void SetUp() override {
    o_.segment_size = 16384;
    o_.no_auto_compact = 1;
    kvs* db = Open(d_.path(), o_);
    for (int i = 0; i < 2000; i++) ASSERT_EQ(Set(db, "k" + std::to_string(i % 700), V(i)), KVS_OK);
    for (int i = 0; i < 700; i += 5) ASSERT_EQ(Remove(db, "k" + std::to_string(i)), KVS_OK);
    ASSERT_EQ(kvs_close(db), KVS_OK);
  }
  void ExpectContents(kvs* db) {
    for (int k = 0; k < 700; k++) {
      int last = k + 1400 < 2000 ? k + 1400 : k + 700;
      EXPECT_EQ(Get(db, "k" + std::to_string(k)), k % 5 == 0 ? "<not found>" : V(last)) << k;
    }
  }
  std::vector<std::string> Hints() {
    std::vector<std::string> v;
    for (auto& s : kvstest::Segments(d_.path())) {
      std::string h = s.substr(0, s.size() - 4) + ".hint";
      if (kvstest::FileSize(h) > 0) v.push_back(h);
    }
    return v;
  }
  TempDir d_;
  kvs_options o_{};
};

TEST_F(HintTest, OpenUsesHints) {
  auto hints = Hints();
  ASSERT_GE(hints.size(), 3u) << "every sealed segment has a hint";
  EXPECT_EQ(hints.size(), kvstest::Segments(d_.path()).size() - 1) << "but the active one";
  kvs* db = Open(d_.path(), o_);
  EXPECT_EQ(Stats(db).hint_loads, hints.size());
  ExpectContents(db);
  ASSERT_EQ(kvs_close(db), KVS_OK);
}

TEST_F(HintTest, DeletedHintFallsBackAndIsRewritten) {
  auto hints = Hints();
  unlink(hints[1].c_str());
  kvs* db = Open(d_.path(), o_);
  EXPECT_EQ(Stats(db).hint_loads, hints.size() - 1);
  ExpectContents(db);
  ASSERT_EQ(kvs_close(db), KVS_OK);
  EXPECT_GT(kvstest::FileSize(hints[1]), 0) << "the scan wrote the hint again";
  db = Open(d_.path(), o_);
  EXPECT_EQ(Stats(db).hint_loads, hints.size());
  ExpectContents(db);
  ASSERT_EQ(kvs_close(db), KVS_OK);
}

TEST_F(HintTest, CorruptHintFallsBack) {
  auto hints = Hints();
  for (size_t h = 0; h < hints.size(); h++) {
    std::string data = kvstest::ReadFile(hints[h]);
    // A flipped byte, a truncated file, garbage, an empty file.
    std::string bad = data;
    switch (h % 4) {
      case 0: bad[bad.size() / 2] ^= 0x40; break;
      case 1: bad.resize(bad.size() / 2); break;
      case 2: bad = std::string(bad.size(), '\x85'); break;
      case 3: bad.clear(); break;
    }
    kvstest::WriteFile(hints[h], bad);
  }
  kvs* db = Open(d_.path(), o_);
  EXPECT_EQ(Stats(db).hint_loads, 0u);
  ExpectContents(db);
  ASSERT_EQ(kvs_close(db), KVS_OK);
}

TEST_F(HintTest, HintOfAnotherSegmentIsRejected) {
  auto hints = Hints();
  ASSERT_GE(hints.size(), 2u);
  kvstest::WriteFile(hints[0], kvstest::ReadFile(hints[1]));
  kvs* db = Open(d_.path(), o_);
  EXPECT_EQ(Stats(db).hint_loads, hints.size() - 1);
  ExpectContents(db);
  ASSERT_EQ(kvs_close(db), KVS_OK);
}

TEST_F(HintTest, OrphanHintIsRemoved) {
  kvstest::WriteFile(d_.file("0000009999.hint"), kvstest::ReadFile(Hints()[0]));
  kvs* db = Open(d_.path(), o_);
  ExpectContents(db);
  ASSERT_EQ(kvs_close(db), KVS_OK);
  EXPECT_EQ(kvstest::FileSize(d_.file("0000009999.hint")), -1);
}

// ---- failures while a pass removes its victims or writes its output ---------------

// Names of the files of `dir` that end with `suffix`.
std::vector<std::string> FilesEnding(const std::string& dir, const std::string& suffix) {
  std::vector<std::string> v;
  DIR* d = opendir(dir.c_str());
  if (!d) return v;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.size() >= suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0)
      v.push_back(n);
  }
  closedir(d);
  std::sort(v.begin(), v.end());
  return v;
}

struct Logs {
  std::mutex mu;
  std::vector<std::string> lines;
  static void Hook(void* ctx, kvs_log_level, const char* msg) {
    auto* l = static_cast<Logs*>(ctx);
    std::lock_guard<std::mutex> g(l->mu);
    l->lines.push_back(msg);
  }
  size_t Count(const std::string& needle) {
    std::lock_guard<std::mutex> g(mu);
    size_t n = 0;
    for (auto& s : lines) n += s.find(needle) != std::string::npos;
    return n;
  }
};

// A store where "gone" was set in segment 1 and then removed, and every
// other record older than the tombstone was overwritten since: once segment
// 1 is deleted, nothing older than the tombstone is left, so a pass may drop
// it.  Every sealed segment holds garbage, so kvs_compact() makes them all
// victims.
void RemovedKeyStore(kvs* db) {
  ASSERT_EQ(Set(db, "gone", "it was here"), KVS_OK);
  for (int i = 0; i < 120; i++) ASSERT_EQ(Set(db, "f" + std::to_string(i), std::string(100, 'a')), KVS_OK);
  ASSERT_EQ(Remove(db, "gone"), KVS_OK);
  for (int i = 0; i < 120; i++) ASSERT_EQ(Set(db, "f" + std::to_string(i), std::string(100, 'b')), KVS_OK);
}

// More garbage, so that another kvs_compact() has a pass to run.
void MoreGarbage(kvs* db, char c) {
  for (int i = 1; i < 120; i += 3) ASSERT_EQ(Set(db, "f" + std::to_string(i), std::string(100, c)), KVS_OK);
}

// Defect 5: a victim whose unlink failed was forgotten (it had left the
// segment list); the next pass then dropped the tombstone of a key whose
// older set was in that file, and the next open brought the key back.  Now
// the file stays a "ghost": tombstones it needs are kept, and the next pass
// unlinks it again.
TEST(Compaction, RemovedKeyStaysRemovedWhenVictimUnlinkFails) {
  TempDir d;
  kvs_options o{};
  o.segment_size = 4096;
  o.no_auto_compact = 1;
  kvs* db = Open(d.path(), o);
  RemovedKeyStore(db);
  std::string first = d.file("0000000001.seg");
  ASSERT_GT(kvstest::FileSize(first), 0);
  kvs__hook_compact_unlink_only("/0000000001.seg");
  kvs__hook_compact_unlink(-1, EACCES);  // segment 1's unlink fails
  EXPECT_EQ(kvs_compact(db), KVS_OK) << kvs_errmsg();
  kvs__hook_compact_unlink(0, 0);
  kvs__hook_compact_unlink_only(nullptr);
  ASSERT_GT(kvstest::FileSize(first), 0) << "the failed unlink left the file";
  EXPECT_EQ(Get(db, "gone"), "<not found>");
  MoreGarbage(db, 'c');
  EXPECT_EQ(kvs_compact(db), KVS_OK) << kvs_errmsg();
  EXPECT_EQ(kvstest::FileSize(first), -1) << "the next pass unlinked it again";
  MoreGarbage(db, 'd');
  EXPECT_EQ(kvs_compact(db), KVS_OK) << kvs_errmsg();
  EXPECT_EQ(Get(db, "gone"), "<not found>");
  EXPECT_EQ(Stats(db).failed, 0);
  ASSERT_EQ(kvs_close(db), KVS_OK);
  db = Open(d.path(), o);
  EXPECT_EQ(Get(db, "gone"), "<not found>");
  EXPECT_EQ(Get(db, "f1"), std::string(100, 'd'));
  ASSERT_EQ(kvs_close(db), KVS_OK);
}

// Defect 5: after a failed directory fsync the victims' unlinks may be lost
// to a power cut, but a later pass dropped the tombstone all the same.  The
// lost unlink is played here by putting back a hard link of the victim
// after the passes (as a power cut would have left the directory).  Now a
// failed directory fsync keeps those files as ghosts for the handle's life
// (never retried and taken for success), so the tombstone stays.
TEST(Compaction, RemovedKeyStaysRemovedWhenDirectoryFsyncFails) {
  TempDir d;
  kvs_options o{};
  o.segment_size = 4096;
  o.no_auto_compact = 1;
  kvs* db = Open(d.path(), o);
  RemovedKeyStore(db);
  std::string first = d.file("0000000001.seg"), saved = d.file("saved.bak");
  ASSERT_EQ(link(first.c_str(), saved.c_str()), 0);
  kvs__hook_compact_fsync_dir(1, EIO);
  EXPECT_EQ(kvs_compact(db), KVS_OK) << kvs_errmsg();
  kvs__hook_compact_fsync_dir(0, 0);
  EXPECT_EQ(kvstest::FileSize(first), -1);
  for (char c : {'c', 'd'}) {
    MoreGarbage(db, c);
    EXPECT_EQ(kvs_compact(db), KVS_OK) << kvs_errmsg();
  }
  EXPECT_EQ(Stats(db).failed, 0) << "a directory fsync failure of compaction does not fail writes";
  ASSERT_EQ(kvs_close(db), KVS_OK);
  ASSERT_EQ(rename(saved.c_str(), first.c_str()), 0);  // the unlink never reached the disk
  db = Open(d.path(), o);
  EXPECT_EQ(Get(db, "gone"), "<not found>");
  EXPECT_EQ(Get(db, "f1"), std::string(100, 'd'));
  ASSERT_EQ(kvs_close(db), KVS_OK);
}

// A store of 3+ sealed segments with garbage in each.
void GarbageStore(kvs* db, std::map<std::string, std::string>* model) {
  for (int round = 0; round < 3; round++)
    for (int i = 0; i < 100; i++) {
      std::string k = "k" + std::to_string(i), v = std::string(80, static_cast<char>('a' + round)) + k;
      ASSERT_EQ(Set(db, k, v), KVS_OK);
      (*model)[k] = v;
    }
}

void ExpectModel(kvs* db, const std::map<std::string, std::string>& model) {
  for (auto& kv : model) EXPECT_EQ(Get(db, kv.first), kv.second) << kv.first;
}

// Disk full while a pass writes its output: the pass gives up cleanly (no
// temporary file, victims kept and readable), the handle is not failed,
// kvs_compact() says KVS_ENOSPC, and a later pass succeeds.  (Before, such
// a failure stopped compaction for the handle's life.)
TEST(Compaction, DiskFullWhileWritingOutputGivesUpCleanly) {
  TempDir d;
  kvs_options o{};
  o.segment_size = 8192;
  o.no_auto_compact = 1;
  kvs* db = Open(d.path(), o);
  std::map<std::string, std::string> model;
  GarbageStore(db, &model);
  auto before = FilesEnding(d.path(), ".seg");
  ASSERT_GE(before.size(), 3u);
  kvs__hook_compact_write(-1, ENOSPC);
  EXPECT_EQ(kvs_compact(db), KVS_ENOSPC);
  kvs__hook_compact_write(0, 0);
  // The given-up output's temporary file is gone at once; the hint of the
  // segment kvs_compact() sealed first may still be in the background I/O
  // thread's hands (written through NNNNNNNNNN.hint.tmp).
  EXPECT_TRUE(FilesEnding(d.path(), ".seg.tmp").empty());
  EXPECT_TRUE(kvstest::Eventually([&] { return FilesEnding(d.path(), ".tmp").empty(); }))
      << FilesEnding(d.path(), ".tmp")[0];
  for (auto& f : before) EXPECT_GT(kvstest::FileSize(d.file(f)), 0) << f << ": a victim went";
  auto st = Stats(db);
  EXPECT_EQ(st.failed, 0);
  EXPECT_EQ(st.compactions, 0u);
  ExpectModel(db, model);
  ASSERT_EQ(Set(db, "after", "full"), KVS_OK);
  model["after"] = "full";
  EXPECT_EQ(kvs_compact(db), KVS_OK) << kvs_errmsg();
  EXPECT_GE(Stats(db).compactions, 1u);
  EXPECT_LT(FilesEnding(d.path(), ".seg").size(), before.size() + 1);
  ExpectModel(db, model);
  ASSERT_EQ(kvs_close(db), KVS_OK);
  db = Open(d.path(), o);
  ExpectModel(db, model);
  ASSERT_EQ(kvs_close(db), KVS_OK);
}

// No file descriptor for the output (EMFILE) while clients keep writing:
// passes are retried with a growing backoff (not at every turn of the
// writer's loop), the warning is logged at most once a second, and once
// descriptors are back a pass goes through by itself.
TEST(Compaction, NoDescriptorForOutputRetriesWithBackoff) {
  TempDir d;
  Logs logs;
  kvs_options o{};
  o.segment_size = 8192;
  o.log = Logs::Hook;
  o.log_ctx = &logs;
  kvs* db = Open(d.path(), o);
  std::map<std::string, std::string> model;
  kvs__hook_compact_create(-1, EMFILE);
  unsigned creates0 = kvs__hook_compact_creates();
  auto t0 = std::chrono::steady_clock::now();
  int n = 0;
  while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(1500)) {
    std::string k = "k" + std::to_string(n % 100), v = std::string(80, 'a' + n % 26) + k;
    ASSERT_EQ(Set(db, k, v), KVS_OK);
    model[k] = v;
    n++;
    if (n % 50 == 0) usleep(2000);
  }
  unsigned attempts = kvs__hook_compact_creates() - creates0;
  size_t warnings = logs.Count("compaction postponed");
  kvs__hook_compact_create(0, 0);
  EXPECT_GE(attempts, 2u) << "passes are tried again";
  EXPECT_LE(attempts, 6u) << "with a backoff (" << n << " writes meanwhile)";
  EXPECT_GE(warnings, 1u);
  EXPECT_LE(warnings, 2u) << "at most one warning a second";
  EXPECT_EQ(logs.Count("Too many open files"), warnings);
  // No output is left behind; a rotated segment's hint may still be in the
  // background I/O thread's hands for a moment.
  EXPECT_TRUE(FilesEnding(d.path(), ".seg.tmp").empty());
  EXPECT_TRUE(kvstest::Eventually([&] { return FilesEnding(d.path(), ".tmp").empty(); }))
      << FilesEnding(d.path(), ".tmp")[0];
  EXPECT_EQ(Stats(db).failed, 0);
  ExpectModel(db, model);
  // Descriptors are back: the victims the failed passes kept are still
  // candidates, and the next retry (after the backoff, without any write)
  // goes through.
  uint64_t passes = Stats(db).compactions;
  bool compacted = false;
  for (int i = 0; i < 100 && !compacted; i++) {
    compacted = Stats(db).compactions > passes;
    if (!compacted) usleep(50000);
  }
  EXPECT_TRUE(compacted);
  EXPECT_EQ(logs.Count("compaction stopped"), 0u);
  ExpectModel(db, model);
  ASSERT_EQ(kvs_close(db), KVS_OK);
}

}  // namespace

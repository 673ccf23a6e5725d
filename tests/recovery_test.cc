// recovery_test.cc - opening damaged stores: a torn or corrupt tail of the
// newest segment is cut off with a warning; damage anywhere else fails the
// open with the file and offset; a crash (SIGKILL) never loses an
// acknowledged write.
#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>
#include <poll.h>
#include <signal.h>

#include <algorithm>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>

#include <atomic>
#include <chrono>
#include <thread>

#include "kvs_testhook.h"
#include "test_util.h"

using kvstest::TempDir;

namespace {

struct Log {
  std::mutex mu;
  std::string text;
  static void Hook(void* ctx, kvs_log_level, const char* msg) {
    auto* l = static_cast<Log*>(ctx);
    std::lock_guard<std::mutex> g(l->mu);
    l->text += std::string(msg) + "\n";
  }
};

// Open `dir`, returning the code; the handle (if any) goes to *out.
int OpenWithLog(const std::string& dir, Log* log, kvs** out, uint64_t segsize = 0) {
  kvs_options o{};
  o.log = Log::Hook;
  o.log_ctx = log;
  o.segment_size = segsize;
  return kvs_open(dir.c_str(), &o, out);
}

std::string Get(kvs* db, const std::string& k) {
  void* v;
  size_t n;
  int rc = kvs_get(db, k.data(), k.size(), &v, &n);
  if (rc != KVS_OK) return rc == KVS_ENOTFOUND ? "<not found>" : "<error>";
  std::string s(static_cast<char*>(v), n);
  kvs_free(v);
  return s;
}

void Set(kvs* db, const std::string& k, const std::string& v) {
  ASSERT_EQ(kvs_set(db, k.data(), k.size(), v.data(), v.size()), KVS_OK) << kvs_errmsg();
}

std::string Val(int i) { return "value-" + std::to_string(i) + std::string(40, 'x'); }

// Records of a segment file (offset, length), footer included.  The keys
// are copied (the reader's buffer goes away); values are not kept.
std::vector<kvs_record> Records(const std::string& path) {
  static std::deque<std::string> keys;  // stable addresses for rec.key
  std::vector<kvs_record> v;
  kvs_reader* r = nullptr;
  EXPECT_EQ(kvs_reader_open(path.c_str(), &r), KVS_OK) << kvs_errmsg();
  if (!r) return v;
  kvs_record rec;
  while (kvs_reader_next(r, &rec) == KVS_OK) {
    keys.emplace_back(static_cast<const char*>(rec.key), rec.klen);
    rec.key = keys.back().data();
    rec.val = nullptr;
    v.push_back(rec);
  }
  kvs_reader_close(r);
  return v;
}

// A store of keys k0..k{n-1} in one (active) segment.
void MakeStore(const std::string& dir, int n) {
  kvs* db;
  ASSERT_EQ(kvs_open(dir.c_str(), nullptr, &db), KVS_OK);
  for (int i = 0; i < n; i++) Set(db, "k" + std::to_string(i), Val(i));
  ASSERT_EQ(kvs_close(db), KVS_OK);
}

// ---- the newest segment's tail ---------------------------------------------

TEST(Recovery, TruncateInsideLastRecordAtEveryOffset) {
  TempDir d;
  MakeStore(d.path(), 10);
  auto segs = kvstest::Segments(d.path());
  ASSERT_EQ(segs.size(), 1u);
  const std::string seg = segs[0];
  const std::string orig = kvstest::ReadFile(seg);
  auto recs = Records(seg);
  ASSERT_EQ(recs.size(), 10u);
  const kvs_record last = recs.back();
  ASSERT_EQ(last.offset + last.length, orig.size());

  for (uint64_t cut = last.offset; cut < orig.size(); cut++) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    kvstest::WriteFile(seg, orig.substr(0, cut));
    Log log;
    kvs* db = nullptr;
    ASSERT_EQ(OpenWithLog(d.path(), &log, &db), KVS_OK) << kvs_errmsg();
    for (int i = 0; i < 9; i++) ASSERT_EQ(Get(db, "k" + std::to_string(i)), Val(i));
    EXPECT_EQ(Get(db, "k9"), "<not found>");
    if (cut > last.offset) {
      EXPECT_NE(log.text.find("dropping " + std::to_string(cut - last.offset) + " bytes"), std::string::npos)
          << log.text;
      EXPECT_NE(log.text.find(seg), std::string::npos) << "the warning names the file: " << log.text;
    }
    // The tail is gone from the file, and the store takes new writes.
    Set(db, "new", "after-recovery");
    ASSERT_EQ(kvs_close(db), KVS_OK);
    ASSERT_EQ(OpenWithLog(d.path(), &log, &db), KVS_OK) << kvs_errmsg();
    EXPECT_EQ(Get(db, "new"), "after-recovery");
    EXPECT_EQ(Get(db, "k8"), Val(8));
    ASSERT_EQ(kvs_close(db), KVS_OK);
  }
}

TEST(Recovery, FlippedByteInLastRecordIsDroppedWithWarning) {
  TempDir d;
  MakeStore(d.path(), 10);
  const std::string seg = kvstest::Segments(d.path())[0];
  const std::string orig = kvstest::ReadFile(seg);
  const kvs_record last = Records(seg).back();
  for (uint64_t at = last.offset; at < orig.size(); at++) {
    for (unsigned char mask : {0x01, 0xff}) {
      SCOPED_TRACE("flip at " + std::to_string(at) + " mask " + std::to_string(mask));
      std::string bad = orig;
      bad[at] = static_cast<char>(bad[at] ^ mask);
      kvstest::WriteFile(seg, bad);
      Log log;
      kvs* db = nullptr;
      ASSERT_EQ(OpenWithLog(d.path(), &log, &db), KVS_OK) << kvs_errmsg();
      for (int i = 0; i < 9; i++) ASSERT_EQ(Get(db, "k" + std::to_string(i)), Val(i));
      EXPECT_EQ(Get(db, "k9"), "<not found>");
      EXPECT_NE(log.text.find("offset " + std::to_string(last.offset)), std::string::npos) << log.text;
      ASSERT_EQ(kvs_close(db), KVS_OK);
      EXPECT_EQ(static_cast<uint64_t>(kvstest::FileSize(seg)), last.offset);
    }
  }
}

TEST(Recovery, FlippedByteInOlderRecordOfNewestSegmentFailsOpen) {
  TempDir d;
  MakeStore(d.path(), 10);
  const std::string seg = kvstest::Segments(d.path())[0];
  const std::string orig = kvstest::ReadFile(seg);
  auto recs = Records(seg);
  const kvs_record victim = recs[3];
  for (uint64_t at = victim.offset; at < victim.offset + victim.length; at++) {
    SCOPED_TRACE("flip at " + std::to_string(at));
    std::string bad = orig;
    bad[at] = static_cast<char>(bad[at] ^ 0xff);
    kvstest::WriteFile(seg, bad);
    Log log;
    kvs* db = nullptr;
    ASSERT_EQ(OpenWithLog(d.path(), &log, &db), KVS_ECORRUPT) << log.text;
    std::string msg = kvs_errmsg();
    EXPECT_NE(msg.find(seg), std::string::npos) << msg;
    EXPECT_NE(msg.find("offset " + std::to_string(victim.offset)), std::string::npos) << msg;
    EXPECT_EQ(kvstest::ReadFile(seg), bad) << "a failed open must not change the file";
  }
}

TEST(Recovery, DamageInSealedSegmentFailsOpen) {
  TempDir d;
  kvs* db;
  Log log;
  ASSERT_EQ(OpenWithLog(d.path(), &log, &db, 4096), KVS_OK);
  for (int i = 0; i < 300; i++) Set(db, "k" + std::to_string(i), Val(i));
  ASSERT_EQ(kvs_close(db), KVS_OK);
  auto segs = kvstest::Segments(d.path());
  ASSERT_GE(segs.size(), 3u);
  const std::string seg = segs[1];
  const std::string hint = seg.substr(0, seg.size() - 4) + ".hint";
  const std::string orig = kvstest::ReadFile(seg), orig_hint = kvstest::ReadFile(hint);
  ASSERT_FALSE(orig_hint.empty()) << "a sealed segment has a hint file";
  auto recs = Records(seg);
  ASSERT_GE(recs.size(), 3u);
  ASSERT_EQ(recs.back().type, KVS_REC_FOOTER);

  // A flipped byte in a value of a sealed segment.  With its hint file the
  // open does not read values: the damage shows when the key is read (an
  // error naming file and offset, never a wrong value).  Without the hint
  // the open scans the segment and fails.
  const kvs_record victim = recs[recs.size() - 2];
  std::string key(static_cast<const char*>(victim.key), victim.klen);
  std::string bad = orig;
  bad[victim.offset + victim.length - 8] ^= 0x20;
  kvstest::WriteFile(seg, bad);
  ASSERT_EQ(OpenWithLog(d.path(), &log, &db, 4096), KVS_OK) << kvs_errmsg();
  void* v = nullptr;
  size_t n = 0;
  EXPECT_EQ(kvs_get(db, key.data(), key.size(), &v, &n), KVS_ECORRUPT);
  EXPECT_NE(std::string(kvs_errmsg()).find(seg + ": bad record at offset " + std::to_string(victim.offset)),
            std::string::npos)
      << kvs_errmsg();
  ASSERT_EQ(kvs_close(db), KVS_OK);
  unlink(hint.c_str());
  EXPECT_EQ(OpenWithLog(d.path(), &log, &db, 4096), KVS_ECORRUPT);
  EXPECT_NE(std::string(kvs_errmsg()).find(seg + ": bad record at offset " + std::to_string(victim.offset)),
            std::string::npos)
      << kvs_errmsg();

  // Cut exactly between two records: the hint no longer matches, and the
  // missing footer gives it away.
  kvstest::WriteFile(hint, orig_hint);
  kvstest::WriteFile(seg, orig.substr(0, victim.offset));
  EXPECT_EQ(OpenWithLog(d.path(), &log, &db, 4096), KVS_ECORRUPT);
  EXPECT_NE(std::string(kvs_errmsg()).find("no footer"), std::string::npos) << kvs_errmsg();

  // A footer that does not match the records before it.
  kvstest::WriteFile(seg, orig.substr(0, recs[1].offset) + orig.substr(recs[2].offset));
  EXPECT_EQ(OpenWithLog(d.path(), &log, &db, 4096), KVS_ECORRUPT);
  EXPECT_NE(std::string(kvs_errmsg()).find("footer"), std::string::npos) << kvs_errmsg();

  // Garbage in place of the segment.
  kvstest::WriteFile(seg, std::string(5000, '\0'));
  EXPECT_EQ(OpenWithLog(d.path(), &log, &db, 4096), KVS_ECORRUPT);
  EXPECT_NE(std::string(kvs_errmsg()).find(seg), std::string::npos) << kvs_errmsg();

  // Restored, everything is back.
  kvstest::WriteFile(seg, orig);
  ASSERT_EQ(OpenWithLog(d.path(), &log, &db, 4096), KVS_OK) << kvs_errmsg();
  for (int i = 0; i < 300; i++) ASSERT_EQ(Get(db, "k" + std::to_string(i)), Val(i));
  ASSERT_EQ(kvs_close(db), KVS_OK);
}

TEST(Recovery, TornHeaderOfNewSegmentIsRewritten) {
  TempDir d;
  MakeStore(d.path(), 3);
  // A crash right after creating segment 2 left part of its header.
  std::string hdr = kvstest::ReadFile(kvstest::Segments(d.path())[0]).substr(0, 5);
  kvstest::WriteFile(d.file("0000000002.seg"), hdr);
  Log log;
  kvs* db;
  // Segment 1 has no footer, so it is damaged, not sealed: the open fails.
  EXPECT_EQ(OpenWithLog(d.path(), &log, &db), KVS_ECORRUPT);
  // With only the torn new file, the open repairs it.
  TempDir d2;
  kvstest::WriteFile(d2.file("0000000001.seg"), hdr);
  ASSERT_EQ(OpenWithLog(d2.path(), &log, &db), KVS_OK) << kvs_errmsg();
  EXPECT_NE(log.text.find("incomplete header"), std::string::npos) << log.text;
  Set(db, "a", "b");
  ASSERT_EQ(kvs_close(db), KVS_OK);
  ASSERT_EQ(OpenWithLog(d2.path(), &log, &db), KVS_OK) << kvs_errmsg();
  EXPECT_EQ(Get(db, "a"), "b");
  ASSERT_EQ(kvs_close(db), KVS_OK);
}

TEST(Recovery, NewestWriteWinsBySequenceNotFileOrder) {
  // Copy old records of "k" and "gone" into a later, higher-numbered segment
  // (as compaction does): the newer writes in the older file must still win.
  TempDir d;
  kvs* db;
  Log log;
  const std::string filler(1000, 'f');
  int nfill = 0;
  auto fill_until = [&](size_t nsegs) {
    while (kvstest::Segments(d.path()).size() < nsegs) Set(db, "f" + std::to_string(nfill++), filler);
  };
  ASSERT_EQ(OpenWithLog(d.path(), &log, &db, 4096), KVS_OK);
  Set(db, "k", "old");
  Set(db, "gone", "x");
  fill_until(2);  // seals segment 1
  Set(db, "k", "new");
  ASSERT_EQ(kvs_remove(db, "gone", 4), KVS_OK);
  fill_until(3);  // seals segment 2
  ASSERT_EQ(kvs_close(db), KVS_OK);
  auto segs = kvstest::Segments(d.path());
  ASSERT_EQ(segs.size(), 3u);
  unlink(segs[2].c_str());  // the active segment: fillers only; its name is the highest

  std::string one = kvstest::ReadFile(segs[0]);
  auto recs = Records(segs[0]);
  ASSERT_GE(recs.size(), 2u);
  std::string copy = one.substr(0, 12) + one.substr(recs[0].offset, recs[0].length) +
                     one.substr(recs[1].offset, recs[1].length);
  kvstest::WriteFile(segs[2], copy);

  ASSERT_EQ(OpenWithLog(d.path(), &log, &db, 4096), KVS_OK) << kvs_errmsg();
  EXPECT_EQ(Get(db, "k"), "new");
  EXPECT_EQ(Get(db, "gone"), "<not found>") << "an older set must not resurrect a removed key";
  Set(db, "k", "newer");
  ASSERT_EQ(kvs_close(db), KVS_OK);
  ASSERT_EQ(OpenWithLog(d.path(), &log, &db, 4096), KVS_OK) << kvs_errmsg();
  EXPECT_EQ(Get(db, "k"), "newer") << "sequence numbers continue after the highest seen";
  ASSERT_EQ(kvs_close(db), KVS_OK);
}

// Segment numbers are 32-bit (ten digits on disk).  When none is left, the
// rotation that needs one fails the handle cleanly: no number wraps round
// to below the existing ones (which would leave a footer-less segment that
// is not the newest, and a store that no longer opens), and every
// acknowledged write is still there after a reopen.
TEST(Recovery, SegmentNumbersRunningOutFailCleanly) {
  TempDir d;
  kvs* db;
  Log log;
  ASSERT_EQ(OpenWithLog(d.path(), &log, &db, 4096), KVS_OK);
  ASSERT_EQ(kvs_set(db, "first", 5, "1", 1), KVS_OK);
  ASSERT_EQ(kvs_close(db), KVS_OK);
  auto segs = kvstest::Segments(d.path());
  ASSERT_EQ(segs.size(), 1u);
  ASSERT_EQ(rename(segs[0].c_str(), d.file("4294967294.seg").c_str()), 0);  // the last number but one
  ASSERT_EQ(OpenWithLog(d.path(), &log, &db, 4096), KVS_OK) << kvs_errmsg();
  const std::string filler(500, 'f');
  int acked = 0, rc = KVS_OK;
  for (; acked < 100; acked++) {
    rc = kvs_set(db, ("f" + std::to_string(acked)).c_str(), ("f" + std::to_string(acked)).size(), filler.data(),
                 filler.size());
    if (rc != KVS_OK) break;
  }
  EXPECT_NE(rc, KVS_OK) << "a 4 KiB segment cannot take 100 records of 500 bytes";
  EXPECT_NE(log.text.find("no segment number left"), std::string::npos) << log.text;
  kvs_close(db);
  ASSERT_EQ(OpenWithLog(d.path(), &log, &db, 4096), KVS_OK) << kvs_errmsg();
  EXPECT_EQ(Get(db, "first"), "1");
  for (int i = 0; i < acked; i++) EXPECT_EQ(Get(db, "f" + std::to_string(i)), filler) << i;
  ASSERT_EQ(kvs_close(db), KVS_OK);
}

// ---- crashes -----------------------------------------------------------------------

struct Acked {
  std::set<std::string> set, removed;
};

// crash-child removes every key whose index (the number after the last '-')
// is 2 mod 3, right after setting it.
bool ChildRemoves(const std::string& key) { return std::stol(key.substr(key.rfind('-') + 1)) % 3 == 2; }

// Start crash-child, let it run for `ms` milliseconds, SIGKILL it, and
// collect what it acknowledged.
Acked RunAndKill(const std::string& dir, const std::string& prefix, const char* policy, int threads, int ms) {
  std::string out = kvstest::RunAndKill(
      {std::string(KVS_TEST_DIR) + "/crash-child", dir, prefix, policy, std::to_string(threads)}, "O open\n", ms);
  Acked a;
  size_t pos = 0;
  while (pos < out.size()) {
    size_t nl = out.find('\n', pos);
    if (nl == std::string::npos) break;  // cannot happen: one write() per line
    std::string line = out.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.size() < 3) continue;
    std::string key = line.substr(2);
    if (line[0] == 'S') a.set.insert(key);
    if (line[0] == 'R') a.removed.insert(key);
  }
  return a;
}

void CrashRounds(const char* policy, int threads, int rounds) {
  TempDir d;
  std::mt19937 rng(12345 + threads);
  // key -> 1 present, 0 absent, 2 either (a remove that was in flight)
  std::map<std::string, int> expect;
  size_t total = 0;
  for (int round = 0; round < rounds; round++) {
    SCOPED_TRACE(std::string(policy) + " round " + std::to_string(round));
    int ms = 20 + static_cast<int>(rng() % 200);
    Acked a = RunAndKill(d.path(), "r" + std::to_string(round), policy, threads, ms);
    for (auto& k : a.set) expect[k] = ChildRemoves(k) ? 2 : 1;
    for (auto& k : a.removed) expect[k] = 0;
    total += a.set.size();
    Log log;
    kvs* db = nullptr;
    ASSERT_EQ(OpenWithLog(d.path(), &log, &db), KVS_OK) << kvs_errmsg();
    size_t missing = 0, resurrected = 0;
    for (auto& [k, present] : expect) {
      std::string v = Get(db, k);
      bool ok_present = v == "v-" + k, ok_absent = v == "<not found>";
      if (present == 1 && !ok_present && missing++ < 3) ADD_FAILURE() << "lost " << k << ": " << v;
      if (present == 0 && !ok_absent) resurrected++;
      if (present == 2 && !ok_present && !ok_absent) missing++;
    }
    EXPECT_EQ(missing, 0u) << "acknowledged writes lost";
    EXPECT_EQ(resurrected, 0u) << "acknowledged removes undone";
    ASSERT_EQ(kvs_close(db), KVS_OK);
  }
  EXPECT_GT(total, 0u);
}

int Rounds(int dflt) {
  const char* e = getenv("KVS_STRESS_ROUNDS");
  return e ? atoi(e) : dflt;
}

TEST(Crash, KillDuringWritesEverysec) { CrashRounds("everysec", 1, Rounds(6)); }
TEST(Crash, KillDuringWritesAlways4Threads) { CrashRounds("always", 4, Rounds(6)); }
TEST(Crash, KillDuringWritesNever4Threads) { CrashRounds("never", 4, Rounds(6)); }

// Defect 8: recovery held the RCU read lock across the whole open (disk
// I/O, fdatasync and all), so another store of the same process could not
// finish a grace period meanwhile: its kvs_close (which waits for one) hung
// until the slow open was over.  The open of store B is slowed down here
// (a test hook sleeps between its segments); closing store A must not wait
// for it.
TEST(Recovery, SlowOpenDoesNotHoldUpAnotherStoresClose) {
  TempDir a, b;
  {
    kvs* db = nullptr;
    ASSERT_EQ(OpenWithLog(b.path(), nullptr, &db, 4096), KVS_OK) << kvs_errmsg();
    for (int i = 0; i < 600; i++) Set(db, "k" + std::to_string(i), Val(i));
    kvs_store_stats st{};
    ASSERT_EQ(kvs_stats(db, &st), KVS_OK);
    ASSERT_GE(st.segments, 6u);
    ASSERT_EQ(kvs_close(db), KVS_OK);
  }
  kvs* dba = nullptr;
  ASSERT_EQ(OpenWithLog(a.path(), nullptr, &dba), KVS_OK) << kvs_errmsg();
  // Overwrites: entries retired, freed after a grace period.
  for (int i = 0; i < 3000; i++) Set(dba, "a" + std::to_string(i % 100), Val(i));

  const unsigned delay_us = 400000;  // B's open: >= 5 x 0.4 s
  kvs__hook_recovery_delay(delay_us);
  std::atomic<bool> b_open{false};
  kvs* dbb = nullptr;
  int b_rc = -1;
  std::thread opener([&] {
    b_rc = OpenWithLog(b.path(), nullptr, &dbb, 4096);
    b_open = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(150));  // B is recovering
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(kvs_close(dba), KVS_OK);
  auto took = std::chrono::steady_clock::now() - t0;
  bool b_was_open = b_open.load();
  opener.join();
  kvs__hook_recovery_delay(0);
  EXPECT_FALSE(b_was_open) << "A's close waited for B's whole open";
  EXPECT_LT(took, std::chrono::milliseconds(1000));
  ASSERT_EQ(b_rc, KVS_OK) << kvs_errmsg();
  for (int i = 0; i < 600; i++) EXPECT_EQ(Get(dbb, "k" + std::to_string(i)), Val(i));
  ASSERT_EQ(kvs_close(dbb), KVS_OK);
}


// An open inserts with a helper thread when the machine has a second CPU
// (replay.c): it must build the same store as the opener alone, from hints
// and from scans, with overwrites, removes, expiry times, atomic batches and
// a FLUSH spread over many segments, and report the same counts.
struct StoreState {
  std::map<std::string, std::pair<std::string, int64_t>> keys;
  uint64_t live_keys = 0, live_bytes = 0, dead_bytes = 0;
};

StoreState ReadState(const std::string& dir, unsigned threads, const std::set<std::string>& universe) {
  StoreState st;
  kvs__hook_replay_threads(threads);
  kvs* db = nullptr;
  kvs_options o{};
  o.segment_size = 16384;
  o.no_auto_compact = 1;
  int rc = kvs_open(dir.c_str(), &o, &db);
  kvs__hook_replay_threads(0);
  EXPECT_EQ(rc, KVS_OK) << kvs_errmsg();
  if (rc != KVS_OK) return st;
  for (const auto& k : universe) {
    void* v = nullptr;
    size_t n = 0;
    int64_t exp = 0;
    rc = kvs_lookup(db, k.data(), k.size(), &v, &n, &exp);
    if (rc == KVS_OK) {
      st.keys[k] = {std::string(static_cast<char*>(v), n), exp};
      kvs_free(v);
    } else {
      EXPECT_EQ(rc, KVS_ENOTFOUND) << k << " threads " << threads << ": " << kvs_errmsg();
    }
  }
  kvs_store_stats s{};
  EXPECT_EQ(kvs_stats(db, &s), KVS_OK);
  st.live_keys = s.live_keys;
  st.live_bytes = s.live_bytes;
  st.dead_bytes = s.dead_bytes;
  EXPECT_EQ(kvs_close(db), KVS_OK);
  return st;
}

void TwoThreadOpen(bool flush) {
  TempDir d;
  std::map<std::string, std::pair<std::string, int64_t>> model;
  std::set<std::string> universe;
  {
    kvs* db = nullptr;
    kvs_options o{};
    o.segment_size = 16384;
    o.no_auto_compact = 1;
    ASSERT_EQ(kvs_open(d.path().c_str(), &o, &db), KVS_OK) << kvs_errmsg();
    std::mt19937 rng(15);
    const int64_t later = kvs_now_ms() + 3600 * 1000;
    for (int i = 0; i < 12000; i++) {
      std::string k = "key" + std::to_string(rng() % 2500);
      universe.insert(k);
      unsigned what = rng() % 100;
      if (flush && i == 6000) {
        kvs_op f{};
        f.type = KVS_OP_FLUSH;
        ASSERT_EQ(kvs_write_batch(db, &f, 1), KVS_OK) << kvs_errmsg();
        model.clear();
      } else if (what < 55) {
        std::string v = Val(i).substr(0, 5 + rng() % 40);
        Set(db, k, v);
        model[k] = {v, 0};
      } else if (what < 70) {
        int rc = kvs_remove(db, k.data(), k.size());
        ASSERT_TRUE(rc == KVS_OK || rc == KVS_ENOTFOUND) << kvs_errmsg();
        model.erase(k);
      } else if (what < 85) {
        kvs_op op{};
        std::string v = "ttl" + std::to_string(i);
        op.type = KVS_OP_SET;
        op.key = k.data();
        op.klen = k.size();
        op.val = v.data();
        op.vlen = v.size();
        op.expire_ms = later + i;
        ASSERT_EQ(kvs_write_batch(db, &op, 1), KVS_OK) << kvs_errmsg();
        model[k] = {v, later + i};
      } else {
        std::string ks[3], vs[3];
        kvs_op ops[3]{};
        for (int j = 0; j < 3; j++) {
          ks[j] = "key" + std::to_string(rng() % 2500);
          vs[j] = "atomic" + std::to_string(i) + "-" + std::to_string(j);
          universe.insert(ks[j]);
          ops[j].type = KVS_OP_SET;
          ops[j].key = ks[j].data();
          ops[j].klen = ks[j].size();
          ops[j].val = vs[j].data();
          ops[j].vlen = vs[j].size();
        }
        ASSERT_EQ(kvs_write_batch_flags(db, ops, 3, KVS_BATCH_ATOMIC), KVS_OK) << kvs_errmsg();
        for (int j = 0; j < 3; j++) model[ks[j]] = {vs[j], 0};
      }
    }
    kvs_store_stats s{};
    ASSERT_EQ(kvs_stats(db, &s), KVS_OK);
    ASSERT_GE(s.segments, 20u);
    ASSERT_EQ(kvs_close(db), KVS_OK);
  }
  StoreState one = ReadState(d.path(), 1, universe);
  StoreState two = ReadState(d.path(), 2, universe);
  EXPECT_TRUE(one.keys == model) << one.keys.size() << " keys, " << model.size() << " expected";
  EXPECT_TRUE(two.keys == model) << two.keys.size() << " keys, " << model.size() << " expected";
  EXPECT_EQ(two.live_keys, model.size());
  EXPECT_EQ(one.live_keys, two.live_keys);
  EXPECT_EQ(one.live_bytes, two.live_bytes);
  EXPECT_EQ(one.dead_bytes, two.dead_bytes);
  // Without the hints: every segment scanned.
  size_t removed = 0;
  DIR* dir = opendir(d.path().c_str());
  ASSERT_NE(dir, nullptr);
  while (struct dirent* de = readdir(dir)) {
    std::string name = de->d_name;
    if (name.size() > 5 && name.substr(name.size() - 5) == ".hint") {
      EXPECT_EQ(unlink((d.path() + "/" + name).c_str()), 0);
      removed++;
    }
  }
  closedir(dir);
  EXPECT_GE(removed, 10u);
  StoreState scanned = ReadState(d.path(), 2, universe);
  EXPECT_TRUE(scanned.keys == model);
  EXPECT_EQ(scanned.live_bytes, one.live_bytes);
  EXPECT_EQ(scanned.dead_bytes, one.dead_bytes);
}

TEST(Recovery, TwoThreadOpenBuildsWhatOneThreadDoes) {
  TwoThreadOpen(true);
  TwoThreadOpen(false);  // no FLUSH: the tombstone count decides the last walk
}

// One kvs_write_batch of n sets, keys[i] = vals[i].
void SetBatch(kvs* db, const std::string* keys, const std::string* vals, size_t n) {
  std::vector<kvs_op> ops(n);
  for (size_t i = 0; i < n; i++) {
    ops[i].type = KVS_OP_SET;
    ops[i].key = keys[i].data();
    ops[i].klen = keys[i].size();
    ops[i].val = vals[i].data();
    ops[i].vlen = vals[i].size();
  }
  ASSERT_EQ(kvs_write_batch(db, ops.data(), n), KVS_OK) << kvs_errmsg();
}

// Bytes malloc has handed out and not had back (all arenas), and the index's
// entry slabs (mapped, not malloc'd).
size_t HeapInUse() {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd + size_t(kvs__hook_index_slab_bytes());
}

// The entries the helper replaces or drops go back to the opener as it
// goes (replay.c), so an open of a log full of overwrites holds memory for
// its live keys, not for every record: 1000 keys written 300 times each.
TEST(Recovery, TwoThreadOpenOfOverwritesHoldsOnlyTheLiveKeys) {
  TempDir d;
  kvs_options o{};
  o.segment_size = 1 << 20;
  o.no_auto_compact = 1;
  {
    kvs* db = nullptr;
    ASSERT_EQ(kvs_open(d.path().c_str(), &o, &db), KVS_OK) << kvs_errmsg();
    std::vector<std::string> keys;
    for (int i = 0; i < 1000; i++) keys.push_back("key" + std::to_string(i));
    for (int round = 0; round < 300; round++) {
      std::string v = "v" + std::to_string(round);
      std::vector<std::string> vals(1000, v);
      ASSERT_NO_FATAL_FAILURE(SetBatch(db, keys.data(), vals.data(), 1000));
    }
    ASSERT_EQ(kvs_close(db), KVS_OK);
  }
  for (unsigned threads : {1u, 2u}) {
    kvs__hook_replay_threads(threads);
    size_t before = HeapInUse();
    kvs* db = nullptr;
    int rc = kvs_open(d.path().c_str(), &o, &db);
    size_t after = HeapInUse();
    kvs__hook_replay_threads(0);
    ASSERT_EQ(rc, KVS_OK) << kvs_errmsg();
    kvs_store_stats st{};
    ASSERT_EQ(kvs_stats(db, &st), KVS_OK);
    EXPECT_EQ(st.live_keys, 1000u);
    EXPECT_EQ(Get(db, "key7"), "v299");
    // 300,000 records of about 56 bytes of entry each would be 16 MB.
    EXPECT_LT(after - before, size_t(6) << 20) << threads << " threads";
    ASSERT_EQ(kvs_close(db), KVS_OK);
  }
}

// A helper that fails (here: the older record of a key it must compare
// with is not a record any more) stops the open with the error a
// one-thread open reports, even when the opener meets other damage after
// that record before it learns of the failure.
TEST(Recovery, TwoThreadOpenReportsTheFirstErrorAsOneThreadDoes) {
  TempDir d;
  kvs_options o{};
  o.segment_size = 4096;
  o.no_auto_compact = 1;
  {
    kvs* db = nullptr;
    ASSERT_EQ(kvs_open(d.path().c_str(), &o, &db), KVS_OK) << kvs_errmsg();
    for (int i = 0; i < 800; i++) Set(db, "k" + std::to_string(i % 50), Val(i));
    ASSERT_EQ(kvs_close(db), KVS_OK);
  }
  // The first segment's first record (k0, hinted: the open checks it only
  // when a newer record of k0 is compared with it), and a record in the
  // middle of a later sealed segment (hint removed, so it is scanned).
  std::vector<std::string> segs;  // the segment files, oldest first
  {
    DIR* dir = opendir(d.path().c_str());
    ASSERT_NE(dir, nullptr);
    while (struct dirent* de = readdir(dir)) {
      std::string name = de->d_name;
      if (name.size() == 14 && name.substr(10) == ".seg") segs.push_back(d.path() + "/" + name.substr(0, 10));
    }
    closedir(dir);
    std::sort(segs.begin(), segs.end());
  }
  ASSERT_GE(segs.size(), 8u);
  struct stat sb;
  {
    int fd = open((segs[0] + ".seg").c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    unsigned char junk = 0xff;
    // Past the segment header: the first record's array head.
    off_t first = 0;
    unsigned char buf[64];
    ASSERT_EQ(pread(fd, buf, sizeof buf, 0), ssize_t(sizeof buf));
    for (off_t i = 0; i < 64; i++)
      if (buf[i] == 0x85) {  // a 5-item array: a SET record
        first = i;
        break;
      }
    ASSERT_GT(first, 0);
    ASSERT_EQ(pwrite(fd, &junk, 1, first), 1);
    close(fd);
  }
  const std::string& later = segs[segs.size() / 2];
  ASSERT_EQ(unlink((later + ".hint").c_str()), 0) << later;
  {
    int fd = open((later + ".seg").c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(fstat(fd, &sb), 0);
    unsigned char junk[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    ASSERT_EQ(pwrite(fd, junk, sizeof junk, sb.st_size / 2), ssize_t(sizeof junk));
    close(fd);
  }
  std::string msg[2];
  for (unsigned threads : {1u, 2u}) {
    kvs__hook_replay_threads(threads);
    kvs* db = nullptr;
    int rc = kvs_open(d.path().c_str(), &o, &db);
    kvs__hook_replay_threads(0);
    EXPECT_EQ(rc, KVS_ECORRUPT) << threads << " threads";
    msg[threads - 1] = kvs_errmsg();
    if (rc == KVS_OK) kvs_close(db);
  }
  EXPECT_NE(msg[0].find(segs[0] + ".seg"), std::string::npos) << msg[0];
  EXPECT_EQ(msg[1], msg[0]);
}

// Fill a new store in dir with n keys PREFIX0.. (each its own value), in
// batches of 1000.
void LoadKeys(const std::string& dir, const kvs_options& o, const std::string& prefix, int n) {
  kvs* db = nullptr;
  ASSERT_EQ(kvs_open(dir.c_str(), &o, &db), KVS_OK) << kvs_errmsg();
  std::vector<std::string> keys;
  for (int i = 0; i < n; i++) keys.push_back(prefix + std::to_string(i));
  for (int b = 0; b < n / 1000; b++)
    ASSERT_NO_FATAL_FAILURE(SetBatch(db, &keys[b * 1000], &keys[b * 1000], 1000));
  ASSERT_EQ(kvs_close(db), KVS_OK);
}

// Remove every hint file of the store in dir.
void RemoveHints(const std::string& dir) {
  DIR* dp = opendir(dir.c_str());
  ASSERT_NE(dp, nullptr);
  while (struct dirent* de = readdir(dp)) {
    std::string name = de->d_name;
    if (name.size() > 5 && name.substr(name.size() - 5) == ".hint") unlink((dir + "/" + name).c_str());
  }
  closedir(dp);
}

// An open with hint files makes the table at its final size before the
// first insert (recovery.c, presize_index): one size change, not one per
// doubling as the keys come in.  Each doubling of a filled table walks the
// keys (index.c), the dearer part of a large open.
TEST(Recovery, OpenSizesTheIndexOnceFromTheHints) {
  TempDir d;
  kvs_options o{};
  o.segment_size = 1 << 20;
  const int kKeys = 140000;
  ASSERT_NO_FATAL_FAILURE(LoadKeys(d.path(), o, "size", kKeys));
  for (unsigned threads : {1u, 2u}) {
    kvs__hook_replay_threads(threads);
    unsigned long before = kvs__hook_index_resizes();
    kvs* db = nullptr;
    int rc = kvs_open(d.path().c_str(), &o, &db);
    unsigned long resizes = kvs__hook_index_resizes() - before;
    kvs__hook_replay_threads(0);
    ASSERT_EQ(rc, KVS_OK) << kvs_errmsg();
    EXPECT_EQ(resizes, 1u) << threads << " threads";
    // Two keys a bucket at most: 131,072 buckets for 140,000 keys.
    EXPECT_EQ(kvs__hook_index_buckets(), 131072u) << threads << " threads";
    kvs_store_stats st{};
    ASSERT_EQ(kvs_stats(db, &st), KVS_OK);
    EXPECT_EQ(st.live_keys, uint64_t(kKeys));
    for (int i = 0; i < kKeys; i += 991) {
      std::string k = "size" + std::to_string(i);
      ASSERT_EQ(Get(db, k), k) << threads << " threads";
    }
    ASSERT_EQ(kvs_close(db), KVS_OK);
  }
}

// The count the estimate reads from a hint is not checked yet (the file's
// CRC is checked when it is loaded): a damaged one is left out when more
// records than its segment could hold (8 bytes the smallest) or more
// entries than its hint file could (7 bytes), so it cannot make the open
// build a huge table.  Each bound is the tighter one for one of two
// stores: empty values (entries longer than records), and 40-byte ones;
// other segments keep their hints, for the estimate.
void CheckDamagedHintCount(size_t vlen, int kKeys, uint32_t count, unsigned long buckets) {
  TempDir d;
  kvs_options o{};
  o.segment_size = 4 << 20;  // over 65,536 records in each: a 4-byte count
  {
    kvs* db = nullptr;
    ASSERT_EQ(kvs_open(d.path().c_str(), &o, &db), KVS_OK) << kvs_errmsg();
    std::vector<std::string> keys, vals(1000, std::string(vlen, 'v'));
    char buf[16];
    for (int i = 0; i < kKeys; i++) {
      snprintf(buf, sizeof buf, "c%06d", i);
      keys.push_back(buf);
    }
    for (int b = 0; b < kKeys / 1000; b++)
      ASSERT_NO_FATAL_FAILURE(SetBatch(db, &keys[b * 1000], vals.data(), 1000));
    ASSERT_EQ(kvs_close(db), KVS_OK);
  }
  // The first hint's meta: header (12 bytes), a 3-item array head (0x83),
  // then the record count, a 4-byte CBOR uint (0x1a).
  std::string hint = d.path() + "/0000000001.hint", seg = d.path() + "/0000000001.seg";
  struct stat hs, ss;
  ASSERT_EQ(stat(hint.c_str(), &hs), 0);
  ASSERT_EQ(stat(seg.c_str(), &ss), 0);
  int fd = open(hint.c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << hint;
  unsigned char head[18];
  ASSERT_EQ(pread(fd, head, sizeof head, 0), ssize_t(sizeof head));
  ASSERT_EQ(head[12], 0x83);
  ASSERT_EQ(head[13], 0x1a);
  uint32_t real = uint32_t(head[14]) << 24 | uint32_t(head[15]) << 16 | uint32_t(head[16]) << 8 | head[17];
  unsigned char v[4] = {uint8_t(count >> 24), uint8_t(count >> 16), uint8_t(count >> 8), uint8_t(count)};
  ASSERT_EQ(pwrite(fd, v, 4, 14), 4);
  close(fd);
  uint64_t seg_bound = (uint64_t(ss.st_size) - 12) / 8, hint_bound = (uint64_t(hs.st_size) - 12) / 7;
  // The case is what the caller meant: exactly one bound refuses the count.
  EXPECT_TRUE((count > seg_bound) != (count > hint_bound))
      << "count " << count << " segment bound " << seg_bound << " hint bound " << hint_bound << " real " << real;
  unsigned long before = kvs__hook_index_resizes();
  kvs* db = nullptr;
  ASSERT_EQ(kvs_open(d.path().c_str(), &o, &db), KVS_OK) << kvs_errmsg();
  // One size change: the estimate without the damaged count (with it, a
  // table of at least twice the size, then shrunk: two).
  EXPECT_EQ(kvs__hook_index_resizes() - before, 1u) << kvs__hook_index_buckets();
  EXPECT_EQ(kvs__hook_index_buckets(), buckets);
  kvs_store_stats st{};
  ASSERT_EQ(kvs_stats(db, &st), KVS_OK);
  EXPECT_EQ(st.live_keys, uint64_t(kKeys));
  char last[16];
  snprintf(last, sizeof last, "c%06d", kKeys - 1);
  EXPECT_EQ(Get(db, last), std::string(vlen, 'v'));
  ASSERT_EQ(kvs_close(db), KVS_OK);
}

TEST(Recovery, OpenIgnoresAHintCountItsSegmentCannotHold) {
  CheckDamagedHintCount(0, 600000, 600000, 524288);
}

TEST(Recovery, OpenIgnoresAHintCountItsHintFileCannotHold) {
  CheckDamagedHintCount(40, 300000, 400000, 262144);
}

// The hints count records, live or not: a log of overwrites makes the
// estimate far too big, and the open shrinks the table back to the size its
// keys need (the index's bytes per key do not change).
TEST(Recovery, OpenShrinksAnIndexSizedForDeadRecords) {
  TempDir d;
  kvs_options o{};
  o.segment_size = 1 << 20;
  o.no_auto_compact = 1;
  {
    kvs* db = nullptr;
    ASSERT_EQ(kvs_open(d.path().c_str(), &o, &db), KVS_OK) << kvs_errmsg();
    std::vector<std::string> keys;
    for (int i = 0; i < 3000; i++) keys.push_back("key" + std::to_string(i));
    for (int round = 0; round < 50; round++) {
      std::vector<std::string> vals(3000, "v" + std::to_string(round));
      ASSERT_NO_FATAL_FAILURE(SetBatch(db, keys.data(), vals.data(), 3000));
    }
    ASSERT_EQ(kvs_close(db), KVS_OK);
  }
  for (unsigned threads : {1u, 2u}) {
    kvs__hook_replay_threads(threads);
    unsigned long before = kvs__hook_index_resizes();
    kvs* db = nullptr;
    int rc = kvs_open(d.path().c_str(), &o, &db);
    unsigned long resizes = kvs__hook_index_resizes() - before;
    kvs__hook_replay_threads(0);
    ASSERT_EQ(rc, KVS_OK) << kvs_errmsg();
    // Sized for the 150,000 records, then fitted to the 3,000 keys.
    EXPECT_EQ(resizes, 2u) << threads << " threads";
    EXPECT_EQ(kvs__hook_index_buckets(), 2048u) << threads << " threads";
    EXPECT_EQ(Get(db, "key2999"), "v49");
    ASSERT_EQ(kvs_close(db), KVS_OK);
  }
}

// Past 65,536 keys the table grows during the open: with a helper, the
// helper grows it between its inserts.  Without hints, so that the open
// has no count to make the table at its final size from (and must grow it:
// more than one size change).
TEST(Recovery, TwoThreadOpenGrowsTheTable) {
  TempDir d;
  kvs_options o{};
  o.segment_size = 4 << 20;
  const int kKeys = 140000;
  ASSERT_NO_FATAL_FAILURE(LoadKeys(d.path(), o, "grow", kKeys));
  for (unsigned threads : {1u, 2u}) {
    ASSERT_NO_FATAL_FAILURE(RemoveHints(d.path()));  // an open writes them again
    kvs__hook_replay_threads(threads);
    unsigned long before = kvs__hook_index_resizes();
    kvs* db = nullptr;
    int rc = kvs_open(d.path().c_str(), &o, &db);
    unsigned long resizes = kvs__hook_index_resizes() - before;
    kvs__hook_replay_threads(0);
    ASSERT_EQ(rc, KVS_OK) << kvs_errmsg();
    EXPECT_GT(resizes, 1u) << threads << " threads";
    EXPECT_EQ(kvs__hook_index_buckets(), 131072u) << threads << " threads";
    kvs_store_stats st{};
    ASSERT_EQ(kvs_stats(db, &st), KVS_OK);
    EXPECT_EQ(st.live_keys, uint64_t(kKeys)) << threads << " threads";
    for (int i = 0; i < kKeys; i += 997) {
      std::string k = "grow" + std::to_string(i);
      ASSERT_EQ(Get(db, k), k) << threads << " threads";
    }
    ASSERT_EQ(kvs_close(db), KVS_OK);
  }
}

}  // namespace

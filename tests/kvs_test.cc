// kvs_test.cc - the engine through its public API: talent-plan's KvStore
// behaviours, limits, binary data, batches, segment rotation, concurrency,
// injected I/O failures, and the lock and engine marker of the directory.
#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "kvs_fault.h"
#include "kvs_iosim.h"
#include "test_util.h"

using kvstest::TempDir;

namespace {

// Collects what the engine logs.
struct LogSink {
  std::mutex mu;
  std::vector<std::string> lines;
  static void Hook(void* ctx, kvs_log_level, const char* msg) {
    auto* s = static_cast<LogSink*>(ctx);
    std::lock_guard<std::mutex> g(s->mu);
    s->lines.push_back(msg);
  }
  std::string All() {
    std::lock_guard<std::mutex> g(mu);
    std::string a;
    for (auto& l : lines) a += l + "\n";
    return a;
  }
};

// One batch operation (the fields not named stay zero).
kvs_op Op(kvs_op_type type, const void* key, size_t klen, const void* val = nullptr, size_t vlen = 0) {
  kvs_op op{};
  op.type = type;
  op.key = key;
  op.klen = klen;
  op.val = val;
  op.vlen = vlen;
  op.result = 99;  // must be overwritten
  return op;
}

class Store {
 public:
  explicit Store(const std::string& dir, kvs_options opt = {}) : dir_(dir), opt_(opt) { Open(); }
  ~Store() {
    if (db_) kvs_close(db_);
  }
  void Open() {
    opt_.log = LogSink::Hook;
    opt_.log_ctx = &log;
    int rc = kvs_open(dir_.c_str(), &opt_, &db_);
    ASSERT_EQ(rc, KVS_OK) << kvs_errmsg();
  }
  int Close() {
    int rc = kvs_close(db_);
    db_ = nullptr;
    return rc;
  }
  void Reopen() {
    ASSERT_EQ(Close(), KVS_OK);
    Open();
  }
  int Set(const std::string& k, const std::string& v) {
    return kvs_set(db_, k.data(), k.size(), v.data(), v.size());
  }
  int Remove(const std::string& k) { return kvs_remove(db_, k.data(), k.size()); }
  // The value, or "<not found>" / "<error N>".
  std::string Get(const std::string& k) {
    void* v = nullptr;
    size_t n = 0;
    int rc = kvs_get(db_, k.data(), k.size(), &v, &n);
    if (rc == KVS_ENOTFOUND) return "<not found>";
    if (rc != KVS_OK) return "<error " + std::to_string(rc) + ">";
    std::string s(static_cast<char*>(v), n);
    kvs_free(v);
    return s;
  }
  kvs_store_stats Stats() {
    kvs_store_stats st{};
    EXPECT_EQ(kvs_stats(db_, &st), KVS_OK);
    return st;
  }
  kvs* db() { return db_; }
  LogSink log;

 private:
  std::string dir_;
  kvs_options opt_;
  kvs* db_ = nullptr;
};

// The engine-independent behaviours run against both engines.
class AllEngines : public ::testing::TestWithParam<kvs_engine> {
 protected:
  kvs_options Opts() {
    kvs_options o{};
    o.engine = GetParam();
    return o;
  }
  bool Lmdb() const { return GetParam() == KVS_ENGINE_LMDB; }
  kvs_options opts_ = [this] {
    kvs_options o{};
    o.engine = GetParam();
    return o;
  }();
};
INSTANTIATE_TEST_SUITE_P(, AllEngines, ::testing::Values(KVS_ENGINE_KVS, KVS_ENGINE_LMDB),
                         [](const ::testing::TestParamInfo<kvs_engine>& i) {
                           return std::string(i.param == KVS_ENGINE_LMDB ? "lmdb" : "kvs");
                         });

// ---- talent-plan's KvStore tests -------------------------------------------

TEST_P(AllEngines, GetStoredValue) {
  TempDir d;
  Store s(d.path(), Opts());
  ASSERT_EQ(s.Set("key1", "value1"), KVS_OK);
  ASSERT_EQ(s.Set("key2", "value2"), KVS_OK);
  EXPECT_EQ(s.Get("key1"), "value1");
  EXPECT_EQ(s.Get("key2"), "value2");
  s.Reopen();
  EXPECT_EQ(s.Get("key1"), "value1");
  EXPECT_EQ(s.Get("key2"), "value2");
}

TEST_P(AllEngines, OverwriteValue) {
  TempDir d;
  Store s(d.path(), Opts());
  ASSERT_EQ(s.Set("key1", "value1"), KVS_OK);
  EXPECT_EQ(s.Get("key1"), "value1");
  ASSERT_EQ(s.Set("key1", "value2"), KVS_OK);
  EXPECT_EQ(s.Get("key1"), "value2");
  s.Reopen();
  EXPECT_EQ(s.Get("key1"), "value2");
  ASSERT_EQ(s.Set("key1", "value3"), KVS_OK);
  EXPECT_EQ(s.Get("key1"), "value3");
}

TEST_P(AllEngines, GetNonExistentValue) {
  TempDir d;
  Store s(d.path(), Opts());
  ASSERT_EQ(s.Set("key1", "value1"), KVS_OK);
  EXPECT_EQ(s.Get("key2"), "<not found>");
  s.Reopen();
  EXPECT_EQ(s.Get("key2"), "<not found>");
}

TEST_P(AllEngines, RemoveNonExistentKey) {
  TempDir d;
  Store s(d.path(), Opts());
  EXPECT_EQ(s.Remove("key1"), KVS_ENOTFOUND);
  EXPECT_EQ(s.Stats().writes, 0u) << "a failed remove must write nothing";
}

TEST_P(AllEngines, RemoveKey) {
  TempDir d;
  Store s(d.path(), Opts());
  ASSERT_EQ(s.Set("key1", "value1"), KVS_OK);
  ASSERT_EQ(s.Remove("key1"), KVS_OK);
  EXPECT_EQ(s.Get("key1"), "<not found>");
  EXPECT_EQ(s.Remove("key1"), KVS_ENOTFOUND);
  s.Reopen();
  EXPECT_EQ(s.Get("key1"), "<not found>");
  EXPECT_EQ(s.Remove("key1"), KVS_ENOTFOUND);
}

TEST_P(AllEngines, ConcurrentSet1000Threads) {
  TempDir d;
  Store s(d.path(), Opts());
  std::vector<std::thread> ts;
  std::atomic<int> failures{0};
  for (int i = 0; i < 1000; i++)
    ts.emplace_back([&, i] {
      if (s.Set("key" + std::to_string(i), "value" + std::to_string(i)) != KVS_OK) failures++;
    });
  for (auto& t : ts) t.join();
  ASSERT_EQ(failures.load(), 0);
  for (int i = 0; i < 1000; i++) EXPECT_EQ(s.Get("key" + std::to_string(i)), "value" + std::to_string(i));
  s.Reopen();
  for (int i = 0; i < 1000; i++) EXPECT_EQ(s.Get("key" + std::to_string(i)), "value" + std::to_string(i));
}

TEST_P(AllEngines, ConcurrentGet100Threads) {
  TempDir d;
  Store s(d.path(), Opts());
  for (int i = 0; i < 100; i++) ASSERT_EQ(s.Set("key" + std::to_string(i), "value" + std::to_string(i)), KVS_OK);
  for (int round = 0; round < 2; round++) {
    std::atomic<int> bad{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 100; t++)
      ts.emplace_back([&, t] {
        for (int i = 0; i < 100; i++) {
          int k = (i + t) % 100;
          if (s.Get("key" + std::to_string(k)) != "value" + std::to_string(k)) bad++;
        }
      });
    for (auto& t : ts) t.join();
    EXPECT_EQ(bad.load(), 0) << "round " << round;
    s.Reopen();
  }
}

// ---- arguments and limits -----------------------------------------------------

TEST_P(AllEngines, EmptyKeyIsInvalid) {
  TempDir d;
  Store s(d.path(), Opts());
  EXPECT_EQ(s.Set("", "v"), KVS_EINVAL);
  EXPECT_EQ(s.Get(""), "<error " + std::to_string(KVS_EINVAL) + ">");
  EXPECT_EQ(s.Remove(""), KVS_EINVAL);
}

TEST_P(AllEngines, EmptyValueIsAllowed) {
  TempDir d;
  Store s(d.path(), Opts());
  ASSERT_EQ(s.Set("k", ""), KVS_OK);
  EXPECT_EQ(s.Get("k"), "");
  s.Reopen();
  EXPECT_EQ(s.Get("k"), "");
}

TEST(KvStoreLimits, KeyAtAndOverTheLimit) {
  TempDir d;
  Store s(d.path());
  std::string at(KVS_MAX_KEY, 'k'), over(KVS_MAX_KEY + 1, 'k');
  at[7] = '\0';
  ASSERT_EQ(s.Set(at, "v-at"), KVS_OK);
  uint64_t writes = s.Stats().writes;
  EXPECT_EQ(s.Set(over, "v-over"), KVS_ETOOBIG);
  EXPECT_NE(std::string(kvs_errmsg()).find("limit"), std::string::npos) << kvs_errmsg();
  EXPECT_EQ(s.Stats().writes, writes) << "nothing may be written";
  EXPECT_EQ(s.Get(over), "<error " + std::to_string(KVS_ETOOBIG) + ">");
  s.Reopen();
  EXPECT_EQ(s.Get(at), "v-at");
}

TEST_P(AllEngines, ValueOverTheLimitIsRefusedUnread) {
  TempDir d;
  Store s(d.path(), Opts());
  char byte = 'x';
  // The length is checked before a single byte is read.
  EXPECT_EQ(kvs_set(s.db(), "k", 1, &byte, size_t{KVS_MAX_VALUE} + 1), KVS_ETOOBIG);
  kvs_op op = Op(KVS_OP_SET, "a", 1, "b", 1);
  kvs_op big = Op(KVS_OP_SET, "k", 1, &byte, size_t{KVS_MAX_VALUE} + 1);
  kvs_op ops[2] = {op, big};
  EXPECT_EQ(kvs_write_batch(s.db(), ops, 2), KVS_ETOOBIG);
  EXPECT_EQ(s.Get("a"), "<not found>") << "an invalid batch writes nothing";
  EXPECT_EQ(s.Stats().writes, 0u);
}

TEST_P(AllEngines, BinaryKeysAndValues) {
  TempDir d;
  Store s(d.path(), Opts());
  std::string k1("a\0b", 3), k2("a\0c", 3), k3("\xff\xfe\x00\x01", 4);
  std::string v1("\0\0\0", 3), v2("\xff\r\n\x00x", 5);
  ASSERT_EQ(s.Set(k1, v1), KVS_OK);
  ASSERT_EQ(s.Set(k2, v2), KVS_OK);
  ASSERT_EQ(s.Set(k3, k3), KVS_OK);
  EXPECT_EQ(s.Get(k1), v1);
  EXPECT_EQ(s.Get(k2), v2);
  EXPECT_EQ(s.Get(std::string("a", 1)), "<not found>");
  s.Reopen();
  EXPECT_EQ(s.Get(k1), v1);
  EXPECT_EQ(s.Get(k2), v2);
  EXPECT_EQ(s.Get(k3), k3);
}

TEST_P(AllEngines, Value64MiB) {
  TempDir d;
  Store s(d.path(), Opts());
  std::string v(64u << 20, '\0');
  for (size_t i = 0; i < v.size(); i += 4096) v[i] = static_cast<char>(i / 4096);
  ASSERT_EQ(s.Set("big", v), KVS_OK);
  ASSERT_EQ(s.Set("small", "after"), KVS_OK);
  EXPECT_TRUE(s.Get("big") == v);
  s.Reopen();
  EXPECT_TRUE(s.Get("big") == v);
  EXPECT_EQ(s.Get("small"), "after");
}

TEST(KvStoreLimits, BadOptions) {
  TempDir d;
  kvs* db = nullptr;
  kvs_options o{};
  o.segment_size = 100;
  EXPECT_EQ(kvs_open(d.path().c_str(), &o, &db), KVS_EINVAL);
  o = {};
  o.fsync = static_cast<kvs_fsync>(7);
  EXPECT_EQ(kvs_open(d.path().c_str(), &o, &db), KVS_EINVAL);
  EXPECT_EQ(kvs_open("", nullptr, &db), KVS_EINVAL);
  EXPECT_EQ(db, nullptr);
}

TEST(KvStoreLimits, EveryErrorHasAName) {
  for (int e = KVS_OK; e >= KVS_EEND; e--) {
    std::string s = kvs_strerror(e);
    EXPECT_FALSE(s.empty());
    EXPECT_NE(s, "unknown error") << e;
  }
  EXPECT_STREQ(kvs_strerror(-1000), "unknown error");
}

// ---- the directory -----------------------------------------------------------------

TEST_P(AllEngines, CreatesMissingDirectories) {
  TempDir d;
  std::string dir = d.path() + "/a/b/c";
  { Store s(dir, Opts()); ASSERT_EQ(s.Set("k", "v"), KVS_OK); }
  Store s(dir, Opts());
  EXPECT_EQ(s.Get("k"), "v");
}

TEST_P(AllEngines, SecondOpenIsLocked) {
  TempDir d;
  Store s(d.path(), Opts());
  kvs* db2 = nullptr;
  EXPECT_EQ(kvs_open(d.path().c_str(), &opts_, &db2), KVS_ELOCKED);
  EXPECT_NE(std::string(kvs_errmsg()).find("already open"), std::string::npos) << kvs_errmsg();
  EXPECT_EQ(db2, nullptr);
  ASSERT_EQ(s.Close(), KVS_OK);
  ASSERT_EQ(kvs_open(d.path().c_str(), &opts_, &db2), KVS_OK) << "the lock is released by close";
  kvs_close(db2);
}

TEST(KvStoreDir, OtherEngineIsRefused) {
  TempDir d;
  kvstest::WriteFile(d.file("ENGINE"), "rocksdb\n");
  kvs* db = nullptr;
  EXPECT_EQ(kvs_open(d.path().c_str(), nullptr, &db), KVS_EENGINE);
  EXPECT_NE(std::string(kvs_errmsg()).find("'rocksdb'"), std::string::npos) << kvs_errmsg();
  kvstest::WriteFile(d.file("ENGINE"), "lmdb\n");
  kvs_options o{};
  o.engine = KVS_ENGINE_KVS;
  EXPECT_EQ(kvs_open(d.path().c_str(), &o, &db), KVS_EENGINE);
  EXPECT_NE(std::string(kvs_errmsg()).find("'lmdb' store, not a 'kvs' one"), std::string::npos) << kvs_errmsg();
}

TEST(KvStoreDir, MarkerNamesTheEngine) {
  TempDir d;
  { Store s(d.path()); }
  EXPECT_EQ(kvstest::ReadFile(d.file("ENGINE")), "kvs\n");
}

TEST(KvStoreDir, LeftoverTempFilesAreRemoved) {
  TempDir d;
  { Store s(d.path()); ASSERT_EQ(s.Set("k", "v"), KVS_OK); }
  kvstest::WriteFile(d.file("0000000009.seg.tmp"), "junk");
  Store s(d.path());
  EXPECT_EQ(kvstest::FileSize(d.file("0000000009.seg.tmp")), -1);
  EXPECT_EQ(s.Get("k"), "v");
}

// ---- batches ---------------------------------------------------------------------------

TEST_P(AllEngines, AppliesInOrderWithResults) {
  TempDir d;
  Store s(d.path(), Opts());
  ASSERT_EQ(s.Set("gone", "x"), KVS_OK);
  kvs_op ops[] = {
      Op(KVS_OP_SET, "a", 1, "1", 1),     Op(KVS_OP_SET, "a", 1, "2", 1),
      Op(KVS_OP_REMOVE, "b", 1, nullptr, 0), Op(KVS_OP_SET, "b", 1, "3", 1),
      Op(KVS_OP_REMOVE, "gone", 4, nullptr, 0), Op(KVS_OP_REMOVE, "gone", 4, nullptr, 0),
      Op(KVS_OP_SET, "c", 1, "4", 1),     Op(KVS_OP_REMOVE, "c", 1, nullptr, 0),
  };
  ASSERT_EQ(kvs_write_batch(s.db(), ops, 8), KVS_OK);
  int want[] = {KVS_OK, KVS_OK, KVS_ENOTFOUND, KVS_OK, KVS_OK, KVS_ENOTFOUND, KVS_OK, KVS_OK};
  for (int i = 0; i < 8; i++) EXPECT_EQ(ops[i].result, want[i]) << "op " << i;
  for (int pass = 0; pass < 2; pass++) {
    EXPECT_EQ(s.Get("a"), "2");
    EXPECT_EQ(s.Get("b"), "3");
    EXPECT_EQ(s.Get("c"), "<not found>");
    EXPECT_EQ(s.Get("gone"), "<not found>");
    EXPECT_EQ(s.Stats().live_keys, 2u);
    s.Reopen();
  }
}

TEST_P(AllEngines, IsNotInterleaved) {
  // Batches that set every key to the same generation number, written from
  // several threads: a reader after the fact must see the last batch whole.
  TempDir d;
  Store s(d.path(), Opts());
  const int kKeys = 50;
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; t++)
    ts.emplace_back([&, t] {
      for (int g = 0; g < 50; g++) {
        std::string v = std::to_string(t) + ":" + std::to_string(g);
        std::vector<std::string> keys;
        std::vector<kvs_op> ops;
        for (int k = 0; k < kKeys; k++) keys.push_back("k" + std::to_string(k));
        for (int k = 0; k < kKeys; k++) ops.push_back(Op(KVS_OP_SET, keys[k].data(), keys[k].size(), v.data(), v.size()));
        ASSERT_EQ(kvs_write_batch(s.db(), ops.data(), ops.size()), KVS_OK);
      }
    });
  for (auto& t : ts) t.join();
  std::string first = s.Get("k0");
  for (int k = 1; k < kKeys; k++) EXPECT_EQ(s.Get("k" + std::to_string(k)), first);
  s.Reopen();
  for (int k = 0; k < kKeys; k++) EXPECT_EQ(s.Get("k" + std::to_string(k)), first);
}

// ---- segments ----------------------------------------------------------------------------

TEST(KvStoreSegments, RotateSealAndReopen) {
  TempDir d;
  kvs_options o{};
  o.segment_size = 4096;
  o.no_auto_compact = 1;  // every segment stays, to be checked below
  Store s(d.path(), o);
  for (int i = 0; i < 2000; i++) ASSERT_EQ(s.Set("key" + std::to_string(i % 300), "value" + std::to_string(i)), KVS_OK);
  for (int i = 0; i < 300; i += 3) ASSERT_EQ(s.Remove("key" + std::to_string(i)), KVS_OK);
  auto segs = kvstest::Segments(d.path());
  ASSERT_GT(segs.size(), 5u);
  for (size_t i = 0; i + 1 < segs.size(); i++) {
    EXPECT_LE(kvstest::FileSize(segs[i]), 4096) << segs[i];
    // Every segment but the active one is sealed with a footer.
    kvs_reader* r = nullptr;
    ASSERT_EQ(kvs_reader_open(segs[i].c_str(), &r), KVS_OK);
    kvs_record rec;
    int rc;
    kvs_record_type last = KVS_REC_SET;
    while ((rc = kvs_reader_next(r, &rec)) == KVS_OK) last = rec.type;
    EXPECT_EQ(rc, KVS_EEND) << kvs_errmsg();
    EXPECT_TRUE(kvs_reader_sealed(r)) << segs[i];
    EXPECT_EQ(last, KVS_REC_FOOTER);
    kvs_reader_close(r);
  }
  auto check = [&] {
    for (int k = 0; k < 300; k++) {
      int last = k < 200 ? 1800 + k : 1500 + k;  // the last i < 2000 with i % 300 == k
      EXPECT_EQ(s.Get("key" + std::to_string(k)), k % 3 == 0 ? "<not found>" : "value" + std::to_string(last));
    }
  };
  check();
  kvs_store_stats st = s.Stats();
  EXPECT_EQ(st.live_keys, 200u);
  EXPECT_EQ(st.segments, segs.size());
  s.Reopen();
  check();
  kvs_store_stats st2 = s.Stats();
  EXPECT_EQ(st2.live_keys, 200u);
  EXPECT_EQ(st2.live_bytes, st.live_bytes) << "recovery must account live bytes as the writer did";
  EXPECT_GE(st2.next_seq, st.next_seq);
}

TEST(KvStoreSegments, RecordLargerThanASegment) {
  TempDir d;
  kvs_options o{};
  o.segment_size = 4096;
  Store s(d.path(), o);
  std::string big(100000, 'b');
  ASSERT_EQ(s.Set("a", "small"), KVS_OK);
  ASSERT_EQ(s.Set("big", big), KVS_OK);
  ASSERT_EQ(s.Set("c", "small"), KVS_OK);
  EXPECT_EQ(s.Get("big"), big);
  s.Reopen();
  EXPECT_EQ(s.Get("big"), big);
  EXPECT_EQ(s.Get("a"), "small");
  EXPECT_EQ(s.Get("c"), "small");
}

// ---- durability policies and group commit -----------------------------------------

TEST(KvStoreFsync, AlwaysGroupCommits) {
  TempDir d;
  kvs_options o{};
  o.fsync = KVS_FSYNC_ALWAYS;
  Store s(d.path(), o);
  std::vector<std::thread> ts;
  for (int t = 0; t < 16; t++)
    ts.emplace_back([&, t] {
      for (int i = 0; i < 50; i++) ASSERT_EQ(s.Set("t" + std::to_string(t) + "-" + std::to_string(i), "v"), KVS_OK);
    });
  for (auto& t : ts) t.join();
  kvs_store_stats st = s.Stats();
  EXPECT_EQ(st.writes, 800u);
  EXPECT_GE(st.syncs, 1u);
  EXPECT_LT(st.syncs, st.writes) << "16 concurrent writers must share fdatasyncs";
}

TEST_P(AllEngines, EverysecSyncsInTheBackground) {
  TempDir d;
  Store s(d.path(), Opts());  // default policy
  ASSERT_EQ(s.Set("k", "v"), KVS_OK);
  uint64_t syncs = 0;
  for (int i = 0; i < 50 && syncs == 0; i++) {  // up to 5 s
    usleep(100000);
    syncs = s.Stats().syncs;
  }
  EXPECT_GE(syncs, 1u) << "the background thread syncs within about a second";
}

TEST_P(AllEngines, AllPoliciesPersist) {
  for (kvs_fsync p : {KVS_FSYNC_ALWAYS, KVS_FSYNC_EVERYSEC, KVS_FSYNC_NEVER}) {
    TempDir d;
    kvs_options o = Opts();
    o.fsync = p;
    {
      Store s(d.path(), o);
      for (int i = 0; i < 100; i++) ASSERT_EQ(s.Set("k" + std::to_string(i), "v" + std::to_string(i)), KVS_OK);
    }
    Store s(d.path(), o);
    for (int i = 0; i < 100; i++) EXPECT_EQ(s.Get("k" + std::to_string(i)), "v" + std::to_string(i));
  }
}

// ---- injected failures ----------------------------------------------------------------

TEST(KvStoreFailure, FailedWriteFailsTheHandle) {
  TempDir d;
  {
    Store s(d.path());
    ASSERT_EQ(s.Set("before", "1"), KVS_OK);
    kvs__fault_write(1, EIO);
    EXPECT_EQ(s.Set("during", "2"), KVS_EIO);
    EXPECT_NE(std::string(kvs_errmsg()).find("Input/output error"), std::string::npos) << kvs_errmsg();
    EXPECT_EQ(s.Set("after", "3"), KVS_EFAILED) << "never retried and reported as success";
    EXPECT_EQ(s.Remove("before"), KVS_EFAILED);
    EXPECT_EQ(s.Get("before"), "1") << "reads go on";
    EXPECT_EQ(s.Get("during"), "<not found>");
    EXPECT_TRUE(s.Stats().failed);
    EXPECT_NE(s.log.All().find("refuses writes"), std::string::npos) << s.log.All();
    EXPECT_EQ(s.Close(), KVS_EIO);
    s.Open();
    EXPECT_EQ(s.Get("before"), "1");
    EXPECT_EQ(s.Set("after", "3"), KVS_OK) << "a new handle works again";
  }
  kvs__fault_write(0, 0);
}

TEST(KvStoreFailure, FailedSyncFailsTheHandle) {
  TempDir d;
  kvs_options o{};
  o.fsync = KVS_FSYNC_ALWAYS;
  Store s(d.path(), o);
  ASSERT_EQ(s.Set("before", "1"), KVS_OK);
  kvs__fault_sync(1, EIO);
  EXPECT_EQ(s.Set("during", "2"), KVS_EIO);
  EXPECT_EQ(s.Set("after", "3"), KVS_EFAILED);
  EXPECT_EQ(s.Get("before"), "1");
  EXPECT_EQ(s.Get("during"), "<not found>") << "not acknowledged, not visible";
  EXPECT_EQ(s.Close(), KVS_EIO);
  kvs__fault_sync(0, 0);
}

TEST(KvStoreFailure, FailedBackgroundSyncFailsTheHandle) {
  TempDir d;
  Store s(d.path());  // everysec
  ASSERT_EQ(s.Set("before", "1"), KVS_OK);
  kvs__fault_sync(1, EIO);
  ASSERT_EQ(s.Set("x", "2"), KVS_OK);
  bool failed = false;
  for (int i = 0; i < 50 && !failed; i++) {
    usleep(100000);
    failed = s.Stats().failed;
  }
  EXPECT_TRUE(failed);
  EXPECT_EQ(s.Set("after", "3"), KVS_EFAILED);
  EXPECT_EQ(s.Close(), KVS_EIO);
  kvs__fault_sync(0, 0);
}

// Under `always` a round of one submission may run on the caller's thread
// (kvs_submit_all with the writer idle): a failed fdatasync there is
// answered KVS_EIO, the write stays invisible, and the handle fails, as
// on the writer thread.  Fresh stores until one attempt ran inline.
TEST(KvStoreFailure, FailedSyncOfACallersRoundFailsTheHandle) {
  struct Ctx {
    std::atomic<int> calls{0};
    int result = KVS_OK;
    std::thread::id thread;
  };
  int inline_runs = 0;
  for (int attempt = 0; attempt < 5 && inline_runs == 0; attempt++) {
    TempDir d;
    kvs_options o{};
    o.fsync = KVS_FSYNC_ALWAYS;
    Store s(d.path(), o);
    ASSERT_EQ(s.Set("before", "1"), KVS_OK);
    usleep(30000);  // the writer goes back to sleep
    Ctx c;
    kvs_op op = Op(KVS_OP_SET, "during", 6, "2", 1);
    kvs_submission x{&op, 1, 0,
                     [](void* p, int result) {
                       auto* cc = static_cast<Ctx*>(p);
                       cc->result = result;
                       cc->thread = std::this_thread::get_id();
                       cc->calls++;
                     },
                     &c};
    kvs__fault_sync(1, EIO);
    kvs_submit_all(s.db(), &x, 1);
    inline_runs += c.calls.load() == 1 && c.thread == std::this_thread::get_id();
    for (int w = 0; w < 500 && c.calls.load() == 0; w++) usleep(10000);
    ASSERT_EQ(c.calls.load(), 1);
    EXPECT_EQ(c.result, KVS_EIO);
    EXPECT_EQ(s.Set("after", "3"), KVS_EFAILED);
    EXPECT_EQ(s.Get("before"), "1");
    EXPECT_EQ(s.Get("during"), "<not found>") << "not acknowledged, not visible";
    EXPECT_EQ(s.Close(), KVS_EIO);
    kvs__fault_sync(0, 0);
  }
  EXPECT_EQ(inline_runs, 1) << "no attempt ran the round on the caller's thread";
}

// ---- concurrency: readers never see the past -------------------------------------------

TEST(KvStoreConcurrency, ReadersSeeMonotonicVersions) {
  TempDir d;
  kvs_options o{};
  o.segment_size = 16384;  // many rotations while readers read
  o.no_auto_compact = 1;   // (compact_test.cc stresses compaction)
  Store s(d.path(), o);
  const int kKeys = 64;
  // Values are "key:version"; the writer of key k is thread k % 2.
  std::atomic<bool> stop{false};
  std::atomic<long> bad{0}, reads{0};
  std::vector<std::atomic<long>> acked(kKeys);
  for (auto& a : acked) a = -1;
  std::vector<std::thread> ts;
  for (int w = 0; w < 2; w++)
    ts.emplace_back([&, w] {
      for (long ver = 0; ver < 400; ver++)
        for (int k = w; k < kKeys; k += 2) {
          std::string key = "k" + std::to_string(k);
          ASSERT_EQ(s.Set(key, key + ":" + std::to_string(ver)), KVS_OK);
          acked[k] = ver;
        }
    });
  for (int r = 0; r < 3; r++)
    ts.emplace_back([&] {
      std::vector<long> seen(kKeys, -1);
      while (!stop) {
        for (int k = 0; k < kKeys; k++) {
          long floor = acked[k].load();
          std::string key = "k" + std::to_string(k);
          std::string v = s.Get(key);
          reads++;
          if (v == "<not found>") {
            if (floor >= 0) bad++;
            continue;
          }
          if (v.compare(0, key.size() + 1, key + ":") != 0) {
            bad++;
            continue;
          }
          long ver = std::stol(v.substr(key.size() + 1));
          if (ver < seen[k] || ver < floor) bad++;
          seen[k] = ver;
        }
      }
    });
  ts[0].join();
  ts[1].join();
  stop = true;
  for (size_t i = 2; i < ts.size(); i++) ts[i].join();
  EXPECT_EQ(bad.load(), 0) << "after " << reads.load() << " reads";
  EXPECT_GT(s.Stats().segments, 3u);
}

}  // namespace

namespace {

// ---- conditional sets, INCR, asynchronous submits -----------------------------

TEST_P(AllEngines, SetNxAndXx) {
  TempDir d;
  Store s(d.path(), Opts());
  kvs_op nx = Op(KVS_OP_SET, "k", 1, "1", 1);
  nx.flags = KVS_SET_NX;
  ASSERT_EQ(kvs_write_batch(s.db(), &nx, 1), KVS_OK);
  EXPECT_EQ(nx.result, KVS_OK);
  nx = Op(KVS_OP_SET, "k", 1, "2", 1);
  nx.flags = KVS_SET_NX;
  ASSERT_EQ(kvs_write_batch(s.db(), &nx, 1), KVS_OK);
  EXPECT_EQ(nx.result, KVS_EEXIST);
  EXPECT_EQ(s.Get("k"), "1");
  kvs_op xx = Op(KVS_OP_SET, "other", 5, "3", 1);
  xx.flags = KVS_SET_XX;
  ASSERT_EQ(kvs_write_batch(s.db(), &xx, 1), KVS_OK);
  EXPECT_EQ(xx.result, KVS_ENOTFOUND);
  EXPECT_EQ(s.Get("other"), "<not found>");
  xx = Op(KVS_OP_SET, "k", 1, "4", 1);
  xx.flags = KVS_SET_XX;
  ASSERT_EQ(kvs_write_batch(s.db(), &xx, 1), KVS_OK);
  EXPECT_EQ(xx.result, KVS_OK);
  EXPECT_EQ(s.Get("k"), "4");
  // Within one batch, conditions see the earlier ops of the batch.
  kvs_op ops[] = {Op(KVS_OP_SET, "b", 1, "x", 1), Op(KVS_OP_SET, "b", 1, "y", 1), Op(KVS_OP_REMOVE, "b", 1),
                  Op(KVS_OP_SET, "b", 1, "z", 1)};
  ops[1].flags = KVS_SET_NX;
  ops[3].flags = KVS_SET_XX;
  ASSERT_EQ(kvs_write_batch(s.db(), ops, 4), KVS_OK);
  EXPECT_EQ(ops[1].result, KVS_EEXIST);
  EXPECT_EQ(ops[3].result, KVS_ENOTFOUND);
  EXPECT_EQ(s.Get("b"), "<not found>");
  kvs_op both = Op(KVS_OP_SET, "k", 1, "5", 1);
  both.flags = KVS_SET_NX | KVS_SET_XX;
  EXPECT_EQ(kvs_write_batch(s.db(), &both, 1), KVS_EINVAL);
}

int64_t Incr(Store& s, const std::string& k, int64_t delta, int* result) {
  kvs_op op = Op(KVS_OP_INCR, k.data(), k.size());
  op.delta = delta;
  EXPECT_EQ(kvs_write_batch(s.db(), &op, 1), KVS_OK);
  *result = op.result;
  return op.num;
}

TEST_P(AllEngines, IncrLikeRedis) {
  TempDir d;
  Store s(d.path(), Opts());
  int r;
  EXPECT_EQ(Incr(s, "n", 1, &r), 1);
  EXPECT_EQ(r, KVS_OK);
  EXPECT_EQ(Incr(s, "n", 41, &r), 42);
  EXPECT_EQ(Incr(s, "n", -50, &r), -8);
  EXPECT_EQ(s.Get("n"), "-8");
  for (const char* bad : {"abc", " 1", "1 ", "01", "+1", "-0", "-", "", "1.5", "99999999999999999999",
                          "9223372036854775808", "-9223372036854775809"}) {
    ASSERT_EQ(s.Set("b", bad), KVS_OK);
    Incr(s, "b", 1, &r);
    EXPECT_EQ(r, KVS_ENOTINT) << "'" << bad << "'";
    EXPECT_EQ(s.Get("b"), bad) << "unchanged";
  }
  ASSERT_EQ(s.Set("m", "9223372036854775807"), KVS_OK);
  Incr(s, "m", 1, &r);
  EXPECT_EQ(r, KVS_EOVERFLOW);
  EXPECT_EQ(s.Get("m"), "9223372036854775807");
  ASSERT_EQ(s.Set("m", "-9223372036854775807"), KVS_OK);
  EXPECT_EQ(Incr(s, "m", -1, &r), INT64_MIN);
  EXPECT_EQ(s.Get("m"), "-9223372036854775808");
  Incr(s, "m", -1, &r);
  EXPECT_EQ(r, KVS_EOVERFLOW);
  // A batch: SET then INCR then INCR of the same key.
  kvs_op ops[] = {Op(KVS_OP_SET, "c", 1, "5", 1), Op(KVS_OP_INCR, "c", 1), Op(KVS_OP_INCR, "c", 1)};
  ops[1].delta = 2;
  ops[2].delta = 3;
  ASSERT_EQ(kvs_write_batch(s.db(), ops, 3), KVS_OK);
  EXPECT_EQ(ops[1].num, 7);
  EXPECT_EQ(ops[2].num, 10);
  s.Reopen();
  EXPECT_EQ(s.Get("c"), "10");
  EXPECT_EQ(s.Get("n"), "-8");
}

TEST_P(AllEngines, ConcurrentIncrIsAtomic) {
  TempDir d;
  Store s(d.path(), Opts());
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; t++)
    ts.emplace_back([&] {
      int r;
      for (int i = 0; i < 300; i++) {
        Incr(s, "counter", 1, &r);
        ASSERT_EQ(r, KVS_OK);
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(s.Get("counter"), "2400");
}

TEST_P(AllEngines, SubmitCallsBackOnce) {
  TempDir d;
  kvs_options o = Opts();
  o.fsync = KVS_FSYNC_ALWAYS;
  Store s(d.path(), o);
  const int kN = 1000;
  struct Ctx {
    std::atomic<int> calls{0};
    std::atomic<int> bad{0};
  } ctx;
  std::vector<std::string> keys(kN);
  std::vector<kvs_op> ops(kN);
  for (int i = 0; i < kN; i++) {
    keys[i] = "a" + std::to_string(i);
    ops[i] = Op(KVS_OP_SET, keys[i].data(), keys[i].size(), keys[i].data(), keys[i].size());
    ASSERT_EQ(kvs_submit(
                  s.db(), &ops[i], 1,
                  [](void* c, int result) {
                    auto* x = static_cast<Ctx*>(c);
                    if (result != KVS_OK) x->bad++;
                    x->calls++;
                  },
                  &ctx),
              KVS_OK);
  }
  for (int w = 0; w < 1000 && ctx.calls.load() < kN; w++) usleep(10000);
  EXPECT_EQ(ctx.calls.load(), kN);
  EXPECT_EQ(ctx.bad.load(), 0);
  for (int i = 0; i < kN; i += 97) EXPECT_EQ(s.Get(keys[i]), keys[i]);
  if (!Lmdb()) {
    EXPECT_LT(s.Stats().syncs, static_cast<uint64_t>(kN)) << "queued writes share syncs";
  }
  kvs_op bad = Op(KVS_OP_SET, "", 0, "x", 1);
  EXPECT_EQ(kvs_submit(s.db(), &bad, 1, [](void*, int) { abort(); }, nullptr), KVS_EINVAL);
}

// kvs_submit_all: every done() once, a refused submission answered before the
// call returns (with its message), the others applied.
TEST_P(AllEngines, SubmitAllCallsEachBackOnceAndRefusesOnlyTheBadOne) {
  TempDir d;
  Store s(d.path(), Opts());
  const int kN = 200, kBad = 50;
  struct Ctx {
    std::atomic<int> calls{0};
    int result = 99;
    std::string msg;
  };
  std::vector<Ctx> ctx(kN);
  std::vector<std::string> keys(kN);
  std::vector<kvs_op> ops(kN);
  std::vector<kvs_submission> subs(kN);
  for (int i = 0; i < kN; i++) {
    keys[i] = i == kBad ? "" : "s" + std::to_string(i);
    ops[i] = Op(KVS_OP_SET, keys[i].data(), keys[i].size(), "v", 1);
    subs[i] = kvs_submission{&ops[i], 1, 0,
                             [](void* c, int result) {
                               auto* x = static_cast<Ctx*>(c);
                               x->result = result;
                               if (result != KVS_OK) x->msg = kvs_errmsg();
                               x->calls++;
                             },
                             &ctx[i]};
  }
  kvs_submit_all(s.db(), subs.data(), kN);
  EXPECT_EQ(ctx[kBad].calls.load(), 1) << "a refused submission is answered before the call returns";
  EXPECT_EQ(ctx[kBad].result, KVS_EINVAL);
  EXPECT_FALSE(ctx[kBad].msg.empty());
  for (int i = 0; i < kN; i++)
    for (int w = 0; w < 500 && ctx[i].calls.load() == 0; w++) usleep(10000);
  usleep(20000);  // a second call would come now
  for (int i = 0; i < kN; i++) {
    ASSERT_EQ(ctx[i].calls.load(), 1) << i;
    if (i != kBad) {
      EXPECT_EQ(ctx[i].result, KVS_OK) << i;
      EXPECT_EQ(s.Get(keys[i]), "v");
    }
  }
  EXPECT_EQ(s.Stats().live_keys, static_cast<uint64_t>(kN - 1));
}

// With the writer idle, a submitter runs its round itself (no thread
// hand-off): done() on the caller's thread before kvs_submit_all returns.
// Under `always` only a round of one submission (one client's writes, for
// kvs-server), after its own fdatasync; a round of several goes to the
// writer thread, which syncs while the caller goes on.  Recorded I/O
// (kvs_iosim.h) names the thread of each sync.
TEST(KvStoreInline, SubmitAllRunsOnTheCallersThread) {
  TempDir d("/dev/shm");
  ASSERT_EQ(kvs__sim_start(d.path().c_str()), 0);
  struct Ctx {
    std::atomic<int> calls{0};
    std::thread::id thread;
    uint64_t ops_at_done = 0;  // recorded I/O operations when done() ran
  };
  // A submitter's fdatasync among recorded operations [from, to).
  auto submitter_synced = [](uint64_t from, uint64_t to) {
    for (uint64_t i = from; i < to; i++) {
      kvs_sim_kind kind;
      const char* role = nullptr;
      if (kvs__sim_op(i, &kind, &role) == 0 && kind == KVS_SIM_SYNC &&
          strcmp(role, "submitter") == 0)
        return true;
    }
    return false;
  };
  int inl = 0, always_single = 0, always_pair = 0, synced_first = 0;
  bool always = false;
  {
    Store s(d.path());
    // Submits `subs` submissions of one SET each; true if every done()
    // ran on this thread before kvs_submit_all returned.
    auto attempt = [&](int i, int subs) {
      std::vector<Ctx> c(subs);
      std::vector<std::string> k(subs);
      std::vector<kvs_op> op(subs);
      std::vector<kvs_submission> x(subs);
      for (int j = 0; j < subs; j++) {
        k[j] = "i" + std::to_string(i) + "." + std::to_string(j);
        op[j] = Op(KVS_OP_SET, k[j].data(), k[j].size(), "v", 1);
        x[j] = kvs_submission{&op[j], 1, 0,
                              [](void* p, int result) {
                                auto* cc = static_cast<Ctx*>(p);
                                cc->thread = std::this_thread::get_id();
                                cc->ops_at_done = kvs__sim_ops();
                                if (result == KVS_OK) cc->calls++;
                              },
                              &c[j]};
      }
      uint64_t ops_before = kvs__sim_ops();
      kvs_submit_all(s.db(), x.data(), x.size());
      bool all_inline = true;
      for (int j = 0; j < subs; j++)
        all_inline = all_inline && c[j].calls.load() == 1 &&
                     c[j].thread == std::this_thread::get_id();
      for (int j = 0; j < subs; j++) {
        for (int w = 0; w < 500 && c[j].calls.load() == 0; w++) usleep(10000);
        EXPECT_EQ(c[j].calls.load(), 1);
        EXPECT_EQ(s.Get(k[j]), "v");
      }
      if (all_inline && subs == 1 && always)
        synced_first += submitter_synced(ops_before, c[0].ops_at_done);
      return all_inline;
    };
    for (int i = 0; i < 20; i++) {
      usleep(30000);  // the writer goes back to sleep
      inl += attempt(i, 1);
    }
    ASSERT_EQ(kvs_set_fsync(s.db(), KVS_FSYNC_ALWAYS), KVS_OK);
    always = true;
    for (int i = 20; i < 40; i++) {
      usleep(30000);
      always_single += attempt(i, 1);
    }
    for (int i = 40; i < 50; i++) {
      usleep(30000);
      always_pair += attempt(i, 2);
    }
  }
  kvs__sim_stop();
  kvs__sim_reset();
  EXPECT_GT(inl, 10) << "rounds run on the submitter's thread while the writer sleeps";
  EXPECT_GT(always_single, 10) << "under always, one submission's round runs on its thread";
  EXPECT_EQ(always_pair, 0) << "under always, a round of two submissions is the writer's";
  // Each round a submitter ran under always was synced on its thread
  // before its done() said so.
  EXPECT_EQ(synced_first, always_single);
}

// A done() may submit more (kvs_submit_all, like kvs_submit): from inside a
// round the submission is queued for the writer, never run nested.
TEST(KvStoreInline, SubmitAllFromADoneCallbackIsQueued) {
  TempDir d;
  Store s(d.path());
  struct Ctx {
    kvs* db;
    std::string k2 = "second";
    kvs_op op2{};
    std::atomic<int> first{0}, second{0};
  } c;
  c.db = s.db();
  c.op2 = Op(KVS_OP_SET, c.k2.data(), c.k2.size(), "2", 1);
  std::string k1 = "first";
  kvs_op op1 = Op(KVS_OP_SET, k1.data(), k1.size(), "1", 1);
  usleep(30000);  // the writer sleeps: the first round runs on this thread
  kvs_submission x{&op1, 1, 0,
                   [](void* p, int result) {
                     auto* cc = static_cast<Ctx*>(p);
                     EXPECT_EQ(result, KVS_OK);
                     kvs_submission y{&cc->op2, 1, 0,
                                      [](void* q, int r2) {
                                        EXPECT_EQ(r2, KVS_OK);
                                        static_cast<Ctx*>(q)->second++;
                                      },
                                      cc};
                     kvs_submit_all(cc->db, &y, 1);
                     cc->first++;
                   },
                   &c};
  kvs_submit_all(s.db(), &x, 1);
  for (int w = 0; w < 500 && c.second.load() == 0; w++) usleep(10000);
  EXPECT_EQ(c.first.load(), 1);
  EXPECT_EQ(c.second.load(), 1);
  EXPECT_EQ(s.Get("second"), "2");
}

// A round that fills the active segment is the writer thread's: sealing a
// segment syncs it, and a submitter (a server's worker) must not wait for
// the disk.  Recorded I/O (kvs_iosim.h) names the thread of each call.
TEST(KvStoreInline, RotationsAreNeverASubmittersToSync) {
  TempDir d("/dev/shm");
  ASSERT_EQ(kvs__sim_start(d.path().c_str()), 0);
  kvs_options o{};
  o.segment_size = 4096;
  {
    Store s(d.path(), o);
    std::string v(100, 'v');
    for (int i = 0; i < 400; i++) {
      if (i % 20 == 0) usleep(20000);  // let the writer sleep now and then
      ASSERT_EQ(s.Set("r" + std::to_string(i % 50), v), KVS_OK);
    }
    // Update ops and atomic batches too: a callback chooses its value's
    // length (here 3000 bytes, most of a segment), and an atomic batch
    // adds two marker records.
    static const std::string big(3000, 'b');
    for (int i = 0; i < 20; i++) {
      usleep(20000);
      std::string k = "u" + std::to_string(i % 3);
      kvs_op ops[2] = {Op(KVS_OP_UPDATE, k.data(), k.size()), Op(KVS_OP_SET, "a", 1, "x", 1)};
      ops[0].update = [](void*, kvs_update* u) -> int {
        u->action = KVS_UPD_SET;
        u->new_val = big.data();
        u->new_vlen = big.size();
        return KVS_OK;
      };
      std::atomic<int> done{0};
      kvs_submission x{ops, 2, i % 2 ? KVS_BATCH_ATOMIC : 0u,
                       [](void* p, int result) {
                         EXPECT_EQ(result, KVS_OK);
                         static_cast<std::atomic<int>*>(p)->store(1);
                       },
                       &done};
      kvs_submit_all(s.db(), &x, 1);
      for (int w = 0; w < 500 && !done.load(); w++) usleep(2000);
      ASSERT_EQ(done.load(), 1);
      EXPECT_EQ(s.Get(k), big);
    }
    EXPECT_GT(s.Stats().segments, 1u);
  }
  kvs__sim_stop();
  uint64_t n = kvs__sim_ops(), by_submitter = 0;
  for (uint64_t i = 0; i < n; i++) {
    kvs_sim_kind kind;
    const char* role = nullptr;
    ASSERT_EQ(kvs__sim_op(i, &kind, &role), 0);
    if (strcmp(role, "submitter") != 0) continue;
    by_submitter++;
    char desc[512];
    EXPECT_EQ(kind, KVS_SIM_WRITE) << kvs__sim_describe(i, desc, sizeof desc);
  }
  kvs__sim_reset();
  EXPECT_GT(by_submitter, 0u) << "no round ran on the submitter's thread";
}

// Rounds run by submitters leave the writer work it must still do without
// being asked: publish the stats, and remove keys whose time has come.
TEST(KvStoreInline, TheWriterLooksAfterSubmittersRounds) {
  TempDir d;
  Store s(d.path());
  usleep(50000);  // the writer sleeps, with no timer
  std::vector<std::string> keys(100);
  std::vector<kvs_op> ops(100);
  for (int i = 0; i < 100; i++) {
    keys[i] = "w" + std::to_string(i);
    ops[i] = Op(KVS_OP_SET, keys[i].data(), keys[i].size(), "v", 1);
  }
  ops[99].expire_ms = kvs_now_ms() + 200;
  ASSERT_EQ(kvs_write_batch(s.db(), ops.data(), ops.size()), KVS_OK);
  kvs_store_stats st{};
  bool seen = false;
  for (int w = 0; w < 300 && !seen; w++) {
    ASSERT_EQ(kvs_stats_cached(s.db(), &st), KVS_OK);
    seen = st.batches >= 1 && st.bytes_written > 0;  // only the writer publishes these
    if (!seen) usleep(10000);
  }
  EXPECT_TRUE(seen) << "the published stats never showed the writes: " << st.batches;
  bool reaped = false;
  for (int w = 0; w < 300 && !reaped; w++) {
    ASSERT_EQ(kvs_stats_cached(s.db(), &st), KVS_OK);
    reaped = st.expired_keys >= 1;
    if (!reaped) usleep(10000);
  }
  EXPECT_TRUE(reaped) << "the key with an expiry time was never removed";
}

}  // namespace

namespace {

TEST(KvStoreLmdb, KeyLimitIs511Bytes) {
  TempDir d;
  kvs_options o{};
  o.engine = KVS_ENGINE_LMDB;
  Store s(d.path(), o);
  EXPECT_STREQ(kvs_engine_name(s.db()), "lmdb");
  ASSERT_EQ(s.Set(std::string(511, 'k'), "v"), KVS_OK);
  EXPECT_EQ(s.Set(std::string(512, 'k'), "v"), KVS_ETOOBIG);
  EXPECT_NE(std::string(kvs_errmsg()).find("lmdb"), std::string::npos) << kvs_errmsg();
  EXPECT_EQ(s.Get(std::string(511, 'k')), "v");
}

TEST(KvStoreLmdb, EnginesRefuseEachOthersDirectories) {
  TempDir a, b;
  kvs_options lm{}, kv{};
  lm.engine = KVS_ENGINE_LMDB;
  kv.engine = KVS_ENGINE_KVS;
  { Store s(a.path(), lm); ASSERT_EQ(s.Set("k", "v"), KVS_OK); }
  { Store s(b.path(), kv); ASSERT_EQ(s.Set("k", "v"), KVS_OK); }
  EXPECT_EQ(kvstest::ReadFile(a.file("ENGINE")), "lmdb\n");
  kvs* db = nullptr;
  EXPECT_EQ(kvs_open(a.path().c_str(), &kv, &db), KVS_EENGINE);
  EXPECT_NE(std::string(kvs_errmsg()).find("'lmdb'"), std::string::npos) << kvs_errmsg();
  EXPECT_EQ(kvs_open(b.path().c_str(), &lm, &db), KVS_EENGINE);
  EXPECT_NE(std::string(kvs_errmsg()).find("'kvs'"), std::string::npos) << kvs_errmsg();
  // With no choice, the recorded engine is used.
  Store s(a.path());
  EXPECT_STREQ(kvs_engine_name(s.db()), "lmdb");
  EXPECT_EQ(s.Get("k"), "v");
}

}  // namespace

namespace {

// SCAN: every key present for the whole iteration is returned at least once.
TEST_P(AllEngines, ScanReturnsEveryStableKey) {
  TempDir d;
  Store s(d.path(), Opts());
  for (int i = 0; i < 2000; i++) ASSERT_EQ(s.Set("stable" + std::to_string(i), "v"), KVS_OK);
  std::set<std::string> seen;
  uint64_t cursor = 0;
  int calls = 0, churn = 0;
  do {
    ASSERT_EQ(kvs_scan(
                  s.db(), cursor, 10,
                  [](void* ctx, const void* k, size_t n) {
                    static_cast<std::set<std::string>*>(ctx)->emplace(static_cast<const char*>(k), n);
                    return 0;
                  },
                  &seen, &cursor),
              KVS_OK);
    // Writes during the iteration: new keys and removed churn keys.
    ASSERT_EQ(s.Set("churn" + std::to_string(churn++), "x"), KVS_OK);
    if (churn > 5) {
      ASSERT_EQ(s.Remove("churn" + std::to_string(churn - 5)), KVS_OK);
    }
    ASSERT_LT(++calls, 100000);
  } while (cursor != 0);
  for (int i = 0; i < 2000; i++) EXPECT_TRUE(seen.count("stable" + std::to_string(i))) << i;
  if (!Lmdb()) {
    EXPECT_GT(calls, 100) << "about 10 keys per call";
  }
}

}  // namespace

namespace {

// kvs_stats_cached never waits for the writer, yet counts every
// acknowledged write's key at once.
TEST_P(AllEngines, CachedStatsCountAcknowledgedKeys) {
  TempDir d;
  Store s(d.path(), Opts());
  for (int i = 0; i < 50; i++) {
    ASSERT_EQ(s.Set("k" + std::to_string(i), "v"), KVS_OK);
    kvs_store_stats st{};
    ASSERT_EQ(kvs_stats_cached(s.db(), &st), KVS_OK);
    ASSERT_EQ(st.live_keys, static_cast<uint64_t>(i + 1));
  }
  ASSERT_EQ(s.Remove("k0"), KVS_OK);
  kvs_store_stats st{};
  ASSERT_EQ(kvs_stats_cached(s.db(), &st), KVS_OK);
  EXPECT_EQ(st.live_keys, 49u);
  // The other figures follow within about 50 ms (at once when idle).
  for (int w = 0; w < 100 && st.writes < 51; w++) {
    usleep(10000);
    ASSERT_EQ(kvs_stats_cached(s.db(), &st), KVS_OK);
  }
  EXPECT_EQ(st.writes, 51u);
}

// kvs_parse_int64 is the rule of KVS_OP_INCR, public so that servers accept
// exactly what the engine does.
TEST(KvStoreLimits, ParseInt64FollowsRedisIntegerSyntax) {
  auto parse = [](const std::string& t, int64_t* v) {
    return kvs_parse_int64(t.data(), t.size(), v);
  };
  int64_t v = 7;
  EXPECT_TRUE(parse("0", &v));
  EXPECT_EQ(v, 0);
  EXPECT_TRUE(parse("-42", &v));
  EXPECT_EQ(v, -42);
  EXPECT_TRUE(parse("9223372036854775807", &v));
  EXPECT_EQ(v, INT64_MAX);
  EXPECT_TRUE(parse("-9223372036854775808", &v));
  EXPECT_EQ(v, INT64_MIN);
  v = 7;
  for (const char* bad : {"", "-", "+1", "01", "-0", " 1", "1 ", "1a",
                          "9223372036854775808", "-9223372036854775809",
                          "99999999999999999999", "123456789012345678901"}) {
    EXPECT_FALSE(parse(bad, &v)) << bad;
    EXPECT_EQ(v, 7) << bad;
  }
}

}  // namespace

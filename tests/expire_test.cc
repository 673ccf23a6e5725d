// expire_test.cc - key expiry in the log engine: reads never see an expired
// key, the expiry survives a restart, a key that expired while the store was
// closed is gone, active expiry removes keys nobody reads (without changing
// their version) and compaction reclaims them, and neither compaction nor a
// restart brings back an older value of a key that expired or was removed.
// Also the record codec's SETX, TXN and FLUSH records, through the reader,
// kvs-dump and tests/check_cbor.py.
#include <chrono>
#include <set>
#include <string>
#include <thread>

#include "test_util.h"

extern "C" {
size_t kvs__rec_encode_txn(unsigned char* out, uint64_t seq, uint64_t count);
size_t kvs__rec_encode_flush(unsigned char* out, uint64_t seq);
uint32_t kvs__crc32c(uint32_t crc, const void* buf, size_t len);
size_t kvs__rec_encode_head_x(unsigned char* out, enum kvs_record_type type, uint64_t seq,
                              int64_t expire_ms, size_t klen);
size_t kvs__rec_encode_vhead(unsigned char* out, size_t vlen);
}

namespace {

using kvstest::Bin;
using kvstest::TempDir;

void SleepMs(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

class Db {
 public:
  explicit Db(const std::string& dir, uint64_t segment_size = 0, bool auto_compact = false) {
    kvs_options o{};
    o.segment_size = segment_size;
    o.no_auto_compact = auto_compact ? 0 : 1;
    if (kvs_open(dir.c_str(), &o, &db_) != KVS_OK) ADD_FAILURE() << kvs_errmsg();
  }
  ~Db() { Close(); }
  void Close() {
    if (db_) {
      EXPECT_EQ(kvs_close(db_), KVS_OK);
    }
    db_ = nullptr;
  }
  kvs* get() { return db_; }

  int SetX(const std::string& k, const std::string& v, int64_t expire_ms, unsigned flags = 0) {
    kvs_op op{};
    op.type = KVS_OP_SET;
    op.key = k.data();
    op.klen = k.size();
    op.val = v.data();
    op.vlen = v.size();
    op.flags = flags;
    op.expire_ms = expire_ms;
    int rc = kvs_write_batch(db_, &op, 1);
    return rc != KVS_OK ? rc : op.result;
  }
  int Set(const std::string& k, const std::string& v) { return SetX(k, v, 0); }
  int Incr(const std::string& k, int64_t d) {
    kvs_op op{};
    op.type = KVS_OP_INCR;
    op.key = k.data();
    op.klen = k.size();
    op.delta = d;
    int rc = kvs_write_batch(db_, &op, 1);
    return rc != KVS_OK ? rc : op.result;
  }
  // The value, or "<absent>"; *exp its expiry time.
  std::string Get(const std::string& k, int64_t* exp = nullptr) {
    void* v = nullptr;
    size_t n = 0;
    int64_t x = -1;
    int rc = kvs_lookup(db_, k.data(), k.size(), &v, &n, &x);
    if (rc == KVS_ENOTFOUND) return "<absent>";
    EXPECT_EQ(rc, KVS_OK) << kvs_errmsg();
    std::string s(static_cast<char*>(v), n);
    kvs_free(v);
    if (exp) *exp = x;
    // kvs_get agrees.
    void* v2 = nullptr;
    size_t n2 = 0;
    EXPECT_EQ(kvs_get(db_, k.data(), k.size(), &v2, &n2), KVS_OK);
    kvs_free(v2);
    return s;
  }
  std::set<std::string> Scan() {
    std::set<std::string> keys;
    uint64_t cur = 0;
    int rounds = 0;
    do {
      EXPECT_EQ(kvs_scan(db_, cur, 100,
                         [](void* ctx, const void* k, size_t kl) {
                           static_cast<std::set<std::string>*>(ctx)->insert(
                               std::string(static_cast<const char*>(k), kl));
                           return 0;
                         },
                         &keys, &cur),
                KVS_OK);
    } while (cur != 0 && ++rounds < 100000);
    return keys;
  }
  kvs_store_stats Stats() {
    kvs_store_stats st{};
    EXPECT_EQ(kvs_stats(db_, &st), KVS_OK);
    return st;
  }

 private:
  kvs* db_ = nullptr;
};

// Wait (bounded) until pred holds.
template <class F>
bool WaitFor(F pred, int ms = 5000) {
  for (int i = 0; i < ms / 10; i++) {
    if (pred()) return true;
    SleepMs(10);
  }
  return pred();
}

TEST(Expire, ReadsScanAndConditionsTreatAnExpiredKeyAsAbsent) {
  TempDir d;
  Db db(d.path());
  int64_t at = kvs_now_ms() + 300;
  ASSERT_EQ(db.SetX("k", "v", at), KVS_OK);
  ASSERT_EQ(db.Set("plain", "p"), KVS_OK);
  int64_t exp = 0;
  EXPECT_EQ(db.Get("k", &exp), "v");
  EXPECT_EQ(exp, at);
  EXPECT_EQ(db.Get("plain", &exp), "p");
  EXPECT_EQ(exp, 0);
  EXPECT_EQ(db.Scan(), (std::set<std::string>{"k", "plain"}));
  SleepMs(400);
  EXPECT_EQ(db.Get("k"), "<absent>");
  EXPECT_EQ(db.Scan(), (std::set<std::string>{"plain"}));
  // NX sees it absent; the new value has no expiry.
  EXPECT_EQ(db.SetX("k", "new", 0, KVS_SET_NX), KVS_OK);
  EXPECT_EQ(db.Get("k", &exp), "new");
  EXPECT_EQ(exp, 0);
}

TEST(Expire, KeepTtlKeepsAndAPlainSetClears) {
  TempDir d;
  Db db(d.path());
  int64_t at = kvs_now_ms() + 60000;
  ASSERT_EQ(db.SetX("k", "a", at), KVS_OK);
  ASSERT_EQ(db.SetX("k", "b", 0, KVS_SET_KEEPTTL), KVS_OK);
  int64_t exp = 0;
  EXPECT_EQ(db.Get("k", &exp), "b");
  EXPECT_EQ(exp, at);
  ASSERT_EQ(db.SetX("k", "c", 0, KVS_SET_XX), KVS_OK);
  EXPECT_EQ(db.Get("k", &exp), "c");
  EXPECT_EQ(exp, 0);
  // KEEPTTL of a key without one, and of an absent key: none.
  ASSERT_EQ(db.SetX("k2", "x", 0, KVS_SET_KEEPTTL), KVS_OK);
  EXPECT_EQ(db.Get("k2", &exp), "x");
  EXPECT_EQ(exp, 0);
  EXPECT_EQ(db.Stats().volatile_keys, 0u);
}

TEST(Expire, IncrKeepsTheExpiry) {
  TempDir d;
  Db db(d.path());
  int64_t at = kvs_now_ms() + 60000;
  ASSERT_EQ(db.SetX("n", "41", at), KVS_OK);
  ASSERT_EQ(db.Incr("n", 1), KVS_OK);
  int64_t exp = 0;
  EXPECT_EQ(db.Get("n", &exp), "42");
  EXPECT_EQ(exp, at);
  // After a restart too (the INCR wrote a SETX).
  db.Close();
  Db db2(d.path());
  EXPECT_EQ(db2.Get("n", &exp), "42");
  EXPECT_EQ(exp, at);
}

TEST(Expire, IncrOfAnExpiredKeyStartsFromZeroWithoutExpiry) {
  TempDir d;
  Db db(d.path());
  ASSERT_EQ(db.SetX("n", "41", kvs_now_ms() + 100), KVS_OK);
  SleepMs(200);
  ASSERT_EQ(db.Incr("n", 5), KVS_OK);
  int64_t exp = -1;
  EXPECT_EQ(db.Get("n", &exp), "5");
  EXPECT_EQ(exp, 0);
}

TEST(Expire, SetWithATimeInThePastRemoves) {
  TempDir d;
  Db db(d.path());
  ASSERT_EQ(db.Set("k", "v"), KVS_OK);
  uint64_t v0 = kvs_key_version(db.get(), "k", 1);
  uint64_t w0 = db.Stats().writes;
  ASSERT_EQ(db.SetX("k", "new", kvs_now_ms() - 1000), KVS_OK);
  EXPECT_EQ(db.Get("k"), "<absent>");
  EXPECT_EQ(db.Stats().writes, w0 + 1);  // a REMOVE
  EXPECT_NE(kvs_key_version(db.get(), "k", 1), v0);
  // Absent: nothing is written.
  ASSERT_EQ(db.SetX("k", "new", 1), KVS_OK);
  EXPECT_EQ(db.Stats().writes, w0 + 1);
  EXPECT_EQ(db.Stats().live_keys, 0u);
  db.Close();
  Db db2(d.path());
  EXPECT_EQ(db2.Get("k"), "<absent>");
}

TEST(Expire, TtlSurvivesRestart) {
  TempDir d;
  int64_t at = kvs_now_ms() + 3600 * 1000;
  {
    Db db(d.path(), 4096);
    ASSERT_EQ(db.SetX("k", "v", at), KVS_OK);
    // Enough more to seal the first segment: it is loaded from its hint.
    for (int i = 0; i < 100; i++)
      ASSERT_EQ(db.Set("f" + std::to_string(i), std::string(50, 'x')), KVS_OK);
  }
  Db db(d.path(), 4096);
  EXPECT_GE(db.Stats().hint_loads, 1u);
  int64_t exp = 0;
  EXPECT_EQ(db.Get("k", &exp), "v");
  EXPECT_EQ(exp, at);
  kvs_store_stats st = db.Stats();
  EXPECT_EQ(st.volatile_keys, 1u);
  EXPECT_GT(st.avg_ttl_ms, 3500u * 1000);
  EXPECT_LE(st.avg_ttl_ms, 3600u * 1000);
}

TEST(Expire, AKeyThatExpiredWhileClosedIsGone) {
  TempDir d;
  {
    Db db(d.path());
    ASSERT_EQ(db.Set("k", "old"), KVS_OK);
    ASSERT_EQ(db.SetX("k", "v", kvs_now_ms() + 150), KVS_OK);
    ASSERT_EQ(db.Set("other", "o"), KVS_OK);
  }
  SleepMs(300);
  Db db(d.path());
  EXPECT_EQ(db.Get("k"), "<absent>");
  EXPECT_EQ(db.Stats().live_keys, 1u);
  EXPECT_EQ(db.Stats().volatile_keys, 0u);
  EXPECT_EQ(db.Scan(), (std::set<std::string>{"other"}));
}

TEST(Expire, ActiveExpiryRemovesUnreadKeysWithoutChangingVersionsAndCompactionReclaims) {
  TempDir d;
  Db db(d.path(), 64 << 10);
  const int n = 300;
  for (int i = 0; i < n; i++)
    ASSERT_EQ(db.SetX("t" + std::to_string(i), std::string(200, 'v'), kvs_now_ms() + 200), KVS_OK);
  ASSERT_EQ(db.Set("keep", "k"), KVS_OK);
  uint64_t ver = kvs_key_version(db.get(), "t7", 2);
  kvs_store_stats st = db.Stats();
  EXPECT_EQ(st.volatile_keys, static_cast<uint64_t>(n));
  EXPECT_EQ(st.live_keys, static_cast<uint64_t>(n + 1));
  uint64_t disk0 = st.disk_bytes;
  // Nobody reads them: the writer removes them by itself.
  ASSERT_TRUE(WaitFor([&] { return db.Stats().expired_keys == static_cast<uint64_t>(n); }))
      << db.Stats().expired_keys;
  st = db.Stats();
  EXPECT_EQ(st.live_keys, 1u);
  EXPECT_EQ(st.volatile_keys, 0u);
  EXPECT_EQ(st.avg_ttl_ms, 0u);
  kvs_store_stats cached{};
  ASSERT_TRUE(WaitFor([&] {
    kvs_stats_cached(db.get(), &cached);
    return cached.expired_keys == static_cast<uint64_t>(n);
  }));
  EXPECT_EQ(cached.live_keys, 1u);
  EXPECT_EQ(kvs_key_version(db.get(), "t7", 2), ver);
  ASSERT_EQ(kvs_compact(db.get()), KVS_OK) << kvs_errmsg();
  st = db.Stats();
  EXPECT_LT(st.disk_bytes, disk0 / 2) << "before " << disk0;
  db.Close();
  Db db2(d.path(), 64 << 10);
  EXPECT_EQ(db2.Get("t7"), "<absent>");
  EXPECT_EQ(db2.Get("keep"), "k");
  EXPECT_EQ(db2.Stats().live_keys, 1u);
}

TEST(Expire, ManyDueKeysAreReapedInBoundedTurnsWhileClientsWrite) {
  TempDir d;
  Db db(d.path());
  const int n = 3000;  // three turns of reaping at least
  std::vector<kvs_op> ops(n);
  std::vector<std::string> keys(n);
  int64_t at = kvs_now_ms() + 100;
  for (int i = 0; i < n; i++) {
    keys[i] = "k" + std::to_string(i);
    ops[i] = kvs_op{};
    ops[i].type = KVS_OP_SET;
    ops[i].key = keys[i].data();
    ops[i].klen = keys[i].size();
    ops[i].val = "v";
    ops[i].vlen = 1;
    ops[i].expire_ms = at;
  }
  ASSERT_EQ(kvs_write_batch(db.get(), ops.data(), n), KVS_OK);
  SleepMs(150);
  for (int i = 0; i < 50; i++) ASSERT_EQ(db.Set("c" + std::to_string(i), "x"), KVS_OK);
  ASSERT_TRUE(WaitFor([&] { return db.Stats().expired_keys == static_cast<uint64_t>(n); }));
  EXPECT_EQ(db.Stats().live_keys, 50u);
}

TEST(Expire, AFlushForgetsTheVolatileKeysAlsoAfterARestart) {
  TempDir d;
  {
    Db db(d.path());
    ASSERT_EQ(db.SetX("a", "1", kvs_now_ms() + 3600 * 1000), KVS_OK);
    kvs_op f{};
    f.type = KVS_OP_FLUSH;
    ASSERT_EQ(kvs_write_batch(db.get(), &f, 1), KVS_OK);
    EXPECT_EQ(db.Stats().volatile_keys, 0u);
    ASSERT_EQ(db.SetX("b", "2", kvs_now_ms() + 3600 * 1000), KVS_OK);
    EXPECT_EQ(db.Stats().volatile_keys, 1u);
  }
  Db db(d.path());
  EXPECT_EQ(db.Get("a"), "<absent>");
  kvs_store_stats st = db.Stats();
  EXPECT_EQ(st.live_keys, 1u);
  EXPECT_EQ(st.volatile_keys, 1u);
}

// SET k v1 in a sealed segment, then SET k v2 with an expiry in a newer one
// that expires while the store is closed (so no REMOVE is ever written):
// compaction of the newer segment alone must keep something that hides v1.
TEST(Expire, AnExpiredKeysOlderValueNeverComesBackAfterCompactionAndRestart) {
  TempDir d;
  const uint64_t seg = 4096;
  {
    Db db(d.path(), seg);
    ASSERT_EQ(db.Set("k", "v1"), KVS_OK);
    for (int i = 0; i < 40; i++)  // live filler: the first segment stays
      ASSERT_EQ(db.Set("f" + std::to_string(i), std::string(90, 'f')), KVS_OK);
    ASSERT_GE(db.Stats().segments, 2u);
    ASSERT_EQ(db.SetX("k", std::string(2000, '2'), kvs_now_ms() + 150), KVS_OK);
  }
  SleepMs(300);
  {
    Db db(d.path(), seg, /*auto_compact=*/true);
    EXPECT_EQ(db.Get("k"), "<absent>");
    uint64_t segs = db.Stats().segments;
    // Seal the segment of the expired SETX (a record that does not fit
    // starts a new one); automatic compaction then rewrites it alone.
    ASSERT_EQ(db.Set("big", std::string(3000, 'b')), KVS_OK);
    ASSERT_GT(db.Stats().segments, segs);
    ASSERT_TRUE(WaitFor([&] { return db.Stats().compactions >= 1; }));
    EXPECT_EQ(db.Get("k"), "<absent>");
  }
  Db db(d.path(), seg);
  EXPECT_EQ(db.Get("k"), "<absent>");
  EXPECT_EQ(db.Get("f3"), std::string(90, 'f'));
}

TEST(Expire, ARemovedKeysOlderValueNeverComesBackAfterCompactionAndRestart) {
  TempDir d;
  const uint64_t seg = 4096;
  {
    Db db(d.path(), seg, true);
    ASSERT_EQ(db.Set("k", "v1"), KVS_OK);
    for (int i = 0; i < 40; i++)
      ASSERT_EQ(db.Set("f" + std::to_string(i), std::string(90, 'f')), KVS_OK);
    ASSERT_GE(db.Stats().segments, 2u);
    ASSERT_EQ(db.Set("k", std::string(2000, '2')), KVS_OK);
    ASSERT_EQ(kvs_remove(db.get(), "k", 1), KVS_OK);
    ASSERT_EQ(db.Set("big", std::string(3000, 'b')), KVS_OK);
    ASSERT_TRUE(WaitFor([&] { return db.Stats().compactions >= 1; }));
    EXPECT_EQ(db.Get("k"), "<absent>");
  }
  Db db(d.path(), seg);
  EXPECT_EQ(db.Get("k"), "<absent>");
}

// The same with the writer's own REMOVE (active expiry) and kvs_compact().
TEST(Expire, AReapedKeysOlderValueNeverComesBackAfterCompactAndRestart) {
  TempDir d;
  {
    Db db(d.path(), 4096);
    ASSERT_EQ(db.Set("k", "v1"), KVS_OK);
    ASSERT_EQ(kvs_compact(db.get()), KVS_OK);  // seals v1's segment
    ASSERT_EQ(db.SetX("k", "v2", kvs_now_ms() + 50), KVS_OK);
    SleepMs(150);
    ASSERT_EQ(kvs_compact(db.get()), KVS_OK);
    EXPECT_EQ(db.Get("k"), "<absent>");
  }
  Db db(d.path(), 4096);
  EXPECT_EQ(db.Get("k"), "<absent>");
}

// ---- the record format --------------------------------------------------

struct Rec {
  kvs_record_type type;
  uint64_t seq, count;
  int64_t expire_ms;
  std::string key, val;
};

std::vector<Rec> ReadAll(const std::string& path, bool* sealed = nullptr) {
  std::vector<Rec> out;
  kvs_reader* r = nullptr;
  EXPECT_EQ(kvs_reader_open(path.c_str(), &r), KVS_OK) << kvs_errmsg();
  if (!r) return out;
  kvs_record rec;
  int rc;
  while ((rc = kvs_reader_next(r, &rec)) == KVS_OK)
    out.push_back({rec.type, rec.seq, rec.count, rec.expire_ms,
                   rec.key ? std::string(static_cast<const char*>(rec.key), rec.klen) : "",
                   rec.val ? std::string(static_cast<const char*>(rec.val), rec.vlen) : ""});
  EXPECT_EQ(rc, KVS_EEND) << kvs_errmsg();
  if (sealed) *sealed = kvs_reader_sealed(r);
  kvs_reader_close(r);
  return out;
}

TEST(ExpireFormat, ASetWithoutExpiryIsUnchangedAndSetxCarriesIt) {
  TempDir d;
  int64_t at = kvs_now_ms() + 3600 * 1000;
  {
    Db db(d.path());
    ASSERT_EQ(db.Set("a", "1"), KVS_OK);
    ASSERT_EQ(db.SetX("b", "2", at), KVS_OK);
  }
  std::string bytes = kvstest::ReadFile(d.file("0000000001.seg"));
  // The documented example, byte for byte: a plain SET is op 0.
  const unsigned char set_a[] = {0x85, 0x01, 0x00, 0x41, 'a', 0x41, '1', 0x1a};
  ASSERT_GE(bytes.size(), 12u + sizeof set_a);
  EXPECT_EQ(bytes.substr(12, sizeof set_a), std::string(reinterpret_cast<const char*>(set_a), sizeof set_a));
  // SETX: [2, 5, at, h'62', h'32', crc]
  EXPECT_EQ(static_cast<unsigned char>(bytes[24]), 0x86);
  EXPECT_EQ(static_cast<unsigned char>(bytes[26]), 0x05);
  std::vector<Rec> recs = ReadAll(d.file("0000000001.seg"));
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].type, KVS_REC_SET);
  EXPECT_EQ(recs[0].expire_ms, 0);
  EXPECT_EQ(recs[1].type, KVS_REC_SET);
  EXPECT_EQ(recs[1].expire_ms, at);
  EXPECT_EQ(recs[1].val, "2");
  kvstest::RunResult py = kvstest::Run({"/usr/bin/python3", KVS_SRC_DIR "/tests/check_cbor.py", d.path()});
  EXPECT_EQ(py.status, 0) << py.out << py.err;
}

// A segment with TXN and FLUSH records (as the writer frames atomic batches
// and flushes), sealed with a hint: the reader, kvs-dump --verify and
// check_cbor.py accept it, and the hint lists every record.
TEST(ExpireFormat, TxnFlushAndSetxInASealedSegmentAndItsHint) {
  TempDir d;
  int64_t at = kvs_now_ms() + 3600 * 1000;
  {
    Db db(d.path(), 4096);
    ASSERT_EQ(db.SetX("x", "expiring", at), KVS_OK);
    ASSERT_EQ(db.Set("p", "plain"), KVS_OK);
    ASSERT_EQ(kvs_compact(db.get()), KVS_OK);  // seal: the hint is written
  }
  // The codec's TXN and FLUSH records, checked byte for byte.
  unsigned char buf[32];
  size_t n = kvs__rec_encode_txn(buf, 7, 2);
  ASSERT_EQ(n, 9u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), 4), std::string("\x84\x07\x03\x02", 4));
  EXPECT_EQ(buf[4], 0x1a);
  n = kvs__rec_encode_flush(buf, 300);
  ASSERT_EQ(n, 10u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), 5), std::string("\x83\x19\x01\x2c\x04", 5));

  // Write a segment by hand: header, TXN(count 1), SET, FLUSH, footer.
  std::string seg = kvstest::ReadFile(d.file("0000000001.seg")).substr(0, 12);
  std::vector<uint32_t> crcs;
  auto add = [&](const unsigned char* p, size_t len) {
    seg.append(reinterpret_cast<const char*>(p), len);
    crcs.push_back(static_cast<uint32_t>(p[len - 4]) << 24 | p[len - 3] << 16 | p[len - 2] << 8 | p[len - 1]);
  };
  n = kvs__rec_encode_txn(buf, 10, 1);
  add(buf, n);
  // A SET of the file-written store, copied from its first record.
  std::vector<Rec> recs = ReadAll(d.file("0000000001.seg"));
  ASSERT_GE(recs.size(), 2u);
  n = kvs__rec_encode_flush(buf, 12);
  add(buf, n);
  std::string path = d.path() + "/hand";
  mkdir(path.c_str(), 0755);
  kvstest::WriteFile(path + "/0000000001.seg", seg);
  bool sealed = true;
  std::vector<Rec> got = ReadAll(path + "/0000000001.seg", &sealed);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].type, KVS_REC_TXN);
  EXPECT_EQ(got[0].seq, 10u);
  EXPECT_EQ(got[0].count, 1u);
  EXPECT_EQ(got[1].type, KVS_REC_FLUSH);
  EXPECT_EQ(got[1].seq, 12u);
  EXPECT_FALSE(sealed);
  kvstest::RunResult dump = kvstest::Run({Bin("kvs-dump"), path + "/0000000001.seg"});
  EXPECT_EQ(dump.status, 0) << dump.err;
  EXPECT_NE(dump.out.find("seq 10 txn count 1"), std::string::npos) << dump.out;
  EXPECT_NE(dump.out.find("seq 12 flush"), std::string::npos) << dump.out;
  kvstest::RunResult py = kvstest::Run({"/usr/bin/python3", KVS_SRC_DIR "/tests/check_cbor.py", path + "/0000000001.seg"});
  EXPECT_EQ(py.status, 0) << py.out << py.err;

  // The real store's sealed segment and hint: the SETX's expiry is in the
  // hint entry, and kvs-dump shows and verifies it.
  std::vector<Rec> hint = ReadAll(d.file("0000000001.hint"));
  ASSERT_EQ(hint.size(), 2u);
  EXPECT_EQ(hint[0].expire_ms, at);
  EXPECT_EQ(hint[1].expire_ms, 0);
  dump = kvstest::Run({Bin("kvs-dump"), d.path()});
  EXPECT_EQ(dump.status, 0) << dump.err;
  EXPECT_NE(dump.out.find("expires " + std::to_string(at)), std::string::npos) << dump.out;
  EXPECT_NE(dump.out.find(", in 3"), std::string::npos) << dump.out;
  dump = kvstest::Run({Bin("kvs-dump"), "--verify", d.path()});
  EXPECT_EQ(dump.status, 0) << dump.out << dump.err;
  py = kvstest::Run({"/usr/bin/python3", KVS_SRC_DIR "/tests/check_cbor.py", d.path()});
  EXPECT_EQ(py.status, 0) << py.out << py.err;
}

// A SETX whose expiry item is 0 (or missing) is not a record: the reader
// and check_cbor.py both refuse it, though its checksum holds.
TEST(ExpireFormat, ASetxWithoutAValidExpiryIsRefused) {
  TempDir d;
  {
    Db db(d.path());
    ASSERT_EQ(db.Set("a", "1"), KVS_OK);
  }
  std::string head = kvstest::ReadFile(d.file("0000000001.seg")).substr(0, 12);
  for (int variant = 0; variant < 2; variant++) {
    // [1, 5, 0, h'61', h'31', crc]  or  [1, 5, h'61', h'31', crc] (5 items)
    std::string body = variant == 0 ? std::string("\x86\x01\x05\x00\x41\x61\x41\x31", 8)
                                    : std::string("\x85\x01\x05\x41\x61\x41\x31", 7);
    uint32_t crc = kvs__crc32c(0, body.data(), body.size());
    body += '\x1a';
    for (int i = 3; i >= 0; i--) body += static_cast<char>(crc >> (8 * i));
    std::string path = d.path() + "/bad" + std::to_string(variant) + ".seg";
    kvstest::WriteFile(path, head + body);
    kvs_reader* r = nullptr;
    ASSERT_EQ(kvs_reader_open(path.c_str(), &r), KVS_OK);
    kvs_record rec;
    EXPECT_EQ(kvs_reader_next(r, &rec), KVS_ECORRUPT) << variant;
    kvs_reader_close(r);
    kvstest::RunResult py = kvstest::Run({"/usr/bin/python3", KVS_SRC_DIR "/tests/check_cbor.py", path});
    EXPECT_EQ(py.status, 1) << variant << py.out << py.err;
  }
}

// The SETX, TXN and FLUSH examples of docs/FORMAT.md, byte for byte,
// from the engine's codec.
TEST(ExpireFormat, TheDocumentedExamplesAreWhatTheCodecWrites) {
  unsigned char rec[64];
  size_t n = kvs__rec_encode_head_x(rec, KVS_REC_SET, 2, 1767225600000LL, 1);
  rec[n++] = 'b';
  n += kvs__rec_encode_vhead(rec + n, 1);
  rec[n++] = '2';
  uint32_t crc = kvs__crc32c(0, rec, n);
  rec[n++] = 0x1a;
  for (int i = 3; i >= 0; i--) rec[n++] = static_cast<unsigned char>(crc >> (8 * i));
  const unsigned char setx[] = {0x86, 0x02, 0x05, 0x1b, 0x00, 0x00, 0x01, 0x9b, 0x76, 0xda, 0xa8,
                                0x00, 0x41, 0x62, 0x41, 0x32, 0x1a, 0x04, 0x2f, 0xeb, 0x7a};
  EXPECT_EQ(std::string(reinterpret_cast<char*>(rec), n),
            std::string(reinterpret_cast<const char*>(setx), sizeof setx));
  const unsigned char open[] = {0x84, 0x03, 0x03, 0x00, 0x1a, 0xbf, 0x2c, 0xdb, 0xe1};
  n = kvs__rec_encode_txn(rec, 3, 0);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(rec), n),
            std::string(reinterpret_cast<const char*>(open), sizeof open));
  const unsigned char close[] = {0x84, 0x06, 0x03, 0x03, 0x1a, 0x97, 0xe3, 0x1e, 0x71};
  n = kvs__rec_encode_txn(rec, 6, 3);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(rec), n),
            std::string(reinterpret_cast<const char*>(close), sizeof close));
  const unsigned char flush[] = {0x83, 0x07, 0x04, 0x1a, 0xbc, 0x9a, 0x4a, 0x10};
  n = kvs__rec_encode_flush(rec, 7);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(rec), n),
            std::string(reinterpret_cast<const char*>(flush), sizeof flush));
}

}  // namespace

// lmdb_expire_test.cc - the LMDB engine's share of issue 10's contract:
// expiry times (visible until due, durable, gone after a reopen when due,
// KEEPTTL, INCR keeping them, removed by the expirer without reads), update
// ops (seeing the batch's earlier ops, ABORT), FLUSH, key versions, the
// stats' expiry figures, and stores of the older layout (user data in
// LMDB's main database), built here with liblmdb directly.
#include <lmdb.h>

#include <chrono>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"

using kvstest::TempDir;

namespace {

kvs_options LmdbOpts() {
  kvs_options o{};
  o.engine = KVS_ENGINE_LMDB;
  return o;
}

class Lmdb : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }
  void TearDown() override {
    if (db_) {
      EXPECT_EQ(kvs_close(db_), KVS_OK);
    }
  }
  void Open() {
    kvs_options o = LmdbOpts();
    ASSERT_EQ(kvs_open(d_.path().c_str(), &o, &db_), KVS_OK) << kvs_errmsg();
  }
  void Reopen() {
    ASSERT_EQ(kvs_close(db_), KVS_OK);
    db_ = nullptr;
    Open();
  }
  int Write(std::vector<kvs_op>& ops) { return kvs_write_batch(db_, ops.data(), ops.size()); }
  int Set(const std::string& k, const std::string& v, int64_t exp = 0, unsigned flags = 0) {
    kvs_op op{};
    op.type = KVS_OP_SET;
    op.key = k.data();
    op.klen = k.size();
    op.val = v.data();
    op.vlen = v.size();
    op.expire_ms = exp;
    op.flags = flags;
    int rc = kvs_write_batch(db_, &op, 1);
    return rc ? rc : op.result;
  }
  std::string Get(const std::string& k) {
    void* v = nullptr;
    size_t n = 0;
    int rc = kvs_get(db_, k.data(), k.size(), &v, &n);
    if (rc == KVS_ENOTFOUND) return "<not found>";
    if (rc) return "<error " + std::to_string(rc) + ">";
    std::string s(static_cast<char*>(v), n);
    kvs_free(v);
    return s;
  }
  // The key's expiry time, or -1 when it is absent.
  int64_t Exp(const std::string& k) {
    int64_t e = 0;
    int rc = kvs_lookup(db_, k.data(), k.size(), nullptr, nullptr, &e);
    return rc == KVS_OK ? e : -1;
  }
  std::set<std::string> Keys() {
    std::set<std::string> keys;
    uint64_t next = 0;
    EXPECT_EQ(kvs_scan(
                  db_, 0, 10,
                  [](void* ctx, const void* k, size_t n) {
                    static_cast<std::set<std::string>*>(ctx)->insert(
                        std::string(static_cast<const char*>(k), n));
                    return 0;
                  },
                  &keys, &next),
              KVS_OK);
    EXPECT_EQ(next, 0u);
    return keys;
  }
  kvs_store_stats Stats() {
    kvs_store_stats st{};
    EXPECT_EQ(kvs_stats(db_, &st), KVS_OK);
    return st;
  }
  uint64_t Version(const std::string& k) { return kvs_key_version(db_, k.data(), k.size()); }
  // Wait (at most 5 s) until pred holds.
  template <class F>
  bool WaitFor(F pred) {
    for (int i = 0; i < 500; i++) {
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return pred();
  }

  TempDir d_;
  kvs* db_ = nullptr;
};

// Ops keep pointers: the strings must outlive them (literals do).
kvs_op SetOp(const char* k, const char* v) {
  kvs_op op{};
  op.type = KVS_OP_SET;
  op.key = k;
  op.klen = strlen(k);
  op.val = v;
  op.vlen = strlen(v);
  return op;
}

kvs_op UpdOp(const char* k, kvs_update_fn* fn, void* ctx) {
  kvs_op op{};
  op.type = KVS_OP_UPDATE;
  op.key = k;
  op.klen = strlen(k);
  op.update = fn;
  op.uctx = ctx;
  op.result = 99;
  return op;
}

// What an update callback saw, and what it is to do.
struct Upd {
  bool called = false, found = false;
  std::string val;
  int64_t expire_ms = 0;
  uint64_t version = 0;
  kvs_update_action action = KVS_UPD_KEEP;
  std::string new_val;
  bool reuse_old = false;  // new_val = the old value's own bytes
  int64_t new_expire_ms = 0;
  int ret = KVS_OK;
  static int Fn(void* ctx, kvs_update* u) {
    auto* s = static_cast<Upd*>(ctx);
    s->called = true;
    s->found = u->found;
    s->val = u->val ? std::string(static_cast<const char*>(u->val), u->vlen) : "";
    s->expire_ms = u->expire_ms;
    s->version = u->version;
    u->action = s->action;
    u->new_val = s->reuse_old ? u->val : s->new_val.data();
    u->new_vlen = s->reuse_old ? u->vlen : s->new_val.size();
    u->new_expire_ms = s->new_expire_ms;
    return s->ret;
  }
};

// ---- expiry ------------------------------------------------------------------

TEST_F(Lmdb, ExpiryIsVisibleUntilDueThenTheKeyIsGoneEverywhere) {
  int64_t now = kvs_now_ms();
  ASSERT_EQ(Set("long", "1", now + 60000), KVS_OK);
  ASSERT_EQ(Set("short", "2", now + 200), KVS_OK);
  ASSERT_EQ(Set("plain", "3"), KVS_OK);
  EXPECT_EQ(Exp("long"), now + 60000);
  EXPECT_EQ(Exp("short"), now + 200);
  EXPECT_EQ(Exp("plain"), 0);
  EXPECT_EQ(Get("short"), "2");
  EXPECT_EQ(Keys(), (std::set<std::string>{"long", "short", "plain"}));
  std::this_thread::sleep_for(std::chrono::milliseconds(260));
  EXPECT_EQ(Get("short"), "<not found>");
  EXPECT_EQ(Exp("short"), -1);
  EXPECT_EQ(Keys(), (std::set<std::string>{"long", "plain"}));
  EXPECT_EQ(Stats().live_keys, 2u);
  EXPECT_EQ(Get("long"), "1");
}

TEST_F(Lmdb, ASetWithATimeNotAfterNowRemovesTheKey) {
  ASSERT_EQ(Set("k", "v"), KVS_OK);
  EXPECT_EQ(Set("k", "w", kvs_now_ms() - 1), KVS_OK);
  EXPECT_EQ(Get("k"), "<not found>");
  EXPECT_EQ(Keys().size(), 0u);
  EXPECT_EQ(Stats().live_keys, 0u);
}

TEST_F(Lmdb, ExpiryTimesSurviveAReopen) {
  int64_t exp = kvs_now_ms() + 60000;
  ASSERT_EQ(Set("k", "v", exp), KVS_OK);
  Reopen();
  EXPECT_EQ(Exp("k"), exp);
  EXPECT_EQ(Get("k"), "v");
}

TEST_F(Lmdb, AKeyThatExpiredWhileClosedIsGoneAtOpen) {
  ASSERT_EQ(Set("k", "v", kvs_now_ms() + 150), KVS_OK);
  ASSERT_EQ(Set("stay", "v"), KVS_OK);
  ASSERT_EQ(kvs_close(db_), KVS_OK);
  db_ = nullptr;
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  Open();
  EXPECT_EQ(Get("k"), "<not found>");
  EXPECT_EQ(Keys(), (std::set<std::string>{"stay"}));
  EXPECT_EQ(Stats().live_keys, 1u);
}

TEST_F(Lmdb, KeepTtlKeepsTheExpiryAndAPlainSetClearsIt) {
  int64_t exp = kvs_now_ms() + 60000;
  ASSERT_EQ(Set("k", "v1", exp), KVS_OK);
  ASSERT_EQ(Set("k", "v2", 0, KVS_SET_KEEPTTL), KVS_OK);
  EXPECT_EQ(Get("k"), "v2");
  EXPECT_EQ(Exp("k"), exp);
  ASSERT_EQ(Set("k", "v3"), KVS_OK);
  EXPECT_EQ(Exp("k"), 0);
  EXPECT_EQ(Stats().volatile_keys, 0u);
  // KEEPTTL on a missing key: no expiry.
  ASSERT_EQ(Set("n", "v", 0, KVS_SET_KEEPTTL), KVS_OK);
  EXPECT_EQ(Exp("n"), 0);
}

TEST_F(Lmdb, IncrKeepsTheExpiry) {
  int64_t exp = kvs_now_ms() + 60000;
  ASSERT_EQ(Set("n", "41", exp), KVS_OK);
  kvs_op op{};
  op.type = KVS_OP_INCR;
  op.key = "n";
  op.klen = 1;
  op.delta = 1;
  ASSERT_EQ(kvs_write_batch(db_, &op, 1), KVS_OK);
  EXPECT_EQ(op.result, KVS_OK);
  EXPECT_EQ(op.num, 42);
  EXPECT_EQ(Get("n"), "42");
  EXPECT_EQ(Exp("n"), exp);
}

TEST_F(Lmdb, AnExpiredKeyCountsAsAbsentForWrites) {
  ASSERT_EQ(Set("k", "v", kvs_now_ms() + 100), KVS_OK);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  EXPECT_EQ(Set("k", "new", 0, KVS_SET_NX), KVS_OK);  // not EEXIST
  EXPECT_EQ(Exp("k"), 0);
  EXPECT_EQ(Get("k"), "new");
}

TEST_F(Lmdb, ExpiredKeysThatAreNeverReadAreRemoved) {
  int64_t exp = kvs_now_ms() + 100;
  std::vector<std::string> keys;
  for (int i = 0; i < 600; i++) keys.push_back("k" + std::to_string(i));
  std::vector<kvs_op> ops;
  for (auto& k : keys) {
    ops.push_back(SetOp(k.c_str(), "v"));
    ops.back().expire_ms = exp;
  }
  ASSERT_EQ(Write(ops), KVS_OK);
  EXPECT_EQ(Stats().volatile_keys, 600u);
  // expired_keys counts only removals (the stats read nothing away).
  EXPECT_TRUE(WaitFor([&] { return Stats().expired_keys == 600; })) << Stats().expired_keys;
  EXPECT_EQ(Stats().live_keys, 0u);
  EXPECT_EQ(Stats().volatile_keys, 0u);
}

TEST_F(Lmdb, StatsCountVolatileKeysAndTheirMeanTtl) {
  int64_t now = kvs_now_ms();
  ASSERT_EQ(Set("a", "v", now + 10000), KVS_OK);
  ASSERT_EQ(Set("b", "v", now + 20000), KVS_OK);
  ASSERT_EQ(Set("c", "v"), KVS_OK);
  kvs_store_stats st = Stats();
  EXPECT_EQ(st.live_keys, 3u);
  EXPECT_EQ(st.volatile_keys, 2u);
  EXPECT_GT(st.avg_ttl_ms, 14000u);
  EXPECT_LE(st.avg_ttl_ms, 15000u);
  Reopen();  // the sum is rebuilt at open
  st = Stats();
  EXPECT_EQ(st.volatile_keys, 2u);
  EXPECT_GT(st.avg_ttl_ms, 14000u);
  EXPECT_LE(st.avg_ttl_ms, 15000u);
  ASSERT_EQ(Set("b", "v"), KVS_OK);  // clears b's expiry
  st = Stats();
  EXPECT_EQ(st.volatile_keys, 1u);
  EXPECT_GT(st.avg_ttl_ms, 9000u);
  EXPECT_LE(st.avg_ttl_ms, 10000u);
}

// ---- update ops -------------------------------------------------------------

TEST_F(Lmdb, AnUpdateSeesTheEarlierOpsOfItsBatch) {
  ASSERT_EQ(Set("k", "old"), KVS_OK);
  uint64_t v0 = Version("k");
  int64_t exp = kvs_now_ms() + 60000;
  Upd u;
  u.action = KVS_UPD_SET;
  u.new_val = "from-update";
  u.new_expire_ms = exp;
  u.ret = 1234;
  std::vector<kvs_op> ops = {SetOp("k", "mid"), UpdOp("k", Upd::Fn, &u)};
  ops[0].expire_ms = exp - 1000;
  ASSERT_EQ(Write(ops), KVS_OK);
  ASSERT_TRUE(u.called);
  EXPECT_TRUE(u.found);
  EXPECT_EQ(u.val, "mid");
  EXPECT_EQ(u.expire_ms, exp - 1000);
  EXPECT_NE(u.version, v0);
  EXPECT_EQ(ops[1].result, 1234);
  EXPECT_EQ(Get("k"), "from-update");
  EXPECT_EQ(Exp("k"), exp);
  // An update of a missing key sees it absent.
  Upd m;
  std::vector<kvs_op> ops2 = {UpdOp("missing", Upd::Fn, &m)};
  ASSERT_EQ(Write(ops2), KVS_OK);
  EXPECT_TRUE(m.called);
  EXPECT_FALSE(m.found);
  EXPECT_EQ(ops2[0].result, KVS_OK);
}

TEST_F(Lmdb, AbortCancelsTheLaterOpsOnly) {
  Upd u;
  u.action = KVS_UPD_ABORT;
  u.ret = 7;
  std::vector<kvs_op> ops = {SetOp("before", "1"), UpdOp("x", Upd::Fn, &u), SetOp("after", "2")};
  ops[2].result = 99;
  ASSERT_EQ(Write(ops), KVS_OK);
  EXPECT_EQ(ops[0].result, KVS_OK);
  EXPECT_EQ(ops[1].result, 7);
  EXPECT_EQ(ops[2].result, KVS_ECANCELED);
  EXPECT_EQ(Get("before"), "1");
  EXPECT_EQ(Get("after"), "<not found>");
}

TEST_F(Lmdb, UpdateRemovesChangesTheExpiryAlone) {
  ASSERT_EQ(Set("k", "value"), KVS_OK);
  // The old value's own bytes as the new value, with an expiry (EXPIRE).
  Upd e;
  e.action = KVS_UPD_SET;
  e.reuse_old = true;
  e.new_expire_ms = kvs_now_ms() + 60000;
  std::vector<kvs_op> ops = {UpdOp("k", Upd::Fn, &e)};
  ASSERT_EQ(Write(ops), KVS_OK);
  EXPECT_EQ(Get("k"), "value");
  EXPECT_EQ(Exp("k"), e.new_expire_ms);
  // A part of the old value (copied before the put).
  Upd part;
  part.action = KVS_UPD_SET;
  part.reuse_old = true;
  std::vector<kvs_op> ops1 = {UpdOp("k", [](void* c, kvs_update* u) {
                                int r = Upd::Fn(c, u);
                                u->new_val = static_cast<const char*>(u->val) + 1;
                                u->new_vlen = 3;
                                return r;
                              }, &part)};
  ASSERT_EQ(Write(ops1), KVS_OK);
  EXPECT_EQ(Get("k"), "alu");
  EXPECT_EQ(Exp("k"), 0);
  // A time in the past removes; REMOVE removes.
  Upd past;
  past.action = KVS_UPD_SET;
  past.new_val = "x";
  past.new_expire_ms = kvs_now_ms() - 5;
  std::vector<kvs_op> ops2 = {UpdOp("k", Upd::Fn, &past)};
  ASSERT_EQ(Write(ops2), KVS_OK);
  EXPECT_EQ(Get("k"), "<not found>");
  ASSERT_EQ(Set("r", "v", kvs_now_ms() + 60000), KVS_OK);
  Upd rm;
  rm.action = KVS_UPD_REMOVE;
  std::vector<kvs_op> ops3 = {UpdOp("r", Upd::Fn, &rm)};
  ASSERT_EQ(Write(ops3), KVS_OK);
  EXPECT_EQ(Get("r"), "<not found>");
  EXPECT_EQ(Stats().volatile_keys, 0u);
}

TEST_F(Lmdb, UpdatesRunThroughSubmitToo) {
  ASSERT_EQ(Set("k", "v"), KVS_OK);
  Upd u;
  u.action = KVS_UPD_SET;
  u.new_val = "w";
  std::vector<kvs_op> ops = {UpdOp("k", Upd::Fn, &u)};
  std::atomic<int> done{1};
  ASSERT_EQ(kvs_submit_flags(db_, ops.data(), ops.size(), KVS_BATCH_ATOMIC,
                             [](void* c, int rc) { static_cast<std::atomic<int>*>(c)->store(rc); }, &done),
            KVS_OK);
  ASSERT_TRUE(WaitFor([&] { return done.load() != 1; }));
  EXPECT_EQ(done.load(), KVS_OK);
  EXPECT_EQ(u.val, "v");
  EXPECT_EQ(Get("k"), "w");
}

// ---- flush -------------------------------------------------------------------

TEST_F(Lmdb, FlushRemovesEveryKeyDurably) {
  ASSERT_EQ(Set("a", "1"), KVS_OK);
  ASSERT_EQ(Set("b", "2", kvs_now_ms() + 60000), KVS_OK);
  ASSERT_EQ(Set("gone", "3", kvs_now_ms() + 50), KVS_OK);
  std::this_thread::sleep_for(std::chrono::milliseconds(80));
  kvs_op f{};
  f.type = KVS_OP_FLUSH;
  std::vector<kvs_op> ops = {f, SetOp("after", "4")};
  ASSERT_EQ(Write(ops), KVS_OK);
  EXPECT_EQ(ops[0].result, KVS_OK);
  EXPECT_EQ(ops[0].num, 2);  // the live keys
  EXPECT_EQ(Keys(), (std::set<std::string>{"after"}));
  Reopen();
  EXPECT_EQ(Keys(), (std::set<std::string>{"after"}));
  EXPECT_EQ(Get("a"), "<not found>");
  kvs_store_stats st = Stats();
  EXPECT_EQ(st.live_keys, 1u);
  EXPECT_EQ(st.volatile_keys, 0u);
  EXPECT_EQ(st.avg_ttl_ms, 0u);
}

// ---- key versions --------------------------------------------------------------

TEST_F(Lmdb, KeyVersionsChangeOnWritesNotOnExpiry) {
  uint64_t v0 = Version("k");
  ASSERT_EQ(Set("k", "v"), KVS_OK);
  uint64_t v1 = Version("k");
  EXPECT_NE(v1, v0);
  ASSERT_EQ(Set("k", "v", kvs_now_ms() + 100), KVS_OK);
  uint64_t v2 = Version("k");
  EXPECT_NE(v2, v1);
  // Expiry, and the expirer's removal, are not writes.
  EXPECT_TRUE(WaitFor([&] { return Stats().expired_keys == 1; }));
  EXPECT_EQ(Version("k"), v2);
  // A remove that finds nothing changes nothing either.
  EXPECT_EQ(kvs_remove(db_, "k", 1), KVS_ENOTFOUND);
  EXPECT_EQ(Version("k"), v2);
  ASSERT_EQ(Set("k", "v"), KVS_OK);
  uint64_t v3 = Version("k");
  EXPECT_NE(v3, v2);
  EXPECT_EQ(kvs_remove(db_, "k", 1), KVS_OK);
  uint64_t v4 = Version("k");
  EXPECT_NE(v4, v3);
  // A flush changes every key's number.
  uint64_t other = Version("other");
  kvs_op f{};
  f.type = KVS_OP_FLUSH;
  ASSERT_EQ(kvs_write_batch(db_, &f, 1), KVS_OK);
  EXPECT_NE(Version("k"), v4);
  EXPECT_NE(Version("other"), other);
  // An update callback sees the number kvs_key_version gives.
  uint64_t before = Version("k");
  Upd u;
  std::vector<kvs_op> ops = {UpdOp("k", Upd::Fn, &u)};
  ASSERT_EQ(Write(ops), KVS_OK);
  EXPECT_EQ(u.version, before);
  EXPECT_EQ(Version("k"), before);  // KEEP wrote nothing
}

// ---- stores of the older layout ----------------------------------------------------

// Write `n` keys (and the given extra pairs) into the main database of an
// LMDB environment in dir, as the engine did before it had named databases.
void BuildOldStore(const std::string& dir, int n, const std::vector<std::pair<std::string, std::string>>& extra) {
  kvstest::WriteFile(dir + "/ENGINE", "lmdb\n");
  MDB_env* env = nullptr;
  MDB_txn* txn = nullptr;
  MDB_dbi dbi;
  ASSERT_EQ(mdb_env_create(&env), 0);
  ASSERT_EQ(mdb_env_set_mapsize(env, 64u << 20), 0);
  ASSERT_EQ(mdb_env_open(env, dir.c_str(), 0, 0644), 0);
  ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
  ASSERT_EQ(mdb_dbi_open(txn, nullptr, 0, &dbi), 0);
  auto put = [&](const std::string& k, const std::string& v) {
    MDB_val mk{k.size(), const_cast<char*>(k.data())}, mv{v.size(), const_cast<char*>(v.data())};
    ASSERT_EQ(mdb_put(txn, dbi, &mk, &mv, 0), 0);
  };
  for (int i = 0; i < n; i++) put("key" + std::to_string(i), "val" + std::to_string(i));
  for (auto& p : extra) put(p.first, p.second);
  ASSERT_EQ(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
}

// The keys of the main database of the environment in dir.
std::set<std::string> MainKeys(const std::string& dir) {
  std::set<std::string> keys;
  MDB_env* env = nullptr;
  MDB_txn* txn = nullptr;
  MDB_cursor* cur = nullptr;
  MDB_dbi dbi;
  MDB_val k, v;
  EXPECT_EQ(mdb_env_create(&env), 0);
  EXPECT_EQ(mdb_env_set_maxdbs(env, 4), 0);
  EXPECT_EQ(mdb_env_open(env, dir.c_str(), MDB_RDONLY, 0644), 0);
  EXPECT_EQ(mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn), 0);
  EXPECT_EQ(mdb_dbi_open(txn, nullptr, 0, &dbi), 0);
  EXPECT_EQ(mdb_cursor_open(txn, dbi, &cur), 0);
  for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    keys.insert(std::string(static_cast<char*>(k.mv_data), k.mv_size));
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  mdb_env_close(env);
  return keys;
}

TEST(LmdbOldLayout, AStoreWithItsDataInTheMainDatabaseOpensAndWorks) {
  TempDir d;
  // More keys than one migration transaction moves, and user keys named as
  // the engine's databases.
  const int n = 10000;
  BuildOldStore(d.path(), n, {{"kvs.data", "user1"}, {"kvs.expires", "user2"}, {"kvs.due", ""}});
  kvs_options o = LmdbOpts();
  kvs* db = nullptr;
  ASSERT_EQ(kvs_open(d.path().c_str(), &o, &db), KVS_OK) << kvs_errmsg();
  auto get = [&](const std::string& k) {
    void* v = nullptr;
    size_t len = 0;
    int rc = kvs_get(db, k.data(), k.size(), &v, &len);
    if (rc) return std::string("<") + kvs_strerror(rc) + ">";
    std::string s(static_cast<char*>(v), len);
    kvs_free(v);
    return s;
  };
  EXPECT_EQ(get("key0"), "val0");
  EXPECT_EQ(get("key9999"), "val9999");
  EXPECT_EQ(get("kvs.data"), "user1");
  EXPECT_EQ(get("kvs.expires"), "user2");
  EXPECT_EQ(get("kvs.due"), "");
  kvs_store_stats st{};
  ASSERT_EQ(kvs_stats(db, &st), KVS_OK);
  EXPECT_EQ(st.live_keys, uint64_t(n + 3));
  size_t scanned = 0;
  uint64_t next = 0;
  ASSERT_EQ(kvs_scan(db, 0, 10, [](void* c, const void*, size_t) { ++*static_cast<size_t*>(c); return 0; },
                     &scanned, &next),
            KVS_OK);
  EXPECT_EQ(scanned, size_t(n + 3));
  // Expiry works on it, and overwriting a key named as a database is a
  // user write.
  kvs_op op{};
  op.type = KVS_OP_SET;
  op.key = "kvs.due";
  op.klen = 7;
  op.val = "x";
  op.vlen = 1;
  op.expire_ms = kvs_now_ms() + 60000;
  ASSERT_EQ(kvs_write_batch(db, &op, 1), KVS_OK);
  EXPECT_EQ(op.result, KVS_OK);
  ASSERT_EQ(kvs_close(db), KVS_OK);
  // Migrated: the main database holds the three names only.
  EXPECT_EQ(MainKeys(d.path()), (std::set<std::string>{"kvs.data", "kvs.due", "kvs.expires"}));
  ASSERT_EQ(kvs_open(d.path().c_str(), &o, &db), KVS_OK) << kvs_errmsg();
  EXPECT_EQ(get("key5000"), "val5000");
  EXPECT_EQ(get("kvs.due"), "x");
  int64_t exp = 0;
  ASSERT_EQ(kvs_lookup(db, "kvs.due", 7, nullptr, nullptr, &exp), KVS_OK);
  EXPECT_EQ(exp, op.expire_ms);
  ASSERT_EQ(kvs_stats(db, &st), KVS_OK);
  EXPECT_EQ(st.live_keys, uint64_t(n + 3));
  EXPECT_EQ(st.volatile_keys, 1u);
  EXPECT_EQ(kvs_close(db), KVS_OK);
}

// A migration cut short (the named databases exist, some user keys are
// still in the main database) goes on at the next open.
TEST(LmdbOldLayout, AnInterruptedMigrationResumes) {
  TempDir d;
  kvs_options o = LmdbOpts();
  kvs* db = nullptr;
  ASSERT_EQ(kvs_open(d.path().c_str(), &o, &db), KVS_OK) << kvs_errmsg();
  ASSERT_EQ(kvs_set(db, "new", 3, "1", 1), KVS_OK);
  ASSERT_EQ(kvs_close(db), KVS_OK);
  {
    MDB_env* env = nullptr;
    MDB_txn* txn = nullptr;
    MDB_dbi dbi;
    ASSERT_EQ(mdb_env_create(&env), 0);
    ASSERT_EQ(mdb_env_set_maxdbs(env, 4), 0);
    ASSERT_EQ(mdb_env_open(env, d.path().c_str(), 0, 0644), 0);
    ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
    ASSERT_EQ(mdb_dbi_open(txn, nullptr, 0, &dbi), 0);
    MDB_val k{3, const_cast<char*>("old")}, v{1, const_cast<char*>("2")};
    ASSERT_EQ(mdb_put(txn, dbi, &k, &v, 0), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
  }
  ASSERT_EQ(kvs_open(d.path().c_str(), &o, &db), KVS_OK) << kvs_errmsg();
  void* v = nullptr;
  size_t len = 0;
  ASSERT_EQ(kvs_get(db, "old", 3, &v, &len), KVS_OK);
  EXPECT_EQ(std::string(static_cast<char*>(v), len), "2");
  kvs_free(v);
  ASSERT_EQ(kvs_get(db, "new", 3, &v, &len), KVS_OK);
  kvs_free(v);
  ASSERT_EQ(kvs_close(db), KVS_OK);
  EXPECT_EQ(MainKeys(d.path()), (std::set<std::string>{"kvs.data", "kvs.due", "kvs.expires"}));
}

}  // namespace

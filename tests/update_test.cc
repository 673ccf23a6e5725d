// update_test.cc - the engine's update ops (KVS_OP_UPDATE), key versions,
// atomic batches (KVS_BATCH_ATOMIC) and flushes (KVS_OP_FLUSH), on both
// engines.
#include <string>
#include <vector>

#include "test_util.h"

using kvstest::TempDir;

namespace {

class Db {
 public:
  Db(const std::string& dir, kvs_engine e) : dir_(dir) {
    opt_.engine = e;
    Open();
  }
  ~Db() {
    if (db_) kvs_close(db_);
  }
  void Open() { ASSERT_EQ(kvs_open(dir_.c_str(), &opt_, &db_), KVS_OK) << kvs_errmsg(); }
  void Reopen() {
    ASSERT_EQ(kvs_close(db_), KVS_OK);
    db_ = nullptr;
    Open();
  }
  std::string Get(const std::string& k) {
    void* v = nullptr;
    size_t n = 0;
    int rc = kvs_get(db_, k.data(), k.size(), &v, &n);
    if (rc == KVS_ENOTFOUND) return "<none>";
    if (rc != KVS_OK) return "<error " + std::to_string(rc) + ">";
    std::string s(static_cast<char*>(v), n);
    kvs_free(v);
    return s;
  }
  int Set(const std::string& k, const std::string& v) {
    return kvs_set(db_, k.data(), k.size(), v.data(), v.size());
  }
  kvs* db() { return db_; }

 private:
  std::string dir_;
  kvs_options opt_{};
  kvs* db_ = nullptr;
};

// An update that appends `suffix`, and remembers what it saw.
struct Append {
  explicit Append(const char* s) : suffix(s) {}
  std::string suffix;
  std::string seen = "<unset>";
  std::string next;
  uint64_t version = 0;
};
int AppendFn(void* ctx, kvs_update* u) {
  auto* a = static_cast<Append*>(ctx);
  a->seen = u->found ? std::string(static_cast<const char*>(u->val), u->vlen) : "<none>";
  a->version = u->version;
  a->next = (u->found ? a->seen : "") + a->suffix;
  u->action = KVS_UPD_SET;
  u->new_val = a->next.data();
  u->new_vlen = a->next.size();
  return 42;
}

kvs_op UpdateOp(const std::string& key, kvs_update_fn* fn, void* ctx) {
  kvs_op op{};
  op.type = KVS_OP_UPDATE;
  op.key = key.data();
  op.klen = key.size();
  op.update = fn;
  op.uctx = ctx;
  return op;
}

class Engines : public ::testing::TestWithParam<kvs_engine> {};

TEST_P(Engines, UpdateSeesValueAndSetsNewOne) {
  TempDir d;
  Db s(d.path(), GetParam());
  ASSERT_EQ(s.Set("k", "abc"), KVS_OK);
  Append a("def");
  std::string k = "k";
  kvs_op op = UpdateOp(k, AppendFn, &a);
  ASSERT_EQ(kvs_write_batch(s.db(), &op, 1), KVS_OK) << kvs_errmsg();
  EXPECT_EQ(op.result, 42);
  EXPECT_EQ(a.seen, "abc");
  EXPECT_EQ(s.Get("k"), "abcdef");
  s.Reopen();
  EXPECT_EQ(s.Get("k"), "abcdef");
}

TEST_P(Engines, UpdateSeesEarlierOpsOfItsBatch) {
  TempDir d;
  Db s(d.path(), GetParam());
  std::string k = "k", v = "x";
  Append a1("1"), a2("2");
  kvs_op ops[4] = {};
  ops[0].type = KVS_OP_SET;
  ops[0].key = k.data();
  ops[0].klen = 1;
  ops[0].val = v.data();
  ops[0].vlen = 1;
  ops[1] = UpdateOp(k, AppendFn, &a1);
  ops[2].type = KVS_OP_INCR;  // not an integer: fails, changes nothing
  ops[2].key = k.data();
  ops[2].klen = 1;
  ops[2].delta = 1;
  ops[3] = UpdateOp(k, AppendFn, &a2);
  ASSERT_EQ(kvs_write_batch(s.db(), ops, 4), KVS_OK);
  EXPECT_EQ(a1.seen, "x");
  EXPECT_EQ(ops[2].result, KVS_ENOTINT);
  EXPECT_EQ(a2.seen, "x1");
  EXPECT_EQ(s.Get("k"), "x12");
}

TEST_P(Engines, UpdateSeesIncrResultOfItsBatch) {
  TempDir d;
  Db s(d.path(), GetParam());
  std::string k = "n";
  Append a("!");
  kvs_op ops[2] = {};
  ops[0].type = KVS_OP_INCR;
  ops[0].key = k.data();
  ops[0].klen = 1;
  ops[0].delta = 41;
  ops[1] = UpdateOp(k, AppendFn, &a);
  ASSERT_EQ(kvs_write_batch(s.db(), ops, 2), KVS_OK);
  EXPECT_EQ(a.seen, "41");
  EXPECT_EQ(s.Get("n"), "41!");
}

int RemoveFn(void*, kvs_update* u) {
  u->action = KVS_UPD_REMOVE;
  return u->found ? 1 : 0;
}
int KeepFn(void*, kvs_update* u) {
  u->action = KVS_UPD_KEEP;
  return u->found ? 1 : 0;
}
int AbortFn(void*, kvs_update* u) {
  u->action = KVS_UPD_ABORT;
  return 7;
}

TEST_P(Engines, UpdateRemovesAndKeeps) {
  TempDir d;
  Db s(d.path(), GetParam());
  ASSERT_EQ(s.Set("a", "1"), KVS_OK);
  std::string a = "a", b = "b";
  kvs_op ops[3] = {UpdateOp(a, KeepFn, nullptr), UpdateOp(a, RemoveFn, nullptr),
                   UpdateOp(b, RemoveFn, nullptr)};
  ASSERT_EQ(kvs_write_batch(s.db(), ops, 3), KVS_OK);
  EXPECT_EQ(ops[0].result, 1);
  EXPECT_EQ(ops[1].result, 1);
  EXPECT_EQ(ops[2].result, 0);
  EXPECT_EQ(s.Get("a"), "<none>");
  s.Reopen();
  EXPECT_EQ(s.Get("a"), "<none>");
}

TEST_P(Engines, AbortCancelsTheRestOfTheBatch) {
  TempDir d;
  Db s(d.path(), GetParam());
  std::string a = "a", b = "b", v = "v";
  kvs_op ops[3] = {};
  ops[0].type = KVS_OP_SET;
  ops[0].key = a.data();
  ops[0].klen = 1;
  ops[0].val = v.data();
  ops[0].vlen = 1;
  ops[1] = UpdateOp(b, AbortFn, nullptr);
  ops[2] = ops[0];
  ops[2].key = b.data();
  ASSERT_EQ(kvs_write_batch(s.db(), ops, 3), KVS_OK);
  EXPECT_EQ(ops[0].result, KVS_OK);
  EXPECT_EQ(ops[1].result, 7);
  EXPECT_EQ(ops[2].result, KVS_ECANCELED);
  EXPECT_EQ(s.Get("a"), "v");
  EXPECT_EQ(s.Get("b"), "<none>");
}

TEST_P(Engines, UpdateTooBigValueIsRefused) {
  TempDir d;
  Db s(d.path(), GetParam());
  std::string k = "k";
  auto big = [](void*, kvs_update* u) -> int {
    static const char one = 'x';
    u->action = KVS_UPD_SET;
    u->new_val = &one;
    u->new_vlen = (size_t)KVS_MAX_VALUE + 1;  // never read: refused first
    return 0;
  };
  kvs_op op = UpdateOp(k, big, nullptr);
  ASSERT_EQ(kvs_write_batch(s.db(), &op, 1), KVS_OK);
  EXPECT_EQ(op.result, KVS_ETOOBIG);
  EXPECT_EQ(s.Get("k"), "<none>");
}

TEST_P(Engines, KeyVersionChangesOnEveryWriteThatTakesEffect) {
  TempDir d;
  Db s(d.path(), GetParam());
  uint64_t v0 = kvs_key_version(s.db(), "k", 1);
  ASSERT_EQ(s.Set("k", "1"), KVS_OK);
  uint64_t v1 = kvs_key_version(s.db(), "k", 1);
  EXPECT_NE(v0, v1);
  ASSERT_EQ(s.Set("k", "1"), KVS_OK);  // the same value is still a write
  uint64_t v2 = kvs_key_version(s.db(), "k", 1);
  EXPECT_NE(v1, v2);
  ASSERT_EQ(kvs_remove(s.db(), "k", 1), KVS_OK);
  uint64_t v3 = kvs_key_version(s.db(), "k", 1);
  EXPECT_NE(v2, v3);
  // A remove of a missing key changes nothing.
  ASSERT_EQ(kvs_remove(s.db(), "k", 1), KVS_ENOTFOUND);
  EXPECT_EQ(kvs_key_version(s.db(), "k", 1), v3);
  // An update sees the number kvs_key_version gives.
  Append a("x");
  std::string k = "k";
  kvs_op op = UpdateOp(k, AppendFn, &a);
  ASSERT_EQ(kvs_write_batch(s.db(), &op, 1), KVS_OK);
  EXPECT_EQ(a.version, v3);
  EXPECT_NE(kvs_key_version(s.db(), "k", 1), v3);
}

// A write staged earlier in the same batch counts for a later update's
// version: a WATCH check placed after it must see the change.
TEST_P(Engines, UpdateVersionSeesEarlierWriteOfTheBatch) {
  TempDir d;
  Db s(d.path(), GetParam());
  std::string k = "k", v = "v";
  uint64_t before = kvs_key_version(s.db(), "k", 1);
  Append a("x");
  kvs_op ops[2] = {};
  ops[0].type = KVS_OP_SET;
  ops[0].key = k.data();
  ops[0].klen = 1;
  ops[0].val = v.data();
  ops[0].vlen = 1;
  ops[1] = UpdateOp(k, AppendFn, &a);
  ASSERT_EQ(kvs_write_batch(s.db(), ops, 2), KVS_OK);
  EXPECT_NE(a.version, before);
}

INSTANTIATE_TEST_SUITE_P(, Engines, ::testing::Values(KVS_ENGINE_KVS),
                         [](const ::testing::TestParamInfo<kvs_engine>& i) {
                           return std::string(i.param == KVS_ENGINE_LMDB ? "lmdb" : "kvs");
                         });

}  // namespace

// The thread-context assertions of engine_int.h (KVS__ASSERT_WRITER,
// _IN_RCU, _NOT_IN_RCU, _HELD, and kvs__lock's own checks) catch what their
// comments forbid: tests/assert_child.c breaks one rule per mode, and the
// process must abort naming the check.  Without the assertions each of
// these children would go on (or hang) instead.
#include <gtest/gtest.h>

#include <csignal>
#include <string>

#include "test_util.h"

namespace {

using kvstest::TempDir;

kvstest::RunResult RunChild(const std::string& mode) {
  TempDir d;
  return kvstest::Run({std::string(KVS_TEST_DIR) + "/assert-child", d.path() + "/db", mode}, "", 60);
}

TEST(ThreadAsserts, FollowingTheRulesDoesNotAbort) {
  auto r = RunChild("ok");
  EXPECT_EQ(r.status, 0) << r.err;
}

// kvs_open and kvs_close mark the calling thread as the new store's writer
// for a while; on a thread that was another store's writer (a callback
// there may open or close a store) the old mark must come back.
TEST(ThreadAsserts, OpeningAnotherStoreKeepsTheWriterMark) {
  auto r = RunChild("nested");
  EXPECT_EQ(r.status, 0) << r.err;
}

struct Case {
  const char* mode;
  const char* check;  // what the abort message must name
};

class ThreadAssertsBroken : public ::testing::TestWithParam<Case> {};

TEST_P(ThreadAssertsBroken, AbortsNamingTheRule) {
  auto r = RunChild(GetParam().mode);
  EXPECT_EQ(r.status, 128 + SIGABRT) << r.err;
  EXPECT_NE(r.err.find("assertion failed"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(GetParam().check), std::string::npos) << r.err;
}

INSTANTIATE_TEST_SUITE_P(
    Modes, ThreadAssertsBroken,
    ::testing::Values(Case{"writer", "kvs__writer_of == (db)"},
                      Case{"rcu", "urcu_memb_read_ongoing()"},
                      Case{"in-rcu", "!urcu_memb_read_ongoing()"},
                      Case{"held", "kvs__holds(&db->sync.mu)"},
                      Case{"relock", "!kvs__holds(mu)"}),
    [](const ::testing::TestParamInfo<Case>& i) {
      std::string n = i.param.mode;
      for (char& c : n)
        if (c == '-') c = '_';
      return n;
    });

}  // namespace

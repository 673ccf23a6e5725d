// run_gtest_test.cc - tests/run-gtest.sh, the wrapper `make test` runs the
// suites with: its summary line and exit status for googletest 1.12's output
// with and without --gtest_brief, skipped tests included.
#include <string>

#include "test_util.h"

namespace {

using kvstest::RunResult;
using kvstest::TempDir;

// Run run-gtest.sh on a fake test binary that prints `output` and exits
// with `status`.
RunResult Wrap(const std::string& output, int status) {
  TempDir t;
  std::string fake = t.file("fake-tests");
  std::string out = t.file("out.txt");
  kvstest::WriteFile(out, output);
  kvstest::WriteFile(fake, "#!/bin/sh\ncat '" + out + "'\nexit " + std::to_string(status) + "\n");
  chmod(fake.c_str(), 0755);
  return kvstest::Run({"/bin/sh", std::string(KVS_SRC_DIR) + "/tests/run-gtest.sh", fake}, "", 30);
}

std::string LastLine(const std::string& s) {
  std::string t = s;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  size_t nl = t.rfind('\n');
  return nl == std::string::npos ? t : t.substr(nl + 1);
}

// What googletest 1.12 (Debian 12) printed for 2 passed and 2 skipped
// tests, with --gtest_brief=1 and without.
const char kBriefSkipped[] =
    "Running main() from ./googletest/src/gtest_main.cc\n"
    "t.cc:3: Skipped\nno IPv6\n"
    "t.cc:4: Skipped\nnot root\n"
    "[==========] 4 tests from 1 test suite ran. (0 ms total)\n"
    "[  PASSED  ] 2 tests.\n"
    "[  SKIPPED ] 2 tests.\n";
const char kFullSkipped[] =
    "[==========] Running 4 tests from 1 test suite.\n"
    "[ RUN      ] A.Pass\n[       OK ] A.Pass (0 ms)\n"
    "[ RUN      ] A.Skip\nt.cc:3: Skipped\n\n[  SKIPPED ] A.Skip (0 ms)\n"
    "[ RUN      ] A.Skip2\nt.cc:4: Skipped\n\n[  SKIPPED ] A.Skip2 (0 ms)\n"
    "[ RUN      ] A.Pass2\n[       OK ] A.Pass2 (0 ms)\n"
    "[==========] 4 tests from 1 test suite ran. (0 ms total)\n"
    "[  PASSED  ] 2 tests.\n"
    "[  SKIPPED ] 2 tests, listed below:\n"
    "[  SKIPPED ] A.Skip\n[  SKIPPED ] A.Skip2\n";

TEST(RunGtest, SkippedTestsAreNotFailuresInBriefMode) {
  RunResult r = Wrap(kBriefSkipped, 0);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(LastLine(r.out), "tests: 2 passed, 0 failed, 2 skipped") << r.out;
}

TEST(RunGtest, SkippedTestsAreNotFailuresInFullMode) {
  RunResult r = Wrap(kFullSkipped, 0);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(LastLine(r.out), "tests: 2 passed, 0 failed, 2 skipped") << r.out;
}

TEST(RunGtest, OneSkippedTestIsCountedInTheSingular) {
  RunResult r = Wrap(
      "[==========] 2 tests from 1 test suite ran. (0 ms total)\n"
      "[  PASSED  ] 1 test.\n[  SKIPPED ] 1 test.\n",
      0);
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(LastLine(r.out), "tests: 1 passed, 0 failed, 1 skipped") << r.out;
}

TEST(RunGtest, FailuresAreStillCounted) {
  // Brief mode prints no count of failures: ran - passed - skipped.
  RunResult r = Wrap(
      "t.cc:5: Failure\nFailed\n[  FAILED  ] A.Fail (0 ms)\n"
      "[==========] 4 tests from 1 test suite ran. (0 ms total)\n"
      "[  PASSED  ] 1 test.\n[  SKIPPED ] 2 tests.\n",
      1);
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(LastLine(r.out), "tests: 1 passed, 1 failed, 2 skipped") << r.out;
  // A binary that exits 0 although the counts say one failed.
  r = Wrap(
      "[==========] 3 tests from 1 test suite ran. (0 ms total)\n"
      "[  PASSED  ] 1 test.\n[  SKIPPED ] 1 test.\n",
      0);
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(LastLine(r.out), "tests: 1 passed, 1 failed, 1 skipped") << r.out;
  // A crash before the summary.
  r = Wrap("[ RUN      ] A.Crash\n", 134);
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(LastLine(r.out), "tests: 0 passed, 1 failed") << r.out;
  // Nothing ran (a filter that matched nothing).
  r = Wrap("[==========] 0 tests from 0 test suites ran. (0 ms total)\n[  PASSED  ] 0 tests.\n", 0);
  EXPECT_EQ(r.status, 1);
}

}  // namespace

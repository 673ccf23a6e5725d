// fuzz_corpus_test.cc - every checked-in fuzz corpus (tests/fuzz/NAME/)
// replayed through its harness (tests/fuzz_NAME.c), built with this build's
// compiler and sanitizers as build/tests/fuzz-replay-NAME.  CI has no clang:
// this is how the harnesses' checks and the corpora run on every commit.
#include <dirent.h>
#include <sys/stat.h>

#include <cstdlib>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "test_util.h"

namespace {

std::vector<std::string> CorpusNames() {
  std::vector<std::string> names;
  std::string root = std::string(KVS_SRC_DIR) + "/tests/fuzz";
  if (DIR *d = opendir(root.c_str())) {
    while (struct dirent *e = readdir(d))
      // Corpora are directories; a generator (gen_NAME.py) sits beside them.
      // (stat, not d_type, which some filesystems leave DT_UNKNOWN.)
      if (e->d_name[0] != '.') {
        struct stat st;
        if (stat((root + "/" + e->d_name).c_str(), &st) == 0 && S_ISDIR(st.st_mode))
          names.push_back(e->d_name);
      }
    closedir(d);
  }
  return names;
}

class FuzzCorpus : public testing::TestWithParam<std::string> {};

TEST_P(FuzzCorpus, ReplaysWithoutFailure) {
  std::string name = GetParam();
  std::string bin = std::string(KVS_TEST_DIR) + "/fuzz-replay-" + name;
  std::string dir = std::string(KVS_SRC_DIR) + "/tests/fuzz/" + name;
  kvstest::RunResult r = kvstest::Run({bin, dir}, "", 300);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  // "fuzz-replay: N inputs, no failure", with N > 0: an empty corpus
  // checks nothing.
  size_t at = r.out.find("fuzz-replay: ");
  ASSERT_NE(at, std::string::npos) << r.out << r.err;
  EXPECT_GT(strtoul(r.out.c_str() + at + 13, nullptr, 10), 0ul) << r.out;
  EXPECT_NE(r.out.find("no failure"), std::string::npos) << r.out << r.err;
}

// The harnesses and the corpora go together: six of each at least.
TEST(FuzzCorpus, EveryHarnessHasACorpus) {
  EXPECT_GE(CorpusNames().size(), 6u);
}

INSTANTIATE_TEST_SUITE_P(All, FuzzCorpus, testing::ValuesIn(CorpusNames()),
                         [](const testing::TestParamInfo<std::string> &i) { return i.param; });

}  // namespace

// cli_test.cc - the `kvs` command line, run as a real process: talent-plan
// project 2's CLI behaviour (output, exit codes, usage errors), --dir, the
// directory lock, and persistence across runs.
#include <cctype>
#include <string>
#include <vector>

#include "test_util.h"

namespace {

using kvstest::Bin;
using kvstest::RunResult;
using kvstest::TempDir;
using kvstest::WriteFile;

constexpr const char kNotFound[] = "Key not found\n";

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Does the directory hold anything but "." and ".."?
bool DirIsEmpty(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (!d) return true;
  bool empty = true;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") {
      empty = false;
      break;
    }
  }
  closedir(d);
  return empty;
}

bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

class CliTest : public ::testing::Test {
 protected:
  // Run `kvs args...` with cwd as its working directory (default: the
  // test's temporary directory).  Every run is checked for a sanitizer
  // report, so a memory error in the CLI or the engine fails the test.
  RunResult Kvs(const std::vector<std::string>& args, const std::string& cwd = "") {
    std::vector<std::string> argv{Bin("kvs")};
    argv.insert(argv.end(), args.begin(), args.end());
    RunResult r = kvstest::Run(argv, cwd.empty() ? dir_.path() : cwd, 30);
    EXPECT_FALSE(kvstest::HasSanitizerReport(r.err)) << "kvs " << Join(args) << ":\n" << r.err;
    return r;
  }

  static std::string Join(const std::vector<std::string>& args) {
    std::string s;
    for (const auto& a : args) s += (s.empty() ? "" : " ") + a;
    return s;
  }

  // A success: exit 0 and nothing on stderr.
  static void ExpectOk(const RunResult& r, const std::string& what) {
    EXPECT_EQ(r.status, 0) << what << "\nstderr: " << r.err;
    EXPECT_EQ(r.err, "") << what;
  }

  // A usage error: a non-zero exit that is not a crash, a message on
  // stderr and nothing on stdout.
  static void ExpectUsageError(const RunResult& r, const std::string& what) {
    EXPECT_GT(r.status, 0) << what;
    EXPECT_LT(r.status, 128) << what << " (killed by a signal?)\nstderr: " << r.err;
    EXPECT_EQ(r.out, "") << what;
    EXPECT_NE(Lower(r.err).find("usage"), std::string::npos) << what << "\nstderr: " << r.err;
  }

  // Write key/value pairs with the library, as talent-plan's tests do.
  static void LibSet(const std::string& dir,
                     const std::vector<std::pair<std::string, std::string>>& kvs) {
    struct kvs* db = nullptr;
    ASSERT_EQ(kvs_open(dir.c_str(), nullptr, &db), KVS_OK) << kvs_errmsg();
    for (const auto& kv : kvs)
      ASSERT_EQ(kvs_set(db, kv.first.data(), kv.first.size(), kv.second.data(), kv.second.size()),
                KVS_OK)
          << kvs_errmsg();
    ASSERT_EQ(kvs_close(db), KVS_OK);
  }

  // Read a key with the library; "<not found>" when missing.
  static std::string LibGet(const std::string& dir, const std::string& key) {
    struct kvs* db = nullptr;
    if (kvs_open(dir.c_str(), nullptr, &db) != KVS_OK) {
      ADD_FAILURE() << "kvs_open " << dir << ": " << kvs_errmsg();
      return "<open failed>";
    }
    void* val = nullptr;
    size_t vlen = 0;
    int rc = kvs_get(db, key.data(), key.size(), &val, &vlen);
    std::string out = rc == KVS_OK ? std::string(static_cast<char*>(val), vlen)
                      : rc == KVS_ENOTFOUND ? "<not found>"
                                            : std::string("<error ") + kvs_strerror(rc) + ">";
    if (rc == KVS_OK) kvs_free(val);
    EXPECT_EQ(kvs_close(db), KVS_OK);
    return out;
  }

  TempDir dir_;
};

// ---- talent-plan's cases ----------------------------------------------------

TEST_F(CliTest, NoArgs) {
  ExpectUsageError(Kvs({}), "kvs");
  EXPECT_TRUE(DirIsEmpty(dir_.path())) << "a usage error must not create the store";
}

TEST_F(CliTest, Version) {
  for (const char* flag : {"-V", "--version"}) {
    RunResult r = Kvs({flag});
    ExpectOk(r, flag);
    EXPECT_NE(r.out.find(KVS_VERSION), std::string::npos) << flag << " printed: " << r.out;
  }
}

TEST_F(CliTest, Help) {
  for (const char* flag : {"--help", "-h"}) {
    RunResult r = Kvs({flag});
    ExpectOk(r, flag);
    EXPECT_NE(Lower(r.out).find("usage"), std::string::npos) << flag << " printed: " << r.out;
    for (const char* cmd : {"set", "get", "rm"})
      EXPECT_NE(r.out.find(cmd), std::string::npos) << flag << " does not mention " << cmd;
  }
}

TEST_F(CliTest, GetNonExistentKey) {
  RunResult r = Kvs({"get", "key1"});
  ExpectOk(r, "get key1");
  EXPECT_EQ(r.out, kNotFound);
}

TEST_F(CliTest, RmNonExistentKey) {
  RunResult r = Kvs({"rm", "key1"});
  EXPECT_GT(r.status, 0);
  EXPECT_LT(r.status, 128) << r.err;
  EXPECT_EQ(r.out, kNotFound);
}

TEST_F(CliTest, Set) {
  RunResult r = Kvs({"set", "key1", "value1"});
  ExpectOk(r, "set key1 value1");
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(LibGet(dir_.path(), "key1"), "value1");
}

TEST_F(CliTest, GetStored) {
  // Written by the library, read back by separate kvs processes.
  LibSet(dir_.path(), {{"key1", "value1"}, {"key2", "value2"}});
  RunResult r = Kvs({"get", "key1"});
  ExpectOk(r, "get key1");
  EXPECT_EQ(r.out, "value1\n");
  r = Kvs({"get", "key2"});
  ExpectOk(r, "get key2");
  EXPECT_EQ(r.out, "value2\n");
}

TEST_F(CliTest, GetStoredAcrossRuns) {
  // Every set and get is its own process.
  constexpr int kKeys = 12;
  for (int i = 0; i < kKeys; i++) {
    RunResult r = Kvs({"set", "key" + std::to_string(i), "value" + std::to_string(i)});
    ExpectOk(r, "set " + std::to_string(i));
    EXPECT_EQ(r.out, "");
  }
  for (int i = kKeys - 1; i >= 0; i--) {
    RunResult r = Kvs({"get", "key" + std::to_string(i)});
    ExpectOk(r, "get " + std::to_string(i));
    EXPECT_EQ(r.out, "value" + std::to_string(i) + "\n");
  }
}

TEST_F(CliTest, OverwriteAcrossRuns) {
  ExpectOk(Kvs({"set", "key1", "value1"}), "set 1");
  ExpectOk(Kvs({"set", "key1", "value2"}), "set 2");
  RunResult r = Kvs({"get", "key1"});
  ExpectOk(r, "get");
  EXPECT_EQ(r.out, "value2\n");
}

TEST_F(CliTest, RmStored) {
  LibSet(dir_.path(), {{"key1", "value1"}});
  RunResult r = Kvs({"rm", "key1"});
  ExpectOk(r, "rm key1");
  EXPECT_EQ(r.out, "");
  r = Kvs({"get", "key1"});
  ExpectOk(r, "get key1 after rm");
  EXPECT_EQ(r.out, kNotFound);
  // A second rm finds nothing to remove.
  r = Kvs({"rm", "key1"});
  EXPECT_GT(r.status, 0);
  EXPECT_LT(r.status, 128) << r.err;
  EXPECT_EQ(r.out, kNotFound);
  EXPECT_EQ(LibGet(dir_.path(), "key1"), "<not found>");
}

TEST_F(CliTest, RmThenSetAgain) {
  ExpectOk(Kvs({"set", "key1", "value1"}), "set");
  ExpectOk(Kvs({"rm", "key1"}), "rm");
  ExpectOk(Kvs({"set", "key1", "value3"}), "set again");
  RunResult r = Kvs({"get", "key1"});
  ExpectOk(r, "get");
  EXPECT_EQ(r.out, "value3\n");
}

TEST_F(CliTest, InvalidGet) {
  ExpectUsageError(Kvs({"get"}), "get");
  ExpectUsageError(Kvs({"get", "extra", "field"}), "get extra field");
  EXPECT_TRUE(DirIsEmpty(dir_.path())) << "a usage error must not create the store";
}

TEST_F(CliTest, InvalidSet) {
  ExpectUsageError(Kvs({"set"}), "set");
  ExpectUsageError(Kvs({"set", "missing_field"}), "set missing_field");
  ExpectUsageError(Kvs({"set", "extra", "extra", "field"}), "set extra extra field");
  EXPECT_TRUE(DirIsEmpty(dir_.path())) << "a usage error must not create the store";
}

TEST_F(CliTest, InvalidRm) {
  ExpectUsageError(Kvs({"rm"}), "rm");
  ExpectUsageError(Kvs({"rm", "extra", "field"}), "rm extra field");
  EXPECT_TRUE(DirIsEmpty(dir_.path())) << "a usage error must not create the store";
}

TEST_F(CliTest, InvalidSubcommand) {
  ExpectUsageError(Kvs({"unknown", "subcommand"}), "unknown subcommand");
  ExpectUsageError(Kvs({"unknown"}), "unknown");
  ExpectUsageError(Kvs({"SET", "k", "v"}), "SET k v (subcommands are lower case)");
  EXPECT_TRUE(DirIsEmpty(dir_.path())) << "a usage error must not create the store";
}

TEST_F(CliTest, UnknownFlag) {
  ExpectUsageError(Kvs({"--bogus"}), "--bogus");
  ExpectUsageError(Kvs({"--bogus", "get", "key1"}), "--bogus get key1");
  ExpectUsageError(Kvs({"-x", "get", "key1"}), "-x get key1");
  ExpectUsageError(Kvs({"get", "key1", "--bogus"}), "get key1 --bogus");
  ExpectUsageError(Kvs({"set", "key1", "--bogus"}), "set key1 --bogus");
  ExpectUsageError(Kvs({"--dir"}), "--dir without its argument");
  EXPECT_TRUE(DirIsEmpty(dir_.path())) << "a usage error must not create the store";
}

// A usage error must not touch an existing store either.
TEST_F(CliTest, UsageErrorLeavesStoreAlone) {
  ExpectOk(Kvs({"set", "key1", "value1"}), "set");
  ExpectUsageError(Kvs({"set", "key1", "value2", "extra"}), "set with an extra argument");
  ExpectUsageError(Kvs({"rm", "key1", "extra"}), "rm with an extra argument");
  RunResult r = Kvs({"get", "key1"});
  ExpectOk(r, "get");
  EXPECT_EQ(r.out, "value1\n");
}

// ---- beyond talent-plan -------------------------------------------------------

TEST_F(CliTest, ValuesWithSpaces) {
  const std::string value = "hello,  world with   spaces ";
  ExpectOk(Kvs({"set", "greeting", value}), "set");
  RunResult r = Kvs({"get", "greeting"});
  ExpectOk(r, "get");
  EXPECT_EQ(r.out, value + "\n");

  ExpectOk(Kvs({"set", "a key with spaces", "v"}), "set key with spaces");
  r = Kvs({"get", "a key with spaces"});
  ExpectOk(r, "get key with spaces");
  EXPECT_EQ(r.out, "v\n");
  r = Kvs({"get", "a"});
  EXPECT_EQ(r.out, kNotFound) << "the key must not be split at spaces";
  EXPECT_EQ(LibGet(dir_.path(), "greeting"), value);
}

TEST_F(CliTest, EmptyValue) {
  ExpectOk(Kvs({"set", "key1", ""}), "set key1 ''");
  RunResult r = Kvs({"get", "key1"});
  ExpectOk(r, "get");
  EXPECT_EQ(r.out, "\n");
}

TEST_F(CliTest, StoreCreatedInCwd) {
  TempDir elsewhere;
  ExpectOk(Kvs({"set", "key1", "value1"}), "set in cwd");
  EXPECT_FALSE(kvstest::Segments(dir_.path()).empty()) << "no segment file in the cwd";
  EXPECT_TRUE(DirIsEmpty(elsewhere.path()));
  EXPECT_EQ(LibGet(dir_.path(), "key1"), "value1");

  // Another cwd is another store.
  RunResult r = Kvs({"get", "key1"}, elsewhere.path());
  ExpectOk(r, "get in another cwd");
  EXPECT_EQ(r.out, kNotFound);
}

TEST_F(CliTest, DirOption) {
  const std::string store = dir_.file("nested/store");
  TempDir cwd1, cwd2;
  RunResult r = Kvs({"--dir", store, "set", "key1", "value1"}, cwd1.path());
  ExpectOk(r, "--dir set");
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(DirIsEmpty(cwd1.path())) << "--dir given, yet the cwd was written";
  EXPECT_FALSE(kvstest::Segments(store).empty()) << "--dir did not create the store";

  // Persisted, and found from another working directory.
  r = Kvs({"--dir", store, "get", "key1"}, cwd2.path());
  ExpectOk(r, "--dir get");
  EXPECT_EQ(r.out, "value1\n");
  r = Kvs({"--dir=" + store, "set", "key2", "value2"}, cwd2.path());
  ExpectOk(r, "--dir=DIR set");
  r = Kvs({"--dir", store, "rm", "key1"}, cwd1.path());
  ExpectOk(r, "--dir rm");
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(DirIsEmpty(cwd1.path()));
  EXPECT_TRUE(DirIsEmpty(cwd2.path()));

  EXPECT_EQ(LibGet(store, "key1"), "<not found>");
  EXPECT_EQ(LibGet(store, "key2"), "value2");

  // A relative --dir is taken from the cwd.
  r = Kvs({"--dir", "nested/store", "get", "key2"});
  ExpectOk(r, "relative --dir get");
  EXPECT_EQ(r.out, "value2\n");
}

// A read does not create a store: get and rm of a missing directory, or of
// one that holds no store, answer as for a missing key (get exit 0, rm exit
// 1, as talent-plan's kvs does for a missing key) and leave it as it was;
// set still creates the store.
TEST_F(CliTest, ReadOfNoStoreCreatesNothing) {
  const std::string missing = dir_.file("nonexist");
  RunResult r = Kvs({"--dir", missing, "get", "a"});
  ExpectOk(r, "get in a missing dir");
  EXPECT_EQ(r.out, kNotFound);
  r = Kvs({"--dir", missing, "rm", "a"});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(r.out, kNotFound);
  r = Kvs({"get", "a"});
  ExpectOk(r, "get in an empty cwd");
  EXPECT_EQ(r.out, kNotFound);
  r = Kvs({"rm", "a"});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(r.out, kNotFound);
  EXPECT_TRUE(DirIsEmpty(dir_.path())) << "a read created something";

  // Some other file is not a store either.
  kvstest::WriteFile(dir_.file("notes.txt"), "hello");
  r = Kvs({"get", "a"});
  ExpectOk(r, "get beside an unrelated file");
  EXPECT_EQ(r.out, kNotFound);
  EXPECT_FALSE(Exists(dir_.file("ENGINE")));
  EXPECT_FALSE(Exists(dir_.file("LOCK")));

  // set creates the store, and reads find it.
  ExpectOk(Kvs({"--dir", missing, "set", "a", "1"}), "set in a missing dir");
  r = Kvs({"--dir", missing, "get", "a"});
  ExpectOk(r, "get after set");
  EXPECT_EQ(r.out, "1\n");
  ExpectOk(Kvs({"--dir", missing, "rm", "a"}), "rm after set");
}

// What "holds a store" means: the ENGINE marker, or (a store whose marker
// was lost) its segments, or LMDB's data.mdb.
TEST_F(CliTest, ReadFindsStoreWithoutMarker) {
  LibSet(dir_.path(), {{"k", "v"}});
  ASSERT_EQ(unlink(dir_.file("ENGINE").c_str()), 0);
  RunResult r = Kvs({"get", "k"});
  ExpectOk(r, "get from segments without a marker");
  EXPECT_EQ(r.out, "v\n");

  TempDir lm;
  struct kvs_options o = {};
  o.engine = KVS_ENGINE_LMDB;
  struct kvs* db = nullptr;
  ASSERT_EQ(kvs_open(lm.path().c_str(), &o, &db), KVS_OK) << kvs_errmsg();
  ASSERT_EQ(kvs_set(db, "k", 1, "w", 1), KVS_OK);
  ASSERT_EQ(kvs_close(db), KVS_OK);
  r = Kvs({"--dir", lm.path(), "get", "k"});
  ExpectOk(r, "get from an lmdb store");
  EXPECT_EQ(r.out, "w\n");
}

// The library's side: no_create on a missing or empty directory is
// KVS_ENOTFOUND and creates nothing.
TEST(KvsOpenNoCreate, MissingOrEmptyDirIsNotFound) {
  TempDir t;
  struct kvs_options o = {};
  o.no_create = 1;
  struct kvs* db = nullptr;
  const std::string missing = t.file("a/b");
  EXPECT_EQ(kvs_open(missing.c_str(), &o, &db), KVS_ENOTFOUND);
  EXPECT_EQ(db, nullptr);
  EXPECT_NE(std::string(kvs_errmsg()).find("no store"), std::string::npos) << kvs_errmsg();
  EXPECT_FALSE(Exists(t.file("a")));
  EXPECT_EQ(kvs_open(t.path().c_str(), &o, &db), KVS_ENOTFOUND);
  EXPECT_TRUE(DirIsEmpty(t.path()));
  // A file where the directory should be is an error, not "no store".
  kvstest::WriteFile(t.file("f"), "x");
  EXPECT_EQ(kvs_open(t.file("f").c_str(), &o, &db), KVS_EINVAL);
  // An existing store opens.
  o.no_create = 0;
  const std::string store = t.file("s");
  ASSERT_EQ(kvs_open(store.c_str(), &o, &db), KVS_OK) << kvs_errmsg();
  ASSERT_EQ(kvs_close(db), KVS_OK);
  o.no_create = 1;
  ASSERT_EQ(kvs_open(store.c_str(), &o, &db), KVS_OK) << kvs_errmsg();
  ASSERT_EQ(kvs_close(db), KVS_OK);
}

TEST_F(CliTest, SecondProcessRefusedWhileOpen) {
  LibSet(dir_.path(), {{"key1", "value1"}});
  struct kvs* db = nullptr;
  ASSERT_EQ(kvs_open(dir_.path().c_str(), nullptr, &db), KVS_OK) << kvs_errmsg();

  TempDir cwd;
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--dir", dir_.path(), "get", "key1"},
           {"--dir", dir_.path(), "set", "key1", "other"},
           {"--dir", dir_.path(), "rm", "key1"}}) {
    RunResult r = Kvs(args, cwd.path());
    EXPECT_GT(r.status, 0) << Join(args);
    EXPECT_LT(r.status, 128) << Join(args) << "\n" << r.err;
    EXPECT_EQ(r.out, "") << Join(args);
    std::string err = Lower(r.err);
    EXPECT_TRUE(err.find("lock") != std::string::npos ||
                err.find("already open") != std::string::npos)
        << Join(args) << ": stderr does not say the store is locked: " << r.err;
  }
  // Without --dir, in the locked directory itself.
  RunResult r = Kvs({"get", "key1"});
  EXPECT_GT(r.status, 0);
  EXPECT_EQ(r.out, "");

  ASSERT_EQ(kvs_close(db), KVS_OK);

  // Released: the refused set changed nothing, and the CLI works again.
  r = Kvs({"--dir", dir_.path(), "get", "key1"}, cwd.path());
  ExpectOk(r, "get after close");
  EXPECT_EQ(r.out, "value1\n");
}

}  // namespace

// Regression: a value starting with '-' used to be refused with no way out;
// "--" after the subcommand takes the rest literally.
TEST_F(CliTest, DoubleDashAllowsLeadingDash) {
  ExpectUsageError(Kvs({"set", "k", "-1"}), "set k -1 (an unknown flag)");
  ExpectOk(Kvs({"set", "--", "k", "-1"}), "set -- k -1");
  ExpectOk(Kvs({"set", "--", "-k", "--v"}), "set -- -k --v");
  RunResult r = Kvs({"get", "--", "k"});
  ExpectOk(r, "get -- k");
  EXPECT_EQ(r.out, "-1\n");
  r = Kvs({"get", "--", "-k"});
  EXPECT_EQ(r.out, "--v\n");
  ExpectOk(Kvs({"rm", "--", "-k"}), "rm -- -k");
  ExpectUsageError(Kvs({"set", "--", "k"}), "set -- k (missing value)");
}

// One version string, printed by every binary's -V.
TEST(Version, EveryBinaryPrintsTheVersion) {
  for (const char* bin : {"kvs", "kvs-dump", "kvs-client", "kvs-server", "kvs-engine-bench", "kvs-startup-bench",
                          "kvs-compaction-bench"}) {
    RunResult r = kvstest::Run({Bin(bin), "-V"});
    EXPECT_EQ(r.status, 0) << bin;
    EXPECT_EQ(r.out, std::string(bin) + " " KVS_VERSION "\n") << bin;
  }
}

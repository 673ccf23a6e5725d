// kvs-server's options and start-up as a new user meets them (issue 14):
// sizes with units (the one parser, common/size.h), the password sources
// and their conflicts, bind before the store is opened, usage errors exit
// 2, CLIENT/CONFIG HELP and CLIENT LIST through redis-cli, the log line of
// a shutdown that drops a client that does not read, and the lmdb engine's
// own key limit in its errors.
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "kvs.h"
#include "server_util.h"
#include "size.h"
#include "test_util.h"

namespace {

using kvstest::Bin;
using kvstest::Conn;
using kvstest::RunResult;
using kvstest::Server;
using kvstest::TempDir;

// kvs-server with args (and, if env_pw is given, KVS_PASSWORD set to it),
// expected to exit at once.
RunResult RunServer(const std::vector<std::string>& args, const char* env_pw = nullptr) {
  std::vector<std::string> argv{Bin("kvs-server")};
  argv.insert(argv.end(), args.begin(), args.end());
  if (env_pw) setenv("KVS_PASSWORD", env_pw, 1);
  RunResult r = kvstest::Run(argv, "", 30);
  if (env_pw) unsetenv("KVS_PASSWORD");
  EXPECT_FALSE(kvstest::HasSanitizerReport(r.err)) << r.err;
  return r;
}

bool Exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

// ---- the size parser ---------------------------------------------------------

uint64_t Size(const char* s) {
  uint64_t v = 12345;
  EXPECT_EQ(kvs_parse_size(s, &v), 0) << s;
  return v;
}

int SizeErrno(const char* s) {
  uint64_t v = 777;
  errno = 0;
  EXPECT_EQ(kvs_parse_size(s, &v), -1) << s;
  EXPECT_EQ(v, 777u) << s << ": *out changed on failure";
  return errno;
}

TEST(SizeParse, BytesAndRedisUnits) {
  EXPECT_EQ(Size("0"), 0u);
  EXPECT_EQ(Size("65536"), 65536u);
  EXPECT_EQ(Size("7b"), 7u);
  // Redis's meaning (redis.conf: "1k => 1000 bytes, 1kb => 1024 bytes").
  EXPECT_EQ(Size("1k"), 1000u);
  EXPECT_EQ(Size("1kb"), 1024u);
  EXPECT_EQ(Size("64m"), 64000000u);
  EXPECT_EQ(Size("64mb"), 64u << 20);
  EXPECT_EQ(Size("1g"), 1000000000u);
  EXPECT_EQ(Size("1gb"), 1u << 30);
  // IEC, as --help prints them; every unit in any case.
  EXPECT_EQ(Size("64MiB"), 64u << 20);
  EXPECT_EQ(Size("4KiB"), 4096u);
  EXPECT_EQ(Size("1GiB"), 1u << 30);
  EXPECT_EQ(Size("1GB"), 1u << 30);
  EXPECT_EQ(Size("1Gb"), 1u << 30);
  EXPECT_EQ(Size("2M"), 2000000u);
  EXPECT_EQ(Size("3mib"), 3u << 20);
  EXPECT_EQ(Size("0gb"), 0u);
  EXPECT_EQ(Size("007kb"), 7u << 10);
}

TEST(SizeParse, EdgesAndOverflow) {
  EXPECT_EQ(Size("18446744073709551615"), UINT64_MAX);
  EXPECT_EQ(SizeErrno("18446744073709551616"), ERANGE);
  EXPECT_EQ(SizeErrno("99999999999999999999999"), ERANGE);
  EXPECT_EQ(Size("17179869183gb"), 17179869183ull << 30);  // (2^64-1) >> 30
  EXPECT_EQ(SizeErrno("17179869184gb"), ERANGE);
  EXPECT_EQ(SizeErrno("18446744073709551615k"), ERANGE);
  EXPECT_EQ(Size("18446744073709551k"), 18446744073709551000ull);
  // Junk after an overflowing number is junk, not overflow.
  EXPECT_EQ(SizeErrno("99999999999999999999999x"), EINVAL);
}

TEST(SizeParse, RefusesWhatItCannotMeanExactly) {
  for (const char* s : {"", " 1", "1 ", "64 MiB", "-1", "+1", "-0", "1.5m", "0x10", "1e6", "k", "mb", "64xb",
                        "64kbb", "64mibs", "64t", "64tb", "64KiBx", "1kb2", "12x"})
    EXPECT_EQ(SizeErrno(s), EINVAL) << "'" << s << "'";
  uint64_t v;
  errno = 0;
  EXPECT_EQ(kvs_parse_size(nullptr, &v), -1);
  EXPECT_EQ(errno, EINVAL);
}

// ---- size options ------------------------------------------------------------

std::string OutputLimit(const Server& s) {
  Conn c(s.port());
  return c.Cmd({"CONFIG", "GET", "client-output-buffer-limit"});
}

TEST(ServerOptions, SizeOptionsTakeUnits) {
  TempDir t;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"64MiB", "67108864"}, {"64mb", "67108864"}, {"64m", "64000000"}, {"65536", "65536"}, {"1gb", "1073741824"}};
  for (const auto& [arg, bytes] : cases) {
    Server s;
    ASSERT_TRUE(s.Start(t.path(), {"--client-output-limit", arg})) << arg << s.log();
    EXPECT_EQ(OutputLimit(s), "array:2[bulk:client-output-buffer-limit,bulk:" + bytes + "]") << arg;
    EXPECT_EQ(s.Stop(), 0);
  }
  // The segment size in the same forms: a store of 16mb segments works.
  Server s;
  ASSERT_EQ(mkdir(t.file("seg").c_str(), 0755), 0);  // the log goes beside it
  ASSERT_TRUE(s.Start(t.file("seg"), {"--segment-size", "16mb"})) << s.log();
  Conn c(s.port());
  EXPECT_EQ(c.Cmd({"SET", "k", "v"}), "simple:OK");
  EXPECT_EQ(s.Stop(), 0);
}

TEST(ServerOptions, HelpPrintsDefaultsTheParserAccepts) {
  RunResult r = RunServer({"--help"});
  ASSERT_EQ(r.status, 0);
  // Every "default N" of a size option, and the range of --segment-size.
  for (const char* opt : {"--client-output-limit", "--segment-size"}) {
    size_t at = r.out.find(std::string("  ") + opt);
    ASSERT_NE(at, std::string::npos) << opt;
    size_t d = r.out.find("default ", at);
    ASSERT_NE(d, std::string::npos) << opt;
    d += 8;
    std::string val = r.out.substr(d, r.out.find_first_of(")\n", d) - d);
    uint64_t v;
    EXPECT_EQ(kvs_parse_size(val.c_str(), &v), 0) << opt << " default '" << val << "'";
    EXPECT_EQ(v, 64u << 20) << opt;
    TempDir t;
    Server s;
    ASSERT_TRUE(s.Start(t.path(), {opt, val})) << s.log();
    EXPECT_EQ(s.Stop(), 0);
  }
  EXPECT_NE(r.out.find("4KiB..1GiB"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("64 MiB"), std::string::npos) << "a default the parser refuses";
}

// Usage errors exit 2 (as kvs-client and kvs-bench), with a message.
TEST(ServerOptions, UsageErrorsExit2) {
  TempDir t;
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--engine", "redis"},
           {"--addr", "nonsense"},
           {"--addr", "127.0.0.1"},
           {"--addr", "127.0.0.1:65536"},
           {"--addr", "[::1:4000"},
           {"--fsync", "sometimes"},
           {"--threads", "0"},
           {"--client-output-limit", "0"},
           {"--client-output-limit", "64 MiB"},
           {"--client-output-limit", "-1"},
           {"--client-output-limit", ""},
           {"--client-output-limit", "1.5m"},
           {"--client-output-limit", "99999999999999999999gb"},
           {"--segment-size", "12x"},
           {"--segment-size", "1k"},
           {"--segment-size", "2gb"},
           {"--segment-size", "1025MiB"},
           {"--bogus"},
           {"--port-file"},
           {"extra"}}) {
    std::vector<std::string> a = args;
    a.push_back("--dir");
    a.push_back(t.file("d"));
    RunResult r = RunServer(a);
    EXPECT_EQ(r.status, 2) << args[0] << " " << (args.size() > 1 ? args[1] : "") << ": " << r.err;
    EXPECT_NE(r.err, "") << args[0];
    EXPECT_FALSE(Exists(t.file("d"))) << "a usage error created the store";
  }
}

// ---- passwords ---------------------------------------------------------------

TEST(ServerOptions, PasswordSourcesConflictOrAreEmpty) {
  TempDir t;
  const std::string pf = t.file("pass"), empty = t.file("empty"), blank = t.file("blank");
  kvstest::WriteFile(pf, "s3cret\n");
  kvstest::WriteFile(empty, "");
  kvstest::WriteFile(blank, " \t\nsecond line\n");
  struct Case {
    std::vector<std::string> args;
    const char* env;
    const char* says;
  };
  const std::vector<Case> cases = {
      {{"--requirepass", "a", "--requirepass-file", pf}, nullptr, "more than once"},
      {{"--requirepass-file", pf, "--requirepass", "a"}, nullptr, "more than once"},
      {{"--requirepass", "a", "--requirepass", "b"}, nullptr, "more than once"},
      {{"--requirepass-file", pf, "--requirepass-file", pf}, nullptr, "more than once"},
      {{"--requirepass", ""}, nullptr, "--requirepass is empty"},
      {{"--requirepass", "  "}, nullptr, "--requirepass is empty"},
      {{"--requirepass-file", empty}, nullptr, "no password"},
      {{"--requirepass-file", blank}, nullptr, "no password"},
      {{"--requirepass-file", t.file("missing")}, nullptr, "cannot read"},
      {{}, " ", "KVS_PASSWORD is empty"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> a = c.args;
    a.insert(a.end(), {"--addr", "127.0.0.1:0", "--dir", t.file("d")});
    RunResult r = RunServer(a, c.env);
    EXPECT_EQ(r.status, 2) << c.says << ": " << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("s3cret"), std::string::npos) << r.err;
    EXPECT_FALSE(Exists(t.file("d")));
  }
}

// An option overrides KVS_PASSWORD; the start-up line says whether clients
// must AUTH, never the password.
TEST(ServerOptions, OptionOverridesEnvironmentAndStartLineTells) {
  TempDir t;
  const std::string pf = t.file("pass");
  kvstest::WriteFile(pf, "from-file\n");
  for (const auto& [args, good] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--requirepass", "from-option"}, "from-option"}, {{"--requirepass-file", pf}, "from-file"}}) {
    Server s;
    ASSERT_TRUE(s.Start(t.path(), args, {"KVS_PASSWORD=from-env"})) << s.log();
    Conn c(s.port());
    EXPECT_EQ(c.Cmd({"GET", "x"}), "error:NOAUTH Authentication required.");
    EXPECT_EQ(c.Cmd({"AUTH", "from-env"}).substr(0, 15), "error:WRONGPASS");
    EXPECT_EQ(c.Cmd({"AUTH", good}), "simple:OK");
    EXPECT_EQ(s.Stop(), 0);
    std::string log = s.log();
    EXPECT_NE(log.find(", password required"), std::string::npos) << log;
    EXPECT_NE(log.find("overrides KVS_PASSWORD"), std::string::npos) << log;
    EXPECT_EQ(log.find("from-"), std::string::npos) << "the log shows a password: " << log;
  }
  Server s;
  ASSERT_TRUE(s.Start(t.path())) << s.log();
  EXPECT_EQ(s.Stop(), 0);
  EXPECT_NE(s.log().find(", no password"), std::string::npos) << s.log();
  // An empty KVS_PASSWORD is unset, as kvs-client and kvs-bench take it
  // (a unit's "Environment=KVS_PASSWORD=" must not stop the server), and
  // the log says so.
  Server e;
  ASSERT_TRUE(e.Start(t.path(), {}, {"KVS_PASSWORD="})) << e.log();
  Conn c(e.port());
  EXPECT_EQ(c.Cmd({"SET", "x", "1"}), "simple:OK");
  EXPECT_EQ(e.Stop(), 0);
  EXPECT_NE(e.log().find("KVS_PASSWORD is set but empty"), std::string::npos) << e.log();
  EXPECT_NE(e.log().find(", no password"), std::string::npos) << e.log();
}

// ---- start-up order ----------------------------------------------------------

// Issue 14: "kvs-server --dir new" on a busy port exited with "Address
// already in use" but had created a store in new/.
TEST(ServerOptions, BusyPortCreatesNoStore) {
  TempDir t;
  int port = 0;
  int fd = kvstest::LoopbackSocket(0, true, &port);
  ASSERT_GE(fd, 0);
  for (const std::string engine : {"kvs", "lmdb"}) {
    const std::string dir = t.file("new-" + engine), pf = t.file("port");
    RunResult r = RunServer(
        {"--addr", "127.0.0.1:" + std::to_string(port), "--dir", dir, "--engine", engine, "--port-file", pf});
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find("Address already in use"), std::string::npos) << r.err;
    EXPECT_FALSE(Exists(dir)) << engine << ": a store was created";
    EXPECT_FALSE(Exists(pf));
  }
  close(fd);
}

// A store that cannot be opened (another server holds its lock): the
// second server gives up its socket and writes no port file.
TEST(ServerOptions, LockedStoreReleasesThePortAndWritesNoPortFile) {
  TempDir t;
  Server a;
  ASSERT_EQ(mkdir(t.file("d").c_str(), 0755), 0);
  ASSERT_TRUE(a.Start(t.file("d"))) << a.log();
  const int port = kvstest::FreePort();
  const std::string pf = t.file("port-b");
  RunResult r = RunServer({"--addr", "127.0.0.1:" + std::to_string(port), "--dir", t.file("d"), "--port-file", pf});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("cannot open the store"), std::string::npos) << r.err;
  EXPECT_FALSE(Exists(pf));
  // Nothing of it listens on the port any more.
  int again = 0;
  int fd = kvstest::LoopbackSocket(port, true, &again);
  EXPECT_GE(fd, 0) << "the port is still taken";
  if (fd >= 0) close(fd);
  Conn c(a.port());
  EXPECT_EQ(c.Cmd({"PING"}), "simple:PONG");
  EXPECT_EQ(a.Stop(), 0);
}

// ---- HELP and CLIENT LIST ----------------------------------------------------

TEST(ServerOptions, ClientAndConfigHelp) {
  TempDir t;
  Server s;
  ASSERT_TRUE(s.Start(t.path())) << s.log();
  Conn c(s.port());
  std::string h = c.Cmd({"CLIENT", "HELP"});
  EXPECT_EQ(h.rfind("array:", 0), 0u) << h;
  EXPECT_NE(h.find("simple:CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"), std::string::npos) << h;
  for (const char* sub : {"simple:LIST", "simple:KILL", "simple:SETNAME <name>", "simple:ID", "simple:HELP,"})
    EXPECT_NE(h.find(sub), std::string::npos) << sub << " in " << h;
  h = c.Cmd({"config", "help"});
  EXPECT_NE(h.find("simple:CONFIG <subcommand>"), std::string::npos) << h;
  EXPECT_NE(h.find("simple:GET <pattern>"), std::string::npos) << h;
  h = c.Cmd({"COMMAND", "HELP"});
  EXPECT_NE(h.find("simple:COMMAND <subcommand>"), std::string::npos) << h;
  EXPECT_NE(h.find("simple:COUNT"), std::string::npos) << h;
  EXPECT_NE(h.find("simple:HELP,"), std::string::npos) << h;
  EXPECT_EQ(c.Cmd({"CLIENT", "HELP", "x"}), "error:ERR wrong number of arguments for 'client|help' command");
  EXPECT_EQ(c.Cmd({"CLIENT", "NOPE"}), "error:ERR unknown subcommand 'NOPE'. Try CLIENT HELP.");
  EXPECT_EQ(s.Stop(), 0);
}

// The issue saw "unknown subcommand" for CLIENT LIST; it worked, and must
// keep working from redis-cli itself (a user's first tool).
TEST(ServerOptions, ClientListAndHelpThroughRedisCli) {
  if (access("/usr/bin/redis-cli", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/redis-cli (make deps installs it)";
  TempDir t;
  Server s;
  ASSERT_TRUE(s.Start(t.path())) << s.log();
  const std::string p = std::to_string(s.port());
  RunResult r = kvstest::Run({"/usr/bin/redis-cli", "-p", p, "CLIENT", "LIST"}, "", 30);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.rfind("id=", 0), 0u) << r.out;
  EXPECT_NE(r.out.find(" cmd=client"), std::string::npos) << r.out;
  r = kvstest::Run({"/usr/bin/redis-cli", "-p", p, "CLIENT", "HELP"}, "", 30);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("CLIENT <subcommand>"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("unknown subcommand"), std::string::npos) << r.out;
  EXPECT_EQ(s.Stop(), 0);
}

// ---- shutdown ----------------------------------------------------------------

// A client that sends GETs of a large value and never reads: SIGTERM stops
// the server within the drain's bound, and the log names the client and
// the bytes it never took.
TEST(ServerShutdown, DroppingAClientThatDoesNotReadIsLogged) {
  TempDir t;
  Server s;
  ASSERT_TRUE(s.Start(t.path(), {"--client-output-limit", "1gb"})) << s.log();
  Conn setter(s.port());
  ASSERT_EQ(setter.Cmd({"SET", "big", std::string(1 << 20, 'v')}), "simple:OK");
  // A small receive buffer: the replies pile up in the server.
  int rfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(rfd, 0);
  int small = 16384;
  setsockopt(rfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in a = kvstest::LoopbackAddr(s.port());
  ASSERT_EQ(connect(rfd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  Conn reader = Conn::Adopt(rfd);
  const std::string id = reader.Cmd({"CLIENT", "ID"});  // "int:N"
  std::string gets;
  for (int i = 0; i < 40; i++) gets += Conn::Encode({"GET", "big"});
  ASSERT_TRUE(reader.SendRaw(gets));
  // Until replies reach our socket (the server is sending), then a while
  // for the server to fill its buffers (bounded; slower under TSAN).
  EXPECT_TRUE(kvstest::Eventually(
      [&] {
        int queued = 0;
        return ioctl(rfd, FIONREAD, &queued) == 0 && queued > 0;
      },
      10000));
  usleep(1000000);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(s.Stop(SIGTERM, 15000), 0);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(ms, 10000) << "the drain is bounded (3 s)";
  std::string log = s.log();
  size_t at = log.find("shutdown: dropping client 127.0.0.1:");
  ASSERT_NE(at, std::string::npos) << log;
  std::string line = log.substr(at, log.find('\n', at) - at);
  EXPECT_NE(line.find("(id " + id.substr(4) + ")"), std::string::npos) << line;
  size_t b = line.find(": ", line.find("replies")) + 2;
  unsigned long long unsent = std::stoull(line.substr(b));
  EXPECT_GT(unsent, 0u) << line;
  EXPECT_NE(line.find("bytes unsent"), std::string::npos) << line;
}

// ---- the lmdb engine's limits ------------------------------------------------

TEST(LmdbLimits, ErrorsStateLmdbsOwnKeyLimit) {
  TempDir t;
  kvs_options o{};
  o.engine = KVS_ENGINE_LMDB;
  kvs* db = nullptr;
  ASSERT_EQ(kvs_open(t.file("db").c_str(), &o, &db), KVS_OK) << kvs_errmsg();
  EXPECT_EQ(kvs_max_key(db), 511u);
  const std::string k(512, 'k');
  EXPECT_EQ(kvs_set(db, k.data(), k.size(), "v", 1), KVS_ETOOBIG);
  std::string msg = kvs_errmsg();
  EXPECT_NE(msg.find("511 bytes"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("MiB"), std::string::npos) << msg;
  EXPECT_EQ(kvs_check_key(db, k.data(), 511), KVS_OK);
  EXPECT_EQ(kvs_close(db), KVS_OK);
  ASSERT_EQ(kvs_open(t.file("log").c_str(), nullptr, &db), KVS_OK) << kvs_errmsg();
  EXPECT_EQ(kvs_max_key(db), size_t{KVS_MAX_KEY});
  EXPECT_EQ(kvs_close(db), KVS_OK);
  EXPECT_EQ(kvs_max_key(nullptr), 0u);

  // Through the server: the RESP error states the same limit.
  Server s;
  ASSERT_EQ(mkdir(t.file("srv").c_str(), 0755), 0);
  ASSERT_TRUE(s.Start(t.file("srv"), {"--engine", "lmdb"})) << s.log();
  Conn c(s.port());
  EXPECT_EQ(c.Cmd({"SET", k, "v"}),
            "error:ERR key or value too large (keys up to 511 bytes, values up to 512 MiB with the lmdb engine)");
  EXPECT_EQ(c.Cmd({"SET", k.substr(1), "v"}), "simple:OK");
  EXPECT_EQ(s.Stop(), 0);
}

}  // namespace

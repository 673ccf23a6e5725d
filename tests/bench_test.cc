// bench_test.cc - kvs-bench as a real process: options and exit codes, short
// runs against kvs-server and a Debian redis-server (JSON summary, per-command
// counts, every --cmd, --ratio, key distributions, AUTH, several addresses),
// --verify catching wrong values, a refused connection, a server that dies
// mid-run, SIGINT, and the --csv series.  No assertion is about speed.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <map>
#include <thread>
#include <string>
#include <vector>

#include "resp.h"
#include "test_util.h"

namespace {

using kvstest::Bin;
using kvstest::RunResult;
using kvstest::TempDir;
using kvstest::FreePort;
using Clock = std::chrono::steady_clock;

constexpr const char kRedisServer[] = "/usr/bin/redis-server";
constexpr const char kPython[] = "/usr/bin/python3";

// One request on a fresh loopback connection; the raw reply bytes (the first
// complete line, and for a bulk its payload), or "" on failure.  Enough for
// SET/GET/DBSIZE of short values.
std::string Raw(int port, const std::vector<std::string>& args, int family = AF_INET) {
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  int rc;
  if (family == AF_INET) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    rc = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  } else {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    a.sin6_port = htons(static_cast<uint16_t>(port));
    rc = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  if (rc != 0) {
    close(fd);
    return "";
  }
  std::string req = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) req += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return "";
  }
  std::string in;
  auto deadline = Clock::now() + std::chrono::seconds(10);
  for (;;) {
    size_t eol = in.find("\r\n");
    if (eol != std::string::npos) {
      if (in[0] != '$') break;
      long n = std::stol(in.substr(1, eol - 1));
      if (n < 0 || in.size() >= eol + 2 + static_cast<size_t>(n) + 2) break;
    }
    pollfd p{fd, POLLIN, 0};
    if (Clock::now() > deadline || poll(&p, 1, 1000) < 0) break;
    char buf[65536];
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) break;
    if (n > 0) in.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  size_t eol = in.find("\r\n");
  if (eol == std::string::npos) return "";
  if (in[0] == '$') {
    long n = std::stol(in.substr(1, eol - 1));
    return n < 0 ? "(nil)" : in.substr(eol + 2, static_cast<size_t>(n));
  }
  return in.substr(0, eol);
}

// The JSON file at path, checked by python3's json module and flattened into
// "a.b.c" -> value (numbers as text, strings without quotes).
std::map<std::string, std::string> ReadJson(const std::string& path) {
  static const char script[] = R"(
import json, sys
def walk(p, v):
    if isinstance(v, dict):
        for k, x in v.items(): walk(p + [k], x)
    elif isinstance(v, list):
        for i, x in enumerate(v): walk(p + [str(i)], x)
    else:
        print(".".join(p) + "=" + (v if isinstance(v, str) else json.dumps(v)))
walk([], json.load(open(sys.argv[1])))
)";
  std::map<std::string, std::string> m;
  RunResult r = kvstest::Run({kPython, "-c", script, path});
  EXPECT_EQ(r.status, 0) << "not JSON: " << kvstest::ReadFile(path) << "\n" << r.err;
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    size_t eq = line.find('=');
    if (eq != std::string::npos) m[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return m;
}

long long Num(const std::map<std::string, std::string>& m, const std::string& k) {
  auto it = m.find(k);
  if (it == m.end()) {
    ADD_FAILURE() << "no " << k << " in the JSON";
    return -1;
  }
  return std::stoll(it->second);
}

// kvs-bench to completion; the run fails on a sanitizer report.
RunResult Bench(const std::vector<std::string>& args, int timeout_sec = 60) {
  std::vector<std::string> argv{Bin("kvs-bench")};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = kvstest::Run(argv, "", timeout_sec);
  EXPECT_FALSE(kvstest::HasSanitizerReport(r.err)) << r.err;
  return r;
}

// A child process with stdout and stderr in files, stopped in the destructor.
class Child {
 public:
  Child() = default;
  ~Child() { Stop(SIGKILL); }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  void Start(const std::vector<std::string>& argv, const std::string& out, const std::string& err,
             const std::vector<std::string>& env = {}) {
    pid_ = fork();
    if (pid_ == 0) {
      int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int in = open("/dev/null", O_RDONLY);
      if (o < 0 || e < 0 || in < 0) _exit(126);
      dup2(in, 0);
      dup2(o, 1);
      dup2(e, 2);
      for (const auto& v : env) putenv(const_cast<char*>(v.c_str()));
      std::vector<char*> a;
      for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
      a.push_back(nullptr);
      execv(a[0], a.data());
      _exit(127);
    }
  }
  // Wait up to timeout_ms for the exit; returns the status (128+signal), or
  // -1 if it is still running.
  int Wait(int timeout_ms) {
    if (pid_ <= 0) return status_;
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    int st = 0;
    while (waitpid(pid_, &st, WNOHANG) != pid_) {
      if (Clock::now() > deadline) return -1;
      usleep(5000);
    }
    pid_ = -1;
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return status_;
  }
  int Stop(int sig) {
    if (pid_ <= 0) return status_;
    kill(pid_, sig);
    int s = Wait(10000);
    if (s < 0) {
      kill(pid_, SIGKILL);
      s = Wait(10000);
    }
    return s;
  }
  void Signal(int sig) {
    if (pid_ > 0) kill(pid_, sig);
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int status_ = -1;
};

// Wait (with a deadline) until the file at path contains `what`.
bool WaitForText(const std::string& path, const std::string& what, int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < deadline) {
    if (kvstest::ReadFile(path).find(what) != std::string::npos) return true;
    usleep(10000);
  }
  return false;
}

// A kvs-server on 127.0.0.1 (or another host) and a free port.
class KvsServer {
 public:
  explicit KvsServer(const TempDir& tmp, const std::string& name = "srv") : tmp_(tmp), name_(name) {}
  bool Start(const std::string& host = "127.0.0.1", const std::vector<std::string>& env = {}) {
    std::string dir = tmp_.file(name_);
    mkdir(dir.c_str(), 0755);
    std::string portfile = tmp_.file(name_ + ".port");
    log_ = tmp_.file(name_ + ".log");
    child_.Start({Bin("kvs-server"), "--dir", dir, "--port-file", portfile, "--threads", "2",
                  "--addr", host + ":0"},
                 log_, log_ + ".err", env);
    auto deadline = Clock::now() + std::chrono::seconds(20);
    while (Clock::now() < deadline) {
      std::string p = kvstest::ReadFile(portfile);
      if (!p.empty() && p.back() == '\n') {
        port_ = std::stoi(p);
        return true;
      }
      if (child_.Wait(0) >= 0) return false;
      usleep(10000);
    }
    return false;
  }
  // SIGKILL (a crash) and reap.
  void Kill() { child_.Stop(SIGKILL); }
  ~KvsServer() {
    if (child_.pid() > 0) {
      EXPECT_EQ(child_.Stop(SIGTERM), 0) << Log();
    }
    EXPECT_FALSE(kvstest::HasSanitizerReport(Log())) << Log();
  }
  std::string Log() const { return kvstest::ReadFile(log_ + ".err"); }
  int port() const { return port_; }
  std::string addr() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  const TempDir& tmp_;
  std::string name_, log_;
  Child child_;
  int port_ = 0;
};

// A Debian redis-server on a free loopback port, nothing saved.
class RedisServer {
 public:
  explicit RedisServer(const TempDir& tmp) : tmp_(tmp) {}
  ~RedisServer() { child_.Stop(SIGTERM); }
  bool Start() {
    for (int attempt = 0; attempt < 5; attempt++) {
      port_ = FreePort();
      if (port_ <= 0) continue;
      std::string log = tmp_.file("redis.log");
      child_.Start({kRedisServer, "--bind", "127.0.0.1", "--port", std::to_string(port_), "--save", "",
                    "--appendonly", "no", "--daemonize", "no", "--dir", tmp_.path()},
                   log, log + ".err");
      auto deadline = Clock::now() + std::chrono::seconds(10);
      while (Clock::now() < deadline) {
        if (child_.Wait(0) >= 0) break;  // exited: the port was taken
        if (Raw(port_, {"PING"}) == "+PONG") return true;
        usleep(20000);
      }
      child_.Stop(SIGKILL);
    }
    return false;
  }
  int port() const { return port_; }
  std::string addr() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  const TempDir& tmp_;
  Child child_;
  int port_ = 0;
};

// The checks every good run passes: exit 0, valid JSON naming the tool, no
// errors, all asked-for requests answered, per-command counts adding up.
std::map<std::string, std::string> ExpectGoodRun(const RunResult& r, const std::string& json,
                                                 long long requests) {
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  auto m = ReadJson(json);
  EXPECT_EQ(m["tool"], "kvs-bench");
  EXPECT_EQ(m["version"], KVS_VERSION);
  EXPECT_EQ(Num(m, "errors.total"), 0) << r.out << r.err;
  if (requests) {
    EXPECT_EQ(Num(m, "total_ops"), requests) << r.out;
  }
  long long sum = 0;
  for (const auto& kv : m) {
    const std::string& k = kv.first;
    if (k.rfind("commands.", 0) == 0 && k.size() > 4 && k.substr(k.size() - 4) == ".ops")
      sum += std::stoll(kv.second);
  }
  EXPECT_EQ(sum, Num(m, "total_ops")) << r.out;
  EXPECT_EQ(m["complete"], "true");
  for (const char* k : {"errors.connection", "errors.error_reply", "errors.protocol", "errors.verify",
                        "errors.timeout", "latency_us.p50", "latency_us.p90", "latency_us.p99",
                        "latency_us.p999", "latency_us.max", "latency_us.mean", "ops_per_sec",
                        "duration_s", "connections", "threads", "pipeline", "keys"})
    EXPECT_TRUE(m.count(k)) << k;
  if (Num(m, "total_ops") > 0) {
    EXPECT_GT(std::stod(m["latency_us.p50"]), 0);
  }
  EXPECT_NE(r.out.find("total:"), std::string::npos) << r.out;
  return m;
}

// ---- options ---------------------------------------------------------------------------

TEST(BenchArgs, VersionHelpAndBadOptions) {
  RunResult r = Bench({"-V"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "kvs-bench " KVS_VERSION "\n");
  r = Bench({"--version"});
  EXPECT_EQ(r.out, "kvs-bench " KVS_VERSION "\n");
  r = Bench({"--help"});
  EXPECT_EQ(r.status, 0);
  for (const char* s : {"usage", "--addr", "-c", "-t", "-P", "-n", "-d", "--warmup", "--ratio", "--cmd",
                        "--keys", "--key-dist", "--key-size", "--value-size", "--seed", "--preload",
                        "--verify", "--json", "--csv", "--password", "-q", "-V"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s;

  const std::vector<std::vector<std::string>> bad = {
      {"--bogus"},
      {"-c", "0"},
      {"-c", "x"},
      {"-t", "-1"},
      {"-P", "0"},
      {"-n", "0"},
      {"-n", "10", "-d", "1"},
      {"-d", "0"},
      {"--warmup", "-1"},
      {"--ratio", "1"},
      {"--ratio", "0:0"},
      {"--ratio", "a:b"},
      {"--ratio", "1:1", "--cmd", "get"},
      {"--cmd", "flushall"},
      {"--keys", "0"},
      {"--key-dist", "pareto"},
      {"--key-dist", "zipf:1.5"},
      {"--key-dist", "zipf:x"},
      {"--key-size", "3"},
      {"--keys", "1000", "--key-size", "6"},
      {"--value-size", "10-5"},
      {"--value-size", "-5"},
      {"--value-size", "99999999999"},
      {"--verify", "--value-size", "10"},
      {"--addr", "localhost"},
      {"--addr", "127.0.0.1:99999"},
      {"--addr", "127.0.0.1:0"},
      {"--addr", "::1:4000"},
      {"--timeout", "0"},
      {"-c"},
      {"extra"},
  };
  for (const auto& args : bad) {
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    r = Bench(args, 30);
    EXPECT_EQ(r.status, 2) << joined << "\n" << r.out << r.err;
    EXPECT_NE(r.err.find("kvs-bench: "), std::string::npos) << joined << r.err;
    EXPECT_TRUE(r.out.empty()) << joined << r.out;
  }
}

// ---- against kvs-server ----------------------------------------------------------------

class BenchKvs : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(srv_.Start()) << srv_.Log(); }
  std::string Json() { return tmp_.file("out-" + std::to_string(serial_++) + ".json"); }
  TempDir tmp_;
  KvsServer srv_{tmp_};
  int serial_ = 0;
};

TEST_F(BenchKvs, PreloadVerifyJson) {
  std::string json = Json();
  RunResult r = Bench({"--addr", srv_.addr(), "-n", "3000", "-c", "8", "-t", "2", "-P", "4", "--keys", "500",
                       "--preload", "--verify", "--json", json});
  auto m = ExpectGoodRun(r, json, 3000);
  EXPECT_EQ(m["addr.0"], srv_.addr());
  EXPECT_EQ(Num(m, "connections"), 8);
  EXPECT_EQ(Num(m, "threads"), 2);
  EXPECT_EQ(Num(m, "pipeline"), 4);
  EXPECT_EQ(Num(m, "keys"), 500);
  EXPECT_EQ(m["workload"], "set:get=1:9");
  EXPECT_EQ(m["key_dist"], "uniform");
  EXPECT_EQ(m["value_size"], "100");
  EXPECT_EQ(m["verify"], "true");
  EXPECT_EQ(Num(m, "preload_ops"), 500);
  EXPECT_GT(Num(m, "commands.SET.ops"), 0);
  EXPECT_GT(Num(m, "commands.GET.ops"), 0);
  // Every key is there, with a value of 100 bytes naming it.
  EXPECT_EQ(Raw(srv_.port(), {"DBSIZE"}), ":500");
  std::string v = Raw(srv_.port(), {"GET", "key:000000000042"});
  EXPECT_EQ(v.size(), 100u) << v;
  EXPECT_EQ(v.rfind("kb42.", 0), 0u) << v;
  // The human summary has the same numbers.
  EXPECT_NE(r.out.find("total: 3000 ops"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("GET"), std::string::npos);
}

TEST_F(BenchKvs, EveryCommandAndValueRange) {
  for (const char* cmd : {"ping", "set", "get", "incr", "mset", "del"}) {
    std::string json = Json();
    RunResult r = Bench({"--addr", srv_.addr(), "-n", "400", "-c", "4", "-P", "2", "--keys", "100", "--cmd",
                         cmd, "--value-size", "50-200", "--verify", "--json", json});
    auto m = ExpectGoodRun(r, json, 400);
    std::string upper;
    for (const char* p = cmd; *p; p++) upper += static_cast<char>(toupper(*p));
    EXPECT_EQ(Num(m, "commands." + upper + ".ops"), 400) << cmd;
    EXPECT_EQ(m["workload"], std::string("cmd=") + cmd);
    EXPECT_EQ(m["value_size"], "50-200");
  }
  // INCR works on its own keys; MSET wrote values of 50..200 bytes.
  std::string c = Raw(srv_.port(), {"DBSIZE"});
  EXPECT_NE(c, ":0");
}

TEST_F(BenchKvs, RatioAndKeyDistributions) {
  for (const char* dist : {"uniform", "zipf", "zipf:0.5", "sequential"}) {
    std::string json = Json();
    RunResult r = Bench({"--addr", srv_.addr(), "-n", "2000", "-c", "4", "-t", "2", "-P", "4", "--keys",
                         "300", "--ratio", "1:1", "--key-dist", dist, "--preload", "--verify", "--json",
                         json});
    auto m = ExpectGoodRun(r, json, 2000);
    EXPECT_EQ(m["workload"], "set:get=1:1");
    EXPECT_EQ(m["key_dist"], std::string(dist) == "zipf" ? "zipf:0.99" : dist);
    EXPECT_GT(Num(m, "commands.SET.ops"), 500) << dist;
    EXPECT_GT(Num(m, "commands.GET.ops"), 500) << dist;
  }
  // GET only: no SET line at all.
  std::string json = Json();
  RunResult r = Bench({"--addr", srv_.addr(), "-n", "500", "--ratio", "0:1", "--json", json});
  auto m = ExpectGoodRun(r, json, 500);
  EXPECT_EQ(Num(m, "commands.GET.ops"), 500);
  EXPECT_EQ(m.count("commands.SET.ops"), 0u);
}

TEST_F(BenchKvs, VerifyCatchesWrongValues) {
  const std::vector<std::string> common{"--addr", srv_.addr(), "--keys", "4", "-c", "2"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = common;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  // Written and read back by kvs-bench: no error.
  std::string json = Json();
  ExpectGoodRun(Bench(with({"--preload", "--verify", "--cmd", "get", "-n", "200", "--json", json})), json, 200);

  // Key 1 gets a bogus value, the value of key 0, its own value with one byte
  // changed: each is caught, with its own message.
  std::string v0 = Raw(srv_.port(), {"GET", "key:000000000000"});
  std::string v1 = Raw(srv_.port(), {"GET", "key:000000000001"});
  ASSERT_EQ(v0.size(), 100u);
  ASSERT_EQ(v1.size(), 100u);
  std::string bad1 = v1;
  bad1[90] = bad1[90] == 'x' ? 'y' : 'x';
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"bogus", "GET key:000000000001: not a kvs-bench value (5 bytes: \"bogus\")"},
      {v0, "GET key:000000000001: the value of another key"},
      {bad1, "GET key:000000000001: corrupted value"},
      {v1.substr(0, 99), "GET key:000000000001: corrupted value"},
  };
  for (const auto& c : cases) {
    ASSERT_EQ(Raw(srv_.port(), {"SET", "key:000000000001", c.first}), "+OK");
    json = Json();
    RunResult r = Bench({"--addr", srv_.addr(), "--keys", "2", "-c", "2", "--verify", "--cmd", "get", "-n", "400",
                         "--json", json});
    EXPECT_EQ(r.status, 1) << r.out << r.err;
    auto m = ReadJson(json);
    EXPECT_GT(Num(m, "errors.verify"), 0);
    EXPECT_EQ(Num(m, "errors.verify"), Num(m, "errors.total"));
    EXPECT_EQ(Num(m, "total_ops"), 400);
    EXPECT_NE(r.err.find(c.second), std::string::npos) << c.second << "\n" << r.err;
    EXPECT_NE(r.err.find("verify errors"), std::string::npos) << r.err;
    // Without --verify the same run is not checked.
    EXPECT_EQ(Bench({"--addr", srv_.addr(), "--keys", "2", "-c", "2", "--cmd", "get", "-n", "100"}).status, 0);
  }
  // Its own value again: fine.
  ASSERT_EQ(Raw(srv_.port(), {"SET", "key:000000000001", v1}), "+OK");
  json = Json();
  ExpectGoodRun(Bench({"--addr", srv_.addr(), "--keys", "2", "-c", "2", "--verify", "--cmd", "get", "-n", "100",
                       "--json", json}),
                json, 100);
}

TEST_F(BenchKvs, Csv) {
  std::string json = Json(), csv = tmp_.file("series.csv");
  RunResult r = Bench({"--addr", srv_.addr(), "-d", "3", "-c", "4", "-P", "2", "--csv", csv, "--json", json});
  auto m = ExpectGoodRun(r, json, 0);
  std::istringstream in(kvstest::ReadFile(csv));
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(line, "second,ops,ops_per_sec,p50_us,p99_us,errors,interval_s");
  long long ops = 0;
  int rows = 0;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ls(line);
    std::string x;
    while (std::getline(ls, x, ',')) f.push_back(x);
    ASSERT_EQ(f.size(), 7u) << line;
    rows++;
    EXPECT_EQ(std::stoi(f[0]), rows) << line;
    ops += std::stoll(f[1]);
    EXPECT_EQ(f[5], "0") << line;
  }
  EXPECT_GE(rows, 2);
  EXPECT_EQ(ops, Num(m, "total_ops"));
  // Plain progress lines on stderr (not a terminal), one a second.
  EXPECT_NE(r.err.find("[   1s]"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\r'), std::string::npos);
  // -q: no progress, one summary line.
  r = Bench({"--addr", srv_.addr(), "-d", "1", "-c", "2", "-q"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.err.find("[   1s]"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("ops/s"), std::string::npos);
}

// The last CSV row of a timed run is not a sliver of a second turned into a
// rate: a remainder under 0.5 s is merged into the row before it, and the
// rows still add up to the total.
TEST_F(BenchKvs, CsvLastRowIsNotASliver) {
  for (const char* warmup : {"0.3", "0.7"}) {
    std::string json = Json(), csv = tmp_.file("series.csv");
    RunResult r = Bench({"--addr", srv_.addr(), "-d", "2", "--warmup", warmup, "-c", "4", "--csv", csv,
                         "--json", json});
    auto m = ExpectGoodRun(r, json, 0);
    std::istringstream in(kvstest::ReadFile(csv));
    std::string line;
    ASSERT_TRUE(std::getline(in, line));
    long long ops = 0;
    int rows = 0;
    while (std::getline(in, line)) {
      std::vector<std::string> f;
      std::stringstream ls(line);
      std::string x;
      while (std::getline(ls, x, ',')) f.push_back(x);
      ASSERT_EQ(f.size(), 7u) << line;
      rows++;
      ops += std::stoll(f[1]);
      double secs = std::stod(f[6]);
      EXPECT_GE(secs, 0.5) << "row " << rows << ": " << line;
      // The rate is over the row's own interval.
      EXPECT_NEAR(std::stod(f[2]), std::stoll(f[1]) / secs, std::stod(f[2]) * 0.01 + 1) << line;
    }
    EXPECT_GE(rows, 2) << kvstest::ReadFile(csv);
    EXPECT_LE(rows, 3) << kvstest::ReadFile(csv);
    EXPECT_EQ(ops, Num(m, "total_ops"));
  }
}

// --max-errors: a run with more errors than that fails (exit 1) with the
// reason; the default (0) fails any run with an error.  INCR of a counter
// that holds text is an error reply; half the counters do.
TEST_F(BenchKvs, MaxErrors) {
  for (int k = 0; k < 5; k++) {
    RunResult c = kvstest::Run({Bin("kvs-client"), "--addr", srv_.addr(), "set", "ctr:" + std::to_string(k), "abc"});
    ASSERT_EQ(c.status, 0) << c.err;
  }
  const std::vector<std::string> args{"--addr", srv_.addr(), "-n", "200", "-c", "2", "--cmd", "incr",
                                      "--keys", "10", "--key-size", "5"};
  std::string json = Json();
  std::vector<std::string> a = args;
  a.insert(a.end(), {"--json", json});
  RunResult r = Bench(a);
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  auto m = ReadJson(json);
  long long errs = Num(m, "errors.error_reply");
  EXPECT_GT(errs, 0);
  EXPECT_LT(errs, 200);
  EXPECT_NE(r.err.find(std::to_string(errs) + " errors, more than --max-errors 0 (error reply: ERR"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.out.find("total:"), std::string::npos) << "no summary: " << r.out;
  a = args;
  a.insert(a.end(), {"--max-errors", "200"});
  r = Bench(a);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  a = args;
  a.insert(a.end(), {"--max-errors", "-1"});
  EXPECT_EQ(Bench(a).status, 2);
}

TEST_F(BenchKvs, WarmupIsNotCounted) {
  std::string json = Json();
  RunResult r = Bench({"--addr", srv_.addr(), "-n", "1000", "--warmup", "0.5", "-c", "4", "--json", json});
  auto m = ExpectGoodRun(r, json, 1000);
  EXPECT_GT(Num(m, "warmup_ops"), 0);
}

TEST_F(BenchKvs, ServerDiesMidRun) {
  std::string json = Json(), out = tmp_.file("bench.out"), err = tmp_.file("bench.err");
  Child bench;
  bench.Start({Bin("kvs-bench"), "--addr", srv_.addr(), "-d", "60", "-c", "8", "-t", "2", "-P", "4", "--json",
               json},
              out, err);
  ASSERT_TRUE(WaitForText(err, "[   1s]", 30000)) << kvstest::ReadFile(err);
  auto t0 = Clock::now();
  srv_.Kill();
  int st = bench.Wait(20000);
  ASSERT_NE(st, -1) << "kvs-bench did not end after its server died";
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(20));
  EXPECT_EQ(st, 1);
  std::string e = kvstest::ReadFile(err);
  EXPECT_FALSE(kvstest::HasSanitizerReport(e)) << e;
  EXPECT_NE(e.find("ended early"), std::string::npos) << e;
  auto m = ReadJson(json);
  EXPECT_GT(Num(m, "errors.connection"), 0);
  EXPECT_GT(Num(m, "total_ops"), 0);
  EXPECT_EQ(m["complete"], "false");
  EXPECT_NE(kvstest::ReadFile(out).find("total:"), std::string::npos);
}

TEST_F(BenchKvs, SigintPrintsTheSummarySoFar) {
  std::string json = Json(), out = tmp_.file("bench.out"), err = tmp_.file("bench.err");
  Child bench;
  bench.Start({Bin("kvs-bench"), "--addr", srv_.addr(), "-d", "60", "-c", "4", "--json", json}, out, err);
  ASSERT_TRUE(WaitForText(err, "[   1s]", 30000)) << kvstest::ReadFile(err);
  bench.Signal(SIGINT);
  int st = bench.Wait(15000);
  ASSERT_NE(st, -1) << "kvs-bench did not stop on SIGINT";
  EXPECT_EQ(st, 0) << kvstest::ReadFile(err);
  EXPECT_FALSE(kvstest::HasSanitizerReport(kvstest::ReadFile(err))) << kvstest::ReadFile(err);
  EXPECT_NE(kvstest::ReadFile(out).find("(interrupted)"), std::string::npos) << kvstest::ReadFile(out);
  auto m = ReadJson(json);
  EXPECT_EQ(m["interrupted"], "true");
  EXPECT_GT(Num(m, "total_ops"), 0);
  EXPECT_EQ(Num(m, "errors.total"), 0);
}

TEST(BenchConnect, RefusedIsAClearErrorNotACrash) {
  int port = FreePort();
  ASSERT_GT(port, 0);
  TempDir tmp;
  std::string json = tmp.file("r.json");
  auto t0 = Clock::now();
  RunResult r = Bench({"--addr", "127.0.0.1:" + std::to_string(port), "-n", "100", "-c", "3", "--json", json}, 30);
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(20));
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("Connection refused"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("could not connect"), std::string::npos) << r.err;
  auto m = ReadJson(json);
  EXPECT_EQ(Num(m, "errors.connection"), 3);
  EXPECT_EQ(Num(m, "total_ops"), 0);
}

TEST(BenchConnect, Auth) {
  TempDir tmp;
  KvsServer a(tmp, "a");
  ASSERT_TRUE(a.Start("127.0.0.1", {"KVS_PASSWORD=s3cret"})) << a.Log();
  std::string json = tmp.file("a.json");
  // No password: every request is refused with NOAUTH, counted by prefix;
  // a run in which nothing succeeded fails, and says why.
  RunResult r = Bench({"--addr", a.addr(), "-n", "50", "-c", "2", "--json", json});
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("no request succeeded (50 errors; error reply: NOAUTH"), std::string::npos) << r.err;
  // Whatever --max-errors allows.
  EXPECT_EQ(Bench({"--addr", a.addr(), "-n", "50", "-c", "2", "--max-errors", "1000"}).status, 1);
  auto m = ReadJson(json);
  EXPECT_EQ(Num(m, "errors.error_reply"), 50);
  EXPECT_EQ(Num(m, "error_replies.NOAUTH"), 50);
  EXPECT_NE(r.out.find("NOAUTH"), std::string::npos) << r.out;
  // --password, or $KVS_PASSWORD.
  json = tmp.file("b.json");
  ExpectGoodRun(Bench({"--addr", a.addr(), "-n", "50", "-c", "2", "--password", "s3cret", "--json", json}), json,
                50);
  json = tmp.file("c.json");
  r = kvstest::Run({"/usr/bin/env", "KVS_PASSWORD=s3cret", Bin("kvs-bench"), "--addr", a.addr(), "-n", "50", "-c",
                    "2", "--json", json});
  ExpectGoodRun(r, json, 50);
  // A wrong password: no connection is usable.
  r = Bench({"--addr", a.addr(), "-n", "50", "-c", "2", "--password", "wrong"});
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("AUTH failed"), std::string::npos) << r.err;
}

TEST(BenchConnect, SeveralAddressesAndIpv6) {
  TempDir tmp;
  KvsServer a(tmp, "a"), b(tmp, "b");
  ASSERT_TRUE(a.Start()) << a.Log();
  ASSERT_TRUE(b.Start()) << b.Log();
  std::string json = tmp.file("ab.json");
  // Connections alternate between the addresses: both servers get writes.
  auto m = ExpectGoodRun(Bench({"--addr", a.addr(), "--addr", b.addr(), "-n", "400", "-c", "4", "-t", "2",
                                "--cmd", "set", "--keys", "50", "--json", json}),
                         json, 400);
  EXPECT_EQ(m["addr.0"], a.addr());
  EXPECT_EQ(m["addr.1"], b.addr());
  EXPECT_NE(Raw(a.port(), {"DBSIZE"}), ":0");
  EXPECT_NE(Raw(b.port(), {"DBSIZE"}), ":0");

  KvsServer c(tmp, "c");
  if (!c.Start("[::1]")) GTEST_SKIP() << "no IPv6 loopback here: " << c.Log();
  std::string addr6 = "[::1]:" + std::to_string(c.port());
  json = tmp.file("c.json");
  m = ExpectGoodRun(Bench({"--addr", addr6, "-n", "300", "-c", "2", "--preload", "--verify", "--keys", "20",
                           "--json", json}),
                    json, 300);
  EXPECT_EQ(m["addr.0"], addr6);
  EXPECT_EQ(Raw(c.port(), {"DBSIZE"}, AF_INET6), ":20");
}

// ---- against a server that misbehaves ------------------------------------------------------

// A RESP server on 127.0.0.1 (its own thread, poll, any number of clients)
// that answers PING, SET and GET, and misbehaves as told.
class FakeServer {
 public:
  enum Mode {
    kGood,        // a store
    kLoseWrites,  // SET replies +OK, stores nothing
    kKeepFirst,   // SET of an existing key replies +OK, changes nothing
    kGarbage,     // GET replies bytes that are not RESP
    kSilentGet,   // GET gets no reply
  };
  explicit FakeServer(Mode mode) : mode_(mode) {
    lfd_ = kvstest::LoopbackSocket(0, true, &port_);
    if (lfd_ < 0) abort();
    thread_ = std::thread([this] { Loop(); });
  }
  ~FakeServer() {
    stop_ = true;
    thread_.join();
    for (auto& c : clients_) {
      close(c.fd);
      net_resp_parser_free(&c.parser);
      net_buf_free(&c.in);
    }
    close(lfd_);
  }
  std::string addr() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  struct Client {
    int fd;
    net_resp_parser parser;
    net_buf in;
  };
  void Loop() {
    // Bounded: the tests that use it take seconds.
    auto deadline = Clock::now() + std::chrono::seconds(120);
    while (!stop_ && Clock::now() < deadline) {
      std::vector<pollfd> p{{lfd_, POLLIN, 0}};
      for (auto& c : clients_) p.push_back({c.fd, POLLIN, 0});
      if (poll(p.data(), p.size(), 20) <= 0) continue;
      if (p[0].revents & POLLIN) {
        int fd = accept4(lfd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) {
          clients_.push_back(Client{fd, {}, NET_BUF_INIT});
          net_resp_parser_init(&clients_.back().parser);
        }
      }
      for (size_t i = 1; i < p.size(); i++)
        if (p[i].revents) Serve(clients_[i - 1]);
    }
  }
  void Serve(Client& c) {
    if (net_buf_reserve(&c.in, 65536) != 0) return;
    ssize_t n = recv(c.fd, c.in.data + c.in.len, c.in.cap - c.in.len, MSG_DONTWAIT);
    if (n <= 0) return;
    c.in.len += static_cast<size_t>(n);
    std::string out;
    size_t off = 0;
    for (;;) {
      net_resp_cmd cmd;
      size_t used = 0;
      int rc = net_resp_parse(&c.parser, c.in.data + off, c.in.len - off, &cmd, &used);
      off += used;
      if (rc != NET_RESP_OK) break;
      std::string name(cmd.argv[0], cmd.argvlen[0]);
      for (auto& ch : name) ch = static_cast<char>(toupper(ch));
      if (name == "SET" && cmd.argc == 3) {
        std::string k(cmd.argv[1], cmd.argvlen[1]), v(cmd.argv[2], cmd.argvlen[2]);
        if (mode_ != kLoseWrites && !(mode_ == kKeepFirst && kv_.count(k))) kv_[k] = v;
        out += "+OK\r\n";
      } else if (name == "GET" && cmd.argc == 2) {
        auto it = kv_.find(std::string(cmd.argv[1], cmd.argvlen[1]));
        if (mode_ == kGarbage)
          out += "?garbage\r\n";
        else if (mode_ == kSilentGet)
          ;
        else if (it == kv_.end())
          out += "$-1\r\n";
        else
          out += "$" + std::to_string(it->second.size()) + "\r\n" + it->second + "\r\n";
      } else if (name == "PING") {
        out += "+PONG\r\n";
      } else {
        out += "-ERR unknown command\r\n";
      }
    }
    net_buf_consume(&c.in, off);
    size_t sent = 0;
    while (sent < out.size()) {
      ssize_t w = send(c.fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (w <= 0) break;
      sent += static_cast<size_t>(w);
    }
  }

  Mode mode_;
  int lfd_ = -1, port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<Client> clients_;
  std::map<std::string, std::string> kv_;
};

TEST(BenchFake, GoodFakeServerPasses) {
  FakeServer s(FakeServer::kGood);
  TempDir tmp;
  std::string json = tmp.file("g.json");
  ExpectGoodRun(Bench({"--addr", s.addr(), "-n", "2000", "-c", "4", "-P", "4", "--keys", "50", "--preload",
                       "--verify", "--ratio", "1:1", "--json", json}),
                json, 2000);
}

TEST(BenchFake, NilAfterPreloadIsAVerifyError) {
  FakeServer s(FakeServer::kLoseWrites);
  RunResult r = Bench({"--addr", s.addr(), "-n", "100", "-c", "2", "--keys", "10", "--preload", "--verify",
                       "--cmd", "get"});
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("nil, but the key was preloaded"), std::string::npos) << r.err;
  // Without --preload a nil is what a key never written reads.
  r = Bench({"--addr", s.addr(), "-n", "100", "-c", "2", "--keys", "10", "--verify", "--cmd", "get"});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
}

TEST(BenchFake, StaleReadIsAVerifyError) {
  // The server keeps the preloaded version 1 of every key: a GET after an
  // acknowledged SET of version 2 reads an older value.  One connection, so
  // every SET is a candidate.
  FakeServer s(FakeServer::kKeepFirst);
  RunResult r = Bench({"--addr", s.addr(), "-n", "400", "-c", "1", "--keys", "5", "--preload", "--verify",
                       "--ratio", "1:1"});
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("stale: version 1, but version"), std::string::npos) << r.err;
}

TEST(BenchFake, ProtocolErrorsAndTimeoutsAreCounted) {
  TempDir tmp;
  {
    FakeServer s(FakeServer::kGarbage);
    std::string json = tmp.file("p.json");
    RunResult r = Bench({"--addr", s.addr(), "-n", "100", "-c", "2", "--cmd", "get", "--json", json});
    EXPECT_EQ(r.status, 1) << r.out << r.err;
    auto m = ReadJson(json);
    EXPECT_EQ(Num(m, "errors.protocol"), 2);
    EXPECT_NE(r.err.find("Protocol error"), std::string::npos) << r.err;
  }
  {
    FakeServer s(FakeServer::kSilentGet);
    std::string json = tmp.file("t.json");
    auto t0 = Clock::now();
    RunResult r = Bench({"--addr", s.addr(), "-n", "100", "-c", "2", "-P", "3", "--cmd", "get", "--timeout", "1",
                         "--json", json});
    EXPECT_LT(Clock::now() - t0, std::chrono::seconds(20));
    EXPECT_EQ(r.status, 1) << r.out << r.err;
    auto m = ReadJson(json);
    EXPECT_EQ(Num(m, "errors.timeout"), 6);
    EXPECT_NE(r.err.find("no reply within 1 s"), std::string::npos) << r.err;
  }
}

// ---- against redis-server --------------------------------------------------------------

class BenchRedis : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kRedisServer, X_OK) != 0)
      GTEST_SKIP() << kRedisServer << " not found: install Debian's redis-server package";
    ASSERT_TRUE(redis_.Start()) << kvstest::ReadFile(tmp_.file("redis.log"));
  }
  TempDir tmp_;
  RedisServer redis_{tmp_};
};

TEST_F(BenchRedis, PreloadVerifyJson) {
  std::string json = tmp_.file("r.json");
  auto m = ExpectGoodRun(Bench({"--addr", redis_.addr(), "-n", "3000", "-c", "8", "-t", "2", "-P", "4", "--keys",
                                "500", "--preload", "--verify", "--json", json}),
                         json, 3000);
  EXPECT_EQ(Num(m, "preload_ops"), 500);
  EXPECT_EQ(Raw(redis_.port(), {"DBSIZE"}), ":500");
}

TEST_F(BenchRedis, EveryCommand) {
  for (const char* cmd : {"ping", "set", "get", "incr", "mset", "del"}) {
    std::string json = tmp_.file(std::string(cmd) + ".json");
    auto m = ExpectGoodRun(Bench({"--addr", redis_.addr(), "-n", "400", "-c", "4", "-P", "8", "--cmd", cmd,
                                  "--keys", "100", "--verify", "--json", json}),
                           json, 400);
    EXPECT_EQ(m["workload"], std::string("cmd=") + cmd);
  }
  std::string json = tmp_.file("d.json");
  ExpectGoodRun(Bench({"--addr", redis_.addr(), "-d", "1", "-c", "4", "--key-dist", "zipf:0.8", "--ratio", "1:4",
                       "--json", json}),
                json, 0);
}

}  // namespace

// cluster_test.cc - kvs-server shards behind twemproxy (nutcracker), as
// tools/kvs-cluster.sh (make cluster) starts them: redis-cli and kvs-bench
// through the proxy, the spread of keys, a shard killed and restarted, a
// shard down or hung.  Skipped only where nutcracker is not installed
// (make deps installs it).  Also ServerPipeline: reads between pipelined
// writes (what the proxy sends each shard) share the writes' submission.
#include <sys/prctl.h>
#include <sys/stat.h>

#include <deque>
#include <map>
#include <set>

#include "server_util.h"

namespace {

using kvstest::Bin;
using kvstest::Clock;
using kvstest::Conn;
using kvstest::ReadFile;

using kvstest::RunResult;
using kvstest::Server;
using kvstest::TempDir;

const char* const kRedisCli = "/usr/bin/redis-cli";

bool HaveNutcracker() {
  for (const char* p : {"/usr/sbin/nutcracker", "/usr/bin/nutcracker", "/usr/local/sbin/nutcracker"})
    if (access(p, X_OK) == 0) return true;
  return false;
}

struct Shard {
  pid_t pid = -1;
  int port = 0;
  std::string dir;
};

// tools/kvs-cluster.sh in the foreground, in its own process group.  The
// script starts nutcracker and the shards in sessions of their own (setsid),
// so a failed test stops them through the script (SIGTERM), and kills what
// is left by pid if the script does not stop.
class Cluster {
 public:
  ~Cluster() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      auto deadline = Clock::now() + std::chrono::seconds(15);
      while (waitpid(pid_, nullptr, WNOHANG) != pid_) {
        if (Clock::now() > deadline) {
          KillAll();
          waitpid(pid_, nullptr, 0);
          break;
        }
        usleep(10000);
      }
    }
  }
  bool Start(const std::string& dir, const std::vector<std::string>& extra = {}) {
    dir_ = dir;
    std::string info = dir + "/info";
    std::vector<std::string> argv{"/bin/bash", std::string(KVS_SRC_DIR) + "/tools/kvs-cluster.sh",
                                  "--bin-dir", KVS_BIN_DIR, "--dir", dir + "/data", "--info", info,
                                  // 0: the script picks it once the shards listen,
                                  // so no shard can be handed it.
                                  "--proxy-port", "0",
                                  "--threads", "2"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    pid_ = fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      setpgid(0, 0);
      // A test process that dies (a crash) takes the cluster down too.
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      int fd = open((dir + "/cluster.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int in = open("/dev/null", O_RDONLY);
      if (fd < 0 || in < 0) _exit(126);
      dup2(in, 0);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<char*> a;
      for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
      a.push_back(nullptr);
      execv(a[0], a.data());
      _exit(127);
    }
    setpgid(pid_, pid_);
    auto deadline = Clock::now() + std::chrono::seconds(30);
    while (Clock::now() < deadline) {
      int st;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        ADD_FAILURE() << "kvs-cluster.sh exited: " << log();
        return false;
      }
      std::ifstream f(info);
      std::string kind;
      if (f >> kind && kind == "proxy") {
        std::string addr;
        f >> addr >> proxy_pid_;
        proxy_port_ = std::stoi(addr.substr(addr.rfind(':') + 1));
        int i;
        Shard s;
        while (f >> kind >> i >> s.pid >> addr >> s.dir) {
          s.port = std::stoi(addr.substr(addr.rfind(':') + 1));
          shards_.push_back(s);
        }
        return true;
      }
      usleep(20000);
    }
    ADD_FAILURE() << "kvs-cluster.sh not ready within 30 s: " << log();
    return false;
  }
  // SIGTERM and wait: its exit status.
  int Stop(int timeout_ms = 20000) {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    int st = 0;
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (waitpid(pid_, &st, WNOHANG) != pid_) {
      if (Clock::now() > deadline) {
        ADD_FAILURE() << "kvs-cluster.sh did not stop: " << log();
        KillAll();
        waitpid(pid_, &st, 0);
        break;
      }
      usleep(10000);
    }
    pid_ = -1;
    // The shards' logs: a sanitizer build's report (ASan, TSan) fails it.
    for (size_t i = 0; i < shards_.size(); i++) {
      std::string l = ReadFile(dir_ + "/data/shard-" + std::to_string(i) + ".log");
      EXPECT_FALSE(kvstest::HasSanitizerReport(l)) << "shard " << i << ": " << l;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  int proxy() const { return proxy_port_; }
  const std::vector<Shard>& shards() const { return shards_; }
  std::string log() const { return ReadFile(dir_ + "/cluster.log"); }

 private:
  // The script's group, then nutcracker and the shards it started.
  void KillAll() {
    kill(-pid_, SIGKILL);
    if (proxy_pid_ > 0) kill(proxy_pid_, SIGKILL);
    for (const auto& s : shards_)
      if (s.pid > 0) kill(s.pid, SIGKILL);
  }
  pid_t pid_ = -1;
  pid_t proxy_pid_ = -1;
  int proxy_port_ = 0;
  std::vector<Shard> shards_;
  std::string dir_;
};

#define NEED_NUTCRACKER()                                                                       \
  do {                                                                                          \
    if (!HaveNutcracker())                                                                      \
      GTEST_SKIP() << "nutcracker (twemproxy) is not installed: make deps installs Debian's " \
                      "nutcracker package";                                                     \
  } while (0)

RunResult Cli(int port, const std::vector<std::string>& args) {
  std::vector<std::string> argv{kRedisCli, "-p", std::to_string(port)};
  argv.insert(argv.end(), args.begin(), args.end());
  return kvstest::Run(argv, "", 20);
}

long long DbSize(int port) {
  Conn c(port);
  std::string r = c.Cmd({"DBSIZE"});
  return r.rfind("int:", 0) == 0 ? std::stoll(r.substr(4)) : -1;
}

// Which shard holds key (directly, not through the proxy); -1 if none.
int ShardOf(const Cluster& cl, const std::string& key) {
  for (size_t i = 0; i < cl.shards().size(); i++) {
    Conn c(cl.shards()[i].port);
    if (c.Cmd({"EXISTS", key}) == "int:1") return static_cast<int>(i);
  }
  return -1;
}

// Keys "prefix0", "prefix1" ... written through the proxy until each of the
// shards holds at least one: one key per shard (at most 200 tried).
std::vector<std::string> KeyPerShard(const Cluster& cl, const std::string& prefix) {
  std::vector<std::string> per(cl.shards().size());
  Conn p(cl.proxy());
  size_t found = 0;
  for (int i = 0; i < 200 && found < per.size(); i++) {
    // The number first: twemproxy's fnv1a_64 is a 32-bit hash whose last
    // bytes barely move it, so "user:1", "user:2" ... share one shard
    // (docs/SCALING.md).
    std::string k = std::to_string(i) + prefix;
    EXPECT_EQ(p.Cmd({"SET", k, "v-" + k}), "simple:OK");
    int s = ShardOf(cl, k);
    if (s >= 0 && per[static_cast<size_t>(s)].empty()) {
      per[static_cast<size_t>(s)] = k;
      found++;
    }
  }
  EXPECT_EQ(found, per.size()) << "200 keys did not reach every shard";
  return per;
}

TEST(Cluster, RedisCliThroughProxy) {
  NEED_NUTCRACKER();
  TempDir d;
  Cluster cl;
  ASSERT_TRUE(cl.Start(d.path()));
  ASSERT_EQ(cl.shards().size(), 3u);
  std::vector<std::string> keys = KeyPerShard(cl, "user:");
  ASSERT_EQ(keys.size(), 3u);
  int p = cl.proxy();
  for (const auto& k : keys) {
    EXPECT_EQ(Cli(p, {"SET", k, "val-" + k}).out, "OK\n");
    EXPECT_EQ(Cli(p, {"GET", k}).out, "val-" + k + "\n");
  }
  // MGET and DEL across shards: twemproxy splits them and joins the replies.
  EXPECT_EQ(Cli(p, {"MGET", keys[0], keys[1], "nosuchkey", keys[2]}).out,
            "val-" + keys[0] + "\nval-" + keys[1] + "\n\nval-" + keys[2] + "\n");
  EXPECT_EQ(Cli(p, {"INCR", "counter"}).out, "1\n");
  EXPECT_EQ(Cli(p, {"INCR", "counter"}).out, "2\n");
  EXPECT_EQ(Cli(p, {"DEL", keys[0], keys[1], keys[2], "nosuchkey"}).out, "3\n");
  EXPECT_EQ(Cli(p, {"GET", keys[1]}).out, "\n");
  // Each shard saw its own key only (the proxy routed, not broadcast).
  for (size_t i = 0; i < 3; i++) EXPECT_EQ(ShardOf(cl, keys[i]), -1);
  EXPECT_EQ(cl.Stop(), 0) << cl.log();
}

// A kvs shard binds port 0 itself, and the kernel may hand it a
// --proxy-port named in its ephemeral range: the script starts that shard
// again rather than refuse the proxy's port as taken.  Here a stand-in for
// kvs-server claims the proxy's port on its first start and runs the real
// server after that.
TEST(Cluster, ShardHandedTheProxyPortStartsAgain) {
  NEED_NUTCRACKER();
  TempDir d;
  const int want = kvstest::FreePort();
  ASSERT_GT(want, 0);
  const std::string bin = d.path() + "/bin";
  ASSERT_EQ(mkdir(bin.c_str(), 0755), 0);
  kvstest::WriteFile(bin + "/kvs-server",
                     "#!/bin/bash\n"
                     "if mkdir \"" + d.path() + "/claimed\" 2>/dev/null; then\n"
                     "  while [ $# -gt 0 ]; do [ \"$1\" = --port-file ] && pf=$2; shift; done\n"
                     "  echo " + std::to_string(want) + " > \"$pf\"\n"
                     "  trap 'exit 0' TERM\n"
                     "  for ((n = 0; n < 1200; n++)); do sleep 0.05; done\n"
                     "fi\n"
                     "exec \"" KVS_BIN_DIR "/kvs-server\" \"$@\"\n");
  ASSERT_EQ(chmod((bin + "/kvs-server").c_str(), 0755), 0);
  Cluster cl;
  ASSERT_TRUE(cl.Start(d.path(), {"--bin-dir", bin, "--proxy-port", std::to_string(want), "-n", "2"}));
  EXPECT_EQ(cl.proxy(), want);
  ASSERT_EQ(cl.shards().size(), 2u);
  for (const auto& s : cl.shards()) EXPECT_NE(s.port, want);
  EXPECT_EQ(Cli(want, {"SET", "k", "v"}).out, "OK\n");
  EXPECT_EQ(Cli(want, {"GET", "k"}).out, "v\n");
  EXPECT_EQ(cl.Stop(), 0) << cl.log();
}

TEST(Cluster, BenchVerifyThroughProxy) {
  NEED_NUTCRACKER();
  TempDir d;
  Cluster cl;
  ASSERT_TRUE(cl.Start(d.path()));
  RunResult r = kvstest::Run({Bin("kvs-bench"), "--addr", "127.0.0.1:" + std::to_string(cl.proxy()), "-c",
                     "16", "-P", "4", "-n", "30000", "--keys", "3000", "--ratio", "1:1",
                     "--value-size", "64", "--preload", "--verify", "-q"},
                    "", 60);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find(" 0 errors"), std::string::npos) << r.out << r.err;
  long long total = 0;
  for (const auto& s : cl.shards()) {
    long long n = DbSize(s.port);
    EXPECT_GT(n, 0) << "shard on port " << s.port << " got no key";
    total += n;
  }
  EXPECT_EQ(total, 3000);
  EXPECT_EQ(cl.Stop(), 0) << cl.log();
}

TEST(Cluster, KeysSpreadEvenlyOverShards) {
  NEED_NUTCRACKER();
  TempDir d;
  Cluster cl;
  ASSERT_TRUE(cl.Start(d.path(), {"--fsync", "never"}));
  // 100,000 keys "key:0000000000000" ... through the proxy (kvs-bench's
  // preload sets each once).
  RunResult r = kvstest::Run({Bin("kvs-bench"), "--addr", "127.0.0.1:" + std::to_string(cl.proxy()), "-c",
                     "8", "--keys", "100000", "--preload", "-n", "100", "--cmd", "get", "-q"},
                    "", 60);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  std::vector<long long> n;
  long long total = 0;
  // DBSIZE reads the stats the writer publishes after a round: wait for
  // the last round's (bounded).
  kvstest::Eventually(
      [&] {
        n.clear();
        total = 0;
        for (const auto& s : cl.shards()) n.push_back(DbSize(s.port)), total += n.back();
        return total == 100000;
      },
      5000);
  ASSERT_EQ(total, 100000);
  ASSERT_EQ(n.size(), 3u);
  for (size_t i = 0; i < n.size(); i++) {
    EXPECT_GE(n[i], 100000 / 3 * 8 / 10) << "shard " << i;
    EXPECT_LE(n[i], 100000 / 3 * 12 / 10) << "shard " << i;
  }
  std::printf("[ keys per shard: %lld %lld %lld ]\n", n[0], n[1], n[2]);
  EXPECT_EQ(cl.Stop(), 0) << cl.log();
}

// Pipelined SETs k<i> through the proxy (a window of 32 in flight); after
// `kill_after` acknowledgements, SIGKILL shard `victim`.  Returns the
// indexes acknowledged with +OK; counts the error replies.
std::vector<int> WriteThroughKill(int proxy, int n, int kill_after, const Shard& victim, int* errors) {
  Conn c(proxy);
  std::vector<int> acked;
  std::deque<int> inflight;
  bool killed = false;
  *errors = 0;
  for (int next = 0; next < n || !inflight.empty();) {
    if (next < n && inflight.size() < 32) {
      if (!c.Send({"SET", "k" + std::to_string(next), "v" + std::to_string(next)})) break;
      inflight.push_back(next++);
      continue;
    }
    std::string r = c.Read(5000);
    if (r == "simple:OK") {
      acked.push_back(inflight.front());
    } else if (r.rfind("error:", 0) == 0) {
      ++*errors;
    } else {
      ADD_FAILURE() << "reply " << r << " for k" << inflight.front();
      break;
    }
    inflight.pop_front();
    if (!killed && static_cast<int>(acked.size()) >= kill_after) {
      kill(victim.pid, SIGKILL);
      killed = true;
    }
  }
  EXPECT_TRUE(killed);
  return acked;
}

TEST(Cluster, ShardKilledAndRestartedLosesNoAcknowledgedWrite) {
  NEED_NUTCRACKER();
  TempDir d;
  Cluster cl;
  ASSERT_TRUE(cl.Start(d.path(), {"--fsync", "always"}));
  const Shard victim = cl.shards()[1];
  int errors = 0;
  std::vector<int> acked = WriteThroughKill(cl.proxy(), 6000, 1500, victim, &errors);
  // The victim's keys after its death got errors; the others kept going.
  EXPECT_GT(errors, 0);
  EXPECT_GT(acked.size(), 3000u);
  // Same port, same directory: the proxy finds it again.
  ASSERT_TRUE(kvstest::Eventually([&] {
    int fd = kvstest::ConnectLoopback(victim.port);
    if (fd >= 0) close(fd);
    return fd < 0;
  }));
  Server again;
  bool up = false;
  for (int i = 0; i < 50 && !(up = again.Start(victim.dir, {"--addr", "127.0.0.1:" + std::to_string(victim.port),
                                                            "--fsync", "always"})); i++)
    usleep(100000);  // its port may take a moment to be free again
  ASSERT_TRUE(up) << again.log();
  // Every acknowledged key, through the proxy (bounded retries while the
  // proxy reconnects to the restarted shard).
  Conn c(cl.proxy());
  size_t missing = 0;
  for (int key : acked) {
    std::string want = "bulk:v" + std::to_string(key), got;
    for (int t = 0; t < 50; t++) {
      got = c.Cmd({"GET", "k" + std::to_string(key)});
      if (got.rfind("error:", 0) != 0) break;
      usleep(100000);
    }
    if (got != want && missing++ < 5) ADD_FAILURE() << "k" << key << ": " << got << ", want " << want;
  }
  EXPECT_EQ(missing, 0u) << "of " << acked.size() << " acknowledged";
  EXPECT_EQ(again.Stop(), 0);
  EXPECT_EQ(cl.Stop(), 0) << cl.log();
}

// A request's time through the proxy, and its reply.
std::string Timed(Conn& c, const std::vector<std::string>& cmd, long* ms) {
  auto t0 = Clock::now();
  std::string r = c.Cmd(cmd, 10000);
  *ms = static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
  return r;
}

TEST(Cluster, ShardDownGivesErrorsNotHang) {
  NEED_NUTCRACKER();
  TempDir d;
  Cluster cl;
  // The proxy's reply timeout, 500 ms: a hung shard's keys fail after it.
  ASSERT_TRUE(cl.Start(d.path(), {"--timeout", "500"}));
  std::vector<std::string> keys = KeyPerShard(cl, "t:");
  ASSERT_EQ(keys.size(), 3u);
  Conn c(cl.proxy());
  long ms = 0;

  // Hung (SIGSTOP): an error after the timeout, not a hang.
  const Shard& hung = cl.shards()[0];
  ASSERT_EQ(kill(hung.pid, SIGSTOP), 0);
  // Every thread stopped (a group stop is not instant).
  ASSERT_TRUE(kvstest::Eventually([&] {
    std::string st = ReadFile("/proc/" + std::to_string(hung.pid) + "/stat");
    size_t paren = st.rfind(')');
    return paren != std::string::npos && paren + 2 < st.size() && st[paren + 2] == 'T';
  }));
  std::string r = Timed(c, {"GET", keys[0]}, &ms);
  EXPECT_EQ(r.rfind("error:", 0), 0u) << r;
  EXPECT_LT(ms, 3000) << r;
  // The other shards' keys still work (on a new connection: the first
  // one's later replies wait behind the failed request's, in order).
  Conn c2(cl.proxy());
  EXPECT_EQ(Timed(c2, {"GET", keys[1]}, &ms), "bulk:v-" + keys[1]);
  EXPECT_LT(ms, 3000);
  kill(hung.pid, SIGCONT);

  // Dead (SIGKILL): refused at once.
  const Shard& dead = cl.shards()[2];
  kill(dead.pid, SIGKILL);
  ASSERT_TRUE(kvstest::Eventually([&] {
    int fd = kvstest::ConnectLoopback(dead.port);
    if (fd >= 0) close(fd);
    return fd < 0;
  }));
  Conn c3(cl.proxy());
  for (int i = 0; i < 3; i++) {
    r = Timed(c3, {"SET", keys[2], "x"}, &ms);
    EXPECT_EQ(r.rfind("error:", 0), 0u) << r;
    EXPECT_LT(ms, 2000) << r;
    r = Timed(c3, {"GET", keys[1]}, &ms);
    EXPECT_EQ(r, "bulk:v-" + keys[1]);
    EXPECT_LT(ms, 2000);
  }
  // A multi-key command touching the dead shard fails as a whole.
  r = Timed(c3, {"MGET", keys[1], keys[2]}, &ms);
  EXPECT_EQ(r.rfind("error:", 0), 0u) << r;
  EXPECT_LT(ms, 2000);
  EXPECT_EQ(cl.Stop(), 0) << cl.log();
}

// ---- the pipeline a proxy sends a shard -------------------------------------

// INFO's engine figures are the writer's last published ones
// (kvs_stats_cached): current once the writer is idle, at most about 50 ms
// after the last reply.  Read them after that long.
long long InfoField(Conn& c, const std::string& field) {
  usleep(60 * 1000);
  std::string r = c.Cmd({"INFO", "all"});
  size_t at = r.find(field + ":");
  return at == std::string::npos ? -1 : std::stoll(r.substr(at + field.size() + 1));
}

// SET and GET of other keys interleaved in one pipeline (one send): the
// writes reach the engine as one submission, not one per GET between them
// (write_batches counts the writer's rounds); every reply in order; a GET
// sees the earlier SETs of its own key and none of the later ones.
// By default (--pipeline-reads ordered) a pipelined read waits for the
// connection's earlier writes, whatever keys they write: each GET between
// SETs ends a round.  Redis's order, which another connection can observe
// (SET a; GET b against SET b; GET a: never both nil).
TEST(ServerPipeline, ByDefaultReadsWaitForEarlierWrites) {
  TempDir d;
  Server s;
  ASSERT_TRUE(s.Start(d.path(), {"--fsync", "always"}));
  Conn c(s.port());
  long long b0 = InfoField(c, "write_batches");
  std::string pipe;
  const int n = 20;
  for (int i = 0; i < n; i++) {
    pipe += Conn::Encode({"SET", "w" + std::to_string(i), std::to_string(i)});
    pipe += Conn::Encode({"GET", "r" + std::to_string(i)});
  }
  ASSERT_TRUE(c.SendRaw(pipe));
  for (int i = 0; i < n; i++) {
    EXPECT_EQ(c.Read(), "simple:OK") << i;
    EXPECT_EQ(c.Read(), "nil") << i;
  }
  long long b1 = InfoField(c, "write_batches");
  EXPECT_GE(b1 - b0, n) << "a read ran before an earlier write of its connection";
  EXPECT_EQ(s.Stop(), 0);
}

// --pipeline-reads early (what kvs-cluster.sh gives shards behind the proxy).
TEST(ServerPipeline, ReadsOfOtherKeysDoNotSplitTheWriteBatch) {
  TempDir d;
  Server s;
  ASSERT_TRUE(s.Start(d.path(), {"--fsync", "always", "--pipeline-reads", "early"}));
  Conn c(s.port());
  ASSERT_EQ(c.Cmd({"SET", "old", "o"}), "simple:OK");
  long long b0 = InfoField(c, "write_batches");
  ASSERT_GE(b0, 1);
  std::string pipe;
  const int n = 20;
  for (int i = 0; i < n; i++) {
    pipe += Conn::Encode({"SET", "w" + std::to_string(i), std::to_string(i)});
    pipe += Conn::Encode({"GET", "r" + std::to_string(i)});  // never written
    pipe += Conn::Encode({"MGET", "old", "w" + std::to_string(i + 1)});  // written next
  }
  ASSERT_TRUE(c.SendRaw(pipe));
  for (int i = 0; i < n; i++) {
    EXPECT_EQ(c.Read(), "simple:OK") << i;
    EXPECT_EQ(c.Read(), "nil") << i;
    EXPECT_EQ(c.Read(), "array:2[bulk:o,nil]") << i;
  }
  long long b1 = InfoField(c, "write_batches");
  // One round for the 20 SETs; two if TCP split the pipeline.
  EXPECT_LE(b1 - b0, 2) << "the GETs split the writes into rounds";

  // A read of a key the open batch writes waits for it: read-your-writes.
  pipe.clear();
  for (int i = 0; i < n; i++) {
    pipe += Conn::Encode({"SET", "x", std::to_string(i)});
    pipe += Conn::Encode({"GET", "x"});
    pipe += Conn::Encode({"INCR", "ctr"});
    pipe += Conn::Encode({"EXISTS", "ctr", "none"});
  }
  pipe += Conn::Encode({"FLUSHALL"});
  pipe += Conn::Encode({"GET", "old"});
  ASSERT_TRUE(c.SendRaw(pipe));
  for (int i = 0; i < n; i++) {
    EXPECT_EQ(c.Read(), "simple:OK");
    EXPECT_EQ(c.Read(), "bulk:" + std::to_string(i));
    EXPECT_EQ(c.Read(), "int:" + std::to_string(i + 1));
    EXPECT_EQ(c.Read(), "int:1");
  }
  EXPECT_EQ(c.Read(), "simple:OK");
  EXPECT_EQ(c.Read(), "nil") << "a read passed a FLUSHALL";
  EXPECT_EQ(s.Stop(), 0);
}

}  // namespace

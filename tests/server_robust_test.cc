// server_robust_test.cc - kvs-server when things go wrong: the store's
// failures as replies and log lines (with the engine's fault injection, so
// the server runs in this process), a start that fails part way, running
// out of file descriptors, protected mode from a non-loopback address, and
// clients that leave while their writes are queued.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "kvs_fault.h"
#include "resp.h"
#include "server.h"
#include "server_util.h"
#include "test_util.h"

namespace {

using kvstest::Clock;
using kvstest::Conn;
using kvstest::Server;
using kvstest::TempDir;

// Send this process's stderr (where net_log writes) to a file for the
// object's life; text() reads what was written so far.
class StderrCapture {
 public:
  explicit StderrCapture(const std::string& path) : path_(path) {
    fflush(stderr);
    saved_ = dup(2);
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (saved_ < 0 || fd < 0) abort();
    dup2(fd, 2);
    close(fd);
  }
  ~StderrCapture() {
    fflush(stderr);
    dup2(saved_, 2);
    close(saved_);
  }
  std::string text() const {
    fflush(stderr);
    return kvstest::ReadFile(path_);
  }

 private:
  std::string path_;
  int saved_ = -1;
};

// A store and a server in this process, on 127.0.0.1 (any free port), so
// that the engine's fault injection (process-wide) reaches its writes.
class InProcessServer {
 public:
  InProcessServer(const std::string& dir, kvs_fsync fsync, unsigned threads = 2) {
    static const char* const names[] = {"everysec", "always", "never"};
    kvs_options o{};
    o.fsync = fsync;
    rc_ = kvs_open(dir.c_str(), &o, &db_);
    if (rc_ != KVS_OK) return;
    net_server_config cfg{};
    cfg.addr = "127.0.0.1:0";
    cfg.threads = threads;
    cfg.dir = dir.c_str();
    cfg.fsync_name = names[fsync];
    if (net_server_start(db_, &cfg, &srv_) != 0) rc_ = -1;
  }
  ~InProcessServer() {
    if (srv_) net_server_stop(srv_);
    if (db_) kvs_close(db_);  // KVS_EIO after an injected failure: fine
  }
  bool ok() const { return rc_ == KVS_OK && srv_ != nullptr; }
  int port() const { return net_server_port(srv_); }

 private:
  kvs* db_ = nullptr;
  net_server* srv_ = nullptr;
  int rc_ = KVS_OK;
};

// Disarm the injected faults whatever happens in a test.
struct FaultGuard {
  ~FaultGuard() {
    kvs__fault_write(0, 0);
    kvs__fault_sync(0, 0);
    kvs__fault_alloc(0);
  }
};

bool StartsWith(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }
bool EndsWith(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}
bool Has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The value of an INFO field, or "<missing>".
std::string InfoField(Conn& c, const std::string& name) {
  std::string info = c.Cmd({"INFO", "persistence"});
  size_t at = info.find("\r\n" + name + ":");
  if (at == std::string::npos) return "<missing>";
  at += 3 + name.size();
  return info.substr(at, info.find("\r\n", at) - at);
}

// ---- the store's failures as replies (issue 11, items 5 and defect 9) -----------

// A write the disk refuses (ENOSPC) gets a MISCONF reply naming the cause,
// the log line has the message the writer recorded (not the worker
// thread's last, stale one), reads go on, INFO shows the new fields, and
// the next write succeeds: a full disk is not sticky.
TEST(ServerFaults, DiskFullWriteGetsMisconfAndTheWritersMessage) {
  TempDir t;
  FaultGuard guard;
  StderrCapture log(t.file("stderr.log"));
  std::string data = t.file("data");
  InProcessServer s(data, KVS_FSYNC_EVERYSEC);
  ASSERT_TRUE(s.ok()) << log.text();
  Conn c(s.port());
  ASSERT_EQ(c.Cmd({"SET", "k", "v"}), "simple:OK");
  // A failed call on this connection's worker leaves its kvs_errmsg()
  // set: the stale message the old code logged for the completion.
  ASSERT_EQ(c.Cmd({"GET", ""}), "nil");
  kvs__fault_write(1, ENOSPC);
  std::string r = c.Cmd({"SET", "x", "y"});
  kvs__fault_write(0, 0);
  EXPECT_TRUE(StartsWith(r, "error:MISCONF kvs cannot write to disk: ")) << r;
  EXPECT_TRUE(EndsWith(r, "; writes are refused until it can, reads go on")) << r;
  EXPECT_TRUE(Has(r, "No space left on device")) << r;
  EXPECT_TRUE(Has(r, data)) << r;  // the segment's path
  EXPECT_EQ(c.Cmd({"GET", "k"}), "bulk:v");
  EXPECT_EQ(c.Cmd({"GET", "x"}), "nil");
  EXPECT_EQ(InfoField(c, "store_damaged"), "0");
  EXPECT_EQ(InfoField(c, "store_failed"), "0");
  EXPECT_EQ(InfoField(c, "store_write_error"), "No space left on device");
  EXPECT_EQ(c.Cmd({"PING"}), "simple:PONG");
  // Space is back (the fault is disarmed): the next write succeeds and the
  // error clears.
  EXPECT_EQ(c.Cmd({"SET", "x", "y2"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"GET", "x"}), "bulk:y2");
  EXPECT_EQ(InfoField(c, "store_write_error"), "0");
  std::string l = log.text();
  EXPECT_TRUE(Has(l, "No space left on device")) << l;
  EXPECT_FALSE(Has(l, "must not be empty")) << l;
}

// A failed fdatasync is ambiguous: the handle refuses writes for good.
// Every write gets the sticky MISCONF text with the writer's message;
// reads go on; INFO says store_failed:1.
TEST(ServerFaults, FailedSyncRefusesWritesWithMisconf) {
  TempDir t;
  FaultGuard guard;
  StderrCapture log(t.file("stderr.log"));
  InProcessServer s(t.file("data"), KVS_FSYNC_ALWAYS);
  ASSERT_TRUE(s.ok()) << log.text();
  Conn c(s.port());
  ASSERT_EQ(c.Cmd({"SET", "k", "v"}), "simple:OK");
  ASSERT_EQ(c.Cmd({"GET", ""}), "nil");
  kvs__fault_sync(1, EIO);
  const std::string sticky = "error:MISCONF kvs refuses writes after a failed sync: ";
  const std::string tail = "; restart it after checking the disk";
  std::string r = c.Cmd({"SET", "x", "y"});
  EXPECT_TRUE(StartsWith(r, sticky)) << r;
  EXPECT_TRUE(Has(r, "fdatasync: Input/output error")) << r;
  EXPECT_TRUE(EndsWith(r, tail)) << r;
  // Later writes: refused at submission (KVS_EFAILED), the same text.
  for (const auto& cmd : std::vector<std::vector<std::string>>{
           {"SET", "x", "y"}, {"INCR", "n"}, {"MSET", "a", "1", "b", "2"}}) {
    r = c.Cmd(cmd);
    EXPECT_TRUE(StartsWith(r, sticky)) << r;
    EXPECT_TRUE(EndsWith(r, tail)) << r;
  }
  // Pipelined: every write of the batch gets it, the reads between them
  // are served.
  ASSERT_TRUE(c.SendRaw(Conn::Encode({"SET", "p", "1"}) + Conn::Encode({"GET", "k"}) +
                        Conn::Encode({"SET", "q", "2"})));
  EXPECT_TRUE(StartsWith(c.Read(), sticky));
  EXPECT_EQ(c.Read(), "bulk:v");
  EXPECT_TRUE(StartsWith(c.Read(), sticky));
  EXPECT_EQ(c.Cmd({"GET", "k"}), "bulk:v");
  EXPECT_EQ(InfoField(c, "store_failed"), "1");
  std::string l = log.text();
  EXPECT_TRUE(Has(l, "fdatasync: Input/output error")) << l;
  EXPECT_FALSE(Has(l, "must not be empty")) << l;
}

// A record whose bytes went bad on disk: that GET gets the I/O error reply
// with the engine's message (file and offset), other keys and the server
// go on.  (The real kvs-server: nothing is injected.)
TEST(ServerFaults, CorruptRecordGetsIoErrorReply) {
  TempDir t;
  Server s;
  ASSERT_TRUE(s.Start(t.path())) << s.log();
  Conn c(s.port());
  const std::string value = "the-value-that-goes-bad-" + std::string(40, 'v');
  ASSERT_EQ(c.Cmd({"SET", "bad", value}), "simple:OK");
  ASSERT_EQ(c.Cmd({"SET", "good", "fine"}), "simple:OK");
  ASSERT_EQ(c.Cmd({"SET", "counter", "7654321"}), "simple:OK");
  // Flip a byte of each value in its segment file.
  int flipped = 0;
  for (const auto& seg : kvstest::Segments(t.path())) {
    std::string bytes = kvstest::ReadFile(seg);
    for (const std::string& v : {value, std::string("7654321")}) {
      size_t at = bytes.find(v);
      if (at == std::string::npos) continue;
      int fd = open(seg.c_str(), O_WRONLY);
      ASSERT_GE(fd, 0);
      ASSERT_EQ(pwrite(fd, "9", 1, static_cast<off_t>(at + 3)), 1);
      close(fd);
      flipped++;
    }
  }
  ASSERT_EQ(flipped, 2);
  // INCR reads the old value on the writer thread: the same read error,
  // not a failed store (which would be MISCONF).
  std::string incr = c.Cmd({"INCR", "counter"});
  EXPECT_TRUE(StartsWith(incr, "error:ERR I/O error reading the key: ")) << incr;
  EXPECT_TRUE(Has(incr, "checksum mismatch")) << incr;
  EXPECT_EQ(InfoField(c, "store_failed"), "0");
  EXPECT_EQ(InfoField(c, "store_damaged"), "1");
  std::string r = c.Cmd({"GET", "bad"});
  EXPECT_TRUE(StartsWith(r, "error:ERR I/O error reading the key: ")) << r;
  EXPECT_TRUE(Has(r, ".seg")) << r;
  EXPECT_TRUE(Has(r, "checksum mismatch")) << r;
  EXPECT_TRUE(StartsWith(c.Cmd({"MGET", "good", "bad"}), "array:2[bulk:fine,error:ERR I/O error reading the key: "));
  EXPECT_EQ(c.Cmd({"GET", "good"}), "bulk:fine");
  EXPECT_EQ(c.Cmd({"SET", "after", "1"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"GET", "after"}), "bulk:1");
  EXPECT_TRUE(s.alive());
  EXPECT_TRUE(Has(s.log(), "checksum mismatch")) << s.log();
  EXPECT_EQ(s.Stop(), 0) << s.log();
}

// A sealed segment cut short under the running server (a mapped page past
// the new end raises SIGBUS when read): the server does not die, that GET
// gets the I/O error reply naming the file, keys before the cut and new
// writes go on, and INFO says the store is damaged.
TEST(ServerFaults, SegmentTruncatedUnderTheServerGetsIoErrorNotACrash) {
  TempDir t;
  Server s;
  ASSERT_TRUE(s.Start(t.path(), {"--segment-size", "64k"})) << s.log();
  Conn c(s.port());
  // About 6 segments of 64 KiB: keys k0.. in order, 1000 bytes each.
  for (int i = 0; i < 400; i++) {
    ASSERT_EQ(c.Cmd({"SET", "k" + std::to_string(i), std::to_string(i) + std::string(1000, 'v')}),
              "simple:OK");
  }
  auto segs = kvstest::Segments(t.path());
  ASSERT_GE(segs.size(), 4u);
  // Find a key of the first segment in its second half, then cut the
  // file in half (whole pages: the mapping faults past the new end).
  std::string bytes = kvstest::ReadFile(segs[0]);
  int victim = -1;
  for (int i = 399; i >= 0 && victim < 0; i--) {
    size_t at = bytes.find(std::to_string(i) + std::string(1000, 'v'));
    if (at != std::string::npos && at > bytes.size() / 2 + 8192) victim = i;
  }
  ASSERT_GE(victim, 0);
  ASSERT_EQ(truncate(segs[0].c_str(), 4096), 0);
  std::string r = c.Cmd({"GET", "k" + std::to_string(victim)});
  EXPECT_TRUE(StartsWith(r, "error:ERR I/O error reading the key: ")) << r;
  EXPECT_TRUE(Has(r, segs[0].substr(segs[0].rfind('/') + 1))) << r;
  EXPECT_TRUE(s.alive());
  EXPECT_EQ(c.Cmd({"GET", "k399"}), "bulk:399" + std::string(1000, 'v'));
  EXPECT_EQ(c.Cmd({"SET", "after", "1"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"GET", "after"}), "bulk:1");
  EXPECT_EQ(InfoField(c, "store_damaged"), "1");
  EXPECT_EQ(InfoField(c, "store_failed"), "0");
  EXPECT_TRUE(Has(s.log(), segs[0].substr(segs[0].rfind('/') + 1))) << s.log();
  EXPECT_EQ(s.Stop(), 0) << s.log();
}

// Out of memory in the engine's write path: the SET gets an error reply,
// reads go on, and the next SET succeeds (the handle is not failed).
TEST(ServerFaults, OutOfMemoryInTheWritePathRefusesOnlyThatWrite) {
  TempDir t;
  FaultGuard guard;
  StderrCapture log(t.file("stderr.log"));
  InProcessServer s(t.file("data"), KVS_FSYNC_EVERYSEC);
  ASSERT_TRUE(s.ok()) << log.text();
  Conn c(s.port());
  ASSERT_EQ(c.Cmd({"SET", "k", "v"}), "simple:OK");
  kvs__fault_alloc(1);
  // A key too long for the round's small-key slabs, so that its index
  // entry is a fresh allocation whatever the slabs hold.
  std::string r = c.Cmd({"SET", std::string(3000, 'K'), "x"});
  kvs__fault_alloc(0);
  EXPECT_TRUE(StartsWith(r, "error:")) << r;
  EXPECT_TRUE(Has(r, "memory")) << r;
  EXPECT_EQ(c.Cmd({"GET", "k"}), "bulk:v");
  EXPECT_EQ(c.Cmd({"EXISTS", std::string(3000, 'K')}), "int:0");
  EXPECT_EQ(InfoField(c, "store_failed"), "0");
  EXPECT_EQ(c.Cmd({"SET", std::string(3000, 'K'), "y"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"GET", std::string(3000, 'K')}), "bulk:y");
}

// ---- descriptors -------------------------------------------------------------------------

// The highest descriptor open in this process.
int MaxOpenFd() {
  int max = -1;
  DIR* d = opendir("/proc/self/fd");
  if (!d) return 1024;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    max = std::max(max, atoi(e->d_name));
  }
  closedir(d);
  return max;
}

// Leave this process exactly `free` descriptors for the object's life:
// RLIMIT_NOFILE's soft limit goes down to `free` above the highest one
// open, and every slot below it (holes included) is filled with /dev/null
// but `free` of them.  (The limit must not be just above the highest
// descriptor: a process with fewer than `free` holes below it, as under
// CI's runner, would have no room left at all.)
class FdSqueeze {
 public:
  explicit FdSqueeze(int free) {
    getrlimit(RLIMIT_NOFILE, &saved_);
    rlimit rl = saved_;
    rl.rlim_cur = static_cast<rlim_t>(MaxOpenFd() + 1 + free);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_cur > rl.rlim_max) return;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    for (int i = 0; i < 65536; i++) {
      int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) break;
      fillers_.push_back(fd);
    }
    if (static_cast<int>(fillers_.size()) < free) return;
    for (int i = 0; i < free; i++) {
      close(fillers_.back());
      fillers_.pop_back();
    }
    ok_ = true;
  }
  ~FdSqueeze() {
    for (int fd : fillers_) close(fd);
    setrlimit(RLIMIT_NOFILE, &saved_);
  }
  bool ok() const { return ok_; }

 private:
  rlimit saved_{};
  std::vector<int> fillers_;
  bool ok_ = false;
};

// Defect 7 of issue 11: a start that failed part way closed fd 0 (the
// zeroed descriptors of workers never set up) and destroyed mutexes never
// initialised.  Here the descriptor limit leaves room for the listening
// socket and a few workers of 64: the start fails, says why, and fd 0 is
// the same open file as before.
TEST(ServerStart, FailedStartLeavesFdZeroOpen) {
  if (fcntl(0, F_GETFD) < 0) {
    ASSERT_EQ(open("/dev/null", O_RDONLY), 0);
  }
  struct stat before {}, after {};
  ASSERT_EQ(fstat(0, &before), 0);
  TempDir t;
  kvs_options o{};
  o.fsync = KVS_FSYNC_NEVER;
  kvs* db = nullptr;
  ASSERT_EQ(kvs_open(t.file("data").c_str(), &o, &db), KVS_OK);
  StderrCapture log(t.file("stderr.log"));
  int rc;
  {
    // The listening socket, the spare, then the workers' two each.
    FdSqueeze squeeze(8);
    ASSERT_TRUE(squeeze.ok());
    net_server_config cfg{};
    cfg.addr = "127.0.0.1:0";
    cfg.threads = 64;
    net_server* srv = nullptr;
    rc = net_server_start(db, &cfg, &srv);
    if (rc == 0) net_server_stop(srv);
  }
  EXPECT_EQ(rc, -1);
  EXPECT_NE(fcntl(0, F_GETFD), -1) << "fd 0 was closed";
  ASSERT_EQ(fstat(0, &after), 0);
  EXPECT_EQ(before.st_dev, after.st_dev);
  EXPECT_EQ(before.st_ino, after.st_ino);
  std::string l = log.text();
  EXPECT_TRUE(Has(l, "Too many open files")) << l;
  EXPECT_TRUE(Has(l, "worker ")) << l;
  EXPECT_EQ(kvs_close(db), KVS_OK);
}

// The CPU time (utime + stime, in clock ticks) of thread `tid` of `pid`,
// read through an open /proc/PID/task/TID/stat descriptor.
long long ThreadTicks(int statfd) {
  char buf[1024];
  ssize_t n = pread(statfd, buf, sizeof buf - 1, 0);
  if (n <= 0) return -1;
  buf[n] = '\0';
  const char* p = strrchr(buf, ')');  // the name may hold spaces
  if (!p) return -1;
  // Fields after the name: state(3) ... utime(14) stime(15).
  long long v[16] = {0};
  int field = 3;
  for (p += 2; *p && field <= 15; field++) {
    char* end;
    if (field == 3) {
      p += 2;
      continue;
    }
    v[field] = strtoll(p, &end, 10);
    p = *end ? end + 1 : end;
  }
  return v[14] + v[15];
}

// The /proc stat file of the thread of `pid` named `name`, opened; or -1.
int OpenThreadStat(pid_t pid, const std::string& name) {
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(dir.c_str());
  if (!d) return -1;
  int fd = -1;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::string comm = kvstest::ReadFile(dir + "/" + e->d_name + "/comm");
    if (comm == name + "\n") {
      fd = open((dir + "/" + e->d_name + "/stat").c_str(), O_RDONLY | O_CLOEXEC);
      break;
    }
  }
  closedir(d);
  return fd;
}

// accept() failing with EMFILE (no descriptor left in the process: more
// than maxclients can prevent, e.g. the store's) must neither spin nor
// leave the client hanging in the backlog: the acceptor gives back its
// spare descriptor, refuses the client with the max-clients error, logs at
// most a line a second, and serves clients again once descriptors are free.
TEST(ServerFdLimit, AcceptWithNoDescriptorLeftRefusesWithoutSpinning) {
  TempDir t;
  StderrCapture log(t.file("stderr.log"));
  InProcessServer s(t.file("data"), KVS_FSYNC_NEVER);
  ASSERT_TRUE(s.ok()) << log.text();
  Conn keep(s.port());
  ASSERT_EQ(keep.Cmd({"SET", "before", "1"}), "simple:OK");
  int statfd = OpenThreadStat(getpid(), "kvs-acceptor");
  ASSERT_GE(statfd, 0);
  // Client sockets made now: connect() needs no new descriptor later.
  // The first is served: the acceptor, blocked in accept(), has already
  // reserved the descriptor its next connection gets (Linux allocates it
  // before waiting); the others find none left.
  const int kClients = 5;
  std::vector<int> socks;
  for (int i = 0; i <= kClients; i++) socks.push_back(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  long long ticks = -1;
  {
    FdSqueeze squeeze(0);
    ASSERT_TRUE(squeeze.ok());
    ASSERT_EQ(open("/dev/null", O_RDONLY), -1);
    long long t0 = ThreadTicks(statfd);
    // The clients stay open until the squeeze ends: in this process,
    // closing one would give the server a descriptor.
    std::vector<Conn> clients;
    for (int fd : socks) {
      sockaddr_in a = kvstest::LoopbackAddr(s.port());
      ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
      clients.push_back(Conn::Adopt(fd));
      if (clients.size() == 1) {
        EXPECT_EQ(clients.back().Cmd({"PING"}, 5000), "simple:PONG");
        continue;
      }
      EXPECT_EQ(clients.back().Read(5000), "error:ERR max number of clients reached");
      EXPECT_TRUE(clients.back().Closed());
    }
    socks.clear();  // adopted
    // A client already connected is served meanwhile.
    EXPECT_EQ(keep.Cmd({"SET", "during", "2"}), "simple:OK");
    EXPECT_EQ(keep.Cmd({"GET", "before"}), "bulk:1");
    usleep(1000000);
    ticks = ThreadTicks(statfd) - t0;
    clients.clear();
  }
  close(statfd);
  // 1 s of a spinning thread is 100 ticks; a blocked acceptor uses ~0.
  EXPECT_LT(ticks, 10) << "acceptor CPU ticks over 1 s";
  EXPECT_GE(ticks, 0);
  Conn after(s.port());
  EXPECT_EQ(after.Cmd({"PING"}), "simple:PONG") << log.text();
  EXPECT_EQ(after.Cmd({"SET", "after", "3"}), "simple:OK");
  EXPECT_EQ(after.Cmd({"GET", "during"}), "bulk:2");
  std::string info = after.Cmd({"INFO", "stats"});
  EXPECT_TRUE(Has(info, "rejected_connections:" + std::to_string(kClients))) << info;
  std::string l = log.text();
  EXPECT_TRUE(Has(l, "accept: Too many open files: refusing new clients")) << l;
  // At most one such line a second: the five refusals took well under 2 s.
  size_t lines = 0;
  for (size_t at = 0; (at = l.find("accept: Too many open files", at)) != std::string::npos; at++) lines++;
  EXPECT_LE(lines, 2u) << l;
}

// The real kvs-server under a low descriptor limit (128, soft and hard)
// with more idle clients than it may serve: those beyond maxclients (the
// limit less the reserve for the store, the listening socket and the
// workers) get the max-clients error, the acceptor stays idle, writes work
// before, during and after, and once the idle clients leave new ones are
// served again.
TEST(ServerFdLimit, IdleClientsBeyondTheLimitAreRefusedAndServedAgainAfter) {
  TempDir t;
  Server s;
  const rlim_t kLimit = 128;
  // Small segments, so that the writes made at the limit rotate segments,
  // write hint files and compact: the engine's descriptors come out of
  // the reserve, never out of the clients' share.
  ASSERT_TRUE(s.Start(t.path(), {"--threads", "4", "--segment-size", "64k"}, {}, [kLimit] {
    rlimit rl{kLimit, kLimit};
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) _exit(125);
  })) << s.log();
  const unsigned long long maxclients = kLimit - NET_FD_RESERVE_STORE - NET_FD_RESERVE_SERVER - 2 * 4;
  EXPECT_TRUE(Has(s.log(), "maxclients " + std::to_string(maxclients) + " (descriptor limit 128")) << s.log();
  EXPECT_TRUE(Has(s.log(), "descriptor limit 128 (the hard limit)")) << s.log();
  Conn main_conn(s.port());
  ASSERT_EQ(main_conn.Cmd({"SET", "before", "1"}), "simple:OK");
  EXPECT_TRUE(Has(main_conn.Cmd({"INFO", "clients"}), "maxclients:" + std::to_string(maxclients)));
  // The idle clients: each says PING once, to know whether it was served.
  std::vector<Conn> idle;
  size_t served = 0, refused = 0;
  for (int i = 0; i < 110; i++) {
    Conn c(s.port());
    ASSERT_TRUE(c.ok()) << i;
    std::string r = c.Cmd({"PING"}, 5000);
    if (r == "simple:PONG") {
      served++;
      idle.push_back(std::move(c));
    } else {
      EXPECT_EQ(r, "error:ERR max number of clients reached") << i;
      EXPECT_TRUE(c.Closed()) << i;
      refused++;
    }
  }
  EXPECT_EQ(served + 1, maxclients);  // main_conn is the other one
  EXPECT_EQ(refused, 110 - served);
  // At the limit: the acceptor refuses more clients without spinning.
  int statfd = OpenThreadStat(s.pid(), "kvs-acceptor");
  ASSERT_GE(statfd, 0);
  long long t0 = ThreadTicks(statfd);
  auto end = Clock::now() + std::chrono::seconds(1);
  int more = 0;
  while (Clock::now() < end) {
    Conn c(s.port());
    if (c.ok()) {
      EXPECT_EQ(c.Read(5000), "error:ERR max number of clients reached");
    }
    more++;
    usleep(20000);
  }
  long long ticks = ThreadTicks(statfd) - t0;
  close(statfd);
  EXPECT_LT(ticks, 10) << "acceptor CPU ticks over 1 s, " << more << " clients refused";
  EXPECT_EQ(main_conn.Cmd({"SET", "during", "2"}), "simple:OK");
  EXPECT_EQ(main_conn.Cmd({"GET", "before"}), "bulk:1");
  std::map<std::string, std::string> churn;
  for (int i = 0; i < 400; i++) {
    std::string k = "churn" + std::to_string(i % 40), v = std::to_string(i) + std::string(5000, 'c');
    ASSERT_EQ(main_conn.Cmd({"SET", k, v}), "simple:OK") << i;
    churn[k] = v;
  }
  for (const auto& kv : churn) EXPECT_EQ(main_conn.Cmd({"GET", kv.first}), "bulk:" + kv.second);
  EXPECT_EQ(InfoField(main_conn, "store_write_error"), "0");
  EXPECT_EQ(InfoField(main_conn, "store_failed"), "0");
  // The idle clients leave; new ones are served again.
  idle.clear();
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline && !Has(main_conn.Cmd({"INFO", "clients"}), "connected_clients:1\r\n"))
    usleep(20000);
  std::vector<Conn> fresh;
  for (int i = 0; i < 20; i++) {
    fresh.emplace_back(s.port());
    EXPECT_EQ(fresh.back().Cmd({"PING"}, 5000), "simple:PONG") << i;
  }
  EXPECT_EQ(fresh.back().Cmd({"SET", "after", "3"}), "simple:OK");
  EXPECT_EQ(fresh.back().Cmd({"GET", "during"}), "bulk:2");
  EXPECT_EQ(s.Stop(), 0) << s.log();
}

// ---- protected mode, from a non-loopback address -------------------------------------------

// In the network namespace of `pid`: connect from 10.200.0.1 to
// 10.200.0.1:port, send each command of `cmds` and collect the replies
// (and "<closed>" once the server closed the connection), in a child
// process (setns changes the calling thread's namespace: never this one's).
// Returns the replies, one a line, or "<...>" on trouble.
std::vector<std::string> TalkInNamespace(pid_t pid, int port, const std::vector<std::vector<std::string>>& cmds) {
  int pfd[2];
  if (pipe(pfd) != 0) return {"<pipe>"};
  pid_t child = fork();
  if (child == 0) {
    close(pfd[0]);
    std::string out;
    int ns = open(("/proc/" + std::to_string(pid) + "/ns/net").c_str(), O_RDONLY);
    int fd = -1;
    if (ns < 0 || setns(ns, CLONE_NEWNET) != 0) {
      out = "<setns>\n";
    } else if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0) {
      out = "<socket>\n";
    } else {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(port));
      inet_pton(AF_INET, "10.200.0.1", &a.sin_addr);
      if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        out = "<connect>\n";
      } else {
        Conn c = Conn::Adopt(fd);
        for (const auto& cmd : cmds) {
          out += c.Cmd(cmd, 5000) + "\n";
          if (out.find("<closed>") != std::string::npos) break;
        }
        if (out.find("<closed>") == std::string::npos && c.Closed(300)) out += "<closed>\n";
      }
    }
    if (write(pfd[1], out.data(), out.size()) < 0) _exit(1);
    _exit(0);
  }
  close(pfd[1]);
  std::string all;
  char buf[4096];
  ssize_t n;
  while ((n = read(pfd[0], buf, sizeof buf)) > 0) all.append(buf, static_cast<size_t>(n));
  close(pfd[0]);
  int st;
  waitpid(child, &st, 0);
  std::vector<std::string> lines;
  for (size_t at = 0, nl; (nl = all.find('\n', at)) != std::string::npos; at = nl + 1)
    lines.push_back(all.substr(at, nl - at));
  return lines;
}

// Protected mode tested for real: kvs-server on 0.0.0.0 in a private
// network namespace whose loopback device also has 10.200.0.1 (traffic
// never leaves the namespace).  A client from 10.200.0.1, not a loopback
// address, gets the explanatory DENIED error and is closed; with a
// password set it is served once it sends AUTH.
TEST(ServerProtected, NonLoopbackClientIsRefusedUntilPasswordAndAuth) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (a private network namespace)";
  const char* ip = access("/usr/sbin/ip", X_OK) == 0 ? "/usr/sbin/ip" : access("/sbin/ip", X_OK) == 0 ? "/sbin/ip" : nullptr;
  if (!ip) GTEST_SKIP() << "no ip(8) to set up the namespace's addresses";
  if (access("/usr/bin/unshare", X_OK) != 0 || kvstest::Run({"/usr/bin/unshare", "-n", "/bin/true"}).status != 0)
    GTEST_SKIP() << "cannot make a network namespace (unshare -n failed)";
  const std::string ipcmd = std::string(ip) + " addr add 10.200.0.1/24 dev lo && " + ip + " link set lo up";
  // In the server's child, before exec: a namespace of its own, set up.
  auto in_namespace = [ipcmd] {
    if (unshare(CLONE_NEWNET) != 0) _exit(125);
    if (system(ipcmd.c_str()) != 0) _exit(125);
  };
  const std::string denied =
      "error:DENIED kvs-server is running in protected mode: it listens on a non-loopback address and no "
      "password is set, so only clients on the loopback interface are served. To serve this host, restart "
      "it with a password (--requirepass, --requirepass-file or the KVS_PASSWORD environment variable), or "
      "bind it to a loopback address only (--addr 127.0.0.1:PORT) and reach it through a tunnel.";
  {
    TempDir t;
    Server s;
    ASSERT_TRUE(s.Start(t.path(), {"--addr", "0.0.0.0:0"}, {}, in_namespace)) << s.status() << s.log();
    std::vector<std::string> r = TalkInNamespace(s.pid(), s.port(), {{"PING"}});
    ASSERT_GE(r.size(), 2u) << testing::PrintToString(r);
    EXPECT_EQ(r[0], denied);
    EXPECT_EQ(r[1], "<closed>");
    EXPECT_TRUE(Has(s.log(), "protected mode: refused client 10.200.0.1:")) << s.log();
    EXPECT_EQ(s.Stop(), 0) << s.log();
  }
  {
    TempDir t;
    Server s;
    ASSERT_TRUE(s.Start(t.path(), {"--addr", "0.0.0.0:0", "--requirepass", "s3cret"}, {}, in_namespace))
        << s.status() << s.log();
    std::vector<std::string> r = TalkInNamespace(
        s.pid(), s.port(), {{"PING"}, {"AUTH", "s3cret"}, {"SET", "k", "v"}, {"GET", "k"}, {"PING"}});
    EXPECT_EQ(r, (std::vector<std::string>{"error:NOAUTH Authentication required.", "simple:OK", "simple:OK",
                                           "bulk:v", "simple:PONG"}));
    EXPECT_FALSE(Has(s.log(), "protected mode: refused")) << s.log();
    EXPECT_EQ(s.Stop(), 0) << s.log();
  }
}

// ---- clients that leave while their writes are queued ------------------------------------

// A client sends a big pipeline of SETs and goes away at once, while its
// batch is queued in the engine (--fsync always keeps it there for a
// sync): the connection is orphaned, its socket closed, and freed only when
// the completion comes.  Looped (bounded in count and time), with plain
// closes and resets: the server goes on, a last SET/GET works, and (under
// make asan, which starts build-asan's kvs-server) its log has no
// sanitizer report: no use after free, no leak.
TEST(ServerDisconnect, ClientsLeavingWithQueuedWritesDoNotHurtTheServer) {
  TempDir t;
  Server s;
  ASSERT_TRUE(s.Start(t.path(), {"--fsync", "always", "--threads", "2"})) << s.log();
  std::string pipeline;
  for (int i = 0; i < 1500; i++)
    pipeline += Conn::Encode({"SET", "key:" + std::to_string(i % 300), "value-" + std::to_string(i)});
  auto end = Clock::now() + std::chrono::seconds(20);
  int rounds = 0;
  for (; rounds < 200 && Clock::now() < end; rounds++) {
    int fd = kvstest::ConnectLoopback(s.port());
    ASSERT_GE(fd, 0) << rounds;
    // Whatever the socket takes at once: no waiting for the server.
    ssize_t n = send(fd, pipeline.data(), pipeline.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)n;
    if (rounds % 2) {
      linger l{1, 0};  // a reset instead of a FIN
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    close(fd);
  }
  EXPECT_GE(rounds, 20);
  std::printf("[          ] %d clients left with writes queued\n", rounds);
  EXPECT_TRUE(s.alive());
  Conn c(s.port());
  EXPECT_EQ(c.Cmd({"SET", "last", "1"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"GET", "last"}), "bulk:1");
  EXPECT_EQ(c.Cmd({"GET", "key:0"}).substr(0, 11), "bulk:value-");
  EXPECT_EQ(s.Stop(), 0) << s.log();
  EXPECT_FALSE(kvstest::HasSanitizerReport(s.log())) << s.log();
}

}  // namespace

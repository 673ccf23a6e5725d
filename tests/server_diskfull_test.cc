// server_diskfull_test.cc - kvs-server as a real process on a disk that
// fills up: writes are refused with the MISCONF reply, reads go on, nothing
// acknowledged is lost, no temporary file is left, and writes resume by
// themselves once space comes back.  It needs root to mount a small tmpfs
// and skips (saying why) otherwise; tests/fault_test.cc covers the same
// engine paths with injected faults on any machine.
#include <sys/mount.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "server_util.h"
#include "test_util.h"

namespace {

using kvstest::Bin;
using kvstest::Conn;
using kvstest::Server;
using kvstest::TempDir;

// A tmpfs of `size` mounted on tmp/data, unmounted at the end.  The
// server's log and port file go to tmp/, outside the small file system.
class SmallFs {
 public:
  explicit SmallFs(const char* size) : dir_(tmp_.file("data")) {
    mkdir(dir_.c_str(), 0755);
    std::string opt = std::string("size=") + size;
    if (geteuid() != 0)
      why_ = "not root: cannot mount a small tmpfs";
    else if (mount("tmpfs", dir_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opt.c_str()) != 0)
      why_ = std::string("cannot mount a tmpfs: ") + strerror(errno);
    else
      mounted_ = true;
  }
  ~SmallFs() {
    if (mounted_) umount2(dir_.c_str(), MNT_DETACH);
  }
  SmallFs(const SmallFs&) = delete;
  SmallFs& operator=(const SmallFs&) = delete;
  bool ok() const { return mounted_; }
  const std::string& why() const { return why_; }
  const std::string& dir() const { return dir_; }

 private:
  TempDir tmp_;
  std::string dir_, why_;
  bool mounted_ = false;
};

std::vector<std::string> TmpFiles(const std::string& dir) {
  std::vector<std::string> v;
  DIR* d = opendir(dir.c_str());
  while (d) {
    dirent* e = readdir(d);
    if (!e) break;
    std::string n = e->d_name;
    if (n.size() > 4 && n.compare(n.size() - 4, 4, ".tmp") == 0) v.push_back(n);
  }
  if (d) closedir(d);
  return v;
}

bool StartsWith(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

std::string InfoField(Conn& c, const std::string& name) {
  std::string info = c.Cmd({"INFO"});
  size_t at = info.find("\r\n" + name + ":");
  if (at == std::string::npos) return "<missing>";
  at += 3 + name.size();
  return info.substr(at, info.find("\r\n", at) - at);
}

// The value written for key number i in round `round`.
std::string Value(int i, int round) {
  return std::to_string(round) + ":" + std::to_string(i) + ":" +
         std::string(1500 + i % 700, static_cast<char>('a' + (i + round) % 26));
}

TEST(ServerDiskFull, WritesRefusedThenResumeWhenSpaceReturns) {
  SmallFs fs("4m");
  if (!fs.ok()) GTEST_SKIP() << fs.why();
  // The space that comes back later.
  std::string ballast = fs.dir() + "/ballast";
  kvstest::WriteFile(ballast, std::string(1 << 20, 'b'));

  std::map<std::string, std::string> acked;
  Server srv;
  ASSERT_TRUE(srv.Start(fs.dir(), {"--fsync", "everysec"})) << srv.log();
  Conn c(srv.port());
  ASSERT_TRUE(c.ok());

  // Fill the disk: single SETs, then a pipelined burst and an MSET, until
  // refused.  Every acknowledged value is remembered.
  std::string refusal;
  for (int i = 0; i < 5000 && refusal.empty(); i++) {
    std::string k = "k" + std::to_string(i);
    std::string r = c.Cmd({"SET", k, Value(i, 0)});
    if (r == "simple:OK")
      acked[k] = Value(i, 0);
    else
      refusal = r;
  }
  ASSERT_FALSE(refusal.empty()) << "a 4 MiB file system never filled up";
  EXPECT_TRUE(StartsWith(refusal, "error:MISCONF kvs cannot write to disk: ")) << refusal;
  EXPECT_NE(refusal.find("No space left on device"), std::string::npos) << refusal;
  EXPECT_EQ(InfoField(c, "store_write_error"), "No space left on device");
  EXPECT_EQ(InfoField(c, "store_failed"), "0");

  // Still full: pipelined writes are each refused, reads between them are
  // answered, and nothing refused becomes visible.
  std::string burst;
  for (int i = 0; i < 20; i++) {
    burst += Conn::Encode({"SET", "p" + std::to_string(i), std::string(4000, 'p')});
    burst += Conn::Encode({"GET", acked.begin()->first});
  }
  ASSERT_TRUE(c.SendRaw(burst));
  for (int i = 0; i < 20; i++) {
    std::string r = c.Read();
    EXPECT_TRUE(StartsWith(r, "error:MISCONF kvs cannot write to disk")) << i << ": " << r;
    EXPECT_EQ(c.Read(), "bulk:" + acked.begin()->second) << i;
  }
  EXPECT_EQ(c.Cmd({"GET", "p0"}), "nil");
  EXPECT_TRUE(StartsWith(c.Cmd({"MSET", "m1", std::string(5000, 'm'), "m2", "x"}), "error:MISCONF"));
  EXPECT_EQ(c.Cmd({"EXISTS", "m1", "m2"}), "int:0");
  int checked = 0;
  for (const auto& kv : acked) {
    if (checked++ % 13 == 0) {
      ASSERT_EQ(c.Cmd({"GET", kv.first}), "bulk:" + kv.second) << kv.first;
    }
  }
  EXPECT_TRUE(TmpFiles(fs.dir()).empty());

  // Space comes back: writes resume without a restart.
  ASSERT_EQ(unlink(ballast.c_str()), 0);
  std::string r = c.Cmd({"SET", "after", "space came back"});
  ASSERT_EQ(r, "simple:OK");
  acked["after"] = "space came back";
  ASSERT_EQ(c.Cmd({"MSET", "m1", "one", "m2", "two"}), "simple:OK");
  acked["m1"] = "one";
  acked["m2"] = "two";
  EXPECT_EQ(InfoField(c, "store_write_error"), "0");
  EXPECT_EQ(srv.Stop(SIGTERM), 0) << srv.log();
  EXPECT_TRUE(TmpFiles(fs.dir()).empty());
  kvstest::RunResult v = kvstest::Run({Bin("kvs-dump"), "--verify", fs.dir()});
  EXPECT_EQ(v.status, 0) << v.out << v.err;

  // Everything acknowledged is there after a restart.
  Server again;
  ASSERT_TRUE(again.Start(fs.dir())) << again.log();
  Conn c2(again.port());
  for (const auto& kv : acked) {
    ASSERT_EQ(c2.Cmd({"GET", kv.first}), "bulk:" + kv.second) << kv.first;
  }
  EXPECT_EQ(c2.Cmd({"DBSIZE"}), "int:" + std::to_string(acked.size()));
  EXPECT_EQ(again.Stop(SIGTERM), 0) << again.log();
}

}  // namespace

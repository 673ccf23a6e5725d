// man_test.cc - the man pages (man/) kept in step with the programs: every
// long option a program's --help prints is in its page; every page renders
// without a groff warning; `make install` installs the programs, library,
// header, pkg-config file and pages, `man` finds them, and `make uninstall`
// removes them.
#include <algorithm>
#include <sstream>
#include <set>
#include <string>
#include <vector>

#include "test_util.h"

namespace {

using kvstest::Bin;
using kvstest::RunResult;
using kvstest::TempDir;

const std::vector<std::string> kPrograms = {"kvs", "kvs-client", "kvs-server", "kvs-dump", "kvs-bench"};

std::string ManPage(const std::string& name) { return std::string(KVS_SRC_DIR) + "/man/" + name; }

// The long options a --help text names ("--addr", "--max-errors", ...).
std::set<std::string> LongOptions(const std::string& text) {
  // A hand scan: std::regex trips GCC 12's maybe-uninitialized under ASan.
  std::set<std::string> opts;
  auto word = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; };
  for (size_t i = 0; (i = text.find("--", i)) != std::string::npos;) {
    size_t j = i + 2;
    if (j < text.size() && text[j] >= 'a' && text[j] <= 'z') {
      while (j < text.size() && word(text[j])) j++;
      while (text[j - 1] == '-') j--;
      opts.insert(text.substr(i, j - i));
    }
    i = j;
  }
  return opts;
}

// roff source with "\-" as "-", so "\-\-addr" reads "--addr".
std::string Unescape(std::string s) {
  for (size_t p; (p = s.find("\\-")) != std::string::npos;) s.replace(p, 2, "-");
  return s;
}

TEST(ManPages, EveryHelpOptionIsInThePage) {
  for (const auto& prog : kPrograms) {
    RunResult r = kvstest::Run({Bin(prog), "--help"});
    ASSERT_EQ(r.status, 0) << prog << ": " << r.err;
    std::string page = kvstest::ReadFile(ManPage(prog + ".1"));
    ASSERT_FALSE(page.empty()) << "no man page " << ManPage(prog + ".1");
    page = Unescape(page);
    std::set<std::string> opts = LongOptions(r.out);
    EXPECT_GE(opts.size(), 2u) << prog << ": " << r.out;
    for (const auto& o : opts)
      EXPECT_NE(page.find(o), std::string::npos) << prog << " --help names " << o << ", its man page does not";
    EXPECT_NE(page.find(".SH EXIT STATUS"), std::string::npos) << prog;
  }
}

TEST(ManPages, RenderWithoutWarnings) {
  if (access("/usr/bin/groff", X_OK) != 0) GTEST_SKIP() << "groff is not installed (Debian groff-base)";
  std::vector<std::string> pages;
  for (const auto& p : kPrograms) pages.push_back(p + ".1");
  pages.push_back("libkvs.3");
  for (const auto& p : pages) {
    RunResult r = kvstest::Run({"/usr/bin/env", "LC_ALL=C.UTF-8", "/usr/bin/groff", "-man", "-Tutf8", "-ww",
                                ManPage(p)});
    EXPECT_EQ(r.status, 0) << p << ": " << r.err;
    EXPECT_EQ(r.err, "") << p;
    EXPECT_GT(r.out.size(), 500u) << p << " rendered to almost nothing";
  }
}

TEST(ManPages, MakeInstallAndUninstall) {
  if (access("/usr/bin/make", X_OK) != 0) GTEST_SKIP() << "make is not installed";
  TempDir t;
  // This build's directory (build/, build-asan/ ...): bin/'s parent.
  std::string build = std::string(KVS_BIN_DIR);
  build = build.substr(0, build.rfind('/'));
  const std::string dest = t.file("stage");
  // -o all: install what this build has built (make test built it), never
  // rebuild it here with another build's flags.
  const std::vector<std::string> make = {"/usr/bin/make", "-s", "--no-print-directory", "-o", "all", "-C", KVS_SRC_DIR,
                                         "BUILD=" + build, "DESTDIR=" + dest, "PREFIX=/usr/local"};
  std::vector<std::string> argv = make;
  argv.push_back("install");
  RunResult r = kvstest::Run(argv, "", 600);
  ASSERT_EQ(r.status, 0) << r.out << r.err;

  std::vector<std::string> want;
  for (const auto& p : kPrograms) want.push_back("/usr/local/bin/" + p);
  for (const auto& p : kPrograms) want.push_back("/usr/local/share/man/man1/" + p + ".1");
  for (const char* f : {"/usr/local/share/man/man3/libkvs.3", "/usr/local/lib/libkvs.a",
                        "/usr/local/include/kvs.h", "/usr/local/lib/pkgconfig/kvs.pc"})
    want.push_back(f);
  std::sort(want.begin(), want.end());
  RunResult found = kvstest::Run({"/usr/bin/find", dest, "-type", "f"});
  std::vector<std::string> got;
  std::istringstream in(found.out);
  for (std::string line; std::getline(in, line);) got.push_back(line.substr(dest.size()));
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, want);
  for (const auto& p : kPrograms)
    EXPECT_EQ(access((dest + "/usr/local/bin/" + p).c_str(), X_OK), 0) << p;
  EXPECT_NE(kvstest::ReadFile(dest + "/usr/local/lib/pkgconfig/kvs.pc").find("prefix=/usr/local\n"),
            std::string::npos);

  // man finds the installed page.
  if (access("/usr/bin/man", X_OK) == 0) {
    RunResult m = kvstest::Run({"/usr/bin/env", "MANPATH=" + dest + "/usr/local/share/man", "LC_ALL=C.UTF-8",
                                "/usr/bin/man", "-P", "cat", "kvs-server"});
    EXPECT_EQ(m.status, 0) << m.err;
    EXPECT_NE(m.out.find("kvs-server - serve a kvs store"), std::string::npos) << m.out << m.err;
  }

  argv = make;
  argv.push_back("uninstall");
  r = kvstest::Run(argv, "", 120);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  found = kvstest::Run({"/usr/bin/find", dest, "-type", "f"});
  EXPECT_EQ(found.out, "") << "left behind by make uninstall";
}

}  // namespace

// The example systemd unit (docs/kvs-server.service) passes
// systemd-analyze verify, with ExecStart pointed at this build.
TEST(SystemdUnit, Verifies) {
  if (access("/usr/bin/systemd-analyze", X_OK) != 0) GTEST_SKIP() << "systemd-analyze is not installed";
  std::string unit = kvstest::ReadFile(std::string(KVS_SRC_DIR) + "/docs/kvs-server.service");
  ASSERT_FALSE(unit.empty());
  for (const char* want : {"ExecStart=/usr/local/bin/kvs-server --dir /var/lib/kvs", "StateDirectory=kvs",
                           "KillSignal=SIGTERM", "Restart=on-failure", "LoadCredential=", "NoNewPrivileges=yes",
                           "ProtectSystem=strict", "LimitNOFILE="})
    EXPECT_NE(unit.find(want), std::string::npos) << want;
  // Man pages are not installed here: verify would fail to look one up.
  unit.replace(unit.find("/usr/local/bin/kvs-server"), 25, Bin("kvs-server"));
  unit.erase(unit.find("Documentation="), unit.find('\n', unit.find("Documentation=")) - unit.find("Documentation=") + 1);
  TempDir t;
  kvstest::WriteFile(t.file("kvs-server.service"), unit);
  RunResult r = kvstest::Run({"/usr/bin/systemd-analyze", "verify", t.file("kvs-server.service")}, "", 60);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "") << r.err;
}

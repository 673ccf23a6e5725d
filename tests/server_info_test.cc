// server_info_test.cc - kvs-server's introspection as a real process: INFO's
// sections and fields (and the counters behind commandstats, errorstats and
// keyspace hits), CONFIG GET/SET/RESETSTAT, the CLIENT subcommands, and
// COMMAND as redis-cli 7 uses it.
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "server_util.h"
#include "test_util.h"

namespace {

using kvstest::Conn;
using kvstest::RunResult;
using kvstest::Server;
using kvstest::TempDir;

class InfoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = tmp_.file("data");
    mkdir(data_.c_str(), 0755);
    ASSERT_TRUE(srv_.Start(data_)) << srv_.log();
  }
  void TearDown() override {
    if (srv_.alive()) {
      EXPECT_EQ(srv_.Stop(SIGTERM), 0) << srv_.log();
    }
    srv_.CheckLog();
  }
  // INFO's bulk string, without the "bulk:" of ReplyText.
  std::string Info(Conn& c, std::vector<std::string> args = {}) {
    args.insert(args.begin(), "INFO");
    std::string r = c.Cmd(args);
    EXPECT_EQ(r.substr(0, 5), "bulk:") << r;
    return r.size() > 5 ? r.substr(5) : "";
  }
  // field -> value of an INFO text.
  static std::map<std::string, std::string> Fields(const std::string& info) {
    std::map<std::string, std::string> m;
    size_t pos = 0;
    while (pos < info.size()) {
      size_t eol = info.find("\r\n", pos);
      if (eol == std::string::npos) eol = info.size();
      std::string line = info.substr(pos, eol - pos);
      size_t colon = line.find(':');
      if (!line.empty() && line[0] != '#' && colon != std::string::npos)
        m[line.substr(0, colon)] = line.substr(colon + 1);
      pos = eol + 2;
    }
    return m;
  }
  static bool Has(const std::string& s, const std::string& what) {
    return s.find(what) != std::string::npos;
  }

  TempDir tmp_;
  std::string data_;
  Server srv_;
};

TEST_F(InfoTest, SectionsAsRedisSelectsThem) {
  Conn c(srv_.port());
  for (std::string arg : {"", "all", "default", "everything"}) {
    std::string info = arg.empty() ? Info(c) : Info(c, {arg});
    EXPECT_TRUE(Has(info, "redis_version:7.0.0")) << arg;
    EXPECT_TRUE(Has(info, "used_cpu_user")) << arg;
    EXPECT_TRUE(Has(info, "used_memory")) << arg;
    EXPECT_FALSE(Has(info, "sentinel_tilt")) << arg;
    // commandstats only with all/everything (as Redis's info-command test)
    EXPECT_EQ(Has(info, "rejected_calls"), arg == "all" || arg == "everything") << arg;
    // Each line ends with CRLF, the last one too; sections are apart by one.
    EXPECT_EQ(info.substr(info.size() - 2), "\r\n") << arg;
    EXPECT_NE(info.substr(info.size() - 4), "\r\n\r\n") << arg;
  }
  std::string cpu = Info(c, {"cpu"});
  EXPECT_TRUE(Has(cpu, "# CPU\r\nused_cpu_sys:"));
  EXPECT_FALSE(Has(cpu, "used_memory"));
  EXPECT_TRUE(Has(Info(c, {"commandSTATS"}), "cmdstat_info:calls="));
  std::string two = Info(c, {"server", "clients"});
  EXPECT_TRUE(Has(two, "# Server\r\n"));
  EXPECT_TRUE(Has(two, "\r\n\r\n# Clients\r\n"));
  EXPECT_FALSE(Has(two, "# Memory"));
  std::string twice = Info(c, {"cpu", "all"});
  EXPECT_EQ(twice.find("used_cpu_user_children"), twice.rfind("used_cpu_user_children"));
  EXPECT_EQ(c.Cmd({"INFO", "nosuchsection"}), "bulk:");
}

TEST_F(InfoTest, Fields) {
  Conn c(srv_.port());
  EXPECT_EQ(c.Cmd({"SET", "a", "1"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"GET", "a"}), "bulk:1");
  EXPECT_EQ(c.Cmd({"GET", "a"}), "bulk:1");
  EXPECT_EQ(c.Cmd({"GET", "zz"}), "nil");
  auto f = Fields(Info(c, {"everything"}));
  EXPECT_EQ(f["redis_mode"], "standalone");
  EXPECT_FALSE(f["kvs_version"].empty());
  EXPECT_EQ(f["arch_bits"], "64");
  EXPECT_EQ(f["process_id"], std::to_string(srv_.pid()));
  EXPECT_EQ(f["tcp_port"], std::to_string(srv_.port()));
  EXPECT_FALSE(f["os"].empty());
  EXPECT_FALSE(f["uptime_in_seconds"].empty());
  EXPECT_EQ(f["connected_clients"], "1");
  EXPECT_EQ(f["blocked_clients"], "0");
  EXPECT_FALSE(f["maxclients"].empty());
  EXPECT_GT(std::stoull(f["used_memory"]), 0u);
  EXPECT_GT(std::stoull(f["used_memory_rss"]), 0u);
  EXPECT_GE(std::stoull(f["used_memory_peak"]), std::stoull(f["used_memory"]));
  EXPECT_EQ(f["maxmemory"], "0");
  EXPECT_EQ(f["mem_allocator"], "libc");
  EXPECT_EQ(f["keyspace_hits"], "2");
  EXPECT_EQ(f["keyspace_misses"], "1");
  EXPECT_EQ(f["expired_keys"], "0");
  EXPECT_EQ(f["total_error_replies"], "0");
  EXPECT_FALSE(f["instantaneous_ops_per_sec"].empty());
  EXPECT_GE(std::stoull(f["total_commands_processed"]), 4u);
  EXPECT_GE(std::stoull(f["total_connections_received"]), 1u);
  EXPECT_EQ(f["role"], "master");
  EXPECT_EQ(f["connected_slaves"], "0");
  EXPECT_EQ(f["master_repl_offset"], "0");
  EXPECT_EQ(f["aof_enabled"], "0");
  EXPECT_EQ(f["loading"], "0");
  EXPECT_EQ(f["cluster_enabled"], "0");
  EXPECT_EQ(f["cmdstat_get"], "calls=3,usec=" + f["cmdstat_get"].substr(13, f["cmdstat_get"].find(',', 13) - 13) +
                                  f["cmdstat_get"].substr(f["cmdstat_get"].find(",usec_per_call")));
  EXPECT_TRUE(Has(f["cmdstat_get"], "rejected_calls=0,failed_calls=0"));
  EXPECT_EQ(f["db0"], "keys=1,expires=0,avg_ttl=0");
}

TEST_F(InfoTest, ErrorAndRejectionCounts) {
  Conn c(srv_.port());
  EXPECT_EQ(c.Cmd({"GET"}), "error:ERR wrong number of arguments for 'get' command");
  EXPECT_EQ(c.Cmd({"NOPE"}), "error:ERR unknown command 'NOPE', with args beginning with: ");
  EXPECT_EQ(c.Cmd({"SET", "s", "x"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"SET", "s", "x", "BAD"}), "error:ERR syntax error");
  EXPECT_EQ(c.Cmd({"INCR", "s"}), "error:ERR value is not an integer or out of range");
  EXPECT_EQ(c.Cmd({"EXEC"}), "error:ERR EXEC without MULTI");
  auto f = Fields(Info(c, {"stats", "commandstats", "errorstats"}));
  EXPECT_EQ(f["total_error_replies"], "5");
  EXPECT_EQ(f["errorstat_ERR"], "count=5");
  EXPECT_TRUE(Has(f["cmdstat_get"], "calls=0,")) << f["cmdstat_get"];
  EXPECT_TRUE(Has(f["cmdstat_get"], "rejected_calls=1,failed_calls=0"));
  EXPECT_TRUE(Has(f["cmdstat_set"], "calls=2,")) << f["cmdstat_set"];
  EXPECT_TRUE(Has(f["cmdstat_set"], "failed_calls=1"));
  EXPECT_TRUE(Has(f["cmdstat_exec"], "failed_calls=1"));

  // RESETSTAT starts the counters again.
  EXPECT_EQ(c.Cmd({"CONFIG", "RESETSTAT"}), "simple:OK");
  f = Fields(Info(c, {"stats", "commandstats", "errorstats"}));
  EXPECT_EQ(f["total_error_replies"], "0");
  EXPECT_EQ(f.count("errorstat_ERR"), 0u);
  EXPECT_EQ(f.count("cmdstat_set"), 0u);
  EXPECT_EQ(f["keyspace_misses"], "0");
  EXPECT_EQ(c.Cmd({"CONFIG", "RESETSTAT", "x"}),
            "error:ERR wrong number of arguments for 'config|resetstat' command");
}

TEST_F(InfoTest, ConfigGetSet) {
  Conn c(srv_.port());
  EXPECT_EQ(c.Cmd({"CONFIG", "GET", "appendfsync"}), "array:2[bulk:appendfsync,bulk:everysec]");
  EXPECT_EQ(c.Cmd({"CONFIG", "GET", "maxmemory", "append*"}),
            "array:6[bulk:appendonly,bulk:no,bulk:appendfsync,bulk:everysec,bulk:maxmemory,bulk:0]");
  EXPECT_EQ(c.Cmd({"CONFIG", "GET", "nothing*"}), "array:0[]");
  EXPECT_EQ(c.Cmd({"CONFIG", "SET", "appendfsync", "always", "timeout", "100", "maxclients", "50"}),
            "simple:OK");
  EXPECT_EQ(c.Cmd({"CONFIG", "GET", "appendfsync", "timeout", "maxclients"}),
            "array:6[bulk:appendfsync,bulk:always,bulk:timeout,bulk:100,bulk:maxclients,bulk:50]");
  EXPECT_EQ(Fields(Info(c, {"server"}))["fsync_policy"], "always");
  EXPECT_EQ(Fields(Info(c, {"clients"}))["maxclients"], "50");
  // The store now syncs every write.
  auto before = std::stoull(Fields(Info(c, {"persistence"}))["fsyncs"]);
  for (int i = 0; i < 3; i++) EXPECT_EQ(c.Cmd({"SET", "k", std::to_string(i)}), "simple:OK");
  usleep(200 * 1000);  // the published figures are up to ~50 ms old
  EXPECT_GE(std::stoull(Fields(Info(c, {"persistence"}))["fsyncs"]), before + 3);
  EXPECT_EQ(c.Cmd({"CONFIG", "SET", "appendfsync", "no"}), "simple:OK");
  EXPECT_EQ(Fields(Info(c, {"server"}))["fsync_policy"], "never");
  EXPECT_EQ(c.Cmd({"CONFIG", "SET", "appendfsync", "EVERYSEC"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"CONFIG", "GET", "appendfsync"}), "array:2[bulk:appendfsync,bulk:everysec]");

  EXPECT_EQ(c.Cmd({"CONFIG", "SET", "foo", "bar"}),
            "error:ERR Unknown option or number of arguments for CONFIG SET - 'foo'");
  EXPECT_EQ(c.Cmd({"CONFIG", "SET", "appendfsync", "sometimes"}),
            "error:ERR CONFIG SET failed (possibly related to argument 'appendfsync') - "
            "argument(s) must be one of the following: everysec, always, no");
  EXPECT_EQ(c.Cmd({"CONFIG", "SET", "maxclients", "abc"}),
            "error:ERR CONFIG SET failed (possibly related to argument 'maxclients') - "
            "argument couldn't be parsed into an integer");
  EXPECT_EQ(c.Cmd({"CONFIG", "SET", "maxclients", "0"}),
            "error:ERR CONFIG SET failed (possibly related to argument 'maxclients') - "
            "argument must be between 1 and 4294967295 inclusive");
  EXPECT_EQ(c.Cmd({"CONFIG", "SET", "timeout", "-1"}),
            "error:ERR CONFIG SET failed (possibly related to argument 'timeout') - "
            "argument must be between 0 and 2147483647 inclusive");
  EXPECT_EQ(c.Cmd({"CONFIG", "SET", "timeout", "0", "timeout", "1"}),
            "error:ERR CONFIG SET failed (possibly related to argument 'timeout') - "
            "duplicate parameter");
  EXPECT_EQ(c.Cmd({"CONFIG", "SET", "timeout", "5", "maxclients"}), "error:ERR syntax error");
  EXPECT_EQ(c.Cmd({"CONFIG", "SET", "timeout"}),
            "error:ERR wrong number of arguments for 'config|set' command");
  // A refused SET changes nothing, not even the valid pairs before it.
  EXPECT_EQ(c.Cmd({"CONFIG", "SET", "timeout", "7", "maxclients", "x"}).substr(0, 9), "error:ERR");
  EXPECT_EQ(c.Cmd({"CONFIG", "GET", "timeout"}), "array:2[bulk:timeout,bulk:100]");
}

TEST_F(InfoTest, ConfigSetMaxclientsRefusesNewClients) {
  Conn c(srv_.port());
  EXPECT_EQ(c.Cmd({"CONFIG", "SET", "maxclients", "1"}), "simple:OK");
  Conn d(srv_.port());
  EXPECT_EQ(d.Read(), "error:ERR max number of clients reached");
  EXPECT_EQ(c.Cmd({"CONFIG", "SET", "maxclients", "100"}), "simple:OK");
  Conn e(srv_.port());
  EXPECT_EQ(e.Cmd({"PING"}), "simple:PONG");
}

TEST_F(InfoTest, ConfigSetRequirepass) {
  Conn c(srv_.port());
  EXPECT_EQ(c.Cmd({"CONFIG", "SET", "requirepass", "s3cret"}), "simple:OK");
  EXPECT_EQ(c.Cmd({"PING"}), "simple:PONG");  // already in, as Redis
  EXPECT_EQ(c.Cmd({"CONFIG", "GET", "requirepass"}), "array:2[bulk:requirepass,bulk:s3cret]");
  Conn d(srv_.port());
  EXPECT_EQ(d.Cmd({"GET", "x"}), "error:NOAUTH Authentication required.");
  EXPECT_EQ(d.Cmd({"AUTH", "wrong"}),
            "error:WRONGPASS invalid username-password pair or user is disabled.");
  EXPECT_EQ(d.Cmd({"AUTH", "s3cret"}), "simple:OK");
  EXPECT_EQ(d.Cmd({"CONFIG", "SET", "requirepass", ""}), "simple:OK");
  Conn e(srv_.port());
  EXPECT_EQ(e.Cmd({"GET", "x"}), "nil");
}

TEST_F(InfoTest, ConfigSetTimeoutClosesIdleClients) {
  Conn c(srv_.port()), idle(srv_.port());
  EXPECT_EQ(idle.Cmd({"PING"}), "simple:PONG");
  EXPECT_EQ(c.Cmd({"CONFIG", "SET", "timeout", "1"}), "simple:OK");
  EXPECT_TRUE(idle.Closed(6000));
  EXPECT_EQ(c.Cmd({"CONFIG", "SET", "timeout", "0"}).substr(0, 5), "<clos");  // c idled too
  Conn d(srv_.port());
  EXPECT_EQ(d.Cmd({"CONFIG", "SET", "timeout", "0"}), "simple:OK");
}

TEST_F(InfoTest, ClientCommands) {
  Conn a(srv_.port()), b(srv_.port());
  std::string ida = a.Cmd({"CLIENT", "ID"}), idb = b.Cmd({"CLIENT", "ID"});
  ASSERT_EQ(ida.substr(0, 4), "int:");
  ida = ida.substr(4);
  idb = idb.substr(4);
  EXPECT_EQ(a.Cmd({"CLIENT", "GETNAME"}), "nil");
  EXPECT_EQ(a.Cmd({"CLIENT", "SETNAME", "alpha"}), "simple:OK");
  EXPECT_EQ(a.Cmd({"CLIENT", "GETNAME"}), "bulk:alpha");
  EXPECT_EQ(a.Cmd({"CLIENT", "SETNAME", "has space"}),
            "error:ERR Client names cannot contain spaces, newlines or special characters.");
  std::string list = b.Cmd({"CLIENT", "LIST"});
  EXPECT_TRUE(Has(list, "id=" + ida + " addr=127.0.0.1:")) << list;
  EXPECT_TRUE(Has(list, " name=alpha age=")) << list;
  EXPECT_TRUE(Has(list, "id=" + idb + " ")) << list;
  EXPECT_TRUE(Has(list, " cmd=client user=default redir=-1 resp=2\n")) << list;
  std::string one = b.Cmd({"CLIENT", "LIST", "ID", ida});
  EXPECT_TRUE(Has(one, "name=alpha")) << one;
  EXPECT_FALSE(Has(one, "id=" + idb + " ")) << one;
  EXPECT_EQ(b.Cmd({"CLIENT", "LIST", "TYPE", "foo"}), "error:ERR Unknown client type 'foo'");
  std::string info = a.Cmd({"CLIENT", "INFO"});
  EXPECT_TRUE(Has(info, "bulk:id=" + ida + " ")) << info;
  EXPECT_EQ(a.Cmd({"CLIENT", "NO-EVICT", "on"}), "simple:OK");
  EXPECT_EQ(a.Cmd({"CLIENT", "NO-EVICT", "maybe"}), "error:ERR syntax error");
  EXPECT_EQ(a.Cmd({"CLIENT", "NO-EVICT"}),
            "error:ERR wrong number of arguments for 'client|no-evict' command");
  EXPECT_EQ(a.Cmd({"CLIENT", "NOSUCH"}),
            "error:ERR unknown subcommand 'NOSUCH'. Try CLIENT HELP.");

  // KILL: by ID (another worker's connection), the old form, filters.
  EXPECT_EQ(b.Cmd({"CLIENT", "KILL", "ID", "999999"}), "int:0");
  EXPECT_EQ(b.Cmd({"CLIENT", "KILL", "ID", "abc"}),
            "error:ERR client-id should be greater than 0");
  EXPECT_EQ(b.Cmd({"CLIENT", "KILL", "FOO", "bar"}), "error:ERR syntax error");
  EXPECT_EQ(b.Cmd({"CLIENT", "KILL", "1.2.3.4:5"}), "error:ERR No such client");
  EXPECT_EQ(b.Cmd({"CLIENT", "KILL", "ID", idb}), "int:0");  // SKIPME yes
  EXPECT_EQ(b.Cmd({"CLIENT", "KILL", "ID", ida}), "int:1");
  EXPECT_TRUE(a.Closed());
  Conn c(srv_.port());
  std::string l = c.Cmd({"CLIENT", "INFO"});
  size_t at = l.find("addr=") + 5;
  std::string addr = l.substr(at, l.find(' ', at) - at);
  EXPECT_EQ(b.Cmd({"CLIENT", "KILL", addr}), "simple:OK");
  EXPECT_TRUE(c.Closed());
  EXPECT_EQ(b.Cmd({"CLIENT", "KILL", "ID", idb, "SKIPME", "no"}), "int:1");
  EXPECT_TRUE(b.Closed());
}

// Every row of the command table is found by its name in any case, and
// nothing else is: COMMAND LIST's names, upper-cased and mixed, through
// COMMAND INFO (the lookup every command goes through).
TEST_F(InfoTest, EveryCommandIsFoundByItsNameInAnyCase) {
  Conn c(srv_.port());
  std::string list = c.Cmd({"COMMAND", "LIST"});
  std::vector<std::string> names;
  for (size_t at = 0; (at = list.find("bulk:", at)) != std::string::npos;) {
    at += 5;
    size_t end = list.find_first_of(",]", at);
    names.push_back(list.substr(at, end - at));
  }
  ASSERT_GT(names.size(), 60u) << list;
  for (const std::string& name : names) {
    std::string upper = name, mixed = name;
    for (size_t i = 0; i < name.size(); i++) {
      upper[i] = static_cast<char>(toupper(name[i]));
      if (i % 2) mixed[i] = upper[i];
    }
    for (const std::string& n : {name, upper, mixed})
      EXPECT_TRUE(Has(c.Cmd({"COMMAND", "INFO", n}), "array:1[array:10[bulk:" + name + ","))
          << n;
    // The name with a byte more, or less, or one changed, is no command
    // (unless it is another one's: MGET and GET).
    std::string changed = name;
    changed[name.size() / 2] = changed[name.size() / 2] == 'q' ? 'z' : 'q';
    for (const std::string& n : {name + "x", name.substr(1), name.substr(0, name.size() - 1), changed}) {
      if (std::find(names.begin(), names.end(), n) == names.end()) {
        EXPECT_EQ(c.Cmd({"COMMAND", "INFO", n}), "array:1[nil]") << n;
      }
    }
  }
  EXPECT_EQ(c.Cmd({"COMMAND", "INFO", ""}), "array:1[nil]");
  EXPECT_EQ(c.Cmd({"COMMAND", "INFO", std::string(300, 'a')}), "array:1[nil]");
}

TEST_F(InfoTest, CommandForRedisCli) {
  Conn c(srv_.port());
  std::string n = c.Cmd({"COMMAND", "COUNT"});
  ASSERT_EQ(n.substr(0, 4), "int:");
  EXPECT_GT(std::stoi(n.substr(4)), 20);
  EXPECT_TRUE(Has(c.Cmd({"COMMAND", "INFO", "multi", "nosuch"}), "array:2[array:10[bulk:multi,int:1,"));
  EXPECT_EQ(c.Cmd({"COMMAND", "DOCS"}), "array:0[]");
  // redis-cli 7 itself, one command at a time.
  RunResult r = kvstest::Run({"/usr/bin/redis-cli", "-p", std::to_string(srv_.port()), "MULTI"}, "", 30);
  EXPECT_EQ(r.out, "OK\n") << r.err;
  r = kvstest::Run({"/usr/bin/redis-cli", "-p", std::to_string(srv_.port()), "INFO", "keyspace"}, "", 30);
  EXPECT_EQ(r.out.substr(0, 12), "# Keyspace\r\n") << r.err;
}

}  // namespace

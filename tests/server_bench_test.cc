// server_bench_test.cc - `make bench`'s script (bench/server_bench.py) end
// to end in its quick mode: both servers' rows in the CSV and JSON, no
// errors, the thread group, and the charts when gnuplot is installed.
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "test_util.h"

namespace {

using kvstest::Bin;
using kvstest::ReadFile;

using kvstest::RunResult;
using kvstest::TempDir;

// A CSV file without quoted fields (what the script writes for these rows)
// as one map per line, keyed by the header's names.
std::vector<std::map<std::string, std::string>> ReadCsv(const std::string& path) {
  std::vector<std::map<std::string, std::string>> rows;
  std::istringstream in(ReadFile(path));
  std::string line;
  std::vector<std::string> names;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::vector<std::string> fields;
    std::stringstream ls(line);
    std::string f;
    while (std::getline(ls, f, ',')) fields.push_back(f);
    if (!line.empty() && line.back() == ',') fields.push_back("");
    if (names.empty()) {
      names = fields;
      continue;
    }
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < names.size() && i < fields.size(); i++) row[names[i]] = fields[i];
    rows.push_back(row);
  }
  return rows;
}

bool HaveProgram(const std::string& name) {
  std::string cmd = "command -v " + name + " >/dev/null 2>&1";
  return system(cmd.c_str()) == 0;
}

bool IsPng(const std::string& path) { return ReadFile(path).rfind("\x89PNG", 0) == 0; }

TEST(ServerBench, QuickRunWritesBothServersRowsWithoutErrors) {
  if (access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/python3";
  if (!HaveProgram("redis-server")) GTEST_SKIP() << "no redis-server";
  ASSERT_EQ(access(Bin("kvs-bench").c_str(), X_OK), 0) << Bin("kvs-bench") << " not built";
  TempDir out;
  // Shorter runs than --quick's own, and two thread counts: seconds.
  RunResult r = kvstest::Run({"/usr/bin/python3", std::string(KVS_SRC_DIR) + "/bench/server_bench.py",
                     "--quick", "--bin-dir", KVS_BIN_DIR, "--out", out.path(), "--duration",
                     "0.2", "--warmup", "0.05", "--threads", "1,2"},
                    "", 240);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("budget:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("kvs ops/s"), std::string::npos) << r.out;

  auto rows = ReadCsv(out.file("server.csv"));
  std::map<std::string, int> per_server;
  std::map<std::string, int> kvs_rows, redis_rows;
  for (const auto& row : rows) {
    const std::string& server = row.at("server");
    per_server[server]++;
    (server == "kvs" ? kvs_rows : redis_rows)[row.at("label")]++;
    EXPECT_EQ(row.at("errors"), "0") << row.at("label") << " " << server;
    EXPECT_EQ(row.at("flag"), "") << row.at("label") << " " << server;
    EXPECT_EQ(row.at("runs"), "3") << row.at("label");
    EXPECT_EQ(row.at("clean_runs"), "3") << row.at("label");
    EXPECT_GT(atof(row.at("ops_per_sec_median").c_str()), 0) << row.at("label") << " " << server;
    EXPECT_GT(atof(row.at("p99_us").c_str()), 0) << row.at("label") << " " << server;
    if (server == "kvs") {
      EXPECT_GT(atof(row.at("kvs_over_redis").c_str()), 0) << row.at("label");
    }
  }
  EXPECT_GE(per_server["kvs"], 5);
  EXPECT_EQ(per_server["kvs"], per_server["redis"]);
  EXPECT_EQ(kvs_rows, redis_rows) << "every row has a line for each server";
  for (const char* fsync : {"always", "everysec", "never"}) {
    bool found = false;
    for (const auto& row : rows) found = found || row.at("fsync") == fsync;
    EXPECT_TRUE(found) << "no row for fsync " << fsync;
  }

  std::string json = ReadFile(out.file("server.json"));
  EXPECT_NE(json.find("\"tool\": \"server_bench\""), std::string::npos);
  EXPECT_NE(json.find("\"kvs\":"), std::string::npos);
  EXPECT_NE(json.find("\"redis\":"), std::string::npos);
  EXPECT_NE(json.find("\"flagged\": false"), std::string::npos);
  EXPECT_EQ(json.find("\"flagged\": true"), std::string::npos) << json;

  auto threads = ReadCsv(out.file("threads.csv"));
  int kvs_t = 0, redis_t = 0;
  for (const auto& t : threads) {
    (t.at("server") == "kvs" ? kvs_t : redis_t)++;
    EXPECT_EQ(t.at("errors"), "0") << t.at("workload") << " " << t.at("server");
    EXPECT_GT(atof(t.at("ops_per_sec_median").c_str()), 0);
  }
  EXPECT_EQ(kvs_t, 4);    // SET and GET with --threads 1 and 2
  EXPECT_EQ(redis_t, 2);  // SET and GET

  if (HaveProgram("gnuplot")) {
    for (const char* png : {"throughput.png", "latency.png", "threads.png"})
      EXPECT_TRUE(IsPng(out.file(png))) << png << "\n" << r.out;
  } else {
    EXPECT_NE(r.out.find("gnuplot not found"), std::string::npos) << r.out;
  }
}

}  // namespace

// engine_bench_test.cc - kvs-engine-bench --quick on a tiny store, for both
// engines (and the [WM] rows against LMDB with MDB_WRITEMAP): it exits 0,
// its table has every row with figures for kvs and lmdb, its CSV parses
// with plausible positive numbers, its JSON parses, and its scratch
// directory is gone afterwards.  No timing thresholds.
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "test_util.h"

namespace {

using kvstest::Bin;
using kvstest::RunResult;
using kvstest::TempDir;

struct Kind {
  const char* workload;  // the CSV's workload column
  unsigned threads;
  const char* label;  // the table's row name
  bool lmdb;          // lmdb runs it (talent-plan's big keys: kvs only)
  unsigned value_size;
};

const Kind kKinds[] = {
    {"load", 1, "load: set, 1 per call/txn (relaxed)", true, 100},
    {"batch_load", 1, "batch load, 1000 per batch/txn (relaxed) *", true, 100},
    {"open", 1, "open the loaded store (ops = opens) **", true, 100},
    {"get", 1, "get, random keys", true, 100},
    {"get", 2, "get, random keys", true, 100},
    {"get", 4, "get, random keys", true, 100},
    {"mixed", 1, "mixed 90% get / 10% set (relaxed)", true, 100},
    {"mixed", 2, "mixed 90% get / 10% set (relaxed)", true, 100},
    {"mixed", 4, "mixed 90% get / 10% set (relaxed)", true, 100},
    {"set", 1, "set, random keys, 1 per call/txn (relaxed)", true, 100},
    {"overwrite_always", 1, "set, random keys, fsync always", true, 100},
    {"overwrite_always", 8, "set, random keys, fsync always", true, 100},
    {"overwrite_always", 64, "set, random keys, fsync always", true, 100},
    {"load_wm", 1, "[WM] load: set, 1 per call/txn (relaxed)", true, 100},
    {"batch_load_wm", 1, "[WM] batch load, 1000 per batch/txn (relaxed) *", true, 100},
    {"mixed_wm", 1, "[WM] mixed 90% get / 10% set (relaxed)", true, 100},
    {"mixed_wm", 2, "[WM] mixed 90% get / 10% set (relaxed)", true, 100},
    {"mixed_wm", 4, "[WM] mixed 90% get / 10% set (relaxed)", true, 100},
    {"set_wm", 1, "[WM] set, random keys, 1 per call/txn (relaxed)", true, 100},
    {"tp_write", 1, "tp write 100, keys 1-100000 B (lmdb: <= 511 B)", false, 100000},
    {"tp_read", 1, "tp read 1000 of them", false, 100000},
    {"tp_write_k511", 1, "tp write 100, keys 1-511 B", true, 100000},
    {"tp_read_k511", 1, "tp read 1000 of them (keys 1-511 B)", true, 100000},
};

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(' '), e = s.find_last_not_of(' ');
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

bool IsNumber(const std::string& s, double* v) {
  if (s.empty()) return false;
  char* end = nullptr;
  *v = strtod(s.c_str(), &end);
  return end && *end == '\0';
}

// One line of the results table: "label  thr | kvs ops p50 p99 | lmdb ... | 1.23x".
struct TableRow {
  std::string kvs, lmdb, ratio;  // each side's cells, trimmed
};

using Key = std::pair<std::string, unsigned>;  // (label or workload, threads)

std::map<Key, TableRow> ParseTable(const std::string& out) {
  std::map<Key, TableRow> rows;
  size_t at = out.find("== results");
  if (at == std::string::npos) return rows;
  for (const std::string& line : Split(out.substr(at), '\n')) {
    std::vector<std::string> cells = Split(line, '|');
    if (cells.size() != 4) continue;
    std::string head = Trim(cells[0]);
    size_t sp = head.find_last_of(' ');
    double thr = 0;
    if (sp == std::string::npos || !IsNumber(head.substr(sp + 1), &thr)) continue;
    rows[{Trim(head.substr(0, sp)), static_cast<unsigned>(thr)}] = {Trim(cells[1]), Trim(cells[2]),
                                                                   Trim(cells[3])};
  }
  return rows;
}

// "123 4.5 6.7": three non-negative numbers, the first (ops/s) positive.
void ExpectSide(const std::string& cells, const std::string& what) {
  std::vector<std::string> f;
  for (const std::string& t : Split(cells, ' '))
    if (!t.empty()) f.push_back(t);
  ASSERT_EQ(f.size(), 3u) << what << ": '" << cells << "'";
  double v[3];
  for (int i = 0; i < 3; i++) ASSERT_TRUE(IsNumber(f[i], &v[i])) << what << ": '" << f[i] << "'";
  EXPECT_GT(v[0], 0) << what;
  EXPECT_GE(v[1], 0) << what;
  EXPECT_GE(v[2], v[1]) << what << ": p99 below p50";
}

struct CsvRow {
  double ops = -1, ops_per_sec = 0, p50 = 0, p99 = 0;
  unsigned value_size = 0;
  bool ops_empty = false;
};

// CSV rows by (workload, threads, engine); fails the test on a malformed line.
std::map<std::tuple<std::string, unsigned, std::string>, CsvRow> ParseCsv(const std::string& text) {
  std::map<std::tuple<std::string, unsigned, std::string>, CsvRow> rows;
  std::vector<std::string> lines = Split(text, '\n');
  EXPECT_FALSE(lines.empty());
  if (lines.empty()) return rows;
  EXPECT_EQ(lines[0], "workload,threads,value_size,engine,ops,ops_per_sec,p50_us,p99_us");
  for (size_t i = 1; i < lines.size(); i++) {
    if (lines[i].empty()) continue;
    std::vector<std::string> c = Split(lines[i], ',');
    EXPECT_EQ(c.size(), 8u) << "CSV line " << i << ": " << lines[i];
    if (c.size() != 8) continue;
    double thr = 0, vs = 0;
    CsvRow r;
    EXPECT_TRUE(IsNumber(c[1], &thr) && IsNumber(c[2], &vs)) << lines[i];
    r.value_size = static_cast<unsigned>(vs);
    r.ops_empty = c[4].empty();
    EXPECT_TRUE(r.ops_empty || IsNumber(c[4], &r.ops)) << lines[i];
    EXPECT_TRUE(IsNumber(c[5], &r.ops_per_sec) && IsNumber(c[6], &r.p50) && IsNumber(c[7], &r.p99))
        << lines[i];
    auto key = std::make_tuple(c[0], static_cast<unsigned>(thr), c[3]);
    EXPECT_EQ(rows.count(key), 0u) << "duplicate CSV row: " << lines[i];
    rows[key] = r;
  }
  return rows;
}

TEST(EngineBench, QuickRunHasEveryRowForBothEngines) {
  TempDir dir;
  std::string csv = dir.file("engine.csv"), json = dir.file("engine.json"), scratch = dir.file("scratch");
  RunResult r = kvstest::Run({Bin("kvs-engine-bench"), "--quick", "-n", "300", "--seconds", "0.1", "--writemap-rows", "--dir", scratch,
                     "--csv", csv, "--json", json},
                    "", 600);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_FALSE(kvstest::HasSanitizerReport(r.err)) << r.err;

  // The table: every row, with figures for kvs and for lmdb (or n/a).
  std::map<Key, TableRow> table = ParseTable(r.out);
  for (const Kind& k : kKinds) {
    std::string what = std::string(k.label) + ", " + std::to_string(k.threads) + " threads";
    auto it = table.find({k.label, k.threads});
    ASSERT_NE(it, table.end()) << "no table row " << what << " in:\n" << r.out;
    ExpectSide(it->second.kvs, what + ", kvs");
    if (k.lmdb) {
      ExpectSide(it->second.lmdb, what + ", lmdb");
      double q;
      std::string ratio = it->second.ratio;
      ASSERT_TRUE(!ratio.empty() && ratio.back() == 'x') << what << ": '" << ratio << "'";
      EXPECT_TRUE(IsNumber(ratio.substr(0, ratio.size() - 1), &q) && q > 0) << what;
    } else {
      EXPECT_EQ(it->second.lmdb, "n/a") << what;
      EXPECT_EQ(it->second.ratio, "n/a") << what;
    }
  }
  EXPECT_NE(r.out.find("targets"), std::string::npos) << r.out;

  // The CSV: one row per engine and kind, then a ratio row.
  auto rows = ParseCsv(kvstest::ReadFile(csv));
  for (const Kind& k : kKinds) {
    std::string what = std::string(k.workload) + "/" + std::to_string(k.threads);
    std::vector<std::string> engines = {"kvs"};
    if (k.lmdb) engines.push_back("lmdb");
    for (const std::string& e : engines) {
      auto it = rows.find(std::make_tuple(k.workload, k.threads, e));
      ASSERT_NE(it, rows.end()) << "no CSV row " << what << " " << e;
      const CsvRow& c = it->second;
      EXPECT_EQ(c.value_size, k.value_size) << what << " " << e;
      EXPECT_GT(c.ops, 0) << what << " " << e;
      EXPECT_GT(c.ops_per_sec, 0) << what << " " << e;
      EXPECT_GT(c.p50, 0) << what << " " << e;
      EXPECT_GE(c.p99, c.p50) << what << " " << e;
    }
    auto q = rows.find(std::make_tuple(k.workload, k.threads, "kvs/lmdb"));
    if (k.lmdb) {
      ASSERT_NE(q, rows.end()) << "no CSV ratio row " << what;
      EXPECT_TRUE(q->second.ops_empty) << what;
      EXPECT_GT(q->second.ops_per_sec, 0) << what;
    } else {
      EXPECT_EQ(rows.count(std::make_tuple(k.workload, k.threads, "lmdb")), 0u) << what;
      EXPECT_EQ(q, rows.end()) << what;
    }
  }

  // The JSON parses (python3 is a test dependency) and lists the targets.
  RunResult py = kvstest::Run({"/usr/bin/python3", "-c",
                      "import json, sys\n"
                      "d = json.load(open(sys.argv[1]))\n"
                      "assert d['rows'] and d['targets'], 'empty'\n"
                      "assert all(t['ratio'] > 0 for t in d['targets'])\n",
                      json});
  EXPECT_EQ(py.status, 0) << py.err;

  // The scratch directory is gone; --dir itself stays.
  RunResult ls = kvstest::Run({"/bin/ls", "-A", scratch});
  EXPECT_EQ(ls.status, 0);
  EXPECT_EQ(ls.out, "") << "left behind in " << scratch;
}

TEST(EngineBench, RejectsBadArguments) {
  EXPECT_EQ(kvstest::Run({Bin("kvs-engine-bench"), "--engine", "sled"}).status, 2);
  EXPECT_EQ(kvstest::Run({Bin("kvs-engine-bench"), "--only", "nothing"}).status, 2);
  EXPECT_EQ(kvstest::Run({Bin("kvs-engine-bench"), "-n", "0"}).status, 2);
  EXPECT_EQ(kvstest::Run({Bin("kvs-engine-bench"), "--lmdb", "api", "--lmdb-writemap"}).status, 2);
}

}  // namespace

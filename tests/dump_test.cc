// dump_test.cc - tests of kvs-dump (listing, JSON, --verify, --stats, hint
// files) on stores written through the C API, and of tests/check_cbor.py,
// the independent cbor2-based checker of the segment and hint formats.
#include <cinttypes>
#include <map>
#include <set>

#include "test_util.h"

namespace {

using kvstest::Bin;
using kvstest::RunResult;
using kvstest::Segments;
using kvstest::TempDir;

const std::string kPython = "/usr/bin/python3";

// A store with small segments, so that a few hundred records span several.
// Compaction is off: these tests count every record written.
class Store {
 public:
  explicit Store(const std::string& dir) {
    kvs_options opt{};
    opt.segment_size = 4096;
    opt.no_auto_compact = 1;
    int rc = kvs_open(dir.c_str(), &opt, &db_);
    if (rc != KVS_OK) ADD_FAILURE() << "kvs_open: " << kvs_errmsg();
  }
  ~Store() { Close(); }
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  void Set(const std::string& k, const std::string& v) {
    ASSERT_EQ(kvs_set(db_, k.data(), k.size(), v.data(), v.size()), KVS_OK) << kvs_errmsg();
  }
  void Remove(const std::string& k) {
    ASSERT_EQ(kvs_remove(db_, k.data(), k.size()), KVS_OK) << kvs_errmsg();
  }
  void Compact() { ASSERT_EQ(kvs_compact(db_), KVS_OK) << kvs_errmsg(); }
  kvs* db() { return db_; }
  struct kvs_store_stats Stats() {
    struct kvs_store_stats st{};
    EXPECT_EQ(kvs_stats(db_, &st), KVS_OK);
    return st;
  }
  void Close() {
    if (db_) {
      EXPECT_EQ(kvs_close(db_), KVS_OK);
    }
    db_ = nullptr;
  }

 private:
  kvs* db_ = nullptr;
};

// Run kvs-dump; whatever it is given, it must not crash or trip a sanitizer.
RunResult Dump(std::vector<std::string> args) {
  args.insert(args.begin(), Bin("kvs-dump"));
  RunResult r = kvstest::Run(args, "", 60);
  EXPECT_LT(r.status, 3) << "kvs-dump died; stderr:\n" << r.err;
  EXPECT_FALSE(kvstest::HasSanitizerReport(r.err)) << r.err;
  return r;
}

RunResult CheckCbor(const std::vector<std::string>& paths) {
  std::vector<std::string> argv = {kPython, std::string(KVS_SRC_DIR) + "/tests/check_cbor.py"};
  argv.insert(argv.end(), paths.begin(), paths.end());
  return kvstest::Run(argv, "", 120);
}

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> v;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) v.push_back(line);
  return v;
}

bool Contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

// The unsigned number after "name": in a JSON line; -1 if absent.
long long JsonNum(const std::string& line, const std::string& name) {
  std::string pat = "\"" + name + "\":";
  size_t p = line.find(pat);
  if (p == std::string::npos) return -1;
  return std::strtoll(line.c_str() + p + pat.size(), nullptr, 10);
}

// The number right after `prefix` in `s`; -1 if absent.
long long NumAfter(const std::string& s, const std::string& prefix) {
  size_t p = s.find(prefix);
  if (p == std::string::npos) return -1;
  return std::strtoll(s.c_str() + p + prefix.size(), nullptr, 10);
}

// The number (possibly fractional) after "name": in a JSON line; -1 if absent.
double JsonDouble(const std::string& line, const std::string& name) {
  std::string pat = "\"" + name + "\":";
  size_t p = line.find(pat);
  if (p == std::string::npos) return -1;
  return std::strtod(line.c_str() + p + pat.size(), nullptr);
}

// The string after "name": in a JSON line, up to the next quote (for the
// plain ASCII keys of these tests); "" if absent.
std::string JsonStr(const std::string& line, const std::string& name) {
  std::string pat = "\"" + name + "\":\"";
  size_t p = line.find(pat);
  if (p == std::string::npos) return "";
  p += pat.size();
  return line.substr(p, line.find('"', p) - p);
}

struct RecPos {
  long long offset, length;
  std::string op;
};

// Offsets, lengths and ops of a file's records, from kvs-dump --json.
std::vector<RecPos> Records(const std::string& seg) {
  RunResult r = Dump({"--json", seg});
  EXPECT_EQ(r.status, 0) << r.err;
  std::vector<RecPos> v;
  for (const auto& line : Lines(r.out)) {
    std::string op = Contains(line, "\"op\":\"set\"")      ? "set"
                     : Contains(line, "\"op\":\"remove\"") ? "remove"
                                                           : "footer";
    v.push_back({JsonNum(line, "offset"), JsonNum(line, "length"), op});
  }
  return v;
}

void FlipByte(const std::string& path, long long off) {
  std::string data = kvstest::ReadFile(path);
  ASSERT_LT(off, static_cast<long long>(data.size()));
  data[off] = static_cast<char>(data[off] ^ 0x20);
  kvstest::WriteFile(path, data);
}

void TruncateTo(const std::string& path, long long size) {
  ASSERT_EQ(truncate(path.c_str(), size), 0) << path;
}

// A segment's hint file (the engine writes one per sealed segment).
std::string HintOf(const std::string& seg) { return seg.substr(0, seg.size() - 4) + ".hint"; }

// The hint files of a store: those of its segments that have one.
std::vector<std::string> Hints(const std::string& dir) {
  std::vector<std::string> v;
  for (const auto& seg : Segments(dir))
    if (kvstest::FileSize(HintOf(seg)) > 0) v.push_back(HintOf(seg));
  return v;
}

// CRC-32C (Castagnoli), as the engine computes it, to forge hint files.
uint32_t Crc32c(const std::string& data) {
  uint32_t crc = 0xffffffffu;
  for (unsigned char c : data) {
    crc ^= c;
    for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
  }
  return ~crc;
}

// Recompute the trailing checksum of a hint file (5 bytes: 1a + big-endian
// CRC-32C of every byte before it) after an edit.
void FixHintCrc(std::string& h) {
  uint32_t crc = Crc32c(h.substr(0, h.size() - 5));
  h[h.size() - 5] = '\x1a';
  for (int i = 0; i < 4; i++) h[h.size() - 4 + i] = static_cast<char>(crc >> (24 - 8 * i));
}

// The length of the CBOR head (initial byte plus argument) at h[p].
size_t CborHead(const std::string& h, size_t p) {
  unsigned ai = static_cast<unsigned char>(h.at(p)) & 0x1f;
  return ai < 24 ? 1 : ai == 24 ? 2 : ai == 25 ? 3 : ai == 26 ? 5 : 9;
}

std::string Value(int i, size_t len) {
  std::string v = "value-" + std::to_string(i) + "-";
  while (v.size() < len) v += static_cast<char>('a' + v.size() % 26);
  return v;
}

// n records of about 120 bytes: several 4 KiB segments.
void FillStore(const std::string& dir, int n) {
  Store s(dir);
  for (int i = 0; i < n; i++) s.Set("key-" + std::to_string(i), Value(i, 100));
}

// ---- listing ------------------------------------------------------------------

TEST(DumpTest, ListsRecordsWithSegmentOffsetSeqAndOp) {
  TempDir t;
  {
    Store s(t.path());
    s.Set("alpha", "one");
    s.Set("beta", "two words");
    s.Remove("alpha");
  }
  std::string seg = t.file("0000000001.seg");
  RunResult r = Dump({t.path()});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  // The first record follows the 12-byte header; "alpha"="one" is
  // 85 01 00 45 alpha 43 one 1a crc: 18 bytes.
  EXPECT_EQ(lines[0], seg + ":12: seq 1 set key \"alpha\" value \"one\"");
  EXPECT_EQ(lines[1], seg + ":30: seq 2 set key \"beta\" value \"two words\"");
  EXPECT_TRUE(Contains(lines[2], seg + ":")) << lines[2];
  EXPECT_TRUE(Contains(lines[2], ": seq 3 remove key \"alpha\"")) << lines[2];
  EXPECT_FALSE(Contains(lines[2], "value")) << lines[2];

  // The segment file itself gives the same listing; a trailing slash on
  // the directory does not double the separator.
  RunResult f = Dump({seg});
  EXPECT_EQ(f.status, 0);
  EXPECT_EQ(f.out, r.out);
  RunResult slash = Dump({t.path() + "/"});
  EXPECT_EQ(slash.out, r.out);
}

TEST(DumpTest, DirectoryMeansTenDigitSegmentsInOrder) {
  TempDir t;
  FillStore(t.path(), 150);
  auto segs = Segments(t.path());
  ASSERT_GE(segs.size(), 3u);
  // Files that are not NNNNNNNNNN.seg are ignored, however they look.
  kvstest::WriteFile(t.file("123.seg"), "garbage");
  kvstest::WriteFile(t.file("0000000001.seg.bak"), "garbage");
  kvstest::WriteFile(t.file("00000000001.seg"), "garbage");
  // Nor are ten digits that are no segment number (found by fuzz_dump.c:
  // --verify and --stats read a copy named 0000000000.seg, which the
  // engine's open passes over, and counted its keys as live).
  kvstest::WriteFile(t.file("0000000000.seg"), kvstest::ReadFile(segs[0]));
  kvstest::WriteFile(t.file("4294967296.seg"), kvstest::ReadFile(segs[0]));
  kvstest::WriteFile(t.file("9999999999.seg"), "garbage");
  RunResult r = Dump({t.path()});
  ASSERT_EQ(r.status, 0) << r.err;
  auto lines = Lines(r.out);
  // 150 records, plus one footer per sealed segment (all but the newest).
  EXPECT_EQ(lines.size(), 150 + segs.size() - 1);
  size_t seg_i = 0, footers = 0;
  long long prev_seq = 0;
  for (const auto& line : lines) {
    while (seg_i < segs.size() && line.compare(0, segs[seg_i].size() + 1, segs[seg_i] + ":") != 0)
      seg_i++;
    ASSERT_LT(seg_i, segs.size()) << "out of order: " << line;
    if (Contains(line, ": footer ")) {
      footers++;
      EXPECT_EQ(NumAfter(line, "last_seq "), prev_seq) << line;
      continue;
    }
    long long seq = NumAfter(line, ": seq ");
    EXPECT_EQ(seq, prev_seq + 1) << line;
    prev_seq = seq;
  }
  EXPECT_EQ(footers, segs.size() - 1);
}

TEST(DumpTest, EscapesBinaryKeysAndValues) {
  TempDir t;
  {
    Store s(t.path());
    s.Set(std::string("k\0\xff", 3), std::string("\x01" "a\"b\\c\n\x7f\x80", 9));
    s.Set("empty", "");
  }
  RunResult r = Dump({t.path()});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(Contains(r.out, "set key \"k\\x00\\xff\" value \"\\x01a\\\"b\\\\c\\x0a\\x7f\\x80\"\n"))
      << r.out;
  EXPECT_TRUE(Contains(r.out, "set key \"empty\" value \"\"\n")) << r.out;
  // Nothing but printable ASCII reaches the terminal.
  for (unsigned char c : r.out) EXPECT_TRUE(c == '\n' || (c >= 0x20 && c < 0x7f)) << int(c);
}

TEST(DumpTest, AbbreviatesLongValuesUnlessFull) {
  TempDir t;
  std::string big(1000, 'x');
  big[999] = 'E';
  std::string key(300, 'k');
  {
    Store s(t.path());
    s.Set("big", big);
    s.Set(key, "v");
    s.Set("exactly64", std::string(64, 'y'));
  }
  RunResult r = Dump({t.path()});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(Contains(r.out, "value \"" + std::string(64, 'x') + "\"... (1000 bytes)\n")) << r.out;
  EXPECT_FALSE(Contains(r.out, std::string(65, 'x')));
  EXPECT_FALSE(Contains(r.out, "E\""));
  EXPECT_TRUE(Contains(r.out, "key \"" + std::string(64, 'k') + "\"... (300 bytes) value \"v\"\n"))
      << r.out;
  // At the limit nothing is cut.
  EXPECT_TRUE(Contains(r.out, "value \"" + std::string(64, 'y') + "\"\n")) << r.out;

  RunResult f = Dump({"--full", t.path()});
  ASSERT_EQ(f.status, 0) << f.err;
  EXPECT_TRUE(Contains(f.out, "value \"" + big + "\"\n"));
  EXPECT_TRUE(Contains(f.out, "key \"" + key + "\" value \"v\"\n"));
  EXPECT_FALSE(Contains(f.out, "bytes)"));
}

// ---- JSON -----------------------------------------------------------------------

// Parses every line of kvs-dump --json with Python's json module, checks the
// fields each op must have, decodes key and value by their encoding, and
// prints "op seq key_hex value_hex" per record (footers: count and last_seq).
const char kJsonCheck[] = R"PY(
import base64, json, sys
need = {"set": ["seq", "key", "key_encoding", "key_length", "value", "value_encoding", "value_length"],
        "remove": ["seq", "key", "key_encoding", "key_length"],
        "footer": ["last_seq", "count"]}
def dec(o, name):
    enc = o[name + "_encoding"]
    b = o[name].encode("utf-8") if enc == "utf8" else base64.b64decode(o[name], validate=True)
    assert enc in ("utf8", "base64"), enc
    if not o.get(name + "_truncated"):
        assert len(b) == o[name + "_length"], (o, len(b))
    return b.hex()
for line in open(sys.argv[1], encoding="utf-8"):
    o = json.loads(line)
    for f in ["segment", "offset", "length", "op"] + need[o["op"]]:
        assert f in o, (f, o)
    if o["op"] == "footer":
        print("footer", o["count"], o["last_seq"])
    elif o["op"] == "set":
        print("set", o["seq"], dec(o, "key"), dec(o, "value") or "-")
    else:
        print("remove", o["seq"], dec(o, "key"))
)PY";

std::string Hex(const std::string& s) {
  static const char d[] = "0123456789abcdef";
  std::string h;
  for (unsigned char c : s) {
    h += d[c >> 4];
    h += d[c & 15];
  }
  return h;
}

TEST(DumpTest, JsonLinesParseAndUseBase64ForBinary) {
  TempDir t, work;
  const std::string bin_key("b\0\xff", 3), bin_val("\xff\xfe\0v", 4);
  const std::string utf8_val = "gr\xc3\xbc\xc3\x9f \xe2\x82\xac";  // "grüß €"
  {
    Store s(t.path());
    s.Set("plain", "text value");
    s.Set(bin_key, bin_val);
    s.Set("utf8", utf8_val);
    s.Set("ctl", "tab\there");  // printable UTF-8 only: a tab means base64
    s.Set("empty", "");
    s.Remove("plain");
    for (int i = 0; i < 80; i++) s.Set("fill-" + std::to_string(i), Value(i, 100));
  }
  ASSERT_GE(Segments(t.path()).size(), 2u);
  RunResult r = Dump({"--json", t.path()});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(Contains(r.out, "\"key\":\"YgD/\",\"key_encoding\":\"base64\",\"key_length\":3,"
                              "\"value\":\"//4Adg==\",\"value_encoding\":\"base64\",\"value_length\":4"))
      << r.out;
  EXPECT_TRUE(Contains(r.out, "\"op\":\"set\",\"seq\":1,\"key\":\"plain\",\"key_encoding\":\"utf8\""))
      << r.out;
  EXPECT_TRUE(Contains(r.out, "\"value\":\"" + utf8_val + "\",\"value_encoding\":\"utf8\"")) << r.out;
  EXPECT_TRUE(Contains(r.out, "\"op\":\"footer\",\"last_seq\":")) << r.out;

  std::string out_file = work.file("dump.json");
  kvstest::WriteFile(out_file, r.out);
  RunResult py = kvstest::Run({kPython, "-c", kJsonCheck, out_file});
  ASSERT_EQ(py.status, 0) << py.err;
  auto lines = Lines(py.out);
  EXPECT_EQ(lines.size(), 86 + Segments(t.path()).size() - 1);
  std::set<std::string> got(lines.begin(), lines.end());
  EXPECT_TRUE(got.count("set 1 " + Hex("plain") + " " + Hex("text value"))) << py.out;
  EXPECT_TRUE(got.count("set 2 " + Hex(bin_key) + " " + Hex(bin_val))) << py.out;
  EXPECT_TRUE(got.count("set 3 " + Hex("utf8") + " " + Hex(utf8_val))) << py.out;
  EXPECT_TRUE(got.count("set 4 " + Hex("ctl") + " " + Hex("tab\there"))) << py.out;
  EXPECT_TRUE(got.count("set 5 " + Hex("empty") + " -")) << py.out;
  EXPECT_TRUE(got.count("remove 6 " + Hex("plain"))) << py.out;
}

TEST(DumpTest, JsonAbbreviatesWithoutSplittingCharacters) {
  TempDir t;
  // 63 ASCII bytes, then a 2-byte character straddling the 64-byte cut.
  std::string v = std::string(63, 'a') + "\xc3\xa9" + std::string(100, 'b');
  {
    Store s(t.path());
    s.Set("k", v);
  }
  RunResult r = Dump({"--json", t.path()});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(Contains(r.out, "\"value\":\"" + std::string(63, 'a') +
                                  "\",\"value_encoding\":\"utf8\",\"value_length\":165,"
                                  "\"value_truncated\":true}"))
      << r.out;
  RunResult f = Dump({"--json", "--full", t.path()});
  EXPECT_TRUE(Contains(f.out, "\"value\":\"" + v + "\",\"value_encoding\":\"utf8\",\"value_length\":165}"))
      << f.out;
}

// ---- --verify ---------------------------------------------------------------

TEST(DumpTest, VerifyOkOnGoodStoreEvenWhileOpen) {
  TempDir t;
  Store s(t.path());
  for (int i = 0; i < 200; i++) s.Set("key-" + std::to_string(i % 150), Value(i, 100));
  for (int i = 0; i < 20; i++) s.Remove("key-" + std::to_string(i));
  auto segs = Segments(t.path());
  ASSERT_GE(segs.size(), 3u);
  // The background I/O thread writes a sealed segment's hint after the
  // seal: wait (bounded) until all of them are there.
  for (int w = 0; w < 500; w++) {
    size_t hints = 0;
    for (const auto& sg : segs)
      hints += kvstest::FileSize(sg.substr(0, sg.size() - 4) + ".hint") > 0;
    if (hints + 1 >= segs.size()) break;
    usleep(10000);
  }
  // The reader takes no lock: the store may be open meanwhile.
  RunResult r = Dump({"--verify", t.path()});
  ASSERT_EQ(r.status, 0) << r.err;
  // Every sealed segment has a hint file, checked too.
  EXPECT_EQ(r.out, "OK: " + std::to_string(segs.size()) + " segments (" +
                       std::to_string(segs.size() - 1) + " sealed), 220 records (200 sets, 20 removes), " +
                       std::to_string(segs.size() - 1) + " hint files\n");
  s.Close();
  r = Dump({"--verify", "--json", t.path()});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(Contains(r.out, "{\"ok\":true,\"segments\":")) << r.out;
  EXPECT_EQ(JsonNum(r.out, "records"), 220);
  EXPECT_EQ(JsonNum(r.out, "hints"), static_cast<long long>(segs.size() - 1));
}

TEST(DumpTest, VerifyNamesFileAndOffsetOfFlippedByteInOldSegment) {
  TempDir t;
  FillStore(t.path(), 150);
  auto segs = Segments(t.path());
  ASSERT_GE(segs.size(), 3u);
  const std::string old = segs[1];
  auto recs = Records(old);
  ASSERT_GE(recs.size(), 10u);
  size_t mid = recs.size() / 2;
  // A byte of the value, well inside the record.
  FlipByte(old, recs[mid].offset + recs[mid].length - 20);
  std::string where = old + ": bad record at offset " + std::to_string(recs[mid].offset);

  RunResult v = Dump({"--verify", t.path()});
  EXPECT_EQ(v.status, 1);
  EXPECT_EQ(v.out, "");
  EXPECT_TRUE(Contains(v.err, where)) << v.err;
  EXPECT_TRUE(Contains(v.err, "checksum")) << v.err;

  // A plain dump lists the good records before the bad one, then fails.
  RunResult d = Dump({old});
  EXPECT_EQ(d.status, 1);
  EXPECT_EQ(Lines(d.out).size(), mid);
  EXPECT_TRUE(Contains(d.err, where)) << d.err;

  // The other files are still read.
  RunResult all = Dump({t.path()});
  EXPECT_EQ(all.status, 1);
  EXPECT_TRUE(Contains(all.out, segs.back() + ":")) << all.out;
}

TEST(DumpTest, VerifyFailsOnTruncatedSegments) {
  TempDir t;
  FillStore(t.path(), 150);
  auto segs = Segments(t.path());
  ASSERT_GE(segs.size(), 3u);
  auto recs = Records(segs[0]);
  ASSERT_GE(recs.size(), 4u);
  // Cut an old segment inside a record.
  TruncateTo(segs[0], recs[2].offset + 7);
  RunResult v = Dump({"--verify", t.path()});
  EXPECT_EQ(v.status, 1);
  EXPECT_TRUE(Contains(v.err, segs[0] + ": bad record at offset " + std::to_string(recs[2].offset)))
      << v.err;

  // A torn tail of the newest segment is reported too (the engine would cut
  // it off at open; the dump says it is there).
  auto last = Records(segs.back());
  ASSERT_GE(last.size(), 1u);
  TruncateTo(segs.back(), kvstest::FileSize(segs.back()) - 1);
  RunResult n = Dump({"--verify", segs.back()});
  EXPECT_EQ(n.status, 1);
  EXPECT_TRUE(Contains(n.err, segs.back() + ": bad record at offset " + std::to_string(last.back().offset)))
      << n.err;
}

// Found by fuzz_dump.c: a newest segment cut between the records of an
// atomic batch (a crash while writing it) passed --verify, yet the engine's
// open drops the batch.
TEST(DumpTest, VerifyFailsOnAnAtomicBatchWithoutItsEnd) {
  TempDir t;
  {
    Store s(t.path());
    s.Set("a", "1");
    kvs_op ops[2]{};
    ops[0].type = ops[1].type = KVS_OP_SET;
    ops[0].key = "b";
    ops[1].key = "c";
    ops[0].klen = ops[1].klen = 1;
    ops[0].val = ops[1].val = "2";
    ops[0].vlen = ops[1].vlen = 1;
    ASSERT_EQ(kvs_write_batch_flags(s.db(), ops, 2, KVS_BATCH_ATOMIC), KVS_OK);
  }
  auto segs = Segments(t.path());
  ASSERT_EQ(segs.size(), 1u);
  auto recs = Records(segs[0]);
  // a, the opening marker, b, c, the closing marker.
  ASSERT_EQ(recs.size(), 5u);
  EXPECT_EQ(Dump({"--verify", t.path()}).status, 0);
  TruncateTo(segs[0], recs[4].offset);
  RunResult v = Dump({"--verify", t.path()});
  EXPECT_EQ(v.status, 1);
  EXPECT_TRUE(Contains(v.err, segs[0] + ": bad record at offset " + std::to_string(recs[1].offset) +
                                  ": an atomic batch without its closing marker"))
      << v.err;
  EXPECT_EQ(Dump({segs[0]}).status, 1);
  // The engine agrees: it cuts the batch off.
  Store s(t.path());
  void *val = nullptr;
  size_t vlen = 0;
  EXPECT_EQ(kvs_get(s.db(), "b", 1, &val, &vlen), KVS_ENOTFOUND);
  EXPECT_EQ(kvs_get(s.db(), "a", 1, &val, &vlen), KVS_OK);
  kvs_free(val);
}

TEST(DumpTest, VerifyRequiresEveryOldSegmentSealed) {
  TempDir t;
  FillStore(t.path(), 150);
  auto segs = Segments(t.path());
  ASSERT_GE(segs.size(), 3u);
  auto recs = Records(segs[1]);
  ASSERT_EQ(recs.back().op, "footer");
  // Cut the footer off cleanly: every record left is good.
  TruncateTo(segs[1], recs.back().offset);
  EXPECT_EQ(Dump({segs[1]}).status, 0);
  EXPECT_EQ(Dump({"--verify", segs[1]}).status, 0);  // a lone file may be open
  RunResult v = Dump({"--verify", t.path()});
  EXPECT_EQ(v.status, 1);
  EXPECT_TRUE(Contains(v.err, segs[1] + ": segment is not sealed")) << v.err;
  EXPECT_EQ(v.out, "");
}

TEST(DumpTest, BadFilesExitOneWithAMessage) {
  TempDir t;
  FillStore(t.path(), 60);
  ASSERT_GE(Segments(t.path()).size(), 2u);
  std::string sealed = Segments(t.path()).at(0);
  std::string data = kvstest::ReadFile(sealed);
  auto recs = Records(sealed);
  ASSERT_EQ(recs.back().op, "footer");

  struct Case {
    std::string name, content;
  };
  std::string garbage;
  for (int i = 0; i < 5000; i++) garbage += static_cast<char>((i * 7919) >> 3);
  std::vector<Case> cases = {
      {"empty", ""},
      {"garbage", garbage},
      {"header-only-half", data.substr(0, 6)},
      {"header-then-garbage", data.substr(0, 12) + garbage},
      {"torn", data.substr(0, data.size() - 3)},
      {"huge-length", data.substr(0, 12) + "\x85\x01\x00\x5b\xff\xff\xff\xff\xff\xff\xff\x00"},
      {"deep-arrays", data.substr(0, 12) + std::string(10000, '\x81')},
      // A good record again after the footer.
      {"after-footer", data + data.substr(recs[0].offset, recs[0].length)},
  };
  for (const auto& c : cases) {
    std::string path = t.file(c.name);
    kvstest::WriteFile(path, c.content);
    for (const char* mode : {"--verify", "--json", "--stats"}) {
      RunResult r = Dump({mode, path});
      EXPECT_EQ(r.status, 1) << c.name << " " << mode;
      EXPECT_TRUE(Contains(r.err, path + ": ")) << c.name << ": " << r.err;
    }
  }
  // Not a regular file, not there at all, a kvs file that is no segment.
  EXPECT_EQ(Dump({t.file("nothing-here")}).status, 1);
  EXPECT_EQ(Dump({t.file("ENGINE")}).status, 1);
  // A directory or a FIFO named like a segment (opening a FIFO for
  // reading would wait for a writer forever).
  ASSERT_EQ(mkdir(t.file("0000000099.seg").c_str(), 0700), 0);
  ASSERT_EQ(mkfifo(t.file("0000000098.seg").c_str(), 0600), 0);
  RunResult d = Dump({"--verify", t.path()});
  EXPECT_EQ(d.status, 1);
  EXPECT_TRUE(Contains(d.err, t.file("0000000098.seg") + ": not a regular file")) << d.err;
  EXPECT_TRUE(Contains(d.err, t.file("0000000099.seg") + ": not a regular file")) << d.err;
  RunResult py = CheckCbor({t.file("0000000098.seg")});
  EXPECT_EQ(py.status, 1);
  EXPECT_TRUE(Contains(py.err, "not a regular file")) << py.err;
}

// A store (its ENGINE marker) with no segment yet; a directory without
// the marker is not a store (NonStoreDirectoryIsAnError).
TEST(DumpTest, DirectoryWithoutSegmentsIsOk) {
  TempDir t;
  kvstest::WriteFile(t.file("ENGINE"), "kvs\n");
  kvstest::WriteFile(t.file("README"), "not a segment");
  RunResult r = Dump({t.path()});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "");
  RunResult v = Dump({"--verify", t.path()});
  EXPECT_EQ(v.status, 0);
  EXPECT_EQ(v.out, "OK: 0 segments (0 sealed), 0 records (0 sets, 0 removes)\n");
}

TEST(DumpTest, VerifyOkAfterReopeningTheStore) {
  TempDir t;
  for (int round = 0; round < 4; round++) {
    Store s(t.path());
    for (int i = 0; i < 40; i++) s.Set("key-" + std::to_string(i), Value(round * 100 + i, 60));
    s.Remove("key-" + std::to_string(round));
  }
  RunResult v = Dump({"--verify", t.path()});
  ASSERT_EQ(v.status, 0) << v.err;
  EXPECT_EQ(NumAfter(v.out, "sealed), "), 164) << v.out;
  RunResult py = CheckCbor({t.path()});
  EXPECT_EQ(py.status, 0) << py.err;
  EXPECT_EQ(NumAfter(py.out, "files, "), 164) << py.out;
}

// ---- --stats -----------------------------------------------------------------

struct StatsRow {
  long long records, sets, removes, bytes, live, live_bytes;
};

StatsRow Row(const std::string& json_line) {
  return {JsonNum(json_line, "records"), JsonNum(json_line, "sets"),
          JsonNum(json_line, "removes"), JsonNum(json_line, "bytes"),
          JsonNum(json_line, "live_records"), JsonNum(json_line, "live_bytes")};
}

TEST(DumpTest, StatsCountsLiveRecordsInOneSegment) {
  TempDir t;
  {
    Store s(t.path());
    s.Set("a", "1");
    s.Set("b", "2");
    s.Set("a", "3");  // a's first record is dead
    s.Remove("b");    // b is gone: neither record is live
    s.Set("c", "4");
    s.Remove("c");
    s.Set("c", "5");  // set again after a remove: live
  }
  RunResult r = Dump({"--stats", "--json", t.path()});
  ASSERT_EQ(r.status, 0) << r.err;
  auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  StatsRow seg = Row(lines[0]), total = Row(lines[1]);
  EXPECT_EQ(seg.records, 7);
  EXPECT_EQ(seg.sets, 5);
  EXPECT_EQ(seg.removes, 2);
  EXPECT_EQ(seg.live, 2);
  // A SET of a one-byte key and value is 12 bytes: 85 seq 00 41 k 41 v 1a crc.
  EXPECT_EQ(seg.live_bytes, 24);
  EXPECT_EQ(seg.bytes, kvstest::FileSize(t.file("0000000001.seg")));
  EXPECT_TRUE(Contains(lines[1], "\"total\":true")) << lines[1];
  EXPECT_EQ(total.live, 2);

  // The text table says the same.
  RunResult txt = Dump({"--stats", t.path()});
  ASSERT_EQ(txt.status, 0);
  auto tl = Lines(txt.out);
  ASSERT_EQ(tl.size(), 3u) << txt.out;
  std::istringstream row(tl[1]);
  long long recs, sets, removes, bytes, live, live_bytes;
  row >> recs >> sets >> removes >> bytes >> live >> live_bytes;
  EXPECT_EQ(recs, 7);
  EXPECT_EQ(sets, 5);
  EXPECT_EQ(removes, 2);
  EXPECT_EQ(live, 2);
  EXPECT_EQ(live_bytes, 24);
  EXPECT_TRUE(Contains(tl[2], "total"));
}

TEST(DumpTest, StatsAgreeWithTheEngineAcrossSegments) {
  TempDir t;
  std::map<std::string, bool> present;
  struct kvs_store_stats est{};
  {
    Store s(t.path());
    for (int round = 0; round < 3; round++)
      for (int i = 0; i < 60; i++) {
        std::string k = "key-" + std::to_string(i);
        if ((i + round) % 5 == 0 && present[k]) {
          s.Remove(k);
          present[k] = false;
        } else {
          s.Set(k, Value(i * 10 + round, 40 + (i * 13 + round) % 90));
          present[k] = true;
        }
      }
    est = s.Stats();
  }
  long long live_keys = 0;
  for (const auto& kv : present) live_keys += kv.second;
  auto segs = Segments(t.path());
  ASSERT_GE(segs.size(), 3u);

  RunResult r = Dump({"--stats", "--json", t.path()});
  ASSERT_EQ(r.status, 0) << r.err;
  auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), segs.size() + 1);
  StatsRow sum{};
  for (size_t i = 0; i < segs.size(); i++) {
    EXPECT_TRUE(Contains(lines[i], "\"segment\":\"" + segs[i] + "\"")) << lines[i];
    StatsRow s = Row(lines[i]);
    EXPECT_EQ(s.bytes, kvstest::FileSize(segs[i]));
    EXPECT_LE(s.live, s.sets);
    sum.records += s.records;
    sum.live += s.live;
    sum.live_bytes += s.live_bytes;
    sum.bytes += s.bytes;
  }
  StatsRow total = Row(lines.back());
  EXPECT_EQ(total.records, 180);
  EXPECT_EQ(total.live, live_keys);
  EXPECT_EQ(sum.live, live_keys);
  EXPECT_EQ(sum.live_bytes, total.live_bytes);
  EXPECT_EQ(sum.bytes, total.bytes);
  // The engine's own figures for the same store.
  EXPECT_EQ(static_cast<long long>(est.live_keys), live_keys);
  EXPECT_EQ(static_cast<long long>(est.live_bytes), total.live_bytes);
  EXPECT_EQ(static_cast<long long>(est.disk_bytes), total.bytes);
}

// A FLUSH record kills every older record, in its own segment and in the
// sealed ones before it (found by the power-loss test: --stats counted the
// keys of a flushed store as live).
TEST(DumpTest, StatsCountsNothingOlderThanAFlushAsLive) {
  TempDir t;
  {
    Store s(t.path());
    for (int i = 0; i < 40; i++) s.Set("old-" + std::to_string(i), Value(i, 200));  // several segments
    kvs_op op{};
    op.type = KVS_OP_FLUSH;
    kvs* db = nullptr;
    kvs_options opt{};
    opt.segment_size = 4096;
    opt.no_auto_compact = 1;
    s.Close();
    ASSERT_EQ(kvs_open(t.path().c_str(), &opt, &db), KVS_OK);
    ASSERT_EQ(kvs_write_batch(db, &op, 1), KVS_OK);
    const char* k = "new";
    ASSERT_EQ(kvs_set(db, k, 3, "v", 1), KVS_OK);
    ASSERT_EQ(kvs_close(db), KVS_OK);
  }
  ASSERT_GE(Segments(t.path()).size(), 2u);
  RunResult r = Dump({"--stats", "--json", t.path()});
  ASSERT_EQ(r.status, 0) << r.err;
  auto lines = Lines(r.out);
  EXPECT_EQ(Row(lines.back()).live, 1) << r.out;
}

TEST(DumpTest, StatsCountsALiveRecordOnceWhenAFileIsGivenTwice) {
  TempDir t;
  {
    Store s(t.path());
    s.Set("a", "1");
    s.Set("b", "2");
  }
  std::string seg = t.file("0000000001.seg");
  RunResult r = Dump({"--stats", "--json", seg, seg});
  ASSERT_EQ(r.status, 0) << r.err;
  auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  // Equal seqs: the copy given later holds the live records.
  EXPECT_EQ(Row(lines[0]).live, 0);
  EXPECT_EQ(Row(lines[1]).live, 2);
  EXPECT_EQ(Row(lines[2]).records, 4);
  EXPECT_EQ(Row(lines[2]).live, 2);
}

// ---- dead bytes ---------------------------------------------------------------

TEST(DumpTest, StatsDeadRatioIsZeroWithDistinctKeys) {
  TempDir t;
  FillStore(t.path(), 150);
  auto segs = Segments(t.path());
  ASSERT_GE(segs.size(), 3u);
  RunResult r = Dump({"--stats", "--json", t.path()});
  ASSERT_EQ(r.status, 0) << r.err;
  auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), segs.size() + 1);
  for (const auto& line : lines) {
    EXPECT_EQ(JsonNum(line, "dead_bytes"), 0) << line;
    EXPECT_EQ(JsonDouble(line, "dead_ratio"), 0.0) << line;
    EXPECT_EQ(JsonNum(line, "record_bytes"), JsonNum(line, "live_bytes")) << line;
  }
  for (size_t i = 0; i + 1 < lines.size(); i++)
    EXPECT_TRUE(Contains(lines[i], "\"file_kind\":\"segment\"")) << lines[i];
  // The text table: dead_bytes and dead_ratio follow live_bytes.
  RunResult txt = Dump({"--stats", t.path()});
  ASSERT_EQ(txt.status, 0);
  auto tl = Lines(txt.out);
  ASSERT_EQ(tl.size(), segs.size() + 2) << txt.out;
  EXPECT_TRUE(Contains(tl[0], "live_bytes   dead_bytes dead_ratio  sealed")) << tl[0];
  std::istringstream total(tl.back());
  long long n[7];
  std::string ratio, word;
  for (long long& x : n) total >> x;
  total >> ratio >> word;
  EXPECT_EQ(n[6], 0) << tl.back();
  EXPECT_EQ(ratio, "0.000") << tl.back();
  EXPECT_EQ(word, "total") << tl.back();
}

TEST(DumpTest, StatsDeadRatioAfterOverwritingEveryKeyTwice) {
  TempDir t;
  struct kvs_store_stats est{};
  {
    Store s(t.path());  // no_auto_compact: every record stays
    for (int round = 0; round < 3; round++)
      for (int i = 0; i < 60; i++) s.Set("key-" + std::to_string(i), Value(round * 100 + i, 100));
    est = s.Stats();
  }
  auto segs = Segments(t.path());
  ASSERT_GE(segs.size(), 3u);
  RunResult r = Dump({"--stats", "--json", t.path()});
  ASSERT_EQ(r.status, 0) << r.err;
  auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), segs.size() + 1);
  long long dead_sum = 0, rec_sum = 0;
  for (size_t i = 0; i < segs.size(); i++) {
    long long rec = JsonNum(lines[i], "record_bytes"), dead = JsonNum(lines[i], "dead_bytes");
    EXPECT_EQ(dead, rec - JsonNum(lines[i], "live_bytes")) << lines[i];
    // Record bytes: the file but its 12-byte header and (if sealed) footer.
    EXPECT_LT(rec, JsonNum(lines[i], "bytes")) << lines[i];
    if (rec > 0) {
      EXPECT_NEAR(JsonDouble(lines[i], "dead_ratio"), double(dead) / rec, 1e-4) << lines[i];
    }
    dead_sum += dead;
    rec_sum += rec;
  }
  const std::string& total = lines.back();
  EXPECT_EQ(JsonNum(total, "dead_bytes"), dead_sum);
  EXPECT_EQ(JsonNum(total, "record_bytes"), rec_sum);
  // Two of every three records of a key are dead: the ratio is about 2/3.
  double ratio = JsonDouble(total, "dead_ratio");
  EXPECT_GT(ratio, 0.5) << total;
  EXPECT_NEAR(ratio, 2.0 / 3, 0.02) << total;
  // The first segments hold only overwritten records.
  EXPECT_EQ(JsonDouble(lines[0], "dead_ratio"), 1.0) << lines[0];
  // Without removes, dead means overwritten: the engine counts the same.
  EXPECT_EQ(static_cast<long long>(est.dead_bytes), dead_sum);
  EXPECT_EQ(static_cast<long long>(est.live_bytes), JsonNum(total, "live_bytes"));
}

TEST(DumpTest, StatsCountsTombstonesAsDead) {
  TempDir t;
  {
    Store s(t.path());
    s.Set("a", "1");  // 12 bytes, dead: removed below
    s.Set("b", "2");  // 12 bytes, live
    s.Remove("a");    // 10 bytes (84 seq 01 41 a 1a crc), dead
  }
  RunResult r = Dump({"--stats", "--json", t.path()});
  ASSERT_EQ(r.status, 0) << r.err;
  auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  EXPECT_EQ(JsonNum(lines[0], "record_bytes"), 34);
  EXPECT_EQ(JsonNum(lines[0], "live_bytes"), 12);
  EXPECT_EQ(JsonNum(lines[0], "dead_bytes"), 22);
  EXPECT_NEAR(JsonDouble(lines[1], "dead_ratio"), 22.0 / 34, 1e-4) << lines[1];
  RunResult h = Dump({"--help"});
  EXPECT_TRUE(Contains(h.out, "dead")) << h.out;
  EXPECT_TRUE(Contains(h.out, "every REMOVE")) << h.out;
}

// ---- hint files ----------------------------------------------------------------

// A store of several sealed segments (each with its hint file) holding
// sets, overwrites and removes.
void FillMixedStore(const std::string& dir) {
  Store s(dir);
  for (int i = 0; i < 200; i++) s.Set("key-" + std::to_string(i % 120), Value(i, 60 + i % 50));
  for (int i = 0; i < 120; i += 7) s.Remove("key-" + std::to_string(i));
  for (int i = 0; i < 40; i++) s.Set("more-" + std::to_string(i), Value(i, 80));
}

struct Entry {
  long long offset, length, seq, vlen;
  std::string op, key;
};

// Records of a segment or entries of a hint file, from kvs-dump --json
// (footers left out); vlen: value_length, -1 for removes.
std::vector<Entry> Entries(const std::string& file, const std::string& kind) {
  RunResult r = Dump({"--json", file});
  EXPECT_EQ(r.status, 0) << r.err;
  std::vector<Entry> v;
  for (const auto& line : Lines(r.out)) {
    EXPECT_TRUE(Contains(line, "\"file_kind\":\"" + kind + "\"")) << line;
    std::string op = JsonStr(line, "op");
    if (op == "footer") continue;
    v.push_back({JsonNum(line, "offset"), JsonNum(line, "length"), JsonNum(line, "seq"),
                 JsonNum(line, "value_length"), op, JsonStr(line, "key")});
  }
  return v;
}

TEST(DumpHint, ListsEntriesMatchingTheSegmentsRecords) {
  TempDir t;
  FillMixedStore(t.path());
  auto segs = Segments(t.path());
  ASSERT_GE(segs.size(), 4u);
  auto hints = Hints(t.path());
  ASSERT_EQ(hints.size(), segs.size() - 1) << "one per sealed segment";
  size_t removes = 0;
  for (size_t i = 0; i + 1 < segs.size(); i++) {
    ASSERT_EQ(hints[i], HintOf(segs[i]));
    auto recs = Entries(segs[i], "segment");
    auto ents = Entries(hints[i], "hint");
    ASSERT_EQ(ents.size(), recs.size()) << hints[i];
    for (size_t k = 0; k < recs.size(); k++) {
      EXPECT_EQ(ents[k].offset, recs[k].offset) << hints[i] << " " << k;
      EXPECT_EQ(ents[k].length, recs[k].length) << hints[i] << " " << k;
      EXPECT_EQ(ents[k].seq, recs[k].seq) << hints[i] << " " << k;
      EXPECT_EQ(ents[k].op, recs[k].op) << hints[i] << " " << k;
      EXPECT_EQ(ents[k].key, recs[k].key) << hints[i] << " " << k;
      EXPECT_EQ(ents[k].vlen, recs[k].vlen) << hints[i] << " " << k;
      removes += ents[k].op == "remove";
    }
  }
  EXPECT_GT(removes, 0u);

  // Plain lines: the hint word, the record's place in the segment, and the
  // value's length but no value.
  RunResult r = Dump({hints[0]});
  ASSERT_EQ(r.status, 0) << r.err;
  auto lines = Lines(r.out);
  auto recs = Records(segs[0]);
  ASSERT_EQ(lines.size(), recs.size() - 1);  // no footer
  EXPECT_EQ(lines[0], hints[0] + ": hint offset 12 length " + std::to_string(recs[0].length) +
                          " seq 1 set key \"key-0\" value (60 bytes)");
  for (const auto& line : lines) {
    EXPECT_EQ(line.compare(0, hints[0].size() + 13, hints[0] + ": hint offset"), 0) << line;
    EXPECT_FALSE(Contains(line, "value \"")) << line;
  }
}

TEST(DumpHint, HintsOptionMakesADirectoryMeanItsHintFiles) {
  TempDir t;
  FillMixedStore(t.path());
  auto segs = Segments(t.path());
  auto hints = Hints(t.path());
  ASSERT_GE(hints.size(), 3u);
  RunResult r = Dump({"--hints", t.path()});
  ASSERT_EQ(r.status, 0) << r.err;
  std::string want;
  for (const auto& h : hints) want += Dump({h}).out;
  EXPECT_EQ(r.out, want);
  // Without --hints a DIR still means its segments only.
  RunResult plain = Dump({t.path()});
  EXPECT_FALSE(Contains(plain.out, ".hint")) << plain.out;

  RunResult j = Dump({"--hints", "--json", t.path()});
  ASSERT_EQ(j.status, 0) << j.err;
  for (const auto& line : Lines(j.out)) EXPECT_TRUE(Contains(line, "\"file_kind\":\"hint\"")) << line;

  // --stats over the hint files: one row per hint file, marked as such;
  // the records are counted without reading the segments.
  RunResult st = Dump({"--hints", "--stats", "--json", t.path()});
  ASSERT_EQ(st.status, 0) << st.err;
  auto rows = Lines(st.out);
  ASSERT_EQ(rows.size(), hints.size() + 1);
  RunResult seg_st = Dump({"--stats", "--json", t.path()});
  auto seg_rows = Lines(seg_st.out);
  for (size_t i = 0; i < hints.size(); i++) {
    EXPECT_TRUE(Contains(rows[i], "\"segment\":\"" + hints[i] + "\",\"file_kind\":\"hint\"")) << rows[i];
    EXPECT_EQ(JsonNum(rows[i], "records"), JsonNum(seg_rows[i], "records"));
    EXPECT_EQ(JsonNum(rows[i], "record_bytes"), JsonNum(seg_rows[i], "record_bytes"));
    EXPECT_EQ(JsonNum(rows[i], "bytes"), kvstest::FileSize(hints[i]));
  }
  // With the newest segment added by name, the live figures are the same
  // as from the segments.
  RunResult both = Dump({"--hints", "--stats", "--json", t.path(), segs.back()});
  ASSERT_EQ(both.status, 0) << both.err;
  EXPECT_EQ(JsonNum(Lines(both.out).back(), "live_bytes"), JsonNum(seg_rows.back(), "live_bytes"));
  EXPECT_EQ(JsonNum(Lines(both.out).back(), "dead_bytes"), JsonNum(seg_rows.back(), "dead_bytes"));
  RunResult txt = Dump({"--hints", "--stats", t.path()});
  EXPECT_TRUE(Contains(txt.out, "  hint   " + hints[0] + "\n")) << txt.out;

  // --verify of a DIR checks segments and hints, with or without --hints.
  RunResult v = Dump({"--hints", "--verify", t.path()});
  ASSERT_EQ(v.status, 0) << v.err;
  EXPECT_EQ(v.out, Dump({"--verify", t.path()}).out);
  EXPECT_TRUE(Contains(v.out, ", " + std::to_string(hints.size()) + " hint files\n")) << v.out;
}

TEST(DumpHint, VerifyPassesWithHintsAndAfterCompaction) {
  TempDir t;
  FillMixedStore(t.path());
  size_t n_hints = Hints(t.path()).size();
  ASSERT_GE(n_hints, 3u);
  RunResult v = Dump({"--verify", t.path()});
  ASSERT_EQ(v.status, 0) << v.err;
  EXPECT_EQ(v.err, "");
  EXPECT_TRUE(Contains(v.out, ", " + std::to_string(n_hints) + " hint files\n")) << v.out;

  // Compaction rewrites the segments and writes new hint files; the store
  // may stay open meanwhile.
  Store s(t.path());
  s.Compact();
  for (int i = 0; i < 50; i++) s.Set("after-" + std::to_string(i), Value(i, 70));
  // A segment those writes sealed gets its hint from the compaction
  // helper, a moment later.
  auto segs = Segments(t.path());
  auto hints = Hints(t.path());
  for (int w = 0; w < 500 && hints.size() + 1 != segs.size(); w++) {
    usleep(10000);
    segs = Segments(t.path());
    hints = Hints(t.path());
  }
  ASSERT_EQ(hints.size(), segs.size() - 1);
  v = Dump({"--verify", "--json", t.path()});
  ASSERT_EQ(v.status, 0) << v.err;
  EXPECT_EQ(JsonNum(v.out, "hints"), static_cast<long long>(hints.size())) << v.out;
  s.Close();
  v = Dump({"--verify", t.path()});
  ASSERT_EQ(v.status, 0) << v.err;
  RunResult py = CheckCbor({t.path()});
  ASSERT_EQ(py.status, 0) << py.err;
  EXPECT_TRUE(Contains(py.out, "\n" + std::to_string(hints.size()) + " hint files, ")) << py.out;
  // Nothing is dead after a compaction but tombstones it had to keep.
  RunResult st = Dump({"--stats", "--json", t.path()});
  EXPECT_LT(JsonDouble(Lines(st.out).back(), "dead_ratio"), 0.1) << st.out;
}

TEST(DumpHint, VerifyFailsOnAnotherSegmentsHint) {
  TempDir t;
  FillMixedStore(t.path());
  auto hints = Hints(t.path());
  ASSERT_GE(hints.size(), 2u);
  // A valid hint file (its checksum holds), but of another segment.
  kvstest::WriteFile(hints[0], kvstest::ReadFile(hints[1]));
  RunResult v = Dump({"--verify", t.path()});
  EXPECT_EQ(v.status, 1);
  EXPECT_EQ(v.out, "");
  EXPECT_TRUE(Contains(v.err, hints[0] + ": hint entry for offset 12: seq ")) << v.err;
  // The hint file alone is well formed.
  EXPECT_EQ(Dump({"--verify", hints[0]}).status, 0);
  RunResult py = CheckCbor({t.path()});
  EXPECT_EQ(py.status, 1);
  EXPECT_TRUE(Contains(py.err, hints[0] + ": offset ")) << py.err;
}

TEST(DumpHint, VerifyFailsOnAnEditedEntryWithAValidChecksum) {
  TempDir t;
  FillMixedStore(t.path());
  auto hints = Hints(t.path());
  ASSERT_GE(hints.size(), 2u);
  std::string h = kvstest::ReadFile(hints[1]);
  // Walk to the first entry's offset: header, meta [count, footer_off,
  // min_seq], then [seq, type, key, offset, ...].
  size_t p = 12;
  ASSERT_EQ(static_cast<unsigned char>(h[p]), 0x83);
  p++;
  for (int i = 0; i < 3; i++) p += CborHead(h, p);
  ASSERT_EQ(static_cast<unsigned char>(h[p]), 0x86);
  p++;
  p += CborHead(h, p);  // seq
  p += CborHead(h, p);  // type
  size_t klen = static_cast<unsigned char>(h[p]) & 0x1f;
  ASSERT_LT(klen, 24u);
  p += 1 + klen;          // key
  ASSERT_EQ(h[p], 12);    // the first record follows the segment's header
  h[p] = 13;
  FixHintCrc(h);
  kvstest::WriteFile(hints[1], h);
  EXPECT_EQ(Dump({"--verify", hints[1]}).status, 0) << "still a well-formed hint file";

  RunResult v = Dump({"--verify", t.path()});
  EXPECT_EQ(v.status, 1);
  EXPECT_TRUE(Contains(v.err, hints[1] + ": hint entry for offset 13 does not match ")) << v.err;
  EXPECT_TRUE(Contains(v.err, "is at offset 12")) << v.err;
  RunResult py = CheckCbor({t.path()});
  EXPECT_EQ(py.status, 1);
  // (It finds the first record overlapping the second.)
  EXPECT_TRUE(Contains(py.err, hints[1] + ": offset ")) << py.err;
  EXPECT_TRUE(Contains(py.err, "out of order")) << py.err;
}

TEST(DumpHint, VerifyFailsOnAFlippedByte) {
  TempDir t;
  FillMixedStore(t.path());
  auto hints = Hints(t.path());
  ASSERT_GE(hints.size(), 2u);
  // A byte of a key in the middle of the file: only the checksum tells.
  std::string h = kvstest::ReadFile(hints[1]);
  size_t at = h.find("key-", h.size() / 2);
  ASSERT_NE(at, std::string::npos);
  FlipByte(hints[1], static_cast<long long>(at) + 1);
  RunResult v = Dump({"--verify", t.path()});
  EXPECT_EQ(v.status, 1);
  // The whole-file checksum blames no byte: the message names its offset.
  EXPECT_TRUE(Contains(v.err, hints[1] + ": bad hint file: the checksum at offset " +
                                  std::to_string(kvstest::FileSize(hints[1]) - 5)))
      << v.err;
  EXPECT_EQ(v.out, "");
  // Listing it fails the same way.
  RunResult d = Dump({hints[1]});
  EXPECT_EQ(d.status, 1);
  EXPECT_TRUE(Contains(d.err, hints[1] + ": bad hint file")) << d.err;
  RunResult py = CheckCbor({t.path()});
  EXPECT_EQ(py.status, 1);
  EXPECT_TRUE(Contains(py.err, hints[1] + ": offset ")) << py.err;
  EXPECT_TRUE(Contains(py.err, "checksum mismatch")) << py.err;
}

TEST(DumpHint, VerifyFailsOnAHintOfAnUnsealedSegmentOrAWrongFile) {
  TempDir t;
  FillMixedStore(t.path());
  auto segs = Segments(t.path());
  auto hints = Hints(t.path());
  ASSERT_GE(hints.size(), 2u);
  // The newest segment has no hint; one that lists its records exactly
  // would still be wrong, since it is not sealed.  Here: another one's.
  kvstest::WriteFile(HintOf(segs.back()), kvstest::ReadFile(hints[0]));
  RunResult v = Dump({"--verify", t.path()});
  EXPECT_EQ(v.status, 1);
  EXPECT_TRUE(Contains(v.err, HintOf(segs.back()) + ": ")) << v.err;
  unlink(HintOf(segs.back()).c_str());
  // A segment file named like a hint file.
  std::string saved = kvstest::ReadFile(hints[0]);
  kvstest::WriteFile(hints[0], kvstest::ReadFile(segs[0]));
  v = Dump({"--verify", t.path()});
  EXPECT_EQ(v.status, 1);
  EXPECT_TRUE(Contains(v.err, hints[0] + ": not a hint file")) << v.err;
  kvstest::WriteFile(hints[0], saved);
  EXPECT_EQ(Dump({"--verify", t.path()}).status, 0);
}

TEST(DumpHint, OrphanHintIsOnlyAWarning) {
  TempDir t;
  FillMixedStore(t.path());
  auto hints = Hints(t.path());
  ASSERT_GE(hints.size(), 1u);
  const std::string orphan = t.file("0000009999.hint");
  kvstest::WriteFile(orphan, kvstest::ReadFile(hints[0]));
  RunResult v = Dump({"--verify", t.path()});
  EXPECT_EQ(v.status, 0) << v.err;
  EXPECT_TRUE(Contains(v.err, "warning: " + orphan + ": its segment is missing")) << v.err;
  EXPECT_TRUE(Contains(v.out, ", " + std::to_string(hints.size()) + " hint files\n")) << v.out;
  RunResult py = CheckCbor({t.path()});
  EXPECT_EQ(py.status, 0) << py.err;
  EXPECT_TRUE(Contains(py.err, "warning: " + orphan)) << py.err;
  // Only --verify looks for orphans; a listing of segments says nothing.
  EXPECT_EQ(Dump({t.path()}).err, "");
}

// ---- the command line --------------------------------------------------------

TEST(DumpTest, UsageErrorsExitTwo) {
  RunResult none = Dump({});
  EXPECT_EQ(none.status, 2);
  EXPECT_TRUE(Contains(none.err, "usage: kvs-dump")) << none.err;
  EXPECT_EQ(none.out, "");
  RunResult bad = Dump({"--no-such-option", "/"});
  EXPECT_EQ(bad.status, 2);
  EXPECT_TRUE(Contains(bad.err, "usage: kvs-dump")) << bad.err;
  EXPECT_EQ(Dump({"-q", "/"}).status, 2);
  EXPECT_EQ(Dump({"--json"}).status, 2);
}

TEST(DumpTest, VersionAndHelp) {
  for (const char* opt : {"-V", "--version"}) {
    RunResult r = Dump({opt});
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(r.out, std::string("kvs-dump ") + KVS_VERSION + "\n");
  }
  RunResult h = Dump({"--help"});
  EXPECT_EQ(h.status, 0);
  EXPECT_TRUE(Contains(h.out, "usage: kvs-dump")) << h.out;
  EXPECT_TRUE(Contains(h.out, "--verify")) << h.out;
  EXPECT_EQ(Dump({"-h"}).out, h.out);
}

// ---- check_cbor.py -------------------------------------------------------------

// A store of several segments with sets, removes, binary data and an empty
// value; returns how many SET and REMOVE records it wrote.
int BuildMixedStore(const std::string& dir) {
  Store s(dir);
  int n = 0;
  s.Set(std::string("\0bin\xff", 5), std::string("\xff\0\x80", 3));
  s.Set("empty", "");
  n += 2;
  for (int i = 0; i < 120; i++, n++) s.Set("k" + std::to_string(i % 70), Value(i, 10 + i % 150));
  for (int i = 0; i < 30; i += 3, n++) s.Remove("k" + std::to_string(i));
  s.Set("big", std::string(5000, 'z'));  // bigger than a segment
  s.Set("empty", "");
  return n + 2;
}

TEST(CborCheck, AgreesWithKvsDumpVerify) {
  TempDir t;
  int written = BuildMixedStore(t.path());
  auto segs = Segments(t.path());
  ASSERT_GE(segs.size(), 3u);

  RunResult py = CheckCbor({t.path()});
  ASSERT_EQ(py.status, 0) << py.out << py.err;
  RunResult v = Dump({"--verify", t.path()});
  ASSERT_EQ(v.status, 0) << v.err;
  const std::string seg_line = std::to_string(segs.size()) + " files, " + std::to_string(written) +
                               " records, " + std::to_string(segs.size() - 1) + " footers\n";
  // A DIR's hint files are checked too: one per sealed segment, one entry
  // per record of it (all but the newest segment's).
  auto last = Records(segs.back());
  long long in_active = static_cast<long long>(last.size());
  EXPECT_EQ(py.out, seg_line + std::to_string(segs.size() - 1) + " hint files, " +
                        std::to_string(written - in_active) + " entries\n");
  EXPECT_EQ(NumAfter(v.out, "OK: "), static_cast<long long>(segs.size())) << v.out;
  EXPECT_EQ(NumAfter(v.out, "sealed), "), written) << v.out;
  // Segment files given one by one count the same (and no hints).
  RunResult each = CheckCbor(segs);
  EXPECT_EQ(each.out, seg_line);
}

TEST(CborCheck, FailsOnFlippedByteTruncationAndGarbage) {
  TempDir t;
  BuildMixedStore(t.path());
  auto segs = Segments(t.path());
  ASSERT_GE(segs.size(), 3u);
  auto recs = Records(segs[1]);
  ASSERT_GE(recs.size(), 3u);
  size_t mid = recs.size() / 2;
  std::string saved = kvstest::ReadFile(segs[1]);

  FlipByte(segs[1], recs[mid].offset + recs[mid].length - 6);  // last byte before the crc
  RunResult py = CheckCbor({t.path()});
  EXPECT_EQ(py.status, 1);
  EXPECT_TRUE(Contains(py.err, segs[1] + ": offset " + std::to_string(recs[mid].offset))) << py.err;
  EXPECT_TRUE(Contains(py.err, "checksum mismatch")) << py.err;

  kvstest::WriteFile(segs[1], saved);
  ASSERT_EQ(CheckCbor({t.path()}).status, 0);
  TruncateTo(segs[1], recs[mid].offset + 3);
  py = CheckCbor({t.path()});
  EXPECT_EQ(py.status, 1);
  EXPECT_TRUE(Contains(py.err, segs[1] + ": offset " + std::to_string(recs[mid].offset))) << py.err;

  std::string junk = t.file("junk");
  kvstest::WriteFile(junk, "\xd9\xd9\xf8\xda" "kvs1C" "BOR" "not cbor at all \xff\xff");
  EXPECT_EQ(CheckCbor({junk}).status, 1);
  kvstest::WriteFile(junk, "");
  EXPECT_EQ(CheckCbor({junk}).status, 1);
}

}  // namespace

// A directory with nothing kvs-dump can read is an error, not an empty
// listing: an empty or missing directory, one of other files, an LMDB store.
// A store with its marker but no segment yet is empty, and fine.
TEST(DumpTest, NonStoreDirectoryIsAnError) {
  TempDir t;
  for (const std::string& args : {std::string(""), std::string("--verify"), std::string("--stats")}) {
    std::vector<std::string> a;
    if (!args.empty()) a.push_back(args);
    a.push_back(t.path());
    RunResult r = Dump(a);
    EXPECT_NE(r.status, 0) << args;
    if (args.empty()) {
      EXPECT_EQ(r.out, "") << args;
    }
    EXPECT_NE(r.err.find("not a kvs store"), std::string::npos) << args << ": " << r.err;
  }
  RunResult r = Dump({t.file("missing")});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("No such file"), std::string::npos) << r.err;

  kvstest::WriteFile(t.file("data.mdb"), "x");
  r = Dump({t.path()});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("LMDB"), std::string::npos) << r.err;

  TempDir empty_store;
  kvstest::WriteFile(empty_store.file("ENGINE"), "kvs\n");
  r = Dump({empty_store.path()});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
}

// The same damaged byte gets the same words from the engine (`kvs`) and
// kvs-dump: a value's length head damaged to claim more bytes than the file
// holds is "runs past the end of the data" from both (the engine used to say
// "bad value", kvs-dump "truncated record").  The hints are removed so that
// the engine scans the segment at open, as kvs-dump does.
TEST(DumpTest, LengthRunningPastTheEndHasTheSameWordsInKvsAndKvsDump) {
  TempDir t;
  FillStore(t.path(), 150);
  for (const auto& h : Hints(t.path())) ASSERT_EQ(unlink(h.c_str()), 0) << h;
  auto segs = Segments(t.path());
  ASSERT_GE(segs.size(), 3u);
  auto recs = Records(segs[1]);
  ASSERT_GE(recs.size(), 10u);
  const RecPos& r = recs[recs.size() / 2];
  ASSERT_EQ(r.op, "set");
  // Value(i, 100): head 58 64, then 100 bytes, then the 5-byte checksum.
  long long head = r.offset + r.length - 5 - 100 - 2;
  std::string data = kvstest::ReadFile(segs[1]);
  ASSERT_EQ(static_cast<unsigned char>(data[head]), 0x58u);
  ASSERT_EQ(static_cast<unsigned char>(data[head + 1]), 100u);
  data[head] = '\x59';  // a 2-byte length: 0x64xx, past the 4 KiB file
  kvstest::WriteFile(segs[1], data);
  const std::string want = segs[1] + ": bad record at offset " + std::to_string(r.offset) +
                           ": record runs past the end of the data";

  RunResult d = Dump({"--verify", t.path()});
  EXPECT_EQ(d.status, 1);
  EXPECT_TRUE(Contains(d.err, want)) << d.err;
  RunResult k = kvstest::Run({Bin("kvs"), "--dir", t.path(), "get", "key-1"}, "", 60);
  EXPECT_NE(k.status, 0);
  EXPECT_TRUE(Contains(k.err, want)) << k.err;
}

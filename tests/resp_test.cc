// resp_test.cc - the RESP2 codec (net/resp.h): the request parser (pipelining,
// every split of the input, binary arguments, inline commands, every limit,
// malformed input), the reply encoder, and the client-side reply reader.
#include <algorithm>
#include <climits>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "resp.h"

namespace {

using Args = std::vector<std::string>;
using namespace std::string_literals;

// ---- helpers -------------------------------------------------------------------

// A multibulk request, as clients send it.
std::string Mb(const Args& args) {
  std::string s = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) s += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return s;
}

struct Parser {
  Parser() { net_resp_parser_init(&p); }
  ~Parser() { net_resp_parser_free(&p); }
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;
  net_resp_parser p;
};

struct Reader {
  Reader() { net_resp_reader_init(&r); }
  ~Reader() { net_resp_reader_free(&r); }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;
  net_resp_reader r;
};

// A heap copy of s that lives exactly as long as the object: a parser that
// kept a pointer into an older copy reads freed memory, which ASan reports.
class Copy {
 public:
  explicit Copy(const std::string& s) : buf_(new char[s.size() + 1]), len_(s.size()) {
    memcpy(buf_.get(), s.data(), s.size());
  }
  const char* data() const { return buf_.get(); }
  size_t size() const { return len_; }

 private:
  std::unique_ptr<char[]> buf_;
  size_t len_;
};

// What the request parser made of a byte stream.
struct Outcome {
  std::vector<Args> cmds;
  int last = NET_RESP_NEED_MORE;  // the result of the final call
  std::string err;
};

// Feed `in` to a request parser the way a connection does: `chunk` bytes per
// read (0: everything at once), parse until NEED_MORE or an error, then drop
// the consumed bytes.  Every call sees a fresh copy of the pending bytes.
Outcome Feed(const std::string& in, size_t chunk = 0, std::mt19937* rng = nullptr) {
  Parser p;
  Outcome o;
  std::string pending;
  size_t fed = 0;
  if (chunk == 0) chunk = std::max<size_t>(in.size(), 1);
  while (fed < in.size() && o.last >= 0) {
    size_t n = rng ? std::uniform_int_distribution<size_t>(1, chunk)(*rng) : chunk;
    n = std::min(n, in.size() - fed);
    pending.append(in, fed, n);
    fed += n;
    for (;;) {
      Copy buf(pending);
      net_resp_cmd cmd{};
      size_t used = SIZE_MAX;
      int rc = net_resp_parse(&p.p, buf.data(), buf.size(), &cmd, &used);
      EXPECT_LE(used, buf.size());
      o.last = rc;
      if (rc == NET_RESP_OK) {
        EXPECT_GT(used, 0u);
        EXPECT_GE(cmd.argc, 1u);
        Args a;
        for (size_t i = 0; i < cmd.argc; i++) a.emplace_back(cmd.argv[i], cmd.argvlen[i]);
        o.cmds.push_back(a);
      } else if (rc == NET_RESP_NEED_MORE) {
        EXPECT_EQ(std::string(net_resp_parser_errmsg(&p.p)), "");
      } else {
        EXPECT_EQ(rc, NET_RESP_EPROTO);
        o.err = net_resp_parser_errmsg(&p.p);
      }
      pending.erase(0, used);
      if (rc != NET_RESP_OK) break;
    }
  }
  return o;
}

// The whole stream in one buffer must give the same as byte by byte and as a
// few other chunkings.
Outcome FeedEveryWay(const std::string& in) {
  Outcome whole = Feed(in);
  for (size_t chunk : {1, 2, 3, 7, 64}) {
    Outcome o = Feed(in, chunk);
    EXPECT_EQ(o.cmds, whole.cmds) << "chunk " << chunk;
    EXPECT_EQ(o.last, whole.last) << "chunk " << chunk;
    EXPECT_EQ(o.err, whole.err) << "chunk " << chunk;
  }
  return whole;
}

// A protocol error with exactly this message.
void ExpectError(const std::string& in, const std::string& msg) {
  Outcome o = FeedEveryWay(in);
  EXPECT_EQ(o.last, NET_RESP_EPROTO) << testing::PrintToString(in);
  EXPECT_EQ(o.err, msg) << testing::PrintToString(in);
}

// One call on a fresh parser.
int ParseOnce(Parser& p, const std::string& in, Args* args = nullptr, size_t* used = nullptr) {
  net_resp_cmd cmd{};
  size_t u = 0;
  int rc = net_resp_parse(&p.p, in.data(), in.size(), &cmd, &u);
  if (used) *used = u;
  if (rc == NET_RESP_OK && args) {
    args->clear();
    for (size_t i = 0; i < cmd.argc; i++) args->emplace_back(cmd.argv[i], cmd.argvlen[i]);
  }
  return rc;
}

std::string Bytes(const net_buf& b) { return std::string(b.data ? b.data : "", b.len); }

// ---- the request parser ----------------------------------------------------------

TEST(RespParse, OneCommand) {
  Parser p;
  Args a;
  size_t used = 0;
  std::string in = Mb({"SET", "key", "value"});
  ASSERT_EQ(ParseOnce(p, in, &a, &used), NET_RESP_OK);
  EXPECT_EQ(a, (Args{"SET", "key", "value"}));
  EXPECT_EQ(used, in.size());
  EXPECT_EQ(net_resp_parse(&p.p, in.data() + used, 0, nullptr, &used), NET_RESP_NEED_MORE);
  EXPECT_EQ(used, 0u);
  // An empty buffer may have no memory yet.
  EXPECT_EQ(net_resp_parse(&p.p, nullptr, 0, nullptr, &used), NET_RESP_NEED_MORE);
  Reader r;
  const net_resp_reply* rep = nullptr;
  EXPECT_EQ(net_resp_read_reply(&r.r, nullptr, 0, &rep, &used), NET_RESP_NEED_MORE);
}

TEST(RespParse, ArgumentsPointIntoTheBuffer) {
  // Multibulk arguments are not copied.
  Parser p;
  std::string in = Mb({"GET", "k"});
  net_resp_cmd cmd{};
  size_t used = 0;
  ASSERT_EQ(net_resp_parse(&p.p, in.data(), in.size(), &cmd, &used), NET_RESP_OK);
  EXPECT_EQ(cmd.argv[0], in.data() + 8);
  EXPECT_EQ(cmd.argv[1], in.data() + 17);
}

TEST(RespParse, PipelinedCommandsInOneBuffer) {
  std::vector<Args> want;
  std::string in;
  for (int i = 0; i < 200; i++) {
    Args a = {"SET", "key" + std::to_string(i), std::string(static_cast<size_t>(i), 'v')};
    want.push_back(a);
    in += Mb(a);
  }
  // Each call returns one command and says exactly how long it was.
  Parser p;
  size_t off = 0;
  for (size_t i = 0; i < want.size(); i++) {
    Args a;
    size_t used = 0;
    ASSERT_EQ(ParseOnce(p, in.substr(off), &a, &used), NET_RESP_OK) << i;
    EXPECT_EQ(a, want[i]);
    EXPECT_EQ(used, Mb(want[i]).size());
    off += used;
  }
  EXPECT_EQ(off, in.size());
  Outcome o = Feed(in);
  EXPECT_EQ(o.cmds, want);
  EXPECT_EQ(o.last, NET_RESP_NEED_MORE);
}

// A stream with every kind of request, empty commands and binary arguments.
std::string MixedStream(std::vector<Args>* want) {
  std::string in;
  auto add = [&](const std::string& bytes, const Args& a) {
    in += bytes;
    if (!a.empty()) want->push_back(a);
  };
  add(Mb({"PING"}), {"PING"});
  add("PING\r\n", {"PING"});
  add("*0\r\n", {});
  add(Mb({"SET", std::string("a\0b", 3), "\r\n$1\r\n"}), {"SET", std::string("a\0b", 3), "\r\n$1\r\n"});
  add("\r\n", {});
  add("*-1\r\n", {});
  add("set  k\t v\n", {"set", "k", "v"});
  add(Mb({""}), {""});
  add("get \"a b\" 'c'\r\n", {"get", "a b", "c"});
  add(Mb({"MSET", "k1", "v1", "k2", std::string(300, 'x')}),
      {"MSET", "k1", "v1", "k2", std::string(300, 'x')});
  return in;
}

TEST(RespParse, SplitAtEveryOffset) {
  std::vector<Args> want;
  std::string in = MixedStream(&want);
  for (size_t k = 0; k <= in.size(); k++) {
    // The first read ends at byte k, the second brings the rest.
    Parser p;
    std::vector<Args> got;
    std::string pending = in.substr(0, k);
    for (int read = 0; read < 2; read++) {
      if (read == 1) pending += in.substr(k);
      for (;;) {
        Copy buf(pending);
        net_resp_cmd cmd{};
        size_t used = 0;
        int rc = net_resp_parse(&p.p, buf.data(), buf.size(), &cmd, &used);
        ASSERT_GE(rc, 0) << "split at " << k << ": " << net_resp_parser_errmsg(&p.p);
        if (rc == NET_RESP_OK) {
          Args a;
          for (size_t i = 0; i < cmd.argc; i++) a.emplace_back(cmd.argv[i], cmd.argvlen[i]);
          got.push_back(a);
        }
        pending.erase(0, used);
        if (rc != NET_RESP_OK) break;
      }
    }
    EXPECT_EQ(got, want) << "split at " << k;
    EXPECT_EQ(pending, "") << "split at " << k;
  }
}

TEST(RespParse, ByteByByte) {
  std::vector<Args> want;
  std::string in = MixedStream(&want);
  Outcome o = FeedEveryWay(in);
  EXPECT_EQ(o.cmds, want);
  EXPECT_EQ(o.last, NET_RESP_NEED_MORE);
}

TEST(RespParse, EveryPrefixNeedsMore) {
  std::string in = Mb({"SET", "key", std::string("v\r\nv\0", 5)});
  for (size_t k = 0; k < in.size(); k++) {
    Parser p;
    size_t used = 1;
    EXPECT_EQ(ParseOnce(p, in.substr(0, k), nullptr, &used), NET_RESP_NEED_MORE) << k;
    EXPECT_EQ(used, 0u) << k;
  }
}

TEST(RespParse, BinaryArguments) {
  std::string all;
  for (int c = 0; c < 256; c++) all += static_cast<char>(c);
  Args a = {"SET", std::string("\0\0\0", 3), "\r\n", "\r", "\n", "*1\r\n$4\r\nPING\r\n", all, ""};
  Outcome o = FeedEveryWay(Mb(a) + Mb(a));
  ASSERT_EQ(o.cmds.size(), 2u);
  EXPECT_EQ(o.cmds[0], a);
  EXPECT_EQ(o.cmds[1], a);
}

TEST(RespParse, EmptyMultibulkIsSkipped) {
  Outcome o = FeedEveryWay("*0\r\n*-1\r\n" + Mb({"PING"}) + "*0\r\n");
  EXPECT_EQ(o.cmds, (std::vector<Args>{{"PING"}}));
  EXPECT_EQ(o.last, NET_RESP_NEED_MORE);
  // Skipped commands are consumed even when nothing else follows, so a
  // client sending only those does not grow the buffer.
  Parser p;
  size_t used = 0;
  EXPECT_EQ(ParseOnce(p, "*0\r\n*-1\r\n\r\n\n*1", nullptr, &used), NET_RESP_NEED_MORE);
  EXPECT_EQ(used, 12u);
}

// Redis 7 ignores a negative multibulk count other than -1 too ("*-10"
// is skipped, and the next request is served), rather than failing the
// connection.
TEST(RespParse, NegativeMultibulkCountIsSkipped) {
  Outcome o = FeedEveryWay("*-10\r\n*-2\r\n*-9223372036854775808\r\n" + Mb({"PING"}));
  EXPECT_EQ(o.cmds, (std::vector<Args>{{"PING"}}));
  EXPECT_EQ(o.last, NET_RESP_NEED_MORE);
}

TEST(RespParse, Inline) {
  Outcome o = FeedEveryWay(
      "PING\r\n"
      "PING\n"
      "SET key value\r\n"
      "  set \t k   v  \r\n"
      "\r\n"
      "\n"
      "   \t \r\n"
      "get x\r\r\n"
      "a\rb\n"
      "ECHO caf\xc3\xa9 \x01\x02\n");
  EXPECT_EQ(o.cmds, (std::vector<Args>{{"PING"},
                                       {"PING"},
                                       {"SET", "key", "value"},
                                       {"set", "k", "v"},
                                       {"get", "x"},
                                       {"a", "b"},
                                       {"ECHO", "caf\xc3\xa9", "\x01\x02"}}));
  EXPECT_EQ(o.last, NET_RESP_NEED_MORE);
  // A line without its '\n' is not a command yet.
  EXPECT_EQ(FeedEveryWay("PING").cmds.size(), 0u);
  EXPECT_EQ(FeedEveryWay("PING\r").cmds.size(), 0u);
}

TEST(RespParse, InlineQuotes) {
  Outcome o = FeedEveryWay(
      "SET \"a b\" 'c d'\r\n"
      "SET \"\\x41\\x7a\\n\\r\\t\\b\\a\\\\\\\"\\q\" 'it\\'s \\n'\r\n"
      "SET \"\" ''\r\n"
      "SET \"\\xZZ\" \"\\x4\"\r\n"
      "SET foo\"bar baz\" x'y z'\r\n"
      "SET \"a\"\t'b'\n");
  EXPECT_EQ(o.cmds, (std::vector<Args>{{"SET", "a b", "c d"},
                                       {"SET", "Az\n\r\t\b\a\\\"q", "it's \\n"},
                                       {"SET", "", ""},
                                       {"SET", "xZZ", "x4"},
                                       {"SET", "foobar baz", "xy z"},
                                       {"SET", "a", "b"}}));
  EXPECT_EQ(o.last, NET_RESP_NEED_MORE) << o.err;
  const char* unbalanced = "Protocol error: unbalanced quotes in request";
  ExpectError("SET \"abc\r\n", unbalanced);
  ExpectError("SET 'abc\r\n", unbalanced);
  ExpectError("SET \"abc\\\"\r\n", unbalanced);
  ExpectError("SET \"a\"b\r\n", unbalanced);
  ExpectError("SET 'a'b\r\n", unbalanced);
  ExpectError("PING\r\nSET \"a\n", unbalanced);
}

TEST(RespParse, InlineLengthLimit) {
  static_assert(NET_RESP_MAX_INLINE == 65536, "Redis's PROTO_INLINE_MAX_SIZE");
  const std::string big = "Protocol error: too big inline request";
  // 65536 bytes before the '\n' are allowed, a trailing '\r' included.
  std::string arg(NET_RESP_MAX_INLINE - 4, 'x');
  for (size_t chunk : {0, 1000, 4096}) {
    Outcome o = Feed("SET " + arg + "\n", chunk);
    ASSERT_EQ(o.cmds.size(), 1u) << o.err;
    EXPECT_EQ(o.cmds[0][1], arg);
    o = Feed("SET " + arg.substr(1) + "\r\n", chunk);
    ASSERT_EQ(o.cmds.size(), 1u) << o.err;
    EXPECT_EQ(o.cmds[0][1], arg.substr(1));
    o = Feed("SET " + arg + "x\n", chunk);
    EXPECT_EQ(o.last, NET_RESP_EPROTO);
    EXPECT_EQ(o.err, big);
    o = Feed("SET " + arg + "\r\n", chunk);
    EXPECT_EQ(o.err, big);
    // Without a '\n': waiting at the limit, refused one byte over it.
    o = Feed("SET " + arg, chunk);
    EXPECT_EQ(o.last, NET_RESP_NEED_MORE);
    o = Feed("SET " + arg + "x", chunk);
    EXPECT_EQ(o.err, big);
  }
  // A whole megabyte without a newline is refused at the limit.
  Outcome o = Feed(std::string(1 << 20, 'a'), 4096);
  EXPECT_EQ(o.err, big);
}

TEST(RespParse, MultibulkCountLimit) {
  static_assert(NET_RESP_MAX_ARGS == 1048576, "Redis's limit");
  const std::string bad = "Protocol error: invalid multibulk length";
  {
    // At the limit: accepted, and nothing is allocated for the claim.
    Parser p;
    EXPECT_EQ(ParseOnce(p, "*1048576\r\n"), NET_RESP_NEED_MORE);
    EXPECT_LE(p.p.argcap, 1024u);  // a peek at the private state
  }
  {
    // The argument arrays grow with the arguments that arrive.
    Parser p;
    std::string in = "*1048576\r\n";
    for (int i = 0; i < 3000; i++) in += "$1\r\na\r\n";
    EXPECT_EQ(ParseOnce(p, in), NET_RESP_NEED_MORE);
    EXPECT_GE(p.p.argcap, 3000u);
    EXPECT_LE(p.p.argcap, 4096u);
  }
  ExpectError("*1048577\r\n", bad);
  ExpectError("*2147483648\r\n", bad);
  ExpectError("*9223372036854775807\r\n", bad);
  ExpectError("*9223372036854775808\r\n", bad);
  ExpectError("*99999999999999999999999999\r\n", bad);
  for (const char* s : {"*\r\n", "*abc\r\n", "*1x\r\n", "*01\r\n", "*+1\r\n", "* 1\r\n", "*1 \r\n",
                        "*-0\r\n", "*-\r\n", "*0x10\r\n", "*1\rX", "*1\n$4\nPING\n", "*1\n"})
    ExpectError(s, bad);
  // A count line that can no longer be a number is refused without waiting
  // for its end.
  ExpectError("*123456789012345678901", bad);
  ExpectError("*1\n", bad);
}

TEST(RespParse, AtTheArgumentLimit) {
  std::string in = "*1048576\r\n";
  for (int i = 0; i < 1048576; i++) in += "$0\r\n\r\n";
  Parser p;
  Args a;
  size_t used = 0;
  ASSERT_EQ(ParseOnce(p, in, &a, &used), NET_RESP_OK) << net_resp_parser_errmsg(&p.p);
  EXPECT_EQ(a.size(), 1048576u);
  EXPECT_EQ(used, in.size());
  // The big argument arrays are released before the next command.
  ASSERT_EQ(ParseOnce(p, Mb({"PING"}), &a), NET_RESP_OK);
  EXPECT_LE(p.p.argcap, 1024u);
}

TEST(RespParse, BulkLengthLimit) {
  static_assert(NET_RESP_MAX_BULK == 536870912, "Redis's proto-max-bulk-len");
  const std::string bad = "Protocol error: invalid bulk length";
  {
    // A 512 MiB bulk is accepted; the parser only asks for 1 MiB at a time.
    Parser p;
    EXPECT_EQ(ParseOnce(p, "*2\r\n$3\r\nGET\r\n$536870912\r\n"), NET_RESP_NEED_MORE);
    EXPECT_EQ(net_resp_parser_hint(&p.p), size_t{NET_RESP_PREALLOC_MAX});
  }
  ExpectError("*1\r\n$536870913\r\n", bad);
  ExpectError("*1\r\n$10737418240\r\n", bad);  // 10 GB
  ExpectError("*1\r\n$9223372036854775807\r\n", bad);
  ExpectError("*1\r\n$9223372036854775808\r\n", bad);
  ExpectError("*1\r\n$99999999999999999999999999\r\n", bad);
  for (const char* s : {"*1\r\n$-1\r\n", "*1\r\n$-5\r\n", "*1\r\n$\r\n", "*1\r\n$abc\r\n",
                        "*1\r\n$01\r\n", "*1\r\n$+1\r\n", "*1\r\n$ 1\r\n", "*1\r\n$1 \r\n",
                        "*1\r\n$4\nPING\n", "*1\r\n$4\rPING"})
    ExpectError(s, bad);
  ExpectError("*1\r\n$123456789012345678901", bad);
}

TEST(RespParse, ExpectedDollar) {
  ExpectError("*1\r\n:3\r\n", "Protocol error: expected '$', got ':'");
  ExpectError("*1\r\nX", "Protocol error: expected '$', got 'X'");
  ExpectError("*2\r\n$1\r\na\r\n*1\r\n", "Protocol error: expected '$', got '*'");
  ExpectError(std::string("*1\r\n\0", 5), "Protocol error: expected '$', got '\\x00'");
  ExpectError("*1\r\n\r\n", "Protocol error: expected '$', got '\\x0d'");
}

TEST(RespParse, BulkWithoutCrlf) {
  const std::string bad = "Protocol error: bulk string not terminated by CRLF";
  ExpectError("*1\r\n$3\r\nfooXY", bad);
  ExpectError("*1\r\n$3\r\nfoo\rX", bad);
  ExpectError("*1\r\n$3\r\nfoo\n\r", bad);
  ExpectError("*1\r\n$3\r\nfoobar\r\n", bad);
  ExpectError("*1\r\n$3\r\nfo\r\n", bad);
  // The wrong byte is refused as soon as it arrives.
  ExpectError("*1\r\n$3\r\nfooX", bad);
}

TEST(RespParse, TruncatedFramesWait) {
  for (const char* s : {"*", "*1", "*1\r", "*1\r\n", "*1\r\n$", "*1\r\n$3", "*1\r\n$3\r",
                        "*1\r\n$3\r\n", "*1\r\n$3\r\nfo", "*1\r\n$3\r\nfoo", "*1\r\n$3\r\nfoo\r",
                        "*2\r\n$3\r\nfoo\r\n", "PING", "PING\r"}) {
    Outcome o = FeedEveryWay(s);
    EXPECT_EQ(o.last, NET_RESP_NEED_MORE) << s;
    EXPECT_TRUE(o.cmds.empty()) << s;
  }
}

TEST(RespParse, ErrorsAreSticky) {
  Parser p;
  EXPECT_EQ(ParseOnce(p, "*x\r\n"), NET_RESP_EPROTO);
  std::string msg = net_resp_parser_errmsg(&p.p);
  EXPECT_EQ(msg, "Protocol error: invalid multibulk length");
  size_t used = 1;
  EXPECT_EQ(ParseOnce(p, Mb({"PING"}), nullptr, &used), NET_RESP_EPROTO);
  EXPECT_EQ(used, 0u);
  EXPECT_EQ(msg, net_resp_parser_errmsg(&p.p));
}

TEST(RespParse, HintFollowsTheBytes) {
  // A 3,000,000-byte value arriving in pieces: the hint never exceeds
  // 1 MiB and shrinks to exactly what is missing.
  const size_t n = 3000000;
  std::string head = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3000000\r\n";
  std::string value(n, 'v');
  for (size_t i = 0; i < n; i += 7919) value[i] = static_cast<char>(i);
  std::string in = head + value + "\r\n";
  Parser p;
  size_t have = head.size();
  net_resp_cmd cmd{};
  size_t used = 0;
  ASSERT_EQ(net_resp_parse(&p.p, in.data(), have, &cmd, &used), NET_RESP_NEED_MORE);
  EXPECT_EQ(net_resp_parser_hint(&p.p), size_t{NET_RESP_PREALLOC_MAX});
  have += 2500000;
  ASSERT_EQ(net_resp_parse(&p.p, in.data(), have, &cmd, &used), NET_RESP_NEED_MORE);
  EXPECT_EQ(net_resp_parser_hint(&p.p), in.size() - have);
  have = in.size() - 1;
  ASSERT_EQ(net_resp_parse(&p.p, in.data(), have, &cmd, &used), NET_RESP_NEED_MORE);
  EXPECT_EQ(net_resp_parser_hint(&p.p), 1u);
  ASSERT_EQ(net_resp_parse(&p.p, in.data(), in.size(), &cmd, &used), NET_RESP_OK);
  ASSERT_EQ(cmd.argc, 3u);
  EXPECT_EQ(std::string(cmd.argv[2], cmd.argvlen[2]), value);
  EXPECT_EQ(used, in.size());
  EXPECT_EQ(net_resp_parser_hint(&p.p), 0u);
  // Outside a bulk the hint is 0: nothing is known.
  EXPECT_EQ(ParseOnce(p, "*2\r\n$3"), NET_RESP_NEED_MORE);
  EXPECT_EQ(net_resp_parser_hint(&p.p), 0u);
  EXPECT_EQ(ParseOnce(p, "*2\r\n$3\r\nGE"), NET_RESP_NEED_MORE);
  EXPECT_EQ(net_resp_parser_hint(&p.p), 3u);
}

TEST(RespParse, LargeValueInChunks) {
  std::mt19937 rng(7);
  std::string value(3 << 20, '\0');
  for (auto& c : value) c = static_cast<char>(rng());
  Args a = {"SET", "big", value};
  Outcome o = Feed(Mb(a) + Mb({"GET", "big"}), 65536, &rng);
  ASSERT_EQ(o.cmds.size(), 2u);
  EXPECT_EQ(o.cmds[0], a);
}

// Random bytes, mostly from the protocol's own alphabet so they get deep
// into the state machine.  Never a crash; every run ends in NEED_MORE or a
// protocol error; the chunking never changes the outcome.
TEST(RespParse, RandomBytes) {
  std::mt19937 rng(20240601);
  const std::string alphabet = "*$\r\n\r\n0123456789-+: \t\"'\\xaZ";
  for (int iter = 0; iter < 3000; iter++) {
    size_t len = std::uniform_int_distribution<size_t>(0, 120)(rng);
    std::string in;
    if (iter % 3 == 0) in = Mb({"SET", "k", "v"});  // a valid start
    for (size_t i = 0; i < len; i++) {
      if (rng() % 4 == 0)
        in += static_cast<char>(rng());
      else
        in += alphabet[rng() % alphabet.size()];
    }
    Outcome whole = Feed(in);
    EXPECT_TRUE(whole.last == NET_RESP_NEED_MORE || whole.last == NET_RESP_EPROTO);
    EXPECT_EQ(whole.err.empty(), whole.last != NET_RESP_EPROTO);
    Outcome split = Feed(in, 9, &rng);
    EXPECT_EQ(split.cmds, whole.cmds) << testing::PrintToString(in);
    EXPECT_EQ(split.last, whole.last) << testing::PrintToString(in);
    EXPECT_EQ(split.err, whole.err) << testing::PrintToString(in);
  }
}

// Commands encoded by net_resp_put_command come back unchanged, however the
// stream is cut.
TEST(RespParse, RandomCommandsRoundTrip) {
  std::mt19937 rng(99);
  for (int iter = 0; iter < 200; iter++) {
    std::vector<Args> want;
    net_buf b = NET_BUF_INIT;
    int ncmd = 1 + static_cast<int>(rng() % 20);
    for (int c = 0; c < ncmd; c++) {
      Args a(1 + rng() % 6);
      for (auto& s : a) {
        s.resize(rng() % 3 == 0 ? rng() % 2000 : rng() % 10);
        for (auto& ch : s) ch = static_cast<char>(rng());
      }
      std::vector<const char*> argv;
      std::vector<size_t> lens;
      for (const auto& s : a) {
        argv.push_back(s.data());
        lens.push_back(s.size());
      }
      ASSERT_EQ(net_resp_put_command(&b, a.size(), argv.data(), lens.data()), NET_RESP_OK);
      want.push_back(a);
    }
    std::string in = Bytes(b);
    net_buf_free(&b);
    EXPECT_EQ(Feed(in).cmds, want);
    EXPECT_EQ(Feed(in, 50, &rng).cmds, want);
  }
}

// ---- buffers and the encoder --------------------------------------------------------

TEST(RespBuf, ReserveAppendConsume) {
  net_buf b = NET_BUF_INIT;
  EXPECT_EQ(net_buf_len(&b), 0u);
  ASSERT_EQ(net_buf_reserve(&b, 10), NET_RESP_OK);
  EXPECT_GE(b.cap, 10u);
  EXPECT_EQ(b.len, 0u);
  ASSERT_EQ(net_buf_append(&b, "hello ", 6), NET_RESP_OK);
  ASSERT_EQ(net_buf_append(&b, "world", 5), NET_RESP_OK);
  ASSERT_EQ(net_buf_append(&b, nullptr, 0), NET_RESP_OK);
  EXPECT_EQ(Bytes(b), "hello world");
  EXPECT_EQ(net_buf_len(&b), 11u);
  net_buf_consume(&b, 6);
  EXPECT_EQ(Bytes(b), "world");
  net_buf_consume(&b, 5);
  EXPECT_EQ(net_buf_len(&b), 0u);
  std::string big(100000, 'z');
  ASSERT_EQ(net_buf_append(&b, big.data(), big.size()), NET_RESP_OK);
  EXPECT_EQ(Bytes(b), big);
  EXPECT_EQ(net_buf_reserve(&b, SIZE_MAX), NET_RESP_ENOMEM);
  EXPECT_EQ(Bytes(b), big);  // unchanged by the failure
  net_buf_free(&b);
  EXPECT_EQ(b.data, nullptr);
  EXPECT_EQ(b.len, 0u);
}

TEST(RespEncode, EveryReplyType) {
  net_buf b = NET_BUF_INIT;
  ASSERT_EQ(net_resp_put_simple(&b, "OK"), NET_RESP_OK);
  ASSERT_EQ(net_resp_put_error(&b, "ERR unknown command 'foo'"), NET_RESP_OK);
  ASSERT_EQ(net_resp_put_int(&b, 0), NET_RESP_OK);
  ASSERT_EQ(net_resp_put_int(&b, -1), NET_RESP_OK);
  ASSERT_EQ(net_resp_put_int(&b, 1000), NET_RESP_OK);
  ASSERT_EQ(net_resp_put_int(&b, LLONG_MAX), NET_RESP_OK);
  ASSERT_EQ(net_resp_put_int(&b, LLONG_MIN), NET_RESP_OK);
  ASSERT_EQ(net_resp_put_bulk(&b, "foo", 3), NET_RESP_OK);
  ASSERT_EQ(net_resp_put_bulk(&b, "", 0), NET_RESP_OK);
  ASSERT_EQ(net_resp_put_bulk(&b, "a\0\r\nb", 5), NET_RESP_OK);
  ASSERT_EQ(net_resp_put_null(&b), NET_RESP_OK);
  ASSERT_EQ(net_resp_put_array(&b, 2), NET_RESP_OK);
  ASSERT_EQ(net_resp_put_array(&b, 0), NET_RESP_OK);
  ASSERT_EQ(net_resp_put_null_array(&b), NET_RESP_OK);
  EXPECT_EQ(Bytes(b),
            "+OK\r\n"
            "-ERR unknown command 'foo'\r\n"
            ":0\r\n:-1\r\n:1000\r\n"
            ":9223372036854775807\r\n:-9223372036854775808\r\n"
            "$3\r\nfoo\r\n$0\r\n\r\n$5\r\na\0\r\nb\r\n"
            "$-1\r\n*2\r\n*0\r\n*-1\r\n"s);
  EXPECT_EQ(net_buf_len(&b), b.len);
  net_buf_free(&b);
}

TEST(RespEncode, LineBreaksInSimpleStringsAndErrors) {
  net_buf b = NET_BUF_INIT;
  ASSERT_EQ(net_resp_put_simple(&b, "a\r\nb"), NET_RESP_OK);
  ASSERT_EQ(net_resp_put_error(&b, "ERR x\ny"), NET_RESP_OK);
  ASSERT_EQ(net_resp_put_errorf(&b, "ERR %s '%d'\r", "Protocol error: bad", 7), NET_RESP_OK);
  EXPECT_EQ(Bytes(b), "+a  b\r\n-ERR x y\r\n-ERR Protocol error: bad '7' \r\n");
  net_buf_free(&b);
}

TEST(RespEncode, Command) {
  net_buf b = NET_BUF_INIT;
  const char* argv[] = {"SET", "k", "a\0b"};
  const size_t lens[] = {3, 1, 3};
  ASSERT_EQ(net_resp_put_command(&b, 3, argv, lens), NET_RESP_OK);
  EXPECT_EQ(Bytes(b), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\na\0b\r\n"s);
  net_buf_free(&b);
}

// ---- the reply reader -------------------------------------------------------------

// A reply as text, e.g. [int(1) bulk("ab") nil]: what tests compare.
std::string Describe(const net_resp_reply* r) {
  switch (r->type) {
    case NET_RESP_T_SIMPLE: return "simple(" + std::string(r->str, r->len) + ")";
    case NET_RESP_T_ERROR: return "error(" + std::string(r->str, r->len) + ")";
    case NET_RESP_T_INTEGER: return "int(" + std::to_string(r->integer) + ")";
    case NET_RESP_T_BULK: return "bulk(" + testing::PrintToString(std::string(r->str, r->len)) + ")";
    case NET_RESP_T_NULL: return "nil";
    case NET_RESP_T_NULL_ARRAY: return "nilarray";
    case NET_RESP_T_ARRAY: {
      std::string s = "[";
      const net_resp_reply* e = r + 1;
      size_t nodes = 1;
      for (size_t i = 0; i < r->nelem; i++) {
        s += (i ? " " : "") + Describe(e);
        nodes += e->span;
        e = net_resp_reply_next(e);
      }
      EXPECT_EQ(nodes, r->span) << "span of " << s;
      return s + "]";
    }
  }
  return "?";
}

struct ReplyOutcome {
  std::vector<std::string> replies;
  int last = NET_RESP_NEED_MORE;
  std::string err;
};

ReplyOutcome FeedReplies(const std::string& in, size_t chunk = 0, std::mt19937* rng = nullptr) {
  Reader r;
  ReplyOutcome o;
  std::string pending;
  size_t fed = 0;
  if (chunk == 0) chunk = std::max<size_t>(in.size(), 1);
  while (fed < in.size() && o.last >= 0) {
    size_t n = rng ? std::uniform_int_distribution<size_t>(1, chunk)(*rng) : chunk;
    n = std::min(n, in.size() - fed);
    pending.append(in, fed, n);
    fed += n;
    for (;;) {
      Copy buf(pending);
      const net_resp_reply* rep = nullptr;
      size_t used = SIZE_MAX;
      int rc = net_resp_read_reply(&r.r, buf.data(), buf.size(), &rep, &used);
      EXPECT_LE(used, buf.size());
      o.last = rc;
      if (rc == NET_RESP_OK) {
        EXPECT_GT(used, 0u);
        o.replies.push_back(Describe(rep));
      } else {
        EXPECT_EQ(used, 0u);
        if (rc < 0) o.err = net_resp_reader_errmsg(&r.r);
      }
      pending.erase(0, used);
      if (rc != NET_RESP_OK) break;
    }
  }
  return o;
}

ReplyOutcome FeedRepliesEveryWay(const std::string& in) {
  ReplyOutcome whole = FeedReplies(in);
  for (size_t chunk : {1, 2, 5, 64}) {
    ReplyOutcome o = FeedReplies(in, chunk);
    EXPECT_EQ(o.replies, whole.replies) << "chunk " << chunk;
    EXPECT_EQ(o.last, whole.last) << "chunk " << chunk;
    EXPECT_EQ(o.err, whole.err) << "chunk " << chunk;
  }
  return whole;
}

void ExpectReplyError(const std::string& in, const std::string& msg) {
  ReplyOutcome o = FeedRepliesEveryWay(in);
  EXPECT_EQ(o.last, NET_RESP_EPROTO) << testing::PrintToString(in);
  EXPECT_EQ(o.err, msg) << testing::PrintToString(in);
}

TEST(RespReply, EveryType) {
  ReplyOutcome o = FeedRepliesEveryWay(
      "+OK\r\n-ERR no such key\r\n:42\r\n:-7\r\n$3\r\nfoo\r\n$0\r\n\r\n$-1\r\n"
      "*0\r\n*-1\r\n$4\r\n\r\n\0x\r\n+\r\n"s);
  EXPECT_EQ(o.replies, (std::vector<std::string>{"simple(OK)", "error(ERR no such key)", "int(42)",
                                                 "int(-7)", "bulk(\"foo\")", "bulk(\"\")", "nil",
                                                 "[]", "nilarray", "bulk(\"\\r\\n\\0x\")",
                                                 "simple()"}));
  EXPECT_EQ(o.last, NET_RESP_NEED_MORE) << o.err;
}

TEST(RespReply, FieldsAndConsumed) {
  Reader r;
  std::string in = "*3\r\n$1\r\na\r\n$-1\r\n:5\r\n+PONG\r\n";
  const net_resp_reply* rep = nullptr;
  size_t used = 0;
  ASSERT_EQ(net_resp_read_reply(&r.r, in.data(), in.size(), &rep, &used), NET_RESP_OK);
  EXPECT_EQ(used, in.size() - 7);
  ASSERT_EQ(rep->type, NET_RESP_T_ARRAY);
  EXPECT_EQ(rep->nelem, 3u);
  EXPECT_EQ(rep->span, 4u);
  // An array of scalars: the elements are rep[1..nelem].
  EXPECT_EQ(rep[1].type, NET_RESP_T_BULK);
  EXPECT_EQ(rep[1].str, in.data() + 8);  // not copied
  EXPECT_EQ(rep[1].len, 1u);
  EXPECT_EQ(rep[2].type, NET_RESP_T_NULL);
  EXPECT_EQ(rep[3].type, NET_RESP_T_INTEGER);
  EXPECT_EQ(rep[3].integer, 5);
  ASSERT_EQ(net_resp_read_reply(&r.r, in.data() + used, in.size() - used, &rep, &used), NET_RESP_OK);
  EXPECT_EQ(Describe(rep), "simple(PONG)");
  EXPECT_EQ(used, 7u);
}

TEST(RespReply, NestedArrays) {
  ReplyOutcome o = FeedRepliesEveryWay(
      "*2\r\n*3\r\n:1\r\n:2\r\n:3\r\n*2\r\n+Hello\r\n-World\r\n"
      "*3\r\n*1\r\n*1\r\n*0\r\n$1\r\nx\r\n*2\r\n*-1\r\n*1\r\n$-1\r\n");
  EXPECT_EQ(o.replies,
            (std::vector<std::string>{"[[int(1) int(2) int(3)] [simple(Hello) error(World)]]",
                                      "[[[[]]] bulk(\"x\") [nilarray [nil]]]"}));
  EXPECT_EQ(o.last, NET_RESP_NEED_MORE);
}

TEST(RespReply, EveryPrefixNeedsMore) {
  std::string in = "*2\r\n*3\r\n:1\r\n$2\r\nab\r\n+x\r\n-e\r\n";
  for (size_t k = 0; k < in.size(); k++) {
    Reader r;
    const net_resp_reply* rep = nullptr;
    size_t used = 1;
    EXPECT_EQ(net_resp_read_reply(&r.r, in.data(), k, &rep, &used), NET_RESP_NEED_MORE) << k;
    EXPECT_EQ(used, 0u);
  }
}

TEST(RespReply, DepthLimit) {
  std::string ok, deep;
  for (int i = 0; i < NET_RESP_MAX_DEPTH; i++) ok += "*1\r\n";
  ok += ":1\r\n";
  EXPECT_EQ(FeedRepliesEveryWay(ok).replies.size(), 1u);
  for (int i = 0; i <= NET_RESP_MAX_DEPTH; i++) deep += "*1\r\n";
  deep += ":1\r\n";
  ExpectReplyError(deep, "Protocol error: reply nested too deeply");
  // Empty and null arrays open nothing, so they may sit at the last level.
  std::string edge;
  for (int i = 0; i < NET_RESP_MAX_DEPTH; i++) edge += "*2\r\n";
  edge += "*0\r\n*-1\r\n";
  for (int i = 1; i < NET_RESP_MAX_DEPTH; i++) edge += ":0\r\n";
  EXPECT_EQ(FeedRepliesEveryWay(edge).replies.size(), 1u);
}

TEST(RespReply, Malformed) {
  ExpectReplyError("!oops\r\n", "Protocol error: unexpected reply type byte '!'");
  ExpectReplyError("_\r\n", "Protocol error: unexpected reply type byte '_'");  // RESP3 null
  ExpectReplyError("*1\r\n\n", "Protocol error: unexpected reply type byte '\\x0a'");
  for (const char* s : {":\r\n", ":abc\r\n", ":1.5\r\n", ":99999999999999999999\r\n", ":01\r\n",
                        ":1\rx", ":1\n"})
    ExpectReplyError(s, "Protocol error: invalid integer");
  for (const char* s : {"$-2\r\n", "$536870913\r\n", "$10737418240\r\n", "$x\r\n", "$\r\n",
                        "$3\nfoo\n"})
    ExpectReplyError(s, "Protocol error: invalid bulk length");
  for (const char* s : {"*-2\r\n", "*2147483648\r\n", "*99999999999999999999999\r\n", "*a\r\n"})
    ExpectReplyError(s, "Protocol error: invalid multibulk length");
  ExpectReplyError("$3\r\nfooXY", "Protocol error: bulk string not terminated by CRLF");
  ExpectReplyError("$3\r\nfoo\rX", "Protocol error: bulk string not terminated by CRLF");
  ExpectReplyError("+OK\rX", "Protocol error: expected CRLF");
  // Long lines: whole and in 4 KiB reads (byte by byte would be slow).
  const std::string line(NET_RESP_MAX_LINE, 'a');
  for (size_t chunk : {0, 4096}) {
    ReplyOutcome o = FeedReplies("+" + line + "a", chunk);
    EXPECT_EQ(o.err, "Protocol error: line too long");
    o = FeedReplies("-" + line + "a\r\n", chunk);
    EXPECT_EQ(o.err, "Protocol error: line too long");
    o = FeedReplies("+" + line + "\r\n", chunk);
    EXPECT_EQ(o.replies.size(), 1u) << o.err;
    EXPECT_EQ(FeedReplies("+" + line, chunk).last, NET_RESP_NEED_MORE);
  }
}

TEST(RespReply, BoundedMemoryForHugeClaims) {
  {
    Reader r;
    const net_resp_reply* rep = nullptr;
    size_t used = 0;
    std::string in = "*2147483647\r\n:1\r\n:2\r\n";
    EXPECT_EQ(net_resp_read_reply(&r.r, in.data(), in.size(), &rep, &used), NET_RESP_NEED_MORE);
    EXPECT_LE(r.r.cap, 16u);  // a peek at the private state
    EXPECT_EQ(net_resp_reader_hint(&r.r), 0u);
  }
  {
    Reader r;
    const net_resp_reply* rep = nullptr;
    size_t used = 0;
    std::string in = "$536870912\r\nabc";
    EXPECT_EQ(net_resp_read_reply(&r.r, in.data(), in.size(), &rep, &used), NET_RESP_NEED_MORE);
    EXPECT_EQ(net_resp_reader_hint(&r.r), size_t{NET_RESP_PREALLOC_MAX});
    in = "$10\r\nabc";
    Reader r2;
    EXPECT_EQ(net_resp_read_reply(&r2.r, in.data(), in.size(), &rep, &used), NET_RESP_NEED_MORE);
    EXPECT_EQ(net_resp_reader_hint(&r2.r), 9u);
  }
}

TEST(RespReply, ErrorsAreSticky) {
  Reader r;
  const net_resp_reply* rep = nullptr;
  size_t used = 0;
  EXPECT_EQ(net_resp_read_reply(&r.r, "?\r\n", 3, &rep, &used), NET_RESP_EPROTO);
  EXPECT_EQ(net_resp_read_reply(&r.r, "+OK\r\n", 5, &rep, &used), NET_RESP_EPROTO);
  EXPECT_EQ(used, 0u);
}

// A random reply, encoded with the encoder, and its description.
void RandomReply(std::mt19937& rng, int depth, net_buf* b, std::string* desc) {
  int kind = static_cast<int>(rng() % (depth < 4 ? 8 : 6));
  switch (kind) {
    case 0: {
      std::string s(rng() % 20, 'a');
      for (auto& c : s) c = static_cast<char>('a' + rng() % 26);
      ASSERT_EQ(net_resp_put_simple(b, s.c_str()), NET_RESP_OK);
      *desc = "simple(" + s + ")";
      break;
    }
    case 1:
      ASSERT_EQ(net_resp_put_error(b, "ERR x"), NET_RESP_OK);
      *desc = "error(ERR x)";
      break;
    case 2: {
      long long v = static_cast<long long>((static_cast<unsigned long long>(rng()) << 32) | rng());
      ASSERT_EQ(net_resp_put_int(b, v), NET_RESP_OK);
      *desc = "int(" + std::to_string(v) + ")";
      break;
    }
    case 3: {
      std::string s(rng() % 3 == 0 ? rng() % 3000 : rng() % 8, '\0');
      for (auto& c : s) c = static_cast<char>(rng());
      ASSERT_EQ(net_resp_put_bulk(b, s.data(), s.size()), NET_RESP_OK);
      *desc = "bulk(" + testing::PrintToString(s) + ")";
      break;
    }
    case 4:
      ASSERT_EQ(net_resp_put_null(b), NET_RESP_OK);
      *desc = "nil";
      break;
    case 5:
      ASSERT_EQ(net_resp_put_null_array(b), NET_RESP_OK);
      *desc = "nilarray";
      break;
    default: {
      size_t n = rng() % 6;
      ASSERT_EQ(net_resp_put_array(b, n), NET_RESP_OK);
      *desc = "[";
      for (size_t i = 0; i < n; i++) {
        std::string d;
        RandomReply(rng, depth + 1, b, &d);
        *desc += (i ? " " : "") + d;
      }
      *desc += "]";
    }
  }
}

TEST(RespReply, RandomRepliesRoundTrip) {
  std::mt19937 rng(4242);
  for (int iter = 0; iter < 300; iter++) {
    net_buf b = NET_BUF_INIT;
    std::vector<std::string> want;
    int n = 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < n; i++) {
      std::string d;
      RandomReply(rng, 0, &b, &d);
      want.push_back(d);
    }
    std::string in = Bytes(b);
    net_buf_free(&b);
    ReplyOutcome whole = FeedReplies(in);
    EXPECT_EQ(whole.replies, want);
    EXPECT_EQ(whole.last, NET_RESP_NEED_MORE) << whole.err;
    EXPECT_EQ(FeedReplies(in, 40, &rng).replies, want);
    if (iter % 20 == 0) {
      EXPECT_EQ(FeedReplies(in, 1).replies, want);
    }
  }
}

TEST(RespReply, RandomBytes) {
  std::mt19937 rng(777);
  const std::string alphabet = "*$+-:\r\n\r\n0123456789-1 abc";
  for (int iter = 0; iter < 3000; iter++) {
    size_t len = std::uniform_int_distribution<size_t>(0, 100)(rng);
    std::string in;
    for (size_t i = 0; i < len; i++)
      in += rng() % 4 == 0 ? static_cast<char>(rng()) : alphabet[rng() % alphabet.size()];
    ReplyOutcome whole = FeedReplies(in);
    EXPECT_TRUE(whole.last == NET_RESP_NEED_MORE || whole.last == NET_RESP_EPROTO);
    ReplyOutcome split = FeedReplies(in, 7, &rng);
    EXPECT_EQ(split.replies, whole.replies) << testing::PrintToString(in);
    EXPECT_EQ(split.last, whole.last) << testing::PrintToString(in);
    EXPECT_EQ(split.err, whole.err) << testing::PrintToString(in);
  }
}

}  // namespace

// net_resp_peek_command: a server decides with it whether the next buffered
// command may join a write batch.  Whatever it calls complete, the parser
// must accept, or a batch would be dropped by the protocol error (as
// writes were before a malformed one sent in the same packet).
TEST(RespPeek, CompleteOnlyWhereTheParserAccepts) {
  struct Case {
    std::string in;
    bool complete;
  };
  const std::vector<Case> cases = {
      {"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n", true},
      {"*1\r\n$0\r\n\r\n", true},
      {"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*1\r\n$4\r\nPING\r\n", true},
      {"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r", false},   // incomplete
      {"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$01\r\nv\r\n", false},  // leading zero
      {"*03\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n", false},
      {"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nvXX", false},    // no CRLF after the bulk
      {"*1\r\n$-1\r\n", false},
      {"*0\r\n", false},
      {"*-1\r\n", false},
      {"*1048577\r\n", false},
      {"SET k v\r\n", false},  // inline
      {"", false},
  };
  for (const auto& k : cases) {
    SCOPED_TRACE(testing::PrintToString(k.in));
    const char* name = nullptr;
    size_t namelen = 0;
    EXPECT_EQ(net_resp_peek_command(k.in.data(), k.in.size(), &name, &namelen), k.complete ? 1 : 0);
    if (!k.complete) continue;
    Parser p;
    net_resp_cmd cmd;
    size_t used = 0;
    ASSERT_EQ(net_resp_parse(&p.p, k.in.data(), k.in.size(), &cmd, &used), NET_RESP_OK);
    EXPECT_EQ(cmd.argv[0], name);
    EXPECT_EQ(cmd.argvlen[0], namelen);
  }
}

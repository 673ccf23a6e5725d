// strops_test.cc - the value arithmetic of the string and bit commands
// (net/strops.h), without a server: GETRANGE's ranges, BITCOUNT and BITPOS
// (bytes and bits, negative indexes, padding), BITOP, bitfields with every
// overflow rule, INCRBYFLOAT's parsing and formatting, and LCS.  The
// expected values are what redis-server 7.0.15 answers to the same
// commands (checked by hand with redis-cli).
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "strops.h"

namespace {

std::string Range(const std::string& s, int64_t a, int64_t b) {
  size_t from = 0, n = 0;
  net_str_range(a, b, s.size(), &from, &n);
  return s.substr(from, n);
}

const uint8_t* U(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

net_bitrange Bytes(int64_t s, int64_t e) { return net_bitrange{true, true, false, s, e}; }
net_bitrange Bits(int64_t s, int64_t e) { return net_bitrange{true, true, true, s, e}; }
net_bitrange From(int64_t s) { return net_bitrange{true, false, false, s, 0}; }

TEST(StrOps, GetRangeAsRedis) {
  const std::string s = "Hello World";
  EXPECT_EQ(Range(s, 0, 3), "Hell");
  EXPECT_EQ(Range(s, 0, -1), "Hello World");
  EXPECT_EQ(Range(s, -4, -1), "orld");
  EXPECT_EQ(Range(s, 5, 3), "");
  EXPECT_EQ(Range(s, 5, 5000), " World");
  EXPECT_EQ(Range(s, -5000, 10000), "Hello World");
  EXPECT_EQ(Range(s, -1, -5), "");             // crossed negatives: empty
  EXPECT_EQ(Range(s, -100, -50), "H");         // both clipped to 0
  EXPECT_EQ(Range(s, 0, 4294967297LL), s);     // Redis issue #1844
  EXPECT_EQ(Range(s, INT64_MIN, INT64_MAX), s);
  EXPECT_EQ(Range(s, INT64_MAX, INT64_MAX), "");
  EXPECT_EQ(Range("", 0, -1), "");
  EXPECT_EQ(Range("1234", 3, 5000), "4");
}

TEST(StrOps, GetRangeMatchesAReferenceOnRandomInput) {
  // Tcl's [string range] after Redis's own conversion, as the suite's
  // GETRANGE fuzzing test checks.
  std::mt19937 rng(7);
  for (int round = 0; round < 2000; round++) {
    std::string s(rng() % 20, 'x');
    for (auto& ch : s) ch = static_cast<char>('a' + rng() % 26);
    int64_t a = static_cast<int64_t>(rng() % 60) - 30, b = static_cast<int64_t>(rng() % 60) - 30;
    int64_t l = static_cast<int64_t>(s.size());
    std::string want;
    if (!(a < 0 && b < 0 && a > b)) {
      int64_t x = a < 0 ? std::max<int64_t>(0, l + a) : a;
      int64_t y = b < 0 ? std::max<int64_t>(0, l + b) : b;
      if (y >= l) y = l - 1;
      if (l > 0 && x <= y) want = s.substr(x, y - x + 1);
    }
    ASSERT_EQ(Range(s, a, b), want) << s << " " << a << " " << b;
  }
}

TEST(StrOps, BitCountBytesAndBits) {
  const std::string s = "foobar";
  EXPECT_EQ(net_str_bitcount(U(s), s.size(), nullptr), 26u);
  auto r = Bytes(0, 0);
  EXPECT_EQ(net_str_bitcount(U(s), s.size(), &r), 4u);
  r = Bytes(1, 1);
  EXPECT_EQ(net_str_bitcount(U(s), s.size(), &r), 6u);
  r = Bytes(1, 1);
  r.bits = true;
  EXPECT_EQ(net_str_bitcount(U(s), s.size(), &r), 1u);
  r = Bits(5, 30);
  EXPECT_EQ(net_str_bitcount(U(s), s.size(), &r), 17u);
  r = Bytes(-1, -2);  // crossed negatives
  EXPECT_EQ(net_str_bitcount(U(s), s.size(), &r), 0u);
  r = Bytes(-100, -50);  // both clip to byte 0: not crossed, counted
  EXPECT_EQ(net_str_bitcount(U(s), s.size(), &r), 4u);
  r = Bytes(0, 1000);
  EXPECT_EQ(net_str_bitcount(U(s), s.size(), &r), 26u);
  r = Bytes(0, -1);
  EXPECT_EQ(net_str_bitcount(U(""), 0, &r), 0u);
}

TEST(StrOps, BitCountMatchesOneBitAtATime) {
  std::mt19937 rng(11);
  for (int round = 0; round < 500; round++) {
    std::string s(rng() % 40, '\0');
    for (auto& ch : s) ch = static_cast<char>(rng());
    int64_t nbits = static_cast<int64_t>(s.size()) * 8;
    int64_t a = static_cast<int64_t>(rng() % 400) - 100, b = static_cast<int64_t>(rng() % 400) - 100;
    auto r = Bits(a, b);
    int64_t x = a < 0 ? std::max<int64_t>(0, nbits + a) : a;
    int64_t y = b < 0 ? std::max<int64_t>(0, nbits + b) : b;
    if (y >= nbits) y = nbits - 1;
    uint64_t want = 0;
    if (!(a < 0 && b < 0 && a > b))
      for (int64_t i = x; i <= y; i++) want += (U(s)[i / 8] >> (7 - i % 8)) & 1;
    ASSERT_EQ(net_str_bitcount(U(s), s.size(), &r), want) << a << " " << b;
  }
}

TEST(StrOps, BitPosAsRedis) {
  const std::string ff("\xff\xf0\x00", 3);
  EXPECT_EQ(net_str_bitpos(U(ff), 3, 0, nullptr), 12);
  const std::string ones("\x00\xff\xf0", 3);
  EXPECT_EQ(net_str_bitpos(U(ones), 3, 1, nullptr), 8);
  auto r = From(2);
  EXPECT_EQ(net_str_bitpos(U(ones), 3, 1, &r), 16);
  const std::string none("\x00\x00\x00", 3);
  EXPECT_EQ(net_str_bitpos(U(none), 3, 1, nullptr), -1);
  // All ones: a 0 is the first bit after the string, unless an end was
  // given.
  const std::string all("\xff\xff\xff", 3);
  EXPECT_EQ(net_str_bitpos(U(all), 3, 0, nullptr), 24);
  r = From(1);
  EXPECT_EQ(net_str_bitpos(U(all), 3, 0, &r), 24);
  r = Bytes(0, -1);
  EXPECT_EQ(net_str_bitpos(U(all), 3, 0, &r), -1);
  // Bit ranges.
  const std::string x("\x00\xff\x00", 3);
  r = Bits(7, 15);
  EXPECT_EQ(net_str_bitpos(U(x), 3, 1, &r), 8);
  r = Bits(9, 12);
  EXPECT_EQ(net_str_bitpos(U(x), 3, 0, &r), -1);
  r = Bits(9, 17);
  EXPECT_EQ(net_str_bitpos(U(x), 3, 0, &r), 16);
  r = Bits(3, 5);
  EXPECT_EQ(net_str_bitpos(U(x), 3, 0, &r), 3);
  // Empty ranges and strings.
  r = Bytes(2, 1);
  EXPECT_EQ(net_str_bitpos(U(x), 3, 1, &r), -1);
  EXPECT_EQ(net_str_bitpos(U(""), 0, 0, nullptr), -1);
  // BITPOS has no "crossed negatives" rule: -5 and -10 both clip to 0.
  r = Bytes(-5, -10);
  EXPECT_EQ(net_str_bitpos(U(ones), 3, 0, &r), 0);
}

TEST(StrOps, BitPosSkipsWholeWords) {
  std::string s(1000, '\0');
  s[777] = 1;
  EXPECT_EQ(net_str_bitpos(U(s), s.size(), 1, nullptr), 777 * 8 + 7);
  std::string t(1000, '\xff');
  t[999] = '\xfe';
  EXPECT_EQ(net_str_bitpos(U(t), t.size(), 0, nullptr), 999 * 8 + 7);
  auto r = Bits(8, 999 * 8 + 6);
  EXPECT_EQ(net_str_bitpos(U(t), t.size(), 0, &r), -1);
}

std::string BitOp(net_bitop op, const std::vector<std::string>& srcs) {
  std::vector<const uint8_t*> p;
  std::vector<size_t> l;
  size_t maxlen = 0;
  for (const auto& s : srcs) {
    p.push_back(U(s));
    l.push_back(s.size());
    maxlen = std::max(maxlen, s.size());
  }
  std::string out(maxlen, '?');
  net_str_bitop(op, p.data(), l.data(), p.size(), reinterpret_cast<uint8_t*>(&out[0]), maxlen);
  return out;
}

TEST(StrOps, BitOpPadsShortSourcesWithZeros) {
  EXPECT_EQ(BitOp(NET_BITOP_AND, {"\xff\xff", "\x0f"}), std::string("\x0f\x00", 2));
  EXPECT_EQ(BitOp(NET_BITOP_OR, {"\xf0", "\x0f\x01"}), "\xff\x01");
  EXPECT_EQ(BitOp(NET_BITOP_XOR, {"\xff", "\x0f", "\x01"}), "\xf1");
  EXPECT_EQ(BitOp(NET_BITOP_NOT, {std::string("\x00\xf0", 2)}), "\xff\x0f");
  // The word-at-a-time part agrees with a byte-at-a-time reference.
  std::mt19937 rng(3);
  for (int round = 0; round < 50; round++) {
    std::vector<std::string> srcs(1 + rng() % 4);
    for (auto& s : srcs) {
      s.resize(rng() % 70);
      for (auto& ch : s) ch = static_cast<char>(rng());
    }
    for (net_bitop op : {NET_BITOP_AND, NET_BITOP_OR, NET_BITOP_XOR, NET_BITOP_NOT}) {
      std::vector<std::string> in = op == NET_BITOP_NOT ? std::vector<std::string>{srcs[0]} : srcs;
      size_t maxlen = 0;
      for (const auto& s : in) maxlen = std::max(maxlen, s.size());
      std::string want(maxlen, '\0');
      for (size_t j = 0; j < maxlen; j++) {
        uint8_t acc = j < in[0].size() ? U(in[0])[j] : 0;
        if (op == NET_BITOP_NOT) acc = static_cast<uint8_t>(~acc);
        for (size_t i = 1; i < in.size(); i++) {
          uint8_t b = j < in[i].size() ? U(in[i])[j] : 0;
          acc = op == NET_BITOP_AND ? acc & b : op == NET_BITOP_OR ? acc | b : acc ^ b;
        }
        want[j] = static_cast<char>(acc);
      }
      ASSERT_EQ(BitOp(op, in), want);
    }
  }
}

TEST(StrOps, GetBit) {
  const std::string s("\x80\x01", 2);
  EXPECT_EQ(net_str_getbit(U(s), 2, 0), 1);
  EXPECT_EQ(net_str_getbit(U(s), 2, 1), 0);
  EXPECT_EQ(net_str_getbit(U(s), 2, 15), 1);
  EXPECT_EQ(net_str_getbit(U(s), 2, 16), 0);
  EXPECT_EQ(net_str_getbit(U(s), 2, UINT64_C(1) << 40), 0);
}

TEST(StrOps, BitfieldGetAndPut) {
  uint8_t buf[9] = {0};
  net_bftype u8{false, 8}, i8{true, 8}, i5{true, 5}, u63{false, 63}, i64{true, 64};
  net_str_bf_put(buf, 0, u8, 255);
  EXPECT_EQ(net_str_bf_get(buf, 9, 0, u8), 255);
  EXPECT_EQ(net_str_bf_get(buf, 9, 0, i8), -1);
  EXPECT_EQ(net_str_bf_get(buf, 9, 4, u8), 0xf0);
  net_str_bf_put(buf, 3, i5, -16);  // 10000 at bits 3..7
  EXPECT_EQ(buf[0], 0xf0);
  EXPECT_EQ(net_str_bf_get(buf, 9, 3, i5), -16);
  memset(buf, 0, sizeof buf);
  net_str_bf_put(buf, 1, i64, INT64_MIN);
  EXPECT_EQ(net_str_bf_get(buf, 9, 1, i64), INT64_MIN);
  EXPECT_EQ(buf[0], 0x40);
  net_str_bf_put(buf, 5, u63, INT64_MAX);
  EXPECT_EQ(net_str_bf_get(buf, 9, 5, u63), INT64_MAX);
  // Past the end reads as zeros.
  EXPECT_EQ(net_str_bf_get(buf, 1, 4, u8), buf[0] << 4 & 0xf0);
}

int64_t Apply(net_bftype t, net_bfow ow, bool incr, int64_t old, int64_t arg, bool* ok = nullptr) {
  int64_t out = 12345;
  bool r = net_str_bf_apply(t, ow, incr, old, arg, &out);
  if (ok) *ok = r;
  return r ? out : -999999;
}

TEST(StrOps, BitfieldOverflowRulesAsRedis) {
  net_bftype u2{false, 2}, i8{true, 8}, u8{false, 8}, i64{true, 64}, u63{false, 63};
  // BITFIELD k SET u2 0 5 (wrap) -> stores 1; SAT -> 3; FAIL -> nil.
  EXPECT_EQ(Apply(u2, NET_BFOW_WRAP, false, 0, 5), 1);
  EXPECT_EQ(Apply(u2, NET_BFOW_SAT, false, 0, 5), 3);
  bool ok = true;
  Apply(u2, NET_BFOW_FAIL, false, 0, 5, &ok);
  EXPECT_FALSE(ok);
  // A negative SET to an unsigned field: out of range, SAT gives max.
  EXPECT_EQ(Apply(u8, NET_BFOW_SAT, false, 0, -1), 255);
  EXPECT_EQ(Apply(u8, NET_BFOW_WRAP, false, 0, -1), 255);
  EXPECT_EQ(Apply(u8, NET_BFOW_WRAP, false, 0, -2), 254);
  // INCRBY.
  EXPECT_EQ(Apply(i8, NET_BFOW_WRAP, true, 127, 1), -128);
  EXPECT_EQ(Apply(i8, NET_BFOW_SAT, true, 127, 1), 127);
  EXPECT_EQ(Apply(i8, NET_BFOW_SAT, true, -128, -1), -128);
  EXPECT_EQ(Apply(i8, NET_BFOW_WRAP, true, -128, -1), 127);
  EXPECT_EQ(Apply(u8, NET_BFOW_WRAP, true, 0, -1), 255);
  EXPECT_EQ(Apply(u8, NET_BFOW_SAT, true, 0, -1), 0);
  EXPECT_EQ(Apply(u8, NET_BFOW_SAT, true, 200, 100), 255);
  Apply(u8, NET_BFOW_FAIL, true, 200, 100, &ok);
  EXPECT_FALSE(ok);
  EXPECT_EQ(Apply(u8, NET_BFOW_FAIL, true, 200, 55, &ok), 255);
  EXPECT_TRUE(ok);
  // The widest fields.
  EXPECT_EQ(Apply(i64, NET_BFOW_WRAP, true, INT64_MAX, 1), INT64_MIN);
  EXPECT_EQ(Apply(i64, NET_BFOW_SAT, true, INT64_MAX, INT64_MAX), INT64_MAX);
  EXPECT_EQ(Apply(i64, NET_BFOW_SAT, true, INT64_MIN, INT64_MIN), INT64_MIN);
  EXPECT_EQ(Apply(i64, NET_BFOW_WRAP, true, INT64_MIN, INT64_MIN), 0);
  EXPECT_EQ(Apply(u63, NET_BFOW_WRAP, true, INT64_MAX, 1), 0);
  EXPECT_EQ(Apply(u63, NET_BFOW_SAT, true, INT64_MAX, INT64_MAX), INT64_MAX);
  EXPECT_EQ(Apply(u63, NET_BFOW_SAT, false, 0, INT64_MIN), INT64_MAX);
  EXPECT_EQ(Apply(i64, NET_BFOW_WRAP, false, 0, INT64_MIN), INT64_MIN);
}

std::string Fmt(long double v) {
  char buf[NET_STR_LD_CHARS];
  size_t n = net_str_format_ld(v, buf);
  return std::string(buf, n);
}

bool Parse(const std::string& s, long double* v) { return net_str_parse_ld(s.data(), s.size(), v); }

TEST(StrOps, FloatsAsRedis) {
  long double v = 0;
  long double w = 0;
  ASSERT_TRUE(Parse("10.5", &v));
  ASSERT_TRUE(Parse("0.1", &w));
  EXPECT_EQ(Fmt(v + w), "10.6");
  ASSERT_TRUE(Parse("3", &v));
  ASSERT_TRUE(Parse("5.0e3", &w));
  EXPECT_EQ(Fmt(v + w), "5003");
  EXPECT_EQ(Fmt(5003.0L - 5003.0L), "0");
  EXPECT_EQ(Fmt(-0.0L), "0");
  ASSERT_TRUE(Parse("0x10", &w));
  EXPECT_EQ(Fmt(w), "16");
  EXPECT_EQ(Fmt(-1.5L), "-1.5");
  EXPECT_EQ(Fmt(1e300L).substr(0, 20), "10000000000000000000");
  EXPECT_EQ(Fmt(1e300L).size(), 301u);
  EXPECT_EQ(Fmt(HUGE_VALL), "inf");
  // Accepted as Redis's string2ld accepts: a denormal-free tiny number.
  EXPECT_TRUE(Parse("1e-400", &w));
  EXPECT_TRUE(Parse("inf", &w));  // INCRBYFLOAT then refuses the result
  // Refused.
  EXPECT_FALSE(Parse(" 1", &w));
  EXPECT_FALSE(Parse("1 ", &w));
  EXPECT_FALSE(Parse("", &w));
  EXPECT_FALSE(Parse("abc", &w));
  EXPECT_FALSE(Parse("nan", &w));
  EXPECT_FALSE(Parse("1e-5000", &w));
  EXPECT_FALSE(Parse("1e5000", &w));
  EXPECT_FALSE(Parse(std::string("1\0", 2), &w));
  EXPECT_FALSE(Parse(std::string(NET_STR_LD_CHARS, '1'), &w));
}

std::string LcsStr(const std::string& a, const std::string& b) {
  net_lcs l;
  EXPECT_EQ(net_str_lcs(U(a), a.size(), U(b), b.size(), true, false, 0, &l), NET_LCS_OK);
  std::string s(l.str, l.len);
  net_str_lcs_free(&l);
  return s;
}

TEST(StrOps, LcsAsRedisDocs) {
  // The examples of redis.io's LCS page.
  EXPECT_EQ(LcsStr("ohmytext", "mynewtext"), "mytext");
  net_lcs l;
  ASSERT_EQ(net_str_lcs(U("ohmytext"), 8, U("mynewtext"), 9, false, false, 0, &l), NET_LCS_OK);
  EXPECT_EQ(l.len, 6u);
  net_str_lcs_free(&l);
  ASSERT_EQ(net_str_lcs(U("ohmytext"), 8, U("mynewtext"), 9, false, true, 0, &l), NET_LCS_OK);
  EXPECT_EQ(l.len, 6u);
  ASSERT_EQ(l.nmatches, 2u);
  EXPECT_EQ(l.matches[0].a0, 4u);
  EXPECT_EQ(l.matches[0].a1, 7u);
  EXPECT_EQ(l.matches[0].b0, 5u);
  EXPECT_EQ(l.matches[0].b1, 8u);
  EXPECT_EQ(l.matches[1].a0, 2u);
  EXPECT_EQ(l.matches[1].a1, 3u);
  EXPECT_EQ(l.matches[1].b0, 0u);
  EXPECT_EQ(l.matches[1].b1, 1u);
  net_str_lcs_free(&l);
  ASSERT_EQ(net_str_lcs(U("ohmytext"), 8, U("mynewtext"), 9, false, true, 4, &l), NET_LCS_OK);
  ASSERT_EQ(l.nmatches, 1u);
  EXPECT_EQ(l.matches[0].a0, 4u);
  net_str_lcs_free(&l);
  EXPECT_EQ(LcsStr("", "abc"), "");
  EXPECT_EQ(LcsStr("abc", "abc"), "abc");
}

TEST(StrOps, LcsLengthOnlyAgreesWithTheTable) {
  std::mt19937 rng(5);
  for (int round = 0; round < 200; round++) {
    std::string a(rng() % 30, 'a'), b(rng() % 30, 'a');
    for (auto& ch : a) ch = static_cast<char>('a' + rng() % 3);
    for (auto& ch : b) ch = static_cast<char>('a' + rng() % 3);
    net_lcs x, y;
    ASSERT_EQ(net_str_lcs(U(a), a.size(), U(b), b.size(), false, false, 0, &x), NET_LCS_OK);
    ASSERT_EQ(net_str_lcs(U(a), a.size(), U(b), b.size(), true, true, 0, &y), NET_LCS_OK);
    ASSERT_EQ(x.len, y.len);
    // The runs add up to the subsequence, in order from the end.
    uint64_t sum = 0;
    for (size_t i = 0; i < y.nmatches; i++) {
      const auto& m = y.matches[i];
      ASSERT_EQ(a.substr(m.a0, m.a1 - m.a0 + 1), b.substr(m.b0, m.b1 - m.b0 + 1));
      sum += m.a1 - m.a0 + 1;
    }
    EXPECT_EQ(sum, y.len);
    net_str_lcs_free(&x);
    net_str_lcs_free(&y);
  }
}

TEST(StrOps, LcsRefusesATableOverTheLimit) {
  // (alen+1)*(blen+1) 4-byte cells over 512 MiB: refused before any
  // allocation, in every mode, as Redis refuses it.
  static const uint8_t b[1] = {'x'};
  net_lcs l;
  size_t alen = (NET_STR_MAX / 4) / 2;  // (alen+1)*2 cells: just over
  EXPECT_EQ(net_str_lcs(b, alen, b, 1, true, false, 0, &l), NET_LCS_ETOOBIG);
  EXPECT_EQ(net_str_lcs(b, alen, b, 1, false, false, 0, &l), NET_LCS_ETOOBIG);
  EXPECT_EQ(net_str_lcs(b, SIZE_MAX / 2, b, SIZE_MAX / 2, false, true, 0, &l), NET_LCS_ETOOBIG);
}

}  // namespace

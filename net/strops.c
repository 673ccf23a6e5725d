/* strops.c - the value arithmetic of the string and bit commands: ranges,
 * bit counts and searches, BITOP, bitfields, INCRBYFLOAT's numbers and LCS.
 * Pure functions (contracts in strops.h), run by whichever thread calls
 * them: a worker for a read, the engine's writer inside an update callback. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strops.h"

void net_str_range(int64_t start, int64_t end, size_t len, size_t *from,
		   size_t *n)
{
	int64_t l = (int64_t)len; /* at most NET_STR_MAX: no overflow below */

	*from = 0;
	*n = 0;
	/* Both from the end and crossed: empty, before clipping could turn
	 * them into the range 0..0. */
	if (start < 0 && end < 0 && start > end)
		return;
	if (start < 0)
		start += l;
	if (end < 0)
		end += l;
	if (start < 0)
		start = 0;
	if (end < 0)
		end = 0;
	if (end >= l)
		end = l - 1;
	if (l == 0 || start > end)
		return;
	*from = (size_t)start;
	*n = (size_t)(end - start + 1);
}

static inline int bit_at(const uint8_t *p, uint64_t i)
{
	return (p[i >> 3] >> (7 - (i & 7))) & 1;
}

/* r's bits of a len-byte string as [*lo, *hi]; false when empty.  An end
 * not given is the string's end. */
static bool bit_span(size_t len, const struct net_bitrange *r, uint64_t *lo,
		     uint64_t *hi)
{
	int64_t tot = r->bits ? (int64_t)len * 8 : (int64_t)len;
	int64_t s = r->has_start ? r->start : 0;
	int64_t e = r->has_end ? r->end : tot - 1;

	if (s < 0)
		s += tot;
	if (e < 0)
		e += tot;
	if (s < 0)
		s = 0;
	if (e < 0)
		e = 0;
	if (e >= tot)
		e = tot - 1;
	if (s > e)
		return false;
	*lo = r->bits ? (uint64_t)s : (uint64_t)s * 8;
	*hi = r->bits ? (uint64_t)e : (uint64_t)e * 8 + 7;
	return true;
}

/* Set bits of p in bits lo..hi: a word at a time where the range allows. */
static uint64_t count_bits(const uint8_t *p, uint64_t lo, uint64_t hi)
{
	uint64_t n = 0, i = lo, w;

	while (i <= hi && (i & 7))
		n += (uint64_t)bit_at(p, i++);
	for (; i <= hi && hi - i >= 63; i += 64) {
		memcpy(&w, p + (i >> 3), sizeof w);
		n += (uint64_t)__builtin_popcountll(w);
	}
	for (; i <= hi && hi - i >= 7; i += 8)
		n += (uint64_t)__builtin_popcount(p[i >> 3]);
	while (i <= hi)
		n += (uint64_t)bit_at(p, i++);
	return n;
}

uint64_t net_str_bitcount(const uint8_t *p, size_t len,
			  const struct net_bitrange *r)
{
	struct net_bitrange all = { false, false, false, 0, 0 };
	uint64_t lo, hi;

	if (!r)
		r = &all;
	else if (r->has_start && r->has_end && r->start < 0 && r->end < 0 &&
		 r->start > r->end)
		return 0;
	if (!bit_span(len, r, &lo, &hi))
		return 0;
	return count_bits(p, lo, hi);
}

/* The first bit equal to `bit` in lo..hi of p, or -1.  Whole words and
 * bytes that cannot hold it are skipped. */
static int64_t find_bit(const uint8_t *p, uint64_t lo, uint64_t hi, int bit)
{
	uint64_t i = lo, w;
	const uint64_t wskip = bit ? 0 : UINT64_MAX;
	const uint8_t bskip = bit ? 0 : 0xff;

	while (i <= hi) {
		if ((i & 7) == 0 && hi - i >= 63) {
			memcpy(&w, p + (i >> 3), sizeof w);
			if (w == wskip) {
				i += 64;
				continue;
			}
		}
		if ((i & 7) == 0 && hi - i >= 7 && p[i >> 3] == bskip) {
			i += 8;
			continue;
		}
		if (bit_at(p, i) == bit)
			return (int64_t)i;
		i++;
	}
	return -1;
}

int64_t net_str_bitpos(const uint8_t *p, size_t len, int bit,
		       const struct net_bitrange *r)
{
	struct net_bitrange all = { false, false, false, 0, 0 };
	uint64_t lo, hi;
	int64_t pos;

	if (!r)
		r = &all;
	if (!bit_span(len, r, &lo, &hi))
		return -1;
	pos = find_bit(p, lo, hi, bit);
	/* No 0 in the range: without an end, the zeros that pad the string
	 * on the right count, so the answer is the first bit after it. */
	if (pos < 0 && bit == 0 && !r->has_end)
		pos = (int64_t)hi + 1;
	return pos;
}

static inline uint8_t bitop1(enum net_bitop op, uint8_t acc, uint8_t b)
{
	switch (op) {
	case NET_BITOP_AND:
		return acc & b;
	case NET_BITOP_OR:
		return acc | b;
	case NET_BITOP_XOR:
		return acc ^ b;
	case NET_BITOP_NOT:
		break;
	}
	return acc;
}

static inline uint64_t bitop64(enum net_bitop op, uint64_t acc, uint64_t b)
{
	switch (op) {
	case NET_BITOP_AND:
		return acc & b;
	case NET_BITOP_OR:
		return acc | b;
	case NET_BITOP_XOR:
		return acc ^ b;
	case NET_BITOP_NOT:
		break;
	}
	return acc;
}

void net_str_bitop(enum net_bitop op, const uint8_t *const *src,
		   const size_t *len, size_t n, uint8_t *dst, size_t dstlen)
{
	size_t minlen = dstlen, j = 0;

	for (size_t i = 0; i < n; i++)
		if (len[i] < minlen)
			minlen = len[i];
	/* Where every source has bytes, a word at a time. */
	for (; j + 8 <= minlen; j += 8) {
		uint64_t acc, w;

		memcpy(&acc, src[0] + j, sizeof acc);
		if (op == NET_BITOP_NOT)
			acc = ~acc;
		for (size_t i = 1; i < n; i++) {
			memcpy(&w, src[i] + j, sizeof w);
			acc = bitop64(op, acc, w);
		}
		memcpy(dst + j, &acc, sizeof acc);
	}
	for (; j < dstlen; j++) {
		uint8_t acc = j < len[0] ? src[0][j] : 0;

		if (op == NET_BITOP_NOT)
			acc = (uint8_t)~acc;
		for (size_t i = 1; i < n; i++)
			acc = bitop1(op, acc, j < len[i] ? src[i][j] : 0);
		dst[j] = acc;
	}
}

int net_str_getbit(const uint8_t *p, size_t len, uint64_t off)
{
	return (off >> 3) < len ? bit_at(p, off) : 0;
}

int64_t net_str_bf_get(const uint8_t *p, size_t len, uint64_t off,
		       struct net_bftype t)
{
	uint64_t v = 0;

	for (unsigned k = 0; k < t.bits; k++)
		v = (v << 1) | (uint64_t)net_str_getbit(p, len, off + k);
	if (t.sign && t.bits < 64 && ((v >> (t.bits - 1)) & 1))
		v |= UINT64_MAX << t.bits;
	return (int64_t)v;
}

void net_str_bf_put(uint8_t *p, uint64_t off, struct net_bftype t, int64_t v)
{
	uint64_t u = (uint64_t)v;

	for (unsigned k = 0; k < t.bits; k++) {
		uint64_t i = off + k;
		uint8_t m = (uint8_t)(1u << (7 - (i & 7)));

		if ((u >> (t.bits - 1 - k)) & 1)
			p[i >> 3] |= m;
		else
			p[i >> 3] &= (uint8_t)~m;
	}
}

bool net_str_bf_apply(struct net_bftype t, enum net_bfow ow, bool incr,
		      int64_t old, int64_t arg, int64_t *out)
{
	/* 128 bits hold every sum of two 64-bit values exactly, so the range
	 * check is a plain comparison. */
	__int128 max, min, r;
	uint64_t low;

	if (t.sign) {
		max = ((__int128)1 << (t.bits - 1)) - 1;
		min = -max - 1;
	} else {
		max = ((__int128)1 << t.bits) - 1;
		min = 0;
	}
	if (incr)
		r = (__int128)old + arg;
	else
		r = t.sign ? (__int128)arg : (__int128)(uint64_t)arg;
	if (r >= min && r <= max) {
		*out = (int64_t)r;
		return true;
	}
	switch (ow) {
	case NET_BFOW_FAIL:
		return false;
	case NET_BFOW_SAT:
		*out = (int64_t)(r > max ? max : min);
		return true;
	case NET_BFOW_WRAP:
		break;
	}
	/* The low bits of the exact result, sign-extended for a signed
	 * field: two's complement arithmetic in t.bits bits. */
	low = (uint64_t)r;
	if (t.bits < 64) {
		low &= ~(UINT64_MAX << t.bits);
		if (t.sign && ((low >> (t.bits - 1)) & 1))
			low |= UINT64_MAX << t.bits;
	}
	*out = (int64_t)low;
	return true;
}

bool net_str_parse_ld(const char *s, size_t len, long double *out)
{
	char buf[NET_STR_LD_CHARS];
	char *end = NULL;
	long double v;

	if (len == 0 || len >= sizeof buf)
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	errno = 0;
	v = strtold(buf, &end);
	if (isspace((unsigned char)buf[0]) || *end != '\0' ||
	    (size_t)(end - buf) != len || errno == EINVAL || isnan(v))
		return false;
	/* Out of range: an overflow, or a nonzero number read as zero.  A
	 * denormal result is kept, as Redis keeps it. */
	if (errno == ERANGE && (isinf(v) || v == 0))
		return false;
	*out = v;
	return true;
}

size_t net_str_format_ld(long double v, char *buf)
{
	int n;
	size_t l;

	if (isinf(v)) {
		strcpy(buf, v > 0 ? "inf" : "-inf");
		return strlen(buf);
	}
	/* 17 decimals: with an 80-bit long double, enough that the small
	 * decimals users type come back as typed once the zeros go. */
	n = snprintf(buf, NET_STR_LD_CHARS, "%.17Lf", v);
	if (n < 0 || (size_t)n >= NET_STR_LD_CHARS) {
		buf[0] = '\0';
		return 0;
	}
	l = (size_t)n;
	if (memchr(buf, '.', l)) {
		while (buf[l - 1] == '0')
			l--;
		if (buf[l - 1] == '.')
			l--;
	}
	if (l == 2 && buf[0] == '-' && buf[1] == '0') {
		buf[0] = '0';
		l = 1;
	}
	buf[l] = '\0';
	return l;
}

void net_str_lcs_free(struct net_lcs *l)
{
	free(l->str);
	free(l->matches);
	l->str = NULL;
	l->matches = NULL;
	l->nmatches = 0;
}

/* LCS's length with two rows of the table: for LEN alone. */
static int lcs_len(const uint8_t *a, size_t alen, const uint8_t *b,
		   size_t blen, uint32_t *len)
{
	uint32_t *prev = calloc(blen + 1, sizeof *prev);
	uint32_t *cur = calloc(blen + 1, sizeof *cur);

	if (!prev || !cur) {
		free(prev);
		free(cur);
		return NET_LCS_ENOMEM;
	}
	for (size_t i = 1; i <= alen; i++) {
		uint32_t *t;

		for (size_t j = 1; j <= blen; j++) {
			if (a[i - 1] == b[j - 1])
				cur[j] = prev[j - 1] + 1;
			else
				cur[j] = prev[j] > cur[j - 1] ? prev[j] :
								cur[j - 1];
		}
		t = prev;
		prev = cur;
		cur = t;
	}
	*len = prev[blen];
	free(prev);
	free(cur);
	return NET_LCS_OK;
}

static int lcs_push(struct net_lcs *out, size_t *cap,
		    struct net_lcs_match m)
{
	if (out->nmatches == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct net_lcs_match *nm =
			realloc(out->matches, ncap * sizeof *nm);
		if (!nm)
			return NET_LCS_ENOMEM;
		out->matches = nm;
		*cap = ncap;
	}
	out->matches[out->nmatches++] = m;
	return NET_LCS_OK;
}

int net_str_lcs(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
		bool want_str, bool want_idx, uint64_t minmatchlen,
		struct net_lcs *out)
{
	const uint64_t maxcells = NET_STR_MAX / sizeof(uint32_t);
	size_t w = blen + 1, cap = 0, k;
	uint32_t *t, i, j;
	uint32_t a0 = 0, a1 = 0, b0 = 0, b1 = 0;
	bool open = false;
	int rc = NET_LCS_OK;

	memset(out, 0, sizeof *out);
	/* (alen+1)*(blen+1) > maxcells, without overflowing. */
	if (alen >= UINT32_MAX - 1 || blen >= UINT32_MAX - 1 ||
	    (uint64_t)alen + 1 > maxcells / ((uint64_t)blen + 1))
		return NET_LCS_ETOOBIG;
	if (!want_str && !want_idx)
		return lcs_len(a, alen, b, blen, &out->len);
	t = malloc((alen + 1) * w * sizeof *t);
	if (!t)
		return NET_LCS_ENOMEM;
#define T(x, y) t[(size_t)(x) * w + (y)]
	for (size_t x = 0; x <= alen; x++) {
		for (size_t y = 0; y <= blen; y++) {
			if (x == 0 || y == 0)
				T(x, y) = 0;
			else if (a[x - 1] == b[y - 1])
				T(x, y) = T(x - 1, y - 1) + 1;
			else
				T(x, y) = T(x - 1, y) > T(x, y - 1) ?
					  T(x - 1, y) : T(x, y - 1);
		}
	}
	out->len = T(alen, blen);
	if (want_str && !(out->str = malloc(out->len ? out->len : 1))) {
		rc = NET_LCS_ENOMEM;
		goto done;
	}
	/*
	 * Walk back from the end: a common byte extends the run being
	 * tracked (runs grow towards the start), a step that skips a byte
	 * closes it.  A run is also closed when it reaches the start of
	 * either string.  Ties go to the second string's side, as Redis's
	 * walk does, so the subsequence and the runs are the same as its.
	 */
	i = (uint32_t)alen;
	j = (uint32_t)blen;
	k = out->len;
	while (i > 0 && j > 0) {
		bool emit = false;

		if (a[i - 1] == b[j - 1]) {
			if (out->str)
				out->str[k - 1] = (char)a[i - 1];
			k--;
			if (!open) {
				open = true;
				a0 = a1 = i - 1;
				b0 = b1 = j - 1;
			} else if (a0 == i && b0 == j) {
				a0--;
				b0--;
			} else {
				emit = true;
			}
			if (a0 == 0 || b0 == 0)
				emit = true;
			i--;
			j--;
		} else {
			if (T(i - 1, j) > T(i, j - 1))
				i--;
			else
				j--;
			emit = open;
		}
		if (emit) {
			if (want_idx && (uint64_t)(a1 - a0) + 1 >= minmatchlen &&
			    (rc = lcs_push(out, &cap, (struct net_lcs_match){
					a0, a1, b0, b1 })) != NET_LCS_OK)
				goto done;
			open = false;
		}
	}
#undef T
done:
	free(t);
	if (rc != NET_LCS_OK)
		net_str_lcs_free(out);
	return rc;
}

/*
 * strops.h - the value arithmetic of the string and bit commands, free of
 * the store, the connection and the protocol: index ranges (GETRANGE,
 * BITCOUNT, BITPOS), bit operations (BITOP), bitfields (BITFIELD), Redis's
 * long double parsing and formatting (INCRBYFLOAT) and the longest common
 * subsequence (LCS).  strops.c implements it.  Every function is pure and
 * reentrant: any thread may call it (the worker for a read, the engine's
 * writer thread inside an update callback); nothing blocks.  Lengths are
 * those of values the store can hold (at most NET_STR_MAX bytes), which is
 * what keeps the bit arithmetic below in 64 bits.
 */
#ifndef KVS_NET_STROPS_H
#define KVS_NET_STROPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The largest string, as Redis's proto-max-bulk-len default (512 MiB). */
#define NET_STR_MAX ((uint64_t)512 << 20)

/*
 * GETRANGE: the bytes start..end (inclusive; negative counts from the end)
 * of a len-byte string, as *from and *n (n 0: the empty string).  Ranges
 * past either end are clipped, as Redis does.
 */
void net_str_range(int64_t start, int64_t end, size_t len, size_t *from,
		   size_t *n);

/* A BITCOUNT or BITPOS range, as given: start and end (inclusive, negative
 * from the end) in bytes, or in bits when `bits`. */
struct net_bitrange {
	bool has_start, has_end;
	bool bits;
	int64_t start, end;
};

/* BITCOUNT of p[0..len) over r (NULL: the whole string). */
uint64_t net_str_bitcount(const uint8_t *p, size_t len,
			  const struct net_bitrange *r);

/*
 * BITPOS: the position (in bits from the string's start) of the first bit
 * equal to `bit` (0 or 1) in r (NULL: the whole string), or -1.  Looking
 * for a 0 without an end given finds the first bit after the string if
 * the range holds none, as Redis's bitpos: the string is taken as padded
 * with zeros on the right.
 */
int64_t net_str_bitpos(const uint8_t *p, size_t len, int bit,
		       const struct net_bitrange *r);

/* BITOP's operations. */
enum net_bitop { NET_BITOP_AND, NET_BITOP_OR, NET_BITOP_XOR, NET_BITOP_NOT };

/*
 * dst[0..dstlen) = op over the n sources src[i][0..len[i]) (NOT: n is 1),
 * each taken as padded with zero bytes up to dstlen (the longest source's
 * length, as Redis).
 */
void net_str_bitop(enum net_bitop op, const uint8_t *const *src,
		   const size_t *len, size_t n, uint8_t *dst, size_t dstlen);

/* Bit `off` of p[0..len) (bit 0 is the top bit of byte 0); 0 past the end. */
int net_str_getbit(const uint8_t *p, size_t len, uint64_t off);

/*
 * Bitfields: `bits` bits from bit `off`, most significant first (the
 * layout of SETBIT).  Unsigned fields have 1..63 bits, signed ones 1..64
 * (Redis refuses u64: its replies are signed 64-bit integers).
 */
struct net_bftype {
	bool sign;
	unsigned bits;
};
/* The field at off of p[0..len), zero padded past the end; sign extended
 * for a signed type.  An unsigned field always fits in int64_t. */
int64_t net_str_bf_get(const uint8_t *p, size_t len, uint64_t off,
		       struct net_bftype t);
/* Store v's low t.bits bits at off of p, which must hold the field. */
void net_str_bf_put(uint8_t *p, uint64_t off, struct net_bftype t, int64_t v);

/* What an out-of-range result of BITFIELD SET or INCRBY becomes. */
enum net_bfow { NET_BFOW_WRAP, NET_BFOW_SAT, NET_BFOW_FAIL };
/*
 * The value a field of type t holding `old` gets from SET arg (incr false)
 * or INCRBY arg (incr true), by the overflow rule ow: true and *out, or
 * false when the result does not fit and ow is FAIL (nothing is written).
 * A SET of a negative value to an unsigned field is out of range (as Redis:
 * SAT gives the maximum).
 */
bool net_str_bf_apply(struct net_bftype t, enum net_bfow ow, bool incr,
		      int64_t old, int64_t arg, int64_t *out);

/*
 * INCRBYFLOAT's numbers.  net_str_parse_ld() accepts what Redis's string2ld
 * does: strtold's syntax (decimal, hex, inf) with nothing before or after,
 * fewer than NET_STR_LD_CHARS bytes, not NaN, not overflowing, and not a
 * nonzero number that underflows to zero.  net_str_format_ld() writes v as
 * Redis's "human" long double form (17 decimals, trailing zeros and point
 * dropped, "-0" as "0"; "inf"/"-inf") into buf[0..NET_STR_LD_CHARS) and
 * returns its length.
 */
#define NET_STR_LD_CHARS 5120
bool net_str_parse_ld(const char *s, size_t len, long double *out);
size_t net_str_format_ld(long double v, char *buf);

/*
 * LCS.  One run of common bytes: a[a0..a1] == b[b0..b1] (inclusive).
 */
struct net_lcs_match {
	uint32_t a0, a1, b0, b1;
};
struct net_lcs {
	uint32_t len;                  /* length of the subsequence */
	char *str;                     /* want_str: it (malloc; len bytes) */
	struct net_lcs_match *matches; /* want_idx: the runs (malloc) */
	size_t nmatches;
};
enum {
	NET_LCS_OK = 0,
	NET_LCS_ETOOBIG = -1, /* the table would pass NET_STR_MAX bytes */
	NET_LCS_ENOMEM = -2,
};
/*
 * The longest common subsequence of a and b, as Redis computes it (its
 * table and its walk back, so the subsequence and the runs are the ones
 * Redis gives): the runs from the end of the strings backwards, those
 * shorter than minmatchlen left out (0: none).  The table of
 * (alen+1)*(blen+1) 32-bit cells may not pass NET_STR_MAX bytes (Redis's
 * own bound, which is also what bounds the time); with neither want_str nor
 * want_idx only two of its rows are kept.  Returns NET_LCS_OK (release *out
 * with net_str_lcs_free()), NET_LCS_ETOOBIG or NET_LCS_ENOMEM.
 */
int net_str_lcs(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
		bool want_str, bool want_idx, uint64_t minmatchlen,
		struct net_lcs *out);
void net_str_lcs_free(struct net_lcs *l);

#ifdef __cplusplus
}
#endif
#endif /* KVS_NET_STROPS_H */

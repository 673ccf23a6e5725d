/* bench.h - helpers shared by the programs in bench/: a seeded PRNG, a
 * latency histogram, a monotonic clock, number parsing and removal of a
 * scratch directory.  Header-only (static inline), so that each benchmark
 * stays one .c file with one link line. */
#ifndef KVS_BENCH_H
#define KVS_BENCH_H

#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- a seeded PRNG: xorshift64*, with a splitmix64 step for seeding ------- */

struct rng {
	uint64_t s;
};

static inline void rng_seed(struct rng *r, uint64_t seed)
{
	/* splitmix64, so that nearby seeds give unrelated streams and the
	 * state is never the all-zero fixed point of xorshift. */
	uint64_t z = seed + 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	r->s = z ? z : 0x2545f4914f6cdd1dull;
}

static inline uint64_t rng_next(struct rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dull;
}

/* Uniform in [0, bound), bound <= 2^32: the top 32 bits scaled (Lemire),
 * whose bias is far below anything a benchmark can see. */
static inline uint32_t rng_below(struct rng *r, uint32_t bound)
{
	return (uint32_t)(((rng_next(r) >> 32) * (uint64_t)bound) >> 32);
}

/* Fill perm[0..n) with a seeded Fisher-Yates shuffle of 0..n-1. */
static inline void rng_shuffle(uint32_t *perm, uint32_t n, uint64_t seed)
{
	struct rng r;

	rng_seed(&r, seed);
	for (uint32_t i = 0; i < n; i++)
		perm[i] = i;
	for (uint32_t i = n ? n - 1 : 0; i > 0; i--) {
		uint32_t j = rng_below(&r, i + 1), t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
}

/* ---- latency: a log-linear histogram of nanoseconds -------------------------
 *
 * Values below 16 ns have a bucket each; above, every power of two is cut
 * into 16 equal buckets, so a reported percentile is within 1/32 (about 3%)
 * of the true one.  976 buckets cover all of uint64_t: memory is fixed
 * however many operations a phase runs. */

#define HIST_SUB_BITS 4
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_NBUCKETS ((64 - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
	uint64_t count;
	uint64_t b[HIST_NBUCKETS];
};

static inline unsigned hist_index(uint64_t v)
{
	if (v < HIST_SUB)
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned shift = msb - HIST_SUB_BITS;
	return (shift + 1) * HIST_SUB + (unsigned)((v >> shift) - HIST_SUB);
}

/* The middle of bucket i. */
static inline double hist_value(unsigned i)
{
	if (i < HIST_SUB)
		return i;
	unsigned g = i / HIST_SUB, s = i % HIST_SUB;
	double lo = (double)((uint64_t)(HIST_SUB + s) << (g - 1));
	return lo + (double)((uint64_t)1 << (g - 1)) / 2.0;
}

static inline void hist_add(struct hist *h, uint64_t ns)
{
	h->b[hist_index(ns)]++;
	h->count++;
}

static inline void hist_merge(struct hist *into, const struct hist *from)
{
	for (unsigned i = 0; i < HIST_NBUCKETS; i++)
		into->b[i] += from->b[i];
	into->count += from->count;
}

/* The q-quantile (0 < q <= 1) in microseconds; 0 for an empty histogram. */
static inline double hist_quantile_us(const struct hist *h, double q)
{
	if (h->count == 0)
		return 0.0;
	uint64_t rank = (uint64_t)(q * (double)h->count + 0.5);
	if (rank < 1)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_NBUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank)
			return hist_value(i) / 1000.0;
	}
	return hist_value(HIST_NBUCKETS - 1) / 1000.0;
}

/* The largest value seen, in microseconds (to bucket precision). */
static inline double hist_max_us(const struct hist *h)
{
	for (unsigned i = HIST_NBUCKETS; i-- > 0;)
		if (h->b[i])
			return hist_value(i) / 1000.0;
	return 0.0;
}

/* ---- time ------------------------------------------------------------------ */

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Sleep until CLOCK_MONOTONIC reads `ns` (no-op if it already has). */
static inline void sleep_until_ns(uint64_t ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(ns / 1000000000ull),
		.tv_nsec = (long)(ns % 1000000000ull),
	};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	       EINTR)
		;
}

/* ---- command lines ----------------------------------------------------------- */

/* A decimal number in min..max, or exit(2) with a message naming `prog`. */
static inline uint64_t parse_num(const char *prog, const char *s,
				 uint64_t min, uint64_t max, const char *what)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < min || v > max) {
		fprintf(stderr, "%s: %s: '%s' is not a number in %llu..%llu\n",
			prog, what, s, (unsigned long long)min,
			(unsigned long long)max);
		exit(2);
	}
	return v;
}

/* A number of seconds, 0 < S <= max, or exit(2). */
static inline double parse_seconds(const char *prog, const char *s,
				   double max, const char *what)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || *end || !(v > 0) || v > max) {
		fprintf(stderr, "%s: %s: 0 < S <= %g\n", prog, what, max);
		exit(2);
	}
	return v;
}

/* The 1-minute load average, or -1 if /proc/loadavg cannot be read: printed
 * with the results, since other work on the machine moves the numbers. */
static inline double loadavg1(void)
{
	FILE *f = fopen("/proc/loadavg", "r");
	double v = -1;

	if (f) {
		if (fscanf(f, "%lf", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* ---- scratch directories ----------------------------------------------------- */

static inline int bench_rm_entry(const char *path, const struct stat *st,
				 int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) != 0)
		fprintf(stderr, "bench: remove %s: %s\n", path, strerror(errno));
	return 0;
}

/* Remove `dir` and everything under it; errors are printed, not fatal. */
static inline void rm_tree(const char *dir)
{
	nftw(dir, bench_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif /* KVS_BENCH_H */

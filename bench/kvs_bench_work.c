/* kvs_bench_work.c - kvs-bench's workload: key names, the zipf
 * distribution, values derived from (key, version, run) and their check,
 * and the error notes every loop reports through. */
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "kvs_bench.h"

const char *const kb_cmd_name[KB_NCMDS + 1] = {
	"PING", "SET", "GET", "INCR", "MSET", "DEL", "AUTH",
};
const char *const kb_cmd_opt[KB_NCMDS] = {
	"ping", "set", "get", "incr", "mset", "del",
};
const char *const kb_err_name[KB_NERRS] = {
	"connection", "error_reply", "protocol", "verify", "timeout",
};

/* ---- keys ------------------------------------------------------------------------------ */

static unsigned digits(uint64_t v)
{
	unsigned n = 1;
	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

unsigned kb_key_min_size(uint64_t keys)
{
	return 4 + digits(keys ? keys - 1 : 0);
}

void kb_key_fill(char *dst, unsigned key_size, uint32_t k, bool counter)
{
	memcpy(dst, counter ? "ctr:" : "key:", 4);
	/* Digits from the right; the options made key_size big enough. */
	for (unsigned i = key_size; i > 4; i--) {
		dst[i - 1] = (char)('0' + k % 10);
		k /= 10;
	}
}

/* ---- zipf -------------------------------------------------------------------------------- */

static uint64_t gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* Exact up to this many terms, then the integral of x^-theta for the rest
 * (off by far less than the sampler's own approximation). */
#define ZETA_EXACT 10000000ull

void kb_zipf_init(struct kb_zipf *z, uint64_t n, double theta)
{
	double zetan = 0;
	uint64_t m = n < ZETA_EXACT ? n : ZETA_EXACT;

	for (uint64_t i = 1; i <= m; i++)
		zetan += pow((double)i, -theta);
	if (n > m)
		zetan += (pow((double)n + 0.5, 1 - theta) -
			  pow((double)m + 0.5, 1 - theta)) / (1 - theta);
	z->n = n;
	z->theta = theta;
	z->zetan = zetan;
	z->alpha = 1.0 / (1.0 - theta);
	z->half_pow = 1.0 + pow(0.5, theta);
	/* eta is only used for n >= 3 (below, the first two cases cover
	 * every draw); for n <= 2 its formula divides zero by zero. */
	z->eta = n > 2 ? (1.0 - pow(2.0 / (double)n, 1.0 - theta)) /
				 (1.0 - z->half_pow / zetan)
		       : 0.0;
	/* rank -> (rank * mul + add) % n is a bijection when gcd(mul, n) = 1. */
	z->mul = n > 1 ? 0x9e3779b97f4a7c15ull % n : 0;
	if (z->mul == 0)
		z->mul = 1;
	while (n > 1 && gcd(z->mul, n) != 1)
		z->mul++;
	z->add = n > 1 ? 0x5851f42d4c957f2dull % n : 0;
}

uint32_t kb_zipf_next(const struct kb_zipf *z, struct rng *r)
{
	double u = (double)(rng_next(r) >> 11) * 0x1p-53;
	double uz = u * z->zetan;
	uint64_t rank;

	if (uz < 1.0)
		rank = 0;
	else if (uz < z->half_pow)
		rank = 1;
	else
		rank = (uint64_t)((double)z->n *
				  pow(z->eta * u - z->eta + 1.0, z->alpha));
	if (rank >= z->n)
		rank = z->n - 1;
	return (uint32_t)((rank * z->mul + z->add) % z->n);
}

/* ---- values -------------------------------------------------------------------------------- */

static uint64_t mix64(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

char *kb_pool_new(void)
{
	static const char alphabet[] =
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	char *pool = malloc(2 * (size_t)KB_POOL_SIZE);
	struct rng r;

	if (!pool)
		return NULL;
	/* A fixed seed: any kvs-bench can check the values of any other. */
	rng_seed(&r, 0x6b76732d62656e63ull);
	for (unsigned i = 0; i < KB_POOL_SIZE; i++)
		pool[i] = alphabet[rng_below(&r, sizeof alphabet - 1)];
	memcpy(pool + KB_POOL_SIZE, pool, KB_POOL_SIZE);
	return pool;
}

uint32_t kb_value_len(const struct kb_opts *o, uint32_t key, uint64_t version)
{
	if (o->vmin == o->vmax)
		return o->vmin;
	uint64_t h = mix64(((uint64_t)key << 32) ^ mix64(version));
	return o->vmin + (uint32_t)(h % ((uint64_t)o->vmax - o->vmin + 1));
}

static uint32_t filler_offset(uint32_t key, uint64_t version, uint32_t run)
{
	return (uint32_t)(mix64(mix64(((uint64_t)run << 32) | key) ^ version) %
			  KB_POOL_SIZE);
}

static char *put_dec(char *p, uint64_t v)
{
	char tmp[24];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

/* The header (see kvs_bench.h) of a value of len bytes at dst; returns its
 * length. */
static size_t header(char *dst, uint32_t key, uint64_t version, uint32_t run,
		     uint32_t len)
{
	static const char hex[] = "0123456789abcdef";
	char *p = dst;

	*p++ = 'k';
	*p++ = 'b';
	p = put_dec(p, key);
	*p++ = '.';
	p = put_dec(p, version);
	*p++ = '.';
	for (int i = 7; i >= 0; i--)
		*p++ = hex[(run >> (4 * i)) & 15];
	*p++ = '.';
	p = put_dec(p, len);
	*p++ = ';';
	return (size_t)(p - dst);
}

void kb_value_fill(const char *pool, char *dst, uint32_t len, uint32_t key,
		   uint64_t version, uint32_t run)
{
	char h[KB_VALUE_HEADER_MAX];
	size_t hl = header(h, key, version, run, len);

	if (hl >= len) {
		memcpy(dst, h, len);
		return;
	}
	memcpy(dst, h, hl);
	const char *src = pool + filler_offset(key, version, run);
	for (size_t at = hl; at < len;) {
		size_t n = len - at < KB_POOL_SIZE ? len - at : KB_POOL_SIZE;
		memcpy(dst + at, src, n);
		at += n;
	}
}

/* Decimal digits at *p (at most maxd, no leading zero unless "0"); moves
 * *p past them.  -1 if there are none or too many. */
static int parse_dec(const char **p, const char *end, unsigned maxd,
		     uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;
	unsigned n = 0;

	while (s < end && *s >= '0' && *s <= '9' && n <= maxd) {
		v = v * 10 + (uint64_t)(*s - '0');
		s++;
		n++;
	}
	if (n == 0 || n > maxd || (n > 1 && **p == '0'))
		return -1;
	*p = s;
	*out = v;
	return 0;
}

const char *kb_value_check(const char *pool, const char *v, size_t len,
			   uint32_t key, struct kb_value_check *out)
{
	const char *p = v, *end = v + len;
	uint64_t k, ver;
	uint32_t run = 0;

	memset(out, 0, sizeof *out);
	if (len < 2 || p[0] != 'k' || p[1] != 'b')
		return "not a kvs-bench value";
	p += 2;
	if (parse_dec(&p, end, 10, &k) != 0 || p == end || *p++ != '.' ||
	    parse_dec(&p, end, 14, &ver) != 0 || ver == 0 || p == end ||
	    *p++ != '.' || end - p < 9)
		return "not a kvs-bench value (bad header)";
	for (int i = 0; i < 8; i++, p++) {
		int d = *p >= '0' && *p <= '9' ? *p - '0' :
			*p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : -1;
		if (d < 0)
			return "not a kvs-bench value (bad header)";
		run = run << 4 | (uint32_t)d;
	}
	uint64_t vlen;
	if (p == end || *p++ != '.' || parse_dec(&p, end, 10, &vlen) != 0 ||
	    p == end || *p++ != ';')
		return "not a kvs-bench value (bad header)";
	if (vlen != len)
		return "corrupted value (its length differs from its header's)";
	if (k != key)
		return "the value of another key";
	out->version = ver;
	out->run = run;
	const char *src = pool + filler_offset(key, ver, run);
	for (size_t at = (size_t)(p - v); at < len;) {
		size_t n = len - at < KB_POOL_SIZE ? len - at : KB_POOL_SIZE;
		if (memcmp(v + at, src, n) != 0)
			return "corrupted value (its filler differs)";
		at += n;
	}
	return NULL;
}

/* ---- notes ------------------------------------------------------------------------------------ */

#define NOTES_SHOWN 3

static pthread_mutex_t note_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned note_count[KB_NERRS];
static char note_first[KB_NERRS][256];

void kb_note(enum kb_err kind, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&note_lock);
	unsigned n = note_count[kind]++;
	if (n == 0)
		memcpy(note_first[kind], msg, sizeof msg);
	pthread_mutex_unlock(&note_lock);
	/* One fprintf per line: stdio locks the stream, lines never mix. */
	if (n < NOTES_SHOWN)
		fprintf(stderr, "%s: %s\n", KB_PROG, msg);
	else if (n == NOTES_SHOWN)
		fprintf(stderr, "%s: (more %s errors are counted, not shown)\n",
			KB_PROG, kb_err_name[kind]);
}

const char *kb_first_note(enum kb_err kind)
{
	const char *s;

	pthread_mutex_lock(&note_lock);
	s = note_first[kind];
	pthread_mutex_unlock(&note_lock);
	return s;
}

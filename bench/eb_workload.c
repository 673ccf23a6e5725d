/* eb_workload.c - kvs-engine-bench's workloads: the keys and values of a
 * variant, the worker threads that time every call, and talent-plan's
 * random keys and values. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_bench.h"

#define KEY_FMT "key%08u"
#define KEY_MAX 16 /* "key" + 8 digits + NUL, with room */

volatile sig_atomic_t eb_stop;

/* ---- errors ------------------------------------------------------------------- */

static _Thread_local char errbuf[512];

void eb_seterr(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof errbuf, fmt, ap);
	va_end(ap);
}

const char *eb_lasterr(void)
{
	return errbuf;
}

/* ---- keys and values ------------------------------------------------------------ */

static void fill_random(struct rng *r, unsigned char *p, size_t n)
{
	while (n) {
		uint64_t x = rng_next(r);
		size_t m = n < sizeof x ? n : sizeof x;
		memcpy(p, &x, m);
		p += m;
		n -= m;
	}
}

int eb_data_init(struct eb_data *d, uint32_t nkeys, size_t value_size,
		 uint64_t seed)
{
	struct rng r;

	memset(d, 0, sizeof *d);
	d->perm = malloc((size_t)nkeys * sizeof *d->perm);
	d->filler = malloc(value_size ? value_size : 1);
	if (!d->perm || !d->filler) {
		eb_data_free(d);
		return EB_ERR;
	}
	d->nkeys = d->loaded = nkeys;
	d->value_size = value_size;
	d->seed = seed;
	rng_shuffle(d->perm, nkeys, seed);
	rng_seed(&r, seed ^ 0x66696c6c6572ull); /* "filler" */
	fill_random(&r, d->filler, value_size);
	return 0;
}

void eb_data_free(struct eb_data *d)
{
	free(d->perm);
	free(d->filler);
	memset(d, 0, sizeof *d);
}

static size_t make_key(char *buf, uint32_t k)
{
	return (size_t)snprintf(buf, KEY_MAX, KEY_FMT, k);
}

/* val holds the filler already (see value_buffer); put the key in front. */
static void make_value(const struct eb_data *d, unsigned char *val,
		       const char *key, size_t klen)
{
	memcpy(val, key, klen < d->value_size ? klen : d->value_size);
}

static unsigned char *value_buffer(const struct eb_data *d, size_t count)
{
	size_t vs = d->value_size ? d->value_size : 1;
	unsigned char *v = malloc(vs * count);

	for (size_t i = 0; v && i < count; i++)
		memcpy(v + i * vs, d->filler, d->value_size);
	return v;
}

/* Reads every byte: the value of `key`, and nothing else, was returned. */
static bool value_ok(const struct eb_data *d, const void *val, size_t vlen,
		     const char *key, size_t klen)
{
	size_t p = klen < d->value_size ? klen : d->value_size;

	return vlen == d->value_size && memcmp(val, key, p) == 0 &&
	       memcmp((const unsigned char *)val + p, d->filler + p,
		      d->value_size - p) == 0;
}

/* ---- workers -------------------------------------------------------------------- */

struct phase {
	const struct eb_adapter *a;
	struct eb_store *s;
	const struct eb_data *d;
	enum eb_work work;
	uint64_t max_ns;
	pthread_barrier_t start;
};

struct worker {
	pthread_t tid;
	struct phase *ph;
	unsigned id;
	uint64_t first, count;
	/* Results, read by the main thread after pthread_join(). */
	uint64_t done;         /* operations (keys, for EB_BATCH) */
	uint64_t t_start, t_end;
	bool failed;
	char err[512];
	struct hist hist;
};

static void worker_fail(struct worker *wk, const char *msg)
{
	wk->failed = true;
	snprintf(wk->err, sizeof wk->err, "%s", msg);
}

static void run_load(struct worker *wk, struct eb_thread *t, uint64_t deadline)
{
	const struct phase *ph = wk->ph;
	const struct eb_data *d = ph->d;
	unsigned char *val = value_buffer(d, 1);
	char key[KEY_MAX];

	if (!val) {
		worker_fail(wk, "out of memory");
		return;
	}
	for (uint64_t i = 0; i < wk->count; i++) {
		size_t klen = make_key(key, d->perm[wk->first + i]);
		make_value(d, val, key, klen);
		uint64_t t0 = now_ns();
		int rc = ph->a->set(t, key, klen, val, d->value_size);
		uint64_t t1 = now_ns();
		if (rc != 0) {
			worker_fail(wk, eb_lasterr());
			break;
		}
		hist_add(&wk->hist, t1 - t0);
		wk->done++;
		if (t1 >= deadline || eb_stop)
			break;
	}
	free(val);
}

static void run_batch(struct worker *wk, struct eb_thread *t, uint64_t deadline)
{
	const struct phase *ph = wk->ph;
	const struct eb_data *d = ph->d;
	size_t vs = d->value_size ? d->value_size : 1;
	unsigned char *vals = value_buffer(d, EB_BATCH_OPS);
	char (*keys)[KEY_MAX] = malloc(EB_BATCH_OPS * sizeof *keys);
	struct eb_kv *kv = malloc(EB_BATCH_OPS * sizeof *kv);

	if (!vals || !keys || !kv) {
		worker_fail(wk, "out of memory");
		goto out;
	}
	for (uint64_t i = 0; i < wk->count;) {
		size_t n = wk->count - i < EB_BATCH_OPS ? (size_t)(wk->count - i)
							: EB_BATCH_OPS;
		for (size_t j = 0; j < n; j++) {
			size_t klen = make_key(keys[j], d->perm[wk->first + i + j]);
			make_value(d, vals + j * vs, keys[j], klen);
			kv[j] = (struct eb_kv){ keys[j], klen, vals + j * vs,
						d->value_size };
		}
		uint64_t t0 = now_ns();
		int rc = ph->a->batch(t, kv, n);
		uint64_t t1 = now_ns();
		if (rc != 0) {
			worker_fail(wk, eb_lasterr());
			break;
		}
		hist_add(&wk->hist, t1 - t0);
		wk->done += n;
		i += n;
		if (t1 >= deadline || eb_stop)
			break;
	}
out:
	free(kv);
	free(keys);
	free(vals);
}

/* EB_GET, EB_SET and EB_MIXED: uniformly random keys of perm[0..loaded). */
static void run_random(struct worker *wk, struct eb_thread *t, uint64_t deadline)
{
	const struct phase *ph = wk->ph;
	const struct eb_data *d = ph->d;
	unsigned char *val = value_buffer(d, 1);
	char key[KEY_MAX];
	struct rng r;

	if (!val) {
		worker_fail(wk, "out of memory");
		return;
	}
	rng_seed(&r, d->seed * 1000003u + 7919u * (wk->id + 1) +
			     104729u * (unsigned)ph->work);
	for (uint64_t i = 0; i < wk->count; i++) {
		size_t klen = make_key(key, d->perm[rng_below(&r, d->loaded)]);
		bool set = ph->work == EB_SET ||
			   (ph->work == EB_MIXED &&
			    rng_below(&r, 100) < EB_MIXED_SET_PCT);
		uint64_t t0, t1;
		int rc;
		if (set) {
			make_value(d, val, key, klen);
			t0 = now_ns();
			rc = ph->a->set(t, key, klen, val, d->value_size);
			t1 = now_ns();
		} else {
			const void *got;
			size_t glen;
			bool ok = true;
			t0 = now_ns();
			rc = ph->a->get(t, key, klen, &got, &glen);
			if (rc == 0) {
				ok = value_ok(d, got, glen, key, klen);
				ph->a->get_done(t);
			}
			t1 = now_ns();
			if (rc == EB_NOTFOUND)
				eb_seterr("get %s: not found", key);
			else if (!ok) {
				eb_seterr("get %s: a wrong value", key);
				rc = EB_ERR;
			}
		}
		if (rc != 0) {
			worker_fail(wk, eb_lasterr());
			break;
		}
		hist_add(&wk->hist, t1 - t0);
		wk->done++;
		if (t1 >= deadline || eb_stop)
			break;
	}
	free(val);
}

static void *worker_main(void *arg)
{
	struct worker *wk = arg;
	struct phase *ph = wk->ph;
	struct eb_thread *t = NULL;

	if (ph->a->thread_begin(ph->s, &t) != 0)
		worker_fail(wk, eb_lasterr());
	/* Wait even after a failure, so that the barrier completes. */
	pthread_barrier_wait(&ph->start);
	wk->t_start = now_ns();
	if (!wk->failed) {
		uint64_t deadline = wk->t_start + ph->max_ns;
		switch (ph->work) {
		case EB_LOAD: run_load(wk, t, deadline); break;
		case EB_BATCH: run_batch(wk, t, deadline); break;
		case EB_GET:
		case EB_SET:
		case EB_MIXED: run_random(wk, t, deadline); break;
		}
	}
	wk->t_end = now_ns();
	if (t)
		ph->a->thread_end(t);
	return NULL;
}

int eb_run_phase(const struct eb_adapter *a, struct eb_store *s,
		 const struct eb_data *d, enum eb_work work, unsigned threads,
		 uint64_t first, uint64_t max_ops, uint64_t max_ns,
		 struct eb_result *res)
{
	struct phase ph = { .a = a, .s = s, .d = d, .work = work,
			    .max_ns = max_ns };
	struct worker *wk = calloc(threads, sizeof *wk);
	uint64_t per = (max_ops + threads - 1) / threads, t0 = UINT64_MAX, t1 = 0;
	int ret = 0;

	memset(res, 0, sizeof *res);
	if (!wk) {
		fprintf(stderr, "%s: out of memory\n", EB_PROG);
		return EB_ERR;
	}
	if (pthread_barrier_init(&ph.start, NULL, threads) != 0) {
		fprintf(stderr, "%s: pthread_barrier_init failed\n", EB_PROG);
		free(wk);
		return EB_ERR;
	}
	for (unsigned i = 0; i < threads; i++) {
		uint64_t off = per * i < max_ops ? per * i : max_ops;
		wk[i].ph = &ph;
		wk[i].id = i;
		wk[i].first = first + off;
		wk[i].count = max_ops - off < per ? max_ops - off : per;
		int e = pthread_create(&wk[i].tid, NULL, worker_main, &wk[i]);
		if (e != 0) {
			/* The threads started wait on a barrier that cannot
			 * complete now: there is no tidy way back. */
			fprintf(stderr, "%s: pthread_create: %s\n", EB_PROG,
				strerror(e));
			exit(1);
		}
	}
	for (unsigned i = 0; i < threads; i++)
		pthread_join(wk[i].tid, NULL);
	pthread_barrier_destroy(&ph.start);

	for (unsigned i = 0; i < threads; i++) {
		if (wk[i].failed && ret == 0) {
			fprintf(stderr, "%s: %s, thread %u: %s\n", EB_PROG,
				a->engine, i, wk[i].err);
			ret = EB_ERR;
		}
		t0 = wk[i].t_start < t0 ? wk[i].t_start : t0;
		t1 = wk[i].t_end > t1 ? wk[i].t_end : t1;
		res->ops += wk[i].done;
		hist_merge(&res->hist, &wk[i].hist);
	}
	res->seconds = t1 > t0 ? (double)(t1 - t0) / 1e9 : 0.0;
	free(wk);
	return ret;
}

/* ---- talent-plan -------------------------------------------------------------- */

int eb_tp_init(struct eb_tp *tp, size_t key_max, uint64_t seed)
{
	struct rng r;

	memset(tp, 0, sizeof *tp);
	tp->key_max = key_max;
	rng_seed(&r, seed * 31u + key_max);
	for (unsigned i = 0; i < EB_TP_KEYS; i++) {
		tp->klen[i] = 1 + rng_below(&r, (uint32_t)key_max);
		tp->vlen[i] = 1 + rng_below(&r, EB_TP_VALUE_MAX);
		tp->key[i] = malloc(tp->klen[i]);
		tp->val[i] = malloc(tp->vlen[i]);
		if (!tp->key[i] || !tp->val[i]) {
			eb_tp_free(tp);
			return EB_ERR;
		}
		fill_random(&r, tp->val[i], tp->vlen[i]);
		/* Draw again while the key equals an earlier one (a short
		 * key may), so that every key is written once. */
		for (bool dup = true; dup;) {
			fill_random(&r, tp->key[i], tp->klen[i]);
			dup = false;
			for (unsigned j = 0; j < i && !dup; j++)
				dup = tp->klen[j] == tp->klen[i] &&
				      memcmp(tp->key[j], tp->key[i],
					     tp->klen[i]) == 0;
		}
	}
	return 0;
}

void eb_tp_free(struct eb_tp *tp)
{
	for (unsigned i = 0; i < EB_TP_KEYS; i++) {
		free(tp->key[i]);
		free(tp->val[i]);
	}
	memset(tp, 0, sizeof *tp);
}

int eb_tp_write(const struct eb_adapter *a, struct eb_store *s,
		const struct eb_tp *tp, struct eb_result *res)
{
	struct eb_thread *t;
	int ret = 0;

	if (a->thread_begin(s, &t) != 0)
		return EB_ERR;
	uint64_t start = now_ns();
	for (unsigned i = 0; i < EB_TP_KEYS; i++) {
		uint64_t t0 = now_ns();
		if (a->set(t, tp->key[i], tp->klen[i], tp->val[i],
			   tp->vlen[i]) != 0) {
			ret = EB_ERR;
			break;
		}
		hist_add(&res->hist, now_ns() - t0);
		res->ops++;
	}
	res->seconds += (double)(now_ns() - start) / 1e9;
	a->thread_end(t);
	return ret;
}

int eb_tp_read(const struct eb_adapter *a, struct eb_store *s,
	       const struct eb_tp *tp, uint64_t seed, struct eb_result *res)
{
	struct eb_thread *t;
	struct rng r;
	int ret = 0;

	if (a->thread_begin(s, &t) != 0)
		return EB_ERR;
	rng_seed(&r, seed);
	uint64_t start = now_ns();
	for (unsigned n = 0; n < EB_TP_READS; n++) {
		unsigned i = rng_below(&r, EB_TP_KEYS);
		const void *got;
		size_t glen;
		uint64_t t0 = now_ns();
		int rc = a->get(t, tp->key[i], tp->klen[i], &got, &glen);
		if (rc == 0) {
			if (glen != tp->vlen[i] ||
			    memcmp(got, tp->val[i], glen) != 0) {
				eb_seterr("talent-plan read %u: a wrong value", i);
				rc = EB_ERR;
			}
			a->get_done(t);
		} else if (rc == EB_NOTFOUND) {
			eb_seterr("talent-plan read %u: not found", i);
		}
		if (rc != 0) {
			ret = EB_ERR;
			break;
		}
		hist_add(&res->hist, now_ns() - t0);
		res->ops++;
	}
	res->seconds += (double)(now_ns() - start) / 1e9;
	a->thread_end(t);
	return ret;
}

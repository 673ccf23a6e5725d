/*
 * kvs_bench_verify.c - kvs-bench's --verify: the per-key versions of SETs
 * and the check of every GET reply (the value's own consistency, see
 * kb_value_check(), then its version).
 *
 * The stale-read check.  Per key, one atomic word counts the versions
 * handed out (high bits) and the SETs of the key in flight (low bits); a SET
 * takes the next version and counts itself in with one fetch_add, and
 * counts itself out when its reply arrives.  A SET that found nothing in
 * flight when it took version w is a "candidate": every SET with a lower
 * version had had its reply before w was sent, so was applied before w.
 * Once w's reply (+OK) arrives, the key's floor is raised to w.  A GET
 * reads the floor before it is sent: its reply must carry a version >= that
 * floor, since no write older than w can be applied after w, and w was
 * applied before the GET was sent.  The check is sound with any number of
 * concurrent writers (a candidate is simply rarer); a SET whose reply never
 * comes keeps its key from having candidates again.  Relaxed atomics are
 * enough: each argument is about one location's modification order and
 * about real time (a load that sees a store happened after it).
 */
#include <stdarg.h>
#include <string.h>

#include "kvs_bench.h"

uint64_t kb_verify_take(struct kb_run *run, uint32_t k, bool *cand)
{
	uint64_t old = atomic_fetch_add_explicit(
		&run->kstate[k], (1ull << KB_INFLIGHT_BITS) + 1,
		memory_order_relaxed);
	*cand = (old & KB_INFLIGHT_MASK) == 0;
	return (old >> KB_INFLIGHT_BITS) + 1;
}

uint64_t kb_verify_floor(struct kb_run *run, uint32_t k)
{
	return atomic_load_explicit(&run->kfloor[k], memory_order_relaxed);
}

void kb_verify_set_done(struct kb_run *run, uint32_t k, uint64_t ver,
			bool cand, bool ok)
{
	atomic_fetch_sub_explicit(&run->kstate[k], 1, memory_order_relaxed);
	if (!cand || !ok)
		return;
	uint64_t f = atomic_load_explicit(&run->kfloor[k], memory_order_relaxed);
	while (f < ver &&
	       !atomic_compare_exchange_weak_explicit(&run->kfloor[k], &f, ver,
						      memory_order_relaxed,
						      memory_order_relaxed))
		;
}

/* "GET <key>: <what is wrong>" into msg; returns msg. */
__attribute__((format(printf, 5, 6)))
static const char *fail(const struct kb_opts *o, uint32_t k, char *msg,
			size_t n, const char *fmt, ...)
{
	char key[KB_MAX_KEY_SIZE + 1], why[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	kb_key_fill(key, o->key_size, k, false);
	key[o->key_size] = '\0';
	snprintf(msg, n, "GET %.60s: %s", key, why);
	return msg;
}

const char *kb_verify_get(struct kb_run *run, const struct net_resp_reply *rep,
			  uint32_t k, uint64_t floor, char *msg, size_t n)
{
	const struct kb_opts *o = run->o;
	struct kb_value_check vc;

	if (rep->type == NET_RESP_T_NULL) {
		if (o->preload)
			return fail(o, k, msg, n, "nil, but the key was preloaded");
		if (floor)
			return fail(o, k, msg, n, "nil, but version %llu had been "
				    "acknowledged before the GET was sent",
				    (unsigned long long)floor);
		return NULL;
	}
	const char *why = kb_value_check(run->pool, rep->str, rep->len, k, &vc);
	if (why) {
		/* The first bytes, printable, for the message. */
		char shown[25];
		size_t m = rep->len < 24 ? rep->len : 24;
		for (size_t i = 0; i < m; i++)
			shown[i] = rep->str[i] >= 0x20 && rep->str[i] < 0x7f ?
					   rep->str[i] : '?';
		shown[m] = '\0';
		return fail(o, k, msg, n, "%s (%zu bytes: \"%s\"%s)", why,
			    rep->len, shown, rep->len > m ? "..." : "");
	}
	if (vc.run != run->run_id) {
		/* A value some other run wrote (checked as completely as
		 * ours): fine where this run has not written the key yet. */
		if (o->preload || floor)
			return fail(o, k, msg, n, "a value from before this run "
				    "(run %08x version %llu)", vc.run,
				    (unsigned long long)vc.version);
		return NULL;
	}
	uint64_t top = atomic_load_explicit(&run->kstate[k], memory_order_relaxed) >>
		       KB_INFLIGHT_BITS;
	if (vc.version > top)
		return fail(o, k, msg, n, "version %llu was never written "
			    "(%llu were)", (unsigned long long)vc.version,
			    (unsigned long long)top);
	if (rep->len != kb_value_len(o, k, vc.version))
		return fail(o, k, msg, n, "%zu bytes, version %llu has %u",
			    rep->len, (unsigned long long)vc.version,
			    kb_value_len(o, k, vc.version));
	if (vc.version < floor)
		return fail(o, k, msg, n, "stale: version %llu, but version %llu "
			    "had been acknowledged before the GET was sent",
			    (unsigned long long)vc.version,
			    (unsigned long long)floor);
	return NULL;
}

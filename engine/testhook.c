/* testhook.c - the state of kvs_testhook.h's seams: armed by tests, read by
 * the engine at the few system calls they stand in front of. */
#include "testhook.h"

#include <stdatomic.h>
#include <stdbool.h>
#include "kvs_testhook.h"

#include <stdio.h>
#include <string.h>

/* Per seam: how many of the next calls fail (< 0: all of them until
 * disarmed), and with which errno. */
static atomic_int fail_n[KVS__TH_COUNT], fail_err[KVS__TH_COUNT];
static atomic_uint creates;
static atomic_ulong cp_lookups;
static _Thread_local unsigned long cp_walks; /* the calling thread's */
static atomic_ulong index_resizes, index_buckets;
static atomic_long slab_bytes;
static atomic_uint recovery_delay_us;
static atomic_uint publish_delay_us;
static atomic_uint replay_threads;
static atomic_bool skip_sync[KVS_HOOK_SYNC_COUNT];
static atomic_uint sync_interval_ms;

static void arm(enum kvs__testhook which, int count, int err)
{
	atomic_store(&fail_err[which], err);
	atomic_store(&fail_n[which], count);
}

void kvs__hook_lmdb_commit(int count, int err) { arm(KVS__TH_LMDB_COMMIT, count, err); }
void kvs__hook_compact_unlink(int count, int err) { arm(KVS__TH_UNLINK, count, err); }
void kvs__hook_compact_fsync_dir(int count, int err) { arm(KVS__TH_FSYNC_DIR, count, err); }
void kvs__hook_compact_create(int count, int err) { arm(KVS__TH_CREATE, count, err); }
void kvs__hook_compact_write(int count, int err) { arm(KVS__TH_OUT_WRITE, count, err); }
void kvs__hook_snapshot_link(int count, int err) { arm(KVS__TH_SNAP_LINK, count, err); }
void kvs__hook_snapshot_write(int count, int err) { arm(KVS__TH_SNAP_WRITE, count, err); }
unsigned kvs__hook_compact_creates(void) { return atomic_load(&creates); }
unsigned long kvs__hook_compact_lookups(void) { return atomic_load(&cp_lookups); }
unsigned long kvs__hook_compact_list_walks(void) { return cp_walks; }
void kvs__testhook_count_cp_walk(void) { cp_walks++; }
void kvs__testhook_count_index_resize(unsigned long n)
{
	atomic_fetch_add_explicit(&index_resizes, 1, memory_order_relaxed);
	atomic_store_explicit(&index_buckets, n, memory_order_relaxed);
}
void kvs__testhook_count_slab_bytes(long n)
{
	atomic_fetch_add_explicit(&slab_bytes, n, memory_order_relaxed);
}
long kvs__hook_index_slab_bytes(void) { return atomic_load(&slab_bytes); }
unsigned long kvs__hook_index_resizes(void) { return atomic_load(&index_resizes); }
unsigned long kvs__hook_index_buckets(void) { return atomic_load(&index_buckets); }
void kvs__testhook_count_cp_lookup(void)
{
	atomic_fetch_add_explicit(&cp_lookups, 1, memory_order_relaxed);
}
void kvs__hook_recovery_delay(unsigned us) { atomic_store(&recovery_delay_us, us); }
void kvs__hook_replay_threads(unsigned n) { atomic_store(&replay_threads, n); }
void kvs__hook_publish_delay(unsigned us) { atomic_store(&publish_delay_us, us); }
void kvs__hook_sync_interval(unsigned ms) { atomic_store(&sync_interval_ms, ms); }

void kvs__hook_skip_sync(enum kvs_hook_sync which, int skip)
{
	if ((unsigned)which < KVS_HOOK_SYNC_COUNT)
		atomic_store(&skip_sync[which], skip != 0);
}

bool kvs__testhook_skip_sync(enum kvs_hook_sync which)
{
	return atomic_load_explicit(&skip_sync[which], memory_order_relaxed);
}

unsigned kvs__testhook_sync_interval_ms(void)
{
	unsigned ms = atomic_load_explicit(&sync_interval_ms,
					   memory_order_relaxed);
	return ms ? ms : 1000;
}

int kvs__testhook_fail(enum kvs__testhook which)
{
	if (which == KVS__TH_CREATE)
		atomic_fetch_add(&creates, 1);
	int cur = atomic_load_explicit(&fail_n[which], memory_order_relaxed);
	if (cur < 0)
		return atomic_load(&fail_err[which]);
	while (cur > 0) {
		if (atomic_compare_exchange_weak(&fail_n[which], &cur, cur - 1))
			return atomic_load(&fail_err[which]);
	}
	return 0;
}

/* kvs__hook_compact_unlink_only: set by a test before the store runs. */
static char unlink_only[256];
static atomic_bool unlink_only_set;

void kvs__hook_compact_unlink_only(const char *name)
{
	atomic_store(&unlink_only_set, false);
	if (!name)
		return;
	snprintf(unlink_only, sizeof unlink_only, "%s", name);
	atomic_store(&unlink_only_set, true);
}

int kvs__testhook_fail_unlink(const char *path)
{
	if (atomic_load(&unlink_only_set)) {
		size_t n = strlen(path), m = strlen(unlink_only);
		if (n < m || strcmp(path + n - m, unlink_only) != 0)
			return 0;
	}
	return kvs__testhook_fail(KVS__TH_UNLINK);
}

unsigned kvs__testhook_publish_delay(void)
{
	return atomic_load_explicit(&publish_delay_us, memory_order_relaxed);
}

unsigned kvs__testhook_recovery_delay(void)
{
	return atomic_load_explicit(&recovery_delay_us, memory_order_relaxed);
}

unsigned kvs__testhook_replay_threads(void)
{
	return atomic_load_explicit(&replay_threads, memory_order_relaxed);
}

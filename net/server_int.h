/*
 * server_int.h - the structures of the server part of net/: a connection,
 * its write batch, a worker, the server.  Each field says which thread may
 * touch it and which file owns it; the functions are declared by the
 * header of the file that owns them (reply.h, batch.h, commands.h,
 * mailbox.h, conn.h, worker.h, acceptor.h).  Nothing outside net/ includes
 * it.
 *
 * The layers, bottom up; a file calls only files of the layers below it,
 * never one above (nm and tsort over build/obj/net find no cycle):
 *   util.c glob.c strops.c | resp.c resp_parse.c resp_reader.c (the codec)
 *   | reply.c ttl.c stats.c | batch.c | keyop.c str_run.c | cmd_conn.c
 *   cmd_save.c cmd_server.c cmd_config.c cmd_read.c cmd_write.c cmd_expire.c cmd_bits.c
 *   | cmd_keys.c cmd_string.c | cmd_multi.c
 *   | dispatch.c | mailbox.c | conn.c | worker.c | acceptor.c | server.c
 *   | main.c
 * The one way back up is a function pointer: the write batch's completion,
 * which batch.c reports through the hook conn.c gives net_batch_submit().
 *
 * "The writer thread" in net/ comments means the engine's writer, which
 * is one of two threads: the engine's writer thread, or the worker itself
 * when kvs_submit_all() found the writer idle and ran the round on the
 * worker's thread (docs/THREADS.md).  Update callbacks and completions are
 * written for either.
 */
#ifndef KVS_NET_SERVER_INT_H
#define KVS_NET_SERVER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdbool.h>
#include <time.h>

#include "kvs.h"
#include "resp.h"
#include "server.h"

/*
 * The states of a connection.  A worker owns its connections: only it reads
 * or changes these fields, except where a field says otherwise.
 */
enum net_conn_state {
	/* Reading requests and executing them, up to NET_CMDS_PER_WAKEUP per
	 * turn; replies are appended to `out` and sent as the socket takes
	 * them. */
	NET_CONN_ACTIVE = 0,
	/* A write was handed to the engine (kvs_submit) and its completion has
	 * not arrived.  The ops point into `in` (or the parser's scratch), so
	 * nothing is read into `in`, nothing is parsed and `in` is not
	 * compacted; replies already queued are still sent. */
	NET_CONN_PARKED,
	/* A last reply is queued (QUIT, a protocol error, shutdown, end of
	 * input): send it, then free the connection.  Nothing more is read. */
	NET_CONN_CLOSING,
	/* The socket is gone (closed by the peer, an error, an output limit)
	 * while a write was in flight.  The fd is closed; the connection is
	 * freed when the completion arrives, because the engine still reads
	 * the ops and the bytes they point at. */
	NET_CONN_ORPHANED,
};

/* Which reply a parked write will get once its completion arrives. */
enum net_write_kind {
	NET_W_SET = 1,   /* +OK, or nil when NX/XX did not apply */
	NET_W_SETNX,     /* :1 or :0 */
	NET_W_DEL,       /* :count of keys removed */
	NET_W_MSET,      /* +OK */
	NET_W_INCR,      /* :new value, or the error */
	NET_W_DEFERRED,  /* a reply made while the batch was open: defer[] */
	NET_W_UPDATE,    /* KVS_OP_UPDATE ops: the reply their callbacks
			    built on the writer thread (struct net_upd) */
	NET_W_EXEC,      /* EXEC's head: its ops check the WATCHed keys;
			    the array header (or nil if one changed), then
			    the replies of the next `ncmds` commands */
	NET_W_LATE,      /* no ops: late(c, late_arg) makes the reply when
			    the batch is answered (after it was applied) */
};

/*
 * The state of a command made of KVS_OP_UPDATE ops (batch.h): its update
 * callbacks run on the engine's writer thread, in order, and build the
 * command's reply in `reply` there; the worker sends it when the batch is
 * answered.  A command's own state embeds this as its first member.
 */
struct net_upd_mem;
struct net_upd {
	struct net_buf reply;     /* RESP bytes, built by the callbacks */
	struct net_upd_mem *mem;  /* net_upd_alloc()'s blocks */
	struct net_upd *next;     /* the batch's list of states */
	/* NULL, or called on the worker when the batch is emptied, before
	 * the state is freed: for memory the command owns beyond
	 * net_upd_alloc()'s (EXEC's queued commands). */
	void (*release)(struct net_upd *x);
};

struct net_conn;

/* One command of a connection's write batch: ops[first .. first+n), or for
 * NET_W_DEFERRED the held replies defer[first .. first+n). */
struct net_wcmd {
	enum net_write_kind kind;
	size_t first, n;
	struct net_upd *upd;       /* NET_W_UPDATE, NET_W_EXEC */
	size_t ncmds;              /* NET_W_EXEC: the commands it answers */
	void (*late)(struct net_conn *c, const void *arg); /* NET_W_LATE */
	const void *late_arg;
};

struct net_conn;
struct net_worker;
struct net_server;

/* Per-worker counters for INFO (stats.h): each written by its worker only,
 * read by any worker with relaxed loads. */
#define NET_MAX_COMMANDS 256  /* rows of the command table, at most */
#define NET_ERRSTATS 64       /* distinct error prefixes kept */
#define NET_ERRNAME 32
struct net_cmdstat {
	_Atomic(const char *) name; /* the command's, set on its first use */
	_Atomic(uint64_t) calls, usec, rejected, failed;
};
struct net_errstat {
	char name[NET_ERRNAME];    /* written before nerr publishes it */
	_Atomic(uint64_t) count;
};
struct net_wstats {
	struct net_cmdstat cmd[NET_MAX_COMMANDS];
	struct net_errstat err[NET_ERRSTATS];
	_Atomic(size_t) nerr;       /* err[0 .. nerr) in use (release) */
	_Atomic(uint64_t) errors;   /* error replies */
	_Atomic(uint64_t) hits, misses; /* GET found / did not find its key */
};

/*
 * A connection's write batch: batch.c's alone (nothing else reads or writes
 * these fields).  The write commands of a pipeline, one after the other, go
 * to the engine as one submission (applied in order, with no other write
 * between them) and are answered in order when it completes.  Open while
 * nwcmds > 0; in flight from net_batch_submit() until the completion has
 * been answered (net_batch_complete()), while the connection is PARKED or
 * ORPHANED.  The writer thread fills ops[].result/num, result and err, then
 * calls done(), which queues the connection on its worker's mailbox under
 * the worker's mutex: that orders those stores before the worker's reads.
 */
struct net_batch {
	struct kvs_op *ops;
	size_t nops, opscap;
	struct net_wcmd *wcmds;
	size_t nwcmds, capwcmds;
	struct net_upd *upds;      /* the NET_W_UPDATE commands' states */
	bool atomic;               /* holds an EXEC: submitted with
				      KVS_BATCH_ATOMIC, takes no more
				      commands */
	size_t held_noted;         /* defer[0 .. held_noted) has its place
				      among the commands */
	int result;                /* the batch's result */
	char err[256];             /* kvs_errmsg() where the batch failed (the
				      writer thread's, for a completion): the
				      worker's own would be another call's */
	void (*done)(struct net_conn *c); /* the completion hook given to
				      net_batch_submit(); writer thread */
};

/* A password: immutable once published. */
struct net_secret {
	struct net_secret *next;   /* old_secrets */
	size_t len;
	char bytes[];              /* len bytes and a NUL */
};

struct net_conn {
	int fd;                    /* -1 once ORPHANED */
	uint64_t id;               /* CLIENT ID: unique, from 1 */
	struct net_worker *w;      /* its owner: immutable */
	enum net_conn_state state;
	int eof;                   /* the peer shut its side down */
	int authed;                /* AUTH succeeded (or no password) */
	unsigned events;           /* the epoll interest registered now */
	struct net_buf in;         /* bytes read, not yet consumed */
	size_t in_pos;             /* bytes of `in` parsed and executed */
	/* Replies (reply.c owns them).  While a write batch is open, a
	 * command's immediate reply (an error) is held in `defer` and takes
	 * its place among the batch's replies when it completes. */
	struct net_buf out;        /* replies */
	size_t out_pos;            /* bytes of `out` already sent */
	int over_limit;            /* replies passed the output limit: they
				      are dropped and the connection closes */
	unsigned reply_pieces;     /* pieces the running command appended */
	struct net_buf defer;      /* replies held behind the open batch */
	bool holding;              /* replies go to `defer` (set by batch.c) */
	struct net_resp_parser parser;
	struct net_batch batch;    /* batch.c's */
	char *name;                /* CLIENT SETNAME, or NULL; written under
				      the server's clients_mu */
	struct net_conn *allprev, *allnext; /* the server's clients list */
	bool listed;               /* on it (guarded by clients_mu) */
	_Atomic(uint64_t) last_ms;  /* CLOCK_MONOTONIC ms of its last
				      command, for CLIENT LIST's idle and
				      the timeout */
	_Atomic(const char *) last_cmd; /* that command's name (static) */
	struct net_txn *txn;       /* MULTI and WATCH (cmd_multi.c's), NULL
				      until first used */
	bool in_multi;             /* between MULTI and EXEC/DISCARD */

	char addr[64];             /* the peer, "ip:port" */
	time_t since;              /* when it connected */
	/* Links: the worker's list of all its connections; the worker's list
	 * of connections with commands still to run (`ready`); the
	 * completion list (guarded by the worker's mutex). */
	struct net_conn *prev, *next;
	struct net_conn *rprev, *rnext;
	int ready;
	struct net_conn *done_next;
};

/* A connection handed from the acceptor to a worker. */
struct net_handoff {
	int fd;
	char addr[64];
};

struct net_worker {
	struct net_server *srv;    /* immutable */
	unsigned idx;              /* immutable */
	int epfd;                  /* immutable; used by the worker only */
	int evfd;                  /* immutable: the mailbox doorbell */
	/* The mailbox, guarded by mu: connections handed over by the
	 * acceptor, write completions from the engine's writer thread, and
	 * the stop request.  mu is a leaf lock held for pointer updates
	 * only. */
	pthread_mutex_t mu;
	int mu_ready;              /* mu initialised (for a failed start) */
	struct net_handoff *hand;
	size_t nhand, caphand;
	struct net_conn *done_head, *done_tail;
	int stop;
	int self_done;             /* done_head has completions the worker
				      posted itself (no ring) */
	/* Worker thread only (net_on_worker() asserts it), but `thread`,
	 * which net_mailbox_post_done() compares with the poster's. */
	pthread_t thread;          /* set by the worker when it starts */
	struct net_conn *conns;    /* all of its connections */
	size_t nconns;
	size_t nparked;            /* PARKED or ORPHANED */
	struct net_conn *ready_head, *ready_tail;
	/* Write batches parked during this pass, handed to the engine
	 * together before the worker waits again (net_batch_flush). */
	struct kvs_submission *subs;
	size_t nsubs, capsubs;
	int draining;
	struct timespec drain_deadline;
	struct net_wstats stats;   /* INFO's counters (stats.h) */
};

struct net_server {
	struct kvs *db;            /* immutable; owned by the caller */
	struct net_server_config cfg; /* immutable; strings below */
	/* The password, replaced by CONFIG SET requirepass: read with
	 * net_secret(); a replaced one stays allocated (old_secrets) until
	 * the server is freed, since a worker may still be reading it. */
	_Atomic(struct net_secret *) secret; /* NULL: none */
	struct net_secret *old_secrets; /* guarded by info_mu */
	bool bind_public;          /* bound to a non-loopback address */
	atomic_int protected_mode; /* bind_public without a password */
	uint64_t output_limit;
	int lfd;                   /* the listening socket */
	int spare_fd;              /* acceptor: /dev/null, given back to take
				      and refuse a connection when accept()
				      finds no descriptor (EMFILE) */
	int port;
	unsigned nworkers;
	struct net_worker *workers;
	struct tp_pool *pool;
	pthread_t acceptor;
	bool serving;              /* net_server_serve() started the threads;
				      main thread only */
	char *port_file;           /* NULL, or where serve writes the port */
	pthread_t acceptor_self;   /* set by the acceptor itself; acceptor
				      only (net_on_acceptor()) */
	atomic_int stopping;       /* the acceptor must end */
	time_t started;
	_Atomic(uint64_t) maxclients; /* RLIMIT_NOFILE less the reserve, or
				      CONFIG SET maxclients */
	_Atomic(uint64_t) timeout_s; /* CONFIG SET timeout: idle clients are
				      closed after it; 0: never */
	atomic_int fsync;          /* the store's policy (enum kvs_fsync) */
	/* Every connection, for CLIENT LIST and KILL: the links of struct
	 * net_conn's `all*`, its name and fd while listed; clients_mu is a
	 * leaf lock, taken when a connection comes and goes, by SETNAME,
	 * and by CLIENT LIST/KILL; never per command. */
	pthread_mutex_t clients_mu;
	struct net_conn *clients;
	/* Statistics (INFO), relaxed atomics. */
	atomic_ullong next_id;
	atomic_ullong connected;
	atomic_ullong total_conns;
	atomic_ullong rejected;
	atomic_ullong total_cmds;
	atomic_ullong net_in, net_out;
	atomic_ullong closed_by_limit;
	atomic_ullong auth_failures;
	atomic_llong last_store_log; /* time() of the last store error
					logged: one line a second at most */
	/* INFO's, guarded by info_mu (taken by INFO and CONFIG RESETSTAT
	 * only, never on the command path). */
	pthread_mutex_t info_mu;
	int info_mu_ready;
	void *stats_base;          /* RESETSTAT's baseline (stats.c) */
	uint64_t peak_mem;         /* used_memory_peak */
	uint64_t ops_ms, ops_total, ops_rate; /* the last sample of
				      instantaneous_ops_per_sec */
	struct net_save *save;     /* snapshots (cmd_save.c, save.h) */
};

/* CLOCK_MONOTONIC in microseconds (command timings, idle times). */
static inline uint64_t net_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
}

/* The password now (NULL: none).  Any thread. */
static inline const struct net_secret *net_secret_now(struct net_server *s)
{
	return atomic_load_explicit(&s->secret, memory_order_acquire);
}

/* util.c: is a rate-limited log line due?  True at most once a second for
 * one *last (the time() of the last line, updated): a client storm or a
 * full disk must not flood the log with one line per event.  Any thread. */
bool net_log_due(atomic_llong *last);

/* Is the calling thread w's worker?  For asserts of "worker thread only":
 * w->thread is written by the worker itself before it touches any
 * connection, and compared here only by the thread that expects to be it. */
static inline bool net_on_worker(const struct net_worker *w)
{
	return pthread_equal(pthread_self(), w->thread) != 0;
}

/* Is the calling thread s's acceptor?  (As net_on_worker().) */
static inline bool net_on_acceptor(const struct net_server *s)
{
	return pthread_equal(pthread_self(), s->acceptor_self) != 0;
}

#endif /* KVS_NET_SERVER_INT_H */

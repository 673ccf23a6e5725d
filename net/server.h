/*
 * server.h - kvs-server's network layer: the one public header of the server
 * part of net/ (the RESP codec has its own, resp.h).
 *
 * A server is an acceptor thread and N worker event loops (memcached's
 * model) in front of one open store; docs/THREADS.md draws the threads and
 * locks, docs/PROTOCOL.md lists the commands.
 *
 * Who may call what
 *   - net_server_start() (or net_server_listen() then net_server_serve()),
 *     net_server_stop(): the application's main thread (any one thread),
 *     start once and stop once per server.
 *   - net_server_port(): any thread while the server exists.
 *   - net_log(), net_parse_addr(), net_addr_is_loopback(),
 *     net_glob_match(): any thread; they share no state (net_log writes
 *     each line with one call, so lines never interleave).
 */
#ifndef KVS_NET_SERVER_H
#define KVS_NET_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "kvs.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Defaults, as Redis's. */
#define NET_DEFAULT_ADDR "127.0.0.1:4000"
#define NET_DEFAULT_OUTPUT_LIMIT (64ull << 20)  /* client-output-buffer-limit */
#define NET_QUERYBUF_MAX ((1ull << 30) + (64u << 10)) /* client-query-buffer-limit */
#define NET_CMDS_PER_WAKEUP 256 /* commands per connection per turn */
#define NET_TURN_OUTPUT (1u << 20) /* or until this many bytes of its
				      replies wait to be sent */
#define NET_BATCH_OPS 1024      /* a pipeline's writes batched: ops at most
				   (one command may bring more) */
/* Descriptors kept out of maxclients (= RLIMIT_NOFILE less these): the
 * store's (the log engine holds O(1): the active segment, the lock file,
 * and transient ones for a compaction output, a hint file being written,
 * a directory fsync, the sync thread's duplicate; lmdb its two files), with
 * room to spare; the server's own (stdin/out/err, the listening socket,
 * the acceptor's spare, a port file being written); and two a worker (its
 * epoll set and eventfd).  docs/THREADS.md explains the choice. */
#define NET_FD_RESERVE_STORE 32
#define NET_FD_RESERVE_SERVER 8
#define NET_MAXCLIENTS_UNLIMITED 10000 /* with no descriptor limit */

/* What a server needs to know.  Strings are only read during
 * net_server_start() or net_server_listen() (copied where kept). */
struct net_server_config {
	const char *addr;         /* "IP:PORT" or "[IPv6]:PORT"; port 0: any */
	unsigned threads;         /* worker event loops, >= 1 */
	const char *password;     /* NULL or "": no authentication */
	uint64_t output_limit;    /* bytes of pending replies; 0: the default */
	const char *port_file;    /* NULL, or where to write the bound port */
	/* Shown by INFO and the start-up log only. */
	const char *dir;
	const char *fsync_name;   /* "always", "everysec" or "never" */
	/* Where BGSAVE and SAVE put snapshots (NULL: "<dir>/snapshots"). */
	const char *snapshot_dir;
	/* A pipelined read of keys the connection's open write batch does not
	 * write runs without waiting for the batch (its reply is held in
	 * order).  Off by default: it lets a connection's read run before its
	 * own earlier writes to other keys are visible to other connections,
	 * an order Redis never shows (docs/SCALING.md, "Pipelined reads").
	 * Behind one twemproxy, the only client of a shard, nobody can see
	 * the difference, and it keeps the proxy's writes in one round. */
	bool early_reads;
};

struct net_server; /* a running server: opaque */

/*
 * Bind and listen on cfg->addr, start the workers (a TP_SHARED_QUEUE pool of
 * cfg->threads threads, each running one event loop) and the acceptor, log
 * the start-up line (version, address, engine, whether a password is
 * required; and whether protected mode is on), then write the bound port to
 * cfg->port_file (atomically: a temporary file renamed into place), so the
 * line is in the log once the file exists and the file exists only once
 * the server answers.  db must stay open until net_server_stop() returns.
 * Failures are logged with net_log(); returns 0 and *out, or -1 with nothing
 * left running.  The same as net_server_listen() then net_server_serve().
 */
int net_server_start(struct kvs *db, const struct net_server_config *cfg,
		     struct net_server **out);

/*
 * The two halves of net_server_start(), for a caller that must own the
 * address before it opens the store (kvs-server: a busy port must fail
 * before a store is created).  net_server_listen() binds and listens, no
 * thread started (clients that connect wait in the backlog); returns 0 and
 * *out, or -1 with nothing left.  A listening server is either served or
 * released with net_server_stop().  net_server_serve() does the rest with
 * db; on failure (-1) it has released s, which must not be used again.
 */
int net_server_listen(const struct net_server_config *cfg,
		      struct net_server **out);
int net_server_serve(struct net_server *s, struct kvs *db);

/* The port the server listens on (the ephemeral one when asked for 0). */
int net_server_port(const struct net_server *s);

/*
 * Graceful stop: stop accepting, let every write in flight complete and its
 * reply be sent, flush pending replies (at most a few seconds for clients
 * that do not read), close every connection, join every thread and free the
 * server.  The store is left open: the caller kvs_close()s it afterwards,
 * which makes everything durable.  Blocks until done.
 */
void net_server_stop(struct net_server *s);

/* Log levels of net_log(). */
enum net_log_level { NET_LOG_ERROR = 0, NET_LOG_WARN, NET_LOG_INFO };

/* One line on stderr: "YYYY-mm-dd HH:MM:SS.mmm [level] message". */
void net_log(enum net_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Parse "IP:PORT" or "[IPv6]:PORT" (numeric only, port 0..65535) into *ss
 * and *len.  Returns 0, or -1 if the text is not such an address.
 */
int net_parse_addr(const char *text, struct sockaddr_storage *ss,
		   socklen_t *len);

/* Nonzero if sa is a loopback address: 127.0.0.0/8, ::1 or ::ffff:127.x.
 * Protected mode (a non-loopback bind without a password) serves only the
 * clients for which this is true. */
int net_addr_is_loopback(const struct sockaddr *sa);

/*
 * Glob-style match of s[0..slen) against pat[0..plen), as Redis's KEYS and
 * SCAN MATCH: '*' any run of bytes, '?' one byte, "[abc]", "[a-z]", "[^a]"
 * (a set, a range, a negated set), '\x' the byte x literally.  nocase:
 * ASCII letters compare case-insensitively.  Both are binary-safe.
 * Returns 1 on a match, else 0.
 */
#define NET_GLOB_MAX_STEPS 10000000ul /* then the key does not match */
int net_glob_match(const char *pat, size_t plen, const char *s, size_t slen,
		   int nocase);

#ifdef __cplusplus
}
#endif
#endif /* KVS_NET_SERVER_H */

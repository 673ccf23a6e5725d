/*
 * kvs_bench_conn.c - kvs-bench's event loops: each thread owns an epoll
 * instance and its connections; each connection keeps P requests in flight,
 * pre-encoded into its output buffer and sent with one send() per batch;
 * replies are parsed incrementally from a large read buffer, timed, checked
 * and, with --verify, their values verified.
 *
 * Costs on the hot path, per batch of replies on one connection: one
 * recv(), one clock read (the reply time of the batch, and the send time of
 * the refill that follows it), one send().  Per request: no malloc, no
 * locked instruction (except --verify's per-key atomics, see
 * kvs_bench_verify.c, and -n's budget, claimed in chunks).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "kvs_bench.h"

enum conn_state { C_CONNECTING, C_AUTH, C_READY, C_DEAD };
enum phase { PH_CONNECT, PH_PRELOAD, PH_RUN };

/* A request in flight. */
struct kb_req {
	uint64_t sent_ns;
	uint64_t ver;    /* SET: the version written; GET: the floor at send */
	uint32_t key;
	uint8_t cmd;     /* enum kb_cmd, or KB_AUTH */
	uint8_t flags;
};
#define R_MEASURED  1u /* sent in the measured phase */
#define R_WARMUP    2u
#define R_PRELOAD   4u
#define R_CANDIDATE 8u /* --verify: see kvs_bench_verify.c */

/* --verify with MSET: each key of one MSET, beside its ring slot. */
struct kb_mkey {
	uint64_t ver;
	uint32_t key;
	uint8_t cand;
};

struct kb_conn {
	int fd;                  /* -1 once closed */
	enum conn_state state;
	bool want_out;           /* EPOLLOUT is registered */
	unsigned id;             /* 0..conns-1 over all loops */
	const struct kb_addr *addr;
	struct kb_thread *t;
	struct net_buf in, out;  /* out[out_off..len) is still to send */
	size_t out_off;
	struct net_resp_reader rd;
	struct kb_req *ring;     /* requests in flight, oldest at head */
	unsigned head, count, cap;
	struct kb_mkey *mkeys;   /* [cap * KB_MSET_KEYS] or NULL */
	struct rng rng;
	uint64_t wseq;           /* versions without --verify */
	uint32_t pl_next, pl_end;/* preload: keys claimed, not yet sent */
};

#define EVENTS 256
#define TICK_MS 100               /* the longest epoll_wait */
#define DRAIN_NS 1000000000ull    /* after SIGINT: replies still awaited */
#define PRELOAD_CHUNK 256
#define OUT_MAX (4u << 20)        /* output buffer: bytes encoded at once */

/* ---- connections --------------------------------------------------------------------- */

static void set_events(struct kb_conn *c, bool out)
{
	struct epoll_event ev = { .events = EPOLLIN | (out ? EPOLLOUT : 0),
				  .data.ptr = c };
	if (c->want_out == out)
		return;
	c->want_out = out;
	epoll_ctl(c->t->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Close c.  Its requests in flight are counted as lost when `lost`. */
static void conn_close(struct kb_conn *c, bool lost)
{
	struct kb_thread *t = c->t;

	if (c->state == C_DEAD)
		return;
	if (c->fd >= 0) {
		epoll_ctl(t->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
	}
	if (lost)
		kb_inc(&t->st->lost, c->count);
	t->inflight -= c->count;
	c->count = 0;
	c->head = 0;
	c->state = C_DEAD;
	t->alive--;
}

/* Count an error of `kind`, note it, close c. */
__attribute__((format(printf, 3, 4)))
static void conn_fail(struct kb_conn *c, enum kb_err kind, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	kb_inc(&c->t->st->err[kind], 1);
	kb_note(kind, "%s: %s", c->addr->text, msg);
	conn_close(c, true);
}

/* Send what is pending; EPOLLOUT while the socket is full.  Returns false
 * if the connection failed (it is then closed). */
static bool conn_flush(struct kb_conn *c)
{
	while (c->out_off < c->out.len) {
		ssize_t n = send(c->fd, c->out.data + c->out_off,
				 c->out.len - c->out_off, MSG_NOSIGNAL);
		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			set_events(c, true);
			return true;
		}
		conn_fail(c, KB_E_CONNECTION, "send: %s",
			  n < 0 ? strerror(errno) : "nothing sent");
		return false;
	}
	c->out.len = 0;
	c->out_off = 0;
	set_events(c, false);
	return true;
}

static struct kb_req *push(struct kb_conn *c)
{
	unsigned i = c->head + c->count;
	if (i >= c->cap)
		i -= c->cap;
	c->count++;
	c->t->inflight++;
	return &c->ring[i];
}

static unsigned slot_of(const struct kb_conn *c, const struct kb_req *r)
{
	return (unsigned)(r - c->ring);
}

/* Start a nonblocking connect; the loop's PH_CONNECT finishes it. */
static void conn_start(struct kb_conn *c)
{
	struct kb_thread *t = c->t;
	int one = 1;

	c->fd = socket(c->addr->ss.ss_family,
		       SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		conn_fail(c, KB_E_CONNECTION, "socket: %s", strerror(errno));
		return;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };
	if (epoll_ctl(t->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
		conn_fail(c, KB_E_CONNECTION, "epoll_ctl: %s", strerror(errno));
		return;
	}
	c->want_out = true;
	c->state = C_CONNECTING;
	if (connect(c->fd, (const struct sockaddr *)&c->addr->ss,
		    c->addr->len) != 0 && errno != EINPROGRESS)
		conn_fail(c, KB_E_CONNECTION, "connect: %s", strerror(errno));
	/* Success or EINPROGRESS: EPOLLOUT reports the outcome. */
}

/* The connect finished (EPOLLOUT): check it, then AUTH if asked to. */
static void conn_connected(struct kb_conn *c, uint64_t now)
{
	const struct kb_opts *o = c->t->run->o;
	int err = 0;
	socklen_t len = sizeof err;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err) {
		conn_fail(c, KB_E_CONNECTION, "connect: %s", strerror(err));
		return;
	}
	if (!o->password) {
		c->state = C_READY;
		set_events(c, false);
		return;
	}
	const char *argv[2] = { "AUTH", o->password };
	size_t lens[2] = { 4, strlen(o->password) };
	if (net_resp_put_command(&c->out, 2, argv, lens) != NET_RESP_OK) {
		c->t->failed = ENOMEM;
		conn_close(c, false);
		return;
	}
	struct kb_req *r = push(c);
	memset(r, 0, sizeof *r);
	r->cmd = KB_AUTH;
	r->sent_ns = now;
	c->state = C_AUTH;
	conn_flush(c);
}

/* ---- encoding ---------------------------------------------------------------------------- */

static char *put_mem(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

static char *put_uint(char *p, uint64_t v)
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

/* "$len\r\n" */
static char *put_bulk_len(char *p, size_t len)
{
	*p++ = '$';
	p = put_uint(p, len);
	*p++ = '\r';
	*p++ = '\n';
	return p;
}

static char *put_key(char *p, const struct kb_opts *o, uint32_t k,
		     bool counter)
{
	p = put_bulk_len(p, o->key_size);
	kb_key_fill(p, o->key_size, k, counter);
	p += o->key_size;
	*p++ = '\r';
	*p++ = '\n';
	return p;
}

/* The next version of key k to write (see kvs_bench_verify.c). */
static uint64_t take_version(struct kb_conn *c, uint32_t k, bool *cand)
{
	if (!c->t->run->o->verify) {
		*cand = false;
		return ++c->wseq;
	}
	return kb_verify_take(c->t->run, k, cand);
}

static char *put_value(char *p, struct kb_conn *c, uint32_t k, uint64_t ver)
{
	struct kb_run *run = c->t->run;
	uint32_t len = kb_value_len(run->o, k, ver);

	p = put_bulk_len(p, len);
	kb_value_fill(run->pool, p, len, k, ver, run->run_id);
	p += len;
	*p++ = '\r';
	*p++ = '\n';
	return p;
}

static uint32_t next_key(struct kb_conn *c)
{
	struct kb_thread *t = c->t;
	const struct kb_opts *o = t->run->o;

	switch (o->dist) {
	case KB_ZIPF:
		return kb_zipf_next(&t->run->zipf, &c->rng);
	case KB_SEQUENTIAL: {
		uint32_t k = t->seq;
		t->seq = k + 1 >= o->keys ? 0 : k + 1;
		return k;
	}
	case KB_UNIFORM:
	default:
		return rng_below(&c->rng, o->keys);
	}
}

/* The most bytes one request of the workload (or a preload SET) takes. */
static size_t request_max(const struct kb_opts *o)
{
	size_t pair = 2 * 16 + o->key_size + o->vmax;
	return 32 + (o->cmd == KB_MSET ? KB_MSET_KEYS : 1) * pair;
}

/* Encode one request of command `cmd` at p into r; returns the end. */
static char *encode(struct kb_conn *c, char *p, int cmd, uint32_t key,
		    struct kb_req *r)
{
	const struct kb_opts *o = c->t->run->o;
	bool cand;

	r->cmd = (uint8_t)cmd;
	r->key = key;
	r->ver = 0;
	switch (cmd) {
	case KB_PING:
		return put_mem(p, "*1\r\n$4\r\nPING\r\n", 14);
	case KB_GET:
		if (o->verify)
			r->ver = kb_verify_floor(c->t->run, key);
		p = put_mem(p, "*2\r\n$3\r\nGET\r\n", 13);
		return put_key(p, o, key, false);
	case KB_SET:
		r->ver = take_version(c, key, &cand);
		if (cand)
			r->flags |= R_CANDIDATE;
		p = put_mem(p, "*3\r\n$3\r\nSET\r\n", 13);
		p = put_key(p, o, key, false);
		return put_value(p, c, key, r->ver);
	case KB_INCR:
		p = put_mem(p, "*2\r\n$4\r\nINCR\r\n", 14);
		return put_key(p, o, key, true);
	case KB_DEL:
		p = put_mem(p, "*2\r\n$3\r\nDEL\r\n", 13);
		return put_key(p, o, key, false);
	case KB_MSET: {
		struct kb_mkey *mk = c->mkeys ?
			&c->mkeys[slot_of(c, r) * KB_MSET_KEYS] : NULL;
		p = put_mem(p, "*21\r\n$4\r\nMSET\r\n", 15);
		for (unsigned i = 0; i < KB_MSET_KEYS; i++) {
			uint32_t k = i ? next_key(c) : key;
			uint64_t ver = take_version(c, k, &cand);
			if (mk) {
				mk[i].key = k;
				mk[i].ver = ver;
				mk[i].cand = cand;
			}
			p = put_key(p, o, k, false);
			p = put_value(p, c, k, ver);
		}
		return p;
	}
	}
	return p;
}

/* -n: claim a chunk of the budget for this loop.  False once it is gone
 * (it never grows again, so a false is final). */
static bool claim(struct kb_thread *t)
{
	struct kb_run *run = t->run;
	int64_t left = atomic_load_explicit(&run->budget, memory_order_relaxed);

	if (left <= 0)
		return false;
	/* Small chunks near the end, so that no loop sits on tokens while
	 * the others are idle. */
	int64_t want = left / (8 * (int64_t)run->o->threads);
	if (want < 1)
		want = 1;
	if (want > 4096)
		want = 4096;
	int64_t before = atomic_fetch_sub_explicit(&run->budget, want,
						   memory_order_relaxed);
	if (before <= 0)
		return false;
	t->tokens = before < want ? before : want;
	return true;
}

/* Fill c's pipeline up to its depth and send.  `now` is the send time. */
static void refill(struct kb_conn *c, enum phase ph, uint64_t now)
{
	struct kb_thread *t = c->t;
	struct kb_run *run = t->run;
	const struct kb_opts *o = run->o;
	unsigned depth = ph == PH_PRELOAD ? c->cap : o->pipeline;
	size_t rmax = request_max(o);
	bool more = true;

	if (c->state != C_READY)
		return;
	if (atomic_load_explicit(&run->stop, memory_order_relaxed) ||
	    (ph == PH_RUN && now >= run->end_ns))
		return;
	while (more && c->count < depth) {
		/* Encode as many as fit in OUT_MAX (at least one), send them;
		 * a big pipeline of big values goes out in several rounds. */
		size_t want = rmax * (depth - c->count);
		if (want > OUT_MAX)
			want = OUT_MAX > rmax ? OUT_MAX : rmax;
		if (c->out.cap - c->out.len < rmax &&
		    net_buf_reserve(&c->out, want) != 0) {
			t->failed = ENOMEM;
			return;
		}
		char *p = c->out.data + c->out.len;
		char *lim = c->out.data + c->out.cap - rmax;
		while (c->count < depth && p <= lim) {
			uint8_t flags;
			int cmd;
			uint32_t key;

			if (ph == PH_PRELOAD) {
				if (c->pl_next == c->pl_end) {
					uint64_t k = atomic_fetch_add_explicit(
						&run->preload_next, PRELOAD_CHUNK,
						memory_order_relaxed);
					if (k >= o->keys) {
						more = false;
						break;
					}
					c->pl_next = (uint32_t)k;
					c->pl_end = (uint32_t)(k + PRELOAD_CHUNK < o->keys ?
							       k + PRELOAD_CHUNK : o->keys);
				}
				cmd = KB_SET;
				key = c->pl_next++;
				flags = R_PRELOAD;
			} else {
				if (now >= run->measure_ns) {
					if (o->requests && t->tokens == 0 && !claim(t)) {
						more = false;
						break;
					}
					if (o->requests)
						t->tokens--;
					flags = R_MEASURED;
				} else {
					flags = R_WARMUP;
				}
				if (o->cmd >= 0)
					cmd = o->cmd;
				else
					cmd = rng_below(&c->rng, o->ratio_set + o->ratio_get) <
						      o->ratio_set ? KB_SET : KB_GET;
				key = cmd == KB_PING ? 0 : next_key(c);
			}
			struct kb_req *r = push(c);
			r->flags = flags;
			r->sent_ns = now;
			p = encode(c, p, cmd, key, r);
		}
		c->out.len = (size_t)(p - c->out.data);
		if (!conn_flush(c) || c->out.len)
			return; /* failed, or the socket is full: EPOLLOUT */
	}
}

/* ---- replies -------------------------------------------------------------------------------- */

static void count_error_reply(struct kb_thread *t, const char *s, size_t len)
{
	struct kb_stats *st = t->st;
	size_t n = 0;

	while (n < len && s[n] != ' ' && n < sizeof st->prefix[0].name - 1)
		n++;
	kb_inc(&st->err[KB_E_ERROR_REPLY], 1);
	for (unsigned i = 0; i < st->nprefix; i++) {
		if (strlen(st->prefix[i].name) == n &&
		    memcmp(st->prefix[i].name, s, n) == 0) {
			st->prefix[i].n++;
			return;
		}
	}
	if (st->nprefix == KB_MAX_PREFIXES) {
		st->prefix_other++;
		return;
	}
	memcpy(st->prefix[st->nprefix].name, s, n);
	st->prefix[st->nprefix].name[n] = '\0';
	st->prefix[st->nprefix].n = 1;
	st->nprefix++;
	/* The first of each prefix is shown (a wrong password, a command
	 * the server does not have). */
	kb_note(KB_E_ERROR_REPLY, "error reply: %.*s", (int)(len > 150 ? 150 : len), s);
}

static bool type_ok(int cmd, const struct net_resp_reply *rep)
{
	switch (cmd) {
	case KB_PING:
	case KB_SET:
	case KB_MSET:
	case KB_AUTH:
		return rep->type == NET_RESP_T_SIMPLE;
	case KB_GET:
		return rep->type == NET_RESP_T_BULK || rep->type == NET_RESP_T_NULL;
	default:
		return rep->type == NET_RESP_T_INTEGER;
	}
}

/* The reply `rep` to request r (already taken off the ring), at `now`. */
static void on_reply(struct kb_conn *c, const struct kb_req *r, unsigned slot,
		     const struct net_resp_reply *rep, uint64_t now)
{
	struct kb_thread *t = c->t;
	struct kb_run *run = t->run;
	struct kb_stats *st = t->st;
	bool is_err = rep->type == NET_RESP_T_ERROR;
	bool ok = !is_err && type_ok(r->cmd, rep);

	if (r->cmd == KB_AUTH) {
		if (ok) {
			c->state = C_READY;
			return;
		}
		conn_fail(c, KB_E_CONNECTION, "AUTH failed: %.*s",
			  (int)(rep->str && rep->len < 150 ? rep->len : 0),
			  rep->str ? rep->str : "");
		return;
	}
	if (is_err)
		count_error_reply(t, rep->str, rep->len);
	else if (!ok) {
		kb_inc(&st->err[KB_E_PROTOCOL], 1);
		kb_note(KB_E_PROTOCOL, "%s: a reply of type %d to %s",
			c->addr->text, (int)rep->type, kb_cmd_name[r->cmd]);
	}
	if (run->o->verify) {
		if (r->cmd == KB_SET) {
			kb_verify_set_done(run, r->key, r->ver,
					   r->flags & R_CANDIDATE, ok);
		} else if (r->cmd == KB_MSET) {
			const struct kb_mkey *mk = &c->mkeys[slot * KB_MSET_KEYS];
			for (unsigned i = 0; i < KB_MSET_KEYS; i++)
				kb_verify_set_done(run, mk[i].key, mk[i].ver,
						   mk[i].cand, ok);
		} else if (r->cmd == KB_GET && ok) {
			char msg[200];
			if (kb_verify_get(run, rep, r->key, r->ver, msg, sizeof msg)) {
				kb_inc(&st->err[KB_E_VERIFY], 1);
				kb_note(KB_E_VERIFY, "%s: verify: %s", c->addr->text, msg);
			}
		}
	}
	if (r->flags & R_MEASURED) {
		uint64_t lat = now > r->sent_ns ? now - r->sent_ns : 0;
		struct kb_ahist *h = &st->hist[r->cmd];
		unsigned i = hist_index(lat);
		kb_inc(&h->b[i], 1);
		kb_inc(&st->ops[r->cmd], 1);
		kb_inc(&st->sum_ns[r->cmd], lat);
		if (lat > kb_get(&st->max_ns[r->cmd]))
			atomic_store_explicit(&st->max_ns[r->cmd], lat,
					      memory_order_relaxed);
	} else if (r->flags & R_WARMUP) {
		kb_inc(&st->warm_ops, 1);
	} else {
		kb_inc(&st->preload_ops, 1);
	}
}

/* Readable (or hung up): read once, handle every complete reply, refill. */
static void conn_read(struct kb_conn *c, enum phase ph)
{
	struct kb_thread *t = c->t;
	bool eof = false;
	ssize_t n = 0;

	for (;;) {
		size_t room = c->in.cap - c->in.len;
		if (room < 4096) {
			size_t hint = net_resp_reader_hint(&c->rd);
			if (net_buf_reserve(&c->in, hint > 65536 ? hint : 65536) != 0) {
				t->failed = ENOMEM;
				conn_close(c, true);
				return;
			}
			room = c->in.cap - c->in.len;
		}
		n = recv(c->fd, c->in.data + c->in.len, room, 0);
		if (n > 0) {
			c->in.len += (size_t)n;
			if ((size_t)n == room)
				continue; /* there may be more */
			break;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		eof = true;
		break;
	}
	int saved = errno;
	uint64_t now = now_ns();
	size_t off = 0;
	while (off < c->in.len && c->state != C_DEAD) {
		const struct net_resp_reply *rep;
		size_t used;
		int rc = net_resp_read_reply(&c->rd, c->in.data + off,
					     c->in.len - off, &rep, &used);
		if (rc == NET_RESP_NEED_MORE)
			break;
		if (rc != NET_RESP_OK) {
			if (rc == NET_RESP_ENOMEM)
				t->failed = ENOMEM;
			conn_fail(c, KB_E_PROTOCOL, "%s",
				  net_resp_reader_errmsg(&c->rd));
			return;
		}
		off += used;
		if (c->count == 0) {
			conn_fail(c, KB_E_PROTOCOL, "a reply to no request");
			return;
		}
		unsigned slot = c->head;
		struct kb_req r = c->ring[slot];
		c->head = slot + 1 == c->cap ? 0 : slot + 1;
		c->count--;
		t->inflight--;
		on_reply(c, &r, slot, rep, now);
	}
	if (c->state == C_DEAD)
		return;
	net_buf_consume(&c->in, off);
	if (eof) {
		if (n == 0)
			conn_fail(c, KB_E_CONNECTION, "connection closed by the server");
		else
			conn_fail(c, KB_E_CONNECTION, "recv: %s", strerror(saved));
		return;
	}
	if (ph != PH_CONNECT)
		refill(c, ph, now);
}

/* ---- the loop ------------------------------------------------------------------------------- */

/* Run phase `ph` until it is over for this loop. */
static void loop(struct kb_thread *t, enum phase ph)
{
	struct kb_run *run = t->run;
	const struct kb_opts *o = run->o;
	struct epoll_event ev[EVENTS];
	uint64_t timeout_ns = (uint64_t)(o->timeout * 1e9);
	uint64_t now = now_ns(), next_check = now + TICK_MS * 1000000ull;
	uint64_t connect_deadline = now + timeout_ns, drain_deadline = 0;

	if (ph != PH_CONNECT)
		for (unsigned i = 0; i < t->nconns; i++)
			refill(&t->conns[i], ph, now);
	for (;;) {
		if (t->failed)
			break;
		if (ph == PH_CONNECT) {
			unsigned pending = 0;
			for (unsigned i = 0; i < t->nconns; i++)
				pending += t->conns[i].state == C_CONNECTING ||
					   t->conns[i].state == C_AUTH;
			if (pending == 0)
				break;
			if (now >= connect_deadline ||
			    atomic_load_explicit(&run->stop, memory_order_relaxed)) {
				for (unsigned i = 0; i < t->nconns; i++) {
					struct kb_conn *c = &t->conns[i];
					if (c->state == C_CONNECTING || c->state == C_AUTH)
						conn_fail(c, KB_E_CONNECTION,
							  c->state == C_AUTH ?
								  "no reply to AUTH" :
								  "connect: timed out");
				}
				break;
			}
		} else {
			if (t->inflight == 0)
				break;
			if (atomic_load_explicit(&run->stop, memory_order_relaxed)) {
				if (!drain_deadline)
					drain_deadline = now + DRAIN_NS;
				else if (now >= drain_deadline)
					break;
			}
		}
		int n = epoll_wait(t->ep, ev, EVENTS, TICK_MS);
		if (n < 0 && errno != EINTR) {
			t->failed = errno;
			break;
		}
		for (int i = 0; i < n; i++) {
			struct kb_conn *c = ev[i].data.ptr;
			if (c->state == C_DEAD)
				continue;
			if (c->state == C_CONNECTING) {
				conn_connected(c, now_ns());
				continue;
			}
			if (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
				conn_read(c, ph);
			if (c->state != C_DEAD && (ev[i].events & EPOLLOUT) &&
			    conn_flush(c) && c->out.len == 0 && ph != PH_CONNECT)
				refill(c, ph, now_ns());
		}
		now = now_ns();
		if (now >= next_check) {
			/* Requests without a reply for too long. */
			next_check = now + TICK_MS * 1000000ull;
			for (unsigned i = 0; i < t->nconns; i++) {
				struct kb_conn *c = &t->conns[i];
				if (c->state == C_DEAD || c->count == 0 ||
				    now - c->ring[c->head].sent_ns <= timeout_ns)
					continue;
				kb_inc(&t->st->err[KB_E_TIMEOUT], c->count);
				kb_note(KB_E_TIMEOUT, "%s: no reply within %g s "
					"(%u requests in flight); closing the "
					"connection", c->addr->text, o->timeout,
					c->count);
				conn_close(c, false);
			}
		}
	}
	if (ph != PH_CONNECT && t->inflight) {
		/* Interrupted (or failed): what is still in flight is dropped,
		 * not counted as an error. */
		for (unsigned i = 0; i < t->nconns; i++) {
			struct kb_conn *c = &t->conns[i];
			if (c->state != C_DEAD && c->count)
				conn_close(c, false);
		}
	}
}

/* ---- the thread ------------------------------------------------------------------------------ */

static int setup(struct kb_thread *t)
{
	const struct kb_opts *o = t->run->o;
	unsigned cap = o->pipeline;
	size_t rbuf;

	if (o->preload && cap < KB_PRELOAD_DEPTH)
		cap = KB_PRELOAD_DEPTH;
	/* Room for a whole pipeline of replies, within reason: 64 KiB
	 * for up to 1000 connections, 16 KiB beyond. */
	rbuf = o->conns <= 1000 ? 65536 : 16384;
	t->ep = epoll_create1(EPOLL_CLOEXEC);
	if (t->ep < 0)
		return errno;
	for (unsigned i = 0; i < t->nconns; i++) {
		struct kb_conn *c = &t->conns[i];
		c->ring = calloc(cap, sizeof *c->ring);
		c->cap = cap;
		if (!c->ring)
			return ENOMEM;
		if (o->verify && o->cmd == KB_MSET) {
			c->mkeys = calloc((size_t)cap * KB_MSET_KEYS, sizeof *c->mkeys);
			if (!c->mkeys)
				return ENOMEM;
		}
		if (net_buf_reserve(&c->in, rbuf) != 0)
			return ENOMEM;
	}
	return 0;
}

void *kb_thread_main(void *arg)
{
	struct kb_thread *t = arg;
	struct kb_run *run = t->run;
	sigset_t set;

	/* Signals go to main, which tells the loops through run->stop. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	t->ep = -1;
	t->alive = t->nconns;
	t->seq = (uint32_t)((uint64_t)run->o->keys * t->id / run->o->threads);
	int err = setup(t);
	if (err) {
		t->failed = err;
		for (unsigned i = 0; i < t->nconns; i++)
			conn_close(&t->conns[i], false);
	} else {
		for (unsigned i = 0; i < t->nconns; i++)
			conn_start(&t->conns[i]);
		loop(t, PH_CONNECT);
	}
	unsigned ready = 0;
	for (unsigned i = 0; i < t->nconns; i++)
		ready += t->conns[i].state == C_READY;
	atomic_fetch_add(&run->connected, ready);

	/* The phases, in step with main (see struct kb_run). */
	pthread_barrier_wait(&run->barrier);
	pthread_barrier_wait(&run->barrier);
	if (!run->abort) {
		if (run->o->preload) {
			loop(t, PH_PRELOAD);
			pthread_barrier_wait(&run->barrier);
		}
		pthread_barrier_wait(&run->barrier);
		loop(t, PH_RUN);
	}
	t->end_ns = now_ns();
	for (unsigned i = 0; i < t->nconns; i++)
		conn_close(&t->conns[i], false);
	atomic_fetch_add(&run->done, 1);
	return NULL;
}

void kb_thread_free(struct kb_thread *t)
{
	for (unsigned i = 0; i < t->nconns; i++) {
		struct kb_conn *c = &t->conns[i];
		net_buf_free(&c->in);
		net_buf_free(&c->out);
		net_resp_reader_free(&c->rd);
		free(c->ring);
		free(c->mkeys);
	}
	free(t->conns);
	t->conns = NULL;
	if (t->ep >= 0)
		close(t->ep);
	t->ep = -1;
}

int kb_thread_init(struct kb_thread *t, struct kb_run *run, unsigned id,
		   unsigned first, unsigned n)
{
	const struct kb_opts *o = run->o;

	memset(t, 0, sizeof *t);
	t->id = id;
	t->run = run;
	t->ep = -1;
	t->conns = calloc(n ? n : 1, sizeof *t->conns);
	if (!t->conns)
		return ENOMEM;
	t->nconns = n;
	for (unsigned i = 0; i < n; i++) {
		struct kb_conn *c = &t->conns[i];
		c->fd = -1;
		c->state = C_CONNECTING;
		c->id = first + i;
		c->addr = &o->addr[c->id % o->naddr];
		c->t = t;
		net_resp_reader_init(&c->rd);
		rng_seed(&c->rng, o->seed * 0x100000001b3ull + c->id);
	}
	return 0;
}

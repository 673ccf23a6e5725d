/* kvs-client.c - the network client: set, get and rm against a kvs server
 * (or any Redis server) over RESP2, with talent-plan project 3's behaviour. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "kvs.h"
#include "resp.h"

#define DEFAULT_ADDR "127.0.0.1:4000"
/* A server that does not answer is given up on rather than waited for. */
#define CONNECT_TIMEOUT_MS 10000
#define IO_TIMEOUT_SEC 60
#define READ_SIZE 16384

static void usage(FILE *out)
{
	fprintf(out,
		"usage: kvs-client set KEY VALUE [--addr IP:PORT] [--password PW]\n"
		"       kvs-client get KEY [--addr IP:PORT] [--password PW]\n"
		"       kvs-client rm KEY [--addr IP:PORT] [--password PW]\n"
		"       kvs-client -V | --version\n"
		"       kvs-client -h | --help\n"
		"A \"--\" lets KEY or VALUE start with '-'.\n"
		"\n"
		"Talks to the server at IP:PORT (default " DEFAULT_ADDR
		"; IPv6 as [::1]:4000)\n"
		"over the Redis protocol.  get prints the value, or 'Key not "
		"found' (exit 0).\n"
		"rm of a missing key prints 'Key not found' on stderr and "
		"exits 1.\n"
		"\n"
		"  --addr IP:PORT   the server (default " DEFAULT_ADDR ")\n"
		"  --password PW    AUTH with PW first (default: $KVS_PASSWORD)\n"
		"  -V, --version    print the version\n"
		"  -h, --help       this text\n"
		"\n"
		"Exit status: 0 done (get of a missing key included); 1 rm of a "
		"missing key,\nan error reply, a wrong password, or no "
		"connection; 2 bad usage or address.\n");
}

/*
 * Split "IP:PORT" or "[IPv6]:PORT" and resolve it, numerically only (no DNS):
 * the address of a server is an IP address, as in talent-plan.  Returns 0
 * and *res (freeaddrinfo() it), or -1 with a message printed.
 */
static int parse_addr(const char *addr, struct addrinfo **res)
{
	char host[256];
	const char *start = addr, *port;
	size_t hlen;

	if (addr[0] == '[') {
		const char *end = strchr(addr, ']');
		if (!end || end[1] != ':')
			goto bad;
		start = addr + 1;
		hlen = (size_t)(end - start);
		port = end + 2;
	} else {
		const char *colon = strrchr(addr, ':');
		/* A bare IPv6 address ("::1:4000") is ambiguous. */
		if (!colon || memchr(addr, ':', (size_t)(colon - addr)))
			goto bad;
		hlen = (size_t)(colon - addr);
		port = colon + 1;
	}
	if (hlen == 0 || hlen >= sizeof host)
		goto bad;
	memcpy(host, start, hlen);
	host[hlen] = '\0';
	/* 1..65535, digits only. */
	long p = 0;
	if (*port == '\0' || strlen(port) > 5)
		goto bad;
	for (const char *c = port; *c; c++) {
		if (*c < '0' || *c > '9')
			goto bad;
		p = p * 10 + (*c - '0');
	}
	if (p < 1 || p > 65535)
		goto bad;

	struct addrinfo hints;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if (getaddrinfo(host, port, &hints, res) != 0)
		goto bad;
	return 0;
bad:
	fprintf(stderr, "kvs-client: invalid address '%s' (expected IP:PORT)\n",
		addr);
	return -1;
}

/* Wait for a non-blocking connect() to finish.  0, or -1 with errno. */
static int wait_connected(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	int n, err = 0;
	socklen_t len = sizeof err;

	do
		n = poll(&pfd, 1, CONNECT_TIMEOUT_MS);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	if (n == 0) {
		errno = ETIMEDOUT;
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		return -1;
	if (err != 0) {
		errno = err;
		return -1;
	}
	return 0;
}

/* Connect with a deadline, then make the socket blocking with I/O
 * timeouts.  Returns the socket, or -1 with errno. */
static int connect_to(const struct addrinfo *ai)
{
	struct timeval tv = { .tv_sec = IO_TIMEOUT_SEC };
	int fd, flags, saved;

	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 &&
	    (errno != EINPROGRESS || wait_connected(fd) != 0))
		goto fail;
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0)
		goto fail;
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Send one command and read its reply into *in.  Returns 0 and *reply
 * (pointing into in), or -1 with a message printed.
 */
/* Read one reply from fd into *in.  0 and *reply, or -1 with a message. */
static int read_reply(int fd, const char *addr, struct net_buf *in,
		      struct net_resp_reader *rd,
		      const struct net_resp_reply **reply)
{
	for (;;) {
		size_t used;
		int r = net_resp_read_reply(rd, in->data, in->len, reply, &used);
		if (r == NET_RESP_OK)
			return 0;
		if (r != NET_RESP_NEED_MORE) {
			fprintf(stderr, "kvs-client: bad reply from %s: %s\n",
				addr, net_resp_reader_errmsg(rd));
			return -1;
		}
		size_t want = net_resp_reader_hint(rd);
		if (net_buf_reserve(in, want > READ_SIZE ? want : READ_SIZE) !=
		    NET_RESP_OK) {
			fprintf(stderr, "kvs-client: out of memory\n");
			return -1;
		}
		ssize_t n = recv(fd, in->data + in->len, in->cap - in->len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "kvs-client: receive from %s: %s\n", addr,
				errno == EAGAIN || errno == EWOULDBLOCK ?
					"timed out" : strerror(errno));
			return -1;
		}
		if (n == 0) {
			fprintf(stderr,
				"kvs-client: %s closed the connection without "
				"a reply\n", addr);
			return -1;
		}
		in->len += (size_t)n;
	}
}

/* Encode one command and send it whole on fd.  0, or -1 with a message
 * printed. */
static int send_command(int fd, const char *addr, size_t argc,
			const char *const *argv, const size_t *lens)
{
	struct net_buf out = NET_BUF_INIT;
	int rc = -1;

	if (net_resp_put_command(&out, argc, argv, lens) != NET_RESP_OK)
		fprintf(stderr, "kvs-client: out of memory\n");
	else if (send_all(fd, out.data, out.len) != 0)
		fprintf(stderr, "kvs-client: send to %s: %s\n", addr,
			strerror(errno));
	else
		rc = 0;
	net_buf_free(&out);
	return rc;
}

/*
 * AUTH with password on fd, and check the reply: a wrong password ends the
 * run with the server's message and what to check, rather than the NOAUTH
 * the command would get.  0, or -1 with a message printed.
 */
static int authenticate(int fd, const char *addr, const char *password)
{
	const char *argv[2] = { "AUTH", password };
	size_t lens[2] = { 4, strlen(password) };
	struct net_buf in = NET_BUF_INIT;
	struct net_resp_reader rd;
	const struct net_resp_reply *r;
	int rc = -1;

	net_resp_reader_init(&rd);
	if (send_command(fd, addr, 2, argv, lens) != 0 ||
	    read_reply(fd, addr, &in, &rd, &r) != 0)
		goto out;
	if (r->type == NET_RESP_T_ERROR) {
		fprintf(stderr, "kvs-client: AUTH failed at %s: %.*s "
			"(check --password or KVS_PASSWORD)\n", addr,
			(int)r->len, r->str);
		goto out;
	}
	rc = 0;
out:
	net_resp_reader_free(&rd);
	net_buf_free(&in);
	return rc;
}

static int roundtrip(const struct addrinfo *ai, const char *addr,
		     const char *password, size_t argc,
		     const char *const *argv, const size_t *argvlen,
		     struct net_buf *in, struct net_resp_reader *rd,
		     const struct net_resp_reply **reply)
{
	int fd, rc = -1;

	fd = connect_to(ai);
	if (fd < 0) {
		fprintf(stderr, "kvs-client: connect to %s: %s\n", addr,
			strerror(errno));
		return -1;
	}
	if ((!password || authenticate(fd, addr, password) == 0) &&
	    send_command(fd, addr, argc, argv, argvlen) == 0 &&
	    read_reply(fd, addr, in, rd, reply) == 0)
		rc = 0;
	close(fd);
	return rc;
}

/* The subcommands, the Redis command each sends, and their argument count. */
enum op { OP_SET, OP_GET, OP_RM };
static const struct {
	const char *name;
	const char *command;
	int nargs;
} ops[] = {
	[OP_SET] = { "set", "SET", 2 },
	[OP_GET] = { "get", "GET", 1 },
	[OP_RM] = { "rm", "DEL", 1 },
};

/* Act on the reply to op: print what talent-plan prints.  Returns the exit
 * status. */
static int handle_reply(enum op op, const struct net_resp_reply *r,
			const char *addr)
{
	if (r->type == NET_RESP_T_ERROR) {
		fprintf(stderr, "kvs-client: %.*s\n", (int)r->len, r->str);
		return 1;
	}
	switch (op) {
	case OP_SET:
		if (r->type == NET_RESP_T_SIMPLE)
			return 0;
		break;
	case OP_GET:
		if (r->type == NET_RESP_T_BULK) {
			fwrite(r->str, 1, r->len, stdout);
			putchar('\n');
			return 0;
		}
		if (r->type == NET_RESP_T_NULL) {
			printf("Key not found\n");
			return 0;
		}
		break;
	case OP_RM:
		/* DEL answers how many keys it removed. */
		if (r->type == NET_RESP_T_INTEGER && r->integer > 0)
			return 0;
		if (r->type == NET_RESP_T_INTEGER) {
			fprintf(stderr, "Key not found\n");
			return 1;
		}
		break;
	}
	fprintf(stderr, "kvs-client: unexpected reply to %s from %s\n",
		ops[op].command, addr);
	return 1;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "addr", required_argument, NULL, 'a' },
		{ "password", required_argument, NULL, 'p' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *addr = DEFAULT_ADDR, *password = NULL;
	int c;

	/* Options may come anywhere ("get KEY --addr A", as talent-plan
	 * writes it); "--" ends them, so a KEY or VALUE may start with '-'. */
	while ((c = getopt_long(argc, argv, "Vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'a': addr = optarg; break;
		case 'p': password = optarg; break;
		case 'V': printf("kvs-client %s\n", KVS_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	int nargs = argc - optind;
	char **args = argv + optind;
	if (nargs < 1) {
		fprintf(stderr, "kvs-client: missing subcommand\n");
		usage(stderr);
		return 2;
	}
	enum op op = OP_SET;
	while (op <= OP_RM && strcmp(args[0], ops[op].name) != 0)
		op++;
	if (op > OP_RM) {
		fprintf(stderr, "kvs-client: unknown subcommand '%s'\n", args[0]);
		usage(stderr);
		return 2;
	}
	if (nargs != ops[op].nargs + 1) {
		fprintf(stderr, "kvs-client: %s takes %d argument%s\n",
			ops[op].name, ops[op].nargs,
			ops[op].nargs == 1 ? "" : "s");
		usage(stderr);
		return 2;
	}

	const char *req[3];
	size_t reqlen[3];
	req[0] = ops[op].command;
	for (int i = 1; i < nargs; i++)
		req[i] = args[i];
	for (int i = 0; i < nargs; i++)
		reqlen[i] = strlen(req[i]);

	/* As kvs-bench: --password, else a non-empty $KVS_PASSWORD. */
	if (!password) {
		const char *pw = getenv("KVS_PASSWORD");
		if (pw && *pw)
			password = pw;
	}
	/* A bad address is a usage error (exit 2), as in kvs-server and
	 * kvs-bench. */
	struct addrinfo *ai = NULL;
	if (parse_addr(addr, &ai) != 0)
		return 2;

	struct net_buf in = NET_BUF_INIT;
	struct net_resp_reader rd;
	const struct net_resp_reply *r = NULL;
	int status = 1;
	net_resp_reader_init(&rd);
	if (roundtrip(ai, addr, password, (size_t)nargs, req, reqlen, &in, &rd,
		      &r) == 0)
		status = handle_reply(op, r, addr);
	net_resp_reader_free(&rd);
	freeaddrinfo(ai);
	net_buf_free(&in);
	if (fflush(stdout) != 0 && status == 0) {
		perror("kvs-client: stdout");
		status = 1;
	}
	return status;
}

/* util.c - the server's small shared helpers: the log line format, its rate
 * limit (net_log_due), and the parsing and classification of socket
 * addresses.  Any thread; no state but the caller's. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "server_int.h"

void net_log(enum net_log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warn", "info" };
	char msg[1024], stamp[32];
	struct timeval tv;
	struct tm tm;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
	/* One call per line: stdio locks the stream, so lines never mix. */
	fprintf(stderr, "%s.%03d [%s] %s\n", stamp, (int)(tv.tv_usec / 1000),
		names[level <= NET_LOG_INFO ? level : NET_LOG_INFO], msg);
}

bool net_log_due(atomic_llong *last)
{
	long long now = (long long)time(NULL);
	long long prev = atomic_load_explicit(last, memory_order_relaxed);

	return prev != now &&
	       atomic_compare_exchange_strong_explicit(last, &prev, now,
			memory_order_relaxed, memory_order_relaxed);
}

int net_parse_addr(const char *text, struct sockaddr_storage *ss,
		   socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port, *hstart = text;
	size_t hlen;
	long p = 0;

	if (!text)
		return -1;
	if (text[0] == '[') {
		const char *end = strchr(text, ']');
		if (!end || end[1] != ':')
			return -1;
		hstart = text + 1;
		hlen = (size_t)(end - hstart);
		port = end + 2;
	} else {
		const char *colon = strrchr(text, ':');
		if (!colon || memchr(text, ':', (size_t)(colon - text)))
			return -1;
		hlen = (size_t)(colon - text);
		port = colon + 1;
	}
	if (hlen == 0 || hlen >= sizeof host || *port == '\0' ||
	    strlen(port) > 5)
		return -1;
	for (const char *c = port; *c; c++) {
		if (*c < '0' || *c > '9')
			return -1;
		p = p * 10 + (*c - '0');
	}
	if (p > 65535)
		return -1;
	memcpy(host, hstart, hlen);
	host[hlen] = '\0';
	memset(ss, 0, sizeof *ss);
	if (text[0] != '[') {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return -1;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)p);
		*len = sizeof *a;
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			return -1;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)p);
		*len = sizeof *a;
	}
	return 0;
}

int net_addr_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)sa;
		return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)sa;
		const unsigned char *b = a->sin6_addr.s6_addr;
		if (IN6_IS_ADDR_LOOPBACK(&a->sin6_addr))
			return 1;
		return IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && b[12] == 127;
	}
	return 0;
}

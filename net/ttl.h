/*
 * ttl.h - Redis's expiry-time arithmetic and TTL figures, pure functions
 * of their arguments (any thread): how SET/GETEX/SETEX options and the
 * EXPIRE family's numbers become absolute unix milliseconds, and what TTL,
 * PTTL, EXPIRETIME and PEXPIRETIME answer.  keyop.c implements it.
 */
#ifndef KVS_NET_TTL_H
#define KVS_NET_TTL_H

#include <stdbool.h>
#include <stdint.h>

#include "resp.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- expiry times --------------------------------------------------------- */

/* How an option's number is read. */
enum net_ttl_unit {
	NET_TTL_EX,    /* seconds from now */
	NET_TTL_PX,    /* milliseconds from now */
	NET_TTL_EXAT,  /* unix time, seconds */
	NET_TTL_PXAT,  /* unix time, milliseconds */
};

/*
 * The absolute expiry (unix ms) of SET/GETEX/SETEX's option value s[0..n)
 * read as `unit`, as Redis checks it: not an integer -> -1 (reply
 * NET_ERR_NOTINT); 0 or less, or an overflow -> -2 (reply "ERR invalid
 * expire time in '<cmd>' command").  0 and *ms on success.
 */
int net_expire_option(const char *s, size_t n, enum net_ttl_unit unit,
		      int64_t now, int64_t *ms);

/* The same for EXPIRE's family, where the number may be 0 or negative (the
 * key is then removed): -1 not an integer, -2 overflow. */
int net_expire_when(const char *s, size_t n, enum net_ttl_unit unit,
		    int64_t now, int64_t *ms);

/* Reply an error of net_expire_option()/net_expire_when()'s rc for command
 * `name` ("set", "expire"...) into buf. */
int net_expire_error(struct net_buf *buf, int rc, const char *name);

/* TTL's figure for a key in state (found, expire_ms) at now: -2 absent, -1
 * no expiry, else the time left (ms: milliseconds; else seconds rounded as
 * Redis) or, abs, the expiry time itself. */
long long net_ttl_figure(bool found, int64_t expire_ms, int64_t now, bool ms,
			 bool abs);

#ifdef __cplusplus
}
#endif

#endif /* KVS_NET_TTL_H */

/* ttl.c - Redis's expiry-time arithmetic and TTL figures (contracts in
 * ttl.h): pure functions, any thread. */
#include <stdint.h>

#include "kvs.h"
#include "reply.h"
#include "ttl.h"

static bool relative(enum net_ttl_unit unit)
{
	return unit == NET_TTL_EX || unit == NET_TTL_PX;
}

static bool seconds(enum net_ttl_unit unit)
{
	return unit == NET_TTL_EX || unit == NET_TTL_EXAT;
}

int net_expire_option(const char *s, size_t n, enum net_ttl_unit unit,
		      int64_t now, int64_t *ms)
{
	int64_t v;

	if (!kvs_parse_int64(s, n, &v))
		return -1;
	if (v <= 0 || (seconds(unit) && v > INT64_MAX / 1000))
		return -2;
	if (seconds(unit))
		v *= 1000;
	if (relative(unit)) {
		if (v > INT64_MAX - now)
			return -2;
		v += now;
	}
	*ms = v;
	return 0;
}

int net_expire_when(const char *s, size_t n, enum net_ttl_unit unit,
		    int64_t now, int64_t *ms)
{
	int64_t v, base = relative(unit) ? now : 0;

	if (!kvs_parse_int64(s, n, &v))
		return -1;
	if (seconds(unit)) {
		if (v > INT64_MAX / 1000 || v < INT64_MIN / 1000)
			return -2;
		v *= 1000;
	}
	if (v > INT64_MAX - base)
		return -2;
	*ms = v + base;
	return 0;
}

int net_expire_error(struct net_buf *buf, int rc, const char *name)
{
	if (rc == -1)
		return net_resp_put_error(buf, NET_ERR_NOTINT);
	return net_resp_put_errorf(buf, "ERR invalid expire time in '%s' "
				   "command", name);
}

long long net_ttl_figure(bool found, int64_t expire_ms, int64_t now, bool ms,
			 bool abs)
{
	long long t;

	if (!found)
		return -2;
	if (!expire_ms)
		return -1;
	t = abs ? expire_ms : expire_ms - now;
	if (t < 0)
		t = 0;
	return ms ? t : (t + 500) / 1000;
}

/*
 * size.h - the one parser of byte sizes given to kvs's programs
 * ("--client-output-limit 64MiB", "--segment-size 16mb"), so that every
 * size option accepts the same forms and means the same by them.
 *
 * The forms: decimal digits, then at most one unit, case-insensitive.
 * The units are Redis's (its config files, memtoull) plus IEC's:
 *
 *	(none), b       1 byte
 *	k,  m,  g       1000, 1000^2, 1000^3      (Redis: "1k => 1000 bytes")
 *	kb, mb, gb      1024, 1024^2, 1024^3      (Redis: "1kb => 1024 bytes")
 *	kib, mib, gib   1024, 1024^2, 1024^3      (IEC, as --help prints them)
 *
 * No sign, fraction, space, hex or exponent: "-1", "1.5m", "64 MiB" and
 * "0x10" are refused rather than read as something the user did not mean.
 * 0 is a valid size here; a caller for which 0 makes no sense refuses it.
 *
 * Header only, like check.h: each program and library that includes it
 * stays free of the others.  Any thread; no state.
 */
#ifndef KVS_COMMON_SIZE_H
#define KVS_COMMON_SIZE_H

#include <errno.h>
#include <stdint.h>
#include <strings.h>

/*
 * Parse text (NUL-terminated) into *out.  Returns 0, or -1 with errno
 * EINVAL (empty, no digits, junk, an unknown unit) or ERANGE (more than
 * UINT64_MAX bytes); *out is untouched on failure.
 */
static inline int kvs_parse_size(const char *text, uint64_t *out)
{
	static const struct {
		const char *unit;
		uint64_t mul;
	} units[] = {
		{ "", 1 }, { "b", 1 },
		{ "k", 1000ull }, { "m", 1000000ull }, { "g", 1000000000ull },
		{ "kb", 1ull << 10 }, { "mb", 1ull << 20 }, { "gb", 1ull << 30 },
		{ "kib", 1ull << 10 }, { "mib", 1ull << 20 },
		{ "gib", 1ull << 30 },
	};
	const char *p = text;
	uint64_t v = 0;
	int overflow = 0;

	if (!text || *p < '0' || *p > '9') {
		errno = EINVAL;
		return -1;
	}
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');
		/* Keep reading after an overflow: junk after the digits is
		 * EINVAL whatever the number. */
		if (v > (UINT64_MAX - d) / 10)
			overflow = 1;
		else
			v = v * 10 + d;
	}
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcasecmp(p, units[i].unit) != 0)
			continue;
		if (overflow || (v && units[i].mul > UINT64_MAX / v)) {
			errno = ERANGE;
			return -1;
		}
		*out = v * units[i].mul;
		return 0;
	}
	errno = EINVAL;
	return -1;
}

#endif /* KVS_COMMON_SIZE_H */

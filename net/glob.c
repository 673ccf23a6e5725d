/* glob.c - the glob-style pattern matcher of SCAN MATCH and CONFIG GET:
 * '*', '?', "[set]", "[a-z]", "[^set]" and '\' escapes, binary-safe. */
#include <stddef.h>

#include "server.h"

static unsigned char fold(unsigned char ch, int nocase)
{
	return nocase && ch >= 'A' && ch <= 'Z' ? (unsigned char)(ch + 32) : ch;
}

/*
 * Does the single-byte element of pat at *pi (a literal, '\x', '?' or a
 * bracket set) match ch?  Advances *pi past the element.  An unclosed '['
 * is a literal '['.
 */
static int elem_match(const char *pat, size_t plen, size_t *pi,
		      unsigned char ch, int nocase)
{
	size_t i = *pi, j;
	int neg = 0, hit = 0;

	ch = fold(ch, nocase);
	if (pat[i] == '?') {
		*pi = i + 1;
		return 1;
	}
	if (pat[i] == '\\' && i + 1 < plen) {
		*pi = i + 2;
		return fold((unsigned char)pat[i + 1], nocase) == ch;
	}
	if (pat[i] != '[') {
		*pi = i + 1;
		return fold((unsigned char)pat[i], nocase) == ch;
	}
	/* Find the closing ']' (a ']' right after '[' or "[^" is a member). */
	j = i + 1;
	if (j < plen && pat[j] == '^')
		j++;
	if (j < plen && pat[j] == ']')
		j++;
	while (j < plen && pat[j] != ']') {
		if (pat[j] == '\\' && j + 1 < plen)
			j++;
		j++;
	}
	if (j >= plen) {
		*pi = i + 1;
		return ch == '[';
	}
	*pi = j + 1;
	i++;
	if (pat[i] == '^') {
		neg = 1;
		i++;
	}
	while (i < j) {
		unsigned char lo, hi;

		if (pat[i] == '\\' && i + 1 < j)
			i++;
		lo = fold((unsigned char)pat[i], nocase);
		i++;
		hi = lo;
		if (i + 1 < j && pat[i] == '-') {
			i++;
			if (pat[i] == '\\' && i + 1 < j)
				i++;
			hi = fold((unsigned char)pat[i], nocase);
			i++;
			if (lo > hi) {
				unsigned char t = lo;
				lo = hi;
				hi = t;
			}
		}
		if (ch >= lo && ch <= hi)
			hit = 1;
	}
	return neg ? !hit : hit;
}

/*
 * The classic two-cursor matcher: on a mismatch, go back to the last '*'
 * and let it take one more byte.  Every element other than '*' matches
 * exactly one byte, so remembering only the last star is enough, and the
 * work is O(plen * slen) at worst (no exponential backtracking).
 */
int net_glob_match(const char *pat, size_t plen, const char *s, size_t slen,
		   int nocase)
{
	size_t pi = 0, si = 0, star_p = 0, star_s = 0;
	/* A step budget keeps one SCAN MATCH from stalling its worker (and
	 * every client on it) on a hostile pattern: past it, no match. */
	unsigned long steps = NET_GLOB_MAX_STEPS;
	int star = 0;

	while (si < slen) {
		if (steps-- == 0)
			return 0;
		if (pi < plen && pat[pi] == '*') {
			while (pi < plen && pat[pi] == '*')
				pi++;
			if (pi == plen)
				return 1;
			star = 1;
			star_p = pi;
			star_s = si;
			continue;
		}
		if (pi < plen) {
			size_t next = pi;
			if (elem_match(pat, plen, &next, (unsigned char)s[si],
				       nocase)) {
				pi = next;
				si++;
				continue;
			}
		}
		if (!star)
			return 0;
		pi = star_p;
		si = ++star_s;
	}
	while (pi < plen && pat[pi] == '*')
		pi++;
	return pi == plen;
}

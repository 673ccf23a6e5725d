#!/bin/sh
# check_layers_test.sh - tests tools/check-layers.sh on tiny objects built
# in a temporary directory: it must fail, naming the files, on a call cycle
# and on an include cycle (a loop of two headers, a header that includes
# itself), and pass where there is none - in particular when a static
# function or another directory's file would make a loop for a checker that
# counted them.  `make test` runs it; each case is a few compiler runs.
# usage: tests/check_layers_test.sh   (CC=compiler, default cc)
set -u
cd "$(dirname "$0")/.." || exit 1
checker=$PWD/tools/check-layers.sh
cc=${CC:-cc}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/check-layers-test.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
failures=0
cases=0

fail() {
	echo "check_layers_test: FAIL: $*" >&2
	failures=$((failures + 1))
}

# put DIR/FILE: write stdin to the source tree of the case.
put() {
	mkdir -p "$tmp/src/$(dirname "$1")"
	cat > "$tmp/src/$1"
}

# build DIR...: compile every DIR/*.c into obj/DIR/*.o.
build() {
	for d in "$@"; do
		mkdir -p "$tmp/obj/$d"
		for c in "$tmp/src/$d"/*.c; do
			[ -f "$c" ] || continue
			$cc -std=c11 -c "$c" -o "$tmp/obj/$d/$(basename "$c" .c).o" ||
				{ fail "cannot compile $c"; return 1; }
		done
	done
}

# expect STATUS NAME DIR... : run the checker on the case's DIRs, wanting
# exit status STATUS; the output goes to $tmp/out.
expect() {
	want=$1 name=$2
	shift 2
	cases=$((cases + 1))
	sh "$checker" "$tmp/obj" "$tmp/src" "$@" > "$tmp/out" 2>&1
	got=$?
	if [ "$got" -ne "$want" ]; then
		fail "$name: exit status $got, wanted $want; output:"
		sed 's/^/    /' "$tmp/out" >&2
		return 1
	fi
	return 0
}

# has NAME TEXT: the last output must contain TEXT.
has() {
	grep -F -q -- "$2" "$tmp/out" || {
		fail "$1: no \"$2\" in the output:"
		sed 's/^/    /' "$tmp/out" >&2
	}
}

reset() { rm -rf "$tmp/src" "$tmp/obj"; }

# 1. a.c and b.c call each other: a cycle, naming both files and a symbol.
reset
put cyc/a.c <<'EOF'
int b_fn(int);
int a_fn(int x) { return x ? b_fn(x - 1) : 0; }
EOF
put cyc/b.c <<'EOF'
int a_fn(int);
int b_fn(int x) { return x ? a_fn(x - 1) : 1; }
EOF
put cyc/c.c <<'EOF'
int a_fn(int);
int c_fn(void) { return a_fn(3); }
EOF
build cyc && expect 1 "two files calling each other" cyc &&
	has "call cycle" "call cycle in cyc/" &&
	has "call cycle" "cyc/a.c uses b_fn, defined in cyc/b.c" &&
	has "call cycle" "cyc/b.c uses a_fn, defined in cyc/a.c"
grep -q "c\.c.*->\|-> c\.c" "$tmp/out" &&
	fail "c.c, which only calls into the loop, is listed as part of it"

# 2. A loop of three through global data, not only functions.
reset
put ring/x.c <<'EOF'
extern int y_val;
int x_val = 1;
int x_get(void) { return y_val; }
EOF
put ring/y.c <<'EOF'
extern int z_val;
int y_val = 2;
int y_get(void) { return z_val; }
EOF
put ring/z.c <<'EOF'
int x_get(void);
int z_val = 3;
int z_get(void) { return x_get(); }
EOF
build ring && expect 1 "a loop of three files" ring &&
	has "loop of three" "ring/x.c uses y_val, defined in ring/y.c" &&
	has "loop of three" "ring/z.c uses x_get, defined in ring/x.c"

# 3. No cycle, though a checker that counted static functions, or pooled
# two directories, would see one: lay/b.c calls a_fn and has its own static
# helper(), while lay/a.c calls lay/c.c's global helper() and up_fn() of
# up/b.c (another directory, and a file with b.c's name), which calls b_fn
# back: a loop across directories, not inside one.
reset
put lay/a.c <<'EOF'
int helper(void);
int up_fn(void);
int a_fn(void) { return helper() + up_fn(); }
EOF
put lay/b.c <<'EOF'
int a_fn(void);
static int helper(void) { return 1; }
int b_fn(void) { return helper() + a_fn(); }
EOF
put lay/c.c <<'EOF'
int helper(void) { return 2; }
EOF
put up/b.c <<'EOF'
int b_fn(void);
int up_fn(void) { return b_fn(); }
EOF
build lay up && expect 0 "a layered directory" lay up &&
	has "layered" "no call or include cycle in: lay up" &&
	has "layered" "lay/: 3 objects, 2 file-to-file call edges"

# 4. Two headers including each other: a cycle naming both.
reset
put inc/one.h <<'EOF'
#ifndef ONE_H
#define ONE_H
#include <stddef.h>
#include "two.h"
#endif
EOF
put inc/two.h <<'EOF'
#ifndef TWO_H
#define TWO_H
# include "one.h"
#endif
EOF
put inc/three.h <<'EOF'
#include "one.h"
EOF
build inc && expect 1 "headers including each other" inc &&
	has "include loop" "include cycle in inc/: " &&
	has "include loop" "one.h" && has "include loop" "two.h"

# 5. A header that includes itself.
reset
put self/me.h <<'EOF'
#pragma once
#include "me.h"
EOF
build self && expect 1 "a header including itself" self &&
	has "self include" "include cycle in self/: me.h -> me.h"

# 6. Headers in a chain, one including a header of another directory that
# includes it back by a relative path (not this check's business).
reset
put hdr/low.h <<'EOF'
#include <stdint.h>
EOF
put hdr/mid.h <<'EOF'
#include "low.h"
#include "../other/top.h"
EOF
put hdr/top.h <<'EOF'
#include "mid.h"
#include "low.h"
EOF
put other/top.h <<'EOF'
#include "../hdr/mid.h"
EOF
build hdr && expect 0 "a chain of headers" hdr &&
	has "chain of headers" "hdr/: 0 objects, 0 file-to-file call edges, 3 headers"

# 7. An object missing: not a pass.
reset
put miss/a.c <<'EOF'
int a_fn(void) { return 0; }
EOF
mkdir -p "$tmp/obj/miss"
expect 2 "an object not built" miss && has "not built" "missing: build first"

# 8. An object nm cannot read: not a pass either.
echo "not an object" > "$tmp/obj/miss/a.o"
expect 2 "an object nm cannot read" miss

if [ "$failures" -ne 0 ]; then
	echo "check_layers_test: $failures of $cases cases failed" >&2
	exit 1
fi
echo "check_layers_test: $cases cases passed"

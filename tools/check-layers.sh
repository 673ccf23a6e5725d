#!/bin/sh
# check-layers.sh - fails when the files of one directory depend on each other
# in a loop: a call cycle between its objects (file A uses a global symbol
# that file B defines, and B, directly or not, one of A's), or an include
# cycle between its headers (one that reaches itself through its
# `#include "..."` chain).  A layered module can then be read bottom-up.
#
# usage: tools/check-layers.sh OBJROOT SRCROOT DIR...
#   OBJROOT/DIR/NAME.o is the object of SRCROOT/DIR/NAME.c (make builds them
#   all first); SRCROOT/DIR/*.h are the headers checked.  Exit status: 0 no
#   cycle, 1 a cycle (each one listed with its files), 2 usage or a missing
#   object.
#
# Only what one directory defines makes an edge: symbols of libc, of other
# directories and of other libraries are left out, and so are static symbols
# (nm's lowercase t, d, b, r), which cannot be used from another file.  POSIX
# sh with nm (binutils), sort, join, tsort and awk: no Python, because
# `make test` runs it on a fresh machine before anything is installed.
set -u
LC_ALL=C
export LC_ALL

me=check-layers
if [ $# -lt 3 ]; then
	echo "usage: $0 OBJROOT SRCROOT DIR..." >&2
	exit 2
fi
objroot=$1
srcroot=$2
shift 2

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check-layers.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
trap 'exit 2' HUP INT TERM

# Read tsort's complaints on stdin ("tsort: -: input contains a loop:", then
# "tsort: NAME" for each member in the loop's order) and print each loop's
# members on one line.
loops() {
	awk '
	/input contains a loop/ { if (line != "") print line; line = ""; next }
	/^tsort: / { sub(/^tsort: /, ""); line = line == "" ? $0 : line " " $0 }
	END { if (line != "") print line }'
}

# "a b c" -> "a -> b -> c -> a"
arrows() {
	awk '{ s = $1; for (i = 2; i <= NF; i++) s = s " -> " $i; print s " -> " $1 }'
}

status=0
for dir in "$@"; do
	dir=${dir%/}
	: > "$tmp/defs"
	: > "$tmp/uses"
	nobj=0
	for src in "$srcroot/$dir"/*.c; do
		[ -f "$src" ] || continue
		name=$(basename "$src" .c)
		obj=$objroot/$dir/$name.o
		if [ ! -f "$obj" ]; then
			echo "$me: $obj missing: build first (make all)" >&2
			exit 2
		fi
		nobj=$((nobj + 1))
		# nm -P: "name type [value size]".  Defined globals are the
		# upper-case types but U (undefined) and N (debugging).
		nm -P --defined-only "$obj" > "$tmp/nm" || exit 2
		awk -v f="$name.c" '$2 ~ /^[ABCDGRSTVW]$/ { print $1, f }' \
			"$tmp/nm" >> "$tmp/defs"
		nm -P -u "$obj" > "$tmp/nm" || exit 2
		awk -v f="$name.c" '{ print $1, f }' "$tmp/nm" >> "$tmp/uses"
	done

	# Call edges "user definer symbol", one per pair of files.
	sort -o "$tmp/defs" "$tmp/defs"
	sort -o "$tmp/uses" "$tmp/uses"
	join "$tmp/uses" "$tmp/defs" |
		awk '$2 != $3 && !seen[$2 " " $3]++ { print $2, $3, $1 }' \
		> "$tmp/calls"
	awk '{ print $1, $2 }' "$tmp/calls" | tsort > /dev/null 2> "$tmp/err"
	loops < "$tmp/err" > "$tmp/loops"
	while read -r loop; do
		status=1
		echo "$me: call cycle in $dir/: $(echo "$loop" | arrows)"
		# Each step of the loop, with one symbol that makes it.
		echo "$loop" | awk '{ for (i = 1; i <= NF; i++) print $i, $(i % NF + 1) }' |
			while read -r from to; do
				sym=$(awk -v a="$from" -v b="$to" \
					'$1 == a && $2 == b { print $3; exit }' \
					"$tmp/calls")
				echo "    $dir/$from uses $sym, defined in $dir/$to"
			done
	done < "$tmp/loops"

	# Include edges "includer included", for headers of this directory
	# only (a name with no slash that exists here).
	: > "$tmp/incs"
	nhdr=0
	for h in "$srcroot/$dir"/*.h; do
		[ -f "$h" ] || continue
		nhdr=$((nhdr + 1))
		hn=$(basename "$h")
		sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"/]*\)".*/\1/p' "$h" |
			while read -r inc; do
				[ -f "$srcroot/$dir/$inc" ] && echo "$hn $inc"
			done >> "$tmp/incs"
	done
	# tsort takes "a a" for a lone node, so a header that includes itself
	# is caught here.
	awk '$1 == $2' "$tmp/incs" | while read -r a _; do
		echo "$me: include cycle in $dir/: $a -> $a"
	done | tee "$tmp/self"
	[ -s "$tmp/self" ] && status=1
	tsort "$tmp/incs" > /dev/null 2> "$tmp/err"
	loops < "$tmp/err" > "$tmp/loops"
	while read -r loop; do
		status=1
		echo "$me: include cycle in $dir/: $(echo "$loop" | arrows)"
	done < "$tmp/loops"

	echo "$me: $dir/: $nobj objects, $(wc -l < "$tmp/calls") file-to-file call edges, $nhdr headers"
done

if [ "$status" -ne 0 ]; then
	echo "$me: FAILED: a file of a directory above depends on itself through others; break the loop (move the shared part into a lower file)" >&2
else
	echo "$me: no call or include cycle in: $*"
fi
exit "$status"

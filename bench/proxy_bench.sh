#!/bin/bash
# proxy_bench.sh - kvs shards against redis-server shards behind the same
# twemproxy (nutcracker), and one kvs-server directly, with one kvs-bench
# command; the rows take turns for ROUNDS rounds, and the medians are
# printed (docs/PERFORMANCE.md, "Through twemproxy").
#
#   bench/proxy_bench.sh [ROUNDS] [SECONDS] [-- kvs-bench options]
#
# Everything listens on 127.0.0.1 on free ports; every process is stopped
# on exit.  Needs build/bin (make), nutcracker and redis-server (make deps).
set -u

here=$(cd "$(dirname "$0")/.." && pwd)
bin=$here/build/bin
rounds=${1:-3}
secs=${2:-5}
shift $(( $# >= 2 ? 2 : $# ))
[ "${1-}" = -- ] && shift
extra=("$@")
work=$(mktemp -d /tmp/kvs-proxy-bench.XXXXXX)
pids=()

stop_all() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	pids=()
}
trap 'stop_all; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# start_cluster NAME ARGS...: a 3-shard cluster; sets $addr to its proxy.
start_cluster() {
	local name=$1 info=$work/$1.info
	shift
	rm -rf "${work:?}/$name" "$info"
	bash "$here/tools/kvs-cluster.sh" --bin-dir "$bin" -n 3 --proxy-port 0 \
		--dir "$work/$name" --info "$info" "$@" >"$work/$name.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 200); do
		[ -s "$info" ] && break
		sleep 0.1
	done
	addr=$(awk '$1 == "proxy" { print $2 }' "$info")
	[ -n "$addr" ] || { cat "$work/$name.log" >&2; exit 1; }
}

# start_direct: one kvs-server; sets $addr.
start_direct() {
	rm -rf "$work/direct"
	"$bin/kvs-server" --addr 127.0.0.1:0 --port-file "$work/direct.port" \
		--dir "$work/direct" --fsync never >"$work/direct.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 200); do
		[ -s "$work/direct.port" ] && break
		sleep 0.1
	done
	addr=127.0.0.1:$(cat "$work/direct.port")
}

rows=("direct, 1 kvs-server, fsync never"
      "proxy, 3 kvs-server, fsync never"
      "proxy, 3 redis-server, no persistence"
      "proxy, 3 kvs-server, fsync everysec"
      "proxy, 3 redis-server, appendfsync everysec"
      "proxy, 3 kvs-server, fsync never, --pipeline-reads ordered"
      "proxy, 3 kvs-server, fsync always"
      "proxy, 3 kvs-server, fsync always, --pipeline-reads ordered"
      "proxy, 3 redis-server, appendfsync always")

run_row() {
	case $1 in
	0) start_direct ;;
	1) start_cluster kn --fsync never ;;
	2) start_cluster rn --redis --fsync never ;;
	3) start_cluster ke --fsync everysec ;;
	4) start_cluster re --redis --fsync everysec ;;
	5) start_cluster ko --fsync never --pipeline-reads ordered ;;
	6) start_cluster ka --fsync always ;;
	7) start_cluster kao --fsync always --pipeline-reads ordered ;;
	8) start_cluster ra --redis --fsync always ;;
	esac
	"$bin/kvs-bench" --addr "$addr" -c 50 -d "$secs" -q "${extra[@]}" \
		>"$work/out" 2>&1
	local rc=$?
	stop_all
	local ops
	# -q prints one line: "N ops/s, p50 ..., E errors".
	ops=$(awk '$2 == "ops/s," { print $1 }' "$work/out")
	if [ $rc -ne 0 ] || [ -z "$ops" ]; then
		echo "proxy_bench: row '${rows[$1]}' failed:" >&2
		cat "$work/out" >&2
		exit 1
	fi
	echo "${ops%%.*}"
}

declare -A got
echo "kvs-bench -c 50 -d $secs -q ${extra[*]}, $rounds rounds, $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$rounds"); do
	for i in "${!rows[@]}"; do
		got[$i,$r]=$(run_row "$i") || exit 1
		echo "round $r: ${rows[$i]}: ${got[$i,$r]} ops/s"
	done
done
echo
echo "| row | $(for r in $(seq "$rounds"); do printf 'round %s | ' "$r"; done)median ops/s |"
echo "|---|$(for r in $(seq "$rounds"); do printf -- '---|'; done)---|"
for i in "${!rows[@]}"; do
	vals=()
	for r in $(seq "$rounds"); do vals+=("${got[$i,$r]}"); done
	med=$(printf '%s\n' "${vals[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
	line="| ${rows[$i]} |"
	for v in "${vals[@]}"; do line+=" $v |"; done
	echo "$line $med |"
	got[$i,med]=$med
done
echo
awk -v a="${got[1,med]}" -v b="${got[2,med]}" -v c="${got[3,med]}" -v d="${got[4,med]}" -v e="${got[0,med]}" \
    -v o="${got[5,med]}" -v ka="${got[6,med]}" -v kao="${got[7,med]}" -v ra="${got[8,med]}" 'BEGIN {
	printf "kvs/redis behind the proxy: %.2f (never vs none), %.2f (everysec), %.2f (always)\n", a / b, c / d, ka / ra
	printf "early/ordered pipelined reads: %.2f (never), %.2f (always)\n", a / o, ka / kao
	printf "3 kvs shards through the proxy / 1 kvs-server directly: %.2f\n", a / e
}'

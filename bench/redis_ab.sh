#!/usr/bin/env bash
# redis_ab.sh - kvs-server against redis-server under Debian's own
# redis-benchmark, the plainest benchmark there is: `-t set|get -c 50
# -n N -r 100000 -d 100`, pipeline 1 and 16, persistence matched (kvs
# --fsync never/everysec/always against redis no AOF / appendfsync
# everysec / always).  The two servers take turns for ROUNDS rounds (who
# goes first alternates); it prints each round, then medians and ratios.
#
# usage (from the project root, after make):
#   bench/redis_ab.sh [ROUNDS=3] [REQUESTS=200000]
# Environment: KVS_BIN_DIR (default build/bin), KVS_ARGS (more kvs-server
# options, e.g. "--threads 2").  Servers bind to 127.0.0.1 on free ports.
set -u
ROUNDS=${1:-3}
N=${2:-200000}
BIN=${KVS_BIN_DIR:-build/bin}
for t in redis-server redis-benchmark redis-cli; do
    command -v $t >/dev/null || { echo "redis_ab: $t missing (make deps)" >&2; exit 2; }
done
[ -x "$BIN/kvs-server" ] || { echo "redis_ab: no $BIN/kvs-server: run make first" >&2; exit 2; }
TMP=$(mktemp -d /tmp/redis_ab.XXXXXX)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start SERVER POLICY: a fresh server in its own directory; sets PORT, PID
start() {
    local server=$1 policy=$2
    PORT=$(free_port)
    rm -rf "$TMP/d"; mkdir -p "$TMP/d"
    if [ "$server" = kvs ]; then
        # shellcheck disable=SC2086
        "$BIN/kvs-server" --addr 127.0.0.1:$PORT --dir "$TMP/d" --fsync "$policy" ${KVS_ARGS:-} 2> "$TMP/server.log" &
    else
        local aof=(--appendonly yes --appendfsync "$policy")
        [ "$policy" = never ] && aof=(--appendonly no)
        redis-server --port "$PORT" --bind 127.0.0.1 --save '' "${aof[@]}" --dir "$TMP/d" --daemonize no > "$TMP/server.log" 2>&1 &
    fi
    PID=$!
    for _ in $(seq 100); do redis-cli -p "$PORT" ping > /dev/null 2>&1 && return 0; sleep 0.05; done
    echo "redis_ab: $server did not start:" >&2; cat "$TMP/server.log" >&2; exit 1
}

stop() { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; PID=; }

# run TEST PIPE: requests per second of one redis-benchmark run
run() {
    redis-benchmark -p "$PORT" -t "$1" -c 50 -P "$2" -n "$N" -r 100000 -d 100 -q 2>&1 |
        tr '\r' '\n' | grep -a 'requests per second' | tail -1 |
        sed 's/.*: \([0-9.]*\) requests per second.*/\1/'
}

ROWS="get:never set:never set:everysec set:always"
printf 'round  test  fsync     pipe %12s %12s %6s\n' kvs redis ratio
for r in $(seq "$ROUNDS"); do
    for row in $ROWS; do
        t=${row%%:*} policy=${row##*:}
        order="kvs redis"; [ $((r % 2)) = 0 ] && order="redis kvs"
        declare -A got=()
        for s in $order; do
            start "$s" "$policy"
            # GET reads every key it asks for: load them first.
            [ "$t" = get ] && run set 16 > /dev/null
            for p in 1 16; do got[$s.$p]=$(run "$t" "$p"); done
            stop
        done
        for p in 1 16; do
            k=${got[kvs.$p]:-0} rd=${got[redis.$p]:-0}
            printf '%-6s %-5s %-9s %4s %12.0f %12.0f %6.2f\n' "$r" "$t" "$policy" "$p" "$k" "$rd" \
                "$(awk -v a="$k" -v b="$rd" 'BEGIN{print (b > 0 ? a / b : 0)}')" | tee -a "$TMP/rows"
        done
        unset got
    done
done
echo
echo "medians of $ROUNDS rounds"
printf 'test  fsync     pipe %12s %12s %6s\n' kvs redis ratio
awk '{ key = $2 " " $3 " " $4; k[key] = k[key] " " $5; r[key] = r[key] " " $6; order[key] = NR }
function med(s,   a, n, i, j, t) { n = split(s, a, " "); for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
END { for (key in k) { split(key, f, " "); mk = med(k[key]); mr = med(r[key]); kv[key] = mk; rv[key] = mr
        printf "%-5s %-9s %4s %12.0f %12.0f %6.2f\n", f[1], f[2], f[3], mk, mr, (mr > 0 ? mk / mr : 0) } 
      for (p = 1; p <= 16; p += 15) { a = kv["set always " p]; b = rv["set everysec " p]
        if (b > 0) printf "moonshot: kvs SET always / redis SET everysec, pipeline %d: %.2f\n", p, a / b } }' "$TMP/rows" | sort

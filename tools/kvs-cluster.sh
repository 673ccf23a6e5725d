#!/bin/bash
# kvs-cluster.sh - N kvs-server shards on loopback behind twemproxy
# (Debian's nutcracker), in the foreground until Ctrl-C or SIGTERM.
# docs/SCALING.md explains the set-up; `make cluster` runs this.
#
# Every shard gets its own directory DIR/shard-I and a free port (or
# BASE+I); nutcracker listens on the proxy port with a generated config
# (DIR/nutcracker.yml).  The servers are named shard-0 .. shard-N-1 in the
# config: ketama places keys by those names, not by address, so a shard
# restarted on another port keeps its keys.
set -u

usage() {
	cat <<'EOF'
usage: kvs-cluster.sh [options]
  -n, --shards N        shards (default 3)
  --dir DIR             data directory (default ./cluster-data): DIR/shard-I
                        for each shard, the generated DIR/nutcracker.yml, logs
  --base-port P         shard I listens on P+I (default 0: free ports)
  --proxy-port P        nutcracker's port (default 22121; 0: a free port)
  --fsync POLICY        the shards' --fsync: always, everysec, never
                        (default everysec)
  --threads N           the shards' worker threads (default: kvs-server's)
  --pipeline-reads MODE the kvs shards' --pipeline-reads (default early:
                        safe behind this one proxy, docs/SCALING.md)
  --timeout MS          nutcracker's reply timeout per request (default 2000)
  --redis               redis-server shards instead of kvs-server (for
                        comparisons; persistence as --fsync: never = none,
                        everysec/always = appendonly with that appendfsync)
  --info FILE           once ready, write "proxy ADDR" and one line
                        "shard I PID ADDR DIR" per shard to FILE (for tests)
  --bin-dir DIR         where kvs-server is (default: build/bin next to
                        this script's directory, else $PATH)
  -h, --help            this text
Runs in the foreground; Ctrl-C or SIGTERM stops nutcracker, then the
shards with SIGTERM (kvs-server closes its store durably), and exits 0.
EOF
}

die() { echo "kvs-cluster: $*" >&2; exit 2; }

shards=3 dir=./cluster-data base_port=0 proxy_port=22121 fsync=everysec
threads= timeout_ms=2000 backend=kvs info= bin_dir= reads=early
while [ $# -gt 0 ]; do
	case $1 in
	-n|--shards) shards=${2-}; shift ;;
	--dir) dir=${2-}; shift ;;
	--base-port) base_port=${2-}; shift ;;
	--proxy-port) proxy_port=${2-}; shift ;;
	--fsync) fsync=${2-}; shift ;;
	--threads) threads=${2-}; shift ;;
	--pipeline-reads) reads=${2-}; shift ;;
	--timeout) timeout_ms=${2-}; shift ;;
	--redis) backend=redis ;;
	--info) info=${2-}; shift ;;
	--bin-dir) bin_dir=${2-}; shift ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done

isnum() { case $1 in ''|*[!0-9]*) return 1 ;; esac; }
isnum "$shards" && [ "$shards" -ge 1 ] && [ "$shards" -le 64 ] ||
	die "--shards: 1..64, not '$shards'"
isnum "$base_port" && [ "$base_port" -le 65535 ] || die "bad --base-port '$base_port'"
isnum "$proxy_port" && [ "$proxy_port" -le 65535 ] || die "bad --proxy-port '$proxy_port'"
isnum "$timeout_ms" && [ "$timeout_ms" -ge 1 ] || die "bad --timeout '$timeout_ms'"
[ -z "$threads" ] || isnum "$threads" || die "bad --threads '$threads'"
case $fsync in always|everysec|never) ;; *) die "--fsync: always, everysec or never" ;; esac
case $reads in ordered|early) ;; *) die "--pipeline-reads: ordered or early" ;; esac
[ -n "$dir" ] || die "--dir needs a directory"

here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "$bin_dir" ] && [ -x "$here/build/bin/kvs-server" ]; then
	bin_dir=$here/build/bin
fi
if [ "$backend" = kvs ]; then
	server=${bin_dir:+$bin_dir/}kvs-server
	command -v "$server" >/dev/null || die "no kvs-server (run make, or --bin-dir)"
else
	server=redis-server
	command -v redis-server >/dev/null || die "no redis-server (make deps)"
fi
# Debian puts it in /usr/sbin, which a user's PATH may lack.
nutcracker=$(command -v nutcracker || echo /usr/sbin/nutcracker)
[ -x "$nutcracker" ] || die "no nutcracker: make deps (Debian package nutcracker)"

mkdir -p "$dir" || die "cannot create $dir"
# A stale info file would announce a cluster that is not up yet.
[ -z "$info" ] || rm -f "$info"
dir=$(cd "$dir" && pwd)

pids=()      # shard pids
addrs=()     # shard addresses
proxy_pid=
stopping=0

# Stop nutcracker first (no new requests reach the shards), then every
# shard with SIGTERM and wait for each: kvs-server finishes its in-flight
# writes and closes its store durably.
stop_all() {
	[ $stopping = 1 ] && return
	stopping=1
	[ -n "$proxy_pid" ] && kill -TERM "$proxy_pid" 2>/dev/null
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	[ -n "$proxy_pid" ] && wait "$proxy_pid" 2>/dev/null
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
}
trap 'stop_all; echo "kvs-cluster: stopped" >&2; exit 0' INT TERM
trap 'stop_all' EXIT

# A free loopback port other than the ports given: a port is free only until
# something binds it, so one chosen for a process not started yet (the
# proxy, its stats) must not be handed out again.
free_port() {
	/usr/bin/python3 - "$@" <<'PY'
import socket, sys
taken = set(int(p) for p in sys.argv[1:])
for _ in range(100):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    if port not in taken:
        print(port)
        break
else:
    sys.exit(1)
PY
}

# A RESP PING to 127.0.0.1:$1; true when +PONG comes back within a second.
ping_port() (
	exec 2>/dev/null
	exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
	printf '*1\r\n$4\r\nPING\r\n' >&3
	IFS= read -r -t 1 line <&3 || exit 1
	[ "${line%$'\r'}" = "+PONG" ]
)

# Wait (at most 10 s) for pid $1 to answer on port $2.
wait_ready() {
	local i
	for ((i = 0; i < 100; i++)); do
		kill -0 "$1" 2>/dev/null || return 1
		ping_port "$2" && return 0
		sleep 0.1
	done
	return 1
}

for ((i = 0; i < shards; i++)); do
	sdir=$dir/shard-$i
	mkdir -p "$sdir" || die "cannot create $sdir"
	if [ "$backend" = kvs ]; then
		port=$base_port
		[ "$base_port" = 0 ] || port=$((base_port + i))
		for ((try = 1; ; try++)); do
			rm -f "$sdir.port"
			# --pipeline-reads early: nutcracker is each shard's
			# only client, over one connection, so no one can see
			# a read run before that connection's earlier writes
			# to other keys (docs/SCALING.md, "Pipelined reads").
			setsid "$server" --addr "127.0.0.1:$port" --dir "$sdir" --fsync "$fsync" \
				--pipeline-reads "$reads" \
				--port-file "$sdir.port" ${threads:+--threads "$threads"} \
				>"$sdir.log" 2>&1 &
			pids[i]=$!
			for ((t = 0; t < 100; t++)); do
				[ -s "$sdir.port" ] && break
				kill -0 "${pids[i]}" 2>/dev/null || break
				sleep 0.1
			done
			[ -s "$sdir.port" ] || { cat "$sdir.log" >&2; die "shard $i did not start (log: $sdir.log)"; }
			port=$(cat "$sdir.port")
			# Given port 0, the kernel may hand a shard a --proxy-port
			# named in its ephemeral range: start that shard again.
			if [ "$base_port" != 0 ] || [ "$port" != "$proxy_port" ]; then
				break
			fi
			[ $try -lt 3 ] || die "shard $i was handed the proxy's port $proxy_port $try times"
			kill -TERM "${pids[i]}" 2>/dev/null
			wait "${pids[i]}" 2>/dev/null
			port=0
		done
	else
		port=$base_port
		if [ "$base_port" = 0 ]; then
			port=$(free_port "$proxy_port") || die "no free port for shard $i"
		else
			port=$((base_port + i))
		fi
		persist=(--save '' --appendonly no)
		[ "$fsync" = never ] || persist=(--save '' --appendonly yes --appendfsync "$fsync")
		setsid redis-server --bind 127.0.0.1 --port "$port" --dir "$sdir" \
			"${persist[@]}" --daemonize no >"$sdir.log" 2>&1 &
		pids[i]=$!
	fi
	addrs+=("127.0.0.1:$port")
	wait_ready "${pids[i]}" "$port" || { cat "$sdir.log" >&2; die "shard $i does not answer PING (log: $sdir.log)"; }
done

# Port 0: a free port, picked here once the shards listen.  It is free
# only until something binds it (nutcracker's own connections to the
# shards, made before it listens, take ports too): if nutcracker cannot
# listen there, it is started again on another.
auto_port=0
[ "$proxy_port" = 0 ] && auto_port=1
for ((try = 1; ; try++)); do
	if [ $auto_port = 1 ]; then
		proxy_port=$(free_port) || die "no free port for the proxy"
	fi
	# Something answering there already (another cluster) would pass
	# for ours.
	if ping_port "$proxy_port"; then
		[ $auto_port = 1 ] && [ $try -lt 3 ] && continue
		die "127.0.0.1:$proxy_port is in use (--proxy-port)"
	fi
	conf=$dir/nutcracker.yml
	{
		echo "# generated by kvs-cluster.sh: docs/SCALING.md"
		echo "kvs:"
		echo "  listen: 127.0.0.1:$proxy_port"
		echo "  redis: true"
		echo "  hash: fnv1a_64"
		echo "  distribution: ketama"
		echo "  hash_tag: \"{}\""
		# A store, not a cache: a shard that is down must not have its
		# keys remapped to the others (they would be written there and
		# be stale or missing once it is back).  Its keys get an error
		# at once (connection refused), or after `timeout` if it hangs.
		echo "  auto_eject_hosts: false"
		echo "  server_retry_timeout: 1000"
		echo "  server_failure_limit: 1"
		echo "  timeout: $timeout_ms"
		echo "  preconnect: true"
		echo "  server_connections: 1"
		echo "  servers:"
		for ((i = 0; i < shards; i++)); do
			echo "    - ${addrs[i]}:1 shard-$i"
		done
	} >"$conf"
	"$nutcracker" -t -c "$conf" >/dev/null 2>&1 || { "$nutcracker" -t -c "$conf"; die "nutcracker refuses $conf"; }
	# Its stats port (JSON counters) on loopback too, on a free port.
	stats_port=$(free_port "$proxy_port") || die "no free port for the proxy's stats"
	setsid "$nutcracker" -c "$conf" -o "$dir/nutcracker.log" -s "$stats_port" -a 127.0.0.1 -p "$dir/nutcracker.pid" &
	proxy_pid=$!
	wait_ready "$proxy_pid" "$proxy_port" && break
	# Alive but not answering: another port would not help.
	alive=0
	kill -0 "$proxy_pid" 2>/dev/null && alive=1
	kill -TERM "$proxy_pid" 2>/dev/null
	wait "$proxy_pid" 2>/dev/null
	proxy_pid=
	if [ $alive = 1 ] || [ $auto_port = 0 ] || [ $try -ge 3 ]; then
		cat "$dir/nutcracker.log" >&2
		die "nutcracker does not answer PING (log: $dir/nutcracker.log)"
	fi
done

echo "proxy 127.0.0.1:$proxy_port (redis-cli -p $proxy_port; config $conf; stats 127.0.0.1:$stats_port)"
for ((i = 0; i < shards; i++)); do
	echo "shard $i ${addrs[i]} pid ${pids[i]} dir $dir/shard-$i"
done
if [ -n "$info" ]; then
	{
		echo "proxy 127.0.0.1:$proxy_port $proxy_pid"
		for ((i = 0; i < shards; i++)); do
			echo "shard $i ${pids[i]} ${addrs[i]} $dir/shard-$i"
		done
	} >"$info.tmp" && mv "$info.tmp" "$info"
fi
echo "Ctrl-C stops the cluster" >&2

# The children run in sessions of their own (setsid: without a fork, so
# the pids above are theirs): Ctrl-C reaches this script only, whose trap
# stops nutcracker first, then each shard with SIGTERM.  Before, the
# terminal's SIGINT hit them all at once, and this loop could find
# nutcracker gone before the trap ran and report a failure.
#
# Sleep in the background and wait for it, so a signal runs the trap at
# once; a process that dies is reported and the rest keep serving (a test
# kills and restarts shards on purpose).
while :; do
	sleep 1 &
	wait $! 2>/dev/null
	if ! kill -0 "$proxy_pid" 2>/dev/null; then
		echo "kvs-cluster: nutcracker exited (log: $dir/nutcracker.log)" >&2
		proxy_pid=
		stop_all
		exit 1
	fi
done

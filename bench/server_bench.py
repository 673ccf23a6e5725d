#!/usr/bin/python3
"""server_bench.py - kvs-server against Debian's redis-server under the same
kvs-bench workloads, with matching persistence, alternating the two servers
round by round; medians, kvs/redis ratios, CSV/JSON and gnuplot charts.

`make bench` runs it (BENCH_QUICK=1 for a run of seconds).  Standard library
only; run it with Debian's /usr/bin/python3.

How a row is measured.  A row is one workload (command, connections,
pipeline depth, value size, key distribution) under one durability policy.
Each row gets fresh servers in fresh data directories under a temporary
directory: kvs-server with --fsync P, and redis-server with the matching
persistence (never <-> appendonly no, everysec <-> appendfsync everysec,
always <-> appendfsync always; RDB snapshots off in all three).  Both stay
up for the whole row and are idle while the other one is measured.  The
same kvs-bench command line (same seed, keys and values) then runs against
kvs, redis, kvs, redis, ... for --rounds rounds; the row reports the median
of each server's runs and the ratio of the medians.  A run with any error
(kvs-bench's error counters, a non-zero exit, a timeout, a server that died
or logged an error) flags its row: the numbers are still shown, marked, and
the script exits 1 at the end.

The thread-count group (talent-plan project 4's benchmark) starts kvs-server
with --threads 1, 2, 4, 8 side by side with one redis-server as the
single-threaded reference, and runs SET and GET against each in turn, the
order rotating every round.
"""

import argparse
import csv
import ctypes
import datetime
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

PERSISTENCE = {  # kvs --fsync policy -> the matching redis-server options
    "never": ["--appendonly", "no"],
    "everysec": ["--appendonly", "yes", "--appendfsync", "everysec"],
    "always": ["--appendonly", "yes", "--appendfsync", "always"],
}
REDIS_LABEL = {"never": "no AOF", "everysec": "AOF everysec", "always": "AOF always"}
POLICY_ABBR = {"everysec": "es", "always": "al", "never": "nv"}
PCTS = ("p50", "p90", "p99", "p999", "max", "mean")

# Rough per-run and per-server costs beyond --duration and --warmup, used
# for the printed time budget and for skipping rows that no longer fit.
RUN_OVERHEAD_S = 0.5      # kvs-bench start, connect, preload, exit
SERVER_OVERHEAD_S = 0.4   # one server's start and stop


def die(msg):
    print("server_bench: " + msg, file=sys.stderr)
    sys.exit(2)


# ---- workloads ---------------------------------------------------------------

class Row:
    """One workload under one policy; `servers` are filled in as it runs."""

    def __init__(self, policy, cmd, conns, pipeline, value_size, key_dist="uniform"):
        self.policy = policy
        self.cmd = cmd            # set, get or mixed (1 SET : 9 GET)
        self.conns = conns
        self.pipeline = pipeline
        self.value_size = value_size
        self.key_dist = key_dist
        self.results = {}         # server name -> list of run dicts
        self.skipped = ""         # why the row did not run

    @property
    def workload(self):
        return {"set": "SET", "get": "GET", "mixed": "SET:GET 1:9"}[self.cmd]

    @property
    def label(self):
        return "%s %s %s c%d P%d%s" % (POLICY_ABBR[self.policy], self.workload.replace(" ", ""),
                                       size_str(self.value_size), self.conns, self.pipeline,
                                       "" if self.key_dist == "uniform" else " " + self.key_dist)

    def bench_args(self):
        a = ["-c", str(self.conns), "-P", str(self.pipeline), "--value-size", str(self.value_size),
             "--key-dist", self.key_dist]
        if self.cmd == "mixed":
            a += ["--ratio", "1:9", "--preload"]
        else:
            a += ["--cmd", self.cmd]
            if self.cmd == "get":
                a += ["--preload"]
        return a


def size_str(n):
    return "%dKiB" % (n // 1024) if n >= 1024 and n % 1024 == 0 else "%dB" % n


def full_rows():
    rows = []
    # everysec, the default of both servers: the whole matrix.
    for cmd in ("set", "get"):
        for vs in (100, 4096):
            for c in (1, 50, 1000):
                for p in (1, 16):
                    rows.append(Row("everysec", cmd, c, p, vs))
    rows.append(Row("everysec", "mixed", 50, 1, 100, "zipf:0.99"))
    rows.append(Row("everysec", "mixed", 50, 16, 100, "zipf:0.99"))
    # always and never change only the write path: SET rows.
    for pol in ("always", "never"):
        for c, p in ((1, 1), (50, 1), (50, 16), (1000, 1)):
            rows.append(Row(pol, "set", c, p, 100))
    return rows


def quick_rows():
    return [
        Row("everysec", "set", 1, 1, 100),
        Row("everysec", "get", 50, 16, 4096),
        Row("everysec", "mixed", 50, 1, 100, "zipf:0.99"),
        Row("always", "set", 1, 1, 100),
        Row("never", "set", 50, 16, 100),
    ]


# ---- processes -------------------------------------------------------------

_children = []   # every Popen this script started and has not reaped


def _die_with_parent():
    """In the child before exec: SIGTERM it if this script dies (even by
    SIGKILL), so that no server outlives a killed benchmark."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def spawn(argv, log_path):
    with open(log_path, "ab") as log:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                             preexec_fn=_die_with_parent)
    _children.append(p)
    return p


def stop(p, grace=10.0):
    """SIGTERM, then SIGKILL after `grace` seconds; reap it."""
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if p in _children:
        _children.remove(p)


def stop_all():
    for p in list(_children):
        stop(p, 5.0)


def _on_signal(signum, _frame):
    # Raise out of whatever is running so that the finally clauses stop
    # the servers; a second signal is not caught again.
    signal.signal(signum, signal.SIG_DFL)
    raise KeyboardInterrupt("signal %d" % signum)


class Server:
    """A kvs-server or redis-server listening on a free loopback port."""

    def __init__(self, kind, policy, workdir, bin_dir, threads=None):
        self.kind = kind          # "kvs" or "redis"
        self.policy = policy
        self.threads = threads    # kvs --threads (None: its default)
        self.name = kind if threads is None else "%s-t%d" % (kind, threads)
        self.dir = os.path.join(workdir, self.name)
        self.log = self.dir + ".log"
        self.bin_dir = bin_dir
        self.proc = None
        self.port = None
        os.makedirs(self.dir)

    def start(self, timeout=15.0):
        if self.kind == "kvs":
            self._start_kvs(timeout)
        else:
            for _ in range(3):  # the port picked may be taken before redis binds it
                if self._start_redis(timeout):
                    return
            raise RuntimeError("redis-server did not start; see " + self.log)

    def _start_kvs(self, timeout):
        port_file = self.dir + ".port"
        argv = [os.path.join(self.bin_dir, "kvs-server"), "--addr", "127.0.0.1:0",
                "--port-file", port_file, "--dir", self.dir, "--engine", "kvs",
                "--fsync", self.policy]
        if self.threads is not None:
            argv += ["--threads", str(self.threads)]
        self.proc = spawn(argv, self.log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("kvs-server exited with status %d; see %s"
                                   % (self.proc.returncode, self.log))
            try:
                with open(port_file) as f:
                    text = f.read().strip()
                if text:
                    self.port = int(text)
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.01)
        raise RuntimeError("kvs-server wrote no port file within %gs" % timeout)

    def _start_redis(self, timeout):
        self.port = free_port()
        argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
                "--dir", self.dir, "--save", "", "--daemonize", "no",
                "--maxclients", "4096"] + PERSISTENCE[self.policy]
        self.proc = spawn(argv, self.log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                return False
            if ping(self.port):
                return True
            time.sleep(0.01)
        stop(self.proc)
        raise RuntimeError("redis-server did not answer PING within %gs" % timeout)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_problems(self):
        """Lines of the server's log that mean trouble."""
        try:
            with open(self.log, errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            return []
        bad = re.compile(r"\[error\]|Sanitizer|runtime error:|# (WARNING|Error)|Bad file format")
        # redis warns at start-up about overcommit and THP on many hosts:
        # the machine's, not the run's.
        benign = re.compile(r"overcommit_memory|Transparent Huge Pages|maxclients")
        return [l for l in lines if bad.search(l) and not benign.search(l)]

    def stop(self):
        if self.proc is not None:
            stop(self.proc)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def ping(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def kvs_bench_args(args):
    """Options common to every run."""
    return ["-d", fmt_num(args.duration), "--warmup", fmt_num(args.warmup),
            "--keys", str(args.keys), "--key-size", str(args.key_size),
            "--seed", str(args.seed), "-q"] + (["--verify"] if args.verify else [])


def fmt_num(x):
    return ("%g" % x)


def run_bench(args, server, extra, conns, json_path, log_path):
    """One kvs-bench run; returns a dict with its summary and what went wrong."""
    threads = max(1, min(conns, args.bench_threads))
    argv = [args.kvs_bench, "--addr", "127.0.0.1:%d" % server.port, "-t", str(threads),
            "--json", json_path] + extra + kvs_bench_args(args)
    run = {"server": server.name, "ok": False, "problem": "", "summary": None}
    limit = args.warmup + args.duration + 60 + args.keys * 1e-4
    try:
        os.unlink(json_path)
    except OSError:
        pass
    with open(log_path, "ab") as log:
        log.write(("$ " + " ".join(argv) + "\n").encode())
        log.flush()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                             preexec_fn=_die_with_parent)
        _children.append(p)
        try:
            rc = p.wait(limit)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            rc = None
        _children.remove(p)
    if rc is None:
        run["problem"] = "kvs-bench timed out after %ds" % limit
    elif rc != 0:
        run["problem"] = "kvs-bench exit status %d" % rc
    try:
        with open(json_path) as f:
            s = json.load(f)
        run["summary"] = s
    except (OSError, ValueError) as e:
        run["problem"] = run["problem"] or "no JSON summary (%s)" % e
        s = None
    if s is not None:
        errs = s.get("errors", {})
        if errs.get("total", 0):
            detail = ", ".join("%s %d" % (k, v) for k, v in errs.items() if k != "total" and v)
            run["problem"] = run["problem"] or "%d errors (%s)" % (errs["total"], detail)
        elif not s.get("total_ops"):
            run["problem"] = run["problem"] or "no operations completed"
    if not server.alive():
        run["problem"] = run["problem"] or "%s died (see its log)" % server.kind
    run["ok"] = not run["problem"]
    return run


def summarize(runs):
    """Medians (and min/max of throughput) over a server's runs of a row."""
    got = [r["summary"] for r in runs if r["summary"] and r["summary"].get("total_ops")]
    out = {"runs": len(runs), "clean_runs": sum(1 for r in runs if r["ok"]),
           "errors": sum((r["summary"] or {}).get("errors", {}).get("total", 0) for r in runs),
           "problems": ["run %d: %s" % (i + 1, r["problem"]) if r.get("summary") is not None
                        or not r["problem"].startswith("log:") else r["problem"]
                        for i, r in enumerate(runs) if r["problem"]]}
    if not got:
        return out
    ops = [g["ops_per_sec"] for g in got]
    out["ops_per_sec"] = statistics.median(ops)
    out["ops_per_sec_min"] = min(ops)
    out["ops_per_sec_max"] = max(ops)
    out["latency_us"] = {k: statistics.median(g["latency_us"][k] for g in got)
                         for k in PCTS if all(k in g.get("latency_us", {}) for g in got)}
    return out


# ---- the groups --------------------------------------------------------------

class Budget:
    """Time accounting: the estimate printed at start and the deadline."""

    def __init__(self, args):
        self.args = args
        self.start = time.monotonic()

    def run_cost(self):
        return self.args.duration + self.args.warmup + RUN_OVERHEAD_S

    def group_cost(self, nservers, nworkloads):
        a = self.args
        return nservers * (SERVER_OVERHEAD_S + a.rounds * nworkloads * self.run_cost())

    def elapsed(self):
        return time.monotonic() - self.start

    def fits(self, cost):
        return self.elapsed() + cost <= self.args.deadline


def run_row(args, row, budget, workdir, log_path):
    cost = budget.group_cost(2, 1)
    if row.conns > args.max_conns:
        row.skipped = "needs %d connections; ulimit -n allows %d" % (row.conns, args.max_conns)
        return
    if not budget.fits(cost):
        row.skipped = "over the time budget (--deadline %gs)" % args.deadline
        return
    rdir = tempfile.mkdtemp(prefix="row-", dir=workdir)
    servers = [Server("kvs", row.policy, rdir, args.bin_dir),
               Server("redis", row.policy, rdir, args.bin_dir)]
    row.results = {s.kind: [] for s in servers}
    try:
        for s in servers:
            s.start()
        for rnd in range(args.rounds):
            for s in servers:  # A, B, A, B, ...
                jp = os.path.join(rdir, "%s-%d.json" % (s.kind, rnd))
                row.results[s.kind].append(run_bench(args, s, row.bench_args(), row.conns,
                                                     jp, log_path))
        for s in servers:
            probs = s.log_problems()
            if probs:
                row.results[s.kind].append({"server": s.name, "ok": False, "summary": None,
                                            "problem": "log: " + probs[0][:200]})
    except RuntimeError as e:
        row.skipped = "server failed: %s" % e
    finally:
        for s in servers:
            s.stop()
        for s in servers:
            if s.kind == "kvs":
                keep_log(s, args, log_path)
        shutil.rmtree(rdir, ignore_errors=True)


def keep_log(server, args, log_path):
    """Append a server's log to the run log (which survives the temp dir)."""
    try:
        with open(server.log, "rb") as src, open(log_path, "ab") as dst:
            dst.write(("--- %s log\n" % server.name).encode())
            shutil.copyfileobj(src, dst)
    except OSError:
        pass


def run_threads(args, budget, workdir, log_path):
    """kvs-server --threads N for each N, with redis as the reference."""
    workloads = [Row("everysec", "set", args.thread_conns, 1, 100),
                 Row("everysec", "get", args.thread_conns, 1, 100)]
    names = ["kvs-t%d" % t for t in args.threads] + ["redis"]
    result = {"workloads": [], "skipped": ""}
    cost = budget.group_cost(len(names), len(workloads))
    if not args.threads:
        return result
    if not budget.fits(cost):
        result["skipped"] = "over the time budget (--deadline %gs)" % args.deadline
        return result
    tdir = tempfile.mkdtemp(prefix="threads-", dir=workdir)
    servers = [Server("kvs", "everysec", tdir, args.bin_dir, threads=t) for t in args.threads]
    servers.append(Server("redis", "everysec", tdir, args.bin_dir))
    for w in workloads:
        w.results = {s.name: [] for s in servers}
    try:
        for s in servers:
            s.start()
        for rnd in range(args.rounds):
            for w in workloads:
                order = servers[rnd % len(servers):] + servers[:rnd % len(servers)]
                for s in order:
                    jp = os.path.join(tdir, "%s-%s-%d.json" % (s.name, w.cmd, rnd))
                    w.results[s.name].append(run_bench(args, s, w.bench_args(), w.conns,
                                                       jp, log_path))
        for s in servers:
            probs = s.log_problems()
            if probs:
                for w in workloads:
                    w.results[s.name].append({"server": s.name, "ok": False, "summary": None,
                                              "problem": "log: " + probs[0][:200]})
    except RuntimeError as e:
        result["skipped"] = "server failed: %s" % e
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(tdir, ignore_errors=True)
    result["workloads"] = workloads
    return result


# ---- output ------------------------------------------------------------------

def row_record(row):
    """The JSON/CSV view of a finished row."""
    rec = {"label": row.label, "fsync": row.policy, "redis_persistence": REDIS_LABEL[row.policy],
           "workload": row.workload, "cmd": row.cmd, "conns": row.conns,
           "pipeline": row.pipeline, "value_size": row.value_size, "key_dist": row.key_dist,
           "skipped": row.skipped, "servers": {}}
    for name, runs in row.results.items():
        rec["servers"][name] = summarize(runs)
        rec["servers"][name]["raw"] = [
            {"ok": r["ok"], "problem": r["problem"],
             "ops_per_sec": (r["summary"] or {}).get("ops_per_sec"),
             "latency_us": (r["summary"] or {}).get("latency_us"),
             "errors": (r["summary"] or {}).get("errors")} for r in runs]
    k = rec["servers"].get("kvs", {}).get("ops_per_sec")
    r = rec["servers"].get("redis", {}).get("ops_per_sec")
    rec["ratio"] = k / r if k and r else None
    rec["problems"] = ["%s: %s" % (n, p) for n, s in rec["servers"].items() for p in s["problems"]]
    rec["flagged"] = bool(rec["problems"]) or bool(row.skipped)
    return rec


def fmt_ops(x):
    return "-" if x is None else "{:,.0f}".format(x)


def fmt_us(x):
    if x is None:
        return "-"
    return "%.0f" % x if x >= 10 else "%.1f" % x


def print_table(records, out=sys.stdout):
    hdr = ("%-8s %-12s %-6s %5s %4s %7s | %11s %11s %6s | %15s %15s | %s"
           % ("fsync", "workload", "value", "conns", "pipe", "keydist", "kvs ops/s", "redis ops/s",
              "ratio", "kvs p50/p99", "redis p50/p99", "flags"))
    print(hdr, file=out)
    print("-" * len(hdr), file=out)
    for rec in records:
        k = rec["servers"].get("kvs", {})
        r = rec["servers"].get("redis", {})

        def lat(s):
            l = s.get("latency_us", {})
            return "%s/%s" % (fmt_us(l.get("p50")), fmt_us(l.get("p99"))) if l else "-"
        flags = ""
        if rec["skipped"]:
            flags = "SKIPPED: " + rec["skipped"]
        elif rec["problems"]:
            flags = "! " + "; ".join(
                "%s %d bad: %s" % (n, len(s["problems"]), s["problems"][0])
                for n, s in rec["servers"].items() if s["problems"])
        else:
            spread = max(spread_of(k), spread_of(r))
            if spread is not None and spread > 0.25:
                flags = "~ spread %.0f%%" % (spread * 100)
        ratio = "-" if rec["ratio"] is None else "%.2f" % rec["ratio"]
        dist = "zipf" if rec["key_dist"].startswith("zipf") else rec["key_dist"][:4]
        print("%-8s %-12s %-6s %5d %4d %7s | %11s %11s %6s | %15s %15s | %s"
              % (rec["fsync"], rec["workload"], size_str(rec["value_size"]), rec["conns"],
                 rec["pipeline"], dist, fmt_ops(k.get("ops_per_sec")),
                 fmt_ops(r.get("ops_per_sec")), ratio, lat(k), lat(r), flags), file=out)


def spread_of(s):
    """(max - min) / median of a server's throughput over its runs."""
    if not s.get("ops_per_sec"):
        return None
    return (s["ops_per_sec_max"] - s["ops_per_sec_min"]) / s["ops_per_sec"]


def geomeans(records):
    by = {}
    for rec in records:
        if rec["ratio"] and not rec["flagged"]:
            by.setdefault(rec["fsync"], []).append(rec["ratio"])
    return {p: (math.exp(sum(math.log(x) for x in v) / len(v)), len(v)) for p, v in by.items()}


CSV_FIELDS = ["label", "fsync", "redis_persistence", "workload", "key_dist", "conns", "pipeline",
              "value_size", "server", "runs", "clean_runs", "ops_per_sec_median",
              "ops_per_sec_min", "ops_per_sec_max", "p50_us", "p90_us", "p99_us", "p999_us",
              "max_us", "mean_us", "errors", "kvs_over_redis", "flag"]


def write_server_csv(path, records):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_FIELDS)
        for rec in records:
            for name in ("kvs", "redis"):
                s = rec["servers"].get(name)
                if s is None:
                    if rec["skipped"]:
                        w.writerow([rec["label"], rec["fsync"], rec["redis_persistence"],
                                    rec["workload"], rec["key_dist"], rec["conns"],
                                    rec["pipeline"], rec["value_size"], name] + [""] * 13
                                   + ["skipped: " + rec["skipped"]])
                    continue
                lat = s.get("latency_us", {})
                flag = "; ".join(s["problems"]) or ("skipped: " + rec["skipped"] if rec["skipped"] else "")
                w.writerow([rec["label"], rec["fsync"], rec["redis_persistence"], rec["workload"],
                            rec["key_dist"], rec["conns"], rec["pipeline"], rec["value_size"],
                            name, s["runs"], s["clean_runs"], num(s.get("ops_per_sec")),
                            num(s.get("ops_per_sec_min")), num(s.get("ops_per_sec_max"))]
                           + [num(lat.get(k)) for k in PCTS]
                           + [s["errors"], num(rec["ratio"]) if name == "kvs" else "", flag])


def num(x):
    if x is None:
        return ""
    return "%.4g" % x if isinstance(x, float) and abs(x) < 100 else "%.0f" % x


def thread_records(tres):
    recs = []
    for w in tres["workloads"]:
        for name, runs in w.results.items():
            s = summarize(runs)
            recs.append({"workload": w.workload, "server": "redis" if name == "redis" else "kvs",
                         "threads": int(name.split("-t")[1]) if "-t" in name else 1,
                         "conns": w.conns, "pipeline": w.pipeline, "value_size": w.value_size,
                         "summary": s, "flagged": bool(s["problems"])})
    return recs


def write_threads_csv(path, trecs):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["workload", "server", "threads", "conns", "pipeline", "value_size", "runs",
                    "clean_runs", "ops_per_sec_median", "ops_per_sec_min", "ops_per_sec_max",
                    "p50_us", "p99_us", "errors", "flag"])
        for t in trecs:
            s = t["summary"]
            lat = s.get("latency_us", {})
            w.writerow([t["workload"], t["server"], t["threads"], t["conns"], t["pipeline"],
                        t["value_size"], s["runs"], s["clean_runs"], num(s.get("ops_per_sec")),
                        num(s.get("ops_per_sec_min")), num(s.get("ops_per_sec_max")),
                        num(lat.get("p50")), num(lat.get("p99")), s["errors"],
                        "; ".join(s["problems"])])


def print_threads(trecs, out=sys.stdout):
    by = {}
    for t in trecs:
        by.setdefault(t["workload"], []).append(t)
    for wl, ts in by.items():
        ref = next((t for t in ts if t["server"] == "redis"), None)
        refops = ref["summary"].get("ops_per_sec") if ref else None
        print("%s, %d connections, pipeline 1, 100B values (redis: single-threaded reference):"
              % (wl, ts[0]["conns"]), file=out)
        for t in sorted(ts, key=lambda t: (t["server"] != "kvs", t["threads"])):
            s = t["summary"]
            ops = s.get("ops_per_sec")
            lat = s.get("latency_us", {})
            name = "kvs --threads %d" % t["threads"] if t["server"] == "kvs" else "redis"
            ratio = ("%.2f x redis" % (ops / refops) if ops and refops and t["server"] == "kvs"
                     else "")
            flag = ("! " + "; ".join(s["problems"][:2])) if s["problems"] else ""
            print("  %-18s %11s ops/s  %-12s  p50 %6s us  p99 %7s us  %s"
                  % (name, fmt_ops(ops), ratio, fmt_us(lat.get("p50")), fmt_us(lat.get("p99")),
                     flag), file=out)


# ---- charts ------------------------------------------------------------------

def charts(args, records, trecs, workdir):
    gp = shutil.which("gnuplot")
    if not gp:
        print("charts: gnuplot not found; skipping the PNGs (apt-get install gnuplot-nox)")
        return []
    here = os.path.dirname(os.path.abspath(__file__))
    made = []
    done = [r for r in records if r["servers"].get("kvs", {}).get("ops_per_sec")
            and r["servers"].get("redis", {}).get("ops_per_sec")]

    def mark(rec):
        return rec["label"] + (" !" if rec["flagged"] else "")
    if done:
        tp = os.path.join(workdir, "throughput.dat")
        with open(tp, "w") as f:
            f.write("workload\tkvs-server\tredis-server\n")
            for rec in done:
                f.write("%s\t%g\t%g\n" % (mark(rec), rec["servers"]["kvs"]["ops_per_sec"],
                                          rec["servers"]["redis"]["ops_per_sec"]))
        lp = os.path.join(workdir, "latency.dat")
        with open(lp, "w") as f:
            f.write("workload\tkvs p50\tkvs p99\tkvs p99.9\tredis p50\tredis p99\tredis p99.9\n")
            for rec in done:
                kl = rec["servers"]["kvs"].get("latency_us", {})
                rl = rec["servers"]["redis"].get("latency_us", {})
                f.write("\t".join([mark(rec)] + ["%g" % l.get(k, float("nan"))
                                                 for l in (kl, rl) for k in ("p50", "p99", "p999")])
                        + "\n")
        made += plot(gp, os.path.join(here, "server_throughput.gp"), tp,
                     os.path.join(args.out, "throughput.png"), args.title)
        made += plot(gp, os.path.join(here, "server_latency.gp"), lp,
                     os.path.join(args.out, "latency.png"), args.title)
    kvs_t = [t for t in trecs if t["server"] == "kvs" and t["summary"].get("ops_per_sec")]
    if kvs_t:
        # threads, then kvs ops/s per workload, then redis's (the same on
        # every line: a horizontal reference).
        dp = os.path.join(workdir, "threads.dat")
        wls = sorted({t["workload"] for t in trecs})

        def ops(server, th, w):
            v = [t["summary"].get("ops_per_sec") for t in trecs
                 if t["server"] == server and t["workload"] == w
                 and (server == "redis" or t["threads"] == th)]
            return "%g" % v[0] if v and v[0] else "NaN"
        with open(dp, "w") as f:
            f.write("\t".join(["threads"] + ["kvs-server " + w for w in wls]
                              + ["redis-server " + w for w in wls]) + "\n")
            for th in sorted({t["threads"] for t in kvs_t}):
                f.write("\t".join([str(th)] + [ops("kvs", th, w) for w in wls]
                                  + [ops("redis", th, w) for w in wls]) + "\n")
        made += plot(gp, os.path.join(here, "server_threads.gp"), dp,
                     os.path.join(args.out, "threads.png"), args.title)
    return made


def plot(gp, script, data, png, title):
    argv = [gp, "-c", script, data, png, title]
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        print("charts: gnuplot timed out on " + os.path.basename(script))
        return []
    if r.returncode != 0 or not os.path.exists(png):
        print("charts: gnuplot failed on %s: %s" % (os.path.basename(script),
                                                    r.stderr.decode(errors="replace").strip()))
        return []
    return [png]


# ---- main --------------------------------------------------------------------

def raise_nofile(want):
    """Raise the soft open-file limit towards `want`; return what is allowed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass
    return soft


def version_of(argv):
    try:
        r = subprocess.run(argv, capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
        return (r.stdout or r.stderr).decode(errors="replace").strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "?"


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", default="build/bin",
                    help="where kvs-server and kvs-bench are (default build/bin)")
    ap.add_argument("--out", default=None, help="results directory (default bench/results)")
    ap.add_argument("--quick", action="store_true",
                    help="a few rows, short runs: seconds, for development and the test")
    ap.add_argument("--duration", type=float, help="seconds measured per run (2; quick 0.3)")
    ap.add_argument("--warmup", type=float, help="seconds of warm-up per run (0.5; quick 0.1)")
    ap.add_argument("--rounds", type=int, help="runs per server per row, at least 3 (3)")
    ap.add_argument("--keys", type=int, help="distinct keys (10000; quick 1000)")
    ap.add_argument("--key-size", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", default=None,
                    help="kvs-server thread counts for the thread group, e.g. 1,2,4,8 "
                         "(quick 1,2; 'none' skips the group)")
    ap.add_argument("--thread-conns", type=int, default=50,
                    help="connections in the thread group (50)")
    ap.add_argument("--bench-threads", type=int, default=None,
                    help="kvs-bench threads, at most one per connection (default: online CPUs)")
    ap.add_argument("--verify", action=argparse.BooleanOptionalAction, default=None,
                    help="kvs-bench --verify: check every GET's value (default: in --quick)")
    ap.add_argument("--rows", default=None, help="only rows whose label matches this regex")
    ap.add_argument("--deadline", type=float, default=None,
                    help="seconds after which rows not started are skipped (840; quick 120)")
    ap.add_argument("--title", default="kvs-server vs redis-server")
    a = ap.parse_args()
    q = a.quick
    a.duration = a.duration if a.duration is not None else (0.3 if q else 2.0)
    a.warmup = a.warmup if a.warmup is not None else (0.1 if q else 0.5)
    a.rounds = a.rounds if a.rounds is not None else 3
    a.verify = a.verify if a.verify is not None else q
    a.keys = a.keys if a.keys is not None else (1000 if q else 10000)
    a.deadline = a.deadline if a.deadline is not None else (120.0 if q else 840.0)
    t = a.threads if a.threads is not None else ("1,2" if q else "1,2,4,8")
    a.threads = [] if t in ("", "none", "0") else [int(x) for x in t.split(",")]
    if a.rounds < 1 or a.duration <= 0 or a.warmup < 0 or a.keys < 1:
        die("bad --rounds/--duration/--warmup/--keys")
    if a.rounds < 3:
        print("server_bench: note: %d rounds; a median wants at least 3" % a.rounds)
    a.ncpu = os.sysconf("SC_NPROCESSORS_ONLN")
    a.bench_threads = a.bench_threads or a.ncpu
    here = os.path.dirname(os.path.abspath(__file__))
    a.out = os.path.abspath(a.out or os.path.join(here, "results"))
    a.bin_dir = os.path.abspath(a.bin_dir)
    a.kvs_bench = os.path.join(a.bin_dir, "kvs-bench")
    return a


def main():
    args = parse_args()
    for exe in (os.path.join(args.bin_dir, "kvs-server"), args.kvs_bench):
        if not os.access(exe, os.X_OK):
            die("%s not found (build it first: make)" % exe)
    if not shutil.which("redis-server"):
        die("redis-server not found (apt-get install redis-server)")
    rows = quick_rows() if args.quick else full_rows()
    if args.rows:
        rows = [r for r in rows if re.search(args.rows, r.label)]
    biggest = max([r.conns for r in rows] + [args.thread_conns if args.threads else 0])
    # Each side of a connection is a descriptor in its own process; leave
    # room for the server's files and the benchmark's own.
    nofile = raise_nofile(max(4096, biggest + 512))
    args.max_conns = nofile - 256
    os.makedirs(args.out, exist_ok=True)

    budget = Budget(args)
    per_run = budget.run_cost()
    est_rows = sum(budget.group_cost(2, 1) for _ in rows)
    nth = len(args.threads) + 1 if args.threads else 0
    est_threads = budget.group_cost(nth, 2) if nth else 0.0

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    started = datetime.datetime.now(datetime.timezone.utc)
    print("== kvs-server vs redis-server (%s)" % ("quick" if args.quick else "full run"))
    print("kvs-server: %s; kvs-bench: %s; %s"
          % (version_of([os.path.join(args.bin_dir, "kvs-server"), "-V"]),
             version_of([args.kvs_bench, "-V"]), version_of(["redis-server", "--version"])))
    print("machine: %d online CPUs, shared by both servers and the load generator "
          "(kvs-bench runs min(connections, %d) threads)" % (args.ncpu, args.bench_threads))
    print("kvs-server: %d worker threads (its default: the online CPUs), plus its writer "
          "thread; redis-server: one event-loop thread (io-threads 1)" % args.ncpu)
    print("persistence: kvs --fsync never/everysec/always <-> redis appendonly no / "
          "appendfsync everysec / appendfsync always; RDB snapshots off (--save '')")
    print("ulimit -n %d (rows over %d connections are skipped)" % (nofile, args.max_conns))
    print("budget: %d rows x %d rounds x 2 servers x (%gs run + %gs warm-up + ~%gs start-up)"
          " + %d server starts x ~%gs" % (len(rows), args.rounds, args.duration, args.warmup,
                                           RUN_OVERHEAD_S, len(rows) * 2, SERVER_OVERHEAD_S)
          + " = ~%.0fs" % est_rows)
    if nth:
        print("        + threads %s: 2 workloads x %d rounds x %d servers x ~%gs + starts = ~%.0fs"
              % (",".join(map(str, args.threads)), args.rounds, nth, per_run, est_threads))
    print("        total ~%.0fs (~%.1f min); rows that would end past %gs are skipped"
          % (est_rows + est_threads, (est_rows + est_threads) / 60, args.deadline))
    sys.stdout.flush()

    workdir = tempfile.mkdtemp(prefix="kvs-server-bench-")
    log_path = os.path.join(args.out, "server-bench.log")
    open(log_path, "w").close()
    records, trecs, tres = [], [], {"workloads": [], "skipped": ""}
    interrupted = False
    try:
        for i, row in enumerate(rows):
            t0 = time.monotonic()
            run_row(args, row, budget, workdir, log_path)
            rec = row_record(row)
            records.append(rec)
            k = rec["servers"].get("kvs", {}).get("ops_per_sec")
            r = rec["servers"].get("redis", {}).get("ops_per_sec")
            note = ("SKIPPED: " + rec["skipped"]) if rec["skipped"] else \
                   ("! " + rec["problems"][0]) if rec["problems"] else ""
            print("[%2d/%d] %-36s kvs %11s  redis %11s  %5s  (%.0fs) %s"
                  % (i + 1, len(rows), row.label, fmt_ops(k), fmt_ops(r),
                     "%.2f" % rec["ratio"] if rec["ratio"] else "-",
                     time.monotonic() - t0, note))
            sys.stdout.flush()
        if args.threads:
            print("[threads] kvs-server --threads %s and redis, SET and GET ..."
                  % ",".join(map(str, args.threads)))
            sys.stdout.flush()
            tres = run_threads(args, budget, workdir, log_path)
            trecs = thread_records(tres)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: stopping the servers; writing what was measured")
    finally:
        stop_all()

    wall = budget.elapsed()
    doc = {"tool": "server_bench", "started": started.isoformat(timespec="seconds"),
           "wall_s": round(wall, 1), "estimated_s": round(est_rows + est_threads, 1),
           "interrupted": interrupted,
           "config": {"quick": args.quick, "duration_s": args.duration, "warmup_s": args.warmup,
                      "rounds": args.rounds, "keys": args.keys, "key_size": args.key_size,
                      "seed": args.seed, "verify": args.verify,
                      "bench_threads_max": args.bench_threads,
                      "thread_counts": args.threads, "thread_conns": args.thread_conns},
           "machine": {"online_cpus": args.ncpu, "kvs_server_threads": args.ncpu,
                       "redis_threads": 1, "nofile": nofile,
                       "kvs_server": version_of([os.path.join(args.bin_dir, "kvs-server"), "-V"]),
                       "kvs_bench": version_of([args.kvs_bench, "-V"]),
                       "redis_server": version_of(["redis-server", "--version"])},
           "rows": records, "threads": trecs, "threads_skipped": tres["skipped"],
           "geomean_kvs_over_redis": {p: {"ratio": g, "rows": n}
                                      for p, (g, n) in geomeans(records).items()}}
    with open(os.path.join(args.out, "server.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    write_server_csv(os.path.join(args.out, "server.csv"), records)
    write_threads_csv(os.path.join(args.out, "threads.csv"), trecs)

    print()
    print("== medians of %d rounds; ratio = kvs ops/s / redis ops/s; latency in us "
          "(median p50/p99 of the runs)" % args.rounds)
    print_table(records)
    for p, (g, n) in sorted(geomeans(records).items()):
        print("geometric mean of kvs/redis, %s: %.2f over %d rows" % (p, g, n))
    if trecs:
        print()
        print_threads(trecs)
    if tres["skipped"]:
        print("threads group SKIPPED: " + tres["skipped"])
    made = charts(args, records, trecs, workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    print()
    print("results: %s (server.csv, server.json, threads.csv%s; kvs-bench commands and "
          "kvs-server logs in server-bench.log)"
          % (args.out, "".join(", " + os.path.basename(m) for m in made)))
    flagged = [r for r in records if r["problems"]] + [t for t in trecs if t["flagged"]]
    print("wall time %.0fs (estimated %.0fs)" % (wall, est_rows + est_threads))
    if interrupted:
        return 130
    if flagged:
        print("%d rows had errors (marked with !)" % len(flagged))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

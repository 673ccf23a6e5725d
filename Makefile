# kvs - GNU Makefile.
#
# Targets:
#   make run        build, then run kvs-server on 127.0.0.1:4000 (store in ./data)
#   make test       install missing Debian packages, build, check the layering
#                   (check-layers and its own test), run every test
#   make check-layers   fail on a call cycle between the objects, or an include
#                   cycle between the headers, of one directory of LAYER_DIRS
#                   (tools/check-layers.sh; make test runs it)
#   make asan       the same tests built with AddressSanitizer + UBSan (build-asan/)
#   make tsan       the same tests built with ThreadSanitizer (build-tsan/)
#   make stress     longer crash loops (STRESS_ROUNDS=N) and randomized
#                   power-loss workloads for STRESS_SECONDS (300)
#   make bench-engine   kvs vs LMDB in process: table on stdout, CSV and JSON in
#                   bench/results/ (ENGINE_BENCH_ARGS=--quick for a short run)
#   make bench      kvs-server vs redis-server: table on stdout; CSV, JSON and
#                   PNG charts in bench/results/
#                   (how long each takes: README.md, "Other targets")
#   make fuzz       libFuzzer on every harness, FUZZ_SECONDS (60) each
#                   (FUZZ_NAMES='record hint' for some only)
#   make deps       install the Debian packages the build and tests need
#   make install PREFIX=/usr/local    programs, libkvs.a, kvs.h, kvs.pc and
#                   man pages (DESTDIR=dir to stage); make uninstall
#   make clean
#
# Knobs:
#   BUILD=dir       output directory (default build/)
#   SAN=asan|tsan   sanitizer flavour (normally set by `make asan`/`make tsan`)
#   CC, CXX, PREFIX, GTEST_FILTER=pattern (run some tests only)
#   LAYER_DIRS='tools ...'  the directories check-layers checks (below)
#   BENCH_QUICK=1   make bench in seconds (few rows, short runs);
#   BENCH_OUT=dir   its results elsewhere; BENCH_ROWS=regex some rows only;
#   BENCH_ARGS='--rounds 5 ...'  any other bench/server_bench.py option

VERSION := $(shell sed -n 's/^\#define KVS_VERSION "\(.*\)"/\1/p' engine/kvs.h)
BUILD   ?= build
SAN     ?=
PREFIX  ?= /usr/local
CC      ?= cc
CXX     ?= c++

# Debian packages: what the build needs, and what the tests need besides.
DEB_BUILD := pkg-config liburcu-dev libcbor-dev liblmdb-dev libgtest-dev
DEB_TEST  := python3 python3-cbor2 redis-server redis-tools python3-redis \
             nutcracker
DEB_BENCH := gnuplot-nox
PKGS      := liburcu-memb liburcu-cds libcbor lmdb

WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wpointer-arith \
        -Wundef -Wvla -Wnull-dereference
CWARN := $(WARN) -Wstrict-prototypes -Wmissing-prototypes -Wold-style-definition
OPT   := -O2 -g
ifeq ($(SAN),asan)
  OPT := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
endif
ifeq ($(SAN),tsan)
  OPT := -O1 -g -fsanitize=thread -fno-omit-frame-pointer
endif

# Evaluated when a recipe runs, i.e. after `deps-check` has installed them.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS)) -lpthread
GTEST_LIBS = $(shell pkg-config --libs gtest_main gtest)

CFLAGS   := -std=c11 -D_GNU_SOURCE $(OPT) $(CWARN) -fPIC -MMD -MP
CXXFLAGS := -std=c++17 $(OPT) $(WARN) -MMD -MP
LDFLAGS  := $(filter -fsanitize=%,$(OPT))

ENGINE_SRC := $(wildcard engine/*.c)
ENGINE_OBJ := $(ENGINE_SRC:%.c=$(BUILD)/obj/%.o)
LIB        := $(BUILD)/lib/libkvs.a
BINS       := $(BUILD)/bin/kvs $(BUILD)/bin/kvs-dump $(BUILD)/bin/kvs-client \
              $(BUILD)/bin/kvs-server \
              $(BUILD)/bin/kvs-engine-bench $(BUILD)/bin/kvs-startup-bench \
              $(BUILD)/bin/kvs-compaction-bench $(BUILD)/bin/kvs-bench
# threadpool/ and net/ (all but the server's main) form libkvsnet.a, which
# kvs-server, kvs-client, kvs-bench and the tests link.
NET_SRC    := $(wildcard threadpool/*.c) $(filter-out net/main.c,$(wildcard net/*.c))
NET_OBJ    := $(NET_SRC:%.c=$(BUILD)/obj/%.o)
NETLIB     := $(BUILD)/lib/libkvsnet.a
TEST_SRC   := $(wildcard tests/*.cc)
TEST_OBJ   := $(TEST_SRC:%.cc=$(BUILD)/obj/%.o)
TEST_BIN   := $(BUILD)/tests/kvs-tests
# The fuzz harnesses (tests/fuzz_NAME.c; "fuzzing" below).
# Every harness is replayed by make test; FUZZ_NAMES picks those make fuzz runs.
FUZZ_ALL     := $(patsubst tests/fuzz_%.c,%,$(filter-out tests/fuzz_replay.c,$(wildcard tests/fuzz_*.c)))
FUZZ_NAMES   ?= $(FUZZ_ALL)
FUZZ_REPLAY  := $(FUZZ_ALL:%=$(BUILD)/tests/fuzz-replay-%)
TEST_HELPERS := $(BUILD)/tests/crash-child $(BUILD)/tests/assert-child $(FUZZ_REPLAY)

.PHONY: all run cluster test asan tsan stress bench-engine bench deps deps-bench deps-check deps-fuzz fuzz \
        install uninstall clean check-layers check-layers-test

all: $(LIB) $(BUILD)/include/kvs.h $(BUILD)/lib/pkgconfig/kvs.pc $(BINS)

# ---- dependencies ---------------------------------------------------------
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEPS_OK = pkg-config --exists $(PKGS) gtest 2>/dev/null && \
          [ -f /usr/include/gtest/gtest.h ] && \
          /usr/bin/python3 -c 'import cbor2, redis' 2>/dev/null && \
          command -v redis-server >/dev/null && \
          { command -v nutcracker || [ -x /usr/sbin/nutcracker ]; } >/dev/null

deps:
	@echo "== installing Debian packages: $(DEB_BUILD) $(DEB_TEST)"
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(DEB_BUILD) $(DEB_TEST)

deps-check:
	@$(DEPS_OK) || $(MAKE) --no-print-directory deps

# Only `make bench` needs gnuplot; without it the charts are skipped.
deps-bench: deps-check
	@command -v gnuplot >/dev/null || { \
	  echo "== installing Debian packages: $(DEB_BENCH)" && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(DEB_BENCH); } || \
	  echo "== $(DEB_BENCH) could not be installed: the charts will be skipped"

# ---- the library ----------------------------------------------------------
$(BUILD)/obj/%.o: %.c | deps-check
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -Icommon -Iengine -Ithreadpool -Inet -Itools -c $< -o $@

$(BUILD)/obj/tests/%.o: tests/%.cc | deps-check
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $(PKG_CFLAGS) -Icommon -Iengine -Ithreadpool -Inet -Itests \
	  -DKVS_BIN_DIR='"$(abspath $(BUILD)/bin)"' \
	  -DKVS_TEST_DIR='"$(abspath $(BUILD)/tests)"' \
	  -DKVS_SRC_DIR='"$(abspath .)"' -c $< -o $@

$(LIB): $(ENGINE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(NETLIB): $(NET_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/include/kvs.h: engine/kvs.h
	@mkdir -p $(dir $@)
	cp $< $@

$(BUILD)/lib/pkgconfig/kvs.pc: Makefile | deps-check
	@mkdir -p $(dir $@)
	printf '%s\n' 'prefix=$(abspath $(BUILD))' 'libdir=$${prefix}/lib' \
	  'includedir=$${prefix}/include' '' 'Name: kvs' \
	  'Description: kvs, a log-structured key-value store engine' \
	  'Version: $(VERSION)' 'Requires.private: $(PKGS)' \
	  'Libs: -L$${libdir} -lkvs' 'Libs.private: -lpthread' \
	  'Cflags: -I$${includedir}' > $@

# ---- programs ---------------------------------------------------------------
$(BUILD)/bin/kvs: $(BUILD)/obj/tools/kvs.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# kvs-dump.c (main) and its layers, tools/dump_*.c (tools/dump.h).
DUMP_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,tools/kvs-dump.c $(wildcard tools/dump_*.c))
$(BUILD)/bin/kvs-dump: $(DUMP_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/bin/kvs-client: $(BUILD)/obj/tools/kvs-client.o $(NETLIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/bin/kvs-server: $(BUILD)/obj/net/main.o $(NETLIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

ENGINE_BENCH_OBJ := $(addprefix $(BUILD)/obj/bench/,engine_bench.o eb_workload.o \
                    eb_kvs.o lmdb_raw.o eb_report.o)
$(BUILD)/bin/kvs-engine-bench: $(ENGINE_BENCH_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

KVS_BENCH_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard bench/kvs_bench*.c))
$(BUILD)/bin/kvs-bench: $(KVS_BENCH_OBJ) $(NETLIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

$(BUILD)/bin/kvs-startup-bench: $(BUILD)/obj/bench/startup_bench.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/bin/kvs-compaction-bench: $(BUILD)/obj/bench/compaction_bench.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/tests/crash-child: $(BUILD)/obj/tests/crash_child.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/tests/assert-child: $(BUILD)/obj/tests/assert_child.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(TEST_BIN): $(TEST_OBJ) $(NETLIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CXX) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(GTEST_LIBS)

# ---- running -------------------------------------------------------------------
# The server in the foreground, logging to the terminal; Ctrl-C stops it
# cleanly.  Talk to it with kvs-client or redis-cli -p 4000.
run: all
	@mkdir -p data
	$(BUILD)/bin/kvs-server --addr 127.0.0.1:4000 --engine kvs --dir data

# CLUSTER_SHARDS kvs-servers behind nutcracker (twemproxy) on 127.0.0.1:22121,
# data in CLUSTER_DIR; Ctrl-C stops them (docs/SCALING.md).  CLUSTER_ARGS:
# any other tools/kvs-cluster.sh option (--fsync always, --proxy-port 0 ...).
CLUSTER_SHARDS ?= 3
CLUSTER_DIR    ?= cluster-data
cluster: all
	bash tools/kvs-cluster.sh --bin-dir $(BUILD)/bin -n $(CLUSTER_SHARDS) \
	  --dir '$(CLUSTER_DIR)' $(CLUSTER_ARGS)

test: all $(TEST_BIN) $(TEST_HELPERS)
	@echo "== layering: the checker's test, then call and include cycles in $(LAYER_DIRS)"
	$(CHECK_LAYERS_TEST)
	$(CHECK_LAYERS)
	@echo "== unit and integration tests ($(or $(SAN),plain) build)"
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(abspath tests/tsan.supp)" \
	ASAN_OPTIONS="detect_leaks=1 abort_on_error=0" UBSAN_OPTIONS="print_stacktrace=1" \
	tests/run-gtest.sh $(TEST_BIN) --gtest_brief=1 $(if $(GTEST_FILTER),--gtest_filter='$(GTEST_FILTER)')

# No call cycle between the objects, nor include cycle between the headers,
# of one directory (tools/check-layers.sh).
LAYER_DIRS ?= engine net threadpool tools
CHECK_LAYERS = sh tools/check-layers.sh $(BUILD)/obj . $(LAYER_DIRS)
# The checker's own test: tiny objects with and without cycles, built in a
# temporary directory (a few seconds; the timeout bounds a hung tool).
CHECK_LAYERS_TEST = CC='$(CC)' timeout 120 sh tests/check_layers_test.sh

check-layers: all
	$(CHECK_LAYERS)

check-layers-test:
	$(CHECK_LAYERS_TEST)

asan:
	$(MAKE) BUILD=build-asan SAN=asan test

tsan:
	$(MAKE) BUILD=build-tsan SAN=tsan test

stress: all $(TEST_BIN) $(TEST_HELPERS)
	KVS_STRESS_ROUNDS=$(or $(STRESS_ROUNDS),200) KVS_STRESS_SECONDS=$(or $(STRESS_SECONDS),300) \
	  $(TEST_BIN) --gtest_filter='Crash*:*Stress*'

# kvs against LMDB in process (bench/engine_bench.c): 100-byte values with
# 1M keys, 4 KiB values with 250k keys (to bound disk and time), the relaxed
# writes again against LMDB with MDB_WRITEMAP, talent-plan's workloads; then
# kvs_open and compaction.  Only the benchmarks are built.
ENGINE_BENCH_ARGS ?= -n 1000000,250000 --value-size 100,4096 --writemap-rows
bench-engine: $(BUILD)/bin/kvs-engine-bench $(BUILD)/bin/kvs-startup-bench \
              $(BUILD)/bin/kvs-compaction-bench
	@mkdir -p bench/results
	$(BUILD)/bin/kvs-engine-bench $(ENGINE_BENCH_ARGS) \
	  --csv bench/results/engine.csv --json bench/results/engine.json
	$(BUILD)/bin/kvs-startup-bench -n 1000000
	$(BUILD)/bin/kvs-compaction-bench

# kvs-server against Debian's redis-server with matching persistence, under
# kvs-bench (bench/server_bench.py; Debian's python, standard library only).
bench: all deps-bench
	/usr/bin/python3 bench/server_bench.py --bin-dir $(BUILD)/bin $(if $(BENCH_QUICK),--quick) \
	  $(if $(BENCH_OUT),--out '$(BENCH_OUT)') $(if $(BENCH_ROWS),--rows '$(BENCH_ROWS)') $(BENCH_ARGS)

# ---- fuzzing ------------------------------------------------------------------
# One harness per input kvs reads: tests/fuzz_NAME.c defines
# LLVMFuzzerTestOneInput (and may define LLVMFuzzerInitialize); its seed
# corpus is tests/fuzz/NAME/.  Two builds of each:
#   - build/tests/fuzz-replay-NAME: this build's compiler and sanitizers, with
#     tests/fuzz_replay.c as main(); `make test` (FuzzCorpus.*) replays every
#     corpus file through it, so CI runs the corpora without clang;
#   - build/fuzz/fuzz-NAME: clang + libFuzzer + ASan/UBSan over the sources
#     it exercises (FUZZ_SRC_NAME, instrumented for coverage); `make fuzz`
#     runs each for FUZZ_SECONDS (FUZZ_NAMES='record hint' for some only),
#     growing build/fuzz/corpus-NAME from the seeds.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all $(CWARN)
DUMP_LIB_SRC := $(wildcard tools/dump_*.c)
# What each harness exercises besides its own file (instrumented); the rest
# of what it calls comes from libkvs.a/libkvsnet.a, uninstrumented.
FUZZ_SRC_resp     := $(wildcard net/resp*.c)
FUZZ_SRC_record   := $(ENGINE_SRC)
FUZZ_SRC_hint     := $(ENGINE_SRC)
FUZZ_SRC_recovery := $(ENGINE_SRC)
FUZZ_SRC_dump     := $(ENGINE_SRC) $(DUMP_LIB_SRC)
FUZZ_SRC_cmd      := $(ENGINE_SRC) $(NET_SRC)
# Objects of this build a replay binary needs besides libkvsnet.a/libkvs.a.
FUZZ_OBJ_dump     := $(DUMP_LIB_SRC:%.c=$(BUILD)/obj/%.o)
# libFuzzer options per harness.
FUZZ_ARGS_resp     := -max_len=4096
FUZZ_ARGS_record   := -max_len=4096
FUZZ_ARGS_hint     := -max_len=65536
FUZZ_ARGS_recovery := -max_len=65536
FUZZ_ARGS_dump     := -max_len=65536
FUZZ_ARGS_cmd      := -max_len=4096 -len_control=10 -timeout=60

# Their objects are kept (not removed as intermediates, and rebuilt).
.SECONDARY: $(FUZZ_ALL:%=$(BUILD)/obj/tests/fuzz_%.o) $(BUILD)/obj/tests/fuzz_replay.o
.SECONDEXPANSION:
$(BUILD)/tests/fuzz-replay-%: $(BUILD)/obj/tests/fuzz_%.o $(BUILD)/obj/tests/fuzz_replay.o \
                              $$(FUZZ_OBJ_$$*) $(NETLIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/fuzz/fuzz-%: tests/fuzz_%.c $$(FUZZ_SRC_$$*) $(NETLIB) $(LIB) | deps-fuzz
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(PKG_CFLAGS) -Icommon -Iengine -Ithreadpool -Inet -Itools \
	  -o $@ tests/fuzz_$*.c $(FUZZ_SRC_$*) $(NETLIB) $(LIB) $(PKG_LIBS)

define fuzz_run
	@mkdir -p $(BUILD)/fuzz/corpus-$(1)
	@echo "== fuzz-$(1) for $(FUZZ_SECONDS) s"
	$(BUILD)/fuzz/fuzz-$(1) -max_total_time=$(FUZZ_SECONDS) -malloc_limit_mb=256 \
	  -print_final_stats=1 $(FUZZ_ARGS_$(1)) $(BUILD)/fuzz/corpus-$(1) tests/fuzz/$(1)

endef
deps-fuzz: deps-check
	@command -v $(FUZZ_CC) >/dev/null || { \
	  echo "== installing Debian packages: clang (libFuzzer)" && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends clang; }

fuzz: deps-fuzz $(FUZZ_NAMES:%=$(BUILD)/fuzz/fuzz-%)
	$(foreach n,$(FUZZ_NAMES),$(call fuzz_run,$(n)))

# What a user runs: the programs (kvs-bench included: a load generator for
# any RESP server), the library, its header and pkg-config file, and a man
# page for each program (section 1) and the library (section 3).  The engine
# benchmarks (kvs-engine-bench, kvs-startup-bench, kvs-compaction-bench) are
# not installed: they measure the library in process for `make bench-engine`
# and write into the source tree.  DESTDIR for staging; no root needed with
# PREFIX=$$HOME/.local or similar.
INSTALL_BINS := kvs kvs-client kvs-server kvs-dump kvs-bench
MAN1 := $(INSTALL_BINS:%=man/%.1)
MAN3 := man/libkvs.3
MANDIR ?= $(PREFIX)/share/man
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include \
	  $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3
	install -m 755 $(INSTALL_BINS:%=$(BUILD)/bin/%) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 engine/kvs.h $(DESTDIR)$(PREFIX)/include/
	sed 's|^prefix=.*|prefix=$(PREFIX)|' $(BUILD)/lib/pkgconfig/kvs.pc > $(DESTDIR)$(PREFIX)/lib/pkgconfig/kvs.pc
	install -m 644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/
	install -m 644 $(MAN3) $(DESTDIR)$(MANDIR)/man3/

uninstall:
	rm -f $(INSTALL_BINS:%=$(DESTDIR)$(PREFIX)/bin/%) $(DESTDIR)$(PREFIX)/lib/libkvs.a \
	  $(DESTDIR)$(PREFIX)/include/kvs.h $(DESTDIR)$(PREFIX)/lib/pkgconfig/kvs.pc \
	  $(MAN1:man/%=$(DESTDIR)$(MANDIR)/man1/%) $(MAN3:man/%=$(DESTDIR)$(MANDIR)/man3/%)

clean:
	rm -rf build build-*

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# MT-Cluster build, test and benchmark entry points.
GO      ?= go
BIN     := bin
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

PREFIX  ?= /usr
SYSTEMD_UNIT_DIR ?= /lib/systemd/system

.PHONY: install demo sim fuzz bench-load bench-failover bench-failover-postgres chaos all build test test-unit test-root lab-test lab-shell lab-bench-failover bench vet fmt clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/mtc ./cmd/mtc

# The binary, the systemd unit, the shell completions and the
# configuration directory. DESTDIR
# for packaging; then: systemctl daemon-reload && systemctl enable --now mtc
install: build
	install -D -m 0755 $(BIN)/mtc $(DESTDIR)$(PREFIX)/sbin/mtc
	install -D -m 0644 dist/systemd/mtc.service $(DESTDIR)$(SYSTEMD_UNIT_DIR)/mtc.service
	install -D -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/mtc/README.md
	install -d -m 0755 $(DESTDIR)/etc/mtc $(DESTDIR)/etc/mtc/packages
	install -d -m 0755 $(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions
	$(BIN)/mtc completion bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/mtc
	$(BIN)/mtc completion zsh > $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions/_mtc

# PostgreSQL failing over on a three-node cluster in network namespaces on
# one machine: a planned move, a crash, a partition (root; about a minute).
demo:
	bash test/demo/demo.sh

vet:
	$(GO) vet ./...

fmt:
	gofmt -l -w $$(git ls-files '*.go')

# The full suite: unit tests, fuzz seed corpora, simulations, root
# integration tests (namespaces, loop devices; they run in test-unit when
# run as root, and fail rather than skip when CI=true) and the QEMU lab.
test: vet test-unit lab-test

test-unit:
	$(GO) test -count=1 -timeout 30m ./...

# Only the root integration tests.
test-root:
	@if [ "$$(id -u)" != 0 ]; then echo "test-root: needs root (loop devices, namespaces); run as root" >&2; exit 1; fi
	$(GO) test -count=1 -run 'Root|Loop|Netns|Integration' ./...

# The QEMU lab (test/lab/README.md): a Debian kernel with an iSCSI SAN,
# device-mapper and LVM, running the tests of test/lab/guest. Needs root.
lab-test:
	bash test/lab/run.sh

# The same guest with a shell on the console; Ctrl-A x quits.
lab-shell:
	bash test/lab/run.sh shell

# The failover benchmark with PR fencing in the lab (TestFailoverPR,
# test/lab/README.md): LAB_FAILOVER_TRIALS crashes per timing profile and
# package, its section copied into docs/BENCHMARKS.md (failover-pr). Slow:
# about a minute of the emulated guest per trial.
LAB_FAILOVER_TRIALS ?= 20
lab-bench-failover:
	LAB_RUN='^TestFailoverPR$$' LAB_WATCHDOG=0 LAB_FAILOVER_TRIALS=$(LAB_FAILOVER_TRIALS) LAB_BENCH_OUT=docs/BENCHMARKS.md nice bash test/lab/run.sh

# Measurements, written to docs/BENCHMARKS.md (root: loop devices and
# namespaces). Each writes its own section.
bench:
	$(GO) run ./cmd/mtc bench disk --out docs/BENCHMARKS.md
	$(GO) run ./cmd/mtc bench sim --out docs/BENCHMARKS.md
	MTC_BENCH_OUT=$(CURDIR)/docs/BENCHMARKS.md $(GO) test -run '^$$' -bench NetnsDaemon -benchtime 1x -timeout 30m ./test/integration
	$(MAKE) bench-failover
	$(MAKE) bench-failover-postgres

# Failover of a package after a crash of its node (link down, every
# process killed, filesystem shut down), crash to VIP and service
# answering, FAILOVER_RUNS crashes per timing profile and package, and
# keepalived and Pacemaker (installed with apt-get when missing) in the
# same namespaces for comparison (root; about 20 minutes;
# MTC_FAILOVER_PACEMAKER=only for Pacemaker alone). Section "failover".
FAILOVER_RUNS ?= 20
bench-failover:
	MTC_BENCH_OUT=$(CURDIR)/docs/BENCHMARKS.md MTC_FAILOVER_RUNS=$(FAILOVER_RUNS) $(GO) test -run '^$$' -bench NetnsFailover -benchtime 1x -timeout 40m ./test/integration

# The same crash for a package of a VIP, ext4 on a loop device and a real
# PostgreSQL (Debian's postgresql package) with its data directory there:
# crash to VIP answering and to PostgreSQL acknowledging an INSERT through
# the VIP, FAILOVER_RUNS crashes per timing profile, every acknowledged row
# checked afterwards (root; about 5 minutes). Section "failover-postgres".
bench-failover-postgres:
	MTC_BENCH_OUT=$(CURDIR)/docs/BENCHMARKS.md MTC_FAILOVER_RUNS=$(FAILOVER_RUNS) $(GO) test -run '^$$' -bench NetnsPostgresFailover -benchtime 1x -timeout 30m ./test/integration

# A million spoofed heartbeat datagrams, each from its own source address,
# against one of three daemons: its CPU, memory, log and the heartbeat gaps.
.PHONY: bench-flood
bench-flood:
	MTC_BENCH_OUT=$(CURDIR)/docs/BENCHMARKS.md $(GO) test -run '^$$' -bench NetnsFlood -benchtime 1x -timeout 10m ./test/integration

# False failure detections of three daemons per timing profile under heavy
# load, in two runs (root; about 40 minutes with the whole machine busy):
# busy loops, a re-touched 6 GiB buffer, direct-I/O dd and quorum-disk
# freezes below io_timeout, the default profile for LOAD_DURATION_DEFAULT and
# the aggressive one for LOAD_DURATION_AGGRESSIVE (section "load"); then
# both again for LOAD_RECLAIM_DURATION with memory-reclaim stalls on top
# (section "load-reclaim"). BenchmarkNetnsLoad lists the variables.
LOAD_PROFILES ?= default,aggressive
LOAD_DURATION_DEFAULT ?= 21m
LOAD_DURATION_AGGRESSIVE ?= 5m
LOAD_RECLAIM_DURATION ?= 3m
bench-load:
	MTC_BENCH_OUT=$(CURDIR)/docs/BENCHMARKS.md MTC_LOAD_PROFILES=$(LOAD_PROFILES) MTC_LOAD_DURATION_DEFAULT=$(LOAD_DURATION_DEFAULT) MTC_LOAD_DURATION_AGGRESSIVE=$(LOAD_DURATION_AGGRESSIVE) MTC_LOAD_RECLAIM_GIB=0 $(GO) test -run '^$$' -bench NetnsLoad -benchtime 1x -timeout 120m ./test/integration
	MTC_BENCH_OUT=$(CURDIR)/docs/BENCHMARKS.md MTC_LOAD_PROFILES=$(LOAD_PROFILES) MTC_LOAD_DURATION=$(LOAD_RECLAIM_DURATION) $(GO) test -run '^$$' -bench NetnsLoad -benchtime 1x -timeout 60m ./test/integration

# Every fuzz target of every package, FUZZTIME each (go test fuzzes one
# target of one package at a time). New interesting inputs land in the Go
# cache; copy those worth keeping into the package's testdata/fuzz.
FUZZTIME ?= 30s
fuzz:
	@list=$$($(GO) test -list '^Fuzz' ./...) || { echo "$$list" >&2; echo "fuzz: listing the fuzz targets failed" >&2; exit 1; }; \
	targets=$$(echo "$$list" | awk '/^Fuzz/ { t[n++] = $$1; next } /^ok/ { for (i = 0; i < n; i++) print $$2 "," t[i]; n = 0 }'); \
	[ -n "$$targets" ] || { echo "fuzz: no fuzz targets found" >&2; exit 1; }; \
	for pt in $$targets; do \
		pkg=$${pt%%,*}; target=$${pt#*,}; \
		echo "== $$pkg $$target for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

# The chaos suite's seeded batch (root; 200 trials took 24 minutes on two
# cores): trial i runs fault kind i modulo the kinds (CHAOS_KINDS,
# comma-separated, all by default) with seed CHAOS_SEED+i on a fresh
# three-node cluster, and the history checker judges it; the summary replaces
# its section of docs/CHAOS.md (the lab's hand-written one is kept). CHAOS_FOR (a duration) starts no trial after it.
# `make test` runs one trial of every kind
# (TestNetnsChaosEveryFault).
CHAOS_TRIALS ?= 200
CHAOS_SEED ?= 1
CHAOS_KINDS ?=
CHAOS_FOR ?=
chaos:
	@if [ "$$(id -u)" != 0 ]; then echo "chaos: needs root (namespaces, loop devices, nftables); run as root" >&2; exit 1; fi
	MTC_CHAOS_TRIALS=$(CHAOS_TRIALS) MTC_CHAOS_SEED=$(CHAOS_SEED) MTC_CHAOS_KINDS=$(CHAOS_KINDS) MTC_CHAOS_FOR=$(CHAOS_FOR) MTC_CHAOS_OUT=$(CURDIR)/docs/CHAOS.md \
		nice $(GO) test -count=1 -run '^TestNetnsChaosBatch$$' -timeout 300m -v ./test/integration

# A larger sweep of the simulation than the test suite's 2000 seeds: the
# safety invariants (packages' included) and the survivor-liveness
# properties, with the number of histories of each fault kind.
sim:
	nice $(GO) run ./cmd/mtc sim --seeds 10000

clean:
	rm -rf $(BIN)

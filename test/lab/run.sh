#!/bin/bash
# The QEMU lab: boots a Debian kernel under QEMU (software emulation, no
# KVM needed) with an iSCSI SAN inside, runs the lab tests of
# test/lab/guest there, and prints their `go test -v` output.
#
# Usage (from anywhere in the repository, as root):
#   test/lab/run.sh            run the lab tests; exit status is theirs
#   test/lab/run.sh shell      boot the same guest with a shell on the console
#                              (quit QEMU with Ctrl-A x)
# Environment:
#   LAB_RUN=REGEX      run only the matching tests (go test -run); the watchdog
#                      phase runs when REGEX matches TestWatchdogResetsNode
#   LAB_WATCHDOG=0     skip the watchdog phase (default 1)
#   LAB_FENCE_TRIALS=N a TestFenceLatency measurement: N trials per case for each
#                      noop_out_interval tried (unset: each case once, as configured)
#   LAB_FAILOVER_TRIALS=N  TestFailoverPR: N crashes per timing profile and package
#                      (unset: 2 each)
#   LAB_FAILOVER_PROFILES=LIST  TestFailoverPR's timing profiles: tcg (default), lab,
#                      default, aggressive
#   LAB_BENCH_OUT=FILE copy every section the guest wrote to BENCHMARKS.md in the
#                      results share into FILE (e.g. docs/BENCHMARKS.md)
#   LAB_GUARD=SECONDS  guest guard timer: dump blocked tasks, power off (default 900,
#                      plus 150 per failover trial asked for)
#   LAB_MEM=MIB        guest memory (default 768)
#   LAB_SMP=N          guest CPUs (default: host cores, at most 2)
#   LAB_ACCEL=A        QEMU accelerator (default tcg; kvm where KVM works)
#   LAB_KERNEL=PKG     Debian kernel package (default: what linux-image-amd64 depends on)
#   LAB_DIR=PATH       cache and scratch folder (default: .lab at the repository root)
#   LAB_NO_APT=1       do not install missing host packages
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
LAB_DIR=${LAB_DIR:-$REPO/.lab}
MODE=${1:-test}
# TestFailoverPR takes about 5 min of an ordinary run, and about 2 min of the
# guest per trial asked for (one crash in each of its four cases).
GUARD=${LAB_GUARD:-$((900 + ${LAB_FAILOVER_TRIALS:-0} * 150))}
# The watchdog phase (after the tests, same guest): a daemon on softdog
# loses its disk and the kernel must reset the guest. It has its own guard
# in the guest (150 s).
WD=${LAB_WATCHDOG:-1}
WD_TEST=TestWatchdogResetsNode
if [ "$WD" = 1 ] && [ -n "${LAB_RUN:-}" ] && ! grep -Eq -- "$LAB_RUN" <<<"$WD_TEST"; then WD=0; fi
[ "$MODE" = shell ] && WD=0
HOST_TIMEOUT=$((GUARD + 120 + (WD == 1 ? 150 : 0)))
MEM=${LAB_MEM:-768}
SMP=${LAB_SMP:-$(( $(nproc) < 2 ? $(nproc) : 2 ))}
GO=${GO:-go}
export LC_ALL=C PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin

T_START=${EPOCHREALTIME/./}
say() { printf 'lab: %s\n' "$*"; }
die() { printf 'lab: error: %s\n' "$*" >&2; exit 2; }
ms_since() { local now=${EPOCHREALTIME/./}; echo $(( (now - $1) / 1000 )); }
declare -a TIMES=()
step() { # step NAME CMD...: run a step and record its wall time
	local name=$1 t0=${EPOCHREALTIME/./}; shift
	"$@"
	TIMES+=("$name=$(ms_since "$t0")ms")
}

case $MODE in test | shell) ;; *) die "unknown mode '$MODE': use 'test' or 'shell'" ;; esac
[ "$(id -u)" = 0 ] || die "the lab needs root (apt-get, depmod into the cache, QEMU with a 9p share); run as root"

# ---- host packages -----------------------------------------------------------
# Each entry: a command the lab needs and the Debian package that provides it.
HOST_DEPS=(
	qemu-system-x86_64:qemu-system-x86 busybox:busybox-static sg_persist:sg3-utils
	lvm:lvm2 dmsetup:dmsetup iscsiadm:open-iscsi modprobe:kmod depmod:kmod cpio:cpio
	xz:xz-utils zstd:zstd mke2fs:e2fsprogs fsck:util-linux ip:iproute2 tc:iproute2
)
host_deps() {
	local missing=() e
	for e in "${HOST_DEPS[@]}"; do
		command -v "${e%%:*}" >/dev/null 2>&1 || missing+=("${e#*:}")
	done
	[ ${#missing[@]} = 0 ] && return 0
	[ "${LAB_NO_APT:-}" = 1 ] && die "missing host packages: ${missing[*]} (LAB_NO_APT=1 set)"
	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
	say "installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$LAB_DIR/apt.log" 2>&1 ||
		{ tail -20 "$LAB_DIR/apt.log" >&2; die "apt-get install ${missing[*]} failed (log: $LAB_DIR/apt.log)"; }
}

# ---- kernel ------------------------------------------------------------------
# The kernel package is fetched once with apt-get download, extracted and
# indexed with depmod under $LAB_DIR/kernel/PKG.
KPKG= KVER= KROOT=
kernel() {
	KPKG=${LAB_KERNEL:-}
	if [ -z "$KPKG" ]; then
		# Reuse a cached kernel when there is one, so a run needs no package index.
		KPKG=$(ls -1 "$LAB_DIR/kernel" 2>/dev/null | grep '^linux-image-' | sort -V | tail -1 || true)
		if [ -z "$KPKG" ] || [ ! -e "$LAB_DIR/kernel/$KPKG/.done" ]; then
			KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '$1=="Depends:" && $2 ~ /^linux-image-/ {print $2; exit}')
			if [ -z "$KPKG" ]; then
				apt-get update -qq
				KPKG=$(apt-cache depends linux-image-amd64 | awk '$1=="Depends:" && $2 ~ /^linux-image-/ {print $2; exit}')
			fi
			[ -n "$KPKG" ] || die "cannot resolve the kernel package behind linux-image-amd64 (apt-cache depends linux-image-amd64)"
		fi
	fi
	KVER=${KPKG#linux-image-}
	local d=$LAB_DIR/kernel/$KPKG
	KROOT=$d/root
	if [ ! -e "$d/.done" ]; then
		say "fetching kernel $KPKG"
		rm -rf "$d"; mkdir -p "$d"
		# apt drops privileges to _apt for downloads when it can write there.
		id _apt >/dev/null 2>&1 && chown _apt "$d"
		(cd "$d" && apt-get download -q "$KPKG" >/dev/null) || die "apt-get download $KPKG failed"
		dpkg-deb -x "$d"/"$KPKG"_*.deb "$KROOT"
		depmod -b "$KROOT" "$KVER"
		rm -f "$d"/*.deb
		touch "$d/.done"
	fi
	[ -f "$KROOT/boot/vmlinuz-$KVER" ] || die "no $KROOT/boot/vmlinuz-$KVER in $KPKG"
}

# ---- base initramfs (cached) -----------------------------------------------------
# busybox, the SAN tools with their libraries, the kernel modules and the
# guest scripts. Rebuilt when the kernel, a guest script or a host tool changes.
BASE=
base_image() {
	local key
	key=$( {
		echo "$KPKG"
		cat "$HERE"/image/*
		for e in "${HOST_DEPS[@]}"; do command -v "${e%%:*}" | xargs -r ls -lL; done
	} | sha256sum | cut -c1-16)
	BASE=$LAB_DIR/image/base-$key.cpio
	if [ ! -e "$BASE" ]; then
		say "building base initramfs ($KPKG)"
		mkdir -p "$LAB_DIR/image"
		rm -f "$LAB_DIR"/image/base-*.cpio
		bash "$HERE/image/mkbase.sh" "$KROOT" "$KVER" "$LAB_DIR/image/rootfs" "$BASE.tmp"
		mv "$BASE.tmp" "$BASE"
	fi
}

# ---- our binaries ------------------------------------------------------------------
# Statically linked, packed as a second cpio archive appended to the base:
# the kernel unpacks concatenated archives in order.
OVERLAY=
binaries() {
	local o=$LAB_DIR/build/overlay
	rm -rf "$o"; mkdir -p "$o/lab"
	# The lab tests do not need mtc itself: a tree where it does not build
	# still runs them (`make build` reports that failure).
	(cd "$REPO" && CGO_ENABLED=0 $GO build -trimpath -o "$o/lab/mtc" ./cmd/mtc) ||
		say "warning: ./cmd/mtc does not build; the guest has no /lab/mtc"
	(cd "$REPO" &&
		CGO_ENABLED=0 $GO build -trimpath -o "$o/lab/labctl" ./test/lab/labctl &&
		CGO_ENABLED=0 $GO test -c -trimpath -o "$o/lab/guest.test" ./test/lab/guest) ||
		die "building the guest binaries failed (see above)"
	OVERLAY=$LAB_DIR/build/overlay.cpio
	(cd "$o" && find . | cpio -o -H newc --quiet >"$OVERLAY")
}

# ---- boot --------------------------------------------------------------------------
RUN= QEMU_RC=0
boot() {
	RUN=$LAB_DIR/run
	rm -rf "$RUN"; mkdir -p "$RUN/share/results"
	cat "$BASE" "$OVERLAY" >"$RUN/initrd"
	# One sparse host file per LUN; each becomes a virtio disk whose serial
	# names the LUN, and an LIO fileio backstore in the guest.
	local args=() lun size
	for lun in quorum:64M data1:256M data2:64M; do
		size=${lun#*:}; lun=${lun%%:*}
		truncate -s "$size" "$RUN/$lun.img"
		args+=(-drive "file=$RUN/$lun.img,if=none,id=$lun,format=raw,cache=unsafe"
			-device "virtio-blk-pci,drive=$lun,serial=lab-$lun")
	done
	# printk.devkmsg=on: the watchdog test's marks in the kernel log are
	# not rate-limited.
	local cmdline="console=ttyS0 panic=-1 loglevel=4 printk.devkmsg=on labmode=$MODE guard=$GUARD labwd=$WD"
	[ -n "${LAB_RUN:-}" ] && cmdline+=" labrun=$LAB_RUN"
	[ -n "${LAB_FENCE_TRIALS:-}" ] && cmdline+=" labfencetrials=$LAB_FENCE_TRIALS"
	[ -n "${LAB_FAILOVER_TRIALS:-}" ] && cmdline+=" labfailovertrials=$LAB_FAILOVER_TRIALS"
	[ -n "${LAB_FAILOVER_PROFILES:-}" ] && cmdline+=" labfailoverprofiles=$LAB_FAILOVER_PROFILES"
	# Software emulation by default: a /dev/kvm that exists is not always
	# usable (nested or sandboxed hosts abort QEMU at start).
	local accel=${LAB_ACCEL:-tcg}
	args+=(-machine "pc,accel=$accel" -cpu max -smp "$SMP" -m "$MEM" -nographic -no-reboot
		-kernel "$KROOT/boot/vmlinuz-$KVER" -initrd "$RUN/initrd" -append "$cmdline"
		-virtfs "local,path=$RUN/share,mount_tag=host0,security_model=none")
	if [ "$MODE" = shell ]; then
		say "shell mode: the lab tests are in /lab/guest.test (see test/lab/README.md); Ctrl-A x quits"
		qemu-system-x86_64 "${args[@]}" || QEMU_RC=$?
		return 0
	fi
	say "booting $KVER ($accel, $SMP cpu, ${MEM} MiB); console log: $RUN/console.log"
	# The host timeout backs the guest's own guard timer.
	set +e
	timeout --kill-after=10 $HOST_TIMEOUT qemu-system-x86_64 "${args[@]}" </dev/null 2>&1 |
		tee "$RUN/console.log" | grep --line-buffered -aE '^LAB:|Kernel panic|BUG:|blocked for more than|softdog|mtc-lab: (watchdog|node3 (armed|disarms))'
	QEMU_RC=${PIPESTATUS[0]}
	set -e
}

mkdir -p "$LAB_DIR"
step deps host_deps
step kernel kernel
step image base_image
step build binaries
step boot boot
[ "$MODE" = shell ] && exit 0

# ---- results -----------------------------------------------------------------------
R=$RUN/share/results
PKG=github.com/mtcluster/mtc/test/lab/guest
rc= why=
[ -f "$R/rc" ] && rc=$(cat "$R/rc")
if [ -z "$rc" ]; then
	if [ "$QEMU_RC" = 124 ] || [ "$QEMU_RC" = 137 ]; then
		why="QEMU killed by the host timeout ($HOST_TIMEOUT s)"
	elif [ -f "$R/guard" ]; then
		why="the guest guard timer fired after ${GUARD}s (blocked tasks in the console log above)"
	else
		why="the guest ended without a test result (qemu exit $QEMU_RC)"
	fi
	echo "---- last 150 console lines ($RUN/console.log) ----"
	tail -150 "$RUN/console.log"
	rc=1
elif [ "$rc" != 0 ] && [ -f "$R/dmesg.txt" ]; then
	echo "---- guest kernel log, last 60 lines ($R/dmesg.txt) ----"
	tail -60 "$R/dmesg.txt"
fi
if [ -f "$R/go-test.log" ]; then
	echo "================ lab tests (go test -v, in the guest) ================"
	cat "$R/go-test.log"
	# The closing line go test prints for a package, from the guest's status.
	if [ "$rc" = 0 ]; then
		printf 'ok  \t%s\t%s\n' "$PKG" "$(cat "$R/elapsed" 2>/dev/null)"
	else
		printf 'FAIL\t%s\t%s\n' "$PKG" "$(cat "$R/elapsed" 2>/dev/null || echo "${why:-}")"
	fi
fi
# ---- the watchdog phase -----------------------------------------------------------
# Passed when the console shows softdog resetting the guest after the test's
# fault mark and the test never returned (no watchdog-rc). The times come
# from the kernel log's timestamps, so they are on the guest's clock.
wd_result=
watchdog_phase() {
	local c=$RUN/console.log ts_fault ts_feed ts_reset line
	# kts PATTERN: the kernel timestamp of the last kernel message matching
	# PATTERN. The console carries the tests' output too, so a message may
	# begin in the middle of a line another writer left unfinished.
	kts() { tr -d '\r' <"$c" | grep -a -o -- "\[ *[0-9][0-9.]*\] $1" | tail -1 | sed -n 's/^\[ *\([0-9.]*\)\].*/\1/p'; }
	ts_fault=$(kts 'mtc-lab: watchdog phase: hanging')
	ts_feed=$(kts 'mtc-lab: node3 fed the watchdog')
	ts_reset=$(kts 'softdog: Initiating system reboot')
	if [ -f "$R/watchdog.log" ]; then
		echo "================ watchdog phase (go test -v, in the guest, until the reset) ================"
		cat "$R/watchdog.log"
	fi
	if [ -f "$R/watchdog-rc" ]; then
		wd_result="FAIL: the guest was not reset by its watchdog (TestWatchdogResetsNode returned, status $(cat "$R/watchdog-rc"))"
	elif [ -z "$ts_fault" ]; then
		wd_result="FAIL: the watchdog phase never hung node3's quorum path (no fault mark on the console)"
	elif [ -z "$ts_reset" ]; then
		wd_result="FAIL: no 'softdog: Initiating system reboot' on the console after the fault (qemu exit $QEMU_RC)"
	elif ! awk -v f="$ts_fault" -v r="$ts_reset" 'BEGIN { exit !(r > f) }'; then
		wd_result="FAIL: softdog's reset at ${ts_reset}s is not after the fault at ${ts_fault}s"
	else
		line=$(awk -v f="$ts_fault" -v l="${ts_feed:-$ts_fault}" -v r="$ts_reset" 'BEGIN {
			printf "softdog reset the guest %.2f s after node3 last fed it and %.2f s after its quorum path hung", r - l, r - f }')
		wd_result="PASS: $line ($(tr -d '\r' <"$c" | grep -a -o 'watchdog_timeout [0-9a-z.]*' | tail -1); guest clock)"
	fi
	if [ "${wd_result%%:*}" = FAIL ]; then
		echo "---- console from the watchdog phase on ($c) ----"
		tr -d '\r' <"$c" | sed -n '/watchdog phase/,$p' | tail -80
	fi
}
[ "$WD" = 1 ] && watchdog_phase

# The benchmark sections the guest wrote, into LAB_BENCH_OUT (relative to
# the directory run.sh was started from).
if [ -n "${LAB_BENCH_OUT:-}" ]; then
	if [ -f "$R/BENCHMARKS.md" ]; then
		out=$LAB_BENCH_OUT
		case $out in /*) ;; *) out=$PWD/$out ;; esac
		(cd "$REPO" && $GO run ./test/lab/labctl copy-bench "$R/BENCHMARKS.md" "$out") | sed 's/^/lab: /' ||
			{ say "FAIL: copying the benchmark sections into $out"; rc=1; }
	else
		say "LAB_BENCH_OUT: the guest wrote no BENCHMARKS.md (nothing copied)"
	fi
fi

count() { grep -c -- "^--- $1" "$R/go-test.log" 2>/dev/null || true; }
passed=$(count PASS) failed=$(count FAIL) skipped=$(count SKIP)
say "kernel $KVER; times: ${TIMES[*]} total=$(ms_since "$T_START")ms"
[ -n "$why" ] && say "FAIL: $why"
say "$([ "$rc" = 0 ] && echo PASS || echo "FAIL (status $rc)"): ${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
if [ -n "$wd_result" ]; then
	say "watchdog phase: $wd_result"
	[ "${wd_result%%:*}" = PASS ] || { [ "$rc" = 0 ] && rc=1; }
fi
exit "$rc"

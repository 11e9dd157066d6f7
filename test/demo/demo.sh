#!/usr/bin/env bash
# A three-node MT-Cluster on one machine: each node is an `mtc daemon` in its
# own network namespace, joined by a bridge, sharing a loop-device quorum
# disk. The demo crashes a node, brings it back, then cuts one node off the
# network and shows that exactly the majority keeps quorum while the cut-off
# node stops and is reset by its watchdog.
#
# Needs root, iproute2, nftables and util-linux (losetup), and Go.
# Run: make demo. KEEP=1 make demo keeps the daemons' logs and the
# configuration in the work directory it prints.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PORT=5405
SUBNET=10.214.0
ID=demo$$
WORK=""
NS_BR=mtc-$ID-br
LOOP=""
PIDS=()
NETNS=()

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

# Prerequisites first: nothing is created until they are all there.
[ "$(id -u)" = 0 ] || die "needs root (network namespaces, loop devices, nftables); run: sudo make demo"
for t in ip nft losetup go; do
	command -v $t >/dev/null || die "needs '$t' (apt-get install iproute2 nftables util-linux; Go from go.dev)"
done

cleanup() {
	local rc=$?
	set +e
	trap '' INT TERM # a second Ctrl-C must not leave namespaces behind
	for p in "${PIDS[@]}"; do kill -KILL -- -"$p" 2>/dev/null; done
	for ns in "${NETNS[@]}"; do ip netns del "$ns" 2>/dev/null; done
	[ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
	if [ -n "$WORK" ]; then
		echo
		if [ "${KEEP:-0}" = 1 ]; then
			rm -f "$WORK/quorum.img" "$WORK/mtc" "$WORK/cluster.key" "$WORK"/*.sock
			echo "demo: cleaned up; logs and configuration kept in $WORK (KEEP=1)"
		else
			rm -rf "$WORK"
			echo "demo: cleaned up (logs were in $WORK, now removed; KEEP=1 keeps them)"
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
# Explicit traps: bash otherwise waits for a foreground child that
# handles SIGINT itself and may carry on, so a Ctrl-C could be ignored.
trap 'echo; echo "demo: interrupted" >&2; exit 130' INT
trap 'echo "demo: terminated" >&2; exit 143' TERM

WORK=$(mktemp -d /tmp/mtc-demo.XXXXXX)
BIN=$WORK/mtc
echo "demo: work directory $WORK"

say "building mtc"
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$BIN" ./cmd/mtc)

say "three nodes in network namespaces on a bridge: n1=$SUBNET.1 n2=$SUBNET.2 n3=$SUBNET.3"
NETNS+=("$NS_BR")
ip netns add "$NS_BR"
ip -n "$NS_BR" link set lo up
ip -n "$NS_BR" link add br0 type bridge
ip -n "$NS_BR" link set br0 up
for i in 1 2 3; do
	ns=mtc-$ID-n$i
	NETNS+=("$ns")
	ip netns add "$ns"
	ip -n "$ns" link add eth0 type veth peer name "v$$-$i" netns "$NS_BR"
	ip -n "$NS_BR" link set "v$$-$i" master br0 up
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add "$SUBNET.$i/24" dev eth0
	ip -n "$ns" link set eth0 up
done

say "the shared quorum disk: a loop device"
truncate -s 8M "$WORK/quorum.img"
LOOP=$(losetup --find --show "$WORK/quorum.img")
echo "$LOOP"
head -c 32 /dev/urandom >"$WORK/cluster.key"
chmod 600 "$WORK/cluster.key"
cat >"$WORK/cluster.toml" <<EOF
[cluster]
name = "demo"
uuid = "$(cat /proc/sys/kernel/random/uuid)"
key_file = "$WORK/cluster.key"

[watchdog]
# The demo's nodes share one kernel, so a node's watchdog kills its
# process group instead of resetting the machine.
mode = "process"

[quorum_disk]
path = "$LOOP"

[[network]]
name = "lan"
port = $PORT
EOF
for i in 1 2 3; do printf '\n[[node]]\nname = "n%d"\nid = %d\n[node.addresses]\nlan = "%s.%d"\n' $i $i $SUBNET $i >>"$WORK/cluster.toml"; done

say "mtc check"
"$BIN" check --config "$WORK/cluster.toml" || true
say "mtc disk init"
"$BIN" disk init --config "$WORK/cluster.toml"

start() {
	local i=$1
	setsid ip netns exec mtc-$ID-n$i "$BIN" daemon --config "$WORK/cluster.toml" --node n$i \
		--socket "$WORK/n$i.sock" --journal "$WORK/n$i.events.jsonl" >>"$WORK/n$i.log" 2>&1 &
	PIDS[$i]=$!
	disown "$!"
}
status_json() { "$BIN" status --socket "$WORK/n$1.sock" --json 2>/dev/null | tr -d ' \n'; }
# wait_for WHAT CMD...: poll until CMD succeeds (bounded, so a broken build
# ends the demo instead of hanging it).
wait_for() {
	local what=$1 t0 i
	shift
	t0=$(date +%s%N)
	for i in $(seq 1 600); do
		if "$@"; then
			printf '   %s after %d ms\n' "$what" $((($(date +%s%N) - t0) / 1000000))
			return 0
		fi
		sleep 0.05
	done
	KEEP=1
	die "$what: not reached within 30s; logs kept: $WORK/n*.log"
}
# The top-level fields only: decision records further on carry member lists too.
quorate_with() { local n=$1 m=$2; status_json "$n" | grep -q "\"quorate\":true,\"armed\":[a-z]*,\"stopped\":false,\"tie\":[a-z]*,\"members\":\[$m\]"; }
peer_dead() { status_json "$1" | grep -q "\"name\":\"$2\",\"id\":[0-9]*,\"state\":\"dead\""; }
exited() { ! kill -0 "${PIDS[$1]}" 2>/dev/null; }

say "starting three daemons"
for i in 1 2 3; do start $i; done
wait_for "n1, n2, n3 quorate together" bash -c "$(declare -f status_json quorate_with); BIN=$BIN WORK=$WORK; \
	quorate_with 1 '\"n1\",\"n2\",\"n3\"' && quorate_with 2 '\"n1\",\"n2\",\"n3\"' && quorate_with 3 '\"n1\",\"n2\",\"n3\"'"
"$BIN" status --socket "$WORK/n1.sock"

say "from n1, n3's own view over the control channel (TCP, authenticated with the cluster key)"
ip netns exec mtc-$ID-n1 "$BIN" status --config "$WORK/cluster.toml" --node n3 | sed -n 1,4p

say "the quorum disk as every node writes it"
"$BIN" disk dump --config "$WORK/cluster.toml"

say "act 1: n3 crashes (SIGKILL); n1 and n2 must agree it is dead and keep quorum"
kill -KILL -- -"${PIDS[3]}"
wait_for "n1 and n2 see n3 dead" bash -c "$(declare -f status_json peer_dead); BIN=$BIN WORK=$WORK; peer_dead 1 n3 && peer_dead 2 n3"
wait_for "n1 and n2 quorate without n3" bash -c "$(declare -f status_json quorate_with); BIN=$BIN WORK=$WORK; \
	quorate_with 1 '\"n1\",\"n2\"' && quorate_with 2 '\"n1\",\"n2\"'"
"$BIN" status --socket "$WORK/n2.sock"

say "n3 restarts with a new incarnation and rejoins"
start 3
wait_for "all three quorate again" bash -c "$(declare -f status_json quorate_with); BIN=$BIN WORK=$WORK; \
	quorate_with 1 '\"n1\",\"n2\",\"n3\"' && quorate_with 2 '\"n1\",\"n2\",\"n3\"' && quorate_with 3 '\"n1\",\"n2\",\"n3\"'"

say "act 2: nftables cuts n1 off the heartbeat network (a 1|2 split); n1 still sees the quorum disk"
cat >"$WORK/cut.nft" <<EOF
table inet mtccut {
	chain in { type filter hook input priority 0; policy accept; udp dport $PORT drop; }
	chain out { type filter hook output priority 0; policy accept; udp dport $PORT drop; }
}
EOF
ip netns exec mtc-$ID-n1 nft -f "$WORK/cut.nft"
wait_for "n2 and n3 keep quorum without n1" bash -c "$(declare -f status_json quorate_with); BIN=$BIN WORK=$WORK; \
	quorate_with 2 '\"n2\",\"n3\"' && quorate_with 3 '\"n2\",\"n3\"'"
wait_for "n1, alone, stopped its packages and was killed by its watchdog" exited 1
"$BIN" status --socket "$WORK/n2.sock"
echo
echo "n1's last words:"
grep -Ei "quorum|stop|watchdog" "$WORK/n1.log" | tail -n 6 || true

say "n2's event journal: the whole story as n2 saw it (mtc events)"
"$BIN" events --file "$WORK/n2.events.jsonl" --kind daemon-started,quorum-gained,quorum-lost,members,peer-restarted,fence,fenced,takeover,self-fence -n 20

say "done: a crash cost one failure timeout; a partition left exactly one side running"

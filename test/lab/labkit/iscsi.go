package labkit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// TargetIQN is the lab target's name (test/lab/image/san.sh).
const TargetIQN = "iqn.2026-01.org.mtcluster.lab:san"

// ISCSILogout ends node's iSCSI session: its paths to every LUN disappear.
//
//	iscsiadm -m node -T IQN -p 127.0.0.1 -I NODE --logout
func ISCSILogout(ctx context.Context, node string) error {
	_, err := Run(ctx, "iscsiadm", "-m", "node", "-T", TargetIQN, "-p", "127.0.0.1", "-I", node, "--logout")
	return err
}

// ISCSILogin starts node's iSCSI session again and waits until sysfs shows
// its path to every LUN; it returns the SAN found then.
//
//	iscsiadm -m node -T IQN -p 127.0.0.1 -I NODE --login
func ISCSILogin(ctx context.Context, sysfs, node string) (*SAN, error) {
	if _, err := Run(ctx, "iscsiadm", "-m", "node", "-T", TargetIQN, "-p", "127.0.0.1", "-I", node, "--login"); err != nil {
		return nil, err
	}
	return WaitPaths(ctx, sysfs, node, len(LUNs))
}

// WaitPaths polls sysfs until node has n paths (0: none left) or ctx ends.
func WaitPaths(ctx context.Context, sysfs, node string, n int) (*SAN, error) {
	for {
		san, err := Discover(sysfs)
		have := 0
		if err == nil {
			for _, p := range san.Paths {
				if p.Node == node {
					have++
				}
			}
			if have == n {
				return san, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: %d paths, want %d (%v): %w", node, have, n, err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ISCSINodeParam reads one setting of node's record for the lab target
// (e.g. node.conn[0].timeo.noop_out_interval): the value a login uses.
//
//	iscsiadm -m node -T IQN -p 127.0.0.1 -I NODE
func ISCSINodeParam(ctx context.Context, node, name string) (string, error) {
	out, err := Run(ctx, "iscsiadm", "-m", "node", "-T", TargetIQN, "-p", "127.0.0.1", "-I", node)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, " = ")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("iscsiadm: %s's record for %s has no %s", node, TargetIQN, name)
}

// ISCSISetNodeParam sets one setting of node's record for the lab target;
// it applies from node's next login.
//
//	iscsiadm -m node -T IQN -p 127.0.0.1 -I NODE -o update -n NAME -v VALUE
func ISCSISetNodeParam(ctx context.Context, node, name, value string) error {
	_, err := Run(ctx, "iscsiadm", "-m", "node", "-T", TargetIQN, "-p", "127.0.0.1", "-I", node, "-o", "update", "-n", name, "-v", value)
	return err
}

// ISCSIConnAttr reads an attribute of the connection of node's iSCSI
// session from sysfs, e.g. recv_tmo (the seconds without receiving
// anything after which the initiator sends a NOP-Out:
// node.conn[0].timeo.noop_out_interval) or ping_tmo (noop_out_timeout).
func ISCSIConnAttr(sysfs, node, attr string) (string, error) {
	s, err := iscsiSession(sysfs, node)
	if err != nil {
		return "", err
	}
	conn := "connection" + strings.TrimPrefix(filepath.Base(s), "session") + ":0"
	b, err := os.ReadFile(filepath.Join(sysfs, "class", "iscsi_connection", conn, attr))
	if err != nil {
		return "", fmt.Errorf("%s's iSCSI connection: %w", node, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// ISCSISilence makes node's current iSCSI connection silent toward the
// target, as when the node hangs or its network to the storage is cut:
// every packet from that connection's local port to the target is
// dropped on the loopback (tc ingress, u32). Packets from the target to
// node still arrive, and a new connection (node's initiator reconnecting
// after its own ping timeout) passes. The returned function removes the
// filter.
//
//	tc qdisc add dev lo ingress
//	tc filter add dev lo parent ffff: protocol ip u32 match ip sport PORT 0xffff match ip dport 3260 0xffff action drop
func ISCSISilence(ctx context.Context, sysfs, node string) (func(context.Context) error, error) {
	port, err := ISCSIConnAttr(sysfs, node, "local_port")
	if err != nil {
		return nil, fmt.Errorf("silence %s: %w", node, err)
	}
	undo := func(ctx context.Context) error {
		_, err := Run(ctx, "tc", "qdisc", "del", "dev", "lo", "ingress")
		return err
	}
	if _, err := Run(ctx, "tc", "qdisc", "add", "dev", "lo", "ingress"); err != nil {
		return nil, err
	}
	if _, err := Run(ctx, "tc", "filter", "add", "dev", "lo", "parent", "ffff:", "protocol", "ip",
		"u32", "match", "ip", "sport", port, "0xffff", "match", "ip", "dport", "3260", "0xffff", "action", "drop"); err != nil {
		_ = undo(ctx)
		return nil, err
	}
	return undo, nil
}

// ISCSIWaitLoggedIn polls until node's iSCSI session is LOGGED_IN again
// (after a connection failure and recovery) or ctx ends.
func ISCSIWaitLoggedIn(ctx context.Context, sysfs, node string) error {
	for {
		state, err := iscsiSessionAttr(sysfs, node, "state")
		if err == nil && state == "LOGGED_IN" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s's iSCSI session: state %q (%v): %w", node, state, err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// iscsiSessionAttr reads an attribute of node's iSCSI session.
func iscsiSessionAttr(sysfs, node, attr string) (string, error) {
	s, err := iscsiSession(sysfs, node)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(s, attr))
	return strings.TrimSpace(string(b)), err
}

// iscsiSession is the sysfs folder of node's iSCSI session.
func iscsiSession(sysfs, node string) (string, error) {
	sessions, err := filepath.Glob(filepath.Join(sysfs, "class", "iscsi_session", "session*"))
	if err != nil {
		return "", err
	}
	for _, s := range sessions {
		iname, err := os.ReadFile(filepath.Join(s, "initiatorname"))
		if err == nil && strings.HasSuffix(strings.TrimSpace(string(iname)), ":"+node) {
			return s, nil
		}
	}
	return "", fmt.Errorf("%s: no iSCSI session in %s: %w", node, sysfs, ErrNoPath)
}

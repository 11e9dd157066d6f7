package labkit

import (
	"context"
	"fmt"
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

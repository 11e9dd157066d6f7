package failbench

import (
	"context"
	"time"

	"github.com/mtcluster/mtc/daemon"
)

// Status asks the daemon listening on socket for its status (what `mtc
// status --json` prints), waiting at most timeout.
func Status(ctx context.Context, socket string, timeout time.Duration) (daemon.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return daemon.QueryStatus(ctx, socket)
}

// PackageView is package pkg as s shows it.
func PackageView(s daemon.Status, pkg string) (daemon.PackageView, bool) {
	for _, p := range s.Packages {
		if p.Name == pkg {
			return p, true
		}
	}
	return daemon.PackageView{}, false
}

// StableOwner asks the nodes for their status in turn and returns the node
// package pkg runs on when the cluster is ready for a crash: every node
// holds quorum with all of them and has not stopped, and sees pkg running
// on the same one node with nothing pending. It stops asking at the first
// node that does not answer so.
func StableOwner[N any](nodes []N, pkg string, status func(N) (daemon.Status, error)) (owner string, ok bool) {
	for _, n := range nodes {
		s, err := status(n)
		if err != nil || !s.Quorate || s.Stopped || len(s.Members) != len(nodes) {
			return "", false
		}
		v, ok := PackageView(s, pkg)
		if !ok || v.State != "running" || v.Owner == "" || v.Pending != "" || len(v.Nodes) != 1 {
			return "", false
		}
		if owner != "" && owner != v.Owner {
			return "", false
		}
		owner = v.Owner
	}
	return owner, owner != ""
}

// Settle is the wait of a benchmark for its cluster to settle
// (StableOwner) after its start or a crash. A daemon can end meanwhile (a
// restarted node that self-fences and is killed by its watchdog): Revive
// starts it again, and the benchmark reports the incident.
type Settle[N any] struct {
	Nodes   []N
	Package string
	Status  func(N) (daemon.Status, error)
	// Revive starts a node's daemon again when it has ended (or, where
	// nothing kills a node that stopped, must be reset) and returns what
	// happened, for the report; "" when the node needs nothing.
	Revive func(N) string
	// Log, when set, is told every incident as it happens.
	Log func(incident string)
	// Bound bounds the wait; Poll is the pause between two rounds of
	// Revive and StableOwner.
	Bound, Poll time.Duration
}

// Wait revives the nodes that need it and asks StableOwner, every Poll
// until Bound, and returns the package's node, the incidents in their
// order, and whether the cluster settled within Bound.
func (s Settle[N]) Wait() (owner string, incidents []string, ok bool) {
	for deadline := time.Now().Add(s.Bound); time.Now().Before(deadline); time.Sleep(s.Poll) {
		for _, n := range s.Nodes {
			if inc := s.Revive(n); inc != "" {
				incidents = append(incidents, inc)
				if s.Log != nil {
					s.Log(inc)
				}
			}
		}
		if owner, ok := StableOwner(s.Nodes, s.Package, s.Status); ok {
			return owner, incidents, true
		}
	}
	return "", incidents, false
}

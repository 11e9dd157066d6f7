package failbench

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mtcluster/mtc/daemon"
)

// settled is a status of a node of a settled three-node cluster whose
// package web runs on owner.
func settled(owner string) daemon.Status {
	return daemon.Status{Quorate: true, Members: []string{"n1", "n2", "n3"},
		Packages: []daemon.PackageView{{Name: "other", State: "halted"},
			{Name: "web", Owner: owner, State: "running", Nodes: []daemon.PackageNodeState{{Node: owner, State: "running"}}}}}
}

func TestStableOwner(t *testing.T) {
	nodes := []string{"n1", "n2", "n3"}
	for _, c := range []struct {
		name   string
		change func(node string, s *daemon.Status) error
		want   string
		asks   int // nodes asked, 0: not checked
	}{
		{"settled", func(string, *daemon.Status) error { return nil }, "n2", 3},
		{"a node does not answer", func(n string, _ *daemon.Status) error {
			if n == "n3" {
				return errors.New("no socket")
			}
			return nil
		}, "", 3},
		{"a node without quorum", func(n string, s *daemon.Status) error { s.Quorate = n != "n1"; return nil }, "", 1},
		{"a node stopped", func(n string, s *daemon.Status) error { s.Stopped = n == "n2"; return nil }, "", 0},
		{"a member missing", func(n string, s *daemon.Status) error { s.Members = s.Members[:2]; return nil }, "", 0},
		{"the nodes disagree on the owner", func(n string, s *daemon.Status) error {
			if n == "n3" {
				*s = settled("n3")
			}
			return nil
		}, "", 0},
		{"a move pending", func(n string, s *daemon.Status) error { s.Packages[1].Pending = "move to n1"; return nil }, "", 0},
		{"still starting", func(n string, s *daemon.Status) error { s.Packages[1].State = "starting"; return nil }, "", 0},
		{"not halted on two nodes", func(n string, s *daemon.Status) error {
			s.Packages[1].Nodes = append(s.Packages[1].Nodes, daemon.PackageNodeState{Node: "n1", State: "halting"})
			return nil
		}, "", 0},
		{"no such package", func(n string, s *daemon.Status) error { s.Packages = s.Packages[:1]; return nil }, "", 0},
	} {
		var asked []string
		owner, ok := StableOwner(nodes, "web", func(n string) (daemon.Status, error) {
			asked = append(asked, n)
			s := settled("n2")
			err := c.change(n, &s)
			return s, err
		})
		if owner != c.want || ok != (c.want != "") {
			t.Errorf("%s: StableOwner = %q, %v; want %q", c.name, owner, ok, c.want)
		}
		if c.asks != 0 && len(asked) != c.asks {
			t.Errorf("%s: asked %v, want the first %d", c.name, asked, c.asks)
		}
	}
	if _, ok := StableOwner([]string{}, "web", func(string) (daemon.Status, error) { return settled("n1"), nil }); ok {
		t.Error("a cluster of no node is stable")
	}
}

func TestSettleRevivesThenFindsOwner(t *testing.T) {
	// n3's daemon has ended; once revived, the cluster settles on n1
	// after two more rounds.
	ended, rounds := map[string]bool{"n3": true}, 0
	var logged []string
	s := Settle[string]{
		Nodes: []string{"n1", "n2", "n3"}, Package: "web", Bound: 5 * time.Second, Poll: time.Millisecond,
		Status: func(n string) (daemon.Status, error) {
			if n == "n1" {
				rounds++
			}
			if ended[n] || rounds < 3 {
				return daemon.Status{}, fmt.Errorf("%s not there", n)
			}
			return settled("n1"), nil
		},
		Revive: func(n string) string {
			if !ended[n] {
				return ""
			}
			ended[n] = false
			return n + " ended and was restarted"
		},
		Log: func(inc string) { logged = append(logged, inc) },
	}
	owner, incidents, ok := s.Wait()
	if !ok || owner != "n1" {
		t.Fatalf("Wait = %q, %v", owner, ok)
	}
	want := []string{"n3 ended and was restarted"}
	if !slices.Equal(incidents, want) || !slices.Equal(logged, want) {
		t.Fatalf("incidents %q, logged %q; want %q", incidents, logged, want)
	}

	s.Status = func(string) (daemon.Status, error) { return daemon.Status{}, errors.New("down") }
	s.Bound = 20 * time.Millisecond
	if owner, _, ok := s.Wait(); ok || owner != "" {
		t.Fatalf("Wait on a cluster that never settles = %q, %v", owner, ok)
	}
}

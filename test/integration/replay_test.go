package integration

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mtcluster/mtc/quorum"
)

// replayCapture is how long n2's heartbeats to n1 are recorded.
const replayCapture = 15 * time.Second

// A recording of a dead node's heartbeats, replayed at its original pace
// with its source address to a node that started after it died, must not
// make that node believe the dead one is alive: every packet of the
// recording is authentic and its sequence numbers rise, so only the quorum
// core's proof of freshness can refuse it (a peer is alive on the network
// only once its heartbeats echo our current incarnation and a recent
// counter of ours, which no recording made before our start contains).
func TestNetnsReplayedHeartbeatsOfADeadNode(t *testing.T) {
	c := NewCluster(t, 3, defaultProfile)
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	c.WaitAllQuorate(n1, n2, n3)

	// The status must show a live n2 as alive, or the check below could
	// not fail.
	if s, err := n1.Status(); err != nil {
		t.Fatal(err)
	} else if p, ok := peer(s, "n2"); !ok || !p.NetAlive {
		t.Fatalf("n1 does not show a live n2 alive on the network: %+v", p)
	}

	// Record n2's heartbeats as n1 receives them.
	n1Port := netip.AddrPortFrom(netip.MustParseAddr(n1.Addr), hbPort)
	n2Port := netip.AddrPortFrom(netip.MustParseAddr(n2.Addr), hbPort)
	rec, err := captureUDP(n1.NS, n2Port.Addr(), hbPort, replayCapture)
	if err != nil {
		t.Fatal(err)
	}
	hb := defaultProfile.Timing.HeartbeatInterval
	if min := int(replayCapture / hb / 2); len(rec) < min {
		t.Fatalf("captured %d heartbeats of n2 in %v, want at least %d", len(rec), replayCapture, min)
	}
	t.Logf("captured %d heartbeats of n2 over %v", len(rec), rec[len(rec)-1].at-rec[0].at)

	// n2 dies; n1 restarts, so nothing of n2's recorded incarnation is
	// known to it.
	n2.Kill()
	n1.Stop()
	n1.Start()
	c.WaitFor("n1 answers its status after the restart", func() bool { _, err := n1.Status(); return err == nil })
	restarted, _ := n1.Status()

	// Replay the recording from n2's address while watching n1.
	done := make(chan error, 1)
	var sent int
	replayStart := time.Now()
	go func() {
		var err error
		sent, err = replayUDP(n2.NS, n2Port, n1Port, rec)
		done <- err
	}()
	// What n1 believed of n2, by symptom: how many samples showed it and
	// the first of them.
	type symptom struct {
		n     int
		first string
	}
	believed := map[string]*symptom{}
	note := func(kind, what string) {
		if believed[kind] == nil {
			believed[kind] = &symptom{first: what}
		}
		believed[kind].n++
	}
	samples := 0
	watch := func() {
		s, err := n1.Status()
		if err != nil {
			return
		}
		samples++
		at := time.Since(replayStart).Round(time.Millisecond)
		if p, ok := peer(s, "n2"); ok {
			if p.NetAlive {
				note("net_alive", fmt.Sprintf("%v into the replay (heard %v ago)", at, p.SinceHeard.Round(time.Millisecond)))
			}
			if p.State == quorum.PeerAlive.String() {
				note("state alive", fmt.Sprintf("%v into the replay", at))
			}
		}
		if slices.Contains(s.Members, "n2") {
			note("member", fmt.Sprintf("%v into the replay (members %v, quorate %v)", at, s.Members, s.Quorate))
		}
	}
	for replaying := true; replaying; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			replaying = false
		default:
			watch()
			time.Sleep(pollInterval)
		}
	}
	watch()

	// The replay must have reached n1's receiver, or nothing was tested.
	s, err := n1.Status()
	if err != nil {
		t.Fatal(err)
	}
	var reached uint64 = s.Network.Receive.Accepted["n2"]
	for _, n := range s.Network.Receive.Dropped["n2"] {
		reached += n
	}
	for _, n := range restarted.Network.Receive.Dropped["n2"] {
		reached -= n
	}
	reached -= restarted.Network.Receive.Accepted["n2"]
	if reached == 0 {
		t.Fatalf("none of the %d replayed datagrams reached n1's heartbeat receiver", sent)
	}
	for _, d := range s.Decisions {
		if d.At > restarted.Uptime && d.Kind == "members" && slices.Contains(d.Members, "n2") {
			note("membership decision", fmt.Sprintf("%q", d.Text))
		}
	}
	if len(believed) > 0 {
		var what []string
		for _, k := range []string{"net_alive", "state alive", "member", "membership decision"} {
			if sy := believed[k]; sy != nil {
				what = append(what, fmt.Sprintf("%s in %d of %d samples, first %s", k, sy.n, samples, sy.first))
			}
		}
		t.Fatalf("n1, restarted after n2 died, believed a replay of n2's recorded heartbeats (%d sent, %d reached its receiver, %d accepted there):\n  %s\n"+
			"Every replayed packet is authentic and newer than anything this n1 has seen, so the network layer accepts it; "+
			"the quorum core must count a peer alive on the network only once its heartbeats echo our current incarnation and a recent counter of ours, "+
			"and the status must show that judgement.",
			sent, reached, s.Network.Receive.Accepted["n2"]-restarted.Network.Receive.Accepted["n2"], strings.Join(what, "\n  "))
	}
	t.Logf("replayed %d datagrams, %d reached n1, none believed", sent, reached)
}

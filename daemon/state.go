package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/hbwire"
	"github.com/mtcluster/mtc/nethb"
	"github.com/mtcluster/mtc/placement"
	"github.com/mtcluster/mtc/quorum"
)

// The cluster state area's payload (diskhb.Disk.WriteState, written by
// the coordinator only): the operator state (placement.Durable) and the
// newest committed intents, as compact JSON:
//
//	{"v":1,
//	 "pkgs":[{"n":"orders-db","f":2,"p":{"i":17,"k":3,"n":2},"m":8}, ...],
//	 "drained":4, "last":17,
//	 "intents":[{"i":17,"k":3,"p":"orders-db","n":2}, ...]}
//
// f holds the package's flags (1 down, 2 switching, 4 maintenance), p its
// pending one-shot intent (of the package itself), m the nodes it is
// marked failed on (marks of a package not in the list go to "marks");
// drained is the bit set of drained node ids (bit
// i = node i); k is a placement.IntentKind. A package costs 20 bytes plus
// its name, 45 more while a move of it is pending; a copy of the state
// area holds 55,808 bytes with 512-byte sectors (64,320 with 4096). The
// daemon refuses to start with packages whose largest state — every
// package with a pending move and a failure mark, and 64 intents — would
// not fit (checkStateFits): 300 packages with 63-character names do. JSON
// because it is written rarely and read by people too.

// stateVersion is the version of the payload.
const stateVersion = 1

// statePayload is the decoded payload.
type statePayload struct {
	Durable placement.Durable
	Intents []placement.Intent
}

type stateWire struct {
	V       int          `json:"v"`
	Pkgs    []statePkg   `json:"pkgs"`
	Drained uint32       `json:"drained,omitempty"`
	Marks   []stateMark  `json:"marks,omitempty"`
	Last    uint64       `json:"last"`
	Intents []stateEntry `json:"intents,omitempty"`
}

type statePkg struct {
	N string      `json:"n"`
	F uint8       `json:"f,omitempty"`
	P *stateEntry `json:"p,omitempty"`
	// M: the nodes the package is marked failed on (bit i = node i).
	M uint32 `json:"m,omitempty"`
}

type stateEntry struct {
	I uint64 `json:"i"`
	K uint8  `json:"k"`
	P string `json:"p,omitempty"`
	N uint8  `json:"n,omitempty"`
}

type stateMark struct {
	P string `json:"p"`
	N uint8  `json:"n"`
}

const (
	flagDown        = 1
	flagSwitching   = 2
	flagMaintenance = 4
)

func entryOf(in placement.Intent) stateEntry {
	return stateEntry{I: in.ID, K: uint8(in.Kind), P: in.Package, N: uint8(in.Node)}
}

func (e stateEntry) intent() (placement.Intent, error) {
	if e.K < uint8(placement.IntentRun) || e.K > uint8(placement.IntentClear) || e.N > quorum.MaxNodes {
		return placement.Intent{}, fmt.Errorf("intent %d: kind %d, node %d out of range", e.I, e.K, e.N)
	}
	return placement.Intent{ID: e.I, Kind: placement.IntentKind(e.K), Package: e.P, Node: quorum.NodeID(e.N)}, nil
}

func encodeState(p statePayload) ([]byte, error) {
	w := stateWire{V: stateVersion, Drained: uint32(p.Durable.Drained), Last: p.Durable.LastIntent, Pkgs: []statePkg{}}
	for _, pk := range p.Durable.Packages {
		sp := statePkg{N: pk.Name}
		if pk.Down {
			sp.F |= flagDown
		}
		if pk.Switching {
			sp.F |= flagSwitching
		}
		if pk.Maintenance {
			sp.F |= flagMaintenance
		}
		if pk.Pending.ID != 0 {
			e := entryOf(pk.Pending)
			e.P = "" // the package's own
			sp.P = &e
		}
		w.Pkgs = append(w.Pkgs, sp)
	}
	at := make(map[string]int, len(w.Pkgs))
	for i, sp := range w.Pkgs {
		at[sp.N] = i
	}
	for _, m := range p.Durable.Marks {
		if i, ok := at[m.Package]; ok && m.Node <= quorum.MaxNodes {
			w.Pkgs[i].M |= 1 << m.Node
			continue
		}
		w.Marks = append(w.Marks, stateMark{P: m.Package, N: uint8(m.Node)})
	}
	for _, in := range p.Intents {
		w.Intents = append(w.Intents, entryOf(in))
	}
	return json.Marshal(w)
}

func decodeState(b []byte) (statePayload, error) {
	var p statePayload
	if len(b) == 0 {
		// The empty state `mtc disk init` writes.
		return p, errBlankState
	}
	var w stateWire
	if err := json.Unmarshal(b, &w); err != nil {
		return p, fmt.Errorf("cluster state payload: %w", err)
	}
	if w.V != stateVersion {
		return p, fmt.Errorf("cluster state payload version %d, this release reads %d: every node must run the same MT-Cluster release", w.V, stateVersion)
	}
	var errs []error
	p.Durable = placement.Durable{Drained: quorum.Set(w.Drained), LastIntent: w.Last}
	for _, sp := range w.Pkgs {
		pk := placement.PackageIntent{Name: sp.N, Down: sp.F&flagDown != 0, Switching: sp.F&flagSwitching != 0, Maintenance: sp.F&flagMaintenance != 0}
		if sp.P != nil {
			in, err := sp.P.intent()
			if err != nil {
				errs = append(errs, fmt.Errorf("package %s: pending %w", sp.N, err))
			}
			in.Package = sp.N
			pk.Pending = in
		}
		p.Durable.Packages = append(p.Durable.Packages, pk)
		if sp.M&1 != 0 || sp.M>>(quorum.MaxNodes+1) != 0 {
			errs = append(errs, fmt.Errorf("package %s: failure marks %#x name nodes out of range", sp.N, sp.M))
		}
		for _, id := range quorum.Set(sp.M).IDs() {
			p.Durable.Marks = append(p.Durable.Marks, placement.Mark{Package: sp.N, Node: id})
		}
	}
	for _, m := range w.Marks {
		if m.N == 0 || m.N > quorum.MaxNodes {
			errs = append(errs, fmt.Errorf("failure mark of %s on node %d out of range", m.P, m.N))
			continue
		}
		p.Durable.Marks = append(p.Durable.Marks, placement.Mark{Package: m.P, Node: quorum.NodeID(m.N)})
	}
	for _, e := range w.Intents {
		in, err := e.intent()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if n := len(p.Intents); n > 0 && p.Intents[n-1].ID >= in.ID {
			errs = append(errs, fmt.Errorf("intent %d after intent %d: out of order", in.ID, p.Intents[n-1].ID))
			continue
		}
		p.Intents = append(p.Intents, in)
	}
	if len(errs) > 0 {
		return statePayload{}, fmt.Errorf("cluster state payload: %w", errors.Join(errs...))
	}
	return p, nil
}

// worstState is the largest payload the packages can need: every package
// with a pending move and one failure mark, and maxKeptIntents intents
// naming the longest name.
func worstState(names []string) statePayload {
	var p statePayload
	longest := ""
	for _, n := range names {
		pending := placement.Intent{ID: 1 << 50, Kind: placement.IntentMove, Package: n, Node: quorum.MaxNodes}
		p.Durable.Packages = append(p.Durable.Packages, placement.PackageIntent{Name: n, Down: true, Switching: true, Maintenance: true, Pending: pending})
		p.Durable.Marks = append(p.Durable.Marks, placement.Mark{Package: n, Node: quorum.MaxNodes})
		if len(n) > len(longest) {
			longest = n
		}
	}
	p.Durable.Drained = quorum.Set(1<<(quorum.MaxNodes+1) - 2)
	p.Durable.LastIntent = 1 << 50
	for i := range maxKeptIntents {
		p.Intents = append(p.Intents, placement.Intent{ID: 1<<50 + uint64(i), Kind: placement.IntentMove, Package: longest, Node: quorum.MaxNodes})
	}
	return p
}

// checkStateFits refuses packages whose largest operator state would not
// fit a copy of the state area of size limit.
func checkStateFits(names []string, limit int) error {
	b, err := encodeState(worstState(names))
	if err != nil {
		return err
	}
	if len(b) > limit {
		return fmt.Errorf("%d packages: their operator state may need %d bytes on the quorum disk, and its cluster state area holds %d: use fewer packages or shorter names", len(names), len(b), limit)
	}
	return nil
}

// CheckPackagesFit says whether packages by these names fit what the
// cluster carries about them: the placement envelope (at most
// hbwire.MaxPackages) and the operator state in a quorum disk's cluster
// state area (checked against the smaller area, of 512-byte sectors; the
// daemon checks again against its disk). `mtc check` runs it.
func CheckPackagesFit(names []string) error {
	if _, err := hbwire.NewPackageIndex(names); err != nil {
		return err
	}
	l := diskhb.Header{SectorSize: 512, Slots: diskhb.MaxSlots, StateAreas: true}.Layout()
	return checkStateFits(names, l.MaxStatePayload())
}

// HeartbeatSize is the size of a heartbeat datagram of a 16-node cluster
// whose node runs every one of these packages (the largest report
// without failures), for `mtc check`'s warning about IP fragments.
func HeartbeatSize(names []string) (int, error) {
	idx, err := hbwire.NewPackageIndex(names)
	if err != nil {
		return 0, err
	}
	r := placement.Report{Node: 1, Inc: 1, Seq: 1, Epoch: 1, Members: quorum.Set(1<<(quorum.MaxNodes+1) - 2)}
	for _, n := range idx.Names() {
		r.Packages = append(r.Packages, placement.PackageReport{Name: n, State: placement.Running})
	}
	for id := quorum.NodeID(2); id <= quorum.MaxNodes; id++ {
		r.Acks = append(r.Acks, placement.Ack{Node: id, Inc: 1, Seq: 1})
	}
	env, err := hbwire.AppendEnvelope(nil, &hbwire.Envelope{Report: r, LastIntent: 1}, idx)
	if err != nil {
		return 0, err
	}
	return nethb.HeaderLen + hbwire.MaxNetPayload + 2 + len(env) + nethb.MACLen, nil
}

// DescribeState renders a cluster state payload for `mtc disk dump`: the
// last intent, the drained nodes, each package's operator flags and
// failure marks, and the newest intents. names maps node ids to names.
func DescribeState(payload []byte, names func(quorum.NodeID) string) (string, error) {
	p, err := decodeState(payload)
	if errors.Is(err, errBlankState) {
		return "no operator state yet", nil
	}
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "last intent %d", p.Durable.LastIntent)
	if ids := p.Durable.Drained.IDs(); len(ids) > 0 {
		var ns []string
		for _, id := range ids {
			ns = append(ns, names(id))
		}
		fmt.Fprintf(&b, "; drained %s", strings.Join(ns, ", "))
	}
	marks := map[string][]string{}
	for _, m := range p.Durable.Marks {
		marks[m.Package] = append(marks[m.Package], names(m.Node))
	}
	for _, pk := range p.Durable.Packages {
		var fl []string
		if pk.Down {
			fl = append(fl, "halted")
		}
		if !pk.Switching {
			fl = append(fl, "switching off")
		}
		if pk.Maintenance {
			fl = append(fl, "maintenance")
		}
		if pk.Pending.ID != 0 {
			fl = append(fl, fmt.Sprintf("pending %s to %s (intent %d)", pk.Pending.Kind, names(pk.Pending.Node), pk.Pending.ID))
		}
		if m := marks[pk.Name]; len(m) > 0 {
			fl = append(fl, "failed on "+strings.Join(m, ", "))
		}
		if len(fl) > 0 {
			fmt.Fprintf(&b, "; %s: %s", pk.Name, strings.Join(fl, ", "))
		}
	}
	if n := len(p.Intents); n > 0 {
		fmt.Fprintf(&b, "; intents %d-%d kept", p.Intents[0].ID, p.Intents[n-1].ID)
	}
	return b.String(), nil
}

// DescribeReport renders a node's report area payload (its envelope) for
// `mtc disk dump`, with the index of this node's package files
// (PackageIndex).
func DescribeReport(payload []byte, idx *hbwire.PackageIndex) (string, error) {
	e, err := hbwire.DecodeEnvelope(payload, idx)
	if err != nil {
		return "", err
	}
	var up []string
	for _, p := range e.Report.Packages {
		s := p.Name + " " + p.State.String()
		if p.Reason != "" {
			s += " (" + p.Reason + ")"
		}
		up = append(up, s)
	}
	out := "nothing up"
	if len(up) > 0 {
		out = strings.Join(up, ", ")
	}
	if len(e.Report.Marked) > 0 {
		out += "; failed here: " + strings.Join(e.Report.Marked, ", ")
	}
	return fmt.Sprintf("%s (report %d, last intent %d)", out, e.Report.Seq, e.LastIntent), nil
}

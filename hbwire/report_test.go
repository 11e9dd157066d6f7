package hbwire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"

	"github.com/mtcluster/mtc/placement"
	"github.com/mtcluster/mtc/quorum"
)

func mustIndex(t testing.TB, names ...string) *PackageIndex {
	t.Helper()
	x, err := NewPackageIndex(names)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func packageNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("pkg%04d", i)
	}
	return names
}

var reasonSamples = []string{
	"", "exit status 1", strings.Repeat("é", 100), strings.Repeat("x", 119) + "€", "bad \xff\xfe bytes",
	strings.Repeat("service db failed past its restart limit; ", 8),
}

// randomEnvelope draws an envelope of any shape the daemon can publish:
// any subset of the packages in any order and state, reasons of any length
// (multi-byte runes, invalid UTF-8), acks of any other nodes in any order,
// takeovers and intents up to their bounds.
func randomEnvelope(rng *rand.Rand, x *PackageIndex) Envelope {
	self := quorum.NodeID(1 + rng.Intn(quorum.MaxNodes))
	e := Envelope{
		Report: placement.Report{
			Node: self, Inc: quorum.Incarnation(rng.Uint64() | 1), Seq: rng.Uint64(), Epoch: rng.Uint64(),
			Members: quorum.Set(rng.Uint32()) & validNodes, LeftoversStopped: rng.Intn(2) == 0,
		},
		LastIntent: rng.Uint64(),
	}
	r := &e.Report
	names := x.Names()
	for _, i := range rng.Perm(len(names))[:rng.Intn(len(names)+1)] {
		p := placement.PackageReport{Name: names[i], State: placement.State(rng.Intn(int(placement.HaltFailed) + 1))}
		if rng.Intn(3) > 0 {
			p.Reason = reasonSamples[rng.Intn(len(reasonSamples))]
		}
		r.Packages = append(r.Packages, p)
	}
	for _, i := range rng.Perm(len(names))[:rng.Intn(len(names)+1)] {
		r.Marked = append(r.Marked, names[i])
	}
	for _, i := range rng.Perm(quorum.MaxNodes) {
		if id := quorum.NodeID(i + 1); id != self && rng.Intn(2) == 0 {
			r.Acks = append(r.Acks, placement.Ack{Node: id, Inc: quorum.Incarnation(rng.Uint64()), Seq: rng.Uint64()})
		}
	}
	for range rng.Intn(MaxTakeovers + 1) {
		r.Takeovers = append(r.Takeovers, placement.Takeover{
			Target: quorum.Target{Node: quorum.NodeID(1 + rng.Intn(quorum.MaxNodes)), Inc: quorum.Incarnation(rng.Uint64() >> rng.Intn(65))},
			Reason: quorum.TakeoverReason(1 + rng.Intn(2)),
		})
	}
	id := rng.Uint64() >> 8
	for range rng.Intn(MaxRelayedIntents + 1) {
		id += 1 + uint64(rng.Intn(3))
		it := placement.Intent{ID: id, Kind: placement.IntentKind(1 + rng.Intn(int(placement.IntentClear))), Node: quorum.NodeID(rng.Intn(quorum.MaxNodes + 1))}
		if len(names) > 0 && rng.Intn(4) > 0 {
			it.Package = names[rng.Intn(len(names))]
		}
		e.Intents = append(e.Intents, it)
	}
	done := uint64(rng.Intn(1000))
	for range rng.Intn(placement.MaxCompleted + 1) {
		done += 1 + uint64(rng.Intn(5))
		r.Completed = append(r.Completed, done)
	}
	return e
}

// refCut is the documented reason rule, written apart from the encoder:
// valid UTF-8, whole runes, at most limit bytes.
func refCut(s string, limit int) string {
	out := ""
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if len(out)+len(string(r)) > limit {
			break
		}
		out += string(r)
	}
	return out
}

// wantDecoded is what e decodes as: reasons only for Failed and HaltFailed,
// cut to MaxReason each and MaxReasonTotal together, in package order.
func wantDecoded(e Envelope) Envelope {
	w := e
	w.Report.Packages = nil
	total := 0
	for _, p := range e.Report.Packages {
		if p.State == placement.Failed || p.State == placement.HaltFailed {
			p.Reason = refCut(p.Reason, min(MaxReason, MaxReasonTotal-total))
			total += len(p.Reason)
		} else {
			p.Reason = ""
		}
		w.Report.Packages = append(w.Report.Packages, p)
	}
	return w
}

// Envelopes of every shape decode to what was encoded (reasons cut as
// documented), in the order given, within MaxEnvelope, and re-encode to the
// same bytes; they ride the network payload unchanged.
func TestEnvelopeRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	indexes := []*PackageIndex{mustIndex(t), mustIndex(t, "db"), mustIndex(t, packageNames(40)...), mustIndex(t, packageNames(300)...)}
	for i := 0; i < 3000; i++ {
		x := indexes[i%len(indexes)]
		e := randomEnvelope(rng, x)
		b, err := AppendEnvelope(nil, &e, x)
		if err != nil {
			t.Fatalf("encode %+v: %v", e, err)
		}
		if len(b) > MaxEnvelope {
			t.Fatalf("envelope of %d bytes, above %d", len(b), MaxEnvelope)
		}
		got, err := DecodeEnvelope(b, x)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if want := wantDecoded(e); !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip\n got %+v\nwant %+v", got, want)
		}
		if again, err := AppendEnvelope(nil, &got, x); err != nil || !bytes.Equal(again, b) {
			t.Fatalf("decoded envelope re-encodes differently (%v)\n% x\n% x", err, again, b)
		}
		hb := randomHeartbeat(rng, i)
		p := AppendNetWith(nil, &hb, b)
		if len(p) > MaxNetWithPayload {
			t.Fatalf("network payload of %d bytes, above %d", len(p), MaxNetWithPayload)
		}
		hb2, env, err := DecodeNetWith(uint32(hb.From), uint64(hb.Inc), uint64(hb.View), p)
		if err != nil || hb2 != hb || !bytes.Equal(env, b) {
			t.Fatalf("network round trip: %v, heartbeat equal %v, envelope equal %v", err, hb2 == hb, bytes.Equal(env, b))
		}
	}
}

// layoutEnvelope is a small envelope whose bytes TestEnvelopeLayout spells
// out; TestEnvelopeRefused edits it at the offsets shown there.
func layoutEnvelope() (Envelope, *PackageIndex) {
	x, _ := NewPackageIndex([]string{"web", "db"}) // db 0, web 1
	return Envelope{
		Report: placement.Report{
			Node: 2, Inc: 5, Seq: 6, Epoch: 7, Members: quorum.SetOf(1, 2), LeftoversStopped: true,
			Packages: []placement.PackageReport{{Name: "web", State: placement.Running}, {Name: "db", State: placement.Failed, Reason: "x"}},
			Marked:   []string{"db"},
			Acks:     []placement.Ack{{Node: 1, Inc: 3, Seq: 4}},
			Takeovers: []placement.Takeover{
				{Target: quorum.Target{Node: 3, Inc: 9}, Reason: quorum.TakeoverFenced},
			},
			Completed: []uint64{6, 10},
		},
		LastIntent: 8,
		Intents:    []placement.Intent{{ID: 10, Kind: placement.IntentMove, Package: "web", Node: 1}},
	}, x
}

// The envelope is the documented layout, byte for byte.
func TestEnvelopeLayout(t *testing.T) {
	e, x := layoutEnvelope()
	b, err := AppendEnvelope(nil, &e, x)
	if err != nil {
		t.Fatal(err)
	}
	u16 := func(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
	u64 := func(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
	fp := []byte{0, 2, 'd', 'b', 0, 3, 'w', 'e', 'b'}
	want := bytes.Join([][]byte{
		{EnvelopeVersion}, u64(fnv64a(fp)), // 0, 1
		{1, 2}, u64(5), u64(6), u64(7), {0, 0, 0, 0b110}, u64(8), // 9: flags, node, inc, seq, epoch, members, last intent
		u16(2), u16(1), {byte(placement.Running)}, u16(0), {byte(placement.Failed), 1, 'x'}, // 47: packages
		u16(1), u16(0), // 57: marked
		{1, 1}, u64(3), u64(4), // 61: acks
		{1, 3}, u64(9), {byte(quorum.TakeoverFenced)}, // 79: takeovers
		{1}, u64(10), {byte(placement.IntentMove)}, u16(1), {1}, // 90: intents
		{2}, u64(6), u64(10), // 103: completed
	}, nil)
	if !bytes.Equal(b, want) {
		t.Fatalf("envelope\n got % x\nwant % x", b, want)
	}
	e.Intents[0].Package = ""
	b, _ = AppendEnvelope(nil, &e, x)
	if got := binary.BigEndian.Uint16(b[100:102]); got != 0xFFFF {
		t.Fatalf("intent without a package: index %#x, want 0xffff", got)
	}
}

// fnv64a is FNV-1a 64, written out from its definition.
func fnv64a(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// Every bound the encoder keeps, the decoder checks: whatever the encoder
// cannot write is refused with the error that says why, and every
// truncation of a valid envelope is refused.
func TestEnvelopeRefused(t *testing.T) {
	e, x := layoutEnvelope()
	good, _ := AppendEnvelope(nil, &e, x)
	mod := func(f func([]byte) []byte) []byte { return f(bytes.Clone(good)) }
	set := func(off int, v ...byte) []byte {
		return mod(func(p []byte) []byte { copy(p[off:], v); return p })
	}
	// insert puts v at off and adds one to the count byte at count.
	insert := func(off, count int, v ...byte) []byte {
		return mod(func(p []byte) []byte {
			p[count]++
			return append(p[:off], append(v, p[off:]...)...)
		})
	}
	cases := []struct {
		name    string
		b       []byte
		x       *PackageIndex
		wantErr error
	}{
		{"empty", nil, x, ErrPayload},
		{"other version", set(0, EnvelopeVersion+1), x, ErrVersion},
		{"other package set", good, mustIndex(t, "db", "web", "log"), ErrPackages},
		{"unknown flags", set(9, 3), x, ErrPayload},
		{"reporter 0", set(10, 0), x, ErrPayload},
		{"reporter 17", set(10, 17), x, ErrPayload},
		{"incarnation 0", set(11, 0, 0, 0, 0, 0, 0, 0, 0), x, ErrPayload},
		{"members bit 0", set(38, 0b111), x, ErrPayload},
		{"members above 16", set(35, 0, 2), x, ErrPayload},
		{"more packages than defined", set(47, 0, 3), x, ErrPayload},
		{"package index beyond", set(49, 0, 2), x, ErrPayload},
		{"package twice", set(49, 0, 0), x, ErrPayload},
		{"unknown state", set(51, byte(placement.HaltFailed)+1), x, ErrPayload},
		{"reason beyond the end", set(55, 200), x, ErrPayload},
		{"reason not UTF-8", set(56, 0xff), x, ErrPayload},
		{"mark index beyond", set(59, 0, 2), x, ErrPayload},
		{"marked twice", insert(61, 58, 0, 0), x, ErrPayload},
		{"ack count 16", set(61, 16), x, ErrPayload},
		{"ack of node 0", set(62, 0), x, ErrPayload},
		{"ack of node 17", set(62, 17), x, ErrPayload},
		{"ack of itself", set(62, 2), x, ErrPayload},
		{"ack twice", insert(79, 61, good[62:79]...), x, ErrPayload},
		{"takeover count 33", set(79, MaxTakeovers+1), x, ErrPayload},
		{"takeover of node 0", set(80, 0), x, ErrPayload},
		{"takeover of node 17", set(80, 17), x, ErrPayload},
		{"takeover reason 0", set(89, 0), x, ErrPayload},
		{"takeover reason 3", set(89, 3), x, ErrPayload},
		{"intent count 17", set(90, MaxRelayedIntents+1), x, ErrPayload},
		{"intent kind 0", set(99, 0), x, ErrPayload},
		{"intent kind beyond", set(99, byte(placement.IntentClear)+1), x, ErrPayload},
		{"intent package beyond", set(100, 0, 2), x, ErrPayload},
		{"intent node 17", set(102, 17), x, ErrPayload},
		{"intents not ascending", insert(103, 90, good[91:103]...), x, ErrPayload},
		{"completed count 17", set(103, placement.MaxCompleted+1), x, ErrPayload},
		{"completed intent 0", set(104, 0, 0, 0, 0, 0, 0, 0, 0), x, ErrPayload},
		{"completed not ascending", set(112, 0, 0, 0, 0, 0, 0, 0, 6), x, ErrPayload},
		{"completed beyond the end", set(103, 3), x, ErrPayload},
		{"trailing byte", append(bytes.Clone(good), 0), x, ErrPayload},
		{"above MaxEnvelope", append(bytes.Clone(good), make([]byte, MaxEnvelope)...), x, ErrPayload},
	}
	for _, c := range cases {
		if _, err := DecodeEnvelope(c.b, c.x); !errors.Is(err, c.wantErr) {
			t.Errorf("%s: %v, want %v", c.name, err, c.wantErr)
		}
	}
	if _, err := DecodeEnvelope(good, x); err != nil {
		t.Fatalf("the unmodified envelope: %v", err)
	}
	for n := range len(good) {
		if _, err := DecodeEnvelope(good[:n], x); !errors.Is(err, ErrPayload) {
			t.Errorf("truncated to %d bytes: %v", n, err)
		}
	}
	_, err := DecodeEnvelope(good, mustIndex(t, "db", "webx"))
	if !errors.Is(err, ErrPayload) || !errors.Is(err, ErrPackages) {
		t.Errorf("renamed package: %v, want ErrPackages and ErrPayload", err)
	}
}

// Reasons: cut at a rune boundary to MaxReason each, and once the report's
// MaxReasonTotal is spent, to nothing; a decoder refuses more.
func TestEnvelopeReasons(t *testing.T) {
	x := mustIndex(t, packageNames(40)...)
	e := Envelope{Report: placement.Report{Node: 1, Inc: 1}}
	for _, n := range x.Names() {
		e.Report.Packages = append(e.Report.Packages, placement.PackageReport{Name: n, State: placement.HaltFailed, Reason: strings.Repeat("€", 50)})
	}
	b, err := AppendEnvelope(nil, &e, x)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeEnvelope(b, x)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for k, p := range got.Report.Packages {
		total += len(p.Reason)
		switch {
		case k < MaxReasonTotal/120 && p.Reason != strings.Repeat("€", 40):
			t.Fatalf("package %d: reason %q, want 40 euro signs (120 bytes)", k, p.Reason)
		case k == MaxReasonTotal/120 && p.Reason != strings.Repeat("€", (MaxReasonTotal%120)/3):
			t.Fatalf("package %d: reason %q, want what the total leaves, in whole runes", k, p.Reason)
		case k > MaxReasonTotal/120 && p.Reason != "":
			t.Fatalf("package %d: reason %q after the total is spent", k, p.Reason)
		}
	}
	if total > MaxReasonTotal || total < MaxReasonTotal-2 {
		t.Fatalf("reasons total %d bytes, want the budget %d less a partial rune", total, MaxReasonTotal)
	}
	// A hand-made envelope whose reasons add up to more than the total.
	one := Envelope{Report: placement.Report{Node: 1, Inc: 1, Packages: []placement.PackageReport{{Name: x.Names()[0], State: placement.Failed, Reason: strings.Repeat("r", MaxReason)}}}}
	b, _ = AppendEnvelope(nil, &one, x)
	head, reason, tail := b[:49], b[49:49+3+1+MaxReason], b[49+3+1+MaxReason:]
	over := bytes.Clone(head)
	binary.BigEndian.PutUint16(over[47:], uint16(MaxReasonTotal/MaxReason+1))
	for k := range MaxReasonTotal/MaxReason + 1 {
		r := bytes.Clone(reason)
		binary.BigEndian.PutUint16(r, uint16(k))
		over = append(over, r...)
	}
	over = append(over, tail...)
	if _, err := DecodeEnvelope(over, x); !errors.Is(err, ErrPayload) {
		t.Fatalf("reasons beyond the total: %v", err)
	}
	long := bytes.Clone(b)
	long[52] = MaxReason + 1
	long = append(long[:53+MaxReason], append([]byte{'r'}, long[53+MaxReason:]...)...)
	if _, err := DecodeEnvelope(long, x); !errors.Is(err, ErrPayload) {
		t.Fatalf("reason of %d bytes: %v", MaxReason+1, err)
	}
}

// The encoder refuses what it cannot write, and leaves b as it was.
func TestEnvelopeEncodeRefused(t *testing.T) {
	cases := []struct {
		name string
		f    func(*Envelope)
	}{
		{"unknown package", func(e *Envelope) { e.Report.Packages[0].Name = "mail" }},
		{"package twice", func(e *Envelope) { e.Report.Packages[1].Name = "web" }},
		{"unknown marked package", func(e *Envelope) { e.Report.Marked = []string{"mail"} }},
		{"marked twice", func(e *Envelope) { e.Report.Marked = []string{"db", "db"} }},
		{"more packages than defined", func(e *Envelope) { e.Report.Packages = append(e.Report.Packages, e.Report.Packages[0]) }},
		{"unknown state", func(e *Envelope) { e.Report.Packages[0].State = placement.HaltFailed + 1 }},
		{"reporter 0", func(e *Envelope) { e.Report.Node = 0 }},
		{"reporter 17", func(e *Envelope) { e.Report.Node = 17 }},
		{"incarnation 0", func(e *Envelope) { e.Report.Inc = 0 }},
		{"members bit 0", func(e *Envelope) { e.Report.Members |= 1 }},
		{"ack of itself", func(e *Envelope) { e.Report.Acks[0].Node = 2 }},
		{"ack twice", func(e *Envelope) { e.Report.Acks = append(e.Report.Acks, e.Report.Acks[0]) }},
		{"ack of node 17", func(e *Envelope) { e.Report.Acks[0].Node = 17 }},
		{"16 acks", func(e *Envelope) { e.Report.Acks = make([]placement.Ack, quorum.MaxNodes) }},
		{"too many takeovers", func(e *Envelope) {
			e.Report.Takeovers = make([]placement.Takeover, MaxTakeovers+1)
			for i := range e.Report.Takeovers {
				e.Report.Takeovers[i] = placement.Takeover{Target: quorum.Target{Node: 3}, Reason: quorum.TakeoverWatchdog}
			}
		}},
		{"takeover reason 0", func(e *Envelope) { e.Report.Takeovers[0].Reason = 0 }},
		{"takeover of node 0", func(e *Envelope) { e.Report.Takeovers[0].Node = 0 }},
		{"too many intents", func(e *Envelope) {
			e.Intents = nil
			for id := range uint64(MaxRelayedIntents + 1) {
				e.Intents = append(e.Intents, placement.Intent{ID: id + 1, Kind: placement.IntentDrain, Node: 1})
			}
		}},
		{"intents not ascending", func(e *Envelope) { e.Intents = append(e.Intents, e.Intents[0]) }},
		{"intent of an unknown package", func(e *Envelope) { e.Intents[0].Package = "mail" }},
		{"intent kind 0", func(e *Envelope) { e.Intents[0].Kind = 0 }},
		{"intent node 17", func(e *Envelope) { e.Intents[0].Node = 17 }},
	}
	for _, c := range cases {
		e, x := layoutEnvelope()
		c.f(&e)
		prefix := []byte("keep")
		b, err := AppendEnvelope(prefix, &e, x)
		if !errors.Is(err, ErrEnvelope) || string(b) != "keep" {
			t.Errorf("%s: %v, %q; want ErrEnvelope and b unchanged", c.name, err, b)
		}
	}
}

// worstEnvelope fills every part to its bound: MaxPackages packages all
// halt-failed with long reasons and all marked, 15 acks, MaxTakeovers
// takeovers and MaxRelayedIntents intents.
func worstEnvelope(t testing.TB) (Envelope, *PackageIndex) {
	x := mustIndex(t, packageNames(MaxPackages)...)
	e := Envelope{Report: placement.Report{Node: 1, Inc: 1, Members: validNodes, LeftoversStopped: true}, LastIntent: 1}
	for _, n := range x.Names() {
		e.Report.Packages = append(e.Report.Packages, placement.PackageReport{Name: n, State: placement.HaltFailed, Reason: strings.Repeat("r", 200)})
		e.Report.Marked = append(e.Report.Marked, n)
	}
	for id := quorum.NodeID(2); id <= quorum.MaxNodes; id++ {
		e.Report.Acks = append(e.Report.Acks, placement.Ack{Node: id, Inc: 1, Seq: 1})
	}
	for i := range MaxTakeovers {
		e.Report.Takeovers = append(e.Report.Takeovers, placement.Takeover{Target: quorum.Target{Node: quorum.NodeID(1 + i%quorum.MaxNodes)}, Reason: quorum.TakeoverFenced})
	}
	for i := range MaxRelayedIntents {
		e.Intents = append(e.Intents, placement.Intent{ID: uint64(i + 1), Kind: placement.IntentClear, Package: x.names[i]})
	}
	for i := range placement.MaxCompleted {
		e.Report.Completed = append(e.Report.Completed, uint64(i+1))
	}
	return e, x
}

// MaxEnvelope is reached, exactly, by the worst envelope; with the random
// round trips (never above it) and the encoder's bounds this shows it is
// the maximum. A heartbeat of 15 echoes with that envelope is
// MaxNetWithPayload bytes.
func TestEnvelopeWorstCase(t *testing.T) {
	e, x := worstEnvelope(t)
	b, err := AppendEnvelope(nil, &e, x)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != MaxEnvelope {
		t.Fatalf("worst envelope is %d bytes, MaxEnvelope %d", len(b), MaxEnvelope)
	}
	if _, err := DecodeEnvelope(b, x); err != nil {
		t.Fatal(err)
	}
	hb := randomHeartbeat(rand.New(rand.NewSource(1)), 0) // every other node echoed
	if p := AppendNetWith(nil, &hb, b); len(p) != MaxNetWithPayload {
		t.Fatalf("worst network payload %d bytes, MaxNetWithPayload %d", len(p), MaxNetWithPayload)
	}
}

// The sizes the package documentation states, measured: at 16 nodes and
// 300 packages, a node running 19 of them and one running all 300 (every
// other node acknowledged, no takeover, failure or intent).
func TestEnvelopeSizes(t *testing.T) {
	x := mustIndex(t, packageNames(300)...)
	for _, c := range []struct{ running, want int }{{19, 367}, {300, 1210}} {
		e := Envelope{Report: placement.Report{Node: 1, Inc: 1, Members: validNodes}}
		for _, n := range x.Names()[:c.running] {
			e.Report.Packages = append(e.Report.Packages, placement.PackageReport{Name: n, State: placement.Running})
		}
		for id := quorum.NodeID(2); id <= quorum.MaxNodes; id++ {
			e.Report.Acks = append(e.Report.Acks, placement.Ack{Node: id, Inc: 1, Seq: 1})
		}
		b, err := AppendEnvelope(nil, &e, x)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != c.want {
			t.Errorf("%d packages running: envelope of %d bytes, the documentation says %d", c.running, len(b), c.want)
		}
	}
}

// The index is the sorted names; the fingerprint tells different package
// sets apart (including names that concatenate alike) and not orders.
func TestPackageIndex(t *testing.T) {
	x := mustIndex(t, "web", "db", "log")
	if got := x.Names(); !reflect.DeepEqual(got, []string{"db", "log", "web"}) {
		t.Fatalf("names %v", got)
	}
	x.Names()[0] = "changed"
	if x.Names()[0] != "db" {
		t.Fatal("Names returns the index's own slice")
	}
	if mustIndex(t, "db", "log", "web").fp != x.fp {
		t.Fatal("the same names in another order give another fingerprint")
	}
	if mustIndex(t, "ab", "c").fp == mustIndex(t, "a", "bc").fp {
		t.Fatal("names that concatenate alike give the same fingerprint")
	}
	for _, names := range [][]string{{"db", "web", "db"}, {"db", ""}, packageNames(MaxPackages + 1)} {
		if _, err := NewPackageIndex(names); err == nil {
			t.Errorf("NewPackageIndex(%d names starting %q) accepted", len(names), names[:2])
		}
	}
	if _, err := NewPackageIndex(packageNames(MaxPackages)); err != nil {
		t.Fatal(err)
	}
}

// Without an envelope the network payload is AppendNet's, byte for byte;
// DecodeNet reads the heartbeat of payloads with and without a section;
// a malformed section is refused; slots never carry one.
func TestNetEnvelopeSection(t *testing.T) {
	hb := quorum.Heartbeat{From: 2, Inc: 7, Seq: 9, Epoch: 1, Members: quorum.SetOf(1, 2), View: quorum.SetOf(1)}
	hb.Echo[1] = quorum.Echo{Inc: 3, Seq: 4}
	plain := AppendNet(nil, &hb)
	if !bytes.Equal(AppendNetWith(nil, &hb, nil), plain) || !bytes.Equal(AppendNetWith(nil, &hb, []byte{}), plain) {
		t.Fatal("AppendNetWith without an envelope differs from AppendNet")
	}
	env := []byte{EnvelopeVersion, 1, 2, 3}
	with := AppendNetWith(nil, &hb, env)
	want := bytes.Clone(plain)
	want[2] |= 2
	want = append(want, 0, 4)
	want = append(want, env...)
	if !bytes.Equal(with, want) {
		t.Fatalf("payload with a section\n got % x\nwant % x", with, want)
	}
	for _, p := range [][]byte{plain, with} {
		got, err := DecodeNet(2, 7, uint64(hb.View), p)
		if err != nil || got != hb {
			t.Fatalf("DecodeNet: %v %+v", err, got)
		}
	}
	if _, e, err := DecodeNetWith(2, 7, uint64(hb.View), plain); err != nil || e != nil {
		t.Fatalf("DecodeNetWith of a payload without a section: %v, section %v", err, e)
	}
	mod := func(f func([]byte) []byte) []byte { return f(bytes.Clone(with)) }
	n := len(plain)
	bad := map[string][]byte{
		"length 0":          mod(func(p []byte) []byte { p[n], p[n+1] = 0, 0; return p[:n+2] }),
		"length beyond":     mod(func(p []byte) []byte { p[n+1] = 5; return p }),
		"length short":      mod(func(p []byte) []byte { p[n+1] = 3; return p }),
		"no length":         mod(func(p []byte) []byte { return p[:n+1] }),
		"bit without bytes": mod(func(p []byte) []byte { return p[:n] }),
		"above MaxEnvelope": mod(func(p []byte) []byte {
			binary.BigEndian.PutUint16(p[n:], MaxEnvelope+1)
			return append(p[:n+2], make([]byte, MaxEnvelope+1)...)
		}),
	}
	for name, p := range bad {
		if _, _, err := DecodeNetWith(2, 7, uint64(hb.View), p); !errors.Is(err, ErrPayload) {
			t.Errorf("%s: DecodeNetWith %v", name, err)
		}
		if _, err := DecodeNet(2, 7, uint64(hb.View), p); !errors.Is(err, ErrPayload) {
			t.Errorf("%s: DecodeNet %v", name, err)
		}
	}
	s := ToSlot(&hb)
	s.Payload[2] |= 2
	s.Payload = append(s.Payload, 0, 4, 1, 2, 3, 4)
	if _, err := FromSlot(s); !errors.Is(err, ErrPayload) {
		t.Errorf("slot with an envelope section: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("AppendNetWith accepted an envelope above MaxEnvelope")
		}
	}()
	AppendNetWith(nil, &hb, make([]byte, MaxEnvelope+1))
}

// The cost of publishing and of reading a report of 300 running packages
// with 15 acks (BenchmarkEnvelope/append, /decode).
func BenchmarkEnvelope(b *testing.B) {
	x := mustIndex(b, packageNames(300)...)
	e := Envelope{Report: placement.Report{Node: 1, Inc: 1, Members: validNodes}}
	for _, n := range x.Names() {
		e.Report.Packages = append(e.Report.Packages, placement.PackageReport{Name: n, State: placement.Running})
	}
	for id := quorum.NodeID(2); id <= quorum.MaxNodes; id++ {
		e.Report.Acks = append(e.Report.Acks, placement.Ack{Node: id, Inc: 1, Seq: 1})
	}
	buf, _ := AppendEnvelope(nil, &e, x)
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		out := make([]byte, 0, MaxEnvelope)
		for b.Loop() {
			out, _ = AppendEnvelope(out[:0], &e, x)
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeEnvelope(buf, x); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Two nodes with the same names but other definitions refuse each
// other's envelopes.
func TestEnvelopeRefusesOtherDefinitions(t *testing.T) {
	a, _ := NewPackageIndex([]string{"db", "web"})
	b := a.WithDefinitions([]byte(`db on 1,2`))
	c := a.WithDefinitions([]byte(`db on 2,1`))
	e := &Envelope{Report: placement.Report{Node: 1, Inc: 1, Seq: 1, Packages: []placement.PackageReport{{Name: "db", State: placement.Running}}}}
	raw, err := AppendEnvelope(nil, e, b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeEnvelope(raw, b); err != nil {
		t.Fatalf("same definitions: %v", err)
	}
	for _, x := range []*PackageIndex{a, c} {
		if _, err := DecodeEnvelope(raw, x); !errors.Is(err, ErrPackages) {
			t.Fatalf("other definitions: %v, want ErrPackages", err)
		}
	}
}

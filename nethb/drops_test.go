package nethb

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"hash/maphash"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeTimers is the drop log's clock and timers under the test's control.
type fakeTimers struct {
	now     time.Duration
	pending []fakeTimer
}

type fakeTimer struct {
	at time.Duration
	f  func()
}

func (ft *fakeTimers) install(r *Receiver) {
	r.now = func() time.Duration { return ft.now }
	r.schedule = func(d time.Duration, f func()) { ft.pending = append(ft.pending, fakeTimer{ft.now + d, f}) }
}

// advance moves the clock to t, firing every timer due on the way in order.
func (ft *fakeTimers) advance(t time.Duration) {
	for {
		i := -1
		for j, p := range ft.pending {
			if p.at <= t && (i < 0 || p.at < ft.pending[i].at) {
				i = j
			}
		}
		if i < 0 {
			break
		}
		p := ft.pending[i]
		ft.pending = append(ft.pending[:i], ft.pending[i+1:]...)
		ft.now = p.at
		p.f()
	}
	ft.now = t
}

// logRecorder counts and keeps the drop log's lines.
type logRecorder struct{ buf bytes.Buffer }

func (l *logRecorder) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(&l.buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (l *logRecorder) lines() []string {
	s := strings.TrimRight(l.buf.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func newFloodRecv(t testing.TB, log *slog.Logger) (*Receiver, *fakeTimers) {
	t.Helper()
	r, err := NewReceiver(ReceiverConfig{Cluster: testCluster, Key: testKey, Self: 2, Peers: []Peer{testPeers()[0], testPeers()[2]},
		Generation: basePacket().Generation, Log: log, Networks: []string{"lan"}})
	if err != nil {
		t.Fatal(err)
	}
	ft := &fakeTimers{}
	ft.install(r)
	return r, ft
}

// spoofedAddr is the i-th of a million distinct source addresses.
func spoofedAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), uint16(1024+i%60000))
}

// forgedFraming is a datagram that passes every framing check and the
// cluster UUID, and fails only the MAC: the dearest drop to make.
func forgedFraming() []byte {
	p := basePacket()
	b, _ := p.AppendEncode(nil, bytes.Repeat([]byte{0x11}, 32))
	return b
}

// TestMillionSpoofedSources floods a receiver with a million datagrams,
// each from its own address, while a peer keeps sending valid heartbeats:
// every heartbeat is accepted, the counters stay in fixed memory and sum to
// what was sent, the statistics stay small, and the drop log is a handful
// of lines whose counts match the flood.
func TestMillionSpoofedSources(t *testing.T) {
	const (
		flood = 1_000_000
		gap   = 27 * time.Microsecond // a million in 27 s
		every = 10_000                // one heartbeat from peer a per 10,000 flood packets
	)
	var rec logRecorder
	r, ft := newFloodRecv(t, rec.logger())
	v := newVerifier(testKey)
	rnd := rand.New(rand.NewPCG(1, 2))
	garbage := make([]byte, 104)[:100]
	forged := forgedFraming()
	hb := basePacket()
	var buf []byte

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	var wantMalformed, wantForged, accepted uint64
	for i := range flood {
		ft.advance(time.Duration(i) * gap)
		b := garbage
		if i%4 == 0 {
			b = forged
			wantForged++
		} else {
			for j := 0; j < len(garbage); j += 8 {
				binary.LittleEndian.PutUint64(garbage[j:j+8:j+8], rnd.Uint64())
			}
			wantMalformed++
		}
		if _, f := r.accept(v, 0, spoofedAddr(i), b); f.kind == faultNone {
			t.Fatalf("flood datagram %d accepted", i)
		}
		if i%every == 0 {
			hb.Seq++
			buf, _ = hb.AppendEncode(buf[:0], testKey)
			if _, f := r.accept(v, 0, addrA, buf); f.kind != faultNone {
				t.Fatalf("heartbeat %d refused during the flood: %v", hb.Seq, f.err())
			}
			accepted++
		}
	}
	ft.advance(flood*gap + 3*DefaultDropLogInterval)

	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 256<<10 {
		t.Errorf("heap grew %d KiB over a million spoofed sources, want < 256 KiB", grew>>10)
	}

	s := r.Stats()
	if s.Accepted["a"] != accepted {
		t.Errorf("accepted %d heartbeats from a, want %d", s.Accepted["a"], accepted)
	}
	if s.DroppedByReason["malformed"] != wantMalformed || s.DroppedByReason["forged"] != wantForged {
		t.Errorf("dropped by reason %v, want %d malformed, %d forged", s.DroppedByReason, wantMalformed, wantForged)
	}
	if len(s.Dropped) > len(r.cfg.Peers)+MaxDropSources {
		t.Errorf("%d sources itemised, want at most %d", len(s.Dropped), len(r.cfg.Peers)+MaxDropSources)
	}
	var itemised uint64
	for _, m := range s.Dropped {
		for _, n := range m {
			itemised += n
		}
	}
	if itemised+s.OtherSources.Packets != flood {
		t.Errorf("itemised %d + other %d drops, want %d", itemised, s.OtherSources.Packets, flood)
	}
	wantOther := float64(flood - MaxDropSources) // every address is new: all but the table's last ones evicted
	if e := float64(s.OtherSources.Addresses); e < 0.94*wantOther || e > 1.06*wantOther {
		t.Errorf("other sources estimated %v, want %v within 6%%", e, wantOther)
	}
	js, _ := json.Marshal(s)
	if len(js) > 4<<10 {
		t.Errorf("statistics are %d bytes of JSON after a million sources, want < 4 KiB:\n%s", len(js), js)
	}

	// The log: one line at once per reason, then one summary per interval.
	lines := rec.lines()
	maxLines := 2 + int(flood*gap/DefaultDropLogInterval) + 2
	if len(lines) > maxLines || len(rec.buf.String()) > 8<<10 {
		t.Fatalf("%d log lines (%d bytes) for a 27 s flood, want at most %d lines within 8 KiB:\n%s", len(lines), rec.buf.Len(), maxLines, rec.buf.String())
	}
	var loggedMalformed uint64
	for _, l := range lines {
		if strings.Contains(l, "heartbeat from 10.") && strings.Contains(l, "(malformed)") {
			loggedMalformed++
		}
	}
	if loggedMalformed != 1 {
		t.Errorf("%d immediate malformed lines, want 1:\n%s", loggedMalformed, rec.buf.String())
	}
	summaries := 0
	for _, l := range lines {
		if strings.Contains(l, "dropped in the last 10s") {
			summaries++
			if !strings.Contains(l, "with a bad MAC from about ") || !strings.Contains(l, " malformed from about ") {
				t.Errorf("summary does not name both reasons: %s", l)
			}
		}
	}
	if summaries < 2 {
		t.Errorf("%d summaries for a 27 s flood, want at least 2:\n%s", summaries, rec.buf.String())
	}
	t.Logf("%d log lines, %d bytes; stats %d bytes; last line: %s", len(lines), rec.buf.Len(), len(js), lines[len(lines)-1])
}

// TestDropPathAllocatesNothing counts heap allocations over many drops of
// each dear and cheap kind, from ever new sources.
func TestDropPathAllocatesNothing(t *testing.T) {
	var rec logRecorder
	r, ft := newFloodRecv(t, rec.logger())
	v := newVerifier(testKey)
	forged := forgedFraming()
	garbage := bytes.Repeat([]byte{0xab}, 100)
	stale := basePacket()
	staleB, _ := stale.AppendEncode(nil, testKey)
	if _, f := r.accept(v, 0, addrA, staleB); f.kind != faultNone {
		t.Fatal(f.err())
	}
	// Open the drop log for every reason so its timer is armed already.
	for _, b := range [][]byte{forged, garbage, staleB} {
		r.accept(v, 0, spoofedAddr(0), b)
	}
	ft.now = time.Second
	const n = 100_000
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for i := range n {
		b := garbage
		switch i % 3 {
		case 0:
			b = forged
		case 1:
			b = staleB // authentic but replayed: passes the MAC
		}
		r.accept(v, 0, spoofedAddr(i+1), b)
	}
	runtime.ReadMemStats(&m1)
	if a := m1.Mallocs - m0.Mallocs; a > 10 {
		t.Fatalf("%d allocations over %d drops, want none", a, n)
	}
}

// TestDropTableKeepsPersistentSources: a source that keeps sending stays
// itemised, exactly counted, among a flood of addresses seen once; evicted
// counts move to the aggregate.
func TestDropTableKeepsPersistentSources(t *testing.T) {
	r, _ := newFloodRecv(t, nil)
	v := newVerifier(testKey)
	garbage := []byte("not a heartbeat")
	persistent := netip.MustParseAddrPort("192.0.2.7:9")
	var sent uint64
	for i := range 50_000 {
		r.accept(v, 0, spoofedAddr(i), garbage)
		if i%(MaxDropSources/2) == 0 {
			r.accept(v, 0, persistent, garbage)
			sent++
		}
	}
	s := r.Stats()
	if got := s.Dropped[persistent.Addr().String()]["malformed"]; got != sent {
		t.Fatalf("persistent source counted %d, want %d (stats %v)", got, sent, s.Dropped)
	}
	if s.OtherSources.ByReason["malformed"] != s.OtherSources.Packets || s.OtherSources.Packets == 0 {
		t.Fatalf("other sources %+v", s.OtherSources)
	}
	// Drops from a configured peer's address are counted under its name.
	r.accept(v, 0, addrC, garbage)
	if r.Stats().Dropped["c"]["malformed"] != 1 {
		t.Fatalf("drop from peer c's address not counted under c: %v", r.Stats().Dropped)
	}
}

// TestDropLogFirstAtOnceThenSummaries follows the drop log of one
// misconfigured peer through quiet and busy intervals.
func TestDropLogFirstAtOnceThenSummaries(t *testing.T) {
	var rec logRecorder
	r, ft := newFloodRecv(t, rec.logger())
	v := newVerifier(testKey)
	p := basePacket()
	p.Generation = 99
	mismatch := func() {
		p.Seq++
		b, _ := p.AppendEncode(nil, testKey)
		if _, f := r.accept(v, 0, addrA, b); f.reason() != ReasonConfigMismatch {
			t.Fatalf("drop reason %v", f.reason())
		}
	}

	mismatch()
	if l := rec.lines(); len(l) != 1 || !strings.Contains(l[0], "heartbeat from a dropped (config-mismatch): node 1 runs configuration generation 0000000000000063") ||
		!strings.Contains(l[0], "network=lan") {
		t.Fatalf("first drop not logged at once with its cause:\n%s", rec.buf.String())
	}
	ft.advance(2 * DefaultDropLogInterval)
	if n := len(rec.lines()); n != 1 {
		t.Fatalf("an interval whose only drop was logged wrote a summary:\n%s", rec.buf.String())
	}
	if len(ft.pending) != 0 {
		t.Fatalf("drop log timer still pending after a quiet interval")
	}
	// After a quiet interval: the first drop at once, the rest in the
	// interval's summary.
	for i := range 5 {
		ft.advance(2*DefaultDropLogInterval + time.Duration(i+1)*time.Second)
		mismatch()
	}
	if n := len(rec.lines()); n != 2 {
		t.Fatalf("after a quiet interval the first drop is logged at once, the rest wait: %d lines\n%s", n, rec.buf.String())
	}
	ft.advance(3*DefaultDropLogInterval + 6*time.Second)
	l := rec.lines()
	if len(l) != 3 || !strings.Contains(l[2], "5 heartbeat packets dropped in the last 10s: 5 of another configuration generation from 1 source (first from a: node 1 runs") {
		t.Fatalf("summary missing or wrong:\n%s", rec.buf.String())
	}
	// Drops in consecutive intervals: no more lines at once.
	for i := range 3 {
		ft.advance(3*DefaultDropLogInterval + time.Duration(7+i)*time.Second)
		mismatch()
	}
	if n := len(rec.lines()); n != 3 {
		t.Fatalf("a reason that dropped in the previous interval was logged at once again:\n%s", rec.buf.String())
	}
	ft.advance(10 * DefaultDropLogInterval)
	if l := rec.lines(); len(l) != 4 || !strings.Contains(l[3], "3 heartbeat packets dropped") {
		t.Fatalf("second summary:\n%s", rec.buf.String())
	}
	if len(ft.pending) != 0 {
		t.Fatalf("drop log timers still pending after quiet intervals: %d", len(ft.pending))
	}
}

func TestDistinctEstimate(t *testing.T) {
	var d distinct
	seed := newFloodSeed()
	n := 0
	for _, want := range []int{1, 2, 10, 100, 1000, 10_000, 100_000, 1_000_000} {
		for ; n < want; n++ {
			d.add(addrHash(seed, spoofedAddr(n).Addr()))
			d.add(addrHash(seed, spoofedAddr(n).Addr())) // repeats do not count
		}
		got := float64(d.estimate())
		tol := max(0.06*float64(want), 1) // 3.7 standard errors
		if got < float64(want)-tol || got > float64(want)+tol {
			t.Errorf("estimate %v for %d distinct addresses", got, want)
		}
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[uint64]string{0: "0", 999: "999", 1000: "1,000", 12304: "12,304", 1234567: "1,234,567"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

func newFloodSeed() maphash.Seed { return maphash.MakeSeed() }

type fakeQueue struct{ n uint64 }

func (q *fakeQueue) QueueDrops() uint64 { return q.n }

// The summary adds what the kernel dropped in the interval before the
// receiver saw it.
func TestDropLogCountsKernelQueueDrops(t *testing.T) {
	var rec logRecorder
	r, ft := newFloodRecv(t, rec.logger())
	q := &fakeQueue{n: 40}
	r.queues, r.queued = []queueDropper{q}, q.n // as Serve registers it
	v := newVerifier(testKey)
	r.accept(v, 0, spoofedAddr(1), []byte("x"))
	q.n = 100
	r.accept(v, 0, spoofedAddr(2), []byte("x"))
	ft.advance(DefaultDropLogInterval)
	l := rec.lines()
	if len(l) != 2 || !strings.Contains(l[1], "; 60 more lost in the kernel's receive queues") {
		t.Fatalf("summary without the queue drops of the interval:\n%s", rec.buf.String())
	}
	if s := r.Stats(); s.QueueDrops != 100 {
		t.Fatalf("Stats.QueueDrops = %d, want 100", s.QueueDrops)
	}
}

// Whatever mix of reasons arrives, the drop log writes at most one line
// per reason at once and one summary per interval.
func TestDropLogLinesBoundedWhateverTheMix(t *testing.T) {
	var rec logRecorder
	r, ft := newFloodRecv(t, rec.logger())
	kinds := []faultKind{faultMagic, faultForeign, faultForged, faultSelf, faultConfigMismatch,
		faultUnknownSender, faultWrongNetwork, faultOldSeq, faultOldIncarnation, faultShort}
	const (
		drops = 600_000
		gap   = 100 * time.Microsecond // 60 s
	)
	rnd := rand.New(rand.NewPCG(3, 4))
	for i := range drops {
		ft.advance(time.Duration(i) * gap)
		// Reasons come and go: each is quiet for whole intervals now and then.
		k := kinds[rnd.IntN(len(kinds))]
		if i >= 150_000 && i < 400_000 && k == faultForged { // quiet for 25 s
			continue
		}
		r.mu.Lock()
		ex, logNow, opened := r.dropped(spoofedAddr(i), fault{kind: k})
		r.mu.Unlock()
		r.afterDrop(0, ex, logNow, opened)
	}
	ft.advance(drops*gap + 3*DefaultDropLogInterval)
	intervals := int(drops*gap/DefaultDropLogInterval) + 2
	if n, max := len(rec.lines()), intervals*(int(numReasons)+1); n > max {
		t.Fatalf("%d drop-log lines over %d intervals, want at most %d:\n%s", n, intervals, max, rec.buf.String())
	}
	var total uint64
	for _, l := range rec.lines() {
		if i := strings.Index(l, " heartbeat packets dropped in the last"); i >= 0 {
			n, _ := strconv.ParseUint(strings.ReplaceAll(l[strings.Index(l, "msg=\"")+5:i], ",", ""), 10, 64)
			total += n
		}
	}
	s := r.Stats()
	var counted uint64
	for _, n := range s.DroppedByReason {
		counted += n
	}
	if total != counted {
		t.Fatalf("the summaries add up to %d drops, the counters to %d", total, counted)
	}
	t.Logf("%d lines for %d drops over %d intervals", len(rec.lines()), counted, intervals)
}

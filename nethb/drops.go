package nethb

import (
	"fmt"
	"hash/maphash"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// MaxDropSources bounds how many source addresses outside the
// configuration the receiver itemises in its drop statistics: the ones
// with the most drops since they were last admitted. Drops from every other
// unconfigured address are aggregated in Stats.OtherSources. Configured
// peers are always itemised (by name), so the statistics hold at most
// len(peers)+MaxDropSources sources whatever arrives on the network.
const MaxDropSources = 16

// DefaultDropLogInterval is how often the receiver logs a summary of the
// datagrams it dropped, when it dropped any.
const DefaultDropLogInterval = 10 * time.Second

// reasonCounts is one counter per drop reason: a fixed-size array.
type reasonCounts [numReasons]uint64

func (c *reasonCounts) add(o *reasonCounts) {
	for i := range c {
		c[i] += o[i]
	}
}

func (c *reasonCounts) total() uint64 {
	var n uint64
	for _, v := range c {
		n += v
	}
	return n
}

// named renders the non-zero counters by reason name.
func (c *reasonCounts) named() map[string]uint64 {
	m := make(map[string]uint64)
	for i, v := range c {
		if v != 0 {
			m[Reason(i).String()] = v
		}
	}
	return m
}

// sourceEntry counts the drops of one unconfigured source address.
type sourceEntry struct {
	addr  netip.Addr
	n     reasonCounts
	total uint64
	last  uint64 // dropTable.tick of its latest drop
}

// dropTable counts every dropped datagram in memory fixed at construction:
// per reason, per configured peer, for the MaxDropSources unconfigured
// addresses with the most drops, and in one aggregate for the rest, with
// an estimate of how many distinct addresses that aggregate holds.
//
// An unconfigured source not in the table takes the place of the entry
// with the fewest drops (the least recent among equals), whose counts move
// to the aggregate: a source that keeps sending stays itemised while a
// flood of addresses seen once churns through the lowest entries, and no
// drop is ever lost from the totals. An itemised count is therefore the
// drops since the source was last admitted, a lower bound.
type dropTable struct {
	seed     maphash.Seed
	byReason reasonCounts
	peers    []reasonCounts // indexed like ReceiverConfig.Peers
	sources  [MaxDropSources]sourceEntry
	used     int
	tick     uint64
	other    reasonCounts
	otherSrc distinct // addresses whose counts were moved to other
}

// record counts one drop of reason r from addr; peer is the index of the
// configured peer addr belongs to, or -1. It allocates nothing.
func (t *dropTable) record(peer int, addr netip.Addr, r Reason) {
	t.byReason[r]++
	if peer >= 0 {
		t.peers[peer][r]++
		return
	}
	t.tick++
	for i := range t.used {
		if e := &t.sources[i]; e.addr == addr {
			e.n[r]++
			e.total++
			e.last = t.tick
			return
		}
	}
	i := t.used
	if i < len(t.sources) {
		t.used++
	} else {
		i = 0
		for j := 1; j < len(t.sources); j++ {
			e, m := &t.sources[j], &t.sources[i]
			if e.total < m.total || (e.total == m.total && e.last < m.last) {
				i = j
			}
		}
		ev := &t.sources[i]
		t.other.add(&ev.n)
		t.otherSrc.add(addrHash(t.seed, ev.addr))
	}
	t.sources[i] = sourceEntry{addr: addr, total: 1, last: t.tick}
	t.sources[i].n[r] = 1
}

// dropExample is the first drop of one reason in a log interval.
type dropExample struct {
	source string // peer name, or "" for an unconfigured address
	from   netip.AddrPort
	f      fault
}

func (e dropExample) sourceName() string {
	if e.source != "" {
		return e.source
	}
	return e.from.Addr().String()
}

// dropWindow accumulates one log interval of drops. A reason that had no
// drops in the previous interval has its first drop logged at once (with
// its cause); everything else waits for the interval's summary, so the
// drop log is at most one line per reason plus one summary per interval,
// whatever the rate.
type dropWindow struct {
	open    bool
	start   time.Duration
	n       reasonCounts
	src     [numReasons]distinct
	example [numReasons]dropExample
	logged  reasonCounts // drops already logged one by one
	prev    reasonCounts // the previous interval's counts
}

// record counts one drop at now. It reports whether the window was closed
// (the caller must schedule its flush) and whether this drop is to be
// logged at once.
func (w *dropWindow) record(now time.Duration, ex dropExample, h uint64) (opened, logNow bool) {
	r := ex.f.reason()
	if !w.open {
		w.open, w.start, opened = true, now, true
	}
	if w.n[r] == 0 {
		w.example[r] = ex
	}
	w.n[r]++
	w.src[r].add(h)
	if w.n[r] == 1 && w.prev[r] == 0 {
		w.logged[r]++
		logNow = true
	}
	return opened, logNow
}

// flush ends the interval at now. It returns the summary to log (ok false
// when every drop of the interval was already logged one by one) and
// whether another interval must be scheduled (drops arrived in this one).
func (w *dropWindow) flush(now time.Duration) (s DropSummary, ok, again bool) {
	total := w.n.total()
	s = DropSummary{Interval: now - w.start, Packets: total}
	for i := range w.n {
		if w.n[i] == 0 {
			continue
		}
		src := max(min(w.src[i].estimate(), w.n[i]), 1)
		s.Reasons = append(s.Reasons, ReasonSummary{
			Reason: Reason(i), Packets: w.n[i], Sources: src,
			Example: w.example[i].sourceName(), Err: w.example[i].f.err(),
		})
	}
	ok = total > w.logged.total()
	again = total > 0
	w.prev = w.n
	w.n, w.logged = reasonCounts{}, reasonCounts{}
	for i := range w.src {
		w.src[i].reset()
	}
	w.start = now
	if !again {
		w.open = false
	}
	return s, ok, again
}

// DropSummary is one log interval's dropped datagrams.
type DropSummary struct {
	Interval time.Duration
	Packets  uint64
	// Reasons has one entry per reason with drops, in reason order.
	Reasons []ReasonSummary
	// QueueDrops is how many more the kernel dropped in the interval
	// because a heartbeat socket's receive queue was full.
	QueueDrops uint64
}

// ReasonSummary is the drops of one reason in a log interval.
type ReasonSummary struct {
	Reason  Reason
	Packets uint64
	// Sources estimates the distinct source addresses (a standard error
	// of about 1.6%).
	Sources uint64
	// Example is the source of the interval's first drop of this reason
	// (a peer name or an address) and Err its cause.
	Example string
	Err     error
}

var reasonPhrases = [...]string{
	ReasonMalformed:      "malformed",
	ReasonForeignCluster: "from another cluster",
	ReasonForged:         "with a bad MAC",
	ReasonUnknownSender:  "from a node id not in the configuration",
	ReasonSelf:           "carrying our own node id",
	ReasonWrongNetwork:   "on the wrong network",
	ReasonReplayed:       "replayed or out of date",
	ReasonConfigMismatch: "of another configuration generation",
}

// String renders the summary as one line, for example
// "12,304 heartbeat packets dropped in the last 10s: 12,300 with a bad MAC
// from about 9,811 sources (first from 10.0.0.7), 4 malformed from 1 source
// (first from beta: ...)".
func (s DropSummary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s heartbeat packet%s dropped in the last %v:", thousands(s.Packets), plural(s.Packets), s.Interval.Round(time.Second))
	for i, r := range s.Reasons {
		if i > 0 {
			b.WriteByte(',')
		}
		src := thousands(r.Sources) + " source" + plural(r.Sources)
		if r.Sources > 100 {
			src = "about " + src
		}
		fmt.Fprintf(&b, " %s %s from %s (first from %s", thousands(r.Packets), reasonPhrases[r.Reason], src, r.Example)
		if r.Err != nil && r.Reason != ReasonForged {
			fmt.Fprintf(&b, ": %v", r.Err)
		}
		b.WriteByte(')')
	}
	if s.QueueDrops > 0 {
		fmt.Fprintf(&b, "; %s more lost in the kernel's receive queue%s", thousands(s.QueueDrops), map[bool]string{true: "", false: "s"}[s.QueueDrops == 1])
	}
	return b.String()
}

func plural(n uint64) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// thousands formats n with comma separators: 12304 -> "12,304".
func thousands(n uint64) string {
	s := strconv.FormatUint(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

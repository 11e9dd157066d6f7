package daemon

import (
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mtcluster/mtc/nethb"
)

// dropLogWindow is how often dropped heartbeats are summarised in the log
// (not a cluster timing): the first drop after a quiet window is logged
// at once with its cause, the rest of the window as one summary line.
const dropLogWindow = 10 * time.Second

// dropLogSources bounds the distinct sources a summary counts by name; a
// flood from spoofed addresses is summed beyond it.
const dropLogSources = 64

// dropLog turns dropped heartbeats into a bounded log: whatever arrives,
// at most one line at once and one summary per window, in a fixed amount
// of memory. It is safe for use by every receive goroutine.
type dropLog struct {
	log *slog.Logger

	mu       sync.Mutex
	start    time.Time // start of the current window; zero when quiet
	count    uint64
	byReason map[string]uint64 // bounded by the number of nethb reasons
	sources  map[string]struct{}
	more     bool // more than dropLogSources distinct sources
}

func newDropLog(log *slog.Logger) *dropLog {
	return &dropLog{log: log, byReason: make(map[string]uint64), sources: make(map[string]struct{})}
}

// note records one drop on network nw at wall time now.
func (l *dropLog) note(now time.Time, nw string, de *nethb.DropError) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.start.IsZero() && now.Sub(l.start) >= dropLogWindow {
		l.flushLocked(now)
	}
	if l.start.IsZero() {
		l.start = now
		l.log.Warn("heartbeat dropped (further drops are summarised every "+dropLogWindow.String()+" and counted in `mtc status`)",
			"network", nw, "source", de.Source, "reason", de.Reason.String(), "err", de.Err)
		return
	}
	l.count++
	l.byReason[de.Reason.String()]++
	if _, ok := l.sources[de.Source]; !ok {
		if len(l.sources) < dropLogSources {
			l.sources[de.Source] = struct{}{}
		} else {
			l.more = true
		}
	}
}

// flush logs the summary of a window that has ended by now, if any.
func (l *dropLog) flush(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.start.IsZero() && now.Sub(l.start) >= dropLogWindow {
		l.flushLocked(now)
	}
}

func (l *dropLog) flushLocked(now time.Time) {
	if l.count > 0 {
		var reasons []string
		for r, n := range l.byReason {
			reasons = append(reasons, fmt.Sprintf("%d %s", n, r))
		}
		sort.Strings(reasons)
		sources := fmt.Sprintf("%d sources", len(l.sources))
		if l.more {
			sources = fmt.Sprintf("more than %d sources", dropLogSources)
		}
		l.log.Warn(fmt.Sprintf("%d heartbeats dropped in the last %v: %s, from %s", l.count, now.Sub(l.start).Round(time.Second), strings.Join(reasons, ", "), sources))
	}
	l.start, l.count, l.more = time.Time{}, 0, false
	clear(l.byReason)
	clear(l.sources)
}

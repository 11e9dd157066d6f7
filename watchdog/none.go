package watchdog

import (
	"log/slog"
	"sync"
	"time"
)

// NoneWarnInterval is how often the "none" watchdog repeats its warning.
const NoneWarnInterval = time.Minute

const noneWarning = "NO WATCHDOG: this node cannot self-fence; a hung or partitioned node may keep writing shared storage while peers take its packages over. Configure watchdog.mode = \"device\" for production"

// None is the absence of a watchdog, allowed only when the configuration
// sets allow_none. It warns at start and on the first Feed after every
// NoneWarnInterval.
type None struct {
	mu       sync.Mutex
	log      *slog.Logger
	now      func() time.Duration
	lastWarn time.Duration
}

var _ Watchdog = (*None)(nil)

// NewNone logs the warning and returns the no-op watchdog. now is the
// daemon's monotonic clock (time since its start).
func NewNone(log *slog.Logger, now func() time.Duration) *None {
	n := &None{log: log, now: now, lastWarn: now()}
	log.Warn(noneWarning)
	return n
}

// Feed warns again when NoneWarnInterval has passed.
func (n *None) Feed() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if t := n.now(); t-n.lastWarn >= NoneWarnInterval {
		n.lastWarn = t
		n.log.Warn(noneWarning)
	}
	return nil
}

// Disarm does nothing: there is nothing armed.
func (n *None) Disarm() error { return nil }

// Close does nothing.
func (n *None) Close() error { return nil }

// Fake is a Watchdog for unit tests: it records calls and can be made to
// fail.
type Fake struct {
	mu       sync.Mutex
	feeds    int
	disarmed bool
	closed   bool
	// FeedErr, when set, is returned by Feed (which then does not count).
	FeedErr error
}

var _ Watchdog = (*Fake)(nil)

// Feed counts a feed.
func (f *Fake) Feed() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed || f.disarmed {
		return ErrClosed
	}
	if f.FeedErr != nil {
		return f.FeedErr
	}
	f.feeds++
	return nil
}

// Disarm records a clean stop.
func (f *Fake) Disarm() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed || f.disarmed {
		return ErrClosed
	}
	f.disarmed = true
	return nil
}

// Close records a close.
func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// Feeds is the number of successful feeds so far.
func (f *Fake) Feeds() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.feeds
}

// Disarmed reports whether Disarm was called.
func (f *Fake) Disarmed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.disarmed
}

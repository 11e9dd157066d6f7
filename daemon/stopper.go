package daemon

import (
	"log/slog"
	"sync"
	"time"
)

// PackageStopper stops every package running on this node. The daemon calls
// it when the membership machine decides the node must self-fence (lost
// quorum, or no own quorum-disk write for too long), before it stops
// feeding the watchdog, and on an orderly shutdown. StopAll must return at
// once: stopping happens in the background, and the watchdog fires at its
// deadline whether or not the packages stopped in time. The channel it
// returns receives nil once every package is confirmed stopped, or the
// error that keeps one from stopping; an orderly shutdown disarms the
// watchdog only after nil.
type PackageStopper interface {
	StopAll(reason string) <-chan error
}

// StopRecord is one stop request, as the status socket shows it.
type StopRecord struct {
	// At is the local monotonic time of the request (time since start)
	// and Time its wall-clock time.
	At     time.Duration `json:"at_ns"`
	Time   time.Time     `json:"time"`
	Reason string        `json:"reason"`
}

// RecordingStopper is the stopper of a node that runs no package manager
// yet: it has no packages to stop, so it records each request, logs it,
// and shows it in the status so an operator (or a test) can see the node
// decided to stop.
type RecordingStopper struct {
	log   *slog.Logger
	now   func() time.Duration
	mu    sync.Mutex
	stops []StopRecord
}

var _ PackageStopper = (*RecordingStopper)(nil)

// NewRecordingStopper returns a stopper that records requests at the times
// given by now.
func NewRecordingStopper(log *slog.Logger, now func() time.Duration) *RecordingStopper {
	return &RecordingStopper{log: log, now: now}
}

// StopAll records the request; with no package to stop, every package is
// stopped at once.
func (s *RecordingStopper) StopAll(reason string) <-chan error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stops = appendRing(s.stops, StopRecord{At: s.now(), Time: time.Now().Round(time.Microsecond), Reason: reason})
	s.log.Warn("stopping every package on this node", "reason", reason, "packages", "none configured on this node")
	done := make(chan error, 1)
	done <- nil
	return done
}

// Stops returns the requests so far.
func (s *RecordingStopper) Stops() []StopRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]StopRecord(nil), s.stops...)
}

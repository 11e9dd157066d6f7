// Package journal keeps a node's cluster events (membership, quorum,
// fencing, takeovers, package steps) in a bounded local file that outlives
// the daemon, and hands each event to an optional notify command.
//
// # Format and bounds
//
// One JSON object per line (Event), appended to the journal file; when the
// next line would take the file past MaxBytes, the file is renamed to
// FILE.1 (replacing the previous one) and a new file begins, so the
// journal never takes more than about 2 x MaxBytes and always holds the
// newest events. Seq numbers every event of a node, across daemon
// restarts: Open reads the last one back. A line torn by a crash is
// skipped by Read (and counted), never taken for an event.
//
// Why a plain append-only file rather than an embedded database (bbolt):
// the events are written once and read in order, a torn tail is the only
// damage a crash can do and is easy to recognise, `tail -f` and `jq` read
// the file as it is, and the daemon locks all its memory (mlockall), which
// would pin every page of a memory-mapped database.
//
// # Never in the way
//
// Append never blocks and never does I/O: the daemon calls it from its
// event loop, which must not wait for a local disk. Events go through a
// bounded queue to a writer goroutine; when the queue is full, events are
// dropped and counted, and the next event written carries the count
// (Event.DroppedBefore). The notify command runs on a goroutine of its
// own, one event at a time, each run bounded by its timeout, with a
// bounded queue of its own: a slow or hanging command delays only later
// notifications, never the journal or the daemon.
package journal

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Event is one journal entry.
type Event struct {
	// Seq numbers this node's events, across restarts.
	Seq uint64 `json:"seq"`
	// Time is the wall clock when the event happened; Uptime the daemon's
	// local monotonic time (for ordering one incarnation's events).
	Time   time.Time     `json:"time"`
	Uptime time.Duration `json:"uptime_ns"`
	// Node and Incarnation say which daemon wrote it.
	Node        string `json:"node"`
	Incarnation string `json:"incarnation,omitempty"`
	// Kind names the event: quorum-gained, quorum-lost, membership-changed,
	// self-fence, fence-requested, fenced, fence-failed, takeover-allowed,
	// daemon-started, daemon-stopping, ...
	Kind string `json:"kind"`
	// Severity is info, warn or error.
	Severity string `json:"severity"`
	// Peer is the node the event is about, if any, and PeerIncarnation
	// the incarnation of it the event concerns (a fence, a takeover, a
	// restart), as Incarnation is written.
	Peer            string        `json:"peer,omitempty"`
	PeerIncarnation string        `json:"peer_incarnation,omitempty"`
	Members         []string      `json:"members,omitempty"`
	Epoch           uint64        `json:"epoch,omitempty"`
	Package         string        `json:"package,omitempty"`
	Reason          string        `json:"reason,omitempty"`
	Error           string        `json:"error,omitempty"`
	Took            time.Duration `json:"took_ns,omitempty"`
	// DroppedBefore counts the events dropped (queue full) just before
	// this one.
	DroppedBefore uint64 `json:"dropped_before,omitempty"`
}

// Options configure a Journal.
type Options struct {
	// MaxBytes bounds the journal file before it is rotated to FILE.1
	// (default DefaultMaxBytes).
	MaxBytes int64
	// Queue is how many events may wait for the writer (default 1024).
	Queue int
	// Notify is the command run for every event, the event as one JSON
	// line on its standard input; nil for none.
	Notify []string
	// NotifyTimeout bounds one run of Notify (default 10s); a run past it
	// is killed with its process group.
	NotifyTimeout time.Duration
	// Log receives the journal's own problems (write failures, notify
	// failures), each kind logged when it changes.
	Log *slog.Logger
}

// ErrInUse is returned by Open for a journal another process writes.
var ErrInUse = errors.New("in use by another daemon (each node needs a journal of its own)")

// DefaultMaxBytes is the default bound of the journal file: some tens of
// thousands of events.
const DefaultMaxBytes = 8 << 20

// Journal appends events to a file; see the package doc.
type Journal struct {
	path string
	opt  Options
	log  *slog.Logger

	mu     sync.Mutex // Append's sequence and the closed flag
	seq    uint64
	closed bool

	q       chan []byte
	nq      chan []byte
	dropped atomic.Uint64 // dropped since the last queued event
	lost    atomic.Uint64 // dropped in all (journal and notify)
	done    chan struct{}
	ndone   chan struct{}

	f    *os.File
	size int64

	// hold, when set (tests), keeps the writer from starting until closed.
	hold chan struct{}
}

// Open opens (creating it and its directory, 0700) the journal at path and
// starts its writer. It reads the last sequence number back from the file
// or, when the file is empty, from FILE.1.
func Open(path string, opt Options) (*Journal, error) { return open(path, opt, nil) }

func open(path string, opt Options, hold chan struct{}) (*Journal, error) {
	if opt.MaxBytes <= 0 {
		opt.MaxBytes = DefaultMaxBytes
	}
	if opt.Queue <= 0 {
		opt.Queue = 1024
	}
	if opt.NotifyTimeout <= 0 {
		opt.NotifyTimeout = 10 * time.Second
	}
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("event journal: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("event journal: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("event journal: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("event journal %s: not a regular file", path)
	}
	// One writer per journal: a second daemon given the same file (two
	// nodes on one machine sharing [events] journal) is refused.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("event journal %s: %w", path, ErrInUse)
		}
		return nil, fmt.Errorf("event journal %s: lock: %w", path, err)
	}
	// A crash may have torn the last line: end it, so that the next event
	// starts a line of its own (Read skips the torn one).
	if fi.Size() > 0 {
		last := make([]byte, 1)
		if r, err := os.Open(path); err == nil {
			_, err = r.ReadAt(last, fi.Size()-1)
			r.Close()
			if err == nil && last[0] != '\n' {
				if _, err := f.Write([]byte{'\n'}); err != nil {
					f.Close()
					return nil, fmt.Errorf("event journal %s: ending a torn last line: %w", path, err)
				}
			}
		}
	}
	size := int64(0)
	if st, err := f.Stat(); err == nil {
		size = st.Size()
	}
	j := &Journal{path: path, opt: opt, log: log, q: make(chan []byte, opt.Queue), done: make(chan struct{}), f: f, size: size, hold: hold}
	for _, p := range []string{path, path + ".1"} {
		if s, ok := lastSeq(p); ok {
			j.seq = s
			break
		}
	}
	if len(opt.Notify) > 0 {
		j.nq = make(chan []byte, opt.Queue)
		j.ndone = make(chan struct{})
		go j.notifier()
	}
	go j.writer()
	return j, nil
}

// Path is the journal file.
func (j *Journal) Path() string { return j.path }

// Dropped counts the events dropped because a queue was full.
func (j *Journal) Dropped() uint64 { return j.lost.Load() }

// Append numbers e and queues it; it never blocks. A nil journal does
// nothing.
func (j *Journal) Append(e Event) {
	if j == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return
	}
	j.seq++
	e.Seq = j.seq
	e.DroppedBefore = j.dropped.Load()
	line, err := json.Marshal(e)
	if err != nil {
		// Every field is a plain value.
		panic(fmt.Sprintf("journal: encoding an event: %v", err))
	}
	line = append(line, '\n')
	select {
	case j.q <- line:
		j.dropped.Store(0)
	default:
		j.dropped.Add(1)
		j.lost.Add(1)
	}
	if j.nq != nil {
		select {
		case j.nq <- line:
		default:
			j.lost.Add(1)
		}
	}
}

// Close writes what is queued, waits at most wait for the writer and
// the notify command, and closes the file.
func (j *Journal) Close(wait time.Duration) error {
	if j == nil {
		return nil
	}
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	close(j.q)
	if j.nq != nil {
		close(j.nq)
	}
	j.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-j.done:
	case <-t.C:
		return errors.New("event journal: the writer did not finish in time")
	}
	if j.ndone != nil {
		select {
		case <-j.ndone:
		case <-t.C:
		}
	}
	return nil
}

func (j *Journal) writer() {
	defer close(j.done)
	defer func() { _ = j.f.Close() }()
	if j.hold != nil {
		<-j.hold
	}
	var lastErr string
	for line := range j.q {
		err := j.write(line)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if msg != lastErr && err != nil {
			j.log.Warn("event journal write failed (repeats are not logged)", "path", j.path, "err", err)
		}
		lastErr = msg
	}
}

func (j *Journal) write(line []byte) error {
	if j.size > 0 && j.size+int64(len(line)) > j.opt.MaxBytes {
		if err := j.rotate(); err != nil {
			return err
		}
	}
	n, err := j.f.Write(line)
	j.size += int64(n)
	return err
}

// rotate renames the journal to FILE.1 and starts a new one.
func (j *Journal) rotate() error {
	if err := os.Rename(j.path, j.path+".1"); err != nil {
		return fmt.Errorf("rotate: %w", err)
	}
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("rotate: %w", err)
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	_ = j.f.Close()
	j.f, j.size = f, 0
	return nil
}

func (j *Journal) notifier() {
	defer close(j.ndone)
	var lastErr string
	for line := range j.nq {
		err := runNotify(j.opt.Notify, line, j.opt.NotifyTimeout)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if msg != lastErr && err != nil {
			j.log.Warn("event notify command failed (repeats are not logged)", "command", j.opt.Notify[0], "err", err)
		}
		lastErr = msg
	}
}

// runNotify runs the command with the event on its standard input, in a
// process group of its own that is killed when the timeout passes.
func runNotify(argv []string, line []byte, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(line)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		return fmt.Errorf("killed after %v", timeout)
	}
	if err != nil {
		if s := bytes.TrimSpace(out.Bytes()); len(s) > 0 {
			if len(s) > 200 {
				s = s[:200]
			}
			return fmt.Errorf("%w: %s", err, s)
		}
		return err
	}
	return nil
}

// lastSeq returns the sequence number of the last whole event in the file.
func lastSeq(path string) (uint64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return 0, false
	}
	// The last few lines are enough: read the tail.
	off := max(0, fi.Size()-64<<10)
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return 0, false
	}
	var seq uint64
	found := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e struct {
			Seq uint64 `json:"seq"`
		}
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Seq > 0 {
			seq, found = e.Seq, true
		}
	}
	return seq, found
}

// Read returns the journal's events, oldest first (FILE.1, then FILE), and
// how many lines could not be read as events (a line torn by a crash).
func Read(path string) ([]Event, int, error) {
	var out []Event
	bad := 0
	for i, p := range []string{path + ".1", path} {
		f, err := os.Open(p)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && (i == 0 || len(out) > 0) {
				continue
			}
			return nil, 0, fmt.Errorf("event journal: %w", err)
		}
		ev, b, err := decode(f)
		f.Close()
		if err != nil {
			return nil, 0, fmt.Errorf("event journal %s: %w", p, err)
		}
		out, bad = append(out, ev...), bad+b
	}
	return out, bad, nil
}

// decode reads events from r until EOF.
func decode(r io.Reader) ([]Event, int, error) {
	var out []Event
	bad := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Seq == 0 {
			bad++
			continue
		}
		out = append(out, e)
	}
	return out, bad, sc.Err()
}

package journal

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func ev(kind string) Event {
	return Event{Time: time.Unix(1700000000, 0).UTC(), Node: "n1", Kind: kind, Severity: "info"}
}

func mustOpen(t *testing.T, path string, opt Options) *Journal {
	t.Helper()
	j, err := Open(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func closeJ(t *testing.T, j *Journal) {
	t.Helper()
	if err := j.Close(10 * time.Second); err != nil {
		t.Fatal(err)
	}
}

func seqs(evs []Event) []uint64 {
	var s []uint64
	for _, e := range evs {
		s = append(s, e.Seq)
	}
	return s
}

// Events come back in order, and the numbering goes on after the daemon
// restarts (a new Open of the same file).
func TestAppendReadAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "events.jsonl")
	j := mustOpen(t, path, Options{})
	j.Append(ev("daemon-started"))
	j.Append(ev("quorum-gained"))
	closeJ(t, j)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("journal file: %v, %v; want mode 0600", fi, err)
	}
	j = mustOpen(t, path, Options{})
	j.Append(ev("daemon-started"))
	closeJ(t, j)
	evs, bad, err := Read(path)
	if err != nil || bad != 0 {
		t.Fatal(err, bad)
	}
	if got := seqs(evs); len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Fatalf("seqs %v, want 1 2 3", got)
	}
	if evs[1].Kind != "quorum-gained" || evs[1].Node != "n1" {
		t.Fatalf("event 2: %+v", evs[1])
	}
}

// The journal never grows past about twice its bound, keeps the newest
// events, and continues the numbering from the rotated file when the new
// one is still empty.
func TestRotationBoundsTheJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	const max = 4 << 10
	j := mustOpen(t, path, Options{MaxBytes: max, Queue: 10000})
	for i := 0; i < 1000; i++ {
		j.Append(ev("membership-changed"))
	}
	closeJ(t, j)
	for _, p := range []string{path, path + ".1"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > max {
			t.Fatalf("%s is %d bytes, bound %d", p, fi.Size(), max)
		}
	}
	evs, bad, err := Read(path)
	if err != nil || bad != 0 {
		t.Fatal(err, bad)
	}
	if len(evs) == 0 || evs[len(evs)-1].Seq != 1000 {
		t.Fatalf("newest event %v, want seq 1000", seqs(evs[len(evs)-1:]))
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Seq != evs[i-1].Seq+1 {
			t.Fatalf("gap in the kept events: %d then %d", evs[i-1].Seq, evs[i].Seq)
		}
	}
	// A rotation that left the new file empty: the numbering continues
	// from FILE.1.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	j = mustOpen(t, path, Options{MaxBytes: max})
	j.Append(ev("daemon-started"))
	closeJ(t, j)
	evs, _, _ = Read(path)
	if evs[len(evs)-1].Seq != 1001 {
		t.Fatalf("after a restart on an empty file: seq %d, want 1001", evs[len(evs)-1].Seq)
	}
}

// A line torn by a crash is skipped and counted, and the next daemon
// numbers on from the last whole event.
func TestTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	j := mustOpen(t, path, Options{})
	j.Append(ev("quorum-gained"))
	j.Append(ev("quorum-lost"))
	closeJ(t, j)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":3,"time":"2026-`)
	f.Close()
	evs, bad, err := Read(path)
	if err != nil || len(evs) != 2 || bad != 1 {
		t.Fatalf("Read: %d events, %d bad, %v; want 2 and 1", len(evs), bad, err)
	}
	j = mustOpen(t, path, Options{})
	j.Append(ev("daemon-started"))
	closeJ(t, j)
	evs, bad, _ = Read(path)
	if last := evs[len(evs)-1]; last.Seq != 3 || last.Kind != "daemon-started" {
		t.Fatalf("after the torn line: %+v (bad %d)", last, bad)
	}
}

// Append never blocks: with the writer stalled and the queue full, events
// are dropped and counted, and the next event written says how many.
func TestFullQueueDropsAndCounts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	hold := make(chan struct{})
	j, err := open(path, Options{Queue: 2}, hold)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		for i := 0; i < 5; i++ {
			j.Append(ev("peer-state"))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Append blocked on a stalled writer")
	}
	if j.Dropped() != 3 {
		t.Fatalf("dropped %d, want 3", j.Dropped())
	}
	close(hold)
	// The writer drains the two queued events; the next one carries the
	// count of the three dropped before it.
	for deadline := time.Now().Add(10 * time.Second); len(j.q) > 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the writer did not drain its queue")
		}
	}
	j.Append(ev("quorum-lost"))
	closeJ(t, j)
	evs, _, _ := Read(path)
	if len(evs) != 3 || evs[2].DroppedBefore != 3 || evs[2].Seq != 6 {
		t.Fatalf("events %+v; want 3 written, the last (seq 6) with dropped_before 3", evs)
	}
}

// The notify command gets every event as JSON on its standard input; one
// that hangs is killed at its timeout and the later events still reach it,
// while the journal itself is written regardless.
func TestNotifyCommand(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "notified")
	script := filepath.Join(dir, "notify.sh")
	os.WriteFile(script, []byte("#!/bin/sh\nline=$(cat)\ncase \"$line\" in *hang*) sleep 60;; esac\necho \"$line\" >> "+out+"\n"), 0o755)
	path := filepath.Join(dir, "events.jsonl")
	j := mustOpen(t, path, Options{Notify: []string{script}, NotifyTimeout: 300 * time.Millisecond})
	j.Append(ev("quorum-gained"))
	j.Append(ev("hang"))
	j.Append(ev("fenced"))
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(out)
		if strings.Count(string(b), "\n") >= 2 {
			if !strings.Contains(string(b), `"kind":"quorum-gained"`) || !strings.Contains(string(b), `"kind":"fenced"`) || strings.Contains(string(b), "hang") {
				t.Fatalf("notified:\n%s", b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("notify command did not see both events; got:\n%s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	closeJ(t, j)
	if evs, _, _ := Read(path); len(evs) != 3 {
		t.Fatalf("journal holds %d events, want 3", len(evs))
	}
}

// Follow sees what is appended after the event it is given, across a
// rotation.
func TestFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	j := mustOpen(t, path, Options{MaxBytes: 2 << 10, Queue: 10000})
	j.Append(ev("before-follow"))
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var got []uint64
	errc := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		close(started)
		errc <- Follow(ctx, path, 1, 10*time.Millisecond, func(e Event) error {
			mu.Lock()
			got = append(got, e.Seq)
			mu.Unlock()
			return nil
		})
	}()
	<-started
	time.Sleep(100 * time.Millisecond)
	for i := 0; i < 60; i++ {
		j.Append(ev("membership-changed"))
		time.Sleep(2 * time.Millisecond)
	}
	closeJ(t, j)
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 60 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".1"); err != nil {
		t.Fatalf("the test did not rotate: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 60 || got[0] != 2 || got[59] != 61 {
		t.Fatalf("followed %d events %v, want seqs 2..61", len(got), got)
	}
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("followed out of order or with a gap: %v", got)
		}
	}
}

// Two daemons never write one journal.
func TestSecondWriterRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	j := mustOpen(t, path, Options{})
	defer closeJ(t, j)
	if _, err := Open(path, Options{}); !errors.Is(err, ErrInUse) {
		t.Fatalf("second Open: %v, want ErrInUse", err)
	}
}

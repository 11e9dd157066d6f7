package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtcluster/mtc/journal"
)

func TestEventsCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	j, err := journal.Open(path, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	j.Append(journal.Event{Time: at, Node: "alpha", Kind: "quorum-gained", Severity: "info", Members: []string{"alpha", "beta", "gamma"}})
	j.Append(journal.Event{Time: at.Add(time.Second), Node: "alpha", Kind: "fenced", Severity: "warn", Peer: "gamma", Took: 120 * time.Millisecond})
	j.Append(journal.Event{Time: at.Add(2 * time.Second), Node: "alpha", Kind: "fence-failed", Severity: "error", Peer: "beta", Error: "lun /dev/sdc: path\x1b[2J failure"})
	if err := j.Close(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, "events", "--file", path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "quorum-gained") || !strings.Contains(lines[0], "members=alpha,beta,gamma") ||
		!strings.Contains(lines[1], "peer=gamma took=120ms") {
		t.Fatalf("text output:\n%s", out)
	}
	if strings.Contains(out, "\x1b") || !strings.Contains(lines[2], `\x1b[2J`) {
		t.Fatalf("a control character reached the terminal raw:\n%q", lines[2])
	}
	out, _ = runCLI(t, "events", "--file", path, "--kind", "fenced,fence-failed", "-n", "1", "--json")
	var e journal.Event
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &e); err != nil || e.Kind != "fence-failed" || e.Seq != 3 {
		t.Fatalf("--kind --last 1 --json: %q (%v)", out, err)
	}
	if _, err := runCLI(t, "events", "--file", filepath.Join(t.TempDir(), "none")); err == nil || !strings.Contains(err.Error(), "no event journal at") {
		t.Fatalf("missing journal: %v", err)
	}
	if _, err := runCLI(t, "events"); err == nil || !strings.Contains(err.Error(), "--config FILE") {
		t.Fatalf("no journal named: %v", err)
	}
}

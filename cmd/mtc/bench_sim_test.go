package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBenchSim(t *testing.T) {
	file := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	out, err := runCLI(t, "bench", "sim", "--histories", "10", "--nodes", "3", "--out", file)
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "| default |") || strings.HasPrefix(l, "| aggressive |") {
			rows++
			if !strings.HasSuffix(l, "| 0 |") {
				t.Errorf("incomplete histories: %s", l)
			}
		}
	}
	// One detection row per timing profile, and two two-node takeover
	// rows (the fence as arbiter, the tie-break lock) per profile.
	if rows != 2+4 {
		t.Fatalf("want one detection row and two takeover rows per timing profile:\n%s", out)
	}
	b, _ := os.ReadFile(file)
	if !strings.Contains(string(b), "<!-- bench:sim -->\n## Failure detection in the simulation") {
		t.Fatalf("report section not written:\n%s", b)
	}
	if _, err := runCLI(t, "bench", "sim", "--nodes", "1"); err == nil || !strings.Contains(err.Error(), "2 to 16") {
		t.Fatalf("a one-node cluster accepted: %v", err)
	}
}

func TestBenchSimPlacement(t *testing.T) {
	file := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	out, err := runCLI(t, "bench", "sim", "--placement", "--packages", "20", "--histories", "10", "--nodes", "2,3", "--out", file)
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "| default | ") || strings.HasPrefix(l, "| aggressive | ") {
			rows++
			if !strings.Contains(l, "| 3 | 20 | 10 |") || !strings.HasSuffix(l, "| 0 |") {
				t.Errorf("want 3 nodes, 20 packages, 10 histories, none incomplete: %s", l)
			}
		}
	}
	if rows != 2 {
		t.Fatalf("want one row per timing profile:\n%s", out)
	}
	b, _ := os.ReadFile(file)
	if !strings.Contains(string(b), "<!-- bench:sim-placement -->\n## Placement in the simulation") {
		t.Fatalf("report section not written:\n%s", b)
	}
}

package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// The shipped systemd unit runs commands and flags this binary has: every
// ExecStart line parses (the cluster file it names replaced by the
// example, which must exist for --config), and the unit declares the
// notification type the daemon speaks.
func TestSystemdUnitCommandsParse(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "..", "dist", "systemd", "mtc.service"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	example, err := filepath.Abs(filepath.Join("..", "..", "examples", "cluster.toml"))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	var execs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		keys[k] = v
		if strings.HasPrefix(k, "ExecStart") {
			execs = append(execs, v)
		}
	}
	if keys["Type"] != "notify" || keys["NotifyAccess"] != "main" {
		t.Fatalf("Type=%q NotifyAccess=%q, want notify and main: the daemon sends READY=1 itself", keys["Type"], keys["NotifyAccess"])
	}
	if keys["WatchdogSec"] == "" {
		t.Fatal("no WatchdogSec: the event loop's WATCHDOG=1 pings would go unchecked")
	}
	if len(execs) < 2 {
		t.Fatalf("ExecStart lines %q: want the check and the daemon", execs)
	}
	for _, e := range execs {
		args := strings.Fields(e)
		if args[0] != "/usr/sbin/mtc" {
			t.Fatalf("%q: runs %s, but make install puts mtc in /usr/sbin", e, args[0])
		}
		for i, a := range args {
			if a == "/etc/mtc/cluster.toml" {
				args[i] = example
			}
		}
		var cli CLI
		p, err := kong.New(&cli, kong.Name("mtc"), kong.Exit(func(int) { t.Fatalf("%q: exits while parsing", e) }))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Parse(args[1:]); err != nil {
			t.Errorf("unit line %q does not parse: %v", e, err)
		}
	}
}

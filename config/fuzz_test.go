package config

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// FuzzParse checks that no input makes Parse panic, and that its result is
// always either a Cluster that revalidates cleanly or a non-empty *Errors
// whose every entry has a message. The seed corpus is in
// testdata/fuzz/FuzzParse; run longer with
//
//	go test -run=^$ -fuzz=FuzzParse -fuzztime=1m ./config
func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	if ex, err := os.ReadFile("../examples/cluster.toml"); err == nil {
		f.Add(ex)
	}
	f.Add([]byte(line(33, "id = 2")))
	f.Add([]byte(base + "[timing]\nheartbeat_interval = \"400ms\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.toml", data)
		if err != nil {
			if c != nil {
				t.Fatalf("Parse returned a Cluster and an error")
			}
			var errs *Errors
			if !errors.As(err, &errs) || len(errs.List) == 0 {
				t.Fatalf("error is not a non-empty *Errors: %T %v", err, err)
			}
			for _, fe := range errs.List {
				if fe.Msg == "" || fe.Err == nil {
					t.Fatalf("error without message or sentinel: %+v", fe)
				}
				if fe.Line < 0 || fe.Line > strings.Count(string(data), "\n")+1 {
					t.Fatalf("line %d outside the document: %v", fe.Line, fe)
				}
			}
			return
		}
		if c == nil {
			t.Fatalf("Parse returned neither a Cluster nor an error")
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("a parsed Cluster fails Validate: %v", err)
		}
		if errs := c.Timing.Validate(); len(errs) != 0 {
			t.Fatalf("accepted invalid timing: %v", errs)
		}
		if len(c.Nodes) == 0 || len(c.Nodes) > MaxNodes {
			t.Fatalf("accepted %d nodes", len(c.Nodes))
		}
		for _, n := range c.Nodes {
			if c.QuorumDiskPath(n.Name) == "" {
				t.Fatalf("node %s has no quorum disk", n.Name)
			}
		}
		_ = c.Warnings()
	})
}

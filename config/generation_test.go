package config

import (
	"os"
	"strings"
	"testing"
)

func TestGeneration(t *testing.T) {
	data, err := os.ReadFile("../examples/cluster.toml")
	if err != nil {
		t.Fatal(err)
	}
	parse := func(s string) *Cluster {
		t.Helper()
		c, err := Parse("cluster.toml", []byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	base := parse(string(data)).Generation()
	if base == 0 {
		t.Fatal("generation is zero")
	}
	// Comments and blank lines do not change it.
	if g := parse("# a new comment\n\n" + string(data)).Generation(); g != base {
		t.Fatalf("a comment changed the generation: %x vs %x", g, base)
	}
	// Any changed value does.
	for _, edit := range [][2]string{
		{`failure_timeout = "1s"`, `failure_timeout = "2s"`},
		{`lan = "10.0.0.3"`, `lan = "10.0.0.4"`},
		{`port = 5406`, `port = 5407`},
		{`name = "gamma"`, `name = "gamma2"`},
	} {
		if !strings.Contains(string(data), edit[0]) {
			t.Fatalf("example has no %q", edit[0])
		}
		if g := parse(strings.Replace(string(data), edit[0], edit[1], 1)).Generation(); g == base {
			t.Errorf("%s -> %s left the generation unchanged", edit[0], edit[1])
		}
	}
}

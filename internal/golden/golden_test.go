package golden

import (
	"strings"
	"testing"
)

// Parsing and formatting a scenario file round-trips, and a command
// without its expected output is an error naming the line.
func TestParseFormat(t *testing.T) {
	for _, c := range []struct {
		src      string
		wantLast string
		lastLine int
	}{
		{"# comment\nnodes 3\n----\n   0.000s x\n\n# two\nrun 1s\n----\n\n# tail\n", "", 7},
		{"# comment\nnodes a b\n----\n\n# two\nstep\n----\nr1 a: x\n\n# tail\n", "r1 a: x\n", 6},
	} {
		cases, tail, err := Parse("t", []byte(c.src))
		if err != nil {
			t.Fatal(err)
		}
		if len(cases) != 2 || cases[1].Want != c.wantLast || cases[1].Line != c.lastLine {
			t.Fatalf("parsed %+v", cases)
		}
		if got := Format(cases, tail); got != c.src {
			t.Fatalf("round trip:\n%q\nwant\n%q", got, c.src)
		}
	}
	if _, _, err := Parse("t", []byte("nodes 3\nrun 1s\n")); err == nil || !strings.Contains(err.Error(), "t:1:") {
		t.Fatalf("missing ---- accepted: %v", err)
	}
}

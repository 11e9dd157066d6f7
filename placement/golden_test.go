package placement

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of the golden scenarios in testdata/")

// A golden scenario file is in the datadriven form of etcd-io/raft's
// testdata (as sim/testdata): each command is followed by a "----" line
// and the output it must cause, up to a blank line; '#' lines between
// commands are comments. After a deliberate change, regenerate with
// `go test ./placement -run Golden -rewrite` and review the diff.
type goldenCase struct {
	pre  []string
	cmd  string
	line int
	want string
}

func parseGolden(name string, b []byte) ([]goldenCase, []string, error) {
	var cases []goldenCase
	var pre []string
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	line := 0
	next := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		line++
		return sc.Text(), true
	}
	for {
		text, ok := next()
		if !ok {
			break
		}
		trimmed := strings.TrimSpace(text)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			pre = append(pre, text)
			continue
		}
		c := goldenCase{pre: pre, cmd: text, line: line}
		pre = nil
		sep, ok := next()
		if !ok || strings.TrimSpace(sep) != "----" {
			return nil, nil, fmt.Errorf("%s:%d: %q must be followed by a ---- line and its expected output", name, c.line, text)
		}
		var want strings.Builder
		for {
			out, ok := next()
			if !ok || strings.TrimSpace(out) == "" {
				break
			}
			want.WriteString(out + "\n")
		}
		c.want = want.String()
		cases = append(cases, c)
	}
	return cases, pre, sc.Err()
}

func formatGolden(cases []goldenCase, tail []string) string {
	var b strings.Builder
	for _, c := range cases {
		for _, p := range c.pre {
			b.WriteString(p + "\n")
		}
		b.WriteString(c.cmd + "\n----\n" + c.want + "\n")
	}
	for _, p := range tail {
		b.WriteString(p + "\n")
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}

// TestGolden runs every scenario of testdata/*.txt. A scenario must break
// no invariant of the checker and must settle after every step.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scenarios in testdata/")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			cases, tail, err := parseGolden(file, b)
			if err != nil {
				t.Fatal(err)
			}
			s := &script{}
			var all strings.Builder
			for i := range cases {
				c := &cases[i]
				got, err := s.do(c.cmd)
				if err != nil {
					t.Fatalf("%s:%d: %v", file, c.line, err)
				}
				all.WriteString(got)
				if *rewrite {
					c.want = got
					continue
				}
				if got != c.want {
					t.Errorf("%s:%d: %s: output differs (rerun with -rewrite and review the diff)\n--- got\n%s--- want\n%s", file, c.line, c.cmd, got, c.want)
				}
			}
			if *rewrite {
				if err := os.WriteFile(file, []byte(formatGolden(cases, tail)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if out := all.String(); strings.Contains(out, "VIOLATION") || strings.Contains(out, "NOT SETTLED") {
				t.Errorf("%s: the scenario breaks an invariant or does not settle:\n%s", file, out)
			}
		})
	}
}

// TestGoldenFormat: parsing and formatting round-trips, and a command
// without its expected output is an error naming the line.
func TestGoldenFormat(t *testing.T) {
	src := "# comment\nnodes a b\n----\n\n# two\nstep\n----\nr1 a: x\n\n# tail\n"
	cases, tail, err := parseGolden("t", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != 2 || cases[1].want != "r1 a: x\n" || cases[1].line != 6 {
		t.Fatalf("parsed %+v", cases)
	}
	if got := formatGolden(cases, tail); got != src {
		t.Fatalf("round trip:\n%q\nwant\n%q", got, src)
	}
	if _, _, err := parseGolden("t", []byte("nodes a\nstep\n")); err == nil || !strings.Contains(err.Error(), "t:1:") {
		t.Fatalf("missing ---- accepted: %v", err)
	}
}

// Package golden reads, checks and rewrites the golden scenario files of
// the simulation (sim/testdata) and of placement (placement/testdata).
//
// A scenario file is in the datadriven form of etcd-io/raft's testdata:
// each command is followed by a "----" line and the output it must cause,
// up to a blank line; '#' lines between commands are comments.
//
//	# Node 3 dies.
//	crash 3
//	----
//	   3.000s n3 crash
//
// So an expectation sits right under the command that causes it and
// cannot drift from what is checked. After a deliberate change, a test
// run with -rewrite regenerates the outputs; review the diff.
package golden

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Case is one command of a scenario file with its expected output.
type Case struct {
	Pre  []string // comment and blank lines before the command
	Cmd  string
	Line int
	Want string
}

// Parse reads a scenario file into its cases and the lines after the last
// one.
func Parse(name string, b []byte) ([]Case, []string, error) {
	var cases []Case
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
		c := Case{Pre: pre, Cmd: text, Line: line}
		pre = nil
		sep, ok := next()
		if !ok || strings.TrimSpace(sep) != "----" {
			return nil, nil, fmt.Errorf("%s:%d: %q must be followed by a ---- line and its expected output", name, c.Line, text)
		}
		var want strings.Builder
		for {
			out, ok := next()
			if !ok || strings.TrimSpace(out) == "" {
				break
			}
			want.WriteString(out)
			want.WriteByte('\n')
		}
		c.Want = want.String()
		cases = append(cases, c)
	}
	return cases, pre, sc.Err()
}

// Format writes cases and tail back as a scenario file.
func Format(cases []Case, tail []string) string {
	var b strings.Builder
	for _, c := range cases {
		for _, p := range c.Pre {
			b.WriteString(p + "\n")
		}
		b.WriteString(c.Cmd + "\n----\n" + c.Want + "\n")
	}
	for _, p := range tail {
		b.WriteString(p + "\n")
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}

// Run plays every scenario file matching pattern, one subtest each:
// newScript gives a file its interpreter, whose output for each command
// must equal the expected one (or, with rewrite, replaces it in the file).
// check gets the whole output of a file and returns what is wrong with it
// beyond the expectations ("" for nothing).
func Run(t *testing.T, pattern string, rewrite bool, newScript func(file string) func(cmd string, line int) (string, error), check func(out string) string) {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no scenarios match %s", pattern)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			cases, tail, err := Parse(file, b)
			if err != nil {
				t.Fatal(err)
			}
			do := newScript(file)
			var all strings.Builder
			for i := range cases {
				c := &cases[i]
				got, err := do(c.Cmd, c.Line)
				if err != nil {
					t.Fatalf("%s:%d: %v", file, c.Line, err)
				}
				all.WriteString(got)
				if rewrite {
					c.Want = got
					continue
				}
				if got != c.Want {
					t.Errorf("%s:%d: %s: output differs (rerun with -rewrite and review the diff)\n--- got\n%s--- want\n%s", file, c.Line, c.Cmd, got, c.Want)
				}
			}
			if rewrite {
				if err := os.WriteFile(file, []byte(Format(cases, tail)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if msg := check(all.String()); msg != "" {
				t.Errorf("%s: %s:\n%s", file, msg, all.String())
			}
		})
	}
}

package main

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// runCLI runs mtc in-process with args and returns what it printed.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var cli CLI
	var out bytes.Buffer
	p, err := kong.New(&cli, kong.Name("mtc"), kong.Exit(func(int) {}),
		kong.BindTo(io.Writer(&out), (*io.Writer)(nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, err := p.Parse(args)
	if err != nil {
		return "", err
	}
	ctx.Bind(slog.New(slog.DiscardHandler), &cli.Globals)
	err = ctx.Run()
	return out.String(), err
}

// A mistyped command prints the one useful line and where to find the
// usage, not the whole usage, and exits with the usage status.
func TestUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"disk", "dupm"}, []string{`did you mean "dump"?`, "Run 'mtc disk --help' for usage."}},
		{[]string{"stauts"}, []string{`did you mean "status"?`, "Run 'mtc --help' for usage."}},
		{[]string{"disk", "dump"}, []string{"missing flags: --config=FILE", "Run 'mtc disk dump --help' for usage."}},
	} {
		var stdout, stderr bytes.Buffer
		code := run(c.args, &stdout, &stderr)
		if code != exitUsage {
			t.Errorf("%v: exit %d, want %d", c.args, code, exitUsage)
		}
		for _, w := range c.want {
			if !strings.Contains(stderr.String(), w) {
				t.Errorf("%v: stderr %q lacks %q", c.args, stderr.String(), w)
			}
		}
		if stdout.Len() != 0 || strings.Contains(stderr.String(), "Usage:") || strings.Count(stderr.String(), "\n") != 2 {
			t.Errorf("%v: printed more than the error and the hint:\nstdout %q\nstderr %q", c.args, stdout.String(), stderr.String())
		}
	}
}

func TestHelpDocumentsExitStatus(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--help"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("--help exits %d", code)
	}
	help := strings.Join(strings.Fields(stdout.String()), " ")
	for _, w := range []string{"Exit status: 0 success; 1 the command failed", "4 refused, nothing changed",
		"5 committed, but the goal not reached within --wait", "6 no daemon answered, or none could reach a quorate coordinator", "They are idempotent"} {
		if !strings.Contains(help, w) {
			t.Fatalf("--help does not document the exit status (%q):\n%s", w, stdout.String())
		}
	}
	// A command that fails exits 1 with its error.
	cfg, _ := testCluster(t, 1<<20)
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"disk", "dump", "--config", cfg, "--device", "/dev/null"}, &stdout, &stderr); code != exitFailed || !strings.HasPrefix(stderr.String(), "mtc: quorum disk /dev/null is a character device") {
		t.Fatalf("failing command exits %d: %s", code, stderr.String())
	}
}

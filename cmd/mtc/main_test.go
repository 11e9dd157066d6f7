package main

import (
	"bytes"
	"io"
	"log/slog"
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

package labkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// CmdError is a tool that ran and failed, or could not start.
type CmdError struct {
	Argv     []string
	ExitCode int // -1 when the command did not start or was killed
	Stderr   string
	Err      error
}

func (e *CmdError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = e.Err.Error()
	}
	return fmt.Sprintf("%s: exit %d: %s", strings.Join(e.Argv, " "), e.ExitCode, msg)
}

func (e *CmdError) Unwrap() error { return e.Err }

// Run runs argv[0] with the arguments argv[1:] and LC_ALL=C, and returns
// its standard output. A non-zero exit is a *CmdError.
func Run(ctx context.Context, argv ...string) (string, error) {
	if len(argv) == 0 {
		return "", errors.New("labkit.Run: empty argument vector")
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		ce := &CmdError{Argv: argv, ExitCode: -1, Stderr: stderr.String(), Err: err}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			ce.ExitCode = ee.ExitCode()
		}
		return stdout.String(), ce
	}
	return stdout.String(), nil
}

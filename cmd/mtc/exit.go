package main

import "errors"

// Exit statuses of mtc (documented in `mtc --help` and the README).
const (
	// exitOK: the command did what it was asked.
	exitOK = 0
	// exitFailed: the command ran and failed; the error says why.
	exitFailed = 1
	// exitUsage: the command line is wrong; nothing was done.
	exitUsage = 2
	// 3 is the internal watchdog-supervise command's: the process
	// watchdog fired (see watchdog.go).
)

// ExitError carries a specific process exit status with its error.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

func exitCode(err error) int {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return exitFailed
}

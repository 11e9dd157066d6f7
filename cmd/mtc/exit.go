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

	// exitRefused: a package or node command was refused and changed
	// nothing: an unknown package or node, a package in maintenance, an
	// intent placement rejected (or, for mtc plan, would reject).
	exitRefused = 4
	// exitNotDone: the cluster committed the command, but its goal (the
	// package running where asked, halted, the node drained) was not
	// reached within --wait; the cluster keeps working on it.
	exitNotDone = 5
	// exitNoQuorum: no daemon answered, or none could reach a quorate
	// coordinator to commit the command; nothing was committed.
	exitNoQuorum = 6
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

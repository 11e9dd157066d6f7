// Package labkit drives the lab's SAN from tests running inside the QEMU
// lab guest (see test/lab/README.md): it finds each simulated node's paths
// to each LUN, builds the per-node device-mapper paths used for fault
// injection, and wraps sg_persist, dmsetup and lvm.
//
// Every tool is run with an argument vector (never a shell string) and
// LC_ALL=C; a failure returns a *CmdError carrying the command line, its
// exit status and its standard error.
//
// Guarantees: Discover reads the SAN's shape from sysfs only, so it agrees
// with the kernel about which /dev/sdX is which node's path. The fault
// helpers change one node's path and no other.
//
// Non-guarantees: labkit is test tooling. It does not serialise concurrent
// callers on the same dm device and does not undo faults by itself: tests
// restore what they break (Path.Restore) in their cleanup.
package labkit

import (
	"os"
	"testing"
)

// EnvLab is the environment variable the guest's init sets to 1 when the
// lab tests run inside the lab.
const EnvLab = "MTC_LAB"

// InLab reports whether the process runs inside the lab guest.
func InLab() bool { return os.Getenv(EnvLab) == "1" }

// Require skips t unless it runs inside the lab guest. Lab tests need a
// kernel with LIO, iSCSI and device-mapper that the host does not have;
// `make lab-test` boots that kernel and runs them there, also in CI.
func Require(t testing.TB) {
	t.Helper()
	if !InLab() {
		t.Skipf("runs only inside the QEMU lab (%s=1 is set by the lab guest): run `make lab-test`", EnvLab)
	}
}

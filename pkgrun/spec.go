package pkgrun

import (
	"time"

	"github.com/mtcluster/mtc/lvm"
	"github.com/mtcluster/mtc/netres"
	"github.com/mtcluster/mtc/pkgrun/fsres"
	"github.com/mtcluster/mtc/pkgrun/service"
)

// Spec is one package, resolved and validated: every default applied,
// every path absolute, every relation between timeouts checked. The runner
// trusts it and does not validate it again.
type Spec struct {
	// Name is the package name, e.g. "orders-db".
	Name string
	// VolumeGroups are activated in this order, deactivated in reverse.
	VolumeGroups []lvm.VGSpec
	// Filesystems are mounted in this order (a mount point inside another
	// comes after it), unmounted in reverse.
	Filesystems []fsres.Filesystem
	// Addresses are added in this order and then announced.
	Addresses []netres.Address
	// Routes are added after the addresses.
	Routes []netres.Route
	// Scripts are the package's four scripts; nil ones are skipped.
	Scripts Scripts
	// Services are started in this order, after pre_start.
	Services []service.Spec
	// RunTimeout bounds the whole start plan; HaltTimeout the whole halt
	// (and a rollback). Zero means no bound.
	RunTimeout  time.Duration
	HaltTimeout time.Duration
}

// Scripts are a package's scripts. Each runs with MTC_PACKAGE=<name> and
// MTC_PHASE=<pre_start|post_start|pre_stop|post_stop> added to its
// environment.
type Scripts struct {
	PreStart, PostStart, PreStop, PostStop *service.Script
}

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

// MinHaltTimeout is the shortest halt_timeout that lets every part of the
// halt use its own bound: the pre_stop and post_stop scripts' timeouts,
// every service's halt timeout plus the time SIGKILL is given to take
// effect, and every filesystem's unmount timeout. The configuration layer
// refuses a package whose HaltTimeout is shorter, naming both.
func MinHaltTimeout(s Spec) time.Duration {
	var d time.Duration
	for _, sc := range []*service.Script{s.Scripts.PreStop, s.Scripts.PostStop} {
		if sc != nil {
			d += sc.Timeout
		}
	}
	for _, svc := range s.Services {
		if svc.Agent != nil {
			t := svc.Agent.StopTimeout
			if t == 0 {
				t = service.DefaultAgentTimeout
			}
			d += t
			continue
		}
		t := svc.HaltTimeout
		if t == 0 {
			t = service.DefaultHaltTimeout
		}
		d += t + service.KillGrace
	}
	for _, fs := range s.Filesystems {
		d += fs.UnmountTimeout
	}
	return d
}

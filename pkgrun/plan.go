package pkgrun

import (
	"context"
	"strings"

	"github.com/mtcluster/mtc/fence"
	"github.com/mtcluster/mtc/lvm"
	"github.com/mtcluster/mtc/netres"
	"github.com/mtcluster/mtc/pkgrun/fsres"
	"github.com/mtcluster/mtc/pkgrun/service"
)

// Volumes is the LVM edge (lvm.Manager).
type Volumes interface {
	CheckTakeover(ctx context.Context, vg lvm.VGSpec, proofs []fence.Proof) error
	Activate(ctx context.Context, vg lvm.VGSpec, proofs []fence.Proof) error
	Deactivate(ctx context.Context, vg lvm.VGSpec) error
}

// Filesystems is the mount edge (fsres.Manager).
type Filesystems interface {
	Mount(ctx context.Context, fs fsres.Filesystem) error
	Unmount(ctx context.Context, fs fsres.Filesystem) error
}

// Network is the address and route edge (netres.Manager).
type Network interface {
	AddAddress(ctx context.Context, a netres.Address) error
	RemoveAddress(ctx context.Context, a netres.Address) error
	Announce(ctx context.Context, a netres.Address) error
	AddRoute(ctx context.Context, r netres.Route) error
	RemoveRoute(ctx context.Context, r netres.Route) error
}

// Services is the supervisor edge (service.Supervisor).
type Services interface {
	Start(ctx context.Context, s service.Spec) error
	Stop(ctx context.Context, name string) error
}

var (
	_ Volumes     = (*lvm.Manager)(nil)
	_ Filesystems = (*fsres.Manager)(nil)
	_ Network     = (*netres.Manager)(nil)
	_ Services    = (*service.Supervisor)(nil)
)

// Step is one step of a start plan: Do, and Undo to reverse it (nil when
// there is nothing to reverse).
type Step struct {
	Name string
	Do   func(ctx context.Context) error
	Undo func(ctx context.Context) error
}

// Edges are the OS edges a plan drives.
type Edges struct {
	Volumes     Volumes
	Filesystems Filesystems
	Network     Network
	Services    Services
	// Scripts runs a script (service.RunScript over real or fake Procs).
	Scripts func(ctx context.Context, s service.Script) error
}

// script returns a step function running s with the package environment.
func (e Edges) script(pkg, phase string, s *service.Script, env ...string) func(context.Context) error {
	x := *s
	x.Name = phase
	x.Env = append(append([]string{"MTC_PACKAGE=" + pkg, "MTC_PHASE=" + phase}, env...), s.Env...)
	return func(ctx context.Context) error { return e.Scripts(ctx, x) }
}

// Plan builds the start plan of spec (see the package doc). proofs are
// the fencing proofs the caller holds (fence.Fencer.Fence); env is added
// to the environment of its scripts and services, before their own.
func Plan(spec Spec, e Edges, proofs []fence.Proof, env ...string) []Step {
	var steps []Step
	for _, vg := range spec.VolumeGroups {
		steps = append(steps, Step{Name: "proof " + vg.Name, Do: func(ctx context.Context) error {
			return e.Volumes.CheckTakeover(ctx, vg, proofs)
		}})
	}
	for _, vg := range spec.VolumeGroups {
		steps = append(steps, Step{Name: "activate " + vg.Name,
			Do:   func(ctx context.Context) error { return e.Volumes.Activate(ctx, vg, proofs) },
			Undo: func(ctx context.Context) error { return e.Volumes.Deactivate(ctx, vg) }})
	}
	for _, fs := range spec.Filesystems {
		steps = append(steps, Step{Name: "mount " + fs.MountPoint,
			Do:   func(ctx context.Context) error { return e.Filesystems.Mount(ctx, fs) },
			Undo: func(ctx context.Context) error { return e.Filesystems.Unmount(ctx, fs) }})
	}
	for _, a := range spec.Addresses {
		steps = append(steps, Step{Name: "address " + a.Prefix.String(),
			Do:   func(ctx context.Context) error { return e.Network.AddAddress(ctx, a) },
			Undo: func(ctx context.Context) error { return e.Network.RemoveAddress(ctx, a) }})
	}
	for _, r := range spec.Routes {
		steps = append(steps, Step{Name: "route " + r.String(),
			Do:   func(ctx context.Context) error { return e.Network.AddRoute(ctx, r) },
			Undo: func(ctx context.Context) error { return e.Network.RemoveRoute(ctx, r) }})
	}
	for _, a := range spec.Addresses {
		steps = append(steps, Step{Name: "announce " + a.Prefix.Addr().String(),
			Do: func(ctx context.Context) error { return e.Network.Announce(ctx, a) }})
	}
	if s := spec.Scripts.PreStart; s != nil {
		steps = append(steps, Step{Name: "pre_start", Do: e.script(spec.Name, "pre_start", s, env...)})
	}
	for _, svc := range spec.Services {
		if len(env) > 0 {
			svc.Env = append(append([]string{"MTC_PACKAGE=" + spec.Name}, env...), svc.Env...)
		}
		steps = append(steps, Step{Name: "service " + svc.Name,
			Do:   func(ctx context.Context) error { return e.Services.Start(ctx, svc) },
			Undo: func(ctx context.Context) error { return e.Services.Stop(ctx, svc.Name) }})
	}
	if s := spec.Scripts.PostStart; s != nil {
		steps = append(steps, Step{Name: "post_start", Do: e.script(spec.Name, "post_start", s, env...)})
	}
	return steps
}

// HaltPlan is the halt plan: pre_stop, the undo of every start step in
// reverse, post_stop. Its steps have no Undo.
func HaltPlan(spec Spec, e Edges) []Step {
	var steps []Step
	if s := spec.Scripts.PreStop; s != nil {
		steps = append(steps, Step{Name: "pre_stop", Do: e.script(spec.Name, "pre_stop", s)})
	}
	start := Plan(spec, e, nil)
	for i := len(start) - 1; i >= 0; i-- {
		if start[i].Undo != nil {
			steps = append(steps, Step{Name: undoName(start[i].Name), Do: start[i].Undo})
		}
	}
	if s := spec.Scripts.PostStop; s != nil {
		steps = append(steps, Step{Name: "post_stop", Do: e.script(spec.Name, "post_stop", s)})
	}
	return steps
}

// undoName names the reverse of a start step.
func undoName(name string) string {
	for _, p := range [][2]string{{"activate ", "deactivate "}, {"mount ", "unmount "}, {"address ", "remove address "}, {"route ", "remove route "}, {"service ", "stop service "}} {
		if rest, ok := strings.CutPrefix(name, p[0]); ok {
			return p[1] + rest
		}
	}
	return "undo " + name
}

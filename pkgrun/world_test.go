package pkgrun

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mtcluster/mtc/fence"
	"github.com/mtcluster/mtc/fence/prfake"
	"github.com/mtcluster/mtc/lvm"
	"github.com/mtcluster/mtc/netres"
	"github.com/mtcluster/mtc/pkgrun/fsres"
	"github.com/mtcluster/mtc/pkgrun/service"
	"github.com/mtcluster/mtc/quorum/ident"
)

// world is one node made of the fakes of every edge, with a fault counter
// shared by all of them: every change the fakes are asked for is counted,
// and the k-th fails.
type world struct {
	t     *testing.T
	net   *netres.Fake
	lvm   *lvm.Fake
	fs    *fsres.Fake
	procs *service.Fake
	sup   *service.Supervisor
	pkg   *Package

	mu      sync.Mutex
	ops     []string
	failAt  int    // fail the failAt-th change (0: none)
	failOp  string // or fail every change whose text contains failOp
	scripts []string
}

var errInjected = errors.New("injected failure")

// members is the cluster as the fakes' tests see it: alpha (this node),
// beta (fenced, not live) and gamma (live).
type members struct{}

func (members) NodeOfSystemID(id string) (string, bool) {
	switch id {
	case "alpha", "beta", "gamma":
		return id, true
	}
	return "", false
}
func (members) IsNode(n string) bool                 { _, ok := members{}.NodeOfSystemID(n); return ok }
func (members) Live(n string) bool                   { return n == "alpha" || n == "gamma" }
func (members) NodeID(n string) (ident.NodeID, bool) { id, ok := nodeIDs[n]; return id, ok }
func (members) LastIncarnation(n string) ident.Incarnation {
	return map[string]ident.Incarnation{"alpha": 1, "beta": 2, "gamma": 3}[n]
}

var nodeIDs = map[string]ident.NodeID{"alpha": 1, "beta": 2, "gamma": 3}

// devices are the LUNs of the package's VGs.
var devices = lvm.FakeDevices{Numbers: map[string]uint64{"/dev/mapper/orders": 0xfd00, "/dev/mapper/tagged": 0xfd01, "/dev/mapper/other": 0xfd02}}

// proof fences the last incarnation of node (by alpha, on the LUNs of both
// VGs) through fence.Fencer over the fake PR target, and returns its proof.
func proof(t testing.TB, node string) fence.Proof {
	t.Helper()
	ctx := context.Background()
	luns := []string{"/dev/mapper/orders", "/dev/mapper/tagged"}
	target := prfake.New(luns...)
	lunsOf := func(n ident.NodeID) []*fence.LUN {
		var out []*fence.LUN
		for _, l := range luns {
			out = append(out, &fence.LUN{Name: l, Paths: []fence.Path{fence.NewSCSIPath(l, fence.BackendFake, target.Port(l, fmt.Sprint(n)), nil)}})
		}
		return out
	}
	cl := uuid.MustParse("0b6a3c2e-51d4-4f8e-a7c9-3e2d1f0a9b8c")
	victim := nodeIDs[node]
	for _, n := range []ident.NodeID{1, victim} {
		if err := (&fence.Fencer{Cluster: cl, Self: n}).Unfence(ctx, lunsOf(n)); err != nil {
			t.Fatal(err)
		}
	}
	p, err := (&fence.Fencer{Cluster: cl, Self: 1}).Fence(ctx, victim, members{}.LastIncarnation(node), lunsOf(1))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (w *world) hit(op string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ops = append(w.ops, op)
	if (w.failAt > 0 && len(w.ops) == w.failAt) || (w.failOp != "" && strings.Contains(op, w.failOp)) {
		return fmt.Errorf("%s: %w", op, errInjected)
	}
	return nil
}

func (w *world) opsSince(n int) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.ops[n:]...)
}

func (w *world) nops() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.ops)
}

func testSpec() Spec {
	script := func(name string) *service.Script {
		return &service.Script{Argv: []string{"/etc/mtc/orders/" + name}, Timeout: time.Second}
	}
	return Spec{
		Name:         "orders",
		VolumeGroups: []lvm.VGSpec{{Name: "vgorders"}, {Name: "vgtagged", Activation: lvm.Tags}},
		Filesystems: []fsres.Filesystem{
			{Device: "/dev/vgorders/data", MountPoint: "/srv/orders", Type: "ext4", Options: "noatime", UnmountTimeout: 200 * time.Millisecond, KillHolders: true},
			{Device: "/dev/vgtagged/log", MountPoint: "/srv/orders/log", Type: "xfs", Fsck: fsres.FsckNever, UnmountTimeout: 200 * time.Millisecond, KillHolders: true},
		},
		Addresses: []netres.Address{
			{Prefix: netip.MustParsePrefix("10.0.0.50/24"), Interface: "eth0"},
			{Prefix: netip.MustParsePrefix("fd00::50/64"), Subnet: netip.MustParsePrefix("fd00::/64")},
		},
		Routes: []netres.Route{
			{Dst: netip.MustParsePrefix("192.168.7.0/24"), Gateway: netip.MustParseAddr("10.0.0.254"), Table: 100, Metric: 10},
		},
		Scripts:  Scripts{PreStart: script("pre_start"), PostStart: script("post_start"), PreStop: script("pre_stop"), PostStop: script("post_stop")},
		Services: []service.Spec{{Name: "db", Argv: []string{"ordersd", "--data", "/srv/orders"}, Restarts: 2, RestartDelay: time.Millisecond, HaltTimeout: 100 * time.Millisecond}},
		// Generous bounds: the fakes never wait.
		RunTimeout:  10 * time.Second,
		HaltTimeout: 10 * time.Second,
	}
}

// newWorld builds alpha: eth0 with fixed addresses in both families, two
// unowned VGs, and the package's spec.
func newWorld(t *testing.T, spec Spec) *world {
	w := &world{t: t}
	w.net = netres.NewFake()
	w.net.AddLink("eth0", "02:00:00:00:00:01", "10.0.0.1/24", "fd00::1/64")
	w.net.Fail = w.hit
	w.lvm = lvm.NewFake("alpha")
	w.lvm.AddVG("vgorders", "", nil, "data")
	w.lvm.AddVG("vgtagged", "", nil, "log")
	w.lvm.SetPVs("vgorders", "/dev/mapper/orders")
	w.lvm.SetPVs("vgtagged", "/dev/mapper/tagged")
	// Autoactivation is disabled at the first start for good; the worlds
	// start from that state so that a halt returns to the initial one.
	w.lvm.SetAutoActivation("vgorders", false)
	w.lvm.SetAutoActivation("vgtagged", false)
	w.lvm.Fail = w.hit
	w.fs = fsres.NewFake()
	w.fs.Fail = w.hit
	w.procs = service.NewFake(func(argv []string) service.Behavior {
		if err := w.hit("exec " + strings.Join(argv, " ")); err != nil {
			return service.Behavior{Err: err}
		}
		if strings.HasPrefix(argv[0], "/etc/mtc/") {
			w.mu.Lock()
			w.scripts = append(w.scripts, argv[0])
			w.mu.Unlock()
			return service.Behavior{}
		}
		return service.Behavior{Run: true}
	})
	w.sup = service.NewSupervisor(w.procs, spec.Name, nil)
	fsm := fsres.NewManager(w.fs, nil)
	fsm.Poll = time.Millisecond
	edges := Edges{
		Volumes:     lvm.NewManager(w.lvm, devices, "alpha", "alpha", members{}, nil),
		Filesystems: fsm,
		// One announcement: a background series would make the count of
		// changes, and so the fault injection, depend on timing (the series
		// is tested in netres).
		Network:  netres.NewManager(w.net, netres.Config{Announce: netres.AnnounceConfig{Count: 1}}),
		Services: w.sup,
		Scripts: func(ctx context.Context, s service.Script) error {
			return service.RunScript(ctx, w.procs, nil, s)
		},
	}
	w.pkg = New(spec, edges, Options{})
	w.sup.OnFailed = w.pkg.ServiceFailed
	return w
}

// render is the whole node's state.
func (w *world) render() string {
	parts := []string{w.net.Render(), w.lvm.Render(), w.fs.Render(), w.procs.Render()}
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "\n") + "\n"
}

func diff(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s:\n--- got\n%s--- want\n%s", what, got, want)
	}
}

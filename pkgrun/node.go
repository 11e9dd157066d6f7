package pkgrun

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/mtcluster/mtc/lvm"
	"github.com/mtcluster/mtc/netres"
	"github.com/mtcluster/mtc/pkgrun/fsres"
	"github.com/mtcluster/mtc/pkgrun/service"
)

// NodeConfig is what the real edges need to know about this node.
type NodeConfig struct {
	// Node is this node's cluster name.
	Node string
	// NetNS is the network namespace of the package addresses and
	// routes ("" for the runner's own).
	NetNS string
	// SystemID is this node's LVM system ID; "" asks lvm2
	// (lvm.LocalSystemID).
	SystemID string
	// Members is the cluster membership, for VG ownership.
	Members lvm.Members
	Network netres.Config
	Logger  *slog.Logger
}

// Node holds the real OS edges of this node, shared by its packages.
type Node struct {
	netOS *netres.Linux
	Net   *netres.Manager
	LVM   *lvm.Manager
	FS    *fsres.Manager
	Procs *service.Linux
	log   *slog.Logger
}

// NewNode opens the real edges: a netlink handle in cfg.NetNS, lvm2,
// mount(2), and the process supervisor (which makes this process a child
// subreaper). Close releases them.
func NewNode(ctx context.Context, cfg NodeConfig) (*Node, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	procs, err := service.NewLinux()
	if err != nil {
		return nil, err
	}
	sysID := cfg.SystemID
	if sysID == "" {
		if sysID, err = lvm.LocalSystemID(ctx, lvm.Exec{}); err != nil {
			return nil, fmt.Errorf("LVM system ID of this node: %w", err)
		}
	}
	netOS, err := netres.NewLinux(cfg.NetNS)
	if err != nil {
		return nil, err
	}
	cfg.Network.Logger = log.With("component", "netres")
	return &Node{
		netOS: netOS,
		Net:   netres.NewManager(netOS, cfg.Network),
		LVM:   lvm.NewManager(lvm.Exec{}, lvm.SysDevices{}, cfg.Node, sysID, cfg.Members, log.With("component", "lvm")),
		FS:    fsres.NewManager(fsres.Linux{}, log.With("component", "fsres")),
		Procs: procs,
		log:   log,
	}, nil
}

// Links is the link source of the node's namespace, for
// Package.WatchLinks.
func (n *Node) Links() LinkSource { return n.netOS }

// Package returns a runner for spec over the node's edges, with its own
// service supervisor, whose failures mark the package failed.
func (n *Node) Package(spec Spec, opts Options) *Package {
	log := n.log.With("component", "pkgrun")
	if opts.Logger == nil {
		opts.Logger = log
	}
	sup := service.NewSupervisor(n.Procs, spec.Name, log)
	p := New(spec, Edges{
		Volumes:     n.LVM,
		Filesystems: n.FS,
		Network:     n.Net,
		Services:    sup,
		Scripts: func(ctx context.Context, s service.Script) error {
			return service.RunScript(ctx, n.Procs, log.With("package", spec.Name), s)
		},
	}, opts)
	sup.OnFailed = p.ServiceFailed
	return p
}

// Close stops the announcements and releases the netlink handle.
func (n *Node) Close() error {
	n.Net.Close()
	return n.netOS.Close()
}

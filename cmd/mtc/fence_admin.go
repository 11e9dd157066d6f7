package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/fence"
	"github.com/mtcluster/mtc/fence/scsi"
	"github.com/mtcluster/mtc/quorum"
)

// fenceAdmin selects the cluster, this node and its quorum disk, whose
// slots tell whether daemons run.
type fenceAdmin struct {
	Config     string        `required:"" type:"existingfile" help:"Cluster configuration file." placeholder:"FILE"`
	Node       string        `help:"This node's name (default: the node named like this host)." placeholder:"NAME"`
	QuorumDisk string        `name:"quorum-disk" help:"Quorum disk to watch for running daemons, instead of this node's configured path." placeholder:"PATH"`
	Timeout    time.Duration `help:"Deadline of each PR command." default:"10s"`
}

// stdin is where confirmations are read, and openFenceLUN how LUNs are
// opened (tests replace both).
var (
	stdin        io.Reader = os.Stdin
	openFenceLUN           = fence.OpenLUN
)

func (a *fenceAdmin) load() (*config.Cluster, *config.Node, error) {
	cl, err := config.Load(a.Config)
	if err != nil {
		return nil, nil, err
	}
	name := a.Node
	if name == "" {
		if name, err = os.Hostname(); err != nil {
			return nil, nil, fmt.Errorf("host name: %w; pass --node NAME", err)
		}
	}
	n, ok := cl.NodeByName(name)
	if !ok {
		return nil, nil, fmt.Errorf("node %q is not in %s: pass --node with one of its node names", name, a.Config)
	}
	return cl, n, nil
}

// watchSlots watches the quorum disk's slots (those only selects, nil: all)
// for as long as a live daemon needs to show itself, and returns the slots
// that changed: nodes whose daemon runs.
func (a *fenceAdmin) watchSlots(out io.Writer, cl *config.Cluster, self *config.Node, only func(id int) bool, log *slog.Logger) ([]int, error) {
	path := a.QuorumDisk
	if path == "" {
		path = cl.QuorumDiskPath(self.Name)
	}
	dev, err := openQuorumDevice(path, 0, adminTimeout(cl), log)
	if err != nil {
		return nil, fmt.Errorf("%w; check --quorum-disk or the configured quorum disk", err)
	}
	defer dev.Close()
	ctx := context.Background()
	if _, err := diskhb.ReadHeader(ctx, dev, cl.UUID); err != nil {
		return nil, headerAdvice(ctx, dev, path, a.Config, err)
	}
	d, err := diskhb.Open(ctx, dev, diskhb.Expect{ClusterUUID: cl.UUID})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	h, lh := d.Header(), localHeader(cl)
	watch := max(h.WriterGoneAfter(), lh.WriterGoneAfter())
	every := max(min(h.HeartbeatInterval, lh.HeartbeatInterval)/2, time.Millisecond)
	fmt.Fprintf(out, "watching the quorum disk %s for %v to make sure no daemon that could be undercut runs...\n", path, watch.Round(time.Millisecond))
	changed, err := d.WatchSlots(ctx, watch, every, only)
	if err != nil {
		return nil, err
	}
	var ids []int
	for id := range changed {
		if only == nil || only(id) {
			ids = append(ids, id)
		}
	}
	sort.Ints(ids)
	return ids, nil
}

// fencer is this node's Fencer per the configuration.
func fencer(cl *config.Cluster, self *config.Node, log *slog.Logger) *fence.Fencer {
	t := scsi.Type(cl.Fence.ReservationType)
	if t == 0 {
		t = fence.DefaultType
	}
	return &fence.Fencer{Cluster: cl.UUID, Self: quorum.NodeID(self.ID), Type: t, APTPL: cl.Fence.APTPL, Log: log.With("component", "fence")}
}

// FenceRegisterCmd registers this node by hand.
type FenceRegisterCmd struct {
	fenceAdmin
}

// Run registers this node on every LUN it fences (the quorum disk and its
// data LUNs), as its daemon does at start: stale registrations of its key
// removed, registered on every path, reserved when nothing is held,
// verified. Refused while this node's slot changes: a running daemon
// registers itself, and this node may have been fenced for a reason.
func (c *FenceRegisterCmd) Run(out io.Writer, log *slog.Logger) error {
	cl, self, err := c.load()
	if err != nil {
		return err
	}
	running, err := c.watchSlots(out, cl, self, func(id int) bool { return id == self.ID }, log)
	if err != nil {
		return err
	}
	if len(running) > 0 {
		return fmt.Errorf("refusing to register: the quorum-disk slot of node %s (id %d) changes, so its daemon runs; it registers itself when it starts, and a fenced daemon must stop, not be registered again under it", self.Name, self.ID)
	}
	f := fencer(cl, self, log)
	var failed []string
	for _, name := range cl.FenceLUNs(self.Name) {
		lun, err := openFenceLUN(name, "")
		if err != nil {
			fmt.Fprintf(out, "%s: cannot open: %v\n", name, err)
			failed = append(failed, name)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
		err = f.Rejoin(ctx, []*fence.LUN{lun})
		cancel()
		lun.Close()
		if err != nil {
			fmt.Fprintf(out, "%s: not registered: %v\n", name, err)
			failed = append(failed, name)
			continue
		}
		fmt.Fprintf(out, "%s: registered node %s (key %v) on %d path(s), reservation held\n", name, self.Name, fence.NodeKey(cl.UUID, quorum.NodeID(self.ID)), len(lun.Paths))
	}
	if len(failed) > 0 {
		return fmt.Errorf("not registered on %s (see `mtc fence status --device %s`)", strings.Join(failed, ", "), failed[0])
	}
	return nil
}

// FenceClearCmd clears a LUN's registrations and reservation.
type FenceClearCmd struct {
	fenceAdmin
	Device []string `required:"" help:"LUN to clear (repeatable): a SCSI disk, an NVMe namespace, or a device-mapper device." placeholder:"DEV"`
	Yes    bool     `help:"Do not ask for confirmation."`
}

// errNotConfirmed: the operator did not confirm.
var errNotConfirmed = errors.New("not confirmed: nothing was changed")

// Run issues PERSISTENT RESERVE OUT, CLEAR on each device after making
// sure no daemon of the cluster runs: every slot of the quorum disk is
// watched, and any change refuses the clear (a live node would lose its
// registration, and a node fenced for a reason its fence). CLEAR must come
// from a registered nexus, so this node's key is registered first on the
// path that sends it.
func (c *FenceClearCmd) Run(out io.Writer, log *slog.Logger) error {
	cl, self, err := c.load()
	if err != nil {
		return err
	}
	running, err := c.watchSlots(out, cl, self, nil, log)
	if err != nil {
		return err
	}
	if len(running) > 0 {
		var who []string
		for _, id := range running {
			who = append(who, fmt.Sprintf("%d%s", id, nodeLabel(cl, id)))
		}
		return fmt.Errorf("refusing to clear: the quorum-disk slots of node(s) %s change, so their daemons run; clearing would drop their registrations and undo fences. Stop every daemon of the cluster first", strings.Join(who, ", "))
	}
	if !c.Yes {
		fmt.Fprintf(out, "This removes every registration and the reservation from %s: no node is fenced from it until the daemons register again. Type yes to go on: ", strings.Join(c.Device, ", "))
		line, _ := bufio.NewReader(stdin).ReadString('\n')
		if strings.TrimSpace(line) != "yes" {
			return errNotConfirmed
		}
	}
	own := fence.NodeKey(cl.UUID, quorum.NodeID(self.ID))
	for _, d := range c.Device {
		lun, err := openFenceLUN(d, "")
		if err != nil {
			return fmt.Errorf("--device %s: %w", d, err)
		}
		err = clearLUN(lun, own, c.Timeout)
		lun.Close()
		if err != nil {
			return fmt.Errorf("--device %s: %w", d, err)
		}
		fmt.Fprintf(out, "%s: cleared (no registrations, no reservation)\n", d)
	}
	return nil
}

// clearLUN registers own on the LUN's first path, sends CLEAR with it and
// reads back that nothing is left.
func clearLUN(l *fence.LUN, own fence.Key, timeout time.Duration) error {
	p := l.Paths[0]
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_ = p.TestUnitReady(ctx)
	if err := p.Out(ctx, scsi.RegisterAndIgnoreExisting, 0, scsi.OutParams{ServiceKey: uint64(own)}); err != nil {
		return fmt.Errorf("register %v on %s: %w", own, p.Name(), err)
	}
	if err := p.Out(ctx, scsi.Clear, 0, scsi.OutParams{Key: uint64(own)}); err != nil {
		return fmt.Errorf("clear on %s: %w", p.Name(), err)
	}
	keys, err := p.ReadKeys(ctx)
	if err != nil {
		return fmt.Errorf("read keys after the clear on %s: %w", p.Name(), err)
	}
	res, err := p.ReadReservation(ctx)
	if err != nil {
		return fmt.Errorf("read reservation after the clear on %s: %w", p.Name(), err)
	}
	if len(keys.Keys) != 0 || res.Held {
		return fmt.Errorf("%w: after CLEAR on %s, %d key(s) registered, reservation held %v", fence.ErrVerify, p.Name(), len(keys.Keys), res.Held)
	}
	return nil
}

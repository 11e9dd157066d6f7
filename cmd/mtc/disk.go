package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/diskhb"
)

// DiskCmd groups the quorum-disk tools. They talk to the disk directly, not
// to a daemon, so they work when no daemon runs (and while daemons run:
// they never write a slot that belongs to a live node).
type DiskCmd struct {
	Init      DiskInitCmd      `cmd:"" help:"Initialise (format) the quorum disk for this cluster."`
	Dump      DiskDumpCmd      `cmd:"" help:"Show the quorum disk: header, every slot with its age and checksum state, the tie-break lock."`
	ClearSlot DiskClearSlotCmd `cmd:"" name:"clear-slot" help:"Erase a node's slot (after replacing a node or a stale record); refused while that node is live."`
}

// diskTarget selects the quorum disk and how to reach it.
type diskTarget struct {
	Config string `required:"" type:"existingfile" help:"Cluster configuration file." placeholder:"FILE"`
	Device string `help:"Quorum disk device or file; overrides the configured path." placeholder:"PATH"`
	Node   string `help:"Use the quorum disk path configured for this node (default: the node named like this host)." placeholder:"NAME"`
}

func (t *diskTarget) load() (*config.Cluster, string, error) {
	c, err := config.Load(t.Config)
	if err != nil {
		return nil, "", err
	}
	if t.Device != "" {
		return c, t.Device, nil
	}
	name := t.Node
	if name == "" {
		if h, err := os.Hostname(); err == nil {
			if _, ok := c.NodeByName(h); ok {
				name = h
			}
		}
	} else if _, ok := c.NodeByName(name); !ok {
		return nil, "", fmt.Errorf("--node %q: no such node in %s", name, t.Config)
	}
	p := c.QuorumDisk.Path
	if name != "" {
		p = c.QuorumDiskPath(name)
	}
	if p == "" {
		return nil, "", fmt.Errorf("%s sets no quorum disk path for this host: pass --device PATH or --node NAME", t.Config)
	}
	return c, p, nil
}

// adminTimeout bounds every I/O of the tools: longer than the daemon's
// io_timeout (an operator's command is not latency-critical) but never
// unbounded, so a hung LUN gives an error, not a hung shell.
func adminTimeout(c *config.Cluster) time.Duration {
	return max(5*c.Timing.IOTimeout, 2*time.Second)
}

// openQuorumDevice opens a block device, or a regular file with the given
// sector size (0: the size recorded in an existing header, else 512).
func openQuorumDevice(path string, sectorSize int, timeout time.Duration, log *slog.Logger) (*diskhb.Device, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("quorum disk: %w", err)
	}
	var bd diskhb.BlockDevice
	switch {
	case fi.Mode()&os.ModeDevice != 0:
		bd, err = diskhb.OpenBlock(path)
		if err == nil && sectorSize != 0 && bd.SectorSize() != sectorSize {
			bd.Close()
			return nil, fmt.Errorf("quorum disk %s has %d-byte logical sectors; --sector-size applies to regular files only", path, bd.SectorSize())
		}
	case fi.Mode().IsRegular():
		if sectorSize == 0 {
			sectorSize = probeSectorSize(path)
		}
		bd, err = diskhb.OpenFile(path, sectorSize)
	default:
		return nil, fmt.Errorf("quorum disk %s is neither a block device nor a regular file", path)
	}
	if err != nil {
		return nil, fmt.Errorf("quorum disk: %w", err)
	}
	return diskhb.NewDevice(bd, timeout, log), nil
}

// probeSectorSize reads the sector size recorded in a file's header, if any.
func probeSectorSize(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 512
	}
	defer f.Close()
	b := make([]byte, 16)
	if _, err := io.ReadFull(f, b); err != nil || string(b[:8]) != "MTCQHDR1" {
		return 512
	}
	if ss := binary.LittleEndian.Uint32(b[12:]); ss == 4096 {
		return 4096
	}
	return 512
}

// DiskInitCmd formats the quorum disk.
type DiskInitCmd struct {
	diskTarget
	Slots      int  `default:"16" help:"Number of node slots (the largest node id the disk serves), 1 to 64."`
	SectorSize int  `help:"Logical sector size for a regular file: 512 or 4096 (block devices report their own)." placeholder:"BYTES"`
	Force      bool `help:"Overwrite an existing quorum disk header, of this or another cluster. Stop every node first."`
}

// Run formats the disk.
func (c *DiskInitCmd) Run(out io.Writer, log *slog.Logger) error {
	cl, path, err := c.load()
	if err != nil {
		return err
	}
	if c.SectorSize != 0 && c.SectorSize != 512 && c.SectorSize != 4096 {
		return fmt.Errorf("--sector-size %d: use 512 or 4096", c.SectorSize)
	}
	maxID := 0
	for _, n := range cl.Nodes {
		maxID = max(maxID, n.ID)
	}
	if c.Slots < maxID || c.Slots > diskhb.MaxSlots {
		return fmt.Errorf("--slots %d: must be between the largest node id (%d) and %d", c.Slots, maxID, diskhb.MaxSlots)
	}
	dev, err := openQuorumDevice(path, c.SectorSize, adminTimeout(cl), log)
	if err != nil {
		return err
	}
	defer dev.Close()
	ctx := context.Background()
	plan, err := diskhb.PlanFormat(ctx, dev)
	if err != nil {
		return err
	}
	h := diskhb.Header{
		ClusterUUID: cl.UUID, ClusterName: cl.Name, SectorSize: dev.SectorSize(), Slots: c.Slots,
		HeartbeatInterval: cl.Timing.HeartbeatInterval, IOTimeout: cl.Timing.IOTimeout,
		FailureTimeout: cl.Timing.FailureTimeout, WatchdogTimeout: cl.Timing.WatchdogTimeout,
		FormattedAt: time.Now(),
	}
	if err := diskhb.Format(ctx, dev, h, c.Force); err != nil {
		if errors.Is(err, diskhb.ErrWouldErase) {
			return fmt.Errorf("%s: %w", path, err)
		}
		return fmt.Errorf("initialise %s: %w", path, err)
	}
	if plan.Existing != nil || plan.ExistingErr != nil && !errors.Is(plan.ExistingErr, diskhb.ErrNotFormatted) {
		fmt.Fprintf(out, "erased %s\n", plan.Describe())
	}
	fmt.Fprintf(out, "initialised %s for cluster %q (%s): %d slots, %d-byte sectors, %d bytes used\n",
		path, cl.Name, cl.UUID, c.Slots, dev.SectorSize(), h.Layout().MinSize())
	fmt.Fprintf(out, "timings stored: heartbeat_interval=%v io_timeout=%v failure_timeout=%v watchdog_timeout=%v\n",
		h.HeartbeatInterval, h.IOTimeout, h.FailureTimeout, h.WatchdogTimeout)
	return nil
}

// DiskDumpCmd shows the quorum disk.
type DiskDumpCmd struct {
	diskTarget
	JSON   bool          `help:"Print JSON instead of a table."`
	Sample time.Duration `help:"How long to watch the slots to tell which are changing (default: the failure timeout)." placeholder:"DURATION"`
}

type dumpSlot struct {
	ID          int      `json:"id"`
	Node        string   `json:"node,omitempty"`
	Status      string   `json:"status"`
	Error       string   `json:"error,omitempty"`
	NameOnDisk  string   `json:"name_on_disk,omitempty"`
	Flags       []string `json:"flags,omitempty"`
	Incarnation string   `json:"incarnation,omitempty"`
	Seq         uint64   `json:"seq,omitempty"`
	Epoch       uint64   `json:"epoch,omitempty"`
	View        []int    `json:"view,omitempty"`
	Members     []int    `json:"members,omitempty"`
	// Changing is true when the sequence number changed while we watched.
	Changing bool `json:"changing"`
	// ChangedAfter is how long into the watch the first change was seen.
	ChangedAfter string `json:"changed_after,omitempty"`
	// WrittenAgo is by the writer's wall clock, for orientation only.
	WrittenAgo string `json:"written_ago_by_writer_clock,omitempty"`
}

type dumpOut struct {
	Device   string         `json:"device"`
	Header   *diskhb.Header `json:"header,omitempty"`
	Watched  string         `json:"watched"`
	TieBreak string         `json:"tie_break_lock"`
	Slots    []dumpSlot     `json:"slots"`
}

func bits(v uint64) []int {
	var out []int
	for i := range 64 {
		if v&(1<<i) != 0 {
			out = append(out, i+1)
		}
	}
	return out
}

// Run prints the dump.
func (c *DiskDumpCmd) Run(out io.Writer, log *slog.Logger) error {
	cl, path, err := c.load()
	if err != nil {
		return err
	}
	dev, err := openQuorumDevice(path, 0, adminTimeout(cl), log)
	if err != nil {
		return err
	}
	defer dev.Close()
	ctx := context.Background()
	h, err := diskhb.ReadHeader(ctx, dev, cl.UUID)
	if err != nil {
		return fmt.Errorf("%s: %w (is this the quorum disk of cluster %q? `mtc disk init` formats it)", path, err, cl.Name)
	}
	d, err := diskhb.Open(ctx, dev, diskhb.Expect{ClusterUUID: cl.UUID})
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	sample := c.Sample
	if sample <= 0 {
		sample = cl.Timing.FailureTimeout
	}
	first, err := d.ReadSlots(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	changed := make(map[int]time.Duration)
	for time.Since(start) < sample {
		time.Sleep(min(cl.Timing.HeartbeatInterval, sample/2+1))
		now, err := d.ReadSlots(ctx)
		if err != nil {
			return err
		}
		for i, r := range now {
			if _, done := changed[r.ID]; done {
				continue
			}
			a, b := first[i].Observation(), r.Observation()
			if b.Valid && (!a.Valid || a != b) {
				changed[r.ID] = time.Since(start)
			}
		}
	}
	last, err := d.ReadSlots(ctx)
	if err != nil {
		return err
	}
	res := dumpOut{Device: path, Header: &h, Watched: sample.String()}
	if l, err := d.ReadLock(ctx, diskhb.TieBreakLock); err != nil {
		res.TieBreak = "unknown: " + err.Error()
	} else if l.Free() {
		res.TieBreak = fmt.Sprintf("free (generation %d)", l.Generation)
	} else {
		res.TieBreak = fmt.Sprintf("held by node %d%s (incarnation %x, generation %d)", l.Owner, nodeLabel(cl, l.Owner), l.OwnerIncarnation, l.Generation)
	}
	for _, r := range last {
		s := dumpSlot{ID: r.ID}
		if n, ok := cl.NodeByID(r.ID); ok {
			s.Node = n.Name
		}
		switch {
		case r.Err != nil:
			s.Status = "unknown"
			s.Error = r.Err.Error()
		case r.Slot.Flags&diskhb.FlagEmpty != 0:
			s.Status = "empty"
		default:
			s.NameOnDisk = r.Slot.NodeName
			s.Flags = diskhb.FlagNames(r.Slot.Flags)
			s.Incarnation = fmt.Sprintf("%016x", r.Slot.Incarnation)
			s.Seq, s.Epoch = r.Slot.Seq, r.Slot.Epoch
			s.View, s.Members = bits(r.Slot.View), bits(r.Slot.Members)
			if !r.Slot.WrittenAt.IsZero() {
				s.WrittenAgo = time.Since(r.Slot.WrittenAt).Round(time.Millisecond).String()
			}
			s.Status = "stale"
		}
		if d, ok := changed[r.ID]; ok {
			s.Changing, s.ChangedAfter = true, d.Round(time.Millisecond).String()
			s.Status = "live"
		}
		if s.Node == "" && s.Status == "empty" {
			continue
		}
		res.Slots = append(res.Slots, s)
	}
	if c.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printDump(out, cl, res)
	return nil
}

func nodeLabel(cl *config.Cluster, id int) string {
	if n, ok := cl.NodeByID(id); ok {
		return " (" + n.Name + ")"
	}
	return ""
}

func printDump(out io.Writer, cl *config.Cluster, r dumpOut) {
	h := r.Header
	fmt.Fprintf(out, "device:      %s\n", r.Device)
	fmt.Fprintf(out, "cluster:     %s (%s), format version %d\n", h.ClusterName, h.ClusterUUID, diskhb.FormatVersion)
	fmt.Fprintf(out, "geometry:    %d slots, %d-byte sectors\n", h.Slots, h.SectorSize)
	fmt.Fprintf(out, "timings:     heartbeat_interval=%v io_timeout=%v failure_timeout=%v watchdog_timeout=%v\n",
		h.HeartbeatInterval, h.IOTimeout, h.FailureTimeout, h.WatchdogTimeout)
	if !h.FormattedAt.IsZero() {
		fmt.Fprintf(out, "formatted:   %s\n", h.FormattedAt.Format(time.RFC3339))
	}
	fmt.Fprintf(out, "tie-break:   %s\n", r.TieBreak)
	fmt.Fprintf(out, "slots (watched for %s; live = its counter changed while watched):\n", r.Watched)
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNODE\tSTATUS\tSEQ\tINCARNATION\tEPOCH\tMEMBERS\tFLAGS\tDETAIL")
	for _, s := range r.Slots {
		detail := s.Error
		if detail == "" && s.Changing {
			detail = "changed after " + s.ChangedAfter
		}
		if detail == "" && s.WrittenAgo != "" {
			detail = "written " + s.WrittenAgo + " ago by the writer's clock"
		}
		if s.NameOnDisk != "" && s.NameOnDisk != s.Node {
			detail = strings.TrimSpace(detail + " name on disk: " + s.NameOnDisk)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, dash(s.Node), s.Status, dashU(s.Seq), dash(s.Incarnation),
			dashU(s.Epoch), dash(joinInts(s.Members)), dash(strings.Join(s.Flags, ",")), detail)
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func dashU(v uint64) string {
	if v == 0 {
		return "-"
	}
	return strconv.FormatUint(v, 10)
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

// DiskClearSlotCmd erases one node's slot.
type DiskClearSlotCmd struct {
	diskTarget
	Target string `arg:"" name:"node" help:"Node name or id whose slot to clear."`
}

// Run clears the slot after making sure its node is not live: the slot is
// watched for the failure timeout plus two heartbeat intervals, and any
// change of its counter refuses the clear.
func (c *DiskClearSlotCmd) Run(out io.Writer, log *slog.Logger) error {
	cl, path, err := c.load()
	if err != nil {
		return err
	}
	id, err := strconv.Atoi(c.Target)
	if err != nil {
		n, ok := cl.NodeByName(c.Target)
		if !ok {
			return fmt.Errorf("clear-slot %q: no node of that name in %s (give a node name or a slot id)", c.Target, c.Config)
		}
		id = n.ID
	}
	dev, err := openQuorumDevice(path, 0, adminTimeout(cl), log)
	if err != nil {
		return err
	}
	defer dev.Close()
	ctx := context.Background()
	d, err := diskhb.Open(ctx, dev, diskhb.Expect{ClusterUUID: cl.UUID})
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if id < 1 || id > d.Header().Slots {
		return fmt.Errorf("clear-slot: slot %d does not exist (the disk has slots 1 to %d)", id, d.Header().Slots)
	}
	watch := cl.Timing.FailureTimeout + 2*cl.Timing.HeartbeatInterval
	first, err := d.ReadSlots(ctx)
	if err != nil {
		return err
	}
	f := first[id-1]
	if f.Err == nil && f.Slot.Flags&diskhb.FlagEmpty != 0 {
		fmt.Fprintf(out, "slot %d%s is already empty\n", id, nodeLabel(cl, id))
		return nil
	}
	fmt.Fprintf(out, "watching slot %d%s for %v to make sure its node is not running...\n", id, nodeLabel(cl, id), watch)
	deadline := time.Now().Add(watch)
	for time.Now().Before(deadline) {
		time.Sleep(cl.Timing.HeartbeatInterval)
		now, err := d.ReadSlots(ctx)
		if err != nil {
			return err
		}
		if a, b := f.Observation(), now[id-1].Observation(); b.Valid && a != b {
			return fmt.Errorf("refusing to clear slot %d%s: its node is live (sequence %d -> %d while watching); stop that node's daemon first",
				id, nodeLabel(cl, id), a.Seq, b.Seq)
		}
	}
	if err := d.ClearSlot(ctx, id); err != nil {
		return err
	}
	fmt.Fprintf(out, "cleared slot %d%s\n", id, nodeLabel(cl, id))
	return nil
}

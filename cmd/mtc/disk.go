package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/daemon"
	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/hbwire"
	"github.com/mtcluster/mtc/quorum"
)

// DiskCmd groups the quorum-disk tools. They talk to the disk directly, not
// to a daemon, so they work when no daemon runs (and while daemons run:
// they never write a slot that belongs to a live node).
type DiskCmd struct {
	Init      DiskInitCmd      `cmd:"" help:"Initialise (format) the quorum disk for this cluster; without --force only a device whose quorum area is all zero."`
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
	// config.Load refuses a FIFO or other non-regular file without
	// blocking (config.ErrNotRegular).
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

// origin says where the device path came from, for error messages.
func (t *diskTarget) origin() string {
	if t.Device != "" {
		return "--device"
	}
	return "the quorum disk path in " + t.Config + " (or pass --device PATH)"
}

// open opens the target's quorum disk (see openQuorumDevice).
func (t *diskTarget) open(c *config.Cluster, path string, sectorSize int, log *slog.Logger) (*diskhb.Device, error) {
	dev, err := openQuorumDevice(path, sectorSize, adminTimeout(c), log)
	if err != nil {
		return nil, fmt.Errorf("%w; check %s", err, t.origin())
	}
	return dev, nil
}

// adminTimeout bounds every I/O of the tools: longer than the daemon's
// io_timeout (an operator's command is not latency-critical) but never
// unbounded, so a hung LUN gives an error, not a hung shell.
func adminTimeout(c *config.Cluster) time.Duration {
	return max(5*c.Timing.IOTimeout, 2*time.Second)
}

// minQuorumDisk is the size of the smallest quorum disk (one slot, 512-byte
// sectors), below which a file cannot be one.
var minQuorumDisk = diskhb.Layout{SectorSize: 512, Slots: 1, StateAreas: true}.MinSize()

// openQuorumDevice opens a block device, or a regular file with the given
// sector size (0: the size recorded in an existing header, else 512). It
// stats the path first and opens nothing else, so a FIFO or a character
// device is refused without blocking.
func openQuorumDevice(path string, sectorSize int, timeout time.Duration, log *slog.Logger) (*diskhb.Device, error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("quorum disk %s does not exist: give the path of the shared block device (a SAN LUN), or of a regular file for tests (create one with `truncate -s 8M FILE`)", path)
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("quorum disk %s: permission denied: run as root", path)
	case err != nil:
		return nil, fmt.Errorf("quorum disk: %w", err)
	}
	var bd diskhb.BlockDevice
	switch m := fi.Mode(); {
	case m&os.ModeCharDevice != 0:
		return nil, fmt.Errorf("quorum disk %s is a character device, not a block device: give the path of the shared block device (a SAN LUN such as /dev/disk/by-id/...), or of a regular file for tests", path)
	case m&os.ModeDevice != 0:
		bd, err = diskhb.OpenBlock(path)
		if err == nil && sectorSize != 0 && bd.SectorSize() != sectorSize {
			bd.Close()
			return nil, fmt.Errorf("quorum disk %s has %d-byte logical sectors; --sector-size applies to regular files only", path, bd.SectorSize())
		}
	case m.IsRegular():
		if fi.Size() < minQuorumDisk {
			return nil, fmt.Errorf("quorum disk %s is a file of %d bytes, too small for a quorum disk (a 16-slot disk needs %d bytes): give the right path, or make the file larger with `truncate -s 8M %s`",
				path, fi.Size(), diskhb.Layout{SectorSize: 512, Slots: diskhb.DefaultSlots, StateAreas: true}.MinSize(), path)
		}
		if sectorSize == 0 {
			sectorSize = probeSectorSize(path)
		}
		bd, err = diskhb.OpenFile(path, sectorSize)
	case m.IsDir():
		return nil, fmt.Errorf("quorum disk %s is a directory: give the path of the shared block device, or of a regular file for tests", path)
	default:
		return nil, fmt.Errorf("quorum disk %s is neither a block device nor a regular file (%s): give the path of the shared block device", path, m.Type())
	}
	if err != nil {
		return nil, fmt.Errorf("quorum disk: %w", err)
	}
	return diskhb.NewDevice(bd, timeout, log), nil
}

// probeSectorSize reads the sector size recorded in a file's header (or a
// damaged header's), if any.
func probeSectorSize(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 512
	}
	defer f.Close()
	b := make([]byte, 512)
	if _, err := io.ReadFull(f, b); err != nil {
		return 512
	}
	if ss, ok := diskhb.HeaderSectorSize(b); ok {
		return ss
	}
	return 512
}

// headerAdvice explains why a device's header cannot be used and what to
// do about it: a blank device or one holding something else is not a
// quorum disk (yet); a damaged header very likely is one, possibly in use.
func headerAdvice(ctx context.Context, dev *diskhb.Device, path, configPath string, err error) error {
	switch {
	case errors.Is(err, diskhb.ErrDamagedHeader):
		return fmt.Errorf("%s: %w. This is very likely a quorum disk whose nodes may still be running: do not re-initialise it until every node of the cluster is stopped "+
			"(`mtc disk init --force` refuses while any slot changes); compare with the configuration, and check the device and its path", path, err)
	case errors.Is(err, diskhb.ErrNotFormatted):
		plan, perr := diskhb.PlanFormat(ctx, dev, diskhb.Header{})
		switch {
		case perr != nil:
		case plan.Blank():
			return fmt.Errorf("%s: %w: the device is blank; `mtc disk init --config %s` formats it", path, diskhb.ErrNotFormatted, configPath)
		case len(plan.Signatures) > 0:
			return fmt.Errorf("%s: %w: the device holds %s; check the device path: `mtc disk init --force` would erase it", path, diskhb.ErrNotFormatted, strings.Join(plan.Signatures, " and "))
		case plan.Records > 0:
			return fmt.Errorf("%s: %w: the device holds %s; nodes may still be running on it: do not re-initialise it before every node is stopped", path, diskhb.ErrNotFormatted, plan.Describe())
		}
		return fmt.Errorf("%s: %w (%v); check the device path: `mtc disk init --force` would erase it", path, diskhb.ErrNotFormatted, err)
	case errors.Is(err, diskhb.ErrForeignCluster):
		return fmt.Errorf("%s: %w: check the device path and the cluster uuid in %s", path, err, configPath)
	}
	return fmt.Errorf("%s: %w", path, err)
}

// esc renders a name read from the disk or the configuration for a
// terminal: as it is when every character is printable, else quoted with
// its control characters escaped, so a name cannot move the cursor or
// rewrite what the operator sees.
func esc(s string) string {
	if !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if !strconv.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// localHeader is a header carrying the local configuration's timing, for
// the watch arithmetic when the disk's own cannot be read.
func localHeader(c *config.Cluster) diskhb.Header {
	return diskhb.Header{HeartbeatInterval: c.Timing.HeartbeatInterval, IOTimeout: c.Timing.IOTimeout,
		FailureTimeout: c.Timing.FailureTimeout, WatchdogTimeout: c.Timing.WatchdogTimeout}
}

// DiskInitCmd formats the quorum disk.
type DiskInitCmd struct {
	diskTarget
	Slots      int  `default:"16" help:"Number of node slots (the largest node id the disk serves), 1 to 64."`
	SectorSize int  `help:"Logical sector size for a regular file: 512 or 4096 (block devices report their own)." placeholder:"BYTES"`
	Force      bool `help:"Erase a device that is not blank (a quorum disk of this or another cluster, a damaged one, a filesystem, data). Never erases a disk whose slots still change: stop every node first."`
}

// Run formats the disk. Without --force it writes only to a device whose
// quorum area is all zero; with --force it erases whatever is there, but
// never a disk whose slots change while watched.
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
	dev, err := c.open(cl, path, c.SectorSize, log)
	if err != nil {
		return err
	}
	defer dev.Close()
	ctx := context.Background()
	h := diskhb.Header{
		ClusterUUID: cl.UUID, ClusterName: cl.Name, SectorSize: dev.SectorSize(), Slots: c.Slots,
		HeartbeatInterval: cl.Timing.HeartbeatInterval, IOTimeout: cl.Timing.IOTimeout,
		FailureTimeout: cl.Timing.FailureTimeout, WatchdogTimeout: cl.Timing.WatchdogTimeout,
		FormattedAt: time.Now(),
	}
	plan, err := diskhb.FormatWith(ctx, dev, h, diskhb.FormatOptions{
		Force:         c.Force,
		WatchUnforced: true,
		OnWatch: func(p diskhb.FormatPlan, d time.Duration) {
			fmt.Fprintf(out, "%s is not blank: it holds %s\nwatching it for %v to see whether nodes are running on it...\n", path, p.Describe(), d.Round(time.Millisecond))
		},
	})
	switch {
	case errors.Is(err, diskhb.ErrWouldErase), errors.Is(err, diskhb.ErrInUse):
		return fmt.Errorf("%s: %w", path, err)
	case err != nil:
		return fmt.Errorf("initialise %s: %w", path, err)
	}
	if !plan.Blank() {
		fmt.Fprintf(out, "erased %s\n", plan.Describe())
	}
	fmt.Fprintf(out, "initialised %s for cluster %s (%s): %d slots, %d-byte sectors, %d bytes used\n",
		path, strconv.Quote(cl.Name), cl.UUID, c.Slots, dev.SectorSize(), diskhb.Layout{SectorSize: dev.SectorSize(), Slots: c.Slots, StateAreas: true}.MinSize())
	fmt.Fprintf(out, "timings stored: heartbeat_interval=%v io_timeout=%v failure_timeout=%v watchdog_timeout=%v\n",
		h.HeartbeatInterval, h.IOTimeout, h.FailureTimeout, h.WatchdogTimeout)
	return nil
}

// DiskDumpCmd shows the quorum disk.
type DiskDumpCmd struct {
	diskTarget
	JSON   bool          `help:"Print JSON instead of a table."`
	Sample time.Duration `help:"How long to watch the slots to tell which are changing (default: the failure timeout stored on the disk)." placeholder:"DURATION"`
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
	// Changing is true when the slot's sector changed while we watched.
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
	// State describes the cluster state area; Reports each node's report.
	State   string            `json:"cluster_state"`
	Reports map[string]string `json:"reports,omitempty"`
	Slots   []dumpSlot        `json:"slots"`
	// Warnings are inconsistencies between the disk and the configuration.
	Warnings []string `json:"warnings,omitempty"`
}

// dumpState describes the cluster state area and every configured node's
// report area.
func dumpState(ctx context.Context, d *diskhb.Disk, cl *config.Cluster, idx *hbwire.PackageIndex) (string, map[string]string) {
	sr, err := d.ReadState(ctx)
	switch {
	case errors.Is(err, diskhb.ErrNoStateArea):
		return "none: " + err.Error(), nil
	case err != nil:
		return "unknown: " + err.Error(), nil
	}
	writer := "mtc disk init"
	if w := sr.Record.Writer; w != 0 {
		writer = fmt.Sprintf("node %d%s (incarnation %016x, epoch %d)", w, nodeLabel(cl, w), sr.Record.Incarnation, sr.Record.Epoch)
	}
	state := fmt.Sprintf("generation %d in copy %d, %d bytes, written by %s", sr.Record.Generation, sr.Copy, len(sr.Record.Payload), writer)
	if p := sr.Problems[1-sr.Copy]; p != nil {
		state += fmt.Sprintf("; the other copy: %v", p)
	}
	name := func(id quorum.NodeID) string {
		if n, ok := cl.NodeByID(int(id)); ok {
			return n.Name
		}
		return fmt.Sprintf("node %d", id)
	}
	if desc, err := daemon.DescribeState(sr.Record.Payload, name); err != nil {
		state += fmt.Sprintf("; operator state unreadable: %v", err)
	} else {
		state += ": " + desc
	}
	reps := map[string]string{}
	for _, n := range cl.Nodes {
		if n.ID > d.Header().Slots {
			continue
		}
		r, err := d.ReadReport(ctx, n.ID)
		switch {
		case errors.Is(err, diskhb.ErrBlank):
			reps[n.Name] = "none yet"
		case err != nil:
			reps[n.Name] = "unknown: " + err.Error()
		default:
			reps[n.Name] = fmt.Sprintf("generation %d, %d bytes (incarnation %016x, epoch %d)", r.Generation, len(r.Payload), r.Incarnation, r.Epoch)
			if len(r.Payload) > 0 && idx != nil {
				if desc, err := daemon.DescribeReport(r.Payload, idx); err != nil {
					reps[n.Name] += fmt.Sprintf(": unreadable with this node's package files: %v", err)
				} else {
					reps[n.Name] += ": " + desc
				}
			}
		}
	}
	return state, reps
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
	dev, err := c.open(cl, path, 0, log)
	if err != nil {
		return err
	}
	defer dev.Close()
	ctx := context.Background()
	h, err := diskhb.ReadHeader(ctx, dev, cl.UUID)
	if err != nil {
		return headerAdvice(ctx, dev, path, c.Config, err)
	}
	d, err := diskhb.Open(ctx, dev, diskhb.Expect{ClusterUUID: cl.UUID})
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	sample := c.Sample
	if sample <= 0 {
		sample = h.FailureTimeout
	}
	changed, err := d.WatchSlots(ctx, sample, max(h.HeartbeatInterval/2, time.Millisecond), nil)
	if err != nil {
		return err
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
		switch _, known := cl.NodeByID(l.Owner); {
		case l.Owner > h.Slots:
			res.Warnings = append(res.Warnings, fmt.Sprintf("the tie-break lock names node %d as its holder, but the disk has %d slots, so no node %d can hold it: the lock record is corrupt or was written by a node of another layout", l.Owner, h.Slots, l.Owner))
		case !known:
			res.Warnings = append(res.Warnings, fmt.Sprintf("the tie-break lock is held by node %d, which is not in %s", l.Owner, c.Config))
		}
	}
	// The reports are read with this node's package files (nil when there
	// are none, or they do not validate: the reports are not decoded).
	var idx *hbwire.PackageIndex
	if pkgs, perr := config.LoadPackages(cl, config.PackagesDirOf(cl, c.Config), nil); perr == nil && len(pkgs) > 0 {
		idx, _ = daemon.PackageIndex(cl, pkgs)
	}
	res.State, res.Reports = dumpState(ctx, d, cl, idx)
	for _, r := range last {
		s := dumpSlot{ID: r.ID}
		if n, ok := cl.NodeByID(r.ID); ok {
			s.Node = n.Name
		}
		at, moved := changed[r.ID]
		switch {
		case r.Err != nil:
			s.Status = "unknown"
			s.Error = r.Err.Error()
		case r.Slot.Flags&^diskhb.FlagsDefined != 0 || r.Slot.Flags&diskhb.FlagEmpty != 0 && !r.Slot.Empty():
			s.Status = "invalid"
			s.Flags = diskhb.FlagNames(r.Slot.Flags)
			s.Error = fmt.Sprintf("flags %#x: not a record this format writes (undefined or contradictory flag bits)", r.Slot.Flags)
		case r.Slot.Empty():
			s.Status = "empty"
		default:
			s.Status = "stale"
		}
		if s.Status != "empty" && r.Err == nil {
			s.NameOnDisk = r.Slot.NodeName
			s.Flags = diskhb.FlagNames(r.Slot.Flags)
			s.Incarnation = fmt.Sprintf("%016x", r.Slot.Incarnation)
			s.Seq, s.Epoch = r.Slot.Seq, r.Slot.Epoch
			s.View, s.Members = bits(r.Slot.View), bits(r.Slot.Members)
			if !r.Slot.WrittenAt.IsZero() {
				s.WrittenAgo = time.Since(r.Slot.WrittenAt).Round(time.Millisecond).String()
			}
		}
		if moved {
			s.Changing, s.ChangedAfter = true, at.Round(time.Millisecond).String()
			if s.Status == "stale" {
				s.Status = "live"
			} else {
				// Something writes this slot, but not a record this
				// format reads as a heartbeat.
				s.Status = "changing"
			}
		}
		if s.Node == "" && s.Status == "empty" {
			continue
		}
		res.Slots = append(res.Slots, s)
	}
	for _, n := range cl.Nodes {
		if n.ID > h.Slots {
			res.Slots = append(res.Slots, dumpSlot{ID: n.ID, Node: n.Name, Status: "no slot",
				Error: fmt.Sprintf("the disk has %d slots", h.Slots)})
			res.Warnings = append(res.Warnings, fmt.Sprintf("node %s has id %d, but the disk has only %d slots: it cannot heartbeat on this disk; stop every node and re-initialise the disk with --slots %d or more",
				esc(n.Name), n.ID, h.Slots, n.ID))
		}
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
		return " (" + esc(n.Name) + ")"
	}
	return ""
}

func printDump(out io.Writer, cl *config.Cluster, r dumpOut) {
	h := r.Header
	fmt.Fprintf(out, "device:      %s\n", esc(r.Device))
	fmt.Fprintf(out, "cluster:     %s (%s), format version %d\n", esc(h.ClusterName), h.ClusterUUID, diskhb.FormatVersion)
	fmt.Fprintf(out, "geometry:    %d slots, %d-byte sectors\n", h.Slots, h.SectorSize)
	fmt.Fprintf(out, "timings:     heartbeat_interval=%v io_timeout=%v failure_timeout=%v watchdog_timeout=%v\n",
		h.HeartbeatInterval, h.IOTimeout, h.FailureTimeout, h.WatchdogTimeout)
	if !h.FormattedAt.IsZero() {
		fmt.Fprintf(out, "formatted:   %s\n", h.FormattedAt.Format(time.RFC3339))
	}
	fmt.Fprintf(out, "tie-break:   %s\n", r.TieBreak)
	fmt.Fprintf(out, "state:       %s\n", r.State)
	for _, n := range cl.Nodes {
		if rep, ok := r.Reports[n.Name]; ok {
			fmt.Fprintf(out, "  report of %s: %s\n", esc(n.Name), rep)
		}
	}
	fmt.Fprintf(out, "slots (watched for %s; live = its sector changed while watched):\n", r.Watched)
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNODE\tSTATUS\tSEQ\tINCARNATION\tEPOCH\tMEMBERS\tFLAGS\tDETAIL")
	for _, s := range r.Slots {
		detail := s.Error
		if s.Changing {
			detail = strings.TrimSpace(detail + " changed after " + s.ChangedAfter)
		}
		if detail == "" && s.WrittenAgo != "" {
			detail = "written " + s.WrittenAgo + " ago by the writer's clock"
		}
		if s.NameOnDisk != "" && s.NameOnDisk != s.Node {
			detail = strings.TrimSpace(detail + " name on disk: " + strconv.Quote(s.NameOnDisk))
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, dash(esc(s.Node)), s.Status, dashU(s.Seq), dash(s.Incarnation),
			dashU(s.Epoch), dash(joinInts(s.Members)), dash(strings.Join(s.Flags, ",")), esc(detail))
	}
	tw.Flush()
	for _, w := range r.Warnings {
		fmt.Fprintf(out, "warning: %s\n", esc(w))
	}
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

// Run clears the slot after making sure its node is not running: the slot
// is watched for the WriterGoneAfter of the disk header's timing (or of
// the local configuration's, if that is longer): a daemon that has not
// written its slot for that long has been reset by its watchdog. Any
// change of the slot's sector refuses the clear.
func (c *DiskClearSlotCmd) Run(out io.Writer, log *slog.Logger) error {
	cl, path, err := c.load()
	if err != nil {
		return err
	}
	id, err := strconv.Atoi(c.Target)
	if err != nil {
		n, ok := cl.NodeByName(c.Target)
		if !ok {
			return fmt.Errorf("clear-slot %s: no node of that name in %s (give a node name or a slot id)", strconv.Quote(c.Target), c.Config)
		}
		id = n.ID
	}
	dev, err := c.open(cl, path, 0, log)
	if err != nil {
		return err
	}
	defer dev.Close()
	ctx := context.Background()
	if _, err := diskhb.ReadHeader(ctx, dev, cl.UUID); err != nil {
		return headerAdvice(ctx, dev, path, c.Config, err)
	}
	d, err := diskhb.Open(ctx, dev, diskhb.Expect{ClusterUUID: cl.UUID})
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	h := d.Header()
	if id < 1 || id > h.Slots {
		return fmt.Errorf("clear-slot: slot %d does not exist (the disk has slots 1 to %d)", id, h.Slots)
	}
	first, err := d.ReadSlots(ctx)
	if err != nil {
		return err
	}
	if f := first[id-1]; f.Err == nil && f.Slot.Empty() {
		fmt.Fprintf(out, "slot %d%s is already empty\n", id, nodeLabel(cl, id))
		return nil
	}
	lh := localHeader(cl)
	watch := max(h.WriterGoneAfter(), lh.WriterGoneAfter())
	every := max(min(h.HeartbeatInterval, lh.HeartbeatInterval)/2, time.Millisecond)
	fmt.Fprintf(out, "watching slot %d%s for %v (the disk's failure_timeout %v and watchdog_timeout %v, with margin) to make sure its node is not running...\n",
		id, nodeLabel(cl, id), watch.Round(time.Millisecond), h.FailureTimeout, h.WatchdogTimeout)
	changed, err := d.WatchSlots(ctx, watch, every, func(i int) bool { return i == id })
	if err != nil {
		return err
	}
	if at, ok := changed[id]; ok {
		return fmt.Errorf("refusing to clear slot %d%s: it changed %v into the watch, so its node is running; stop that node's daemon first",
			id, nodeLabel(cl, id), at.Round(time.Millisecond))
	}
	if err := d.ClearSlot(ctx, id); err != nil {
		return err
	}
	fmt.Fprintf(out, "cleared slot %d%s\n", id, nodeLabel(cl, id))
	return nil
}

package labkit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// DMPath is a node's device-mapper path over one of its SAN paths
// (/dev/mapper/NODE-LUN, a linear map over the node's /dev/sdX). Tests do
// their I/O through it and inject faults into it; the other nodes' paths
// to the same LUN are untouched.
type DMPath struct {
	Name    string // dm name, e.g. node1-quorum
	Under   string // the SAN path it maps, e.g. /dev/sdb
	Sectors int64  // size in 512-byte sectors
}

// DMName is the device-mapper name of node's path to lun.
func DMName(node, lun string) string { return node + "-" + lun }

// Dev is the path of the dm device node.
func (p *DMPath) Dev() string { return "/dev/mapper/" + p.Name }

func (p *DMPath) linear() string { return fmt.Sprintf("0 %d linear %s 0", p.Sectors, p.Under) }

// OpenDMPath creates the linear dm device name over under, or returns the
// existing one as it is (possibly failed or hung: call Restore for a
// healthy path).
func OpenDMPath(ctx context.Context, name, under string) (*DMPath, error) {
	sectors, err := sectorsOf(under)
	if err != nil {
		return nil, err
	}
	p := &DMPath{Name: name, Under: under, Sectors: sectors}
	if _, err := Run(ctx, "dmsetup", "info", name); err == nil {
		return p, nil
	}
	if _, err := Run(ctx, "dmsetup", "create", name, "--table", p.linear()); err != nil {
		return nil, fmt.Errorf("create dm path %s over %s: %w", name, under, err)
	}
	// Without udev, dmsetup makes the /dev/mapper node itself (mknodes).
	if _, err := Run(ctx, "dmsetup", "mknodes", name); err != nil {
		return nil, fmt.Errorf("create dm path %s: %w", name, err)
	}
	return p, nil
}

func sectorsOf(dev string) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/sys/class/block", filepath.Base(dev), "size"))
	if err != nil {
		return 0, fmt.Errorf("size of %s: %w", dev, err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size of %s: %w", dev, err)
	}
	return n, nil
}

// load replaces the table and resumes the device, whether it was suspended
// or not: I/O queued while suspended continues against the new table.
func (p *DMPath) load(ctx context.Context, table string) error {
	if _, err := Run(ctx, "dmsetup", "reload", p.Name, "--table", table); err != nil {
		return fmt.Errorf("dm path %s: %w", p.Name, err)
	}
	if _, err := Run(ctx, "dmsetup", "resume", p.Name); err != nil {
		return fmt.Errorf("dm path %s: %w", p.Name, err)
	}
	return nil
}

// Fail switches the path to the error target: every I/O fails at once with
// EIO, as when a node loses its last path to the LUN.
//
//	dmsetup reload NAME --table "0 SECTORS error"; dmsetup resume NAME
func (p *DMPath) Fail(ctx context.Context) error {
	return p.load(ctx, fmt.Sprintf("0 %d error", p.Sectors))
}

// Delay maps the path through dm-delay: every read and write waits d
// before reaching the LUN.
//
//	dmsetup reload NAME --table "0 SECTORS delay SDX 0 MS"; dmsetup resume NAME
func (p *DMPath) Delay(ctx context.Context, d time.Duration) error {
	return p.load(ctx, fmt.Sprintf("0 %d delay %s 0 %d", p.Sectors, p.Under, d.Milliseconds()))
}

// Hang suspends the path: new I/O queues in the kernel and does not return
// until Resume or Restore, as on a LUN that stops answering.
//
//	dmsetup suspend --noflush NAME
func (p *DMPath) Hang(ctx context.Context) error {
	if _, err := Run(ctx, "dmsetup", "suspend", "--noflush", p.Name); err != nil {
		return fmt.Errorf("dm path %s: %w", p.Name, err)
	}
	return nil
}

// Resume ends a Hang: queued I/O proceeds.
func (p *DMPath) Resume(ctx context.Context) error {
	if _, err := Run(ctx, "dmsetup", "resume", p.Name); err != nil {
		return fmt.Errorf("dm path %s: %w", p.Name, err)
	}
	return nil
}

// Restore puts the plain linear map back and resumes: the path is healthy.
func (p *DMPath) Restore(ctx context.Context) error { return p.load(ctx, p.linear()) }

// Table returns the live table, as dmsetup table prints it.
func (p *DMPath) Table(ctx context.Context) (string, error) {
	out, err := Run(ctx, "dmsetup", "table", p.Name)
	if err != nil {
		return "", fmt.Errorf("dm path %s: %w", p.Name, err)
	}
	return strings.TrimSpace(out), nil
}

// Remove deletes the dm device.
func (p *DMPath) Remove(ctx context.Context) error {
	if _, err := Run(ctx, "dmsetup", "remove", p.Name); err != nil {
		return fmt.Errorf("dm path %s: %w", p.Name, err)
	}
	return nil
}

// TargetDM is the storage behind the target for lun: the linear dm map
// san-LUN over the virtio disk with serial lab-LUN, on which LIO's fileio
// backstore sits (test/lab/image/san.sh). Delay on it keeps every
// command's I/O in flight inside the target; Restore it after.
func TargetDM(ctx context.Context, sysfs, lun string) (*DMPath, error) {
	disks, err := filepath.Glob(filepath.Join(sysfs, "block", "vd*"))
	if err != nil {
		return nil, err
	}
	for _, d := range disks {
		b, err := os.ReadFile(filepath.Join(d, "serial"))
		if err == nil && strings.TrimSpace(string(b)) == "lab-"+lun {
			return OpenDMPath(ctx, "san-"+lun, "/dev/"+filepath.Base(d))
		}
	}
	return nil, fmt.Errorf("no virtio disk with serial lab-%s under %s: %w", lun, sysfs, ErrNoPath)
}

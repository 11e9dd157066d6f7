package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/internal/loopdev"
)

// hangResult is how a Device behaves on a device that hangs in the kernel.
type hangResult struct {
	deadline time.Duration
	samples  int
	late     latencies // when the caller got ErrTimeout, minus the deadline
	busy     latencies // when the read that followed got ErrBusy, minus its deadline
}

// measureHang hangs a real block device samples times and times what the
// callers see. The device is a loop device whose backing file lives on an
// ext4 filesystem of its own (on another loop device); freezing that
// filesystem (fsfreeze) blocks the device's writes in the kernel, as a hung
// LUN does, until it is thawed.
func measureHang(dir string, samples int, log *slog.Logger) (_ *hangResult, err error) {
	var undo []func() error
	defer func() {
		for i := len(undo) - 1; i >= 0; i-- {
			if uerr := undo[i](); uerr != nil && err == nil {
				err = uerr
			}
		}
	}()
	fz, err := loopdev.NewFreezable(dir, 512, 8<<20)
	if err != nil {
		return nil, fmt.Errorf("the hang measurement (skip it with --hang-samples=0): %w", err)
	}
	undo = append(undo, fz.Close)
	dev, freeze, thaw := fz.Dev, fz.Freeze, fz.Thaw

	bd, err := diskhb.OpenBlock(dev)
	if err != nil {
		return nil, err
	}
	deadline := config.DefaultIOTimeout
	d := diskhb.NewDevice(bd, deadline, log.With("device", dev))
	undo = append(undo, func() error {
		d.Close()
		<-d.Done()
		return nil
	})
	ctx := context.Background()
	buf := diskhb.AlignedBuffer(512)
	var late, busy []time.Duration
	for range samples {
		if err := waitIdle(ctx, d, buf); err != nil {
			return nil, err
		}
		if err := freeze(); err != nil {
			return nil, err
		}
		t0 := time.Now()
		err := d.Write(ctx, 512, buf)
		took := time.Since(t0)
		if !errors.Is(err, diskhb.ErrTimeout) {
			_ = thaw()
			return nil, fmt.Errorf("a write to the frozen device returned %v after %v, not ErrTimeout: the hang did not take", err, took)
		}
		late = append(late, took-deadline)
		t1 := time.Now()
		// The read waits for the stuck write until its own deadline.
		_, err = d.Read(ctx, 0, 512)
		busy = append(busy, time.Since(t1)-deadline)
		if !errors.Is(err, diskhb.ErrBusy) {
			_ = thaw()
			return nil, fmt.Errorf("a read while a write was stuck returned %v, not ErrBusy", err)
		}
		if err := thaw(); err != nil {
			return nil, err
		}
	}
	return &hangResult{deadline: deadline, samples: samples, late: summarise(late), busy: summarise(busy)}, nil
}

// waitIdle waits until d has no stuck I/O and then writes one sector.
func waitIdle(ctx context.Context, d *diskhb.Device, buf []byte) error {
	give := time.Now().Add(30 * time.Second)
	for d.Stats().Stuck {
		if time.Now().After(give) {
			return errors.New("the stuck write did not return within 30s of the thaw")
		}
		time.Sleep(time.Millisecond)
	}
	return d.Write(ctx, 512, buf)
}

// command runs a tool with LC_ALL=C and returns its stderr in the error.

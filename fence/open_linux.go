package fence

import (
	"context"
	"errors"
	"fmt"

	"github.com/mtcluster/mtc/fence/blkpr"
	"github.com/mtcluster/mtc/fence/scsi"
)

// blockPath adapts blkpr.Path to Path.
type blockPath struct{ *blkpr.Path }

func (blockPath) Backend() Backend { return BackendBlockPR }

var _ Path = blockPath{}

// OpenPath opens one path device with backend b; "" chooses per device:
// SG_IO when the device takes SCSI commands, else the block layer's PR
// ioctls.
func OpenPath(dev string, b Backend) (Path, error) {
	switch b {
	case BackendSGIO, "":
		sg, err := scsi.OpenSG(dev)
		if err == nil {
			return NewSCSIPath(dev, BackendSGIO, sg, sg.Close), nil
		}
		if b == BackendSGIO || !errors.Is(err, scsi.ErrNotSupported) {
			return nil, err
		}
		fallthrough
	case BackendBlockPR:
		p, err := blkpr.Open(dev)
		if err != nil {
			return nil, err
		}
		return blockPath{p}, nil
	}
	return nil, fmt.Errorf("%s: backend %q: %w (want %s or %s)", dev, b, ErrBadRequest, BackendSGIO, BackendBlockPR)
}

// OpenLUN opens every path of dev: dev itself, or the path devices under a
// device-mapper device (PathDevices on /sys and /dev).
func OpenLUN(dev string, b Backend) (*LUN, error) {
	devs, err := PathDevices("/sys", "/dev", dev)
	if err != nil {
		return nil, err
	}
	l := &LUN{Name: dev}
	for _, d := range devs {
		p, err := OpenPath(d, b)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("LUN %s: path %s: %w", dev, d, err)
		}
		l.Paths = append(l.Paths, p)
	}
	return l, nil
}

// ProbeReads reports whether p can read PR state (always for SG_IO; for
// block PR only on kernels with IOC_PR_READ_KEYS).
func ProbeReads(ctx context.Context, p Path) bool {
	if bp, ok := p.(blockPath); ok {
		return bp.ReadsSupported(ctx)
	}
	_, err := p.ReadReservation(ctx)
	return !errors.Is(err, ErrNotSupported)
}

package fence

import (
	"context"

	"github.com/mtcluster/mtc/fence/scsi"
)

// Backend names how a path issues PR commands.
type Backend string

// Backends.
const (
	// BackendSGIO: SCSI commands over the SG_IO ioctl (fence/scsi). Every
	// command, READ KEYS and READ RESERVATION included; the default for
	// every SCSI disk (sd, iSCSI, FC, SAS).
	BackendSGIO Backend = "sg_io"
	// BackendBlockPR: the block layer's PR ioctls (IOC_PR_REGISTER ...
	// IOC_PR_CLEAR, Linux 4.4; IOC_PR_READ_KEYS and
	// IOC_PR_READ_RESERVATION only in very new kernels), for devices
	// SG_IO does not reach, such as NVMe namespaces.
	BackendBlockPR Backend = "block_pr"
	// BackendFake: fence/prfake's in-memory target.
	BackendFake Backend = "fake"
)

// Path is one I_T nexus to one LUN: the narrow interface the fencing
// algorithm needs, implemented over SG_IO, over the block layer's PR
// ioctls, and by the fake target. Every method honours ctx's deadline;
// errors wrap the sentinels of fence/scsi (re-exported by this package).
type Path interface {
	// Name is the device, e.g. /dev/sdc.
	Name() string
	// Backend says which mechanism issues the commands.
	Backend() Backend
	// TestUnitReady clears pending unit attentions (a no-op where the
	// kernel does that itself).
	TestUnitReady(ctx context.Context) error
	// Out issues PERSISTENT RESERVE OUT. A backend that cannot express the
	// request (a service action or flag it has no means for) returns
	// ErrNotSupported without sending anything.
	Out(ctx context.Context, a scsi.OutAction, t scsi.Type, p scsi.OutParams) error
	// ReadKeys and ReadReservation return ErrNotSupported when the backend
	// cannot read PR state (block PR on an older kernel).
	ReadKeys(ctx context.Context) (scsi.Keys, error)
	ReadReservation(ctx context.Context) (scsi.Reservation, error)
	// Capabilities reports REPORT CAPABILITIES, or what the backend knows.
	Capabilities(ctx context.Context) (scsi.Capabilities, error)
	// Close releases the device.
	Close() error
}

// Errors of PR commands, the same for every backend.
var (
	ErrReservationConflict = scsi.ErrReservationConflict
	ErrUnitAttention       = scsi.ErrUnitAttention
	ErrNotSupported        = scsi.ErrNotSupported
	ErrPath                = scsi.ErrPath
	ErrTimeout             = scsi.ErrTimeout
)

// SCSIPath is a Path over a scsi.Transport: SG_IO on a real device, or the
// fake target's port in tests and the simulation.
type SCSIPath struct {
	name    string
	backend Backend
	dev     scsi.Device
	closer  func() error
}

// NewSCSIPath makes a Path named name over t. closer (may be nil) runs on
// Close.
func NewSCSIPath(name string, backend Backend, t scsi.Transport, closer func() error) *SCSIPath {
	return &SCSIPath{name: name, backend: backend, dev: scsi.Device{T: t}, closer: closer}
}

var _ Path = (*SCSIPath)(nil)

// Name is the device path.
func (p *SCSIPath) Name() string { return p.name }

// Backend is the backend this path was made with.
func (p *SCSIPath) Backend() Backend { return p.backend }

// TestUnitReady issues TEST UNIT READY.
func (p *SCSIPath) TestUnitReady(ctx context.Context) error { return p.dev.TestUnitReady(ctx) }

// Out issues PERSISTENT RESERVE OUT.
func (p *SCSIPath) Out(ctx context.Context, a scsi.OutAction, t scsi.Type, o scsi.OutParams) error {
	return p.dev.Out(ctx, a, t, o)
}

// ReadKeys issues READ KEYS.
func (p *SCSIPath) ReadKeys(ctx context.Context) (scsi.Keys, error) { return p.dev.ReadKeys(ctx) }

// ReadReservation issues READ RESERVATION.
func (p *SCSIPath) ReadReservation(ctx context.Context) (scsi.Reservation, error) {
	return p.dev.ReadReservation(ctx)
}

// Capabilities issues REPORT CAPABILITIES.
func (p *SCSIPath) Capabilities(ctx context.Context) (scsi.Capabilities, error) {
	return p.dev.ReportCapabilities(ctx)
}

// Close closes the device.
func (p *SCSIPath) Close() error {
	if p.closer == nil {
		return nil
	}
	return p.closer()
}

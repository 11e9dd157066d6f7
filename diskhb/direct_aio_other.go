//go:build !linux || !(amd64 || arm64)

package diskhb

import (
	"errors"
	"time"
)

// Linux AIO is used on linux/amd64 and linux/arm64 only (aio_linux.go);
// elsewhere every Device uses its I/O goroutine.

const (
	aioTagIO   = 1
	aioTagWake = 2
)

type ioEvent struct {
	data uint64
	res  int64
}

type aioRing struct{ name string }

func newAIORing(fd int, name string) (*aioRing, error) { return nil, errors.ErrUnsupported }

func (r *aioRing) submit(write bool, buf []byte, off int64) error { return errors.ErrUnsupported }
func (r *aioRing) getevents(min int, timeout time.Duration) ([]ioEvent, error) {
	return nil, errors.ErrUnsupported
}
func (r *aioRing) armWake() error { return errors.ErrUnsupported }
func (r *aioRing) wake()          {}
func (r *aioRing) result(op opKind, off int64, want int, res int64) error {
	return errors.ErrUnsupported
}
func (r *aioRing) destroy() error { return nil }
func isEINTR(err error) bool      { return false }

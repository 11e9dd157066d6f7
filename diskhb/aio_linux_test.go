//go:build linux && (amd64 || arm64)

package diskhb

import (
	"testing"
	"unsafe"
)

// TestAIOABI checks struct iocb and struct io_event against
// include/uapi/linux/aio_abi.h (little-endian, 64-bit).
func TestAIOABI(t *testing.T) {
	var cb iocb
	if got := unsafe.Sizeof(cb); got != 64 {
		t.Errorf("sizeof(struct iocb) = %d, want 64", got)
	}
	for _, f := range []struct {
		name      string
		off, want uintptr
	}{
		{"aio_data", unsafe.Offsetof(cb.data), 0},
		{"aio_lio_opcode", unsafe.Offsetof(cb.opcode), 16},
		{"aio_reqprio", unsafe.Offsetof(cb.reqPrio), 18},
		{"aio_fildes", unsafe.Offsetof(cb.fildes), 20},
		{"aio_buf", unsafe.Offsetof(cb.buf), 24},
		{"aio_nbytes", unsafe.Offsetof(cb.nbytes), 32},
		{"aio_offset", unsafe.Offsetof(cb.offset), 40},
		{"aio_reserved2", unsafe.Offsetof(cb.reserved2), 48},
		{"aio_flags", unsafe.Offsetof(cb.flags), 56},
		{"aio_resfd", unsafe.Offsetof(cb.resfd), 60},
	} {
		if f.off != f.want {
			t.Errorf("offsetof(struct iocb, %s) = %d, want %d", f.name, f.off, f.want)
		}
	}
	var ev ioEvent
	if got := unsafe.Sizeof(ev); got != 32 {
		t.Errorf("sizeof(struct io_event) = %d, want 32", got)
	}
	for _, f := range []struct {
		name      string
		off, want uintptr
	}{
		{"data", unsafe.Offsetof(ev.data), 0},
		{"obj", unsafe.Offsetof(ev.obj), 8},
		{"res", unsafe.Offsetof(ev.res), 16},
		{"res2", unsafe.Offsetof(ev.res2), 24},
	} {
		if f.off != f.want {
			t.Errorf("offsetof(struct io_event, %s) = %d, want %d", f.name, f.off, f.want)
		}
	}
}

//go:build linux && (amd64 || arm64)

package scsi

import (
	"testing"
	"unsafe"
)

// TestSGIOHdrABI checks sgIOHdr against struct sg_io_hdr as the 64-bit
// kernel lays it out (include/scsi/sg.h; pahole on an amd64 build).
func TestSGIOHdrABI(t *testing.T) {
	var h sgIOHdr
	if got := unsafe.Sizeof(h); got != 88 {
		t.Errorf("sizeof(sg_io_hdr) = %d, want 88", got)
	}
	for _, f := range []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"interface_id", unsafe.Offsetof(h.InterfaceID), 0},
		{"dxfer_direction", unsafe.Offsetof(h.DxferDirection), 4},
		{"cmd_len", unsafe.Offsetof(h.CmdLen), 8},
		{"mx_sb_len", unsafe.Offsetof(h.MxSbLen), 9},
		{"iovec_count", unsafe.Offsetof(h.IovecCount), 10},
		{"dxfer_len", unsafe.Offsetof(h.DxferLen), 12},
		{"dxferp", unsafe.Offsetof(h.Dxferp), 16},
		{"cmdp", unsafe.Offsetof(h.Cmdp), 24},
		{"sbp", unsafe.Offsetof(h.Sbp), 32},
		{"timeout", unsafe.Offsetof(h.Timeout), 40},
		{"flags", unsafe.Offsetof(h.Flags), 44},
		{"pack_id", unsafe.Offsetof(h.PackID), 48},
		{"usr_ptr", unsafe.Offsetof(h.UsrPtr), 56},
		{"status", unsafe.Offsetof(h.Status), 64},
		{"masked_status", unsafe.Offsetof(h.MaskedStatus), 65},
		{"msg_status", unsafe.Offsetof(h.MsgStatus), 66},
		{"sb_len_wr", unsafe.Offsetof(h.SbLenWr), 67},
		{"host_status", unsafe.Offsetof(h.HostStatus), 68},
		{"driver_status", unsafe.Offsetof(h.DriverStatus), 70},
		{"resid", unsafe.Offsetof(h.Resid), 72},
		{"duration", unsafe.Offsetof(h.Duration), 76},
		{"info", unsafe.Offsetof(h.Info), 80},
	} {
		if f.got != f.want {
			t.Errorf("offsetof(sg_io_hdr.%s) = %d, want %d", f.name, f.got, f.want)
		}
	}
}

// TestOpenSGNotADevice: a regular file does not answer SG_IO.
func TestOpenSGNotADevice(t *testing.T) {
	p := t.TempDir() + "/f"
	if err := writeFile(p); err != nil {
		t.Fatal(err)
	}
	_, err := OpenSG(p)
	if err == nil {
		t.Fatal("OpenSG on a regular file succeeded")
	}
	if !isNotSupported(err) {
		t.Errorf("OpenSG on a regular file: %v, want ErrNotSupported", err)
	}
}

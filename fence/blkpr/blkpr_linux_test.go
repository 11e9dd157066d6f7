package blkpr

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/mtcluster/mtc/fence/scsi"
)

// TestABI: the argument structs and ioctl numbers match
// include/uapi/linux/pr.h (_IOC(dir, 'p', nr, size) with dir 1 write,
// 2 read, 3 both).
func TestABI(t *testing.T) {
	ioc := func(dir, nr, size uintptr) uintptr { return dir<<30 | size<<16 | 'p'<<8 | nr }
	for _, c := range []struct {
		name     string
		got      uintptr
		dir, nr  uintptr
		size     uintptr
		wantSize uintptr
	}{
		{"IOC_PR_REGISTER", iocPRRegister, 1, 200, unsafe.Sizeof(prRegistration{}), 24},
		{"IOC_PR_RESERVE", iocPRReserve, 1, 201, unsafe.Sizeof(prReservation{}), 16},
		{"IOC_PR_RELEASE", iocPRRelease, 1, 202, unsafe.Sizeof(prReservation{}), 16},
		{"IOC_PR_PREEMPT", iocPRPreempt, 1, 203, unsafe.Sizeof(prPreempt{}), 24},
		{"IOC_PR_PREEMPT_ABORT", iocPRPreemptAbort, 1, 204, unsafe.Sizeof(prPreempt{}), 24},
		{"IOC_PR_CLEAR", iocPRClear, 1, 205, unsafe.Sizeof(prClear{}), 16},
		{"IOC_PR_READ_KEYS", iocPRReadKeys, 3, 206, unsafe.Sizeof(prReadKeys{}), 16},
		{"IOC_PR_READ_RESERVATION", iocPRReadReservation, 2, 207, unsafe.Sizeof(prReadReservation{}), 16},
	} {
		if c.size != c.wantSize {
			t.Errorf("%s: argument is %d bytes, want %d", c.name, c.size, c.wantSize)
		}
		if want := ioc(c.dir, c.nr, c.wantSize); c.got != want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, want)
		}
	}
}

func TestMapResult(t *testing.T) {
	for _, c := range []struct {
		r1    uintptr
		errno unix.Errno
		want  error
	}{
		{0, 0, nil},
		{0x18, 0, scsi.ErrReservationConflict},
		{0x83, 0, scsi.ErrReservationConflict}, // NVMe status before Linux 6.3
		{0, unix.EBADE, scsi.ErrReservationConflict},
		{0x02, 0, scsi.ErrCheckCondition},
		{0x10000, 0, scsi.ErrPath}, // PR_STS_PATH_FAILED / DID_NO_CONNECT
		{0xe0000, 0, scsi.ErrPath}, // PR_STS_RETRY_PATH_FAILURE
		{0xf0000, 0, scsi.ErrPath}, // PR_STS_PATH_FAST_FAILED
		{0x10018, 0, scsi.ErrPath}, // a conflict status with a host failure
		{0, unix.ENOTTY, scsi.ErrNotSupported},
		{0, unix.EOPNOTSUPP, scsi.ErrNotSupported},
		{0, unix.EIO, scsi.ErrPath},
		{0, unix.ETIMEDOUT, scsi.ErrTimeout},
	} {
		err := mapResult("op", c.r1, c.errno)
		if c.want == nil {
			if err != nil {
				t.Errorf("%#x/%v: %v, want success", c.r1, c.errno, err)
			}
			continue
		}
		if !errors.Is(err, c.want) {
			t.Errorf("%#x/%v: %v, want %v", c.r1, c.errno, err, c.want)
		}
	}
}

func TestTypeMapping(t *testing.T) {
	for _, ty := range scsi.Types {
		if got := fromBlock(toBlock[ty]); got != ty {
			t.Errorf("type %v maps back to %v", ty, got)
		}
	}
	if toBlock[scsi.WriteExclusiveRegistrantsOnly] != 3 {
		t.Error("Write Exclusive, Registrants Only is PR_WRITE_EXCLUSIVE_REG_ONLY (3)")
	}
}

func TestOpenRefusesRegularFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(p); !errors.Is(err, scsi.ErrNotSupported) {
		t.Errorf("Open(regular file) = %v, want ErrNotSupported", err)
	}
}

package watchdog

import (
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultDevice is the kernel watchdog device node.
const DefaultDevice = "/dev/watchdog"

// Device is a kernel watchdog opened through its device node.
type Device struct {
	mu      sync.Mutex
	f       *os.File
	path    string
	timeout time.Duration
}

var _ Watchdog = (*Device)(nil)

// OpenDevice opens the watchdog device at path (which arms it), sets its
// timeout with WDIOC_SETTIMEOUT and reads it back with WDIOC_GETTIMEOUT.
// Watchdog timeouts are whole seconds: timeout must be a whole number of
// seconds, and the device must accept exactly that value, else the error
// wraps ErrTimeoutUnsupported (the device is then disarmed and closed).
//
// Equivalent to `wdctl -s SECONDS PATH` followed by keeping it open.
func OpenDevice(path string, timeout time.Duration) (*Device, error) {
	if timeout < time.Second || timeout%time.Second != 0 {
		return nil, fmt.Errorf("watchdog %s: timeout %v: %w (kernel watchdogs count whole seconds; set watchdog_timeout to a whole number of seconds)", path, timeout, ErrTimeoutUnsupported)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("open watchdog %s: %w (load a watchdog driver, e.g. modprobe softdog, or set watchdog.device)", path, err)
	}
	d := &Device{f: f, path: path, timeout: timeout}
	want := int(timeout / time.Second)
	fd := int(f.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.WDIOC_SETTIMEOUT, want); err != nil {
		d.abandon()
		return nil, fmt.Errorf("watchdog %s: WDIOC_SETTIMEOUT %ds: %v: %w", path, want, err, ErrTimeoutUnsupported)
	}
	got, err := unix.IoctlGetInt(fd, unix.WDIOC_GETTIMEOUT)
	if err != nil {
		d.abandon()
		return nil, fmt.Errorf("watchdog %s: WDIOC_GETTIMEOUT: %v: %w", path, err, ErrTimeoutUnsupported)
	}
	if got != want {
		d.abandon()
		return nil, fmt.Errorf("watchdog %s: asked for a %ds timeout, device runs %ds: %w (choose a watchdog_timeout the device supports)", path, want, got, ErrTimeoutUnsupported)
	}
	return d, nil
}

// abandon disarms and closes a device that could not be set up.
func (d *Device) abandon() {
	_, _ = d.f.Write([]byte("V"))
	_ = d.f.Close()
}

// Path is the device node.
func (d *Device) Path() string { return d.path }

// Feed issues WDIOC_KEEPALIVE.
func (d *Device) Feed() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return ErrClosed
	}
	if err := unix.IoctlWatchdogKeepalive(int(d.f.Fd())); err != nil {
		return fmt.Errorf("watchdog %s: WDIOC_KEEPALIVE: %w", d.path, err)
	}
	return nil
}

// Disarm writes the magic character 'V' and closes the device, which stops
// the timer unless the driver was built with nowayout.
func (d *Device) Disarm() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return ErrClosed
	}
	_, werr := d.f.Write([]byte("V"))
	cerr := d.f.Close()
	d.f = nil
	if werr != nil {
		return fmt.Errorf("watchdog %s: magic close: %w (the watchdog stays armed)", d.path, werr)
	}
	if cerr != nil {
		return fmt.Errorf("watchdog %s: close: %w", d.path, cerr)
	}
	return nil
}

// Close closes the device without the magic character: the watchdog stays
// armed and fires at its timeout.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return nil
	}
	err := d.f.Close()
	d.f = nil
	return err
}

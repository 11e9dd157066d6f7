package diskhb

// UsesAIO reports whether d submits its I/O with Linux AIO rather than on
// its I/O goroutine.
func UsesAIO(d *Device) bool { return d.aio != nil }

// ResealForTest recomputes a record's checksum after a test edited it.
func ResealForTest(b []byte) { seal(b) }

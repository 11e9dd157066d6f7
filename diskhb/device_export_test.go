package diskhb

// UsesAIO reports whether d submits its I/O with Linux AIO rather than on
// its I/O goroutine.
func UsesAIO(d *Device) bool { return d.aio != nil }

// Package fakedev is an in-memory shared disk with per-node paths and
// programmable faults: the fake of diskhb.BlockDevice used by unit tests and
// by the cluster simulation.
//
// A Disk is the shared storage (the LUN). Each node reaches it through its
// own Path, as over a SAN, so faults are per node: one node's path can hang,
// fail or be fenced while the others work. Every Path is a
// diskhb.BlockDevice and behaves as the device returned by diskhb.OpenBlock
// does: it refuses misaligned I/O with diskhb.ErrAlignment (checked before
// any fault), reports failures with the same sentinels and errnos
// (diskhb.ErrIO wrapping syscall.EIO, diskhb.ErrFenced wrapping EBADE), and
// its methods block while the path hangs.
//
// Faults, per path:
//
//	Hang / Release        every I/O blocks until Release (a hung SAN path)
//	SetFailIO             every I/O fails with EIO (a dead path)
//	SetFenced             writes fail with EBADE, reads work (a SCSI
//	                      "write exclusive, registrants only" reservation
//	                      from which this node's key was removed)
//	SetLatency            every I/O completes after a delay
//	SetDropWrites         writes report success and store nothing
//	TearNextWrite(k)      the next write stores only its first k bytes (the
//	                      rest keeps the old contents) and reports success
//	FlipNextWrite(bit)    the next write stores its data with one bit flipped
//	FlipNextRead(bit)     the next read returns one bit flipped; storage intact
//	SetHook(fn)           fn(op) returns extra faults for each I/O, for seeded
//	                      random schedules
//
// and on the Disk: FlipBit flips a stored bit, Peek and Poke read and write
// the storage without faults.
//
// The core is non-blocking so that the simulation, which runs on virtual
// time without goroutines, can drive it: Path.Apply performs one I/O at once
// and reports whether it would hang (then nothing happened: call Apply again
// once the simulation decides the path is released) and the latency to
// model. ReadAt and WriteAt are built on Apply: they wait for Release while
// Apply reports a hang, and sleep for the latency after the data has been
// transferred.
//
// Non-guarantees: the fake models the outcome of each I/O, not the timing of
// a real queue; two overlapping writes from different paths are applied in
// the order of their Apply calls, each atomically unless torn.
package fakedev

import (
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/mtcluster/mtc/diskhb"
)

// Disk is shared in-memory storage reached through named Paths.
type Disk struct {
	mu         sync.Mutex
	sectorSize int
	data       []byte
	paths      map[string]*Path
}

// NewDisk returns a zeroed disk of sectors sectors of sectorSize bytes.
// sectorSize must be 512 or 4096 and sectors positive; anything else is a
// bug in the test and panics with a message saying so.
func NewDisk(sectorSize int, sectors int64) *Disk {
	if sectorSize != 512 && sectorSize != 4096 {
		panic(fmt.Sprintf("fakedev.NewDisk: sector size %d: must be 512 or 4096", sectorSize))
	}
	if sectors <= 0 {
		panic(fmt.Sprintf("fakedev.NewDisk: %d sectors: must be positive", sectors))
	}
	return &Disk{
		sectorSize: sectorSize,
		data:       make([]byte, int64(sectorSize)*sectors),
		paths:      make(map[string]*Path),
	}
}

// SectorSize is the logical sector size.
func (d *Disk) SectorSize() int { return d.sectorSize }

// Size is the size of the disk in bytes.
func (d *Disk) Size() int64 { return int64(len(d.data)) }

// Path returns the path named name (usually the node's name), creating it
// with no faults on first use. The same name always returns the same Path,
// so faults set on it persist; a closed Path is reopened with Reopen.
func (d *Disk) Path(name string) *Path {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p, ok := d.paths[name]; ok {
		return p
	}
	p := &Path{disk: d, name: name, release: make(chan struct{})}
	d.paths[name] = p
	return p
}

// Peek returns a copy of n stored bytes at off, bypassing every fault.
func (d *Disk) Peek(off int64, n int) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]byte(nil), d.data[off:off+int64(n)]...)
}

// Poke stores b at off, bypassing every fault (test setup, corruption).
func (d *Disk) Poke(off int64, b []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	copy(d.data[off:], b)
}

// FlipBit flips bit (0-7, least significant first) of the stored byte at off.
func (d *Disk) FlipBit(off int64, bit uint) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.data[off] ^= 1 << (bit % 8)
}

// OpKind is a read or a write.
type OpKind int

// The kinds of I/O.
const (
	Read OpKind = iota
	Write
)

func (k OpKind) String() string {
	if k == Read {
		return "read"
	}
	return "write"
}

// Op describes one I/O attempt, as seen by a hook.
type Op struct {
	Kind OpKind
	Path string
	Off  int64
	Len  int
	// Seq numbers the Apply calls on this path from 1, retries of a hung
	// I/O included, so a seeded schedule can key faults on it.
	Seq uint64
}

// Fault is what can go wrong with one I/O. Fields combine; the precedence is
// Hang, then EIO, then Fenced (writes only), then Drop, Torn and Flip.
type Fault struct {
	// Hang: the I/O does not complete until the path is released.
	Hang bool
	// EIO: the I/O fails with EIO (diskhb.ErrIO).
	EIO bool
	// Fenced: a write fails with EBADE (diskhb.ErrFenced); reads work.
	Fenced bool
	// Latency delays the completion.
	Latency time.Duration
	// Drop: a write reports success and stores nothing.
	Drop bool
	// TornBytes, when between 1 and the write's length minus one: only the
	// first TornBytes bytes of the write are stored; it reports success.
	TornBytes int
	// Flip: bit Bit (counted from the first byte of the I/O, least
	// significant bit first) is flipped in what is stored (write) or
	// returned (read).
	Flip bool
	Bit  int
}

func (f Fault) merge(g Fault) Fault {
	f.Hang = f.Hang || g.Hang
	f.EIO = f.EIO || g.EIO
	f.Fenced = f.Fenced || g.Fenced
	f.Latency = max(f.Latency, g.Latency)
	f.Drop = f.Drop || g.Drop
	if g.TornBytes > 0 {
		f.TornBytes = g.TornBytes
	}
	if g.Flip {
		f.Flip, f.Bit = true, g.Bit
	}
	return f
}

// Result is the outcome of one Apply.
type Result struct {
	// N is the number of bytes transferred as reported to the caller.
	N int
	// Err wraps a diskhb sentinel (ErrIO, ErrFenced, ErrAlignment,
	// ErrClosed) exactly as the real device's errors do.
	Err error
	// Hung: the I/O hangs; nothing was read or stored. Call Apply again
	// once the path is released (ReadAt and WriteAt wait on Released).
	Hung bool
	// Latency is the delay after which the I/O completes.
	Latency time.Duration
}

// Path is one node's access path to a Disk; it is a diskhb.BlockDevice.
// All methods are safe for concurrent use.
type Path struct {
	disk *Disk
	name string

	// Guarded by disk.mu.
	closed  bool
	seq     uint64
	sticky  Fault // Hang, EIO, Fenced, Latency, Drop
	tear    []int // one-shot torn writes
	flipW   []int // one-shot bit flips of writes
	flipR   []int // one-shot bit flips of reads
	release chan struct{}
	hook    func(Op) Fault
	reads   uint64
	writes  uint64
}

var _ diskhb.BlockDevice = (*Path)(nil)

// Name is the path's name.
func (p *Path) Name() string { return p.name }

// SectorSize is the disk's logical sector size.
func (p *Path) SectorSize() int { return p.disk.sectorSize }

// Size is the disk's size in bytes.
func (p *Path) Size() int64 { return int64(len(p.disk.data)) }

func (p *Path) set(fn func()) {
	p.disk.mu.Lock()
	defer p.disk.mu.Unlock()
	fn()
}

// Hang makes every I/O on the path hang until Release.
func (p *Path) Hang() { p.set(func() { p.sticky.Hang = true }) }

// Release ends a Hang: I/Os blocked in ReadAt or WriteAt proceed (and are
// then subject to the path's other faults).
func (p *Path) Release() {
	p.set(func() {
		p.sticky.Hang = false
		close(p.release)
		p.release = make(chan struct{})
	})
}

// Released returns a channel closed at the next Release.
func (p *Path) Released() <-chan struct{} {
	p.disk.mu.Lock()
	defer p.disk.mu.Unlock()
	return p.release
}

// SetFailIO makes every I/O fail with EIO (on) or stops doing so (off).
func (p *Path) SetFailIO(on bool) { p.set(func() { p.sticky.EIO = on }) }

// SetFenced makes writes fail with EBADE, as after this node's reservation
// key was preempted (on), or lifts that (off).
func (p *Path) SetFenced(on bool) { p.set(func() { p.sticky.Fenced = on }) }

// SetLatency delays the completion of every I/O by lat (0: none).
func (p *Path) SetLatency(lat time.Duration) { p.set(func() { p.sticky.Latency = lat }) }

// SetDropWrites makes writes report success without storing anything.
func (p *Path) SetDropWrites(on bool) { p.set(func() { p.sticky.Drop = on }) }

// TearNextWrite makes the next write store only its first k bytes
// (0 < k < its length; otherwise the write is stored whole).
func (p *Path) TearNextWrite(k int) { p.set(func() { p.tear = append(p.tear, k) }) }

// FlipNextWrite makes the next write store its data with bit flipped.
func (p *Path) FlipNextWrite(bit int) { p.set(func() { p.flipW = append(p.flipW, bit) }) }

// FlipNextRead makes the next read return its data with bit flipped.
func (p *Path) FlipNextRead(bit int) { p.set(func() { p.flipR = append(p.flipR, bit) }) }

// SetHook installs fn (nil removes it), called once per Apply, outside the
// disk's lock, with the I/O about to be performed; its Fault is added to
// the path's programmed faults for that I/O.
func (p *Path) SetHook(fn func(Op) Fault) { p.set(func() { p.hook = fn }) }

// Reset removes every programmed fault and the hook, and releases a hang.
func (p *Path) Reset() {
	p.set(func() {
		p.sticky = Fault{}
		p.tear, p.flipW, p.flipR, p.hook = nil, nil, nil, nil
		close(p.release)
		p.release = make(chan struct{})
	})
}

// Ops returns the number of reads and writes performed on the path (hung
// attempts and refused I/O not counted).
func (p *Path) Ops() (reads, writes uint64) {
	p.disk.mu.Lock()
	defer p.disk.mu.Unlock()
	return p.reads, p.writes
}

// Reopen makes a closed path usable again (a node restarting), keeping its
// faults.
func (p *Path) Reopen() { p.set(func() { p.closed = false }) }

// Close closes the path: later I/O fails with ErrClosed. An I/O hung on the
// path stays hung until Release, as on a real device. A second Close
// returns ErrClosed.
func (p *Path) Close() error {
	p.disk.mu.Lock()
	defer p.disk.mu.Unlock()
	if p.closed {
		return fmt.Errorf("fakedev %s: close: %w", p.name, diskhb.ErrClosed)
	}
	p.closed = true
	return nil
}

// Apply performs one I/O of buf at off without blocking. A read fills buf.
// See Result for the outcome; when Result.Hung, nothing happened.
func (p *Path) Apply(kind OpKind, buf []byte, off int64) Result {
	r, _ := p.apply(kind, buf, off)
	return r
}

func (p *Path) apply(kind OpKind, buf []byte, off int64) (Result, <-chan struct{}) {
	d := p.disk
	d.mu.Lock()
	if p.closed {
		d.mu.Unlock()
		return Result{Err: fmt.Errorf("fakedev %s: %s at offset %d: %w", p.name, kind, off, diskhb.ErrClosed)}, nil
	}
	if err := diskhb.CheckIO(kind.String(), buf, off, d.sectorSize, int64(len(d.data))); err != nil {
		d.mu.Unlock()
		return Result{Err: fmt.Errorf("fakedev %s: %w", p.name, err)}, nil
	}
	p.seq++
	op := Op{Kind: kind, Path: p.name, Off: off, Len: len(buf), Seq: p.seq}
	hook := p.hook
	d.mu.Unlock()

	var f Fault
	if hook != nil {
		f = hook(op)
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	f = p.sticky.merge(f)
	if f.Hang {
		return Result{Hung: true}, p.release
	}
	res := Result{Latency: f.Latency}
	if f.EIO {
		res.Err = fmt.Errorf("fakedev %s: %w", p.name, diskhb.IOError(kind.String(), off, syscall.EIO))
		return res, nil
	}
	if kind == Read {
		if len(p.flipR) > 0 {
			f.Flip, f.Bit, p.flipR = true, p.flipR[0], p.flipR[1:]
		}
		copy(buf, d.data[off:])
		if f.Flip {
			flip(buf, f.Bit)
		}
		p.reads++
		res.N = len(buf)
		return res, nil
	}
	if f.Fenced {
		res.Err = fmt.Errorf("fakedev %s: %w", p.name, diskhb.IOError(kind.String(), off, diskhb.FencedErrno))
		return res, nil
	}
	if len(p.tear) > 0 {
		f.TornBytes, p.tear = p.tear[0], p.tear[1:]
	}
	if len(p.flipW) > 0 {
		f.Flip, f.Bit, p.flipW = true, p.flipW[0], p.flipW[1:]
	}
	p.writes++
	res.N = len(buf)
	if f.Drop {
		return res, nil
	}
	stored := d.data[off : off+int64(len(buf))]
	n := len(buf)
	if f.TornBytes > 0 && f.TornBytes < n {
		n = f.TornBytes
	}
	copy(stored[:n], buf)
	if f.Flip && f.Bit/8 < n {
		flip(stored, f.Bit)
	}
	return res, nil
}

func flip(b []byte, bit int) {
	if bit >= 0 && bit/8 < len(b) {
		b[bit/8] ^= 1 << (bit % 8)
	}
}

// ReadAt reads len(b) bytes at off, blocking while the path hangs and for
// the programmed latency.
func (p *Path) ReadAt(b []byte, off int64) (int, error) { return p.blocking(Read, b, off) }

// WriteAt writes b at off, blocking while the path hangs and for the
// programmed latency.
func (p *Path) WriteAt(b []byte, off int64) (int, error) { return p.blocking(Write, b, off) }

func (p *Path) blocking(kind OpKind, b []byte, off int64) (int, error) {
	for {
		r, release := p.apply(kind, b, off)
		if r.Hung {
			<-release
			continue
		}
		if r.Latency > 0 {
			time.Sleep(r.Latency)
		}
		return r.N, r.Err
	}
}

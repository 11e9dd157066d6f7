package labkit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// PRType is a SCSI-3 persistent reservation type (SPC-4 table 169).
type PRType int

// Reservation types the lab uses.
const (
	// WriteExclusive (1): only the holder may write.
	WriteExclusive PRType = 1
	// ExclusiveAccess (3): only the holder may read or write.
	ExclusiveAccess PRType = 3
	// WriteExclusiveRegistrantsOnly (5): every registered I_T nexus may
	// write; the others may only read. MT-Cluster's fencing type.
	WriteExclusiveRegistrantsOnly PRType = 5
	// ExclusiveAccessRegistrantsOnly (6): unregistered nexuses may neither
	// read nor write.
	ExclusiveAccessRegistrantsOnly PRType = 6
)

// Reservation is the state READ RESERVATION reports.
type Reservation struct {
	Generation uint32
	Held       bool
	Key        uint64 // the holder's key, when Held
	Type       PRType // when Held
}

// PR issues SCSI-3 persistent reservation commands with sg_persist through
// one node's path to a LUN (its I_T nexus).
type PR struct {
	Dev string // the node's /dev/sdX for the LUN
}

func hexKey(k uint64) string { return strconv.FormatUint(k, 16) }

func (p PR) out(ctx context.Context, args ...string) error {
	argv := append([]string{"sg_persist", "--no-inquiry", "--out"}, args...)
	argv = append(argv, p.Dev)
	if _, err := Run(ctx, argv...); err != nil {
		return fmt.Errorf("PR OUT on %s: %w", p.Dev, err)
	}
	return nil
}

// Register registers key for this nexus (REGISTER AND IGNORE EXISTING KEY,
// so it also replaces a key left by an earlier test).
func (p PR) Register(ctx context.Context, key uint64) error {
	return p.out(ctx, "--register-ignore", "--param-sark="+hexKey(key))
}

// Unregister removes this nexus's registration.
func (p PR) Unregister(ctx context.Context) error {
	return p.out(ctx, "--register-ignore", "--param-sark=0")
}

// Reserve takes a reservation of type t with this nexus's key.
func (p PR) Reserve(ctx context.Context, key uint64, t PRType) error {
	return p.out(ctx, "--reserve", "--param-rk="+hexKey(key), "--prout-type="+strconv.Itoa(int(t)))
}

// PreemptAbort removes victim's registration (and reservation), takes the
// reservation as type t, and aborts the victim's outstanding commands.
func (p PR) PreemptAbort(ctx context.Context, key, victim uint64, t PRType) error {
	return p.out(ctx, "--preempt-abort", "--param-rk="+hexKey(key), "--param-sark="+hexKey(victim),
		"--prout-type="+strconv.Itoa(int(t)))
}

// Clear removes every registration and the reservation.
func (p PR) Clear(ctx context.Context, key uint64) error {
	return p.out(ctx, "--clear", "--param-rk="+hexKey(key))
}

func (p PR) in(ctx context.Context, op string) ([]byte, error) {
	// --hex twice: the whole parameter data, header included, without an
	// ASCII column.
	out, err := Run(ctx, "sg_persist", "--no-inquiry", "--in", op, "--hex", "--hex", p.Dev)
	if err != nil {
		return nil, fmt.Errorf("PR IN on %s: %w", p.Dev, err)
	}
	b, err := parseHexDump(out)
	if err != nil {
		return nil, fmt.Errorf("PR IN %s on %s: %w", op, p.Dev, err)
	}
	return b, nil
}

// ReadKeys returns the registered keys and the PR generation.
func (p PR) ReadKeys(ctx context.Context) ([]uint64, uint32, error) {
	b, err := p.in(ctx, "--read-keys")
	if err != nil {
		return nil, 0, err
	}
	return decodeReadKeys(b)
}

// ReadReservation returns the current reservation.
func (p PR) ReadReservation(ctx context.Context) (Reservation, error) {
	b, err := p.in(ctx, "--read-reservation")
	if err != nil {
		return Reservation{}, err
	}
	return decodeReadReservation(b)
}

var errShort = errors.New("PR IN parameter data too short")

// decodeReadKeys decodes READ KEYS parameter data (SPC-4 6.16.2):
// generation (4), additional length (4), then 8 bytes per key.
func decodeReadKeys(b []byte) ([]uint64, uint32, error) {
	if len(b) < 8 {
		return nil, 0, fmt.Errorf("read keys: %w (%d bytes)", errShort, len(b))
	}
	gen := binary.BigEndian.Uint32(b[0:])
	n := int(binary.BigEndian.Uint32(b[4:]))
	if n%8 != 0 || len(b) < 8+n {
		return nil, 0, fmt.Errorf("read keys: additional length %d with %d bytes: %w", n, len(b), errShort)
	}
	keys := make([]uint64, 0, n/8)
	for off := 8; off < 8+n; off += 8 {
		keys = append(keys, binary.BigEndian.Uint64(b[off:]))
	}
	return keys, gen, nil
}

// decodeReadReservation decodes READ RESERVATION parameter data (SPC-4
// 6.16.3): generation (4), additional length (4: 0 or 16), key (8),
// obsolete (4), reserved (1), scope and type (1), obsolete (2).
func decodeReadReservation(b []byte) (Reservation, error) {
	if len(b) < 8 {
		return Reservation{}, fmt.Errorf("read reservation: %w (%d bytes)", errShort, len(b))
	}
	r := Reservation{Generation: binary.BigEndian.Uint32(b[0:])}
	n := binary.BigEndian.Uint32(b[4:])
	switch {
	case n == 0:
		return r, nil
	case n < 16 || len(b) < 24:
		return Reservation{}, fmt.Errorf("read reservation: additional length %d with %d bytes: %w", n, len(b), errShort)
	}
	r.Held = true
	r.Key = binary.BigEndian.Uint64(b[8:])
	r.Type = PRType(b[21] & 0x0f)
	return r, nil
}

// parseHexDump reads the bytes of sg3_utils' --hex output: lines of an
// offset followed by up to 16 two-digit hex bytes, possibly followed by an
// ASCII rendering. Lines that do not start with the offset of the next
// byte (the tool's own messages) are ignored, so a misread ASCII column
// shifts the next offset and truncates the data rather than corrupting it;
// the decoders then report it as too short.
func parseHexDump(s string) ([]byte, error) {
	var out []byte
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		off, err := strconv.ParseUint(f[0], 16, 32)
		if err != nil || int(off) != len(out) {
			continue
		}
		n := 0
		for _, tok := range f[1:] {
			if n == 16 || len(tok) != 2 {
				break
			}
			v, err := strconv.ParseUint(tok, 16, 8)
			if err != nil {
				break
			}
			out = append(out, byte(v))
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("hex dump line %q has an offset but no bytes", line)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no hex dump in output %q", s)
	}
	return out, nil
}

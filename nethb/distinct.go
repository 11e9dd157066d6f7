package nethb

import (
	"hash/maphash"
	"math"
	"math/bits"
	"net/netip"
)

// distinctBits sets the size of a distinct counter: 2^distinctBits one-byte
// registers (4 KiB), a standard error of 1.04/sqrt(4096), about 1.6%.
const distinctBits = 12

const distinctRegs = 1 << distinctBits

// distinct estimates how many different addresses it was shown, in fixed
// memory whatever their number (a HyperLogLog sketch: each address hashes
// to a register that keeps the longest run of leading zero bits seen).
// Small counts are exact in practice: up to a few hundred addresses the
// estimate comes from the number of untouched registers.
type distinct struct {
	reg [distinctRegs]uint8
}

// addrHash hashes an address under a per-process random seed, so an
// attacker cannot choose addresses that collide.
func addrHash(seed maphash.Seed, a netip.Addr) uint64 {
	b := a.As16()
	return maphash.Bytes(seed, b[:])
}

// add records one address hash.
func (d *distinct) add(h uint64) {
	i := h >> (64 - distinctBits)
	rest := h<<distinctBits | 1<<(distinctBits-1) // never all zero
	if z := uint8(bits.LeadingZeros64(rest)) + 1; z > d.reg[i] {
		d.reg[i] = z
	}
}

// estimate is the approximate number of distinct hashes added.
func (d *distinct) estimate() uint64 {
	const m = float64(distinctRegs)
	var sum float64
	zeros := 0
	for _, r := range d.reg {
		sum += math.Ldexp(1, -int(r))
		if r == 0 {
			zeros++
		}
	}
	if zeros == distinctRegs {
		return 0
	}
	alpha := 0.7213 / (1 + 1.079/m)
	e := alpha * m * m / sum
	if e <= 2.5*m && zeros > 0 {
		e = m * math.Log(m/float64(zeros)) // linear counting: exact-ish when small
	}
	return uint64(math.Round(e))
}

func (d *distinct) reset() { clear(d.reg[:]) }

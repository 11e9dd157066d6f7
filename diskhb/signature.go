package diskhb

// A signature is the mark another program leaves at a fixed place near the
// start of a device: a filesystem superblock, a volume manager label, a
// partition table. The quorum-disk tools look for the common ones so that
// a mistyped device path is refused with what it holds, in words, rather
// than with "not a quorum disk".
type signature struct {
	name  string
	match func(b []byte) bool
}

// sigBytes needs b to hold want at off.
func sigBytes(b []byte, off int, want string) bool {
	return len(b) >= off+len(want) && string(b[off:off+len(want)]) == want
}

// extName tells ext2, ext3 and ext4 apart by their feature flags, as blkid
// does: ext4 has extents, 64-bit or flex_bg; ext3 a journal.
func extName(b []byte) string {
	const sb = 1024
	compat, incompat := le.Uint32(b[sb+0x5c:]), le.Uint32(b[sb+0x60:])
	switch {
	case incompat&(0x40|0x80|0x200) != 0:
		return "an ext4 filesystem"
	case compat&0x4 != 0:
		return "an ext3 filesystem"
	}
	return "an ext2 filesystem"
}

// signatures are checked in order; a GPT's protective MBR is not reported
// separately.
var signatures = []signature{
	{"an XFS filesystem", func(b []byte) bool { return sigBytes(b, 0, "XFSB") }},
	{"ext", func(b []byte) bool { return len(b) >= 2048 && b[1080] == 0x53 && b[1081] == 0xef }},
	{"a btrfs filesystem", func(b []byte) bool { return sigBytes(b, 65536+64, "_BHRfS_M") }},
	{"a LUKS encrypted volume", func(b []byte) bool { return sigBytes(b, 0, "LUKS\xba\xbe") }},
	{"an LVM2 physical volume", func(b []byte) bool {
		for s := 0; s < 4; s++ {
			if sigBytes(b, s*512, "LABELONE") {
				return true
			}
		}
		return false
	}},
	{"a Linux swap area", func(b []byte) bool {
		for _, page := range []int{4096, 8192, 16384, 65536} {
			if sigBytes(b, page-10, "SWAPSPACE2") || sigBytes(b, page-10, "SWAP-SPACE") {
				return true
			}
		}
		return false
	}},
	{"an ISO 9660 filesystem", func(b []byte) bool { return sigBytes(b, 32769, "CD001") }},
	{"a GPT partition table", func(b []byte) bool { return sigBytes(b, 512, "EFI PART") || sigBytes(b, 4096, "EFI PART") }},
	{"an MBR partition table or boot sector", func(b []byte) bool { return len(b) >= 512 && b[510] == 0x55 && b[511] == 0xaa }},
}

// Signatures names the filesystem, volume manager and partition table
// signatures found in b, the first bytes of a device ("an ext4
// filesystem", "an LVM2 physical volume"). b should hold at least the
// first 68 KiB to find them all.
func Signatures(b []byte) []string {
	var out []string
	gpt := false
	for _, s := range signatures {
		if !s.match(b) {
			continue
		}
		switch s.name {
		case "ext":
			out = append(out, extName(b))
			continue
		case "a GPT partition table":
			gpt = true
		case "an MBR partition table or boot sector":
			if gpt {
				continue
			}
		}
		out = append(out, s.name)
	}
	return out
}

// SignatureBytes is how much of the start of a device Signatures needs.
const SignatureBytes = 65536 + 4096

// firstNonZero is the offset of the first byte of b that is not zero, or -1.
func firstNonZero(b []byte) int64 {
	for i, c := range b {
		if c != 0 {
			return int64(i)
		}
	}
	return -1
}

package nethb

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestWriteSeedCorpus regenerates testdata/fuzz/FuzzDecode when run with
// MTC_WRITE_CORPUS=1.
func TestWriteSeedCorpus(t *testing.T) {
	if os.Getenv("MTC_WRITE_CORPUS") != "1" {
		t.Skip("set MTC_WRITE_CORPUS=1 to regenerate the fuzz seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := basePacket()
	good, _ := p.AppendEncode(nil, testKey)
	empty := basePacket()
	empty.Payload = nil
	e, _ := empty.AppendEncode(nil, testKey)
	big := basePacket()
	big.Payload = make([]byte, MaxPayload)
	bg, _ := big.AppendEncode(nil, testKey)
	forged := append([]byte{}, good...)
	forged[len(forged)-1] ^= 1
	seeds := map[string][]byte{
		"valid":          good,
		"valid-empty":    e,
		"valid-max":      bg,
		"forged":         forged,
		"truncated":      good[:HeaderLen+3],
		"bad-length":     append(append([]byte{}, good[:6]...), append([]byte{0xff, 0xff}, good[8:]...)...),
		"magic-only":     []byte(Magic),
		"header-garbage": make([]byte, HeaderLen+MACLen),
	}
	for name, b := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(b)))
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

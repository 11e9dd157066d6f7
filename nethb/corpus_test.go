package nethb

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestSeedCorpus checks that the committed seed corpus in
// testdata/fuzz/FuzzDecode is what the current wire format produces, so a
// format change cannot leave the fuzzer starting from stale packets. Run
// with MTC_WRITE_CORPUS=1 to rewrite it.
func TestSeedCorpus(t *testing.T) {
	write := os.Getenv("MTC_WRITE_CORPUS") == "1"
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	if write {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
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
		path := filepath.Join(dir, name)
		if write {
			if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != body {
			t.Errorf("seed %s is missing or stale (%v): run MTC_WRITE_CORPUS=1 go test ./nethb -run TestSeedCorpus", path, err)
		}
	}
}

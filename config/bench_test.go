package config

import (
	"os"
	"testing"
)

// BenchmarkParse measures decoding and validating the example file (the
// daemon does it once at start, mtc commands once per run).
func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile("../examples/cluster.toml")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("cluster.toml", data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseInvalid measures a file with several problems: the error
// path builds messages and looks up positions.
func BenchmarkParseInvalid(b *testing.B) {
	data := []byte(line(33, "id = 2") + "[timing]\nheartbeat_interval = \"400ms\"\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("cluster.toml", data); err == nil {
			b.Fatal("accepted")
		}
	}
}

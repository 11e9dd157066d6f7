package config

import (
	"testing"

	"github.com/pelletier/go-toml/v2/unstable"
)

func TestIndexPositions(t *testing.T) {
	doc := `top = 1
[cluster]
name = "x"   # comment
  uuid = "y"
[[node]]
name = "a"
[node.addresses]
lan = "10.0.0.1"
[[node]]
name = "b"
addresses = { lan = "10.0.0.2", "odd.key" = "z" }
dotted.inner.leaf = true
[[node]]
[node.addresses]
lan = "10.0.0.3"
[a.b]
c = 1
[a]
d = 2
list = [ 1, { e = 3 } ]
[[x.y]]
z = 1
[[x.y]]
z = 2
"quoted key" = 3
`
	ix := buildIndex([]byte(doc))
	for _, tc := range []struct {
		path      string
		line, col int
		kind      unstable.Kind
	}{
		{"top", 1, 1, unstable.Integer},
		{"cluster", 2, 2, unstable.Table},
		{"cluster.name", 3, 1, unstable.String},
		{"cluster.uuid", 4, 3, unstable.String},
		{"node", 5, 3, unstable.ArrayTable},
		{"node[0]", 5, 3, unstable.ArrayTable},
		{"node[0].name", 6, 1, unstable.String},
		{"node[0].addresses", 7, 2, unstable.Table},
		{"node[0].addresses.lan", 8, 1, unstable.String},
		{"node[1]", 9, 3, unstable.ArrayTable},
		{"node[1].name", 10, 1, unstable.String},
		{"node[1].addresses", 11, 1, unstable.InlineTable},
		{"node[1].addresses.lan", 11, 15, unstable.String},
		{`node[1].addresses."odd.key"`, 11, 33, unstable.String},
		{"node[1].dotted", 12, 1, unstable.Invalid},
		{"node[1].dotted.inner.leaf", 12, 1, unstable.Bool},
		{"node[2]", 13, 3, unstable.ArrayTable},
		{"node[2].addresses", 14, 2, unstable.Table},
		{"node[2].addresses.lan", 15, 1, unstable.String},
		{"a.b", 16, 2, unstable.Table},
		{"a", 18, 2, unstable.Table}, // defined explicitly after its child
		{"a.b.c", 17, 1, unstable.Integer},
		{"a.list", 20, 1, unstable.Array},
		{"a.list[0]", 20, 10, unstable.Integer},
		{"a.list[1].e", 20, 15, unstable.Integer},
		{"x.y[0].z", 22, 1, unstable.Integer},
		{"x.y[1].z", 24, 1, unstable.Integer},
		{`x.y[1]."quoted key"`, 25, 1, unstable.Integer},
	} {
		k, ok := ix.keys[tc.path]
		if !ok {
			t.Errorf("%s: not indexed", tc.path)
			continue
		}
		if k.Key.Line != tc.line || k.Key.Col != tc.col || k.Kind != tc.kind {
			t.Errorf("%s at %d:%d kind %v, want %d:%d kind %v", tc.path, k.Key.Line, k.Key.Col, k.Kind, tc.line, tc.col, tc.kind)
		}
	}
	if len(ix.redefs) != 0 {
		t.Errorf("redefinitions in a valid document: %+v", ix.redefs)
	}
	// Reverse lookups used for go-toml's errors.
	if got := ix.keyAt[position{12, 1}]; got != "node[1].dotted.inner.leaf" {
		t.Errorf("keyAt(12:1) = %q", got)
	}
	if got := ix.valueAt[position{11, 21}]; got != "node[1].addresses.lan" {
		t.Errorf("valueAt(11:21) = %q", got)
	}
	// Lookup falls back to the nearest ancestor.
	if pos, exact := ix.lookup("node[2].addresses.san"); exact || pos != (position{14, 2}) {
		t.Errorf("lookup(node[2].addresses.san) = %v, %v; want the [node.addresses] header, inexact", pos, exact)
	}
	if pos, exact := ix.lookup("watchdog.mode"); exact || pos != (position{}) {
		t.Errorf("lookup(watchdog.mode) = %v, %v; want nothing", pos, exact)
	}
}

func TestIndexRedefinitions(t *testing.T) {
	doc := "[cluster]\nname = 1\nname = 2\n[cluster]\n[[node]]\n[node.addresses]\n[node.addresses]\n[[node]]\n[node.addresses]\n"
	ix := buildIndex([]byte(doc))
	want := []redefinition{
		{Path: "cluster.name", At: position{3, 1}, First: position{2, 1}},
		{Path: "cluster", At: position{4, 2}, First: position{1, 2}},
		{Path: "node[0].addresses", At: position{7, 2}, First: position{6, 2}},
	}
	if len(ix.redefs) != len(want) {
		t.Fatalf("redefinitions = %+v, want %+v", ix.redefs, want)
	}
	for i := range want {
		if ix.redefs[i] != want[i] {
			t.Errorf("redefinition %d = %+v, want %+v", i, ix.redefs[i], want[i])
		}
	}
}

func TestIndexStopsAtSyntaxError(t *testing.T) {
	ix := buildIndex([]byte("a = 1\nb = \nc = 3\n"))
	if !ix.has("a") || ix.has("c") {
		t.Errorf("index of a broken document: %v", ix.keys)
	}
}

func TestPathHelpers(t *testing.T) {
	for in, want := range map[string]string{
		"node[1].addresses.lan":   "node[1].addresses",
		"node[1].addresses":       "node[1]",
		"node[1]":                 "node",
		"node":                    "",
		`node[0].addresses."a.b"`: "node[0].addresses",
		`x."a.b".c`:               `x."a.b"`,
		`x."a\".b"`:               "x",
	} {
		if got := parentPath(in); got != want {
			t.Errorf("parentPath(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"node[1].addresses.lan": "node.addresses.lan",
		`node[0]."a.b"`:         `node."a.b"`,
		"":                      "",
	} {
		if got := stripIndexes(in); got != want {
			t.Errorf("stripIndexes(%q) = %q, want %q", in, got, want)
		}
	}
	if got := prefixPath("node[1].foo.bar", 2); got != "node[1].foo" {
		t.Errorf("prefixPath = %q", got)
	}
	if got := prefixPath("node[1].foo.bar", 1); got != "node[1]" {
		t.Errorf("prefixPath = %q", got)
	}
	if got := quoteKey("lan"); got != "lan" {
		t.Errorf("quoteKey(lan) = %q", got)
	}
	if got := quoteKey("a b"); got != `"a b"` {
		t.Errorf("quoteKey(a b) = %q", got)
	}
}

package config

import (
	"bytes"
	"sort"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// position is a place in the configuration file, both counted from 1; the
// column counts bytes, as go-toml does.
type position struct {
	Line, Col int
}

// keyInfo is what the index knows about one key path.
type keyInfo struct {
	// Key is where the key (or table header) is written; for a table that
	// only exists implicitly (the "a" of "[a.b]"), where it first appears.
	Key position
	// Value is where the value starts; zero for tables and arrays.
	Value position
	// Kind is the TOML kind of the value (unstable.String, Integer, ...),
	// unstable.Table or ArrayTable for headers, Invalid for implicit tables.
	Kind unstable.Kind
	// Explicit is false for tables created implicitly by a dotted key or
	// header.
	Explicit bool
	// Data is a scalar value as written (a string without its quotes and
	// escapes), for suggestions built from the user's own value.
	Data string
}

// redefinition is a key or table defined a second time.
type redefinition struct {
	Path  string
	At    position
	First position
}

// index maps the key paths of a TOML document to their positions, so that
// problems found after decoding can still cite a line. Paths are written as
// in FieldError.Field: parts joined with '.', quoted when not a bare key,
// and every array of tables indexed from 0 ("node[2].addresses.lan").
type index struct {
	keys    map[string]*keyInfo
	keyAt   map[position]string // key position → path of the key defined there
	valueAt map[position]string // value position → path of its key
	redefs  []redefinition
	// errTable is the table in which the parser met a syntax error, for
	// naming the field of that error; empty at the top level or when the
	// document parses.
	errTable string

	lineStarts []int
}

// buildIndex walks data with go-toml's unstable parser. It never fails: on
// a syntax error it returns what it indexed up to the error (the decoder
// reports the error itself).
func buildIndex(data []byte) *index {
	ix := &index{
		keys:    make(map[string]*keyInfo),
		keyAt:   make(map[position]string),
		valueAt: make(map[position]string),
	}
	ix.lineStarts = append(ix.lineStarts, 0)
	for i, c := range data {
		if c == '\n' {
			ix.lineStarts = append(ix.lineStarts, i+1)
		}
	}

	var p unstable.Parser
	p.Reset(data)
	arrays := make(map[string]int) // path of an array of tables → elements so far
	var table []string             // resolved parts of the current table
	for p.NextExpression() {
		expr := p.Expression()
		switch expr.Kind {
		case unstable.Table, unstable.ArrayTable:
			parts, first := keyParts(expr)
			if len(parts) == 0 {
				continue
			}
			at := ix.pos(first)
			resolved := ix.resolve(nil, parts[:len(parts)-1], arrays, at)
			last := quoteKey(parts[len(parts)-1])
			if expr.Kind == unstable.ArrayTable {
				arr := joinPath(append(resolved, last))
				n := arrays[arr]
				arrays[arr] = n + 1
				ix.note(arr, keyInfo{Key: at, Kind: unstable.ArrayTable})
				last += "[" + strconv.Itoa(n) + "]"
			}
			table = append(resolved, last)
			path := joinPath(table)
			ix.define(path, keyInfo{Key: at, Kind: expr.Kind, Explicit: true})
		case unstable.KeyValue:
			ix.keyValue(table, expr, arrays)
		}
	}
	if p.Error() != nil {
		ix.errTable = joinPath(table)
	}
	return ix
}

// syntaxErrorField guesses the field of a syntax error at line: the table
// the parser was in, plus the bare key at the start of that line if there
// is one ("name" in `name = "x`).
func (ix *index) syntaxErrorField(data []byte, line int) string {
	field := ix.errTable
	if line < 1 || line > len(ix.lineStarts) {
		return field
	}
	text := data[ix.lineStarts[line-1]:]
	if i := bytes.IndexByte(text, '\n'); i >= 0 {
		text = text[:i]
	}
	if t := bytes.TrimSpace(text); len(t) > 0 && t[0] == '[' {
		return "" // a broken table header: the message says it all
	}
	key, _, found := bytes.Cut(text, []byte("="))
	key = bytes.TrimSpace(key)
	if !found || len(key) == 0 {
		return field
	}
	for _, c := range key {
		if !isBareKeyChar(c) {
			return field
		}
	}
	if field == "" {
		return string(key)
	}
	return field + "." + string(key)
}

func isBareKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// keyValue indexes one key = value, recursing into inline tables and
// arrays.
func (ix *index) keyValue(table []string, kv *unstable.Node, arrays map[string]int) {
	parts, first := keyParts(kv)
	if len(parts) == 0 {
		return
	}
	at := ix.pos(first)
	resolved := ix.resolve(table, parts[:len(parts)-1], arrays, at)
	full := append(resolved, quoteKey(parts[len(parts)-1]))
	path := joinPath(full)
	v := kv.Value()
	info := keyInfo{Key: at, Kind: v.Kind, Explicit: true}
	if v.Raw.Length > 0 {
		info.Value = ix.pos(v.Raw)
	}
	switch v.Kind {
	case unstable.String, unstable.Integer, unstable.Float, unstable.Bool:
		info.Data = string(v.Data)
	}
	ix.define(path, info)
	ix.value(full, v, at, arrays)
}

// value indexes the contents of a value: the key-values of an inline
// table, the elements of an array.
func (ix *index) value(path []string, v *unstable.Node, at position, arrays map[string]int) {
	switch v.Kind {
	case unstable.InlineTable:
		it := v.Children()
		for it.Next() {
			if n := it.Node(); n.Kind == unstable.KeyValue {
				ix.keyValue(path, n, arrays)
			}
		}
	case unstable.Array:
		it := v.Children()
		i := 0
		for it.Next() {
			n := it.Node()
			if n.Kind == unstable.Comment {
				continue
			}
			elem := append(append([]string(nil), path[:len(path)-1]...), path[len(path)-1]+"["+strconv.Itoa(i)+"]")
			info := keyInfo{Key: at, Kind: n.Kind, Explicit: true}
			if n.Raw.Length > 0 {
				info.Key = ix.pos(n.Raw)
				info.Value = info.Key
			}
			ix.define(joinPath(elem), info)
			ix.value(elem, n, info.Key, arrays)
			i++
		}
	}
}

// resolve appends parts to base, indexing each part that names an array of
// tables by its last element, as TOML does for "[node.addresses]" after
// "[[node]]". Intermediate tables are noted as implicit.
func (ix *index) resolve(base, parts []string, arrays map[string]int, at position) []string {
	cur := append([]string(nil), base...)
	for _, part := range parts {
		cur = append(cur, quoteKey(part))
		if n, ok := arrays[joinPath(cur)]; ok && n > 0 {
			cur[len(cur)-1] += "[" + strconv.Itoa(n-1) + "]"
		}
		ix.note(joinPath(cur), keyInfo{Key: at})
	}
	return cur
}

// define records an explicit key or table; a second explicit definition of
// the same path is a redefinition.
func (ix *index) define(path string, info keyInfo) {
	if prev, ok := ix.keys[path]; ok {
		if prev.Explicit && info.Kind != unstable.ArrayTable {
			ix.redefs = append(ix.redefs, redefinition{Path: path, At: info.Key, First: prev.Key})
		} else if !prev.Explicit {
			// An implicit table made explicit later ("[a.b]" then "[a]")
			// is placed where it is defined.
			*prev = info
		}
	} else {
		ix.keys[path] = &info
	}
	if _, ok := ix.keyAt[info.Key]; !ok {
		ix.keyAt[info.Key] = path
	}
	if info.Value != (position{}) {
		if _, ok := ix.valueAt[info.Value]; !ok {
			ix.valueAt[info.Value] = path
		}
	}
}

// note records an implicit table unless the path is already known.
func (ix *index) note(path string, info keyInfo) {
	if _, ok := ix.keys[path]; !ok {
		ix.keys[path] = &info
	}
}

// lookup returns the position of path, or of its nearest ancestor present
// in the file, and whether path itself was found.
func (ix *index) lookup(path string) (position, bool) {
	if ix == nil {
		return position{}, false
	}
	exact := true
	for path != "" {
		if k, ok := ix.keys[path]; ok {
			return k.Key, exact
		}
		exact = false
		path = parentPath(path)
	}
	return position{}, false
}

// has reports whether path is written in the file (explicitly or as the
// implicit parent of something written).
func (ix *index) has(path string) bool {
	if ix == nil {
		return false
	}
	_, ok := ix.keys[path]
	return ok
}

// redefinitionAt returns the redefinition whose key is at pos.
func (ix *index) redefinitionAt(pos position) (redefinition, bool) {
	for _, r := range ix.redefs {
		if r.At == pos {
			return r, true
		}
	}
	return redefinition{}, false
}

// pos converts a byte range of the document to the position of its start.
func (ix *index) pos(r unstable.Range) position {
	off := int(r.Offset)
	line := sort.Search(len(ix.lineStarts), func(i int) bool { return ix.lineStarts[i] > off }) - 1
	if line < 0 {
		line = 0
	}
	return position{Line: line + 1, Col: off - ix.lineStarts[line] + 1}
}

// keyParts returns the decoded parts of a node's key and the range of its
// first part.
func keyParts(n *unstable.Node) ([]string, unstable.Range) {
	var parts []string
	var first unstable.Range
	it := n.Key()
	for it.Next() {
		k := it.Node()
		if len(parts) == 0 {
			first = k.Raw
		}
		parts = append(parts, string(k.Data))
	}
	return parts, first
}

// quoteKey writes a key part as TOML would: bare when it only holds
// A-Za-z0-9_-, else as a quoted string.
func quoteKey(s string) string {
	if s == "" {
		return `""`
	}
	for i := 0; i < len(s); i++ {
		if !isBareKeyChar(s[i]) {
			return strconv.Quote(s)
		}
	}
	return s
}

func joinPath(parts []string) string { return strings.Join(parts, ".") }

// parentPath drops the last part of a path: "node[1].addresses.lan" →
// "node[1].addresses" → "node[1]" → "node" → "". Quoted parts may contain
// dots, so the split respects quotes.
func parentPath(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i > 0 {
			return path[:i]
		}
	}
	inQuote := false
	last := -1
	for i := 0; i < len(path); i++ {
		switch c := path[i]; {
		case c == '\\' && inQuote:
			i++
		case c == '"':
			inQuote = !inQuote
		case c == '.' && !inQuote:
			last = i
		}
	}
	if last < 0 {
		return ""
	}
	return path[:last]
}

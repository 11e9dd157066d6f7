package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"syscall"

	"github.com/google/uuid"
	toml "github.com/pelletier/go-toml/v2"
)

// Limits and defaults of the cluster configuration.
const (
	// MaxNodes is the largest cluster: node ids run from 1 to MaxNodes and
	// the quorum disk has one slot per id.
	MaxNodes = 16
	// MaxNameLen bounds the cluster name, which is written into the quorum
	// disk header and log lines.
	MaxNameLen = 32
	// MaxNodeNameLen is the longest node name: one DNS label.
	MaxNodeNameLen = 63
	// DefaultVotes: every node counts once towards quorum unless told not to.
	DefaultVotes = 1
	// DefaultWatchdogMode: production nodes are reset by the hardware (or
	// softdog) watchdog.
	DefaultWatchdogMode = WatchdogDevice
	// DefaultWatchdogDevice is the kernel's first watchdog device.
	DefaultWatchdogDevice = "/dev/watchdog"
	// MaxFileSize bounds what Load reads: a configuration is a few
	// kilobytes; anything this large is the wrong file.
	MaxFileSize = 1 << 20
)

// WatchdogMode selects how a node that must stop is made to stop.
type WatchdogMode string

// Watchdog modes.
const (
	// WatchdogDevice feeds a kernel watchdog device; when the daemon stops
	// feeding it (self-fence) or hangs, the machine is reset.
	WatchdogDevice WatchdogMode = "device"
	// WatchdogProcess kills the node's process group instead of resetting
	// the machine. For tests and simulations on one machine only: it cannot
	// stop a hung kernel or a hung I/O.
	WatchdogProcess WatchdogMode = "process"
	// WatchdogNone disables self-fencing. Takeover without fencing is then
	// unsafe; it needs allow_none = true.
	WatchdogNone WatchdogMode = "none"
)

// Cluster is a validated cluster configuration.
type Cluster struct {
	// Name is a short name for logs and the quorum disk header.
	Name string
	// UUID identifies the cluster on the quorum disk and in heartbeats; a
	// node refuses a disk or a packet carrying another UUID.
	UUID uuid.UUID
	// KeyFile is the path of the HMAC-SHA256 key that authenticates network
	// heartbeats; the same file must be on every node.
	KeyFile string
	// PackagesDir is the directory of the package files, "" for packages/
	// beside the cluster file; a relative path is relative to the cluster
	// file's directory. It is this node's path and not part of the
	// Generation (the packages' own contents are compared by the
	// packages' layer).
	PackagesDir string
	// Timing holds the four timing bases; see Derived for the rest.
	Timing Timing
	// Watchdog selects how a node self-fences.
	Watchdog Watchdog
	// QuorumDisk is the shared quorum disk.
	QuorumDisk QuorumDisk
	// Networks are the heartbeat networks, in file order. The position of
	// a network is its index in heartbeat packets.
	Networks []Network
	// Nodes are the members, in file order.
	Nodes []Node
	// Fence selects the LUNs fenced with persistent reservations.
	Fence Fence
	// Events is where this node journals its events and whom it tells.
	Events Events
	// Control is the port of the control channel between nodes.
	Control Control

	// src locates fields in the file the Cluster was parsed from; nil for
	// a Cluster built in code.
	src *source
}

// Watchdog is the [watchdog] table.
type Watchdog struct {
	Mode WatchdogMode
	// Device is the watchdog device for WatchdogDevice.
	Device string
	// AllowNone must be true for Mode WatchdogNone.
	AllowNone bool
}

// QuorumDisk is the [quorum_disk] table.
type QuorumDisk struct {
	// Path is the quorum disk's device path on every node that does not
	// override it. Prefer a stable /dev/disk/by-id path.
	Path string
}

// Network is one heartbeat network.
type Network struct {
	Name string
	// Port is the UDP port heartbeats are sent to and received on.
	Port int
}

// Node is one cluster member.
type Node struct {
	// Name is the node's host name (one DNS label).
	Name string
	// ID is the node's number, 1 to MaxNodes; it selects the node's slot on
	// the quorum disk and never changes while the node is a member.
	ID int
	// QuorumDisk overrides QuorumDisk.Path on this node when not empty.
	QuorumDisk string
	// Votes is 1, or 0 for a node that runs packages but does not count
	// towards quorum.
	Votes int
	// Addresses holds the node's address on each heartbeat network, by
	// network name.
	Addresses map[string]netip.Addr
	// FenceLUNs, when not nil, replaces Fence.LUNs on this node (its own
	// paths to the data LUNs).
	FenceLUNs []string `json:",omitempty"`
}

// source is where a Cluster (or a Package) came from.
type source struct {
	file string
	ix   *index
	// root is the type the file decodes into, for the schema of its keys.
	root reflect.Type
}

// clusterSchema is the root of the cluster file's schema.
var clusterSchema = reflect.TypeOf(fileConfig{})

// NodeByName returns the node called name.
func (c *Cluster) NodeByName(name string) (*Node, bool) {
	for i := range c.Nodes {
		if c.Nodes[i].Name == name {
			return &c.Nodes[i], true
		}
	}
	return nil, false
}

// NodeByID returns the node with the given id.
func (c *Cluster) NodeByID(id int) (*Node, bool) {
	for i := range c.Nodes {
		if c.Nodes[i].ID == id {
			return &c.Nodes[i], true
		}
	}
	return nil, false
}

// NetworkByName returns the heartbeat network called name and its index.
func (c *Cluster) NetworkByName(name string) (*Network, int, bool) {
	for i := range c.Networks {
		if c.Networks[i].Name == name {
			return &c.Networks[i], i, true
		}
	}
	return nil, -1, false
}

// QuorumDiskPath returns the quorum disk path on node nodeName: its own
// override, else the cluster default. It returns "" for an unknown node.
func (c *Cluster) QuorumDiskPath(nodeName string) string {
	n, ok := c.NodeByName(nodeName)
	if !ok {
		return ""
	}
	if n.QuorumDisk != "" {
		return n.QuorumDisk
	}
	return c.QuorumDisk.Path
}

// TotalVotes is the sum of all nodes' votes.
func (c *Cluster) TotalVotes() int {
	total := 0
	for _, n := range c.Nodes {
		total += n.Votes
	}
	return total
}

// Derived returns the timeouts derived from the timing bases.
func (c *Cluster) Derived() Derived { return c.Timing.Derive() }

// Load reads and parses the configuration file at path. Problems with the
// contents are returned as *Errors naming path.
//
// Only a regular file (or a symbolic link to one) is read. The file is
// opened without blocking and checked before the first read, so a FIFO, a
// device or a directory given by mistake is refused at once instead of
// hanging the caller.
func Load(path string) (*Cluster, error) {
	data, err := readFile(path, "cluster configuration", "/etc/mtc/cluster.toml")
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// readFile reads the configuration file at path (what it is and an example
// path are for messages), refusing anything but a regular file (or a
// symbolic link to one) and anything larger than MaxFileSize.
func readFile(path, what, example string) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
	// writer. It changes nothing for a regular file.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, &Errors{List: []*FieldError{{File: path, Err: ErrNotRegular,
			Msg: fmt.Sprintf("%s is not a regular file (%s); give the path of the %s file, such as %s", path, describeMode(fi.Mode()), what, example)}}}
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	if len(data) > MaxFileSize {
		return nil, &Errors{List: []*FieldError{{File: path, Err: ErrInvalid,
			Msg: fmt.Sprintf("the file is larger than %d bytes; is this the %s?", MaxFileSize, what)}}}
	}
	return data, nil
}

// describeMode names the type of a file that is not a regular file.
func describeMode(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "mode " + m.String()
}

// Parse decodes and validates a configuration. name is the file name used
// in error messages. On failure the error is an *Errors holding every
// problem found, sorted by line; the Cluster is nil.
//
// Parse reports: TOML syntax errors, repeated keys and tables (one error:
// decoding stops there), wrong value types (likewise), then all at once:
// unknown keys, malformed values and everything Validate checks.
func Parse(name string, data []byte) (*Cluster, error) {
	var f fileConfig
	src := &source{file: name, ix: buildIndex(data), root: clusterSchema}
	list, err := src.decode(data, &f)
	if err != nil {
		return nil, err
	}
	f.applyDefaults()
	c, convErrs := f.toCluster()
	list = append(list, convErrs...)
	skip := make(map[string]bool, len(convErrs))
	for _, fe := range convErrs {
		skip[fe.Field] = true
	}
	list = append(list, c.validate(skip)...)
	src.place(list)
	if len(list) > 0 {
		return nil, asError(list)
	}
	c.src = src
	return c, nil
}

// decode decodes data strictly into v (a pointer to s.root). It returns the
// unknown and miscased keys, which do not stop decoding, or an *Errors
// holding the one syntax or type error that does.
func (s *source) decode(data []byte, v any) ([]*FieldError, error) {
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var list []*FieldError
	var strict *toml.StrictMissingError
	var derr *toml.DecodeError
	switch {
	case err == nil:
	case errors.As(err, &strict):
		for i := range strict.Errors {
			list = append(list, s.unknownKey(&strict.Errors[i]))
		}
	case errors.As(err, &derr):
		fe := s.decodeError(derr, data)
		return nil, &Errors{List: []*FieldError{fe}}
	default:
		return nil, &Errors{List: []*FieldError{{File: s.file, Err: ErrSyntax, Cause: err,
			Msg: err.Error() + "; fix the file's TOML syntax"}}}
	}
	return append(list, s.ix.caseErrors(s.root)...), nil
}

// Validate checks the whole configuration without changing it and returns
// an *Errors listing every problem, or nil. Parse calls it; call it
// yourself on a Cluster built in code.
func (c *Cluster) Validate() error {
	list := c.validate(nil)
	c.src.place(list)
	return asError(list)
}

// place fills in the file, line and column of each error and composes its
// message, citing the line of a related field.
func (s *source) place(list []*FieldError) {
	for _, fe := range list {
		if s == nil {
			fe.compose(0)
			continue
		}
		fe.File = s.file
		pos, exact := s.ix.lookup(fe.Field)
		related := 0
		if fe.related != "" {
			if rpos, ok := s.ix.lookup(fe.related); ok {
				related = rpos.Line
				if !exact {
					// The field is absent (a default) but the other field
					// of the relation is written: point there.
					pos, related = rpos, 0
				}
			}
		}
		if fe.Line == 0 && fe.Field != "" && pos.Line > 0 {
			fe.Line, fe.Col = pos.Line, pos.Col
		}
		fe.compose(related)
	}
}

// unknownKey turns one of go-toml's strict-mode errors into a FieldError
// with a suggestion.
func (s *source) unknownKey(de *toml.DecodeError) *FieldError {
	line, col := de.Position()
	key := de.Key()
	field := s.ix.keyAt[position{line, col}]
	if field == "" {
		parts := make([]string, len(key))
		for i, k := range key {
			parts[i] = quoteKey(k)
		}
		field = joinPath(parts)
	}
	// The reported key may be dotted ("foo.bar = 1" in [[node]]): find the
	// first part the schema does not know.
	unknown, known := field, parentPath(field)
	for i := range splitPath(field) {
		prefix := prefixPath(field, i+1)
		if _, ok := schemaAt(s.root, stripIndexes(prefix)); !ok {
			unknown, known = prefix, prefixPath(field, i)
			break
		}
	}
	name := splitPath(unknown)
	bad := name[len(name)-1]
	t, _ := schemaAt(s.root, stripIndexes(known))
	var keys []string
	for _, f := range schemaFields(t) {
		keys = append(keys, f.Key)
	}
	what, kind := fmt.Sprintf("unknown key %q", bad), "key"
	if strings.Contains(de.Error(), "missing table") {
		what, kind = fmt.Sprintf("unknown table [%s]", stripIndexes(unknown)), "table"
	}
	where := "at the top level"
	if known != "" {
		where = "in [" + stripIndexes(known) + "]"
	}
	hint := fmt.Sprintf("the keys %s are: %s", where, strings.Join(keys, ", "))
	if len(keys) == 0 {
		hint = "remove it"
	}
	if sug := suggest(bad, keys); sug != "" {
		what += fmt.Sprintf(" (did you mean %q?)", sug)
		hint = "correct the spelling or remove the " + kind
	}
	fe := &FieldError{Field: unknown, Line: line, Col: col, Err: ErrUnknownKey, Cause: de, what: what, hint: hint}
	return fe
}

// decodeError turns a go-toml syntax or type error into a FieldError.
func (s *source) decodeError(de *toml.DecodeError, data []byte) *FieldError {
	line, col := de.Position()
	at := position{line, col}
	fe := &FieldError{File: s.file, Line: line, Col: col, Err: ErrSyntax, Cause: de}
	msg := strings.TrimPrefix(de.Error(), "toml: ")
	if r, ok := s.ix.redefinitionAt(at); ok {
		fe.Field = r.Path
		fe.Msg = fmt.Sprintf("%s is already defined at line %d; TOML does not allow a key or table twice: remove or merge one of them", r.Path, r.First.Line)
		return fe
	}
	field := s.ix.valueAt[at]
	if field == "" {
		field = s.ix.keyAt[at]
	}
	if field == "" && len(de.Key()) > 0 {
		parts := make([]string, len(de.Key()))
		for i, k := range de.Key() {
			parts[i] = quoteKey(k)
		}
		field = joinPath(parts)
	}
	if field == "" {
		field = s.ix.syntaxErrorField(data, line)
	}
	fe.Field = field
	if strings.HasPrefix(msg, "cannot decode TOML ") || strings.HasPrefix(msg, "cannot store ") ||
		strings.Contains(msg, "too large to fit") {
		fe.Err = ErrType
		found := ""
		if k, ok := s.ix.keys[field]; ok {
			found = describeKind(k.Kind)
		}
		if t, ok := schemaAt(s.root, stripIndexes(field)); ok && found != "" {
			if strings.Contains(msg, "too large to fit") {
				fe.Msg = "the number is too large; " + describeType(t) + " is expected here"
			} else {
				k := s.ix.keys[field]
				ex, ok := ownExample(t, field, k.Kind, k.Data)
				if !ok {
					ex = exampleFor(t, stripIndexes(field))
				}
				fe.Msg = fmt.Sprintf("expected %s, found %s; write it as %s", describeType(t), found, ex)
			}
			return fe
		}
		fe.Msg = msg + "; fix the value's type"
		return fe
	}
	if strings.Contains(msg, "already defined") || strings.Contains(msg, "already exists") {
		fe.Msg = msg + "; TOML does not allow a key or table twice: remove or merge one of them"
		return fe
	}
	fe.Msg = msg + "; fix the TOML syntax here"
	return fe
}

// prefixPath returns the first n parts of path, keeping array indexes.
func prefixPath(path string, n int) string {
	p := path
	parts := len(splitPath(path))
	for parts > n && p != "" {
		wasIndex := strings.HasSuffix(p, "]")
		p = parentPath(p)
		if !wasIndex {
			parts--
		}
	}
	return p
}

// stripIndexes removes array indexes: "node[2].id" → "node.id".
func stripIndexes(path string) string {
	if path == "" {
		return ""
	}
	parts := splitPath(path)
	for i := range parts {
		parts[i] = quoteKey(parts[i])
	}
	return joinPath(parts)
}

// Generation identifies the content of the configuration: the first eight
// bytes of a SHA-256 over a canonical encoding of every parsed value.
// Identical files give identical generations on every node; comments, key
// order and formatting do not count, any changed value does. Nodes carry it
// in every heartbeat and slot, and drop heartbeats of a node whose
// generation differs: a cluster must run one configuration. Never zero.
func (c *Cluster) Generation() uint64 {
	canon, err := json.Marshal(struct {
		Name       string
		UUID       uuid.UUID
		KeyFile    string
		Timing     Timing
		Watchdog   Watchdog
		QuorumDisk QuorumDisk
		Networks   []Network
		Nodes      []Node
		Fence      *Fence `json:",omitempty"`
	}{c.Name, c.UUID, c.KeyFile, c.Timing, c.Watchdog, c.QuorumDisk, c.Networks, c.Nodes, c.fenceCanon()})
	if err != nil {
		// Every field is a plain value; this cannot fail.
		panic(fmt.Sprintf("config: canonical encoding: %v", err))
	}
	sum := sha256.Sum256(canon)
	if g := binary.BigEndian.Uint64(sum[:8]); g != 0 {
		return g
	}
	return 1
}

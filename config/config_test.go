package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
)

// base is a valid configuration; the error cases edit single lines of it,
// so the line numbers below are those of this text.
const base = `[cluster]
name = "payments"
uuid = "0b6e3a52-6c1f-4d8e-9a43-2f1c5d7e8b90"
key_file = "/etc/mtc/cluster.key"

[quorum_disk]
path = "/dev/sdb"

[[network]]
name = "lan"
port = 5405

[[network]]
name = "san"
port = 5406

[[node]]
name = "alpha"
id = 1
[node.addresses]
lan = "10.0.0.1"
san = "10.1.0.1"

[[node]]
name = "beta"
id = 2
[node.addresses]
lan = "10.0.0.2"
san = "10.1.0.2"

[[node]]
name = "gamma"
id = 3
[node.addresses]
lan = "10.0.0.3"
san = "10.1.0.3"
`

// line replaces line n (from 1) of base with text, which may hold several
// lines (later lines then move down).
func line(n int, text string) string {
	lines := strings.Split(base, "\n")
	lines[n-1] = text
	return strings.Join(lines, "\n")
}

// want is one expected problem.
type want struct {
	line  int
	field string
	err   error  // sentinel
	msg   string // substring of the message
}

func TestParseValidBase(t *testing.T) {
	c, err := Parse("cluster.toml", []byte(base))
	if err != nil {
		t.Fatalf("base configuration rejected:\n%v", err)
	}
	if c.Timing != DefaultTiming() {
		t.Errorf("timing = %+v, want the defaults %+v", c.Timing, DefaultTiming())
	}
	if c.Watchdog != (Watchdog{Mode: WatchdogDevice, Device: DefaultWatchdogDevice}) {
		t.Errorf("watchdog = %+v, want the defaults", c.Watchdog)
	}
	for _, n := range c.Nodes {
		if n.Votes != 1 {
			t.Errorf("node %s votes = %d, want default 1", n.Name, n.Votes)
		}
	}
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("unexpected warnings: %v", w)
	}
}

func TestParseErrors(t *testing.T) {
	seventeen := base
	for i := 4; i <= 17; i++ {
		seventeen += fmt.Sprintf("\n[[node]]\nname = \"n%d\"\nid = %d\n[node.addresses]\nlan = \"10.0.0.%d\"\nsan = \"10.1.0.%d\"\n", i, i, i, i)
	}
	tests := []struct {
		name  string
		doc   string
		wants []want
	}{
		{"syntax error", line(2, `name = "payments`), []want{
			{2, "cluster.name", ErrSyntax, "fix the TOML syntax"}}},
		{"syntax error in a node", line(33, "id = 3 3"), []want{
			{33, "node[2].id", ErrSyntax, "fix the TOML syntax"}}},
		{"syntax error in a header", line(31, "[[node]"), []want{
			{31, "", ErrSyntax, "expected ']]' to close array table name"}}},
		{"unknown key with suggestion", line(2, `nmae = "payments"`), []want{
			{1, "cluster.name", ErrMissing, "the cluster has no name"},
			{2, "cluster.nmae", ErrUnknownKey, `unknown key "nmae" (did you mean "name"?)`}}},
		{"unknown key without suggestion", line(19, "colour = 1"), []want{
			{17, "node[0].id", ErrMissing, `node "alpha" has no id`},
			{19, "node[0].colour", ErrUnknownKey, "the keys in [node] are: name, id, quorum_disk, votes, addresses"}}},
		{"key in the wrong case", line(2, "Name = \"payments\""), []want{
			{2, "cluster.Name", ErrUnknownKey, `unknown key "Name" (did you mean "name"?); keys are case-sensitive`}}},
		{"key in two cases", line(2, "name = \"payments\"\nNAME = \"other\""), []want{
			{3, "cluster.NAME", ErrUnknownKey, `unknown key "NAME" (did you mean "name"?)`}}},
		{"table in the wrong case", line(1, "[Cluster]"), []want{
			{1, "Cluster", ErrUnknownKey, `unknown table "Cluster" (did you mean "cluster"?)`}}},
		{"unknown dotted key", line(26, "id = 2\nfoo.bar = 1"), []want{
			{27, "node[1].foo", ErrUnknownKey, `unknown key "foo"`}}},
		{"unknown table", base + "[watchdgo]\nmode = \"device\"\n", []want{
			{37, "watchdgo", ErrUnknownKey, `unknown table [watchdgo] (did you mean "watchdog"?); correct the spelling or remove the table`}}},
		{"unknown table inside node", line(33, "id = 3\n[node.extra]\nx = 1"), []want{
			{34, "node[2].extra", ErrUnknownKey, "unknown table [node.extra]"}}},
		{"duplicate key", line(18, "name = \"alpha\"\nname = \"alpha2\""), []want{
			{19, "node[0].name", ErrSyntax, "already defined at line 18"}}},
		{"duplicate table", base + "[cluster]\nname = \"other\"\n", []want{
			{37, "cluster", ErrSyntax, "already defined at line 1"}}},
		{"duplicate addresses table", line(23, "[node.addresses]\n"), []want{
			{23, "node[0].addresses", ErrSyntax, "already defined at line 20"}}},
		{"duplicate key in an inline table", strings.Replace(base, "[node.addresses]\nlan = \"10.0.0.3\"\nsan = \"10.1.0.3\"", `addresses = { lan = "10.0.0.3", lan = "10.1.0.3" }`, 1), []want{
			{34, "node[2].addresses", ErrSyntax, "key lan is already defined; TOML does not allow a key or table twice"}}},
		{"wrong type", line(19, `id = "1"`), []want{
			{19, "node[0].id", ErrType, "expected an integer, found a string; write it as id = 1"}}},
		{"wrong type in inline table", strings.Replace(base, "[node.addresses]\nlan = \"10.0.0.3\"\nsan = \"10.1.0.3\"", `addresses = { lan = 3, san = "10.1.0.3" }`, 1), []want{
			{34, "node[2].addresses.lan", ErrType, `expected a string in quotes, found an integer`}}},
		{"table where a key belongs", line(2, "name = { first = \"a\" }"), []want{
			{2, "cluster.name", ErrType, "expected a string in quotes, found a table"}}},
		{"boolean as string", base + "[watchdog]\nallow_none = \"yes\"\n", []want{
			{38, "watchdog.allow_none", ErrType, "expected true or false, found a string; write it as allow_none = true"}}},
		{"boolean as a word that is not one", base + "[watchdog]\nallow_none = \"maybe\"\n", []want{
			{38, "watchdog.allow_none", ErrType, "expected true or false, found a string; write it as allow_none = false"}}},
		{"escape sequence in the cluster name", line(2, `name = "pay\u001b[2Jments"`), []want{
			{2, "cluster.name", ErrInvalid, `the cluster name "pay\x1b[2Jments" contains the control character U+001B at byte 3`}}},
		{"control character in a node name", line(25, "name = \"be\\u0007ta\""), []want{
			{25, "node[1].name", ErrInvalid, `the node name "be\ata" contains the control character U+0007 at byte 2`}}},
		{"control character in a network name", line(10, "name = \"l\\ran\""), []want{
			{10, "network[0].name", ErrInvalid, `the network name "l\ran" contains the control character U+000D at byte 1`},
			{21, "node[0].addresses.lan", ErrInvalid, `there is no heartbeat network "lan"`},
			{28, "node[1].addresses.lan", ErrInvalid, `there is no heartbeat network "lan"`},
			{35, "node[2].addresses.lan", ErrInvalid, `there is no heartbeat network "lan"`}}},
		{"bidirectional override in a path", line(4, `key_file = "/etc/mtc/\u202ecluster.key"`), []want{
			{4, "cluster.key_file", ErrInvalid, `the path "/etc/mtc/\u202ecluster.key" contains the control character U+202E at byte 9`}}},
		{"control character in a quorum disk path", line(7, `path = "/dev/sd\tb"`), []want{
			{7, "quorum_disk.path", ErrInvalid, `the path "/dev/sd\tb" contains the control character U+0009 at byte 7`}}},
		{"missing port: a free one is suggested", line(15, ""), []want{
			{13, "network[1].port", ErrMissing, `network "san" has no port; add port = 5406 (the UDP port`}}},
		{"missing id: a free one is suggested", line(19, ""), []want{
			{17, "node[0].id", ErrMissing, `node "alpha" has no id; add id = 1 (ids run from 1 to 16`}}},
		{"duplicate id: a free one is suggested", line(33, "id = 2"), []want{
			{33, "node[2].id", ErrDuplicate, `2 is already used by node "beta" (line 26); give each node a unique id from 1 to 16, such as 3 (unused)`}}},
		{"port as string", line(11, `port = "5406"`), []want{
			{11, "network[0].port", ErrType, "expected an integer, found a string; write it as port = 5406"}}},
		{"id as string", line(19, `id = "7"`), []want{
			{19, "node[0].id", ErrType, "expected an integer, found a string; write it as id = 7"}}},
		{"votes as string", line(19, "id = 1\nvotes = \"0\""), []want{
			{20, "node[0].votes", ErrType, "expected an integer, found a string; write it as votes = 0"}}},
		{"name as integer", line(2, `name = 42`), []want{
			{2, "cluster.name", ErrType, `expected a string in quotes, found an integer; write it as name = "42"`}}},
		{"port with a fraction", line(11, "port = 5405.5"), []want{
			{11, "network[0].port", ErrType, "expected an integer, found a number with a fraction; write it as port = 5405"}}},
		{"other port with a fraction", line(11, "port = 5407.5"), []want{
			{11, "network[0].port", ErrType, "expected an integer, found a number with a fraction; write it as port = 5407"}}},
		{"integer too large", line(19, "id = 99999999999999999999"), []want{
			{19, "node[0].id", ErrType, "the number is too large; an integer is expected here"}}},
		{"array for a string", line(2, `name = ["payments"]`), []want{
			{2, "cluster.name", ErrType, "expected a string in quotes, found an array"}}},
		{"date for a string", line(2, `name = 2024-01-01`), []want{
			{2, "cluster.name", ErrType, "expected a string in quotes, found a date or time"}}},
		{"array of tables for a table", line(1, "[[cluster]]"), []want{
			{1, "cluster[0]", ErrType, "expected a table, found an array of tables; write it as a [cluster] table"}}},
		{"integer for the nodes", "node = 3\n" + base, []want{
			{1, "node", ErrType, "expected an array of tables, found an integer; write it as [[node]] tables, one per server"}}},
		{"duration as integer", base + "[timing]\nheartbeat_interval = 200\n", []want{
			{38, "timing.heartbeat_interval", ErrType, `expected a duration string such as "200ms", found an integer; write it as heartbeat_interval = "200ms" if 200 milliseconds are meant`}}},
		{"duration as another integer", base + "[timing]\nfailure_timeout = 3\n", []want{
			{38, "timing.failure_timeout", ErrType, `write it as failure_timeout = "3ms" if 3 milliseconds are meant`}}},
		{"duration in hours", base + "[timing]\nwatchdog_timeout = \"1h\"\n", []want{
			{38, "timing.watchdog_timeout", ErrInvalid, `"1h" uses the unit "h"; durations are written in ms, s or m: write "60m"`}}},
		{"duration in microseconds", base + "[timing]\nio_timeout = \"200us\"\nheartbeat_interval = \"1500µs\"\n", []want{
			{38, "timing.io_timeout", ErrInvalid, `"200us" uses the unit "us"; durations are written in ms, s or m: write "0.2ms"`},
			{39, "timing.heartbeat_interval", ErrInvalid, `"1500µs" uses the unit "µs"; durations are written in ms, s or m: write "1.5ms"`}}},
		{"duration in nanoseconds", base + "[timing]\nio_timeout = \"400000000ns\"\n", []want{
			{38, "timing.io_timeout", ErrInvalid, `"400000000ns" uses the unit "ns"; durations are written in ms, s or m: write "400ms"`}}},
		{"bad duration", base + "[timing]\nheartbeat_interval = \"200\"\nwatchdog_timeout = \"-3s\"\n", []want{
			{38, "timing.heartbeat_interval", ErrInvalid, `"200" is not a duration`},
			{39, "timing.watchdog_timeout", ErrInvalid, `"-3s" is not a positive duration`}}},
		{"timing relation", base + "[timing]\nheartbeat_interval = \"400ms\"\nfailure_timeout = \"1s\"\n", []want{
			{39, "timing.failure_timeout", ErrTiming, "failure_timeout = 1s is less than 3 x heartbeat_interval (400ms): one lost packet or one slow write would count as a failure (timing.heartbeat_interval is at line 38); set failure_timeout >= 1.2s or heartbeat_interval <= 333ms"}}},
		{"failure timeout of too many heartbeats", base + "[timing]\nheartbeat_interval = \"50ms\"\nio_timeout = \"50ms\"\nfailure_timeout = \"30s\"\nwatchdog_timeout = \"1s\"\n", []want{
			{40, "timing.failure_timeout", ErrTiming, "failure_timeout = 30s is more than 100 x heartbeat_interval (50ms): the settle grace of a node that dropped a live peer, which grows with the clock drift over failure_timeout, would no longer fit in the takeover margin, and its packages could be taken over while it still runs them (timing.heartbeat_interval is at line 38); set failure_timeout <= 5s or heartbeat_interval >= 300ms"}}},
		{"timing relation with a default", base + "[timing]\nio_timeout = \"600ms\"\n", []want{
			{38, "timing.failure_timeout", ErrTiming, "failure_timeout = 1s is less than 2 x io_timeout (600ms): a node could not retry a timed-out write of its slot before it must self-fence; set failure_timeout >= 1.2s or io_timeout <= 500ms"}}},
		{"bad uuid", line(3, `uuid = "0b6e3a52-zzzz"`), []want{
			{3, "cluster.uuid", ErrInvalid, `"0b6e3a52-zzzz" is not a UUID`}}},
		{"nil uuid", line(3, `uuid = "00000000-0000-0000-0000-000000000000"`), []want{
			{3, "cluster.uuid", ErrMissing, "uuidgen"}}},
		{"missing uuid", line(3, "# uuid"), []want{
			{1, "cluster.uuid", ErrMissing, "the cluster has no UUID"}}},
		{"bad cluster name", line(2, `name = "Payments!"`), []want{
			{2, "cluster.name", ErrInvalid, `"Payments!" is not a valid cluster name`}}},
		{"relative key file", line(4, `key_file = "cluster.key"`), []want{
			{4, "cluster.key_file", ErrInvalid, "not an absolute path"}}},
		{"id out of range", line(33, "id = 17"), []want{
			{33, "node[2].id", ErrInvalid, "17 is out of range; give each node a unique id from 1 to 16"}}},
		{"id zero", line(33, "id = 0"), []want{
			{33, "node[2].id", ErrInvalid, "0 is out of range"}}},
		{"duplicate id", line(33, "id = 2"), []want{
			{33, "node[2].id", ErrDuplicate, `2 is already used by node "beta" (line 26); give each node a unique id from 1 to 16`}}},
		{"duplicate node name", line(32, `name = "beta"`), []want{
			{32, "node[2].name", ErrDuplicate, `node "beta" is already defined (line 25)`}}},
		{"bad node name", line(32, `name = "-gamma"`), []want{
			{32, "node[2].name", ErrInvalid, `"-gamma" is not a valid node name`}}},
		{"duplicate address", line(35, `lan = "10.0.0.2"`), []want{
			{35, "node[2].addresses.lan", ErrDuplicate, `10.0.0.2 is already the address of node "beta" on network "lan" (line 28)`}}},
		{"missing address", line(36, "# no san"), []want{
			{34, "node[2].addresses.san", ErrMissing, `node "gamma" has no address on network "san"`}}},
		{"address on unknown network", line(36, `sna = "10.1.0.3"`), []want{
			{34, "node[2].addresses.san", ErrMissing, `has no address on network "san"`},
			{36, "node[2].addresses.sna", ErrInvalid, `there is no heartbeat network "sna" (did you mean "san"?)`}}},
		{"host name instead of address", line(35, `lan = "gamma.example.com"`), []want{
			{35, "node[2].addresses.lan", ErrInvalid, `"gamma.example.com" is not an IP address`}}},
		{"unspecified address", line(35, `lan = "0.0.0.0"`), []want{
			{35, "node[2].addresses.lan", ErrInvalid, "0.0.0.0 cannot be a node's address"}}},
		{"mixed address families", line(35, `lan = "fd00::3"`), []want{
			{35, "node[2].addresses.lan", ErrInvalid, `fd00::3 is IPv6 but node "alpha" uses IPv4 on network "lan" (line 21)`}}},
		{"no nodes", strings.Join(strings.Split(base, "\n")[:16], "\n"), []want{
			{0, "node", ErrMissing, "no nodes are defined"}}},
		{"seventeen nodes", seventeen, []want{
			{129, "node[16]", ErrInvalid, "the cluster has 17 nodes; at most 16"},
			{131, "node[16].id", ErrInvalid, "17 is out of range"}}},
		{"no networks", line(9, "") + "", nil}, // replaced below
		{"duplicate network", line(14, `name = "lan"`), []want{
			{14, "network[1].name", ErrDuplicate, `network "lan" is already defined (line 10)`},
			{22, "node[0].addresses.san", ErrInvalid, `there is no heartbeat network "san"`},
			{29, "node[1].addresses.san", ErrInvalid, `there is no heartbeat network "san"`},
			{36, "node[2].addresses.san", ErrInvalid, `there is no heartbeat network "san"`}}},
		{"port out of range", line(15, "port = 70000"), []want{
			{15, "network[1].port", ErrInvalid, "70000 is not a UDP port"}}},
		{"missing port", line(15, ""), []want{
			{13, "network[1].port", ErrMissing, `network "san" has no port`}}},
		{"watchdog none", base + "[watchdog]\nmode = \"none\"\n", []want{
			{38, "watchdog.mode", ErrInvalid, `set allow_none = true`}}},
		{"watchdog mode unknown", base + "[watchdog]\nmode = \"hardware\"\n", []want{
			{38, "watchdog.mode", ErrInvalid, `"hardware" is not a watchdog mode`}}},
		{"watchdog device relative", base + "[watchdog]\ndevice = \"watchdog0\"\n", []want{
			{38, "watchdog.device", ErrInvalid, "not an absolute path"}}},
		{"relative quorum disk", line(7, `path = "sdb"`), []want{
			{7, "quorum_disk.path", ErrInvalid, `"sdb" is not an absolute path`}}},
		{"quorum disk only on one node", line(7, "") + "", nil}, // replaced below
		{"no quorum disk", line(7, ""), []want{
			{6, "quorum_disk.path", ErrMissing, "no quorum disk is set"}}},
		{"votes out of range", line(33, "id = 3\nvotes = 2"), []want{
			{34, "node[2].votes", ErrInvalid, "2 is not a valid number of votes"}}},
		{"no votes at all", strings.NewReplacer("id = 1", "id = 1\nvotes = 0", "id = 2", "id = 2\nvotes = 0", "id = 3", "id = 3\nvotes = 0").Replace(base), []want{
			{17, "node", ErrInvalid, "no node has a vote"}}},
	}
	// Cases built from others.
	for i := range tests {
		switch tests[i].name {
		case "no networks":
			lines := strings.Split(base, "\n")
			doc := strings.Join(append(append([]string{}, lines[:8]...), lines[16:]...), "\n")
			tests[i].doc = strings.NewReplacer(`lan = "10.0.0.1"`, "", `lan = "10.0.0.2"`, "", `lan = "10.0.0.3"`, "",
				`san = "10.1.0.1"`, "", `san = "10.1.0.2"`, "", `san = "10.1.0.3"`, "").Replace(doc)
			tests[i].wants = []want{{0, "network", ErrMissing, "no heartbeat network is defined"}}
		case "quorum disk only on one node":
			tests[i].doc = strings.Replace(line(7, ""), "id = 3", `id = 3
quorum_disk = "/dev/sdc"`, 1)
			tests[i].wants = []want{
				{17, "node[0].quorum_disk", ErrMissing, `node "alpha" has no quorum disk path`},
				{24, "node[1].quorum_disk", ErrMissing, `node "beta" has no quorum disk path`}}
		}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("cluster.toml", []byte(tc.doc))
			if err == nil {
				t.Fatalf("accepted, want %d errors", len(tc.wants))
			}
			if c != nil {
				t.Errorf("returned a Cluster with an error")
			}
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %T is not *Errors: %v", err, err)
			}
			if len(errs.List) != len(tc.wants) {
				t.Fatalf("got %d errors, want %d:\n%v", len(errs.List), len(tc.wants), err)
			}
			for i, w := range tc.wants {
				fe := errs.List[i]
				if fe.Line != w.line || fe.Field != w.field {
					t.Errorf("error %d at line %d field %q, want line %d field %q: %v", i, fe.Line, fe.Field, w.line, w.field, fe)
				}
				if !errors.Is(fe, w.err) {
					t.Errorf("error %d is not %v: %v", i, w.err, fe)
				}
				if !errors.Is(err, w.err) {
					t.Errorf("*Errors does not match %v with errors.Is", w.err)
				}
				if !strings.Contains(fe.Msg, w.msg) {
					t.Errorf("error %d message\n  %s\ndoes not contain\n  %s", i, fe.Msg, w.msg)
				}
				prefix := "cluster.toml: "
				if w.line > 0 {
					prefix = fmt.Sprintf("cluster.toml:%d:", w.line)
				}
				if !strings.HasPrefix(fe.Error(), prefix) {
					t.Errorf("error %d = %q, want prefix %q", i, fe.Error(), prefix)
				}
				if w.field != "" && !strings.Contains(fe.Error(), " "+w.field+": ") {
					t.Errorf("error %d = %q does not name field %s", i, fe.Error(), w.field)
				}
			}
		})
	}
}

func TestTimingErrorIsWrapped(t *testing.T) {
	_, err := Parse("c.toml", []byte(base+"[timing]\nwatchdog_timeout = \"500ms\"\n"))
	var te *TimingError
	if !errors.As(err, &te) {
		t.Fatalf("errors.As(*TimingError) failed: %v", err)
	}
	if te.Field != "watchdog_timeout" {
		t.Errorf("TimingError.Field = %q", te.Field)
	}
}

func TestErrorsSortedAndOnePerLine(t *testing.T) {
	doc := line(33, "id = 2")
	doc = strings.Replace(doc, `name = "payments"`, `name = "Pay"`, 1)
	doc = strings.Replace(doc, `lan = "10.0.0.1"`, `lan = "x"`, 1)
	_, err := Parse("c.toml", []byte(doc))
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("not *Errors: %v", err)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(errs.List) || len(lines) != 3 {
		t.Fatalf("Error() has %d lines for %d errors, want 3:\n%v", len(lines), len(errs.List), err)
	}
	for i, want := range []string{"c.toml:2:", "c.toml:21:", "c.toml:33:"} {
		if !strings.HasPrefix(lines[i], want) {
			t.Errorf("line %d = %q, want prefix %q", i, lines[i], want)
		}
	}
}

func TestExampleFile(t *testing.T) {
	c, err := Load("../examples/cluster.toml")
	if err != nil {
		t.Fatalf("examples/cluster.toml rejected:\n%v", err)
	}
	if c.Name != "payments" || len(c.Nodes) != 3 || len(c.Networks) != 2 {
		t.Fatalf("unexpected example: %+v", c)
	}
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("the example draws warnings: %v", w)
	}
	n, ok := c.NodeByName("beta")
	if !ok || n.ID != 2 || n.Addresses["storage"] != netip.MustParseAddr("192.168.50.2") {
		t.Errorf("NodeByName(beta) = %+v, %v", n, ok)
	}
	if n, ok := c.NodeByID(3); !ok || n.Name != "gamma" {
		t.Errorf("NodeByID(3) = %+v, %v", n, ok)
	}
	if _, ok := c.NodeByID(4); ok {
		t.Errorf("NodeByID(4) found a node")
	}
	if _, ok := c.NodeByName("delta"); ok {
		t.Errorf("NodeByName(delta) found a node")
	}
	if got := c.QuorumDiskPath("alpha"); got != c.QuorumDisk.Path {
		t.Errorf("QuorumDiskPath(alpha) = %q, want the default %q", got, c.QuorumDisk.Path)
	}
	if got := c.QuorumDiskPath("gamma"); got != "/dev/mapper/mtc-quorum" {
		t.Errorf("QuorumDiskPath(gamma) = %q, want its override", got)
	}
	if got := c.QuorumDiskPath("delta"); got != "" {
		t.Errorf("QuorumDiskPath(unknown) = %q", got)
	}
	if nw, i, ok := c.NetworkByName("storage"); !ok || i != 1 || nw.Port != 5406 {
		t.Errorf("NetworkByName(storage) = %+v, %d, %v", nw, i, ok)
	}
	if c.TotalVotes() != 3 {
		t.Errorf("TotalVotes = %d", c.TotalVotes())
	}
	if c.Derived() != c.Timing.Derive() {
		t.Errorf("Derived() differs from Timing.Derive()")
	}
	if c.UUID != uuid.MustParse("0b6e3a52-6c1f-4d8e-9a43-2f1c5d7e8b90") {
		t.Errorf("UUID = %v", c.UUID)
	}
}

func TestAnnotate(t *testing.T) {
	c, err := Parse("c.toml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	cause := errors.New("no such file")
	fe := c.Annotate("cluster.key_file", "missing", cause)
	if fe.Error() != "c.toml:4:1: cluster.key_file: missing" || !errors.Is(fe, cause) {
		t.Errorf("Annotate = %q", fe)
	}
	if fe := c.Annotate("watchdog.device", "missing", nil); fe.Line != 0 || fe.Error() != "c.toml: watchdog.device: missing" {
		t.Errorf("Annotate of an absent table = %q (line %d)", fe, fe.Line)
	}
	if fe := (&Cluster{}).Annotate("cluster.name", "x", nil); fe.Error() != "cluster.name: x" {
		t.Errorf("Annotate without a file = %q", fe)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.toml")
	if err == nil || !strings.Contains(err.Error(), "does-not-exist.toml") {
		t.Fatalf("Load of a missing file: %v", err)
	}
}

func TestWarnings(t *testing.T) {
	doc := line(13, "") // drop the san network header: san keys join network[0]
	doc = strings.Replace(doc, "[[network]]\nname = \"lan\"\nport = 5405\n\n\nname = \"san\"\nport = 5406", "[[network]]\nname = \"lan\"\nport = 5405", 1)
	doc = strings.NewReplacer(`san = "10.1.0.1"`, "", `san = "10.1.0.2"`, "", `san = "10.1.0.3"`, "").Replace(doc)
	doc += "[watchdog]\nmode = \"none\"\nallow_none = true\n"
	c, err := Parse("c.toml", []byte(doc))
	if err != nil {
		t.Fatalf("rejected: %v", err)
	}
	ws := c.Warnings()
	var fields []string
	for _, w := range ws {
		fields = append(fields, w.Field)
		if w.Line == 0 || w.File != "c.toml" {
			t.Errorf("warning without position: %v", w)
		}
	}
	if got := strings.Join(fields, ","); got != "network,watchdog.mode" {
		t.Errorf("warnings on %s, want network,watchdog.mode:\n%v", got, ws)
	}
}

func TestValidateBuiltInCode(t *testing.T) {
	c := &Cluster{
		Name:     "lab",
		UUID:     uuid.MustParse("0b6e3a52-6c1f-4d8e-9a43-2f1c5d7e8b90"),
		KeyFile:  "/etc/mtc/cluster.key",
		Timing:   AggressiveTiming(),
		Watchdog: Watchdog{Mode: WatchdogProcess},
		QuorumDisk: QuorumDisk{
			Path: "/dev/loop0",
		},
		Networks: []Network{{Name: "lo", Port: 5405}},
		Nodes: []Node{
			{Name: "n1", ID: 1, Votes: 1, Addresses: map[string]netip.Addr{"lo": netip.MustParseAddr("127.0.0.1")}},
			{Name: "n2", ID: 2, Votes: 1, Addresses: map[string]netip.Addr{"lo": netip.MustParseAddr("127.0.0.2")}},
		},
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("valid cluster rejected: %v", err)
	}
	before := fmt.Sprintf("%+v", *c)
	c.Nodes[1].ID = 1
	c.Timing.HeartbeatInterval = time.Second
	err := c.Validate()
	if !errors.Is(err, ErrDuplicate) || !errors.Is(err, ErrTiming) {
		t.Fatalf("want a duplicate and a timing error, got: %v", err)
	}
	for _, fe := range err.(*Errors).List {
		if fe.File != "" || fe.Line != 0 || fe.Msg == "" {
			t.Errorf("code-built error has a position or no message: %+v", fe)
		}
	}
	c.Nodes[1].ID = 2
	c.Timing = AggressiveTiming()
	if after := fmt.Sprintf("%+v", *c); after != before {
		t.Errorf("Validate changed the cluster:\n%s\n%s", before, after)
	}
}

func TestEditDistanceAndSuggest(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"name", "name", 0}, {"nmae", "name", 1}, {"adresses", "addresses", 1}, {"lan", "san", 1}, {"abc", "", 3}, {"kitten", "sitting", 3}} {
		if d := editDistance(tc.a, tc.b); d != tc.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, d, tc.d)
		}
	}
	keys := []string{"name", "id", "quorum_disk", "votes", "addresses"}
	for in, want := range map[string]string{"nmae": "name", "adresses": "addresses", "vote": "votes", "quorumdisk": "quorum_disk", "colour": "", "ID": "id"} {
		if got := suggest(in, keys); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLoadRefusesNonRegular: a FIFO (which would block a plain open until
// a writer comes), a directory or a device given as the configuration is
// refused at once, naming what it is.
func TestLoadRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "cluster.toml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	link := filepath.Join(dir, "link.toml")
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	regular := filepath.Join(dir, "regular.toml")
	if err := os.WriteFile(regular, []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	regLink := filepath.Join(dir, "reglink.toml")
	if err := os.Symlink(regular, regLink); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, what string }{
		{fifo, "a FIFO"}, {link, "a FIFO"}, {dir, "a directory"}, {"/dev/null", "a character device"},
	} {
		done := make(chan error, 1)
		go func() { _, err := Load(tc.path); done <- err }()
		var err error
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			// Not a timing assertion: a blocked open never returns.
			t.Fatalf("Load(%s) blocked", tc.path)
		}
		want := fmt.Sprintf("%s is not a regular file (%s)", tc.path, tc.what)
		if !errors.Is(err, ErrNotRegular) || !strings.Contains(fmt.Sprint(err), want) {
			t.Errorf("Load(%s) = %v, want ErrNotRegular with %q", tc.path, err, want)
		}
	}
	if _, err := Load(regLink); err != nil {
		t.Errorf("Load of a symbolic link to a regular file: %v", err)
	}
}

package labkit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// Output of `sg_persist --no-inquiry --in --read-keys --hex --hex` and
// `... --read-reservation --hex --hex` captured in the lab guest after
// registering 0x11aa and 0x22bb and reserving type 5 with 0x11aa.
const (
	readKeysHex = ` 00     00 00 00 02 00 00 00 10  00 00 00 00 00 00 11 aa
 10     00 00 00 00 00 00 22 bb
`
	readResHex = ` 00     00 00 00 02 00 00 00 10  00 00 00 00 00 00 11 aa
 10     00 00 00 00 00 05 00 00
`
	noResHex = ` 00     00 00 00 03 00 00 00 00
`
)

func TestDecodeReadKeys(t *testing.T) {
	b, err := parseHexDump(readKeysHex)
	if err != nil {
		t.Fatal(err)
	}
	keys, gen, err := decodeReadKeys(b)
	if err != nil {
		t.Fatal(err)
	}
	if gen != 2 || !reflect.DeepEqual(keys, []uint64{0x11aa, 0x22bb}) {
		t.Fatalf("keys %#x generation %d, want [0x11aa 0x22bb] 2", keys, gen)
	}
}

func TestDecodeReadReservation(t *testing.T) {
	for _, tc := range []struct {
		name, dump string
		want       Reservation
	}{
		{"held", readResHex, Reservation{Generation: 2, Held: true, Key: 0x11aa, Type: WriteExclusiveRegistrantsOnly}},
		{"none", noResHex, Reservation{Generation: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := parseHexDump(tc.dump)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeReadReservation(b)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestDecodeShortData(t *testing.T) {
	// The header promises two keys; the dump carries one.
	b, err := parseHexDump(" 00     00 00 00 02 00 00 00 10  00 00 00 00 00 00 11 aa\n")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := decodeReadKeys(b); !errors.Is(err, errShort) {
		t.Fatalf("decodeReadKeys of truncated data: %v, want errShort", err)
	}
	if _, err := decodeReadReservation(b[:12]); !errors.Is(err, errShort) {
		t.Fatalf("decodeReadReservation of truncated data: %v, want errShort", err)
	}
}

func TestParseHexDumpIgnoresMessagesAndASCII(t *testing.T) {
	// A message line, then a dump with an ASCII column (single --hex form).
	in := "  PR generation=0x2, Additional length=16\n" +
		" 00     41 42 00 00 00 00 11 aa                             AB......\n"
	b, err := parseHexDump(in)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x41, 0x42, 0, 0, 0, 0, 0x11, 0xaa}
	if !reflect.DeepEqual(b, want) {
		t.Fatalf("got % x, want % x", b, want)
	}
	if _, err := parseHexDump("sg_persist: no such device\n"); err == nil {
		t.Fatal("parseHexDump of a message with no dump succeeded")
	}
}

// fakeSysfs builds the part of sysfs Discover reads: /sys/block/sdX/device
// links into iSCSI session trees, and the sessions' initiator names.
func fakeSysfs(t *testing.T, disks map[string]string, sessions map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for session, iname := range sessions {
		d := filepath.Join(root, "class", "iscsi_session", session)
		must(t, os.MkdirAll(d, 0o755))
		must(t, os.WriteFile(filepath.Join(d, "initiatorname"), []byte(iname+"\n"), 0o644))
	}
	for disk, devPath := range disks {
		target := filepath.Join(root, "devices", devPath)
		must(t, os.MkdirAll(target, 0o755))
		must(t, os.MkdirAll(filepath.Join(root, "block", disk), 0o755))
		must(t, os.Symlink(target, filepath.Join(root, "block", disk, "device")))
	}
	return root
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestDiscover(t *testing.T) {
	root := fakeSysfs(t, map[string]string{
		"sda": "platform/host2/session1/target2:0:0/2:0:0:0",
		"sdb": "platform/host2/session1/target2:0:0/2:0:0:2",
		"sdc": "platform/host3/session2/target3:0:0/3:0:0:0",
		"sdd": "pci0000:00/0000:00:01.1/ata1/host0/target0:0:0/0:0:0:0", // not iSCSI
		"sde": "platform/host4/session3/target4:0:0/4:0:0:0",            // not a lab node
	}, map[string]string{
		"session1": "iqn.2026-01.org.mtcluster.lab:node2",
		"session2": "iqn.2026-01.org.mtcluster.lab:node1",
		"session3": "iqn.2026-01.org.example:host",
	})
	san, err := Discover(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []Path{
		{Node: "node1", LUN: "quorum", Dev: "/dev/sdc"},
		{Node: "node2", LUN: "quorum", Dev: "/dev/sda"},
		{Node: "node2", LUN: "data2", Dev: "/dev/sdb"},
	}
	if !reflect.DeepEqual(san.Paths, want) {
		t.Fatalf("paths %+v\nwant  %+v", san.Paths, want)
	}
	if got := san.Nodes(); !reflect.DeepEqual(got, []string{"node1", "node2"}) {
		t.Fatalf("nodes %v", got)
	}
	if d, err := san.Dev("node2", "data2"); err != nil || d != "/dev/sdb" {
		t.Fatalf("Dev(node2, data2) = %q, %v", d, err)
	}
	if _, err := san.Dev("node1", "data1"); !errors.Is(err, ErrNoPath) {
		t.Fatalf("Dev(node1, data1): %v, want ErrNoPath", err)
	}
}

func TestDiscoverRejectsUnknownLUN(t *testing.T) {
	root := fakeSysfs(t, map[string]string{
		"sda": "platform/host2/session1/target2:0:0/2:0:0:7",
	}, map[string]string{"session1": "iqn.2026-01.org.mtcluster.lab:node1"})
	if _, err := Discover(root); err == nil {
		t.Fatal("Discover accepted LUN 7, which the lab does not export")
	}
}

func TestDecodeVGs(t *testing.T) {
	out := `  {
      "report": [
          {
              "vg": [
                  {"vg_name":"vglab", "vg_systemid":"node1", "lv_count":"1"}
              ]
          }
      ]
  }
`
	vgs, err := decodeVGs(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := []VG{{Name: "vglab", SystemID: "node1", LVCount: "1"}}; !reflect.DeepEqual(vgs, want) {
		t.Fatalf("got %+v, want %+v", vgs, want)
	}
}

func TestRunReportsExitAndStderr(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	_, err := Run(context.Background(), "ls", missing)
	var ce *CmdError
	if !errors.As(err, &ce) {
		t.Fatalf("Run of a failing command: %v, want *CmdError", err)
	}
	if ce.ExitCode == 0 || ce.ExitCode == -1 || !strings.Contains(ce.Stderr, missing) {
		t.Fatalf("CmdError = %+v, want a non-zero exit and ls's complaint about %s", ce, missing)
	}
	out, err := Run(context.Background(), "env")
	if err != nil || !slices.Contains(strings.Split(out, "\n"), "LC_ALL=C") {
		t.Fatalf("environment of the child: %v\n%s\nwant LC_ALL=C in it", err, out)
	}
}

// sg_persist -vvv's standard error on a PREEMPT AND ABORT, as sg3_utils
// 1.46 prints it (the ioctl failing, as on a loop device).
const preemptAbortVerbose = `open /dev/loop2 with flags=0x802
    Persistent reservation out cdb: [5f 05 05 00 00 00 00 00 18 00]
    Persistent reservation out parameters:
 00     00 00 00 00 00 00 22 bb  00 00 00 00 00 00 11 aa    ......".........
 10     00 00 00 00 00 00 00 00                             ........
ioctl(SG_IO v3) failed: Invalid argument (errno=22)
Persistent reservation out: pass-through os error: Invalid argument
`

func TestParseVerbose(t *testing.T) {
	cdb, params, err := parseVerbose(preemptAbortVerbose)
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0x5f, 5, 5, 0, 0, 0, 0, 0, 0x18, 0}; !slices.Equal(cdb, want) {
		t.Errorf("cdb % x, want % x", cdb, want)
	}
	want := make([]byte, 24)
	want[6], want[7], want[14], want[15] = 0x22, 0xbb, 0x11, 0xaa
	if !slices.Equal(params, want) {
		t.Errorf("params % x, want % x", params, want)
	}
	cdb, params, err = parseVerbose("    Persistent reservation in cdb: [5e 00 00 00 00 00 00 20 00 00]\n")
	if err != nil || len(cdb) != 10 || cdb[7] != 0x20 || params != nil {
		t.Errorf("PR IN: % x % x %v", cdb, params, err)
	}
	if _, _, err := parseVerbose("no such thing"); err == nil {
		t.Error("output without a cdb line decoded")
	}
}

func TestISCSIConnAttrFindsTheNodesConnection(t *testing.T) {
	root := fakeSysfs(t, nil, map[string]string{
		"session1": "iqn.2026-01.org.mtcluster.lab:node2",
		"session2": "iqn.2026-01.org.mtcluster.lab:node12",
	})
	for conn, port := range map[string]string{"connection1:0": "40001", "connection2:0": "40002"} {
		d := filepath.Join(root, "class", "iscsi_connection", conn)
		must(t, os.MkdirAll(d, 0o755))
		must(t, os.WriteFile(filepath.Join(d, "local_port"), []byte(port+"\n"), 0o644))
	}
	if p, err := ISCSIConnAttr(root, "node2", "local_port"); err != nil || p != "40001" {
		t.Fatalf("node2's local_port = %q, %v; want 40001 (node12's session must not match)", p, err)
	}
	if p, err := ISCSIConnAttr(root, "node12", "local_port"); err != nil || p != "40002" {
		t.Fatalf("node12's local_port = %q, %v; want 40002", p, err)
	}
	if _, err := ISCSIConnAttr(root, "node1", "local_port"); !errors.Is(err, ErrNoPath) {
		t.Fatalf("node1 without a session: %v, want ErrNoPath", err)
	}
	if _, err := ISCSIConnAttr(root, "node2", "recv_tmo"); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a missing attribute: %v, want ErrNotExist", err)
	}
}

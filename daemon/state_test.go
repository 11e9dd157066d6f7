package daemon

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/nethb"
	"github.com/mtcluster/mtc/placement"
)

func TestStatePayloadRoundTrip(t *testing.T) {
	p := statePayload{
		Durable: placement.Durable{
			Packages: []placement.PackageIntent{
				{Name: "api", Switching: true},
				{Name: "db", Down: true, Maintenance: true, Pending: placement.Intent{ID: 7, Kind: placement.IntentMove, Package: "db", Node: 3}},
			},
			Drained:    1<<2 | 1<<16,
			Marks:      []placement.Mark{{Package: "db", Node: 16}},
			LastIntent: 9,
		},
		Intents: []placement.Intent{{ID: 8, Kind: placement.IntentDrain, Node: 2}, {ID: 9, Kind: placement.IntentClear, Package: "db"}},
	}
	b, err := encodeState(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeState(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, p) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, p)
	}
	for _, bad := range []string{
		`{"v":2,"pkgs":[],"last":0}`,
		`{"v":1,"pkgs":[],"last":0,"intents":[{"i":3,"k":1},{"i":2,"k":1}]}`,
		`{"v":1,"pkgs":[],"last":0,"intents":[{"i":3,"k":99}]}`,
		`{"v":1,"pkgs":[],"last":0,"marks":[{"p":"x","n":0}]}`,
		`{"v":1,"pkgs":[`,
	} {
		if _, err := decodeState([]byte(bad)); err == nil {
			t.Errorf("%s decoded", bad)
		}
	}
}

// The largest operator state of 300 packages with the longest names
// fits a copy of the state area at both sector sizes; 1000 such packages
// are refused, naming the sizes.
func TestStatePayloadFitsTheStateArea(t *testing.T) {
	names := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("%s-%04d", strings.Repeat("p", 58), i))
		}
		return out
	}
	for _, ss := range []int{512, 4096} {
		l := diskhb.Header{SectorSize: ss, Slots: 16, ClusterUUID: uuid.New(), StateAreas: true}.Layout()
		if err := checkStateFits(names(300), l.MaxStatePayload()); err != nil {
			t.Errorf("%d-byte sectors: %v", ss, err)
		}
		b, _ := encodeState(worstState(names(300)))
		t.Logf("%d-byte sectors: 300 packages need at most %d of %d bytes", ss, len(b), l.MaxStatePayload())
		err := checkStateFits(names(1000), l.MaxStatePayload())
		if err == nil || !strings.Contains(err.Error(), "1000 packages") {
			t.Errorf("%d-byte sectors, 1000 packages: %v", ss, err)
		}
	}
	// The worst case decodes as it was written.
	p := worstState(names(3))
	b, _ := encodeState(p)
	got, err := decodeState(b)
	if err != nil || !reflect.DeepEqual(got, p) {
		t.Fatalf("worst case round trip: %v\n got %+v\nwant %+v", err, got, p)
	}
}

func TestHeartbeatSizeMatchesTheEncoder(t *testing.T) {
	var names []string
	for i := range 300 {
		names = append(names, fmt.Sprintf("pkg-%03d", i))
	}
	n, err := HeartbeatSize(names)
	if err != nil {
		t.Fatal(err)
	}
	// 300 running packages on one node: 3 bytes each on the wire, so the
	// datagram is between 900 bytes and the largest packet.
	if n < 900+nethb.HeaderLen || n > nethb.MaxPacket {
		t.Fatalf("heartbeat of 300 running packages: %d bytes", n)
	}
	if err := CheckPackagesFit(names); err != nil {
		t.Fatal(err)
	}
	if err := CheckPackagesFit(append(names, names[0])); err == nil {
		t.Fatal("duplicate package names fit")
	}
	t.Logf("300 packages: %d-byte heartbeat", n)
}

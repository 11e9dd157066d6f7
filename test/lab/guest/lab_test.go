package guest

import (
	"context"
	"testing"
	"time"

	"github.com/mtcluster/mtc/test/lab/labkit"
)

// Keys of the simulated nodes' SCSI registrations.
const (
	key1 uint64 = 0x11aa
	key2 uint64 = 0x22bb
	key3 uint64 = 0x33cc
)

// cmdTimeout bounds one test's calls to the SAN tools; the guest's guard
// timer bounds the whole run.
const cmdTimeout = 2 * time.Minute

// lab skips t outside the lab and returns the SAN and a context for the test.
func lab(t *testing.T) (*labkit.SAN, context.Context) {
	t.Helper()
	labkit.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	t.Cleanup(cancel)
	san, err := labkit.Discover("/sys")
	if err != nil {
		t.Fatal(err)
	}
	return san, ctx
}

func dev(t *testing.T, san *labkit.SAN, node, lun string) string {
	t.Helper()
	d, err := san.Dev(node, lun)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// freshPR leaves the LUN behind pr with no registration and no
// reservation, whatever an earlier test or run left there.
func freshPR(t *testing.T, ctx context.Context, pr labkit.PR) {
	t.Helper()
	if err := pr.Register(ctx, 0xdead); err != nil {
		t.Fatal(err)
	}
	if err := pr.Clear(ctx, 0xdead); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond every 10ms until it holds or ctx ends.
func waitFor(ctx context.Context, cond func() bool) bool {
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
	return true
}

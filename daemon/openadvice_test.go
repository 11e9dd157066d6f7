package daemon

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mtcluster/mtc/diskhb"
)

// A damaged header must never be met with advice to initialise the disk:
// that would wipe a running cluster's slots.
func TestOpenAdvice(t *testing.T) {
	for _, tc := range []struct {
		err     error
		want    string
		mustNot string
	}{
		{fmt.Errorf("header: %w", diskhb.ErrNotFormatted), "mtc disk init", ""},
		{fmt.Errorf("header: %w", diskhb.ErrDamagedHeader), "do not re-initialise", "initialise it with"},
		{fmt.Errorf("header: %w: %w", diskhb.ErrDamagedHeader, diskhb.ErrChecksum), "do not re-initialise", "initialise it with"},
		{fmt.Errorf("header: %w", diskhb.ErrForeignCluster), "another cluster", "mtc disk init"},
	} {
		got := openAdvice(tc.err)
		if !strings.Contains(got, tc.want) || (tc.mustNot != "" && strings.Contains(got, tc.mustNot)) {
			t.Errorf("%v: advice %q; want it to contain %q and not %q", tc.err, got, tc.want, tc.mustNot)
		}
	}
}

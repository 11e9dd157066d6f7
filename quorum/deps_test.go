package quorum

import (
	"testing"

	"github.com/mtcluster/mtc/test/testutil"
)

// The decision core depends on nothing with I/O: of this module only its
// own pure sub-packages and the timing bases, and no package outside the
// standard library. A configuration type that drags in the package
// runner's OS edges (netlink, lvm2, SG_IO) must not reach it.
func TestCoreDependsOnNothingWithIO(t *testing.T) {
	testutil.DependsOnlyOn(t, "quorum",
		"github.com/mtcluster/mtc/quorum",
		"github.com/mtcluster/mtc/quorum/ident",
		"github.com/mtcluster/mtc/quorum/liveness",
		"github.com/mtcluster/mtc/config/timing")
}

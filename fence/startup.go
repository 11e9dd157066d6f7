package fence

import (
	"errors"
	"time"
)

// StartupAttempts is how many times a starting daemon runs its
// registration (Rejoin) on a LUN before it gives up and exits.
const StartupAttempts = 5

// StartupRetry says whether a start-up registration that failed with err
// on its attempt-th try (counting from 1) is tried again, and after how
// long. A path failure, a timeout or a unit attention may pass (a path
// that blinks, a target that restarts, a command that lost its reply),
// and so may a state that did not verify (a peer's fence of this node's
// previous incarnation that lands on the new registration), so the
// registration runs again after interval, doubling each time, for
// StartupAttempts tries in all: with a 200 ms heartbeat interval the last
// try begins 3 s after the first, well before a service manager's restart
// would have come. Anything else (a configuration the call refuses, a
// reservation conflict, a foreign reservation, no persistent reservations
// at all) is final. Trying again is as safe as the restart it replaces: a
// node that has not joined holds nothing, and Rejoin removes its stale
// registrations and verifies what it leaves.
func StartupRetry(err error, attempt int, interval time.Duration) (time.Duration, bool) {
	if err == nil || attempt >= StartupAttempts || interval <= 0 {
		return 0, false
	}
	if errors.Is(err, ErrReservationConflict) || errors.Is(err, ErrNotSupported) ||
		!(errors.Is(err, ErrPath) || errors.Is(err, ErrTimeout) || errors.Is(err, ErrUnitAttention) || errors.Is(err, ErrVerify)) {
		return 0, false
	}
	return interval << (attempt - 1), true
}

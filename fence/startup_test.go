package fence

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestStartupRetry(t *testing.T) {
	step := func(err error) error { return &Error{Op: "rejoin", LUN: "data", Step: "test unit ready", Err: err} }
	const iv = 200 * time.Millisecond
	var total time.Duration
	for attempt := 1; ; attempt++ {
		d, again := StartupRetry(step(ErrPath), attempt, iv)
		if !again {
			if attempt != StartupAttempts {
				t.Fatalf("a path failure is final after %d attempts, want %d", attempt, StartupAttempts)
			}
			break
		}
		if want := iv << (attempt - 1); d != want {
			t.Fatalf("attempt %d: retry after %v, want %v", attempt, d, want)
		}
		total += d
	}
	if total != 3*time.Second {
		t.Fatalf("the retries wait %v in all at a 200ms interval, want 3s", total)
	}
	for _, err := range []error{step(ErrTimeout), step(ErrUnitAttention), step(ErrVerify), fmt.Errorf("wrapped: %w", step(ErrPath))} {
		if _, again := StartupRetry(err, 1, iv); !again {
			t.Errorf("%v is not tried again", err)
		}
	}
	// A conflict that came over a failing path is still a conflict.
	both := errors.Join(step(ErrPath), step(ErrReservationConflict))
	for _, err := range []error{nil, step(ErrReservationConflict), step(ErrNotSupported),
		step(ErrForeignReservation), &Error{Op: "rejoin", Step: "check", Err: ErrBadRequest}, both} {
		if _, again := StartupRetry(err, 1, iv); again {
			t.Errorf("%v is tried again", err)
		}
	}
	if _, again := StartupRetry(step(ErrPath), 1, 0); again {
		t.Error("a zero interval retries")
	}
}

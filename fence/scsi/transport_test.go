package scsi

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestCheck: result interpretation in order: status, host, driver.
func TestCheck(t *testing.T) {
	ua := unhex(t, "70 00 06 00 00 00 00 0a 00 00 00 00 2a 05 00 00 00 00")
	inv := unhex(t, "70 00 05 00 00 00 00 0a 00 00 00 00 20 00 00 00 00 00")
	for _, c := range []struct {
		name  string
		res   Result
		sense []byte
		want  error // nil: success
	}{
		{"good", Result{}, nil, nil},
		{"good with recovered-error sense", Result{Driver: DriverSense, SenseLen: 18}, unhex(t, "70 00 01 00 00 00 00 0a 00 00 00 00 17 00 00 00 00 00"), nil},
		{"reservation conflict", Result{Status: StatusReservationConflict}, nil, ErrReservationConflict},
		{"check condition UA", Result{Status: StatusCheckCondition, Driver: DriverSense, SenseLen: 18}, ua, ErrUnitAttention},
		{"check condition invalid opcode", Result{Status: StatusCheckCondition, Driver: DriverSense, SenseLen: 18}, inv, ErrNotSupported},
		{"check condition without sense", Result{Status: StatusCheckCondition}, nil, ErrCheckCondition},
		{"check condition with bad sense", Result{Status: StatusCheckCondition, SenseLen: 2}, []byte{0x01, 0x02}, ErrCheckCondition},
		{"busy", Result{Status: StatusBusy}, nil, ErrPath},
		{"task aborted", Result{Status: StatusTaskAborted}, nil, ErrPath},
		{"status beats host: conflict with host OK", Result{Status: StatusReservationConflict, Host: HostOK}, nil, ErrReservationConflict},
		{"conflict with a transport failure is a path failure", Result{Status: StatusReservationConflict, Host: HostTransportFailfast}, nil, ErrPath},
		{"host no connect", Result{Host: HostNoConnect}, nil, ErrPath},
		{"host transport disrupted", Result{Host: HostTransportDisrupted}, nil, ErrPath},
		{"host timeout", Result{Host: HostTimeOut}, nil, ErrTimeout},
		{"driver timeout", Result{Driver: DriverTimeout}, nil, ErrTimeout},
		{"driver error", Result{Driver: 0x04}, nil, ErrPath},
	} {
		r := NewRequest("TEST", TestUnitReadyCDB(), DirNone, nil, time.Second)
		copy(r.Sense, c.sense)
		err := Check(r, c.res)
		switch {
		case c.want == nil && err != nil:
			t.Errorf("%s: %v, want success", c.name, err)
		case c.want != nil && !errors.Is(err, c.want):
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// A timeout is a path failure too.
	if err := Check(NewRequest("T", nil, DirNone, nil, 0), Result{Host: HostTimeOut}); !errors.Is(err, ErrPath) {
		t.Errorf("timeout %v is not ErrPath", err)
	}
}

// script is a Transport that answers from a list, recording the CDBs.
type script struct {
	answers []func(r *Request) (Result, error)
	cdbs    [][]byte
}

func (s *script) Do(_ context.Context, r *Request) (Result, error) {
	s.cdbs = append(s.cdbs, r.CDB)
	if len(s.answers) == 0 {
		return Result{}, nil
	}
	a := s.answers[0]
	s.answers = s.answers[1:]
	return a(r)
}

func senseAnswer(b []byte) func(*Request) (Result, error) {
	return func(r *Request) (Result, error) {
		n := copy(r.Sense, b)
		return Result{Status: StatusCheckCondition, Driver: DriverSense, SenseLen: n}, nil
	}
}

func ok(*Request) (Result, error) { return Result{}, nil }

// TestDeviceClearsUnitAttention: a PR OUT meeting a unit attention is
// retried after TEST UNIT READY, and gives up after UARetries.
func TestDeviceClearsUnitAttention(t *testing.T) {
	ua := unhex(t, "70 00 06 00 00 00 00 0a 00 00 00 00 2a 03 00 00 00 00")
	s := &script{answers: []func(*Request) (Result, error){senseAnswer(ua), senseAnswer(ua), ok, ok}}
	d := &Device{T: s}
	if err := d.Out(context.Background(), PreemptAndAbort, WriteExclusiveRegistrantsOnly, OutParams{Key: 1, ServiceKey: 2}); err != nil {
		t.Fatal(err)
	}
	// PR OUT (UA), TUR (UA), TUR (ok), PR OUT (ok).
	ops := []byte{}
	for _, c := range s.cdbs {
		ops = append(ops, c[0])
	}
	if string(ops) != string([]byte{0x5f, 0x00, 0x00, 0x5f}) {
		t.Errorf("commands % x, want 5f 00 00 5f", ops)
	}

	always := &script{}
	for range 100 {
		always.answers = append(always.answers, senseAnswer(ua))
	}
	d = &Device{T: always, UARetries: 2}
	err := d.Out(context.Background(), Register, 0, OutParams{ServiceKey: 1})
	if !errors.Is(err, ErrUnitAttention) {
		t.Fatalf("endless unit attentions: %v, want ErrUnitAttention", err)
	}
	if len(always.cdbs) > 3+3*3 {
		t.Errorf("%d commands for 2 retries; the retries are not bounded", len(always.cdbs))
	}
}

func TestDeviceReadKeysGrowsAllocation(t *testing.T) {
	s := &script{answers: []func(*Request) (Result, error){
		func(r *Request) (Result, error) {
			// Says 600 keys (4800 bytes) but the first allocation holds fewer.
			copy(r.Data, []byte{0, 0, 0, 1, 0, 0, 0x12, 0xc0})
			return Result{}, nil
		},
		func(r *Request) (Result, error) {
			copy(r.Data, []byte{0, 0, 0, 1, 0, 0, 0x12, 0xc0})
			return Result{}, nil
		},
	}}
	d := &Device{T: s}
	k, err := d.ReadKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.cdbs) != 2 || s.cdbs[1][7] != 0x12 || s.cdbs[1][8] != 0xc8 {
		t.Errorf("second READ KEYS CDB % x, want allocation length 0x12c8", s.cdbs[len(s.cdbs)-1])
	}
	if len(k.Keys) != 600 || k.Truncated {
		t.Errorf("%d keys, truncated %v", len(k.Keys), k.Truncated)
	}
}

func TestDeadline(t *testing.T) {
	r := NewRequest("T", TestUnitReadyCDB(), DirNone, nil, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if d, err := deadline(ctx, r); err != nil || d != 10*time.Second {
		t.Errorf("deadline with a later context: %v %v", d, err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	if d, err := deadline(ctx2, r); err != nil || d > time.Second {
		t.Errorf("deadline with an earlier context: %v %v", d, err)
	}
	ctx3, cancel3 := context.WithCancel(context.Background())
	cancel3()
	if _, err := deadline(ctx3, r); !errors.Is(err, ErrTimeout) || !errors.Is(err, ErrPath) {
		t.Errorf("deadline after cancel: %v", err)
	}
}

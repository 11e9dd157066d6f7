package journal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"syscall"
	"time"
)

// Follow calls fn for every event of the journal numbered after after, in
// order, as they are written (as `tail -f`, across rotations), polling
// every interval, until ctx ends or fn returns an error. Pass the Seq of
// the last event Read returned, so nothing written in between is missed.
// The journal file need not exist yet.
func Follow(ctx context.Context, path string, after uint64, interval time.Duration, fn func(Event) error) error {
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	var partial []byte
	buf := make([]byte, 64<<10)
	// drain reads f to its end and hands every whole line to fn.
	drain := func() error {
		for {
			n, err := f.Read(buf)
			if n > 0 {
				partial = append(partial, buf[:n]...)
				for {
					i := bytes.IndexByte(partial, '\n')
					if i < 0 {
						break
					}
					var e Event
					if json.Unmarshal(partial[:i], &e) == nil && e.Seq > after {
						after = e.Seq
						if err := fn(e); err != nil {
							return err
						}
					}
					partial = partial[i+1:]
				}
			}
			if errors.Is(err, io.EOF) || n == 0 {
				return nil
			}
			if err != nil {
				return err
			}
		}
	}
	open := func() error {
		nf, err := os.Open(path)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		f, partial = nf, nil
		return nil
	}
	if err := open(); err != nil {
		return err
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if f != nil {
			if err := drain(); err != nil {
				return err
			}
			if rotated(f, path) {
				// Whatever was written before the rename is in f.
				if err := drain(); err != nil {
					return err
				}
				f.Close()
				f = nil
				if err := open(); err != nil {
					return err
				}
				continue
			}
		} else if err := open(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// rotated tells whether path now names another file than f.
func rotated(f *os.File, path string) bool {
	a, err1 := f.Stat()
	b, err2 := os.Stat(path)
	if err1 != nil || err2 != nil {
		return err2 == nil
	}
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && (sa.Ino != sb.Ino || sa.Dev != sb.Dev)
}

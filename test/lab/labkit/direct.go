package labkit

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/ncw/directio"
)

// DirectWriter writes one block over and over with O_DIRECT, as a service
// writing to shared storage does, until it fails or is stopped. It records
// how many writes succeeded and the first error.
type DirectWriter struct {
	dev    string
	cancel context.CancelFunc
	done   chan struct{}

	mu  sync.Mutex
	ok  int
	err error
	end time.Time
}

// StartDirectWriter opens dev with O_DIRECT and writes block number
// block (of directio.BlockSize bytes) in a loop until ctx ends, Stop is
// called, or a write fails.
func StartDirectWriter(ctx context.Context, dev string, block int64) (*DirectWriter, error) {
	f, err := directio.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s O_DIRECT: %w", dev, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &DirectWriter{dev: dev, cancel: cancel, done: make(chan struct{})}
	buf := directio.AlignedBlock(directio.BlockSize)
	started := make(chan struct{})
	go func() {
		defer close(w.done)
		defer f.Close()
		for i := 0; ; i++ {
			buf[0] = byte(i)
			_, err := f.WriteAt(buf, block*int64(len(buf)))
			w.mu.Lock()
			if err != nil {
				w.err = err
			} else {
				w.ok++
			}
			w.mu.Unlock()
			if i == 0 {
				close(started)
			}
			if err != nil || ctx.Err() != nil {
				w.mu.Lock()
				w.end = time.Now()
				w.mu.Unlock()
				return
			}
		}
	}()
	select {
	case <-started:
	case <-ctx.Done():
	}
	return w, nil
}

// Writes returns how many writes have succeeded so far.
func (w *DirectWriter) Writes() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ok
}

// Ended is when the writer's loop ended (its failed write returned, or
// it saw the stop); zero while it runs.
func (w *DirectWriter) Ended() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.end
}

// Done is closed when the writer has stopped.
func (w *DirectWriter) Done() <-chan struct{} { return w.done }

// Stop ends the loop, waits for it and returns the first write error (nil
// if every write succeeded), wrapped with the device name.
func (w *DirectWriter) Stop() error {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return fmt.Errorf("O_DIRECT writer on %s after %d good writes: %w", w.dev, w.ok, w.err)
	}
	return nil
}

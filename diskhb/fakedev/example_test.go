package fakedev_test

import (
	"errors"
	"fmt"

	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/diskhb/fakedev"
)

// A simulation on virtual time drives paths with Apply: nothing blocks, a
// hang is reported and the I/O retried when the simulation releases the
// path, and latency is returned for the simulation to schedule.
func ExamplePath_Apply() {
	disk := fakedev.NewDisk(512, 16)
	n1, n2 := disk.Path("n1"), disk.Path("n2")
	slot := diskhb.AlignedBuffer(512)
	copy(slot, "n1 alive")

	n1.Hang()
	r := n1.Apply(fakedev.Write, slot, 512)
	fmt.Println("hung:", r.Hung)

	n1.Release()
	r = n1.Apply(fakedev.Write, slot, 512)
	fmt.Println("after release:", r.N, r.Err)

	n2.SetFenced(true)
	r = n2.Apply(fakedev.Write, slot, 1024)
	fmt.Println("fenced:", errors.Is(r.Err, diskhb.ErrFenced))

	got := diskhb.AlignedBuffer(512)
	r = n2.Apply(fakedev.Read, got, 512) // reads work on a fenced path
	fmt.Printf("n2 reads %q, %v\n", got[:8], r.Err)
	// Output:
	// hung: true
	// after release: 512 <nil>
	// fenced: true
	// n2 reads "n1 alive", <nil>
}

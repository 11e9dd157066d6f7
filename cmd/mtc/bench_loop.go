package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// attachLoop creates file with size zero bytes and attaches it as a loop
// device with the given logical sector size and direct I/O:
//
//	losetup --find --show --sector-size SECTOR --direct-io=on FILE
func attachLoop(file string, sectorSize int, size int64) (string, error) {
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	out, err := losetup("--find", "--show", "--sector-size", strconv.Itoa(sectorSize), "--direct-io=on", file)
	if err != nil {
		return "", err
	}
	dev := strings.TrimSpace(out)
	if !strings.HasPrefix(dev, "/dev/loop") {
		return "", fmt.Errorf("losetup --show printed %q, not a loop device", out)
	}
	return dev, nil
}

// detachLoop detaches a loop device (losetup --detach DEV).
func detachLoop(dev string) error {
	_, err := losetup("--detach", dev)
	return err
}

func losetup(args ...string) (string, error) {
	cmd := exec.Command("losetup", args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("losetup %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

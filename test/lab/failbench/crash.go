package failbench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// FS_IOC_SHUTDOWN (_IOR('X', 125, __u32)) with EXT4_GOING_FLAGS_NOLOGFLUSH:
// the filesystem stops at once, its journal not flushed, as a power loss
// leaves it; the next mount replays the journal.
const (
	fsIocShutdown     = 0x8004587d
	shutdownNoLogFlsh = 2
)

// ShutdownFS shuts down the filesystem mounted at mnt in pid's mount
// namespace, if it is mounted there, and reports whether it did.
func ShutdownFS(pid int, mnt string) bool {
	mi, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil || !strings.Contains(string(mi), " "+mnt+" ") {
		return false
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/root%s", pid, mnt))
	if err != nil {
		return false
	}
	defer f.Close()
	return unix.IoctlSetPointerInt(int(f.Fd()), fsIocShutdown, shutdownNoLogFlsh) == nil
}

// KillNetNS kills every process in the network namespace at path (other
// than the caller) with SIGKILL until none is left, for at most 5 s.
func KillNetNS(path string) error {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return err
	}
	want := fmt.Sprintf("net:[%d]", st.Ino)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if len(NetNSPIDs(want)) == 0 {
			return nil
		}
		for _, pid := range NetNSPIDs(want) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("processes %v still alive in %s after SIGKILL", NetNSPIDs(want), path)
}

// NetNSPIDs are the processes (other than the caller) whose network
// namespace link reads want (net:[INODE]).
func NetNSPIDs(want string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid)); err == nil && l == want {
			out = append(out, pid)
		}
	}
	return out
}

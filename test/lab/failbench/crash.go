package failbench

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
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

// Crash does to a node what a crash and a reset do, in this order: its
// link dev goes down through h, a netlink handle in its network namespace
// (the crash instant: nothing it does afterwards reaches the others);
// stop ends its software as the benchmark crashes it (a filesystem shut
// down without flushing its journal, its process group killed); every
// process left in its namespace at nsPath is killed, which also ends its
// mount namespace; and vip leaves dev. It returns the time just before
// the link went down and just after.
func Crash(h *netlink.Handle, dev, nsPath string, vip netip.Addr, stop func()) (crashed, down time.Time, err error) {
	link, err := h.LinkByName(dev)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	crashed = time.Now()
	if err := h.LinkSetDown(link); err != nil {
		return crashed, time.Time{}, err
	}
	down = time.Now()
	stop()
	if err := KillNetNS(nsPath); err != nil {
		return crashed, down, err
	}
	if addrs, err := h.AddrList(link, netlink.FAMILY_V4); err == nil {
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok && ip == vip {
				_ = h.AddrDel(link, &a)
			}
		}
	}
	return crashed, down, nil
}

// LinkUp sets link dev up through h, as a crashed node's restart does.
func LinkUp(h *netlink.Handle, dev string) error {
	link, err := h.LinkByName(dev)
	if err != nil {
		return err
	}
	return h.LinkSetUp(link)
}

// HasAddr reports whether link dev carries the IPv4 address ip.
func HasAddr(h *netlink.Handle, dev string, ip netip.Addr) bool {
	link, err := h.LinkByName(dev)
	if err != nil {
		return false
	}
	addrs, _ := h.AddrList(link, netlink.FAMILY_V4)
	for _, a := range addrs {
		if got, ok := netip.AddrFromSlice(a.IP.To4()); ok && got == ip {
			return true
		}
	}
	return false
}

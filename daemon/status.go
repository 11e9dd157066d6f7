package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/nethb"
	"github.com/mtcluster/mtc/quorum"
	"github.com/mtcluster/mtc/quorum/liveness"
)

// Node states shown by the status.
const (
	// StateStarting: the node has not yet held quorum in this incarnation.
	StateStarting = "starting"
	// StateQuorate: the node holds quorum and may run packages.
	StateQuorate = "quorate"
	// StateInquorate: the node held quorum, lost it, and will stop at its
	// stop deadline unless it regains quorum.
	StateInquorate = "inquorate"
	// StateStopped: the node stopped its packages and its watchdog: it is
	// self-fencing and waits to be reset.
	StateStopped = "stopped"
)

// Status is what the daemon reports on its status socket. It is the
// membership machine's judgement at the moment of the answer (the machine
// is stepped to that moment first) and the edges' counters.
type Status struct {
	Cluster     string `json:"cluster"`
	ClusterUUID string `json:"cluster_uuid"`
	Node        string `json:"node"`
	NodeID      int    `json:"node_id"`
	Incarnation string `json:"incarnation"`
	PID         int    `json:"pid"`
	// Time is the wall-clock time of the answer and Uptime the local
	// monotonic time (since the daemon started) it was judged at; every
	// record below carries both.
	Time   time.Time     `json:"time"`
	Uptime time.Duration `json:"uptime_ns"`

	// State is one of StateStarting, StateQuorate, StateInquorate,
	// StateStopped.
	State   string   `json:"state"`
	Quorate bool     `json:"quorate"`
	Armed   bool     `json:"armed"`
	Stopped bool     `json:"stopped"`
	Tie     bool     `json:"tie"`
	Members []string `json:"members"`
	Epoch   uint64   `json:"epoch"`
	// Reason is why the node does not hold quorum (the machine's words).
	Reason string `json:"reason,omitempty"`
	// StopIn is the time left before an armed node without quorum or
	// without own disk writes stops (only while Armed and not Stopped).
	StopIn time.Duration `json:"stop_in_ns,omitempty"`

	Peers    []PeerStatus   `json:"peers"`
	Network  NetworkStatus  `json:"network"`
	Disk     DiskStatus     `json:"disk"`
	Watchdog WatchdogStatus `json:"watchdog"`

	// PackageStops are the requests to stop every package.
	PackageStops []StopRecord `json:"package_stops,omitempty"`
	// FenceRequests and Takeovers are the fencing and takeover decisions.
	FenceRequests []EventRecord `json:"fence_requests,omitempty"`
	Takeovers     []EventRecord `json:"takeovers,omitempty"`
	// Fencing is which LUNs this node fences and how, and the fences it
	// verified.
	Fencing FenceStatus `json:"fencing"`
	// Decisions are the most recent membership decisions, oldest first.
	Decisions []DecisionRecord `json:"decisions"`

	// Packages are the configured packages as this node's placement
	// machine sees them, in name order (none when no package is
	// configured).
	Packages []PackageView `json:"packages,omitempty"`
	// Drained are the nodes an operator drained.
	Drained []string `json:"drained,omitempty"`
	// Coordinator is the node that commits operator intents (the
	// lowest-id member of the quorate view this node holds; "" without
	// quorum), and LastIntent the last intent this node applied.
	Coordinator string `json:"coordinator,omitempty"`
	LastIntent  uint64 `json:"last_intent,omitempty"`
}

// PeerStatus is one peer as the membership machine judges it now.
type PeerStatus struct {
	Name string `json:"name"`
	ID   int    `json:"id"`
	// State is the membership machine's class: unknown, alive, suspect,
	// partitioned, dead.
	State  string `json:"state"`
	Member bool   `json:"member"`
	// Net is the liveness of the peer's counter on the network: unknown,
	// live, suspect, dead; NetAlive is live or suspect.
	Net      string `json:"net"`
	NetAlive bool   `json:"net_alive"`
	// SinceHeard is the time since its counter last changed on the
	// network; -1 never.
	SinceHeard  time.Duration `json:"since_heard_ns"`
	Incarnation string        `json:"incarnation,omitempty"`
	// Disk is the liveness of the peer's slot counter: unknown, live,
	// suspect, dead.
	Disk string `json:"disk"`
	// DiskSinceChange is the time since its slot counter last changed;
	// -1 never seen.
	DiskSinceChange time.Duration `json:"disk_since_change_ns"`
	// OtherGeneration is set when the peer's slot carries another
	// configuration generation (it then counts as unknown on the disk).
	OtherGeneration string `json:"other_generation,omitempty"`
	// Fence is where fencing of its departed incarnation stands: none,
	// pending, failing, fenced; TakenOver: its packages were handed over.
	Fence      string `json:"fence,omitempty"`
	FenceError string `json:"fence_error,omitempty"`
	// FencePending says why a pending or failing fence has not completed.
	FencePending string `json:"fence_pending,omitempty"`
	TakenOver    bool   `json:"taken_over,omitempty"`
}

// NetworkStatus holds the heartbeat counters.
type NetworkStatus struct {
	Send    nethb.SendStats `json:"send"`
	Receive nethb.Stats     `json:"receive"`
	// LastSendError is the most recent send failure, cleared by a success.
	LastSendError string `json:"last_send_error,omitempty"`
}

// DiskStatus holds the quorum-disk counters.
type DiskStatus struct {
	Path string `json:"path,omitempty"`
	// Writes and WriteFailures count own-slot writes as the machine was
	// told of them: a write over a slot conflict counts as failed.
	Writes        uint64 `json:"writes"`
	WriteFailures uint64 `json:"write_failures"`
	// SinceWrite is the time since the last successful own-slot write; -1 none.
	SinceWrite     time.Duration `json:"since_write_ns"`
	LastWriteError string        `json:"last_write_error,omitempty"`
	Reads          uint64        `json:"reads"`
	ReadFailures   uint64        `json:"read_failures"`
	LastReadError  string        `json:"last_read_error,omitempty"`
	// LockReadFailures count tie-break lock reads that failed (the lock
	// then counts as unknown).
	LockReadFailures uint64 `json:"lock_read_failures"`
	LastLockError    string `json:"last_lock_error,omitempty"`
	// Conflicts counts reads that found our slot written by another
	// daemon with our node id; Conflict is set while our writes count as
	// failed because of it. VerifyFailures counts read-backs that found
	// our last write lost, torn or cleared.
	Conflicts      uint64 `json:"conflicts"`
	Conflict       bool   `json:"conflict"`
	VerifyFailures uint64 `json:"verify_failures"`
	// OwnSlotProblem says why our own slot did not read back as we last
	// wrote it: another daemon writing with our node id, or a lost write.
	OwnSlotProblem string `json:"own_slot_problem,omitempty"`
	// OtherGeneration counts peer slot reads of another configuration
	// generation.
	OtherGeneration uint64 `json:"other_generation"`
}

// WatchdogStatus holds the watchdog counters.
type WatchdogStatus struct {
	Mode  string `json:"mode"`
	Feeds uint64 `json:"feeds"`
	// SinceFeed is the time since the last successful feed; -1 none.
	SinceFeed time.Duration `json:"since_feed_ns"`
	LastError string        `json:"last_error,omitempty"`
}

// DecisionRecord is one membership decision at local monotonic time At
// (since the daemon started) and wall-clock time Time.
type DecisionRecord struct {
	At   time.Duration `json:"at_ns"`
	Time time.Time     `json:"time"`
	// Kind is the decision's kind as quorum.DecisionKind names it:
	// members, quorum-gained, quorum-lost, peer, self-fence, ...
	Kind string `json:"kind"`
	// Peer is the peer it is about, if any.
	Peer string `json:"peer,omitempty"`
	// Members is the member set, for membership and quorum decisions.
	Members []string `json:"members,omitempty"`
	Reason  string   `json:"reason,omitempty"`
	Text    string   `json:"text"`
}

// EventRecord is one fencing request or allowed takeover.
type EventRecord struct {
	At          time.Duration `json:"at_ns"`
	Time        time.Time     `json:"time"`
	Peer        string        `json:"peer"`
	Incarnation string        `json:"incarnation"`
	Reason      string        `json:"reason,omitempty"`
}

// state is what the event loop records for the status, under Daemon.mu.
type state struct {
	qs            quorum.Status
	netInc        map[quorum.NodeID]quorum.Incarnation
	lastWrite     time.Duration
	lastWriteErr  string
	lastReadErr   string
	lastSendErr   string
	feeds         uint64
	lastFeed      time.Duration
	wdErr         string
	fenceRequests []EventRecord
	fenced        []EventRecord // verified fences (Reason: the LUNs)
	takeovers     []EventRecord
	decisions     []DecisionRecord
}

func (s *state) init(d *Daemon) {
	s.netInc = make(map[quorum.NodeID]quorum.Incarnation)
	s.lastWrite, s.lastFeed = -1, -1
}

func (d *Daemon) noteNet(ev netEvent) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if prev, ok := d.st.netInc[ev.hb.From]; ev.newInc && ok && prev != ev.hb.Inc {
		d.log.Info("peer restarted (new incarnation on the network)", "peer", ev.peer,
			"incarnation", fmt.Sprintf("%016x", uint64(ev.hb.Inc)), "previous", fmt.Sprintf("%016x", uint64(prev)))
	}
	d.st.netInc[ev.hb.From] = ev.hb.Inc
}

// noteDisk logs a disk result whose error differs from the last one of
// its kind (the counters are the Rounds'), and notes the time of the last
// successful own write.
func (d *Daemon) noteDisk(r diskhb.RoundResult) {
	now := d.clock()
	d.mu.Lock()
	defer d.mu.Unlock()
	errText := ""
	if r.Err != nil {
		errText = r.Err.Error()
	}
	switch r.Done.Kind {
	case quorum.DiskWriteSlot:
		if r.Err == nil {
			d.st.lastWrite = now
		} else if errText != d.st.lastWriteErr {
			d.log.Warn("own quorum-disk slot write failed (repeats are counted in `mtc status`)", "err", r.Err, "seq", r.Seq)
		}
		d.st.lastWriteErr = errText
	case quorum.DiskRead:
		if r.Err != nil && errText != d.st.lastReadErr {
			d.log.Warn("quorum-disk read failed (repeats are counted in `mtc status`)", "err", r.Err)
		}
		d.st.lastReadErr = errText
		if r.LockErr != nil {
			d.log.Debug("tie-break lock read failed; the lock counts as unknown", "err", r.LockErr)
		}
	}
}

func (d *Daemon) noteReady(rd quorum.Ready) {
	d.mu.Lock()
	d.st.qs = rd.Status
	d.mu.Unlock()
}

// Status returns the node's status at this moment. While the event loop
// runs, the loop steps the machine to now and answers; before it starts
// and after it ends (or if it does not answer within statusIOTimeout) it
// is the machine's status after its last step.
func (d *Daemon) Status() Status {
	d.mu.Lock()
	looping := d.looping
	d.mu.Unlock()
	if looping {
		reply := make(chan Status, 1)
		t := time.NewTimer(statusIOTimeout)
		defer t.Stop()
		select {
		case d.statusReq <- reply:
			return <-reply
		case <-d.loopDone:
		case <-t.C:
		}
	}
	return d.status()
}

// status builds the status from the machine's last step.
func (d *Daemon) status() Status {
	now := d.clock()
	recv := boundStats(d.recv.Stats())
	send := d.sender.Stats()
	ds := d.rounds.Stats()
	var stops []StopRecord
	if r, ok := d.stopper.(*RecordingStopper); ok {
		stops = r.Stops()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	qs := d.st.qs
	s := Status{
		Cluster: d.cl.Name, ClusterUUID: d.cl.UUID.String(), Node: d.self.Name, NodeID: d.self.ID,
		Incarnation: fmt.Sprintf("%016x", d.Incarnation()), PID: os.Getpid(), Time: time.Now().Round(time.Microsecond), Uptime: now,
		Quorate: qs.Quorate, Armed: qs.Armed, Stopped: qs.Stopped, Tie: qs.Tie,
		Members: d.memberNames(qs.Members), Epoch: qs.Epoch, Reason: qs.Reason.String(),
		Network:      NetworkStatus{Send: send, Receive: recv, LastSendError: d.st.lastSendErr},
		PackageStops: stops,
		Disk: DiskStatus{Path: d.opt.DiskPath, Writes: ds.Writes, WriteFailures: ds.WriteFailures, SinceWrite: since(now, d.st.lastWrite),
			LastWriteError: ds.LastWriteErr, Reads: ds.Reads, ReadFailures: ds.ReadFailures, LastReadError: ds.LastReadErr,
			LockReadFailures: ds.LockReadFailures, LastLockError: ds.LastLockErr,
			Conflicts: ds.Conflicts, Conflict: ds.Conflict, VerifyFailures: ds.VerifyFailures, OwnSlotProblem: ds.OwnSlotProblem,
			OtherGeneration: ds.OtherGeneration},
		Watchdog:      WatchdogStatus{Mode: d.opt.WatchdogMode, Feeds: d.st.feeds, SinceFeed: since(now, d.st.lastFeed), LastError: d.st.wdErr},
		FenceRequests: append([]EventRecord(nil), d.st.fenceRequests...),
		Takeovers:     append([]EventRecord(nil), d.st.takeovers...),
		Fencing:       d.fenceStatus(),
		Decisions:     append([]DecisionRecord(nil), d.st.decisions...),
	}
	switch {
	case qs.Stopped:
		s.State = StateStopped
	case qs.Quorate:
		s.State = StateQuorate
	case qs.Armed:
		s.State = StateInquorate
	default:
		s.State = StateStarting
	}
	if qs.Armed && !qs.Stopped && !qs.Quorate {
		s.StopIn = max(0, qs.StopDeadline-now)
	}
	for _, p := range qs.Peers {
		ps := PeerStatus{
			Name: d.names[p.Node], ID: int(p.Node), State: p.State.String(), Member: p.Member,
			Net: p.Net.String(), NetAlive: p.Net == liveness.Live || p.Net == liveness.Suspect,
			SinceHeard: p.NetAge, Disk: p.Disk.String(), DiskSinceChange: p.DiskAge,
			TakenOver: p.TakenOver, FenceError: p.FenceError,
		}
		if p.Fence != quorum.FenceNone {
			ps.Fence = p.Fence.String()
		}
		if p.Fence == quorum.FencePending || p.Fence == quorum.FenceFailing {
			ps.FencePending = d.pendingWhy(p)
		}
		if p.Inc != 0 {
			ps.Incarnation = fmt.Sprintf("%016x", uint64(p.Inc))
		}
		if g, ok := ds.OtherGenerationPeers[int(p.Node)]; ok {
			ps.OtherGeneration = fmt.Sprintf("%016x", g)
		}
		s.Peers = append(s.Peers, ps)
	}
	sort.Slice(s.Peers, func(i, j int) bool { return s.Peers[i].ID < s.Peers[j].ID })
	return s
}

// maxDropSources bounds the per-source drop counters in a status answer:
// the busiest sources are shown, the rest summed under one entry, so a
// flood from many spoofed addresses cannot make the answer large.
const maxDropSources = 32

// otherSources is the key under which the sources beyond maxDropSources
// are summed.
const otherSources = "(other sources)"

func boundStats(st nethb.Stats) nethb.Stats {
	if len(st.Dropped) <= maxDropSources {
		return st
	}
	type src struct {
		name string
		n    uint64
	}
	var all []src
	for name, byReason := range st.Dropped {
		var n uint64
		for _, c := range byReason {
			n += c
		}
		all = append(all, src{name, n})
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].n != all[j].n {
			return all[i].n > all[j].n
		}
		return all[i].name < all[j].name
	})
	out := make(map[string]map[string]uint64, maxDropSources+1)
	other := make(map[string]uint64)
	for i, sc := range all {
		if i < maxDropSources-1 {
			out[sc.name] = st.Dropped[sc.name]
			continue
		}
		for reason, c := range st.Dropped[sc.name] {
			other[reason] += c
		}
	}
	out[otherSources] = other
	st.Dropped = out
	return st
}

func since(now, at time.Duration) time.Duration {
	if at < 0 {
		return -1
	}
	return now - at
}

// DefaultSocketDir holds the status sockets: /run/mtc/<cluster>.sock.
const DefaultSocketDir = "/run/mtc"

// DefaultSocket is the status socket path of a cluster.
func DefaultSocket(cluster string) string {
	return filepath.Join(DefaultSocketDir, cluster+".sock")
}

// statusIOTimeout bounds one status exchange, so a stuck client cannot
// hold a connection (not a cluster timing).
const statusIOTimeout = 5 * time.Second

// ListenStatus creates the status socket at path. A leftover socket file
// from a daemon that is gone is replaced; a socket a running daemon still
// answers on is an error.
func ListenStatus(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("status socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("status socket %s exists and is not a socket: remove it or choose another --socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("status socket %s: another daemon is running and answering on it; stop it first", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale status socket %s: %w", path, err)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("status socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, fmt.Errorf("status socket %s: %w", path, err)
	}
	return l, nil
}

// ServeStatus answers every connection on l with the JSON status, until l
// is closed.
func (d *Daemon) ServeStatus(l net.Listener) error {
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("status socket: %w", err)
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(statusIOTimeout))
			// The file mode keeps others off the socket; the peer's
			// credentials decide, so that a socket made reachable by
			// mistake (a mode or directory changed) still answers root
			// only.
			if err := peerIsRoot(c); err != nil {
				_ = json.NewEncoder(c).Encode(statusAnswer{Error: err.Error()})
				return
			}
			_ = json.NewEncoder(c).Encode(d.Status())
		}()
	}
}

// statusAnswer is what the status socket sends: a Status, or an error
// alone.
type statusAnswer struct {
	Status
	Error string `json:"error,omitempty"`
}

// ErrNotRoot is the status socket's refusal of a caller that is not root.
var ErrNotRoot = errors.New("permission denied: run as root")

// peerIsRoot checks the connecting process's credentials (SO_PEERCRED).
func peerIsRoot(c net.Conn) error {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return fmt.Errorf("%w (not a unix socket peer)", ErrNotRoot)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return fmt.Errorf("%w (peer credentials: %v)", ErrNotRoot, err)
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		cerr = err
	}
	if cerr != nil {
		return fmt.Errorf("%w (peer credentials: %v)", ErrNotRoot, cerr)
	}
	if cred.Uid != 0 {
		return fmt.Errorf("%w (the caller is uid %d)", ErrNotRoot, cred.Uid)
	}
	return nil
}

// dialError says what a failure to reach the status socket means: a user
// who may not open it is told so, not asked whether the daemon runs.
func dialError(path string, err error) error {
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("status socket %s: permission denied: run as root (the socket is open to root and its group only): %w", path, err)
	}
	return fmt.Errorf("status socket %s: %w (is the daemon running? start it with `mtc daemon`)", path, err)
}

// QueryStatus reads the status of the daemon listening on path.
func QueryStatus(ctx context.Context, path string) (Status, error) {
	var s Status
	var dl net.Dialer
	c, err := dl.DialContext(ctx, "unix", path)
	if err != nil {
		return s, dialError(path, err)
	}
	defer c.Close()
	deadline := time.Now().Add(statusIOTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.SetDeadline(deadline)
	b, err := io.ReadAll(c)
	if err != nil {
		return s, fmt.Errorf("status socket %s: %w", path, err)
	}
	var a statusAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		return s, fmt.Errorf("status socket %s: malformed answer: %w", path, err)
	}
	if a.Error != "" {
		if strings.HasPrefix(a.Error, ErrNotRoot.Error()) {
			return s, fmt.Errorf("status socket %s: %w%s", path, ErrNotRoot, strings.TrimPrefix(a.Error, ErrNotRoot.Error()))
		}
		return s, fmt.Errorf("status socket %s: %s", path, a.Error)
	}
	return a.Status, nil
}

// FenceStatus is this node's fencing: the LUNs and the verified fences.
type FenceStatus struct {
	LUNs []FenceLUNStatus `json:"luns"`
	// Fenced are the fences verified on every LUN with PR support, oldest
	// first (Reason lists the LUNs).
	Fenced []EventRecord `json:"fenced,omitempty"`
	// Registration is what the last check of this node's own
	// registration found on each LUN with PR support ("quorum: 2 of 2
	// paths, data: gone"; "unknown" for a LUN no path could read, or the
	// check's error), RegistrationChecked when it ended (zero before the
	// first; the quorum package documentation, Registration checks).
	Registration        string    `json:"registration,omitempty"`
	RegistrationChecked time.Time `json:"registration_checked,omitzero"`
}

// FenceLUNStatus is one fenced LUN: its PR backend (sg_io, block_pr), or
// "none" and why.
type FenceLUNStatus struct {
	Name    string `json:"name"`
	Backend string `json:"backend"`
	Paths   int    `json:"paths,omitempty"`
	NoPR    string `json:"no_pr,omitempty"`
}

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
	"time"

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

// Status is what the daemon reports on its status socket.
type Status struct {
	Cluster     string `json:"cluster"`
	ClusterUUID string `json:"cluster_uuid"`
	Node        string `json:"node"`
	NodeID      int    `json:"node_id"`
	Incarnation string `json:"incarnation"`
	PID         int    `json:"pid"`
	// Uptime is the local monotonic time since the daemon started.
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
	FenceRequests []string `json:"fence_requests,omitempty"`
	Takeovers     []string `json:"takeovers,omitempty"`
	// Decisions are the most recent membership decisions, oldest first.
	Decisions []DecisionRecord `json:"decisions"`
}

// PeerStatus is one peer as this node sees it.
type PeerStatus struct {
	Name string `json:"name"`
	ID   int    `json:"id"`
	// State is the membership machine's class: unknown, alive, suspect,
	// partitioned, dead.
	State  string `json:"state"`
	Member bool   `json:"member"`
	// NetAlive: a heartbeat was accepted within the failure timeout.
	NetAlive bool `json:"net_alive"`
	// SinceHeard is the time since the last accepted heartbeat; -1 never.
	SinceHeard  time.Duration `json:"since_heard_ns"`
	Incarnation string        `json:"incarnation,omitempty"`
	// Disk is the liveness of the peer's slot counter: unknown, live,
	// suspect, dead.
	Disk string `json:"disk"`
	// DiskSinceChange is the time since its slot counter last changed;
	// -1 never seen.
	DiskSinceChange time.Duration `json:"disk_since_change_ns"`
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
	Path          string `json:"path,omitempty"`
	Writes        uint64 `json:"writes"`
	WriteFailures uint64 `json:"write_failures"`
	// SinceWrite is the time since the last successful own-slot write; -1 none.
	SinceWrite     time.Duration `json:"since_write_ns"`
	LastWriteError string        `json:"last_write_error,omitempty"`
	Reads          uint64        `json:"reads"`
	ReadFailures   uint64        `json:"read_failures"`
	LastReadError  string        `json:"last_read_error,omitempty"`
	// OwnSlotProblem says why our own slot did not read back as we last
	// wrote it: another daemon writing with our node id, or a lost write.
	OwnSlotProblem string `json:"own_slot_problem,omitempty"`
}

// WatchdogStatus holds the watchdog counters.
type WatchdogStatus struct {
	Mode  string `json:"mode"`
	Feeds uint64 `json:"feeds"`
	// SinceFeed is the time since the last successful feed; -1 none.
	SinceFeed time.Duration `json:"since_feed_ns"`
	LastError string        `json:"last_error,omitempty"`
}

// DecisionRecord is one membership decision at local time At.
type DecisionRecord struct {
	At time.Duration `json:"at_ns"`
	// Kind is the decision's kind as quorum.DecisionKind names it:
	// members, quorum-gained, quorum-lost, peer, self-fence, ...
	Kind string `json:"kind"`
	// Peer is the peer it is about, if any.
	Peer string `json:"peer,omitempty"`
	// Members is the member set, for membership and quorum decisions.
	Members []string `json:"members,omitempty"`
	Text    string   `json:"text"`
}

// state is what the event loop records for the status, under Daemon.mu.
type state struct {
	qs            quorum.Status
	peerState     map[quorum.NodeID]quorum.PeerState
	netHeard      map[quorum.NodeID]time.Duration
	netInc        map[quorum.NodeID]quorum.Incarnation
	disk          map[quorum.NodeID]*liveness.Tracker
	writes        uint64
	writeFails    uint64
	lastWrite     time.Duration
	lastWriteErr  string
	lastSeq       uint64 // sequence number of the last successful own write
	ownSlot       string
	reads         uint64
	readFails     uint64
	lastReadErr   string
	lastSendErr   string
	feeds         uint64
	lastFeed      time.Duration
	wdErr         string
	fenceRequests []string
	takeovers     []string
	decisions     []DecisionRecord
}

func (s *state) init(d *Daemon) {
	s.peerState = make(map[quorum.NodeID]quorum.PeerState)
	s.netHeard = make(map[quorum.NodeID]time.Duration)
	s.netInc = make(map[quorum.NodeID]quorum.Incarnation)
	s.disk = make(map[quorum.NodeID]*liveness.Tracker)
	for id := range d.names {
		if int(id) != d.self.ID {
			s.disk[id] = &liveness.Tracker{SuspectAfter: d.timing.SuspectAfter, DeadAfter: d.timing.DeadAfter, NeedCoverage: true}
		}
	}
	s.lastWrite, s.lastFeed = -1, -1
}

func (d *Daemon) noteNet(ev netEvent) {
	now := d.clock()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.st.netHeard[ev.hb.From] = now
	if prev, ok := d.st.netInc[ev.hb.From]; ev.newInc && ok && prev != ev.hb.Inc {
		d.log.Info("peer restarted (new incarnation on the network)", "peer", ev.peer,
			"incarnation", fmt.Sprintf("%016x", uint64(ev.hb.Inc)), "previous", fmt.Sprintf("%016x", uint64(prev)))
	}
	d.st.netInc[ev.hb.From] = ev.hb.Inc
}

func (d *Daemon) noteDisk(r diskResult) {
	now := d.clock()
	d.mu.Lock()
	defer d.mu.Unlock()
	switch r.done.Kind {
	case quorum.DiskWriteSlot:
		if r.err != nil {
			d.st.writeFails++
			if d.st.lastWriteErr != r.err.Error() {
				d.log.Warn("own quorum-disk slot write failed", "err", r.err)
			}
			d.st.lastWriteErr = r.err.Error()
			return
		}
		d.st.writes++
		d.st.lastWrite = now
		d.st.lastWriteErr = ""
		d.st.lastSeq = r.seq
	case quorum.DiskRead:
		if r.err != nil {
			d.st.readFails++
			if d.st.lastReadErr != r.err.Error() {
				d.log.Warn("quorum-disk read failed", "err", r.err)
			}
			d.st.lastReadErr = r.err.Error()
			return
		}
		d.st.reads++
		d.st.lastReadErr = ""
		for _, sr := range r.reads {
			if sr.ID == d.self.ID {
				d.checkOwnSlot(sr)
				continue
			}
			if t := d.st.disk[quorum.NodeID(sr.ID)]; t != nil {
				t.Observe(now, sr.Observation())
			}
		}
	}
}

// checkOwnSlot compares our slot as read with what we last wrote. Disk
// I/O is serialised, so a read that follows a successful write sees it.
// Called with d.mu held.
func (d *Daemon) checkOwnSlot(sr diskhb.SlotRead) {
	if d.st.writes == 0 {
		return
	}
	problem := ""
	inc := d.Incarnation()
	switch {
	case sr.Err != nil:
		problem = fmt.Sprintf("own slot unreadable after a successful write: %v", sr.Err)
	case sr.Slot.Incarnation != inc:
		problem = fmt.Sprintf("own slot holds incarnation %016x (node %q), not ours (%016x): another daemon is running with node id %d; stop it", sr.Slot.Incarnation, sr.Slot.NodeName, inc, d.self.ID)
	case sr.Slot.Seq < d.st.lastSeq:
		problem = fmt.Sprintf("own slot holds sequence %d, older than the %d written last: the storage lost an acknowledged write", sr.Slot.Seq, d.st.lastSeq)
	}
	if problem != "" && problem != d.st.ownSlot {
		d.log.Error("quorum disk: "+problem, "slot", d.self.ID)
	}
	d.st.ownSlot = problem
}

func (d *Daemon) noteReady(rd quorum.Ready) {
	d.mu.Lock()
	d.st.qs = rd.Status
	d.mu.Unlock()
}

// Status returns the node's current status.
func (d *Daemon) Status() Status {
	now := d.clock()
	recv := d.recv.Stats()
	send := d.sender.Stats()
	var stops []StopRecord
	if r, ok := d.stopper.(*RecordingStopper); ok {
		stops = r.Stops()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	qs := d.st.qs
	s := Status{
		Cluster: d.cl.Name, ClusterUUID: d.cl.UUID.String(), Node: d.self.Name, NodeID: d.self.ID,
		Incarnation: fmt.Sprintf("%016x", d.Incarnation()), PID: os.Getpid(), Uptime: now,
		Quorate: qs.Quorate, Armed: qs.Armed, Stopped: qs.Stopped, Tie: qs.Tie,
		Members: d.memberNames(qs.Members), Epoch: qs.Epoch,
		Network:      NetworkStatus{Send: send, Receive: recv, LastSendError: d.st.lastSendErr},
		PackageStops: stops,
		Disk: DiskStatus{Path: d.opt.DiskPath, Writes: d.st.writes, WriteFailures: d.st.writeFails, SinceWrite: since(now, d.st.lastWrite),
			LastWriteError: d.st.lastWriteErr, Reads: d.st.reads, ReadFailures: d.st.readFails, LastReadError: d.st.lastReadErr, OwnSlotProblem: d.st.ownSlot},
		Watchdog:      WatchdogStatus{Mode: d.opt.WatchdogMode, Feeds: d.st.feeds, SinceFeed: since(now, d.st.lastFeed), LastError: d.st.wdErr},
		FenceRequests: append([]string(nil), d.st.fenceRequests...),
		Takeovers:     append([]string(nil), d.st.takeovers...),
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
	if qs.Armed && !qs.Stopped {
		s.StopIn = max(0, qs.StopDeadline-now)
		if qs.Quorate {
			s.StopIn = 0
		}
	}
	for _, n := range d.cl.Nodes {
		id := quorum.NodeID(n.ID)
		if n.ID == d.self.ID {
			continue
		}
		p := PeerStatus{Name: n.Name, ID: n.ID, State: d.st.peerState[id].String(), Member: qs.Members.Has(id), SinceHeard: -1, DiskSinceChange: -1, Disk: liveness.Unknown.String()}
		if at, ok := d.st.netHeard[id]; ok {
			p.SinceHeard = now - at
			p.NetAlive = p.SinceHeard < d.timing.DeadAfter
			p.Incarnation = fmt.Sprintf("%016x", uint64(d.st.netInc[id]))
		}
		if t := d.st.disk[id]; t != nil {
			p.Disk = t.State(now).String()
			if sc, ok := t.SinceChange(now); ok {
				p.DiskSinceChange = sc
			}
		}
		s.Peers = append(s.Peers, p)
	}
	sort.Slice(s.Peers, func(i, j int) bool { return s.Peers[i].ID < s.Peers[j].ID })
	return s
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
			_ = json.NewEncoder(c).Encode(d.Status())
		}()
	}
}

// QueryStatus reads the status of the daemon listening on path.
func QueryStatus(ctx context.Context, path string) (Status, error) {
	var s Status
	var dl net.Dialer
	c, err := dl.DialContext(ctx, "unix", path)
	if err != nil {
		return s, fmt.Errorf("status socket %s: %w (is the daemon running? start it with `mtc daemon`)", path, err)
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
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("status socket %s: malformed answer: %w", path, err)
	}
	return s, nil
}

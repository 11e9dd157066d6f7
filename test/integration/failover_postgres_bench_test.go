package integration

// The PostgreSQL failover benchmark: the failover benchmark's cluster and
// crash (failover_bench_test.go) with a package of a VIP, ext4 on a loop
// device and a real PostgreSQL server whose data directory lives on that
// filesystem, and an observer that writes a numbered row through the VIP
// every few milliseconds.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/mtcluster/mtc/internal/benchdoc"
	"github.com/mtcluster/mtc/test/lab/failbench"
	"github.com/mtcluster/mtc/test/testutil"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const (
	// fbPGPort is PostgreSQL's port on the VIP.
	fbPGPort = 5432
	// fbPGProbeEvery is the PostgreSQL observer's period: each probe is
	// a new connection (a backend forked on the server) and one INSERT.
	fbPGProbeEvery = 20 * time.Millisecond
	// fbPGProbeTimeout bounds one probe, connection and INSERT together.
	fbPGProbeTimeout = time.Second
	// fbPGWriteBeforeCrash: the observer writes this long (after its
	// first acknowledged INSERT) before each crash, so that the crash
	// finds rows committed and writes in flight.
	fbPGWriteBeforeCrash = 500 * time.Millisecond
	// fbPGDiskSize is the size of the database's loop device (sparse).
	fbPGDiskSize = 256 << 20
	// fbPGInsert is the observer's write: the row numbered $1, with the
	// name of the node that stores it (the server's cluster_name).
	fbPGInsert = "INSERT INTO records (n, node) VALUES ($1, current_setting('cluster_name')) RETURNING node"
)

var fbPGVariant = fbVariant{name: "VIP + ext4 + PostgreSQL", fs: true, pg: true}

// BenchmarkNetnsPostgresFailover is BenchmarkNetnsFailover's crash of the
// active node for a package that runs a real database: a VIP, ext4 on a
// loop device and PostgreSQL (Debian's postgresql package, the newest
// version under /usr/lib/postgresql) with its data directory on that
// filesystem, run as test/demo/demo.sh runs it (initdb with trust
// authentication; `postgres -D` in the foreground as user postgres, through
// a wrapper that turns the SIGTERM of a halt into a fast shutdown; health
// check pg_isready through the VIP). Besides the failover benchmark's
// observer (crash to VIP answering), a PostgreSQL observer in the same
// namespace opens a connection to the VIP's port 5432 every 20 ms and
// INSERTs a numbered row, each probe bounded by 1 s: the figure is from the
// crash to the first acknowledged INSERT of a probe sent after it. After
// the last crash of a profile every acknowledged row must be in the table;
// a missing one fails the benchmark (and MTC_BENCH_OUT is not written).
// With MTC_BENCH_OUT=FILE it replaces the failover-postgres section of that
// markdown file (`make bench-failover-postgres`):
//
//	MTC_BENCH_OUT=$PWD/docs/BENCHMARKS.md go test -run '^$' -bench NetnsPostgresFailover -benchtime 1x -timeout 30m ./test/integration
//
// MTC_FAILOVER_RUNS (default 20) is the number of crashes per profile and
// MTC_FAILOVER_PROFILES (default "default,aggressive") the profiles, as for
// BenchmarkNetnsFailover. (Its name does not contain "NetnsFailover", so
// that `-bench NetnsFailover` does not run it too.)
func BenchmarkNetnsPostgresFailover(b *testing.B) {
	requireTools(b)
	pgBin := requirePostgres(b)
	runs := max(envInt(b, "MTC_FAILOVER_RUNS", 20), 1)
	profiles := fbProfiles(b)
	var results []fbResult
	began := time.Now()
	load := loadavg()
	for range b.N {
		results = results[:0]
		for _, p := range profiles {
			r, _, _ := measureFailovers(b, p, fbPGVariant, runs, false, 0)
			results = append(results, r)
		}
	}
	took := time.Since(began)
	for _, r := range results {
		b.ReportMetric(float64(failbench.Pct(fbVIPTimes(r), 0.5))/1e6, r.p.Name+"-vip-p50-ms")
		b.ReportMetric(float64(failbench.Pct(failbench.Col(r.Runs, func(x fbRun) time.Duration { return x.write }), 0.5))/1e6, r.p.Name+"-write-p50-ms")
	}
	body := postgresFailoverReport(results, pgVersion(pgBin), runs, took, load)
	fmt.Print(body)
	var bad []string
	for _, r := range results {
		if r.rows.err != "" || len(r.rows.missing) > 0 {
			bad = append(bad, fmt.Sprintf("%s profile: %s", r.p.Name, r.rows))
		}
	}
	if len(bad) > 0 {
		b.Fatalf("acknowledged rows lost or not checked (MTC_BENCH_OUT not written):\n%s", strings.Join(bad, "\n"))
	}
	if out := os.Getenv("MTC_BENCH_OUT"); out != "" {
		if err := benchdoc.ReplaceSection(out, "failover-postgres", body); err != nil {
			b.Fatal(err)
		}
	}
}

// requirePostgres returns the directory of the newest PostgreSQL's
// programs under /usr/lib/postgresql, skipping b (failing it in CI) when
// there is none or no user postgres.
func requirePostgres(b testing.TB) string {
	b.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	dirs = slices.DeleteFunc(dirs, func(d string) bool {
		_, err := os.Stat(filepath.Join(d, "postgres"))
		return err != nil
	})
	_, uerr := user.Lookup("postgres")
	if len(dirs) == 0 || uerr != nil {
		msg := "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres or no user postgres): apt-get install postgresql"
		if testutil.InCI() {
			b.Fatal(msg)
		}
		b.Skip(msg)
	}
	version := func(d string) int {
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(d)))
		return v
	}
	slices.SortFunc(dirs, func(x, y string) int { return version(x) - version(y) })
	return dirs[len(dirs)-1]
}

func pgVersion(pgBin string) string {
	out, err := exec.Command(filepath.Join(pgBin, "postgres"), "--version").Output()
	if err != nil {
		return "PostgreSQL (version unknown)"
	}
	return strings.Replace(strings.TrimSpace(string(out)), "postgres (PostgreSQL)", "PostgreSQL", 1)
}

// With the first argument mtc-failbench-pginit this test binary makes the
// benchmark's database, run by newFBPostgres in a mount namespace of its
// own (unshare --mount): it mounts DEVICE at MOUNTPOINT, makes a new
// database cluster in MOUNTPOINT/pgdata as user postgres with PGBIN's
// initdb, lets it answer on VIP to clients of SUBNET and creates the table
// records, and unmounts the filesystem.
func init() {
	if len(os.Args) < 2 || os.Args[1] != "mtc-failbench-pginit" {
		return
	}
	if len(os.Args) != 7 {
		fmt.Fprintln(os.Stderr, "usage: mtc-failbench-pginit DEVICE MOUNTPOINT PGBIN VIP SUBNET")
		os.Exit(2)
	}
	if err := pgInit(os.Args[2], os.Args[3], os.Args[4], os.Args[5], os.Args[6]); err != nil {
		fmt.Fprintln(os.Stderr, "mtc-failbench-pginit:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func pgInit(dev, mnt, pgBin, vip, subnet string) error {
	pgUser, err := user.Lookup("postgres")
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(pgUser.Uid)
	gid, _ := strconv.Atoi(pgUser.Gid)
	if err := unix.Mount(dev, mnt, "ext4", 0, ""); err != nil {
		return fmt.Errorf("mount %s %s: %w", dev, mnt, err)
	}
	defer unix.Unmount(mnt, 0)
	data := filepath.Join(mnt, "pgdata")
	if err := os.Mkdir(data, 0o700); err != nil {
		return err
	}
	if err := os.Chown(data, uid, gid); err != nil {
		return err
	}
	asPostgres := func(stdin string, args ...string) error {
		cmd := exec.Command("runuser", append([]string{"-u", "postgres", "--"}, args...)...)
		cmd.Dir = "/"
		cmd.Stdin = strings.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := asPostgres("", filepath.Join(pgBin, "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--locale=C", "-E", "UTF8", "-N"); err != nil {
		return err
	}
	// fsync and synchronous_commit stay on (their defaults): an
	// acknowledged INSERT is on the disk, and must survive the crash.
	conf := fmt.Sprintf(`
# The failover benchmark: the server answers on the package's address only.
listen_addresses = '%s'
port = %d
unix_socket_directories = ''
shared_buffers = 16MB
max_connections = 40
`, vip, fbPGPort)
	if err := appendFile(filepath.Join(data, "postgresql.conf"), conf); err != nil {
		return err
	}
	if err := appendFile(filepath.Join(data, "pg_hba.conf"), fmt.Sprintf("host all all %s trust\n", subnet)); err != nil {
		return err
	}
	return asPostgres("CREATE TABLE records (n bigint PRIMARY KEY, node text NOT NULL, at timestamptz NOT NULL DEFAULT now());\n",
		filepath.Join(pgBin, "postgres"), "--single", "-D", data, "postgres")
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// fbPostgres is the package's database: its programs, the directory of
// its mount point and service wrapper (readable by user postgres, unlike
// the tests' temporary directories), and the observer's rows.
type fbPostgres struct {
	b       testing.TB
	bin     string // PostgreSQL's programs
	dir     string
	mnt     string
	wrapper string
	next    atomic.Int64 // the last row number a probe used
	acked   []int64      // the rows whose INSERT was acknowledged, over all the runs
}

// newFBPostgres makes the database on dev (an ext4 filesystem, left
// unmounted) and the service's wrapper.
func newFBPostgres(b testing.TB, dev string) *fbPostgres {
	b.Helper()
	pg := &fbPostgres{b: b, bin: requirePostgres(b)}
	dir, err := os.MkdirTemp("", "mtc-failbench-pg-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	pg.dir, pg.mnt, pg.wrapper = dir, filepath.Join(dir, "mnt"), filepath.Join(dir, "pg-service")
	if err := os.Mkdir(pg.mnt, 0o755); err != nil {
		b.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	subnet := fmt.Sprintf(subnetFmt+"/%d", 0, 0, prefixLen)
	run(b, "unshare", "--mount", "--propagation", "private", self, "mtc-failbench-pginit", dev, pg.mnt, pg.bin, fbVIP, subnet)
	// As test/demo/demo.sh: postgres in the foreground, named after the
	// node it runs on (each row says which node stored it); the SIGTERM
	// of a halt, a "smart" shutdown that waits for every client to leave,
	// becomes a "fast" one (SIGINT), as `pg_ctl stop` does.
	script := fmt.Sprintf(`#!/bin/sh
addr=$(ip -o -4 addr show dev eth0 primary | awk '{ sub("/.*", "", $4); print $4; exit }')
%q -D %q -c cluster_name="n${addr##*.}" &
pid=$!
trap 'kill -INT $pid' TERM
rc=0
while kill -0 $pid 2>/dev/null; do wait $pid; rc=$?; done
exit $rc
`, filepath.Join(pg.bin, "postgres"), filepath.Join(pg.mnt, "pgdata"))
	if err := os.WriteFile(pg.wrapper, []byte(script), 0o755); err != nil {
		b.Fatal(err)
	}
	return pg
}

// serviceTOML is the package's [[service]] table.
func (pg *fbPostgres) serviceTOML() string {
	return fmt.Sprintf(`
[[service]]
name = "postgres"
command = [%q]
user = "postgres"
health_command = [%q, "-q", "-h", %q, "-p", "%d", "-t", "2"]
health_interval = "2s"
health_timeout = "2s"
halt_timeout = "5s"
`, pg.wrapper, filepath.Join(pg.bin, "pg_isready"), fbVIP, fbPGPort)
}

// connConfig is the observer's connection to the database through the
// VIP, its sockets made in the network namespace ns, timeout its
// connect_timeout.
func (pg *fbPostgres) connConfig(ns netns.NsHandle, timeout time.Duration) *pgx.ConnConfig {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable connect_timeout=%d",
		fbVIP, fbPGPort, max(int(timeout/time.Second), 1)))
	if err != nil {
		pg.b.Fatal(err)
	}
	// One round trip per statement (no prepared-statement cache).
	cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dialInNS(ctx, ns, network, addr)
	}
	return cfg
}

// dialInNS dials addr from the network namespace ns: on a thread of its
// own, moved into ns and ended with its goroutine (never unlocked), so
// that no other goroutine runs in ns. The connection's socket stays in
// ns.
func dialInNS(ctx context.Context, ns netns.NsHandle, network, addr string) (net.Conn, error) {
	type dialed struct {
		c   net.Conn
		err error
	}
	ch := make(chan dialed, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(ns); err != nil {
			ch <- dialed{nil, err}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		ch <- dialed{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// pgAck is one acknowledged INSERT: its row, when its probe was sent and
// acknowledged, and the node that stored it.
type pgAck struct {
	n        int64
	sent, at time.Time
	node     string
}

// pgProber is the PostgreSQL observer: every fbPGProbeEvery a new
// connection to the VIP and one INSERT of the next row number, each probe
// bounded by fbPGProbeTimeout, every acknowledgement recorded.
type pgProber struct {
	ns   netns.NsHandle
	cfg  *pgx.ConnConfig
	mu   sync.Mutex
	acks []pgAck
	stop chan struct{}
	done chan struct{}
	wg   sync.WaitGroup
}

// startProber starts the observer in the namespace at nsPath.
func (pg *fbPostgres) startProber(nsPath string) *pgProber {
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		pg.b.Fatal(err)
	}
	p := &pgProber{ns: ns, cfg: pg.connConfig(ns, fbPGProbeTimeout), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(fbPGProbeEvery)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
			p.wg.Add(1)
			go p.probe(pg.next.Add(1))
		}
	}()
	return p
}

func (p *pgProber) probe(n int64) {
	defer p.wg.Done()
	sent := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), fbPGProbeTimeout)
	defer cancel()
	c, err := pgx.ConnectConfig(ctx, p.cfg.Copy())
	if err != nil {
		return
	}
	defer closeConn(c)
	var node string
	if err := c.QueryRow(ctx, fbPGInsert, n).Scan(&node); err != nil {
		return
	}
	at := time.Now()
	p.mu.Lock()
	p.acks = append(p.acks, pgAck{n: n, sent: sent, at: at, node: node})
	p.mu.Unlock()
}

// closeConn ends c, waiting at most a second for the server.
func closeConn(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = c.Close(ctx)
}

// stopProber ends the observer, waits for its probes in flight, and adds
// its acknowledged rows to those the table must hold.
func (pg *fbPostgres) stopProber(p *pgProber) {
	close(p.stop)
	<-p.done
	p.wg.Wait()
	p.ns.Close()
	for _, a := range p.acks {
		pg.acked = append(pg.acked, a.n)
	}
}

// first is the first acknowledgement of a probe sent after since.
func (p *pgProber) first(since time.Time) (pgAck, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var first pgAck
	for _, a := range p.acks {
		if !a.sent.Before(since) && (first.at.IsZero() || a.at.Before(first.at)) {
			first = a
		}
	}
	return first, !first.at.IsZero()
}

// waitAck waits up to bound for an acknowledgement of a probe sent after
// since.
func (p *pgProber) waitAck(since time.Time, bound time.Duration) bool {
	for deadline := time.Now().Add(bound); time.Now().Before(deadline); time.Sleep(fbPGProbeEvery) {
		if _, ok := p.first(since); ok {
			return true
		}
	}
	return false
}

// pgRows is the check of the acknowledged rows after a case's last run.
type pgRows struct {
	acked, stored int     // acknowledged rows; rows in the table
	missing       []int64 // acknowledged and not in the table
	err           string  // why the table could not be read
}

func (r pgRows) String() string {
	switch {
	case r.err != "":
		return fmt.Sprintf("acknowledged rows: %d, NOT CHECKED: %s", r.acked, r.err)
	case len(r.missing) > 0:
		return fmt.Sprintf("acknowledged rows: %d, **%d MISSING** from the table (%d rows): %v", r.acked, len(r.missing), r.stored, r.missing)
	}
	if r.stored == r.acked {
		return fmt.Sprintf("acknowledged rows: %d, all present (the table holds exactly these)", r.acked)
	}
	return fmt.Sprintf("acknowledged rows: %d, all present (the table holds %d: a probe's row can be stored and its acknowledgement lost in a crash or to its timeout)", r.acked, r.stored)
}

// checkRows reads the table through the VIP from the namespace at nsPath
// (retrying for a while: the package has just settled) and compares it
// with the acknowledged rows.
func (pg *fbPostgres) checkRows(nsPath string) pgRows {
	res := pgRows{acked: len(pg.acked)}
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		res.err = err.Error()
		return res
	}
	defer ns.Close()
	cfg := pg.connConfig(ns, 5*time.Second)
	var stored map[int64]bool
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Second) {
		stored, err = readRows(cfg)
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		res.err = err.Error()
		return res
	}
	res.stored = len(stored)
	for _, n := range pg.acked {
		if !stored[n] {
			res.missing = append(res.missing, n)
		}
	}
	slices.Sort(res.missing)
	return res
}

func readRows(cfg *pgx.ConnConfig) (map[int64]bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.ConnectConfig(ctx, cfg.Copy())
	if err != nil {
		return nil, err
	}
	defer closeConn(c)
	rows, err := c.Query(ctx, "SELECT n FROM records")
	if err != nil {
		return nil, err
	}
	ns, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, err
	}
	if len(ns) == 0 {
		return nil, errors.New("the table records is empty")
	}
	out := make(map[int64]bool, len(ns))
	for _, n := range ns {
		out[n] = true
	}
	return out, nil
}

func postgresFailoverReport(results []fbResult, version string, runs int, took time.Duration, load string) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	host, _ := os.Hostname()
	p("## Failover of PostgreSQL: crash of the active node to the VIP answering and PostgreSQL accepting a write\n\n")
	p("The failover benchmark's cluster (the section `failover`): three `mtc daemon` processes, each in its own network namespace (and, through `ip netns exec`, its own mount namespace) on one machine: %s, %d CPUs (%s), %s, %s; load average %s when the run began%s. One heartbeat network (veth pairs on a bridge), a loop-device quorum disk, process watchdog. One package runs on one node (`configured_node`, failback `manual`): a VIP, ext4 on a loop device, and %s, Debian's package, with its data directory on that filesystem, run as `make demo` runs it: a database cluster made with `initdb` (trust authentication), `postgres -D` in the foreground as user postgres through a wrapper that turns the SIGTERM of a halt into a fast shutdown, listening on the VIP only, `fsync` and `synchronous_commit` on (their defaults); its health check, `pg_isready` through the VIP, must pass before the start ends. Measured %s with `make bench-failover-postgres`, which runs:\n\n",
		host, numCPU(), cpuModel(), osRelease(), runtime.Version(), load, fbNice(), version, time.Now().UTC().Format("2006-01-02"))
	p("    MTC_BENCH_OUT=$PWD/docs/BENCHMARKS.md go test -run '^$' -bench NetnsPostgresFailover -benchtime 1x -timeout 30m ./test/integration\n\n")
	p("The whole run (%d crashes per timing profile) took %s.\n\n", runs, took.Round(time.Second))
	p("**The crash**, as in the section `failover`: the node running the package has its interface set down (the crash instant), its filesystem shut down without flushing the journal (`FS_IOC_SHUTDOWN`), every process in its namespace killed with SIGKILL (the daemon, its watchdog supervisor, the postmaster and its backends, mid-write), and the VIP removed from its interface. The new owner's start mounts the filesystem (replaying its journal) and starts PostgreSQL, which finds the database not shut down and runs crash recovery from its write-ahead log before it accepts connections. The crashed node is restarted once the failover is measured, and the next crash hits whichever node runs the package then.\n\n")
	p("**The observers**, in a namespace on the same bridge. One opens a TCP connection to the VIP's port %d, where nothing listens, every %v (up to %v each): *VIP answering* is the first answer (a refusal: some node holds the address) to a probe sent after the link went down. The other, with [pgx](https://github.com/jackc/pgx), opens a new connection to the VIP's port %d every %v and sends one `%s` with the next number, connection and INSERT bounded by %v together, from %v before each crash: *PostgreSQL accepting a write* is the acknowledgement of the first probe sent after the link went down whose INSERT is acknowledged (its row must be stored by the new owner). The phases are the new owner's failover timeline (`mtc status --json`, packages[].failover), as in the section `failover`. After a profile's last crash every acknowledged row must be in the table (read back through the VIP); a missing one fails the benchmark, and this section is not written.\n\n",
		fbPort, fbProbeEvery, fbProbeTimeout, fbPGPort, fbPGProbeEvery, fbPGInsert, fbPGProbeTimeout, fbPGWriteBeforeCrash)
	p("**No fencing on this host.** The loop devices cannot do SCSI persistent reservations, so no node can be fenced: the survivors wait for the lost node's watchdog deadline, TakeoverAfter (failure_timeout + watchdog_timeout + margin) after it left the membership, before they take its packages over. With PR fencing the takeover follows the fence instead (the section `failover-pr`, in the QEMU lab).\n\n")
	rows := append(fbRows(), failbench.Row[fbRun]{Name: "crash → **PostgreSQL accepting a write** (observer)", Of: func(x fbRun) time.Duration { return x.write }})
	phases := append(fbPhases(),
		failbench.Row[fbRun]{Name: "VIP answering → PostgreSQL accepting a write (server start, crash recovery)", Of: func(x fbRun) time.Duration { return x.write - x.VIP }},
		failbench.Row[fbRun]{Name: "start ordered → PostgreSQL accepting a write", Of: func(x fbRun) time.Duration { return x.write - x.Started }})
	for _, r := range results {
		sec := failbench.Section[fbRun]{Title: fmt.Sprintf("%s profile, package: %s", r.p.Name, r.v.name),
			Timing: fbTimingLine(r.p.Timing),
			Case:   r.Case, Rows: rows, Phases: phases,
			StepNote: "The address step includes its RFC 5227 probe (2 probes 50 ms apart, then 100 ms of listening); the service's step ends with its first successful health check (`pg_isready` through the VIP, retried every 100 ms), which is why the observer can write before the start plan ends"}
		b.WriteString(sec.String())
		p("After the last crash: %s.\n\n", r.rows)
	}
	return b.String()
}

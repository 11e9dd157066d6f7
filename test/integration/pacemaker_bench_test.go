package integration

// Pacemaker in the failover benchmark: Debian's pacemaker and corosync,
// one cluster node in each benchmark node's network namespace with a mount
// and a UTS namespace of its own, one ocf:heartbeat:IPaddr2 resource with
// the benchmark's VIP, its holder crashed as the package's owner is, and
// the same observer measuring the crash to the VIP answering.

import (
	"bufio"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mtcluster/mtc/test/lab/failbench"
)

const (
	// pmResource is the id of the IPaddr2 resource in the CIB.
	pmResource = "vip"
	// pmRunBound bounds one Pacemaker failover: corosync's token and
	// consensus timeouts (3.65 s and 4.38 s with three nodes) and a
	// transition, several times over.
	pmRunBound = 60 * time.Second
	// pmStableBound bounds the wait for a stable cluster: the first start
	// waits for dc-deadtime (20 s) before the DC is elected.
	pmStableBound = 3 * time.Minute
	// pmSettle is how long the cluster must look stable (every node sees
	// all three online, the same DC and the resource started on the one
	// node whose eth0 carries the VIP) before a crash.
	pmSettle = 2 * time.Second
	// pmPoll is how often crm_mon is asked while waiting for stability
	// (never during a measured failover).
	pmPoll = 500 * time.Millisecond
)

// pmDirs are the directories of one Pacemaker node that persist across
// its crashes (on a real node, they are on its disk), bind-mounted over
// the host's in the node's mount namespace; /run and /dev/shm are fresh
// tmpfs at every start, as after a reboot.
var pmDirs = []string{"etc/corosync", "var/lib/corosync", "var/log/corosync", "var/lib/pacemaker", "var/log/pacemaker"}

// pmPackages are Debian's packages the Pacemaker part needs.
var pmPackages = []string{"pacemaker", "pacemaker-cli-utils", "corosync", "resource-agents"}

// With the first argument mtc-failbench-pcmk-node DIR NAME this test
// binary is one Pacemaker node, started through `ip netns exec` (a network
// namespace and a fresh mount namespace) in a UTS namespace of its own: it
// mounts the node's directories under DIR over the host's, fresh tmpfs on
// /run and /dev/shm (libqb's IPC), sets the host name NAME, starts
// corosync, waits until it answers, starts pacemakerd, and ends when either
// ends.
func init() {
	if len(os.Args) == 4 && os.Args[1] == "mtc-failbench-pcmk-node" {
		pmNodeMain(os.Args[2], os.Args[3])
	}
}

func pmNodeMain(dir, name string) {
	fail := func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "pacemaker node %s: "+format+"\n", append([]any{name}, a...)...)
		os.Exit(2)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		fail("make / private: %v", err)
	}
	for _, m := range []struct{ dst, mode string }{{"/run", "0755"}, {"/dev/shm", "1777"}} {
		if err := unix.Mount("tmpfs", m.dst, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode="+m.mode); err != nil {
			fail("tmpfs on %s: %v", m.dst, err)
		}
	}
	// What systemd-tmpfiles creates at boot (resource-agents.conf: the
	// agents' state directory).
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{"/run/lock", 0o1777}, {"/run/resource-agents", 0o1755}} {
		if err := os.Mkdir(d.path, 0o755); err != nil {
			fail("%v", err)
		}
		if err := os.Chmod(d.path, d.mode); err != nil {
			fail("%v", err)
		}
	}
	for _, d := range pmDirs {
		if err := unix.Mount(filepath.Join(dir, d), "/"+d, "", unix.MS_BIND, ""); err != nil {
			fail("bind %s over /%s: %v", filepath.Join(dir, d), d, err)
		}
	}
	if err := unix.Sethostname([]byte(name)); err != nil {
		fail("host name: %v", err)
	}
	ended := make(chan string, 2)
	start := func(args ...string) *exec.Cmd {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			fail("%s: %v", args[0], err)
		}
		go func() {
			err := cmd.Wait()
			ended <- fmt.Sprintf("%s ended: %v", args[0], err)
		}()
		return cmd
	}
	// The systemd units' commands: corosync -f (Type=notify), then
	// pacemakerd once corosync runs (Requires=corosync.service).
	start("corosync", "-f")
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if exec.Command("corosync-cfgtool", "-s").Run() == nil {
			break
		}
		select {
		case s := <-ended:
			fail("%s", s)
		default:
		}
		if time.Now().After(deadline) {
			fail("corosync does not answer corosync-cfgtool -s after a minute")
		}
	}
	start("pacemakerd")
	fail("%s", <-ended)
}

// pmRun is one crash of the resource's holder, every time since the crash.
type pmRun struct {
	from, to string
	dc       bool // the crashed node was the DC
	// From the new holder's corosync and pacemaker logs (the wall clock
	// of this one machine; 0 when the line was not found).
	tokenLost, membership, startOrdered, started time.Duration
	vip                                          time.Duration // observer: first answer
	rejoin                                       time.Duration // restart of the crashed node -> stable again
}

type pmReport struct {
	profile  string
	skipped  string // why Pacemaker was not measured
	versions string
	// Read from the running cluster, not assumed.
	token, consensus string   // corosync's runtime.config.totem values (ms)
	changed          []string // CIB settings beyond what Pacemaker maintains itself
	rscDefaults      []string
	opDefaults       []string
	monitor          string // the monitor operation as configured
	runs             []pmRun
	failed           []string
}

// pmNode is one Pacemaker node (corosync, pacemakerd and its daemons) in a
// benchmark node's namespaces.
type pmNode struct {
	nd  *Node
	dir string
	// proc is the node process; its process group holds corosync,
	// pacemakerd and its daemons. Killing it is the crash (fbCluster.crash
	// then kills whatever else is left in the namespace: resource agents'
	// children).
	proc *failbench.Proc
}

type pmCluster struct {
	fc    *fbCluster
	nodes map[string]*pmNode
}

// pacemaker measures Pacemaker's failover of the same VIP in the same
// namespaces (the cluster's daemons stopped). Everything it starts is
// killed before it returns, and in the benchmark's cleanup if it fails.
func (fc *fbCluster) pacemaker(runs int) pmReport {
	rep := pmReport{profile: fc.c.profile.Name}
	if missing := pmMissing(); len(missing) > 0 {
		args := append([]string{"install", "-y", "--no-install-recommends"}, pmPackages...)
		fc.b.Logf("%s not installed: apt-get update && apt-get %s", strings.Join(missing, ", "), strings.Join(args, " "))
		cmd := exec.Command("sh", "-c", "apt-get update && apt-get "+strings.Join(args, " "))
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			rep.skipped = fmt.Sprintf("%s not installed and `apt-get %s` failed (%v: %s)", strings.Join(missing, ", "), strings.Join(args, " "), err, lastLine(string(out)))
			return rep
		}
		if missing := pmMissing(); len(missing) > 0 {
			rep.skipped = strings.Join(missing, ", ") + " still missing after apt-get install"
			return rep
		}
	}
	var vs []string
	for _, pkg := range []string{"pacemaker", "corosync", "resource-agents"} {
		out, err := exec.Command("dpkg-query", "--show", "--showformat", "${Version}", pkg).Output()
		if v := strings.TrimSpace(string(out)); err == nil && v != "" {
			vs = append(vs, pkg+" "+v)
		}
	}
	if len(vs) == 0 { // not a Debian system: the programs' own versions
		for _, v := range [][]string{{"pacemakerd", "--version"}, {"corosync", "-v"}} {
			out, _ := exec.Command(v[0], v[1:]...).CombinedOutput()
			vs = append(vs, strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0]))
		}
	}
	rep.versions = strings.Join(vs, ", ")

	pc := &pmCluster{fc: fc, nodes: map[string]*pmNode{}}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		for _, n := range pc.nodes {
			n.proc.Kill()
			if err := failbench.KillNetNS("/run/netns/" + n.nd.NS); err != nil {
				fc.b.Error(err)
			}
		}
	}
	fc.b.Cleanup(stop)
	defer stop()
	for _, nd := range fc.c.Nodes {
		dir := filepath.Join(fc.c.dir, "pacemaker-"+nd.Name)
		if err := pmNodeDirs(dir, fc.c.Nodes); err != nil {
			rep.skipped = err.Error()
			return rep
		}
		pc.nodes[nd.Name] = &pmNode{nd: nd, dir: dir}
		pc.start(nd)
	}
	if err := pc.configure(&rep); err != nil {
		rep.skipped = err.Error()
		pc.logTails()
		return rep
	}
	holder, dc, _, err := pc.waitStable(&rep)
	if err != nil {
		rep.skipped = "the cluster did not settle after it was configured: " + err.Error()
		pc.logTails()
		return rep
	}
	missed := 0
	for i := 0; i < runs; i++ {
		r := pmRun{from: holder.Name, dc: dc == holder.Name}
		var crashed time.Time
		crashed, r.vip = fc.crashVIP("pacemaker", holder, pc.nodes[holder.Name].proc.Kill, pmRunBound)
		if hs := fc.vipHolders(); len(hs) == 1 {
			r.to = hs[0].Name
		}
		fbProgress("pacemaker, run %d: %s (DC %v) crashed -> %s; VIP answering after %v", i+1, r.from, r.dc, r.to, r.vip)
		if r.vip == 0 {
			pc.logTails()
			rep.failed = append(rep.failed, fmt.Sprintf("run %d (%s crashed): no answer within %v", i+1, r.from, pmRunBound))
			if missed++; missed >= fbGiveUp {
				rep.failed = append(rep.failed, fmt.Sprintf("given up after run %d: %d runs in a row without an answer", i+1, missed))
				rep.runs = append(rep.runs, r)
				break
			}
		} else {
			missed = 0
		}
		victim := holder
		restarted := time.Now()
		fc.restore(victim, func() { pc.start(victim) })
		var since time.Time
		holder, dc, since, err = pc.waitStable(&rep)
		if err != nil {
			rep.failed = append(rep.failed, fmt.Sprintf("after run %d (%s crashed and restarted): the cluster did not settle again: %v", i+1, victim.Name, err))
			pc.logTails()
			rep.runs = append(rep.runs, r)
			break
		}
		r.rejoin = since.Sub(restarted)
		// The logs are read once the cluster has settled: the observer
		// may reach the address before IPaddr2's start (still sending
		// its ARPs) has returned and been logged.
		if r.to != "" {
			pc.phases(&r, crashed)
		}
		fbProgress("pacemaker, run %d: token lost %v, membership %v, start ordered %v, started %v; rejoin %v",
			i+1, r.tokenLost, r.membership, r.startOrdered, r.started, r.rejoin)
		rep.runs = append(rep.runs, r)
	}
	return rep
}

// pmMissing are the commands of pmPackages that are not installed.
func pmMissing() []string {
	var out []string
	for _, c := range []string{"pacemakerd", "corosync", "crm_mon", "cibadmin", "crm_attribute", "corosync-cmapctl", "nsenter"} {
		if _, err := exec.LookPath(c); err != nil {
			out = append(out, c)
		}
	}
	if _, err := os.Stat("/usr/lib/ocf/resource.d/heartbeat/IPaddr2"); err != nil {
		out = append(out, "ocf:heartbeat:IPaddr2")
	}
	return out
}

// pmNodeDirs creates a node's persistent directories under dir, each with
// the mode and owner of the host's (the package's), and its corosync.conf:
// Debian's, with cluster_name and the nodelist replaced by the benchmark's
// three nodes on heartbeat network 0 (eth0). Everything else in it is
// what Debian ships (knet, no crypto, votequorum, logging to
// /var/log/corosync/corosync.log).
func pmNodeDirs(dir string, nodes []*Node) error {
	mk := func(rel string) error {
		host := "/" + rel
		st, err := os.Stat(host)
		if err != nil {
			return fmt.Errorf("pacemaker: %w (is the package installed?)", err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(p, st.Mode().Perm()|st.Mode()&os.ModeSticky); err != nil {
			return err
		}
		return os.Chown(p, int(sys.Uid), int(sys.Gid))
	}
	for _, d := range pmDirs {
		if err := mk(d); err != nil {
			return err
		}
	}
	for _, d := range []string{"var/lib/pacemaker/cib", "var/lib/pacemaker/pengine", "var/lib/pacemaker/blackbox", "var/lib/pacemaker/cores", "var/log/pacemaker/bundles"} {
		if err := mk(d); err != nil {
			return err
		}
	}
	var nl strings.Builder
	for _, nd := range nodes {
		fmt.Fprintf(&nl, "\tnode {\n\t\tname: %s\n\t\tnodeid: %d\n\t\tring0_addr: %s\n\t}\n", nd.Name, nd.ID, nd.Addr)
	}
	conf := fmt.Sprintf(`totem {
	version: 2
	cluster_name: mtcbench
	crypto_cipher: none
	crypto_hash: none
}
logging {
	fileline: off
	to_stderr: yes
	to_logfile: yes
	logfile: /var/log/corosync/corosync.log
	to_syslog: yes
	debug: off
	logger_subsys {
		subsys: QUORUM
		debug: off
	}
}
quorum {
	provider: corosync_votequorum
}
nodelist {
%s}
`, nl.String())
	return os.WriteFile(filepath.Join(dir, "etc/corosync/corosync.conf"), []byte(conf), 0o644)
}

// start starts nd's Pacemaker node (its log: DIR/node.log).
func (pc *pmCluster) start(nd *Node) {
	n := pc.nodes[nd.Name]
	cmd := exec.Command("ip", "netns", "exec", nd.NS, pc.fc.self, "mtc-failbench-pcmk-node", n.dir, nd.Name)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUTS}
	p, err := failbench.StartProc(cmd, filepath.Join(n.dir, "node.log"))
	if err != nil {
		pc.fc.b.Fatal(err)
	}
	n.proc = p
}

// exec runs a command in nd's Pacemaker node's namespaces (network, mount,
// UTS) and returns its standard output.
func (pc *pmCluster) exec(nd *Node, args ...string) ([]byte, error) {
	n := pc.nodes[nd.Name]
	if !n.proc.Running() {
		return nil, fmt.Errorf("pacemaker node %s is not running", nd.Name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--target", strconv.Itoa(n.proc.PID()), "--mount", "--net", "--uts", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s on %s: %w: %s", strings.Join(args, " "), nd.Name, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// crmMon is what `crm_mon --output-as=xml` says, as far as it is read here.
type crmMon struct {
	Summary struct {
		DC struct {
			Present    bool   `xml:"present,attr"`
			Name       string `xml:"name,attr"`
			WithQuorum bool   `xml:"with_quorum,attr"`
		} `xml:"current_dc"`
	} `xml:"summary"`
	Nodes []struct {
		Name   string `xml:"name,attr"`
		Online bool   `xml:"online,attr"`
	} `xml:"nodes>node"`
	Resources []crmResource `xml:"resources>resource"`
}

type crmResource struct {
	ID     string `xml:"id,attr"`
	Role   string `xml:"role,attr"`
	Active bool   `xml:"active,attr"`
	Failed bool   `xml:"failed,attr"`
	Nodes  []struct {
		Name string `xml:"name,attr"`
	} `xml:"node"`
}

func (pc *pmCluster) crmMon(nd *Node) (crmMon, error) {
	var m crmMon
	out, err := pc.exec(nd, "crm_mon", "--one-shot", "--output-as=xml")
	if err != nil {
		return m, err
	}
	if err := xml.Unmarshal(out, &m); err != nil {
		return m, fmt.Errorf("crm_mon on %s: %w", nd.Name, err)
	}
	return m, nil
}

// stableNow says which node holds the resource and which is the DC if
// every node sees all of them online, the same DC with quorum, and the
// resource started (not failed) on the same one node, whose eth0 alone
// carries the VIP; else why not.
func (pc *pmCluster) stableNow() (holder *Node, dc, why string) {
	fc := pc.fc
	owner := ""
	for _, nd := range fc.c.Nodes {
		m, err := pc.crmMon(nd)
		if err != nil {
			return nil, "", err.Error()
		}
		if !m.Summary.DC.Present || !m.Summary.DC.WithQuorum {
			return nil, "", nd.Name + " sees no DC with quorum"
		}
		online := 0
		for _, n := range m.Nodes {
			if n.Online {
				online++
			}
		}
		if online != len(fc.c.Nodes) {
			return nil, "", fmt.Sprintf("%s sees %d nodes online", nd.Name, online)
		}
		i := slices.IndexFunc(m.Resources, func(r crmResource) bool { return r.ID == pmResource })
		if i < 0 {
			return nil, "", nd.Name + " sees no resource " + pmResource
		}
		r := m.Resources[i]
		if r.Role != "Started" || !r.Active || r.Failed || len(r.Nodes) != 1 {
			return nil, "", fmt.Sprintf("%s sees %s %s (active %v, failed %v) on %d nodes", nd.Name, pmResource, r.Role, r.Active, r.Failed, len(r.Nodes))
		}
		if (owner != "" && owner != r.Nodes[0].Name) || (dc != "" && dc != m.Summary.DC.Name) {
			return nil, "", "the nodes disagree on the resource's node or the DC"
		}
		owner, dc = r.Nodes[0].Name, m.Summary.DC.Name
	}
	hs := fc.vipHolders()
	if len(hs) != 1 || hs[0].Name != owner {
		return nil, "", fmt.Sprintf("the resource runs on %s, the VIP is on %v", owner, names(hs...))
	}
	return hs[0], dc, ""
}

// waitStable waits until the cluster has been stable for pmSettle and
// returns the resource's node, the DC and when it first looked stable. A
// node that ended meanwhile is restarted and said so in rep.failed.
func (pc *pmCluster) waitStable(rep *pmReport) (*Node, string, time.Time, error) {
	var holder *Node
	var dc, why string
	var since time.Time
	for deadline := time.Now().Add(pmStableBound); time.Now().Before(deadline); time.Sleep(pmPoll) {
		for _, nd := range pc.fc.c.Nodes {
			if n := pc.nodes[nd.Name]; !n.proc.Running() {
				rep.failed = append(rep.failed, fmt.Sprintf("Pacemaker on %s ended by itself (%s) and was restarted", nd.Name, lastLine(readFile(filepath.Join(n.dir, "node.log")))))
				fbProgress("%s", rep.failed[len(rep.failed)-1])
				if err := failbench.KillNetNS("/run/netns/" + nd.NS); err != nil {
					pc.fc.b.Fatal(err)
				}
				pc.start(nd)
			}
		}
		h, d, w := pc.stableNow()
		if h == nil {
			holder, why = nil, w
			continue
		}
		if h != holder || d != dc {
			holder, dc, since = h, d, time.Now()
		}
		if time.Since(since) >= pmSettle {
			return holder, dc, since, nil
		}
	}
	return nil, "", time.Time{}, fmt.Errorf("not stable within %v: %s", pmStableBound, why)
}

// logTails logs the end of every node's logs (they go with the
// benchmark's temporary directory).
func (pc *pmCluster) logTails() {
	for _, nd := range pc.fc.c.Nodes {
		for _, f := range []string{"node.log", "var/log/corosync/corosync.log", "var/log/pacemaker/pacemaker.log"} {
			path := filepath.Join(pc.nodes[nd.Name].dir, f)
			pc.fc.b.Logf("---- %s ----\n%s", path, tail(readFile(path), 40))
		}
	}
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// configure waits for a DC, then sets what Pacemaker cannot run this
// resource without (stonith-enabled=false: there is no fence device) and
// creates the IPaddr2 resource with the operations its metadata
// advertises (what pcs writes when none is given), and reads back what is
// configured beyond Pacemaker's defaults and corosync's timeouts.
func (pc *pmCluster) configure(rep *pmReport) error {
	n1 := pc.fc.c.Nodes[0]
	var why string
	dcUp := false
	for deadline := time.Now().Add(pmStableBound); time.Now().Before(deadline) && !dcUp; time.Sleep(pmPoll) {
		m, err := pc.crmMon(n1)
		switch {
		case err != nil:
			why = err.Error()
		case !m.Summary.DC.Present || !m.Summary.DC.WithQuorum:
			why = "no DC with quorum"
		default:
			online := 0
			for _, n := range m.Nodes {
				if n.Online {
					online++
				}
			}
			dcUp, why = online == len(pc.fc.c.Nodes), fmt.Sprintf("%d nodes online", online)
		}
	}
	if !dcUp {
		return fmt.Errorf("Pacemaker did not form a cluster of three within %v: %s", pmStableBound, why)
	}
	meta, err := pc.exec(n1, "crm_resource", "--show-metadata", "ocf:heartbeat:IPaddr2")
	if err != nil {
		return err
	}
	var ra struct {
		Actions []struct {
			Name     string `xml:"name,attr"`
			Interval string `xml:"interval,attr"`
			Timeout  string `xml:"timeout,attr"`
		} `xml:"actions>action"`
	}
	if err := xml.Unmarshal(meta, &ra); err != nil {
		return fmt.Errorf("IPaddr2 metadata: %w", err)
	}
	var ops strings.Builder
	for _, a := range ra.Actions {
		if a.Name != "start" && a.Name != "stop" && a.Name != "monitor" {
			continue
		}
		iv := a.Interval
		if a.Name != "monitor" || iv == "" {
			iv = "0s"
		}
		fmt.Fprintf(&ops, `<op id="%s-%s-interval-%s" name="%s" interval="%s" timeout="%s"/>`, pmResource, a.Name, iv, a.Name, iv, a.Timeout)
		if a.Name == "monitor" {
			rep.monitor = fmt.Sprintf("interval %s, timeout %s", iv, a.Timeout)
		}
	}
	if rep.monitor == "" {
		return errors.New("IPaddr2's metadata advertises no monitor operation")
	}
	prim := fmt.Sprintf(`<primitive id="%[1]s" class="ocf" provider="heartbeat" type="IPaddr2"><instance_attributes id="%[1]s-instance_attributes">`+
		`<nvpair id="%[1]s-ip" name="ip" value="%[2]s"/><nvpair id="%[1]s-cidr_netmask" name="cidr_netmask" value="%[3]d"/><nvpair id="%[1]s-nic" name="nic" value="eth0"/>`+
		`</instance_attributes><operations>%[4]s</operations></primitive>`, pmResource, pc.fc.vip.Addr(), pc.fc.vip.Bits(), ops.String())
	for _, args := range [][]string{
		{"crm_attribute", "--type", "crm_config", "--name", "stonith-enabled", "--update", "false"},
		{"cibadmin", "--create", "--scope", "resources", "--xml-text", prim},
	} {
		if _, err := pc.exec(n1, args...); err != nil {
			return err
		}
	}
	// Read back what the CIB holds beyond what Pacemaker maintains itself.
	cfg, err := pc.exec(n1, "cibadmin", "--query", "--scope", "configuration")
	if err != nil {
		return err
	}
	sets, err := cibSettings(cfg)
	if err != nil {
		return err
	}
	maintained := []string{"dc-version", "cluster-infrastructure", "cluster-name", "have-watchdog", "last-lrm-refresh"}
	for _, p := range sets["crm_config"] {
		if name, _, _ := strings.Cut(p, "="); !slices.Contains(maintained, name) {
			rep.changed = append(rep.changed, p)
		}
	}
	rep.rscDefaults, rep.opDefaults = sets["rsc_defaults"], sets["op_defaults"]
	for _, k := range []struct {
		key string
		dst *string
	}{{"runtime.config.totem.token", &rep.token}, {"runtime.config.totem.consensus", &rep.consensus}} {
		out, err := pc.exec(n1, "corosync-cmapctl", "-g", k.key)
		if err != nil {
			return err
		}
		// "runtime.config.totem.token (u32) = 3650"
		_, v, ok := strings.Cut(strings.TrimSpace(string(out)), "= ")
		if !ok {
			return fmt.Errorf("corosync-cmapctl -g %s: %q", k.key, out)
		}
		*k.dst = v
	}
	return nil
}

// cibSettings are the nvpairs (name=value) under each of the CIB
// configuration's crm_config, rsc_defaults and op_defaults sections.
func cibSettings(cfg []byte) (map[string][]string, error) {
	out := map[string][]string{}
	d := xml.NewDecoder(strings.NewReader(string(cfg)))
	var stack []string
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("CIB configuration: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			stack = append(stack, t.Name.Local)
			if t.Name.Local != "nvpair" {
				continue
			}
			var name, value string
			for _, a := range t.Attr {
				switch a.Name.Local {
				case "name":
					name = a.Value
				case "value":
					value = a.Value
				}
			}
			for _, sec := range stack {
				if sec == "crm_config" || sec == "rsc_defaults" || sec == "op_defaults" {
					out[sec] = append(out[sec], name+"="+value)
				}
			}
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		}
	}
}

// phases reads the new holder's corosync and pacemaker logs for the
// failover's steps after crashed.
func (pc *pmCluster) phases(r *pmRun, crashed time.Time) {
	dir := pc.nodes[r.to].dir
	coro, pcmk := filepath.Join(dir, "var/log/corosync/corosync.log"), filepath.Join(dir, "var/log/pacemaker/pacemaker.log")
	r.tokenLost = pmLogAt(coro, crashed, "A processor failed, forming new configuration")
	r.membership = pmLogAt(coro, crashed, "A new membership", "Members left")
	r.startOrdered = pmLogAt(pcmk, crashed, "Requesting local execution of start operation for "+pmResource+" on "+r.to)
	r.started = pmLogAt(pcmk, crashed, "Result of start operation for "+pmResource+" on "+r.to+": ok")
}

// pmLogAt is the time from since to the first line of the corosync or
// pacemaker log at path that is stamped at or after since and contains
// every one of parts; 0 if there is none. Both logs stamp their lines
// with the local wall clock to the millisecond and without a year
// ("Dec 01 20:58:28.223 ..."): since's year is taken.
func pmLogAt(path string, since time.Time, parts ...string) time.Duration {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if len(l) < 19 || slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(l, p) }) {
			continue
		}
		t, err := time.ParseInLocation("Jan 02 15:04:05.000", l[:19], time.Local)
		if err != nil {
			continue
		}
		t = t.AddDate(since.Year(), 0, 0)
		if !t.Before(since.Truncate(time.Millisecond)) {
			return t.Sub(since)
		}
	}
	return 0
}

func pmCol(rep pmReport, f func(pmRun) time.Duration) []time.Duration {
	var out []time.Duration
	for _, r := range rep.runs {
		if d := f(r); d > 0 && r.vip > 0 {
			out = append(out, d)
		}
	}
	return out
}

// pacemakerReport is the Pacemaker part of the failover section, with the
// ratio of our VIP package's p50 (results) to Pacemaker's.
func pacemakerReport(rep pmReport, results []fbResult) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("### Pacemaker, side by side\n\n")
	if rep.skipped != "" {
		p("Not measured: %s.\n", rep.skipped)
		return b.String()
	}
	p("Pacemaker with corosync (%s), in the namespaces of the %s-profile VIP cluster above, its daemons and keepalived stopped. Per node, corosync (`corosync -f`) and then `pacemakerd` are started directly, as their systemd units would, in the node's network namespace with a mount namespace of their own (the node's own /etc/corosync, /var/lib/corosync, /var/log/corosync, /var/lib/pacemaker and /var/log/pacemaker bind-mounted over the host's and kept across its crashes; fresh tmpfs on /run and /dev/shm at every start, as after a reboot: libqb's IPC lives there) and a UTS namespace with the node's name as host name. (The benchmark installs the packages with apt-get when they are missing; on a host run by systemd, Debian's packages then enable and start corosync.service and pacemaker.service on the host itself, a one-node cluster on 127.0.0.1 that the namespaces never see and the benchmark never uses: `systemctl disable --now pacemaker corosync` removes it.)\n\n", rep.versions, rep.profile)
	p("**What differs from the defaults.** corosync.conf is Debian's `/etc/corosync/corosync.conf` with `cluster_name` and the `nodelist` replaced by the three nodes (`ring0_addr` their eth0 address): knet, no crypto (Debian's file says `crypto_cipher: none`), votequorum; token %s ms and consensus %s ms as corosync computed them (`corosync-cmapctl`, runtime.config.totem; its defaults: token 3000 ms plus token_coefficient 650 ms for each node beyond two, consensus 1.2 × token). In the CIB, besides what Pacemaker maintains itself, only %s is set", rep.token, rep.consensus, pmList(rep.changed))
	p("; rsc_defaults: %s; op_defaults: %s (so resource-stickiness 0, no-quorum-policy stop, the defaults). One resource, `ocf:heartbeat:IPaddr2` with ip=%s, cidr_netmask=%d, nic=eth0, and the operations IPaddr2's metadata advertises (what `pcs resource create` writes when none is given): monitor %s, start and stop with their timeouts (the monitor plays no part in these failovers: a crashed node is found lost by corosync, not by a monitor).\n\n", pmList(rep.rscDefaults), pmList(rep.opDefaults), fbVIP, fbVIPLen, rep.monitor)
	p("**stonith-enabled=false is the one change Pacemaker cannot run without here**: with its default (true) and no fence device it starts no resource at all, and there is no fence device on this host (no IPMI, no shared disk for SBD or fence_scsi). It makes Pacemaker unsafe in the same way keepalived is: a node that is lost from the membership is assumed down and its resources are started elsewhere at once, without proof that it stopped. no-quorum-policy stays `stop` (a minority stops its resources once it notices, which the majority does not wait for).\n\n")
	p("The resource's node is crashed exactly as the package's owner was (link down, SIGKILL of every process in its namespace: corosync, pacemakerd and its daemons; VIP removed), and the same observer measures crash → VIP answering. The crashed node is then restarted (link up, corosync and pacemakerd started) and rejoins; the next crash hits whichever node holds the VIP then. The phases are from the new holder's corosync and pacemaker logs (wall clock of this one machine, to the millisecond).\n\n")
	var measured int
	var dcVIP, otherVIP []time.Duration
	for _, r := range rep.runs {
		if r.vip > 0 {
			measured++
			if r.dc {
				dcVIP = append(dcVIP, r.vip)
			} else {
				otherVIP = append(otherVIP, r.vip)
			}
		}
	}
	p("crashes: %d, failovers measured: %d; the crashed node was also the DC in %d of them (then the survivors elect a new DC before the scheduler runs)", len(rep.runs), measured, len(dcVIP))
	if len(dcVIP) > 0 && len(otherVIP) > 0 {
		p(": crash → VIP answering p50 %s when it was, %s when it was not", failbench.Sec(failbench.Pct(dcVIP, 0.5)), failbench.Sec(failbench.Pct(otherVIP, 0.5)))
	}
	p(".\n\n")
	rows := []struct {
		name string
		f    func(pmRun) time.Duration
	}{
		{"crash → token lost (corosync: \"A processor failed\")", func(r pmRun) time.Duration { return r.tokenLost }},
		{"crash → new membership without the crashed node", func(r pmRun) time.Duration { return r.membership }},
		{"crash → start of IPaddr2 ordered on the new holder", func(r pmRun) time.Duration { return r.startOrdered }},
		{"crash → IPaddr2 start done", func(r pmRun) time.Duration { return r.started }},
		{"crash → **VIP answering** (observer)", func(r pmRun) time.Duration { return r.vip }},
		{"crashed node restarted → all three online again, resource started (rejoin)", func(r pmRun) time.Duration { return r.rejoin }},
	}
	p("| Pacemaker | p50 | p95 | max | runs |\n|---|---|---|---|---|\n")
	for _, row := range rows {
		col := pmCol(rep, row.f)
		p("| %s | %s | %d |\n", row.name, failbench.Quantiles(col), len(col))
	}
	for _, f := range rep.failed {
		p("\n%s\n", f)
	}
	theirs := failbench.Pct(pmCol(rep, func(r pmRun) time.Duration { return r.vip }), 0.5)
	var ours []fbResult
	for _, r := range results {
		if !r.v.fs {
			ours = append(ours, r)
		}
	}
	if len(ours) > 0 && theirs > 0 {
		p("\nOur p50 (crash → VIP answering, VIP package, in this same run) divided by Pacemaker's p50 (above 1: we are slower):\n\n| mtc profile | vs Pacemaker |\n|---|---|\n")
		for _, r := range ours {
			o := failbench.Pct(fbVIPTimes(r), 0.5)
			if o > 0 && theirs > 0 {
				p("| %s (TakeoverAfter %v; p50 %s) | %.2f× |\n", r.p.Name, r.p.Timing.Derive().TakeoverAfter, failbench.Sec(o), float64(o)/float64(theirs))
			} else {
				p("| %s | — |\n", r.p.Name)
			}
		}
		if m := failbench.Pct(pmCol(rep, func(r pmRun) time.Duration { return r.membership }), 0.5); m > 0 {
			p("\nOf Pacemaker's p50 of %s, corosync's membership change alone (the token timeout, then consensus) takes %s: the survivors know nothing of the crash before it, and with fencing off they wait for nothing after it. Our package, on this host, waits after detection for the lost node's watchdog deadline (TakeoverAfter) before it touches anything.\n", failbench.Sec(theirs), failbench.Sec(m))
		}
	}
	p("\nWhat Pacemaker did: corosync noticed the lost token after its token timeout, waited for consensus, formed a membership of the two survivors (quorate: two of three votes); the DC (a newly elected one when the crashed node was the DC) ran the scheduler, and IPaddr2 added the address on a survivor and sent gratuitous ARPs (send_arp). What it did not do, as configured here: it fenced nothing (stonith-enabled=false), so it started the address without knowing the old holder had stopped; nothing made a hung or cut-off holder drop the address (a minority stops its resources only once corosync there notices, and no watchdog enforces it); it moved no storage. With a fence device or SBD (stonith-watchdog-timeout) a production Pacemaker waits for the fence or the watchdog timeout before the start, which these figures do not include; our package waits for the lost node's watchdog deadline on this host.\n")
	return b.String()
}

func pmList(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return "`" + strings.Join(s, "`, `") + "`"
}

// The CIB reading of the Pacemaker benchmark: the settings of each section,
// nothing from elsewhere (a resource's instance attributes are nvpairs too).
func TestCIBSettings(t *testing.T) {
	cfg := `<configuration>
  <crm_config>
    <cluster_property_set id="cib-bootstrap-options">
      <nvpair id="o-dc" name="dc-version" value="2.1.5"/>
      <nvpair id="o-st" name="stonith-enabled" value="false"/>
    </cluster_property_set>
  </crm_config>
  <resources>
    <primitive id="vip" class="ocf" provider="heartbeat" type="IPaddr2">
      <instance_attributes id="vip-ia"><nvpair id="vip-ip" name="ip" value="10.0.0.1"/></instance_attributes>
    </primitive>
  </resources>
  <rsc_defaults><meta_attributes id="rd"><nvpair id="rd-s" name="resource-stickiness" value="1"/></meta_attributes></rsc_defaults>
</configuration>`
	got, err := cibSettings([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"dc-version=2.1.5", "stonith-enabled=false"}; !slices.Equal(got["crm_config"], want) {
		t.Errorf("crm_config = %q, want %q", got["crm_config"], want)
	}
	if want := []string{"resource-stickiness=1"}; !slices.Equal(got["rsc_defaults"], want) {
		t.Errorf("rsc_defaults = %q, want %q", got["rsc_defaults"], want)
	}
	if len(got["op_defaults"]) != 0 || len(got) != 2 {
		t.Errorf("sections = %q, want crm_config and rsc_defaults only", got)
	}
	if _, err := cibSettings([]byte("<configuration><crm_config>")); err == nil {
		t.Error("a truncated CIB was read without an error")
	}
}

// The log reading: the first matching line at or after the crash, not an
// earlier one, and 0 when there is none.
func TestPacemakerLogAt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "corosync.log")
	log := `Dec 01 20:50:00.000 [1] n2 corosync notice  [TOTEM ] A new membership (2.9) was formed. Members left: 3
Dec 01 20:58:21.591 [1] n2 corosync info    [KNET  ] link: host: 1 link: 0 is down
Dec 01 20:58:23.839 [1] n2 corosync notice  [TOTEM ] A processor failed, forming new configuration: token timed out (3650ms), waiting 4380ms for consensus.
Dec 01 20:58:28.223 [1] n2 corosync notice  [TOTEM ] A new membership (2.d) was formed. Members joined: 4
Dec 01 20:58:28.224 [1] n2 corosync notice  [TOTEM ] A new membership (2.e) was formed. Members left: 1
`
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	crashed := time.Date(2026, 12, 1, 20, 58, 20, 300_000_000, time.Local)
	for _, c := range []struct {
		parts []string
		want  time.Duration
	}{
		{[]string{"A processor failed"}, 3539 * time.Millisecond},
		{[]string{"A new membership", "Members left"}, 7924 * time.Millisecond},
		{[]string{"Members left: 3"}, 0},
		{[]string{"no such line"}, 0},
	} {
		if got := pmLogAt(path, crashed, c.parts...); got != c.want {
			t.Errorf("pmLogAt(%q) = %v, want %v", c.parts, got, c.want)
		}
	}
}

package executor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"etcdctl-wizard/node/nodetest"
	"etcdctl-wizard/plan"
	"etcdctl-wizard/remote"
	"etcdctl-wizard/remote/follow"
	"etcdctl-wizard/remote/lab"
)

// labEnv is a lab plus what apply needs to reach it.
type labEnv struct {
	lab      *lab.Lab
	node     string
	stateDir string
	known    string // known_hosts used by the wizard
	events   *eventLog
}

type eventLog struct {
	mu  sync.Mutex
	evs []Event
	on  func(Event)
}

func (l *eventLog) add(ev Event) {
	l.mu.Lock()
	l.evs = append(l.evs, ev)
	on := l.on
	l.mu.Unlock()
	if on != nil {
		on(ev)
	}
}

func (l *eventLog) all() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.evs...)
}

// TestMain doubles as a program that holds a port, for the busy-port test:
// started inside a lab host with EXECUTOR_TEST_LISTEN=ADDR, it listens there
// and writes its pid to /run/busy.pid.
func TestMain(m *testing.M) {
	if addr := os.Getenv("EXECUTOR_TEST_LISTEN"); addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			os.Exit(3)
		}
		defer ln.Close()
		if err := os.WriteFile("/run/busy.pid", []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			os.Exit(4)
		}
		time.Sleep(10 * time.Minute)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func newLabEnv(t testing.TB, n int) *labEnv {
	t.Helper()
	l := lab.Start(t, n)
	// The lab's /root is an overlay of this machine's, whose .bashrc (read by
	// bash for every SSH command) starts pyenv: ~150 ms a command. Hosts get
	// a fresh server's empty one.
	for _, h := range l.Hosts {
		h.MustExec(t, ": > /root/.bashrc")
	}
	known := filepath.Join(t.TempDir(), "known_hosts")
	b, err := os.ReadFile(l.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(known, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return &labEnv{lab: l, node: nodeBinary(t), stateDir: t.TempDir(), known: known, events: &eventLog{}}
}

// nodeBinary is $ETCDCTL_WIZARD_NODE_BINARY (e.g. make's bin/etcd-node), or
// etcd-node built from the source tree.
func nodeBinary(t testing.TB) string {
	if p := os.Getenv("ETCDCTL_WIZARD_NODE_BINARY"); p != "" {
		return p
	}
	return nodetest.BuildNode(t)
}

func (e *labEnv) options() Options {
	kh := &remote.KnownHosts{Path: e.known}
	return Options{
		Connect: func(ctx context.Context, h plan.HostPlan) (remote.Transport, error) {
			return remote.DialSSH(ctx, remote.SSHOptions{Name: h.Member, Host: h.Target.Host, Port: h.Target.Port, User: h.Target.User,
				KeyFiles: []string{e.lab.ClientKey}, ConfigFile: "none", AgentSocket: "none", KnownHosts: kh,
				Dial: e.lab.Dial, ConnectTimeout: 3 * time.Second})
		},
		NodeBinary:    func(string) (string, error) { return e.node, nil },
		StateDir:      e.stateDir,
		HealthTimeout: 60 * time.Second,
		Events:        e.events.add,
	}
}

// labPlan is the guide's static plan for n lab hosts with a TLS mode.
func labPlan(t testing.TB, n int, tlsMode string) *plan.Plan {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: etcdctl-wizard/v1\nkind: Cluster\nmetadata:\n  name: etcd-cluster-1\nspec:\n  bootstrap:\n    mode: static\n  tls:\n    mode: %s\n  node:\n    dataDir: \"\"\n  members:\n", tlsMode)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "    - name: infra%d\n      ip: 10.0.1.%d\n", i, 10+i)
	}
	p, err := plan.LoadReader(strings.NewReader(b.String()), "lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// memberPIDs reads each member process's pid and start time on its host.
func (e *labEnv) memberPIDs(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, h := range e.lab.Hosts {
		s := h.MustExec(t, `pid=$(cat /run/etcd-node.pid.child) && echo "$pid $(cut -d' ' -f22 /proc/$pid/stat)"`)
		out[h.Name] = strings.TrimSpace(s)
	}
	return out
}

func (e *labEnv) etcdctl(t testing.TB, etcdctl string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := e.lab.Command(ctx, etcdctl, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("etcdctl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func TestLabApplyNoneReapplyReset(t *testing.T) {
	e := newLabEnv(t, 3)
	_, etcdctl := nodetest.Upstream(t)
	p := labPlan(t, 3, plan.TLSNone)
	ctx := context.Background()
	res, err := Apply(ctx, p, e.options())
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	for _, h := range res.Hosts {
		if !h.Started || h.Uploads == 0 {
			t.Errorf("%s: first apply %+v", h.Member, h)
		}
	}
	out := e.etcdctl(t, etcdctl, "--endpoints=http://10.0.1.10:2379,http://10.0.1.11:2379,http://10.0.1.12:2379", "endpoint", "health")
	if strings.Count(out, "is healthy") != 3 {
		t.Fatalf("etcdctl endpoint health:\n%s", out)
	}
	out = e.etcdctl(t, etcdctl, "--endpoints=http://10.0.1.10:2379", "member", "list")
	for _, n := range []string{"infra0", "infra1", "infra2"} {
		if !strings.Contains(out, n+", http://10.0.1.") {
			t.Errorf("member list lacks %s:\n%s", n, out)
		}
	}
	before := e.memberPIDs(t)

	// Re-apply: nothing changes, nothing restarts.
	res, err = Apply(ctx, p, e.options())
	if err != nil {
		t.Fatalf("re-apply: %v", err)
	}
	if changed, uploads, restarts := res.Changes(); changed != 0 || uploads != 0 || restarts != 0 {
		t.Errorf("re-apply changed %d steps, %d uploads, %d restarts: %+v", changed, uploads, restarts, res.Hosts)
	}
	if after := e.memberPIDs(t); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("members restarted: before %v after %v", before, after)
	}

	// A changed member flag: that member alone is restarted.
	changed := labPlan(t, 3, plan.TLSNone)
	changed.Spec.Members[1].Flags = map[string]string{"snapshot-count": "5000"}
	res, err = Apply(ctx, changed, e.options())
	if err != nil {
		t.Fatalf("apply of a changed flag: %v", err)
	}
	for _, h := range res.Hosts {
		if want := h.Member == "infra1"; h.Restarted != want || h.Started || (h.Uploads == 1) != want {
			t.Errorf("%s after a flag change of infra1: %+v", h.Member, h)
		}
	}
	after := e.memberPIDs(t)
	if after["infra0"] != before["infra0"] || after["infra2"] != before["infra2"] || after["infra1"] == before["infra1"] {
		t.Errorf("restarts: before %v after %v", before, after)
	}
	if env := e.lab.Host("infra1").MustExec(t, "cat /etc/etcd/etcd-node.env"); !strings.Contains(env, `ETCD_SNAPSHOT_COUNT="5000"`) {
		t.Errorf("env file of infra1:\n%s", env)
	}
	before = after

	// A change for every member: they restart one at a time, each after
	// the cluster is healthy again.
	all := labPlan(t, 3, plan.TLSNone)
	all.Spec.Node.Flags = map[string]string{"snapshot-count": "6000"}
	n0 := len(e.events.all())
	res, err = Apply(ctx, all, e.options())
	if err != nil {
		t.Fatalf("apply of a changed flag for all: %v", err)
	}
	var order []string
	for _, ev := range e.events.all()[n0:] {
		switch {
		case ev.Step == plan.StepStart && ev.State == StateDone:
			order = append(order, "restart "+ev.Host)
		case ev.Step == StepClusterHealth && ev.State == StateDone:
			order = append(order, "healthy")
		}
	}
	if got := strings.Join(order, ", "); got != "healthy, restart infra0, healthy, restart infra1, healthy, restart infra2, healthy" {
		t.Errorf("restart order: %s", got)
	}
	after = e.memberPIDs(t)
	for _, h := range res.Hosts {
		if !h.Restarted || after[h.Member] == before[h.Member] {
			t.Errorf("%s not restarted: %+v", h.Member, h)
		}
	}
	before = after

	// Reset: hosts are clean.
	if _, err := Reset(ctx, p, e.options()); err != nil {
		t.Fatalf("reset: %v", err)
	}
	for _, h := range e.lab.Hosts {
		pid := strings.Fields(before[h.Name])[0]
		out := h.MustExec(t, `for p in /usr/local/bin/etcd-node /etc/etcd /var/lib/etcd /run/etcd-node.pid /var/log/etcd-node.log; do [ -e $p ] && echo $p; done; if kill -0 `+pid+` 2>/dev/null; then echo member `+pid+` still runs; fi; true`)
		if strings.TrimSpace(out) != "" {
			t.Errorf("%s after reset: %s", h.Name, out)
		}
	}
	if _, err := os.Stat(JournalPath(e.stateDir, "etcd-cluster-1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("journal left after reset: %v", err)
	}
}

// hostsUntouched fails when any of hosts (all lab hosts when none are
// given) got a file from apply.
func (e *labEnv) hostsUntouched(t testing.TB, hosts ...*lab.Host) {
	t.Helper()
	if len(hosts) == 0 {
		hosts = e.lab.Hosts
	}
	for _, h := range hosts {
		out := h.MustExec(t, `for p in /usr/local/bin/etcd-node /etc/etcd /var/lib/etcd /run/etcd-node.pid /var/log/etcd-node.log; do [ -e $p ] && echo $p; done; true`)
		if s := strings.TrimSpace(out); s != "" {
			t.Errorf("%s was changed: %s", h.Name, s)
		}
	}
}

func TestLabPreflightFailures(t *testing.T) {
	e := newLabEnv(t, 3)
	p := labPlan(t, 3, plan.TLSNone)
	ctx := context.Background()

	t.Run("unreachable", func(t *testing.T) {
		h := e.lab.Host("infra2")
		if err := h.SetLink(false); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := h.SetLink(true); err != nil {
				t.Fatal(err)
			}
		}()
		_, err := Apply(ctx, p, e.options())
		var pe *PreflightError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), "infra2: cannot connect to root@10.0.1.12:22") {
			t.Fatalf("apply with infra2 unplugged: %v", err)
		}
		t.Log(err)
		if strings.Contains(err.Error(), "infra0:") || strings.Contains(err.Error(), "infra1:") {
			t.Errorf("error blames reachable hosts: %v", err)
		}
		e.hostsUntouched(t)
	})

	t.Run("busy port", func(t *testing.T) {
		release := holdPort(t, e.lab.Host("infra1"), "10.0.1.11:2380")
		defer release()
		_, err := Apply(ctx, p, e.options())
		var pe *PreflightError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), "infra1: port 2380 is already in use (listening: 10.0.1.11:2380)") {
			t.Fatalf("apply with a busy port: %v", err)
		}
		e.hostsUntouched(t)
	})

	t.Run("changed host key", func(t *testing.T) {
		// Record another host's key under infra1's address.
		b, err := os.ReadFile(e.lab.KnownHosts)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		var infra0Key string
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			f := strings.Fields(l)
			if f[0] == "10.0.1.10" {
				infra0Key = f[1] + " " + f[2]
			}
			if f[0] != "10.0.1.11" {
				lines = append(lines, l)
			}
		}
		lines = append(lines, "10.0.1.11 "+infra0Key)
		bad := filepath.Join(t.TempDir(), "known_hosts")
		os.WriteFile(bad, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
		e2 := *e
		e2.known = bad
		_, err = Apply(ctx, p, e2.options())
		old, now := e.lab.Host("infra0").Fingerprint, e.lab.Host("infra1").Fingerprint
		var ce *remote.HostKeyChangedError
		if !errors.As(err, &ce) && !strings.Contains(err.Error(), "HOST KEY CHANGED") {
			t.Fatalf("apply with a changed host key: %v", err)
		}
		t.Log(err)
		if !strings.Contains(err.Error(), old) || !strings.Contains(err.Error(), now) || !strings.Contains(err.Error(), "infra1") {
			t.Errorf("error lacks both fingerprints (%s, %s): %v", old, now, err)
		}
		e.hostsUntouched(t)
	})
}

// holdPort makes addr busy on h: it copies this test binary in (the host's
// /tmp is its own) and starts it as TestMain's port holder. release stops
// it and removes the copy.
func holdPort(t testing.TB, h *lab.Host, addr string) (release func()) {
	t.Helper()
	ctx := context.Background()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.Run(ctx, "cat > /opt/holdport && chmod 755 /opt/holdport", bin)
	bin.Close()
	if err != nil {
		t.Fatal(err)
	}
	h.MustExec(t, "EXECUTOR_TEST_LISTEN="+addr+" setsid -f /opt/holdport </dev/null >/dev/null 2>&1")
	waitFor(t, func() bool { _, err := h.Exec(ctx, "test -s /run/busy.pid"); return err == nil })
	return func() { h.MustExec(t, "kill $(cat /run/busy.pid); rm -f /run/busy.pid /opt/holdport") }
}

func waitFor(t testing.TB, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLabCutUploadResumesAndMemberFailureShowsLog(t *testing.T) {
	e := newLabEnv(t, 3)
	p := labPlan(t, 3, plan.TLSNone)
	ctx := context.Background()

	// The SSH connection to infra1 is cut while the binary is on its way.
	var once sync.Once
	cut := make(chan int, 1)
	// Cancelled (Ctrl-C) during the upload: apply stops and says so.
	cctx, cancelApply := context.WithCancel(ctx)
	e.events.on = func(ev Event) {
		if ev.Host == "infra0" && ev.Step == plan.StepBinary && ev.State == StateProgress {
			cancelApply()
		}
	}
	if _, err := Apply(cctx, p, e.options()); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled apply: %v", err)
	}
	cancelApply()
	e.events.on = func(ev Event) {
		if ev.Host == "infra1" && ev.Step == plan.StepBinary && ev.State == StateProgress && ev.Progress.Done*4 >= ev.Progress.Total {
			once.Do(func() {
				n, err := e.lab.Host("infra1").KillSessions()
				if err != nil {
					t.Error(err)
				}
				cut <- n
			})
		}
	}
	_, err := Apply(ctx, p, e.options())
	if err == nil || !strings.Contains(err.Error(), "infra1") || !errors.Is(err, remote.ErrConnLost) {
		t.Fatalf("apply with the connection cut: %v", err)
	}
	if n := <-cut; n == 0 {
		t.Fatal("no session was killed")
	}
	t.Log(err)
	if out := e.lab.Host("infra1").MustExec(t, "ls /usr/local/bin/"); strings.Contains(out, "etcd-node\n") {
		t.Errorf("a cut upload left the binary in place: %s", out)
	}
	e.events.on = nil
	nEvents := len(e.events.all())
	res, err := Apply(ctx, p, e.options())
	if err != nil {
		t.Fatalf("apply after the cut: %v", err)
	}
	resumed := false
	for _, ev := range e.events.all()[nEvents:] {
		resumed = resumed || (ev.Step == "journal" && strings.Contains(ev.Message, "resuming"))
	}
	if !resumed {
		t.Error("the second apply did not report resuming from the journal")
	}
	for _, h := range res.Hosts {
		if h.Member == "infra1" && !h.Started {
			t.Errorf("infra1 was not started by the second apply: %+v", h)
		}
	}
	// The first, cut, apply left a temporary copy on infra1: reset
	// removes it with the rest.
	e.lab.Host("infra1").MustExec(t, "echo partial > /usr/local/bin/.etcd-node.etcdctl-wizard-upload")
	if _, err := Reset(ctx, p, e.options()); err != nil {
		t.Fatalf("reset: %v", err)
	}
	e.hostsUntouched(t)
	if out := e.lab.Host("infra1").MustExec(t, "ls -A /usr/local/bin"); strings.Contains(out, "etcd") {
		t.Errorf("left after reset: %s", out)
	}

	// A member that cannot start: its log tail is in the error.
	bad := labPlan(t, 3, plan.TLSNone)
	bad.Spec.Members[2].Flags = map[string]string{"listen-metrics-urls": "http://10.0.9.9:2381"}
	_, err = Apply(ctx, bad, e.options())
	var mf *memberFailure
	if !errors.As(err, &mf) || mf.Member != "infra2" || !strings.Contains(err.Error(), "10.0.9.9:2381") {
		t.Fatalf("apply of a member that cannot start: %v", err)
	}
	t.Log(err)
}

func TestLabAutoTLSAndStatus(t *testing.T) {
	e := newLabEnv(t, 3)
	_, etcdctl := nodetest.Upstream(t)
	p := labPlan(t, 3, plan.TLSAuto)
	ctx := context.Background()
	o := e.options()
	o.Parallel = 1 // members wait for each other only after the bounded part
	if _, err := Apply(ctx, p, o); err != nil {
		t.Fatalf("apply: %v", err)
	}
	out := e.etcdctl(t, etcdctl, "--endpoints=https://10.0.1.10:2379,https://10.0.1.11:2379,https://10.0.1.12:2379", "--insecure-skip-tls-verify", "--insecure-transport=false", "endpoint", "health")
	if strings.Count(out, "is healthy") != 3 {
		t.Fatalf("etcdctl endpoint health:\n%s", out)
	}
	checkStatus(t, e, p)

	// The log, followed: lines arrive until the context ends.
	hosts, err := Open(ctx, p, e.options())
	if err != nil {
		t.Fatal(err)
	}
	fctx, stop := context.WithCancel(ctx)
	w := &lab.SyncBuffer{}
	done := make(chan error, 1)
	go func() { done <- follow.Tail(fctx, hosts.Hosts[0].Transport, hosts.Hosts[0].Plan.Layout, 2, true, w) }()
	waitFor(t, func() bool { return strings.Count(w.String(), "\n") >= 2 })
	// A line written now shows up too.
	e.lab.Host("infra0").MustExec(t, "echo following-works >> /var/log/etcd-node.log")
	waitFor(t, func() bool { return strings.Contains(w.String(), "following-works") })
	stop()
	if err := <-done; err != nil {
		t.Errorf("follow ended with %v", err)
	}
	hosts.Close()

	if _, err := Reset(ctx, p, e.options()); err != nil {
		t.Fatalf("reset: %v", err)
	}
	e.hostsUntouched(t)
}

func TestLabUpstreamEtcd(t *testing.T) {
	e := newLabEnv(t, 3)
	etcd, etcdctl := nodetest.Upstream(t)
	p := labPlan(t, 3, plan.TLSNone)
	p.Spec.Node.Binary = etcd
	ctx := context.Background()
	if _, err := Apply(ctx, p, e.options()); err != nil {
		t.Fatalf("apply: %v", err)
	}
	out := e.etcdctl(t, etcdctl, "--endpoints=http://10.0.1.10:2379,http://10.0.1.11:2379,http://10.0.1.12:2379", "endpoint", "status")
	if strings.Count(out, "3.7.3") != 3 {
		t.Fatalf("etcdctl endpoint status:\n%s", out)
	}
	if v := e.lab.Host("infra0").MustExec(t, "/usr/local/bin/etcd --version"); !strings.Contains(v, "etcd Version: 3.7.3") {
		t.Errorf("installed binary: %s", v)
	}
	checkStatus(t, e, p)

	// A host cut off: status still reports the others.
	infra2 := e.lab.Host("infra2")
	if err := infra2.SetLink(false); err != nil {
		t.Fatal(err)
	}
	hosts, err := Open(ctx, p, e.options())
	if err != nil {
		t.Fatal(err)
	}
	if len(hosts.Problems) != 1 || hosts.Problems[0].Host != "infra2" {
		t.Errorf("problems %v", hosts.Problems)
	}
	st := follow.Status(ctx, hosts.Endpoints(), nil)
	hosts.Close()
	if st.Healthy || !st.Members[0].Healthy || !st.Members[1].Healthy || st.Members[2].Healthy || st.Members[2].Err != "host unreachable" {
		t.Errorf("status with infra2 cut off: %+v", st)
	}
	if err := infra2.SetLink(true); err != nil {
		t.Fatal(err)
	}
	if _, err := Reset(ctx, p, e.options()); err != nil {
		t.Fatalf("reset: %v", err)
	}
	if out := e.lab.Host("infra0").MustExec(t, "ls -A /usr/local/bin /var/lib"); strings.Contains(out, "etcd") {
		t.Errorf("after reset: %s", out)
	}
}

// checkStatus asks the cluster's status the way `status` does.
func checkStatus(t *testing.T, e *labEnv, p *plan.Plan) {
	t.Helper()
	ctx := context.Background()
	hosts, err := Open(ctx, p, e.options())
	if err != nil {
		t.Fatal(err)
	}
	defer hosts.Close()
	cfg, err := ClientTLS(p, "")
	if err != nil {
		t.Fatal(err)
	}
	st := follow.Status(ctx, hosts.Endpoints(), cfg)
	if !st.Healthy || len(st.Members) != 3 || st.Leader == "" || st.Term == 0 || st.Index == 0 {
		t.Fatalf("status: %+v", st)
	}
	for _, m := range st.Members {
		if !m.Healthy || m.RaftTerm != st.Term {
			t.Errorf("member %+v", m)
		}
	}
}

// TestLabSudo provisions as a non-root login through sudo, after a
// preflight that stops at a host where the login cannot become root.
func TestLabSudo(t *testing.T) {
	e := newLabEnv(t, 3)
	ctx := context.Background()
	for _, h := range e.lab.Hosts {
		if err := h.AddUser(ctx, "ops", "", lab.SudoNoPasswd); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.lab.Host("infra2").AddUser(ctx, "plain", "", lab.NoSudo); err != nil {
		t.Fatal(err)
	}
	p := labPlan(t, 3, plan.TLSNone)
	for i := range p.Spec.Members {
		p.Spec.Members[i].SSH.User = "ops"
	}
	p.Spec.Members[2].SSH.User = "plain"
	_, err := Apply(ctx, p, e.options())
	var pe *PreflightError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "infra2: ") || !strings.Contains(err.Error(), "plain") || strings.Contains(err.Error(), "infra0: ") {
		t.Fatalf("apply with a login that cannot become root: %v", err)
	}
	t.Log(err)
	e.hostsUntouched(t)

	p.Spec.Members[2].SSH.User = "ops"
	if _, err := Apply(ctx, p, e.options()); err != nil {
		t.Fatalf("apply through sudo: %v", err)
	}
	for _, h := range e.lab.Hosts {
		if out := h.MustExec(t, "stat -c '%U %a' /usr/local/bin/etcd-node /etc/etcd/etcd-node.env"); out != "root 755\nroot 600\n" {
			t.Errorf("%s: owners and modes %q", h.Name, out)
		}
	}
	checkStatus(t, e, p)
	res, err := Apply(ctx, p, e.options())
	if err != nil {
		t.Fatal(err)
	}
	if changed, uploads, restarts := res.Changes(); changed+uploads+restarts != 0 {
		t.Errorf("re-apply through sudo changed %d/%d/%d", changed, uploads, restarts)
	}
}

// TestLabOtherCluster: hosts that run another cluster's members stop the
// preflight, and reset with the other plan leaves them alone.
func TestLabOtherCluster(t *testing.T) {
	e := newLabEnv(t, 3)
	ctx := context.Background()
	a := labPlan(t, 3, plan.TLSNone)
	if _, err := Apply(ctx, a, e.options()); err != nil {
		t.Fatal(err)
	}
	before := e.memberPIDs(t)
	b := labPlan(t, 3, plan.TLSNone)
	b.Metadata.Name = "etcd-cluster-2"
	_, err := Apply(ctx, b, e.options())
	var pe *PreflightError
	if !errors.As(err, &pe) || len(pe.Problems) != 3 ||
		!strings.Contains(err.Error(), "infra1: data dir /var/lib/etcd/infra1.etcd holds member data of another cluster (it belongs to member infra1 of cluster etcd-cluster-1") {
		t.Fatalf("apply over another cluster: %v", err)
	}
	res, err := Reset(ctx, b, e.options())
	if err != nil {
		t.Fatalf("reset of the other plan: %v", err)
	}
	for _, r := range res {
		if r.Stopped || len(r.Removed) != 0 || len(r.Kept) != 1 {
			t.Errorf("reset of the other plan touched %s: %+v", r.Member, r)
		}
	}
	if after := e.memberPIDs(t); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("members changed: %v -> %v", before, after)
	}
	checkStatus(t, e, a)
}

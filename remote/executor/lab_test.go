package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"etcdctl-wizard/node/nodetest"
	"etcdctl-wizard/plan"
	"etcdctl-wizard/remote"
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

func newLabEnv(t testing.TB, n int) *labEnv {
	t.Helper()
	l := lab.Start(t, n)
	known := filepath.Join(t.TempDir(), "known_hosts")
	b, err := os.ReadFile(l.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(known, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return &labEnv{lab: l, node: nodetest.BuildNode(t), stateDir: t.TempDir(), known: known, events: &eventLog{}}
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

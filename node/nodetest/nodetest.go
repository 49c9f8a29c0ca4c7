package nodetest

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"etcdctl-wizard/node/nodetest/proc"
)

const (
	// buildTimeout bounds a cold build of upstream etcd and etcdctl (about 2 minutes here).
	buildTimeout = 10 * time.Minute
	// opTimeout bounds one harness action: health, leader, etcdctl, stop.
	opTimeout = 30 * time.Second
	// logTail is how much of each member's log a failing test prints.
	logTail = 32 << 10
)

// The builds are per test process: memoise the outcome (including a failure, so that every test
// reports it without rebuilding).
var (
	upstreamOnce          sync.Once
	upstreamEtcd, ctlPath string
	upstreamErr           error

	nodeOnce sync.Once
	nodeBin  string
	nodeErr  error
)

// Upstream returns the paths of upstream etcd and etcdctl v3.7.3, building them once per
// machine (see proc.EnsureUpstream). A failed build fails the test.
func Upstream(t testing.TB) (etcd, etcdctl string) {
	t.Helper()
	upstreamOnce.Do(func() {
		root, err := proc.RepoRoot()
		if err != nil {
			upstreamErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		upstreamEtcd, ctlPath, upstreamErr = proc.EnsureUpstream(ctx, root)
	})
	if upstreamErr != nil {
		t.Fatalf("upstream etcd/etcdctl: %v", upstreamErr)
	}
	return upstreamEtcd, ctlPath
}

// BuildNode builds ./cmd/etcd-node once per test process and returns the binary's path.
func BuildNode(t testing.TB) string {
	t.Helper()
	nodeOnce.Do(func() {
		root, err := proc.RepoRoot()
		if err != nil {
			nodeErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		nodeBin, nodeErr = proc.BuildNode(ctx, root)
	})
	if nodeErr != nil {
		t.Fatalf("etcd-node: %v", nodeErr)
	}
	return nodeBin
}

// ClusterOptions describes a cluster for StartCluster.
type ClusterOptions struct {
	Binary      string        // member binary; required (BuildNode(t) or Upstream(t))
	Size        int           // default 3
	Token       string        // --initial-cluster-token; default "etcd-cluster-1"
	ExtraFlags  []string      // appended to every member's flags
	Env         []string      // KEY=VALUE for every member
	DataDirRoot string        // default t.TempDir()
	StartWait   time.Duration // default 30s
}

// Cluster is a running cluster owned by one test.
type Cluster struct {
	t testing.TB
	*proc.Cluster
}

// StartCluster starts a cluster with the guide's static flags on loopback and waits until every
// member is healthy. Members are killed when the test ends; their logs are printed if it failed.
func StartCluster(t testing.TB, opts ClusterOptions) *Cluster {
	t.Helper()
	if opts.Size == 0 {
		opts.Size = 3
	}
	if opts.DataDirRoot == "" {
		// Taken before the cleanup below is registered, so members die before it is removed.
		opts.DataDirRoot = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout+opts.StartWait)
	defer cancel()
	pc, err := proc.StartCluster(ctx, proc.ClusterConfig{
		Binary:      opts.Binary,
		Size:        opts.Size,
		Token:       opts.Token,
		ExtraFlags:  opts.ExtraFlags,
		Env:         opts.Env,
		DataDirRoot: opts.DataDirRoot,
		StartWait:   opts.StartWait,
	})
	c := &Cluster{t: t, Cluster: pc}
	if pc != nil {
		t.Cleanup(func() {
			if t.Failed() {
				for _, m := range pc.Members {
					logMember(t, m.Process)
				}
			}
			pc.Close()
		})
	}
	if err != nil {
		if pc != nil {
			for _, m := range pc.Members {
				logMember(t, m.Process)
			}
		}
		t.Fatalf("start cluster: %v", err)
	}
	c.waitAllStarted()
	return c
}

// waitAllStarted waits until every member's own view of the membership
// lists every member as started (named). Health says each member published
// itself, not that the others applied that yet; a member add sent to one
// that has not is refused with "not enough started members" by the strict
// reconfiguration check, in etcd as in etcd-node.
func (c *Cluster) waitAllStarted() {
	c.t.Helper()
	deadline := time.Now().Add(opTimeout)
	for _, m := range c.Members {
		cl, err := proc.NewClient([]string{m.ClientURL})
		if err != nil {
			c.t.Fatalf("client of %s: %v", m.Name, err)
		}
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			resp, err := cl.MemberList(ctx, clientv3.WithSerializable())
			cancel()
			started := 0
			if err == nil {
				for _, mm := range resp.Members {
					if mm.Name != "" {
						started++
					}
				}
			}
			if started == len(c.Members) {
				break
			}
			if time.Now().After(deadline) {
				cl.Close()
				c.t.Fatalf("%s does not see every member started: %d of %d (%v)", m.Name, started, len(c.Members), err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		cl.Close()
	}
}

func logMember(t testing.TB, p *proc.Process) {
	t.Helper()
	t.Logf("---- log of %s (pid %d, %s) ----\n%s", p.Config().Name, p.Pid(), p.Config().LogPath, p.LogTail(logTail))
}

// Member returns member i (0-based, named infra<i>).
func (c *Cluster) Member(i int) *Member {
	c.t.Helper()
	if i < 0 || i >= len(c.Members) {
		c.t.Fatalf("member %d: cluster has %d members", i, len(c.Members))
	}
	return &Member{t: c.t, m: c.Members[i]}
}

// Etcdctl runs upstream etcdctl with --endpoints set to all members' client URLs.
func (c *Cluster) Etcdctl(args ...string) (stdout, stderr string, err error) {
	c.t.Helper()
	return Etcdctl(c.t, c.Endpoints(), args...)
}

// Etcdctl runs upstream etcdctl with --endpoints (when any are given) followed by args.
func Etcdctl(t testing.TB, endpoints []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	_, ctl := Upstream(t)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	return proc.RunEtcdctl(ctx, ctl, endpoints, args...)
}

// Client returns a clientv3 client for all endpoints, closed when the test ends.
func (c *Cluster) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cl, err := proc.NewClient(c.Endpoints())
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// WaitLeader waits until all running, unpaused members agree on a leader and returns its index.
func (c *Cluster) WaitLeader() int {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	idx, err := c.Cluster.WaitLeader(ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	return idx
}

// WaitHealthy waits until every running member reports healthy.
func (c *Cluster) WaitHealthy() {
	c.t.Helper()
	for _, m := range c.Members {
		if m.Running() && !m.Paused() {
			(&Member{t: c.t, m: m}).WaitHealthy()
		}
	}
}

// Member controls one member process; every method fails the test on error.
type Member struct {
	t testing.TB
	m *proc.Member
}

func (m *Member) Name() string       { return m.m.Name }
func (m *Member) ClientURL() string  { return m.m.ClientURL }
func (m *Member) PeerURL() string    { return m.m.PeerURL }
func (m *Member) DataDir() string    { return m.m.DataDir }
func (m *Member) Pid() int           { return m.m.Pid() }
func (m *Member) Running() bool      { return m.m.Running() }
func (m *Member) Args() []string     { return m.m.Config().Args }
func (m *Member) Proc() *proc.Member { return m.m }

// Kill sends SIGKILL and waits for the process to exit.
func (m *Member) Kill() {
	m.t.Helper()
	if err := m.m.Kill(); err != nil {
		m.t.Fatal(err)
	}
}

// Stop sends SIGTERM and waits for a graceful exit.
func (m *Member) Stop() {
	m.t.Helper()
	if err := m.m.Stop(opTimeout); err != nil {
		m.t.Fatal(err)
	}
}

// Restart stops the member if it runs and starts it again with the same flags and data dir.
// It does not wait for health: a lone restarted member may have no quorum.
func (m *Member) Restart() {
	m.t.Helper()
	if err := m.m.Restart(opTimeout); err != nil {
		m.t.Fatal(err)
	}
}

// Pause freezes the member with SIGSTOP.
func (m *Member) Pause() {
	m.t.Helper()
	if err := m.m.Pause(); err != nil {
		m.t.Fatal(err)
	}
}

// Resume continues a paused member with SIGCONT.
func (m *Member) Resume() {
	m.t.Helper()
	if err := m.m.Resume(); err != nil {
		m.t.Fatal(err)
	}
}

// WaitHealthy waits until the member's /health reports true.
func (m *Member) WaitHealthy() {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := m.m.WaitHealthy(ctx); err != nil {
		m.t.Fatal(err)
	}
}

// WaitExit waits up to timeout for the process to exit on its own and returns its exit code
// (-1 when a signal ended it).
func (m *Member) WaitExit(timeout time.Duration) int {
	m.t.Helper()
	select {
	case <-m.m.Done():
	case <-time.After(timeout):
		m.t.Fatalf("%s still running after %v", m.m.Name, timeout)
	}
	code, _ := m.m.ExitCode()
	return code
}

// Logs returns all output of the member so far.
func (m *Member) Logs() string {
	m.t.Helper()
	s, err := m.m.Logs()
	if err != nil {
		m.t.Fatal(err)
	}
	return s
}

// ReservePorts reserves n loopback ports for the rest of the test.
func ReservePorts(t testing.TB, n int) []int {
	t.Helper()
	r, err := proc.ReservePorts(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Release)
	return r.Ports
}

// NewMemberSpec reserves a client and a peer port and a data dir for one extra member, e.g. one
// that joins a running cluster or one started with wrong flags.
func NewMemberSpec(t testing.TB, name string) proc.MemberSpec {
	t.Helper()
	ports := ReservePorts(t, 2)
	return proc.MemberSpec{
		Name:      name,
		ClientURL: "http://127.0.0.1:" + strconv.Itoa(ports[0]),
		PeerURL:   "http://127.0.0.1:" + strconv.Itoa(ports[1]),
		DataDir:   filepath.Join(t.TempDir(), name+".etcd"),
	}
}

// MemberOptions describes a single extra member process.
type MemberOptions struct {
	Spec   proc.MemberSpec // Name, URLs and DataDir; the URLs are used by WaitHealthy only
	Binary string
	Args   []string // the complete argument list (e.g. Spec.StaticFlags(...) plus extras)
	Env    []string
}

// StartMember starts one member process with arbitrary flags and does not wait for anything.
// It is killed when the test ends and its log is printed if the test failed.
func StartMember(t testing.TB, opts MemberOptions) *Member {
	t.Helper()
	name := opts.Spec.Name
	if name == "" {
		name = "member"
	}
	logDir := t.TempDir()
	p, err := proc.StartProcess(proc.ProcessConfig{
		Name:    name,
		Binary:  opts.Binary,
		Args:    opts.Args,
		Env:     opts.Env,
		LogPath: filepath.Join(logDir, name+".log"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			logMember(t, p)
		}
		p.Kill()
	})
	return &Member{t: t, m: &proc.Member{MemberSpec: opts.Spec, Process: p}}
}

// RunExpectExit runs bin with args (env added to the cleaned environment) and returns its exit
// code and combined output. The test fails if the process is still running after timeout.
func RunExpectExit(t testing.TB, bin string, args, env []string, timeout time.Duration) (exitCode int, output string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = proc.CleanEnv(env)
	cmd.Dir = t.TempDir()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s: still running after %v; output so far:\n%s", bin, strings.Join(args, " "), timeout, out.String())
	}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &exitErr):
		return exitErr.ExitCode(), out.String()
	default:
		t.Fatalf("%s: %v", bin, err)
		return 0, ""
	}
}

// SandboxBasePort reserves the six ports of a 3-member sandbox (member i
// on base+100*i for clients and base+100*i+1 for peers) for the rest of the
// test and returns the base.
func SandboxBasePort(t testing.TB) int {
	t.Helper()
	r, base, err := proc.ReserveOffsets([]int{0, 1, 100, 101, 200, 201})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Release)
	return base
}

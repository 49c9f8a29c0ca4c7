package proc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// DefaultToken is the clustering guide's --initial-cluster-token.
const DefaultToken = "etcd-cluster-1"

// MemberSpec is where one member listens and keeps its data.
type MemberSpec struct {
	Name      string
	ClientURL string // http://127.0.0.1:C, used for listen and advertise
	PeerURL   string // http://127.0.0.1:P, used for listen and advertise
	DataDir   string
}

// StaticFlags returns the guide's static bootstrap flags for this member.
func (s MemberSpec) StaticFlags(token, initialCluster, state string) []string {
	return []string{
		"--name", s.Name,
		"--data-dir", s.DataDir,
		"--initial-advertise-peer-urls", s.PeerURL,
		"--listen-peer-urls", s.PeerURL,
		"--listen-client-urls", s.ClientURL,
		"--advertise-client-urls", s.ClientURL,
		"--initial-cluster-token", token,
		"--initial-cluster", initialCluster,
		"--initial-cluster-state", state,
	}
}

// Member is a started member process and where it listens.
type Member struct {
	MemberSpec
	*Process
}

// ClusterConfig describes a cluster of members bootstrapped with static flags.
type ClusterConfig struct {
	Binary      string
	Size        int
	Token       string        // default DefaultToken
	NamePrefix  string        // default "infra" (members infra0, infra1, ...)
	ExtraFlags  []string      // appended to every member's flags
	Env         []string      // KEY=VALUE added to every member's environment
	DataDirRoot string        // required: member data dirs and logs go below it
	StartWait   time.Duration // how long to wait for all members to be healthy; default 30s
}

// Cluster is a set of member processes started together.
type Cluster struct {
	Config  ClusterConfig
	Members []*Member

	ports *Reservation
}

// StartCluster reserves ports, starts every member and waits until all report healthy.
// On error the returned cluster (when non-nil) still holds the members so that their logs can
// be read; the caller must Close it either way.
func StartCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	if cfg.Binary == "" {
		return nil, errors.New("start cluster: no member binary given")
	}
	if cfg.Size < 1 {
		return nil, fmt.Errorf("start cluster: size must be at least 1, got %d", cfg.Size)
	}
	if cfg.DataDirRoot == "" {
		return nil, errors.New("start cluster: no data dir root given")
	}
	if cfg.Token == "" {
		cfg.Token = DefaultToken
	}
	if cfg.NamePrefix == "" {
		cfg.NamePrefix = "infra"
	}
	if cfg.StartWait <= 0 {
		cfg.StartWait = 30 * time.Second
	}
	if err := os.MkdirAll(cfg.DataDirRoot, 0o700); err != nil {
		return nil, fmt.Errorf("start cluster: %w", err)
	}
	// A port can still be taken by a program outside this package between reservation and the
	// member's bind; only that failure is retried, on fresh ports and empty data dirs.
	for attempt := 1; ; attempt++ {
		c, err := startOnce(ctx, cfg)
		if err == nil || attempt == bindAttempts || !c.bindFailed() {
			return c, err
		}
		c.Close()
		for _, m := range c.Members {
			os.RemoveAll(m.DataDir)
			// Keep the failed attempt's log for a post-mortem instead of appending to it.
			os.Rename(m.Config().LogPath, fmt.Sprintf("%s.attempt%d", m.Config().LogPath, attempt))
		}
	}
}

// bindAttempts is how often StartCluster tries when a member cannot bind its port.
const bindAttempts = 3

func startOnce(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	ports, err := ReservePorts(2 * cfg.Size)
	if err != nil {
		return nil, fmt.Errorf("start cluster: %w", err)
	}
	c := &Cluster{Config: cfg, ports: ports}
	specs := make([]MemberSpec, cfg.Size)
	for i := range specs {
		name := cfg.NamePrefix + strconv.Itoa(i)
		specs[i] = MemberSpec{
			Name:      name,
			ClientURL: loopbackURL(ports.Ports[2*i]),
			PeerURL:   loopbackURL(ports.Ports[2*i+1]),
			DataDir:   filepath.Join(cfg.DataDirRoot, name+".etcd"),
		}
	}
	initial := InitialCluster(specs)
	for _, s := range specs {
		args := append(s.StaticFlags(cfg.Token, initial, "new"), cfg.ExtraFlags...)
		p, err := StartProcess(ProcessConfig{
			Name:    s.Name,
			Binary:  cfg.Binary,
			Args:    args,
			Env:     cfg.Env,
			LogPath: filepath.Join(cfg.DataDirRoot, s.Name+".log"),
		})
		if err != nil {
			return c, fmt.Errorf("start cluster: %w", err)
		}
		c.Members = append(c.Members, &Member{MemberSpec: s, Process: p})
	}
	waitCtx, cancel := context.WithTimeout(ctx, cfg.StartWait)
	defer cancel()
	if err := c.WaitHealthy(waitCtx); err != nil {
		return c, fmt.Errorf("start cluster: %w", err)
	}
	return c, nil
}

// bindFailed reports whether a member exited because its address was in use.
func (c *Cluster) bindFailed() bool {
	if c == nil {
		return false
	}
	for _, m := range c.Members {
		if !m.Running() && strings.Contains(m.LogTail(16<<10), "address already in use") {
			return true
		}
	}
	return false
}

func loopbackURL(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }

// InitialCluster renders the --initial-cluster value name=peerURL,... in the given order.
func InitialCluster(specs []MemberSpec) string {
	parts := make([]string, len(specs))
	for i, s := range specs {
		parts[i] = s.Name + "=" + s.PeerURL
	}
	return strings.Join(parts, ",")
}

// InitialCluster is the --initial-cluster value the members were started with.
func (c *Cluster) InitialCluster() string {
	specs := make([]MemberSpec, len(c.Members))
	for i, m := range c.Members {
		specs[i] = m.MemberSpec
	}
	return InitialCluster(specs)
}

// Endpoints lists every member's client URL.
func (c *Cluster) Endpoints() []string {
	eps := make([]string, len(c.Members))
	for i, m := range c.Members {
		eps[i] = m.ClientURL
	}
	return eps
}

// Close kills every member and releases the ports. Data dirs are left to the caller.
func (c *Cluster) Close() {
	if c == nil {
		return
	}
	var wg sync.WaitGroup
	for _, m := range c.Members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.Kill()
		}()
	}
	wg.Wait()
	c.ports.Release()
}

// WaitHealthy waits until every member answers /health with health true.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	errs := make([]error, len(c.Members))
	var wg sync.WaitGroup
	for i, m := range c.Members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = m.WaitHealthy(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// WaitHealthy polls GET <client URL>/health until it reports {"health":"true"}, the process
// exits, or ctx ends.
func (m *Member) WaitHealthy(ctx context.Context) error {
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	last := "no answer yet"
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, status := checkHealth(ctx, client, m.ClientURL)
		if ok {
			return nil
		}
		last = status
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not healthy at %s: %s: %w", m.Name, m.ClientURL, last, ctx.Err())
		case <-m.Done():
			return fmt.Errorf("%s exited before becoming healthy (%v); last health answer: %s", m.Name, m.ExitErr(), last)
		case <-tick.C:
		}
	}
}

func checkHealth(ctx context.Context, client *http.Client, clientURL string) (bool, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, clientURL+"/health", nil)
	if err != nil {
		return false, err.Error()
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return false, err.Error()
	}
	var h struct {
		Health string `json:"health"`
	}
	if err := json.Unmarshal(body, &h); err != nil {
		return false, fmt.Sprintf("HTTP %d, body %q", resp.StatusCode, body)
	}
	if resp.StatusCode == http.StatusOK && h.Health == "true" {
		return true, ""
	}
	return false, fmt.Sprintf("HTTP %d, body %s", resp.StatusCode, bytes.TrimSpace(body))
}

// NewClient returns a quiet clientv3 client for the given endpoints.
func NewClient(endpoints []string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
}

// WaitLeader polls every running member's Status until all of them name the same leader, and
// returns that leader's index in Members. Stopped or paused members are skipped.
func (c *Cluster) WaitLeader(ctx context.Context) (int, error) {
	clients := make([]*clientv3.Client, len(c.Members))
	defer func() {
		for _, cl := range clients {
			if cl != nil {
				cl.Close()
			}
		}
	}()
	for i, m := range c.Members {
		cl, err := NewClient([]string{m.ClientURL})
		if err != nil {
			return -1, fmt.Errorf("wait leader: %w", err)
		}
		clients[i] = cl
	}
	last := "no answer yet"
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		idx, status := c.agreedLeader(ctx, clients)
		if idx >= 0 {
			return idx, nil
		}
		last = status
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("wait leader: %s: %w", last, ctx.Err())
		case <-tick.C:
		}
	}
}

func (c *Cluster) agreedLeader(ctx context.Context, clients []*clientv3.Client) (int, string) {
	var leader uint64
	idByIndex := map[uint64]int{}
	asked := 0
	for i, m := range c.Members {
		if !m.Running() || m.Paused() {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := clients[i].Status(sctx, m.ClientURL)
		cancel()
		if err != nil {
			return -1, fmt.Sprintf("%s: %v", m.Name, err)
		}
		asked++
		idByIndex[st.Header.MemberId] = i
		switch {
		case st.Leader == 0:
			return -1, m.Name + " has no leader"
		case leader == 0:
			leader = st.Leader
		case leader != st.Leader:
			return -1, fmt.Sprintf("members disagree on the leader (%x and %x)", leader, st.Leader)
		}
	}
	if asked == 0 {
		return -1, "no member is running"
	}
	idx, ok := idByIndex[leader]
	if !ok {
		return -1, fmt.Sprintf("leader %x is not among the running members", leader)
	}
	return idx, ""
}

// RunEtcdctl runs etcdctl with --endpoints set to the given endpoints (if any) followed by args.
// err is non-nil when etcdctl exits non-zero or cannot run; stdout and stderr are returned
// either way.
func RunEtcdctl(ctx context.Context, etcdctl string, endpoints []string, args ...string) (stdout, stderr string, err error) {
	var full []string
	if len(endpoints) > 0 {
		full = append(full, "--endpoints="+strings.Join(endpoints, ","))
	}
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, etcdctl, full...)
	cmd.Env = CleanEnv(nil)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), errOut.String(), fmt.Errorf("etcdctl %s: %w", strings.Join(full, " "), err)
	}
	return out.String(), errOut.String(), nil
}

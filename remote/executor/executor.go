// Package executor applies a plan to its hosts (DESIGN.md §3): it connects
// to every host and gathers facts, runs the preflight on all of them, and
// only then changes anything, host by host in parallel: directories, the node
// binary, certificates, env file, service (a systemd unit, or a supervisor
// script where systemd does not run), the data dir marker, start; then waits
// for each member and the cluster to be healthy. Every step checks first
// whether it is already done, so re-applying a healthy, unchanged cluster
// uploads nothing and restarts nothing. Progress is a stream of Events, and a
// journal under the state dir lets an interrupted apply resume.
package executor

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"etcdctl-wizard/plan"
	"etcdctl-wizard/remote"
	"etcdctl-wizard/remote/facts"
)

// Step names of events besides the plan's step kinds.
const (
	StepConnect       = "connect"
	StepFacts         = "facts"
	StepPreflight     = "preflight"
	StepConfirm       = "confirm"
	StepMarker        = "marker"
	StepMemberHealth  = "member-health"
	StepClusterHealth = "cluster-health"
	StepStop          = "stop"
	StepRemove        = "remove"
)

// ConnectFunc opens the transport to a member's host.
type ConnectFunc func(ctx context.Context, h plan.HostPlan) (remote.Transport, error)

// Options configure Apply and Reset. The zero value of every field but
// Connect has a usable default.
type Options struct {
	// Connect opens a host's transport; required.
	Connect ConnectFunc
	// NodeBinary returns the local path of the bundled etcd-node for a
	// linux GOARCH; needed when the plan's node.binary is "bundled".
	NodeBinary func(arch string) (string, error)
	// BaseDir resolves relative "file:" sources (the plan's folder); "" is
	// the working directory.
	BaseDir string
	// StateDir holds the journal and the files of local members, under
	// <StateDir>/<cluster>/; required.
	StateDir string
	// Parallel bounds how many hosts are changed at once; 0 means 10.
	Parallel int
	// StepTimeout bounds one step on one host (an upload included); 0 means 5 min.
	StepTimeout time.Duration
	// HealthTimeout bounds the wait for members and the cluster to be
	// healthy; 0 means 90 s.
	HealthTimeout time.Duration
	// Confirm is asked once the preflight passed, before any change; nil
	// proceeds.
	Confirm func(Summary) (bool, error)
	// Events receives progress; calls are serialised.
	Events func(Event)
	// HealthTLS is the client TLS for https member URLs; nil derives one
	// from the plan (auto TLS: the members' own certificates are not
	// verifiable, so they are not verified).
	HealthTLS *tls.Config
	// DNSServer is the nameserver (host or host:port) the dns-srv preflight
	// asks from the first host; "" means the one in that host's
	// /etc/resolv.conf, which the members use too.
	DNSServer string
}

// Summary is what Confirm is shown.
type Summary struct {
	Cluster string
	Hosts   []HostSummary
}

// HostSummary describes a host before changes.
type HostSummary struct {
	Member, Target, Service, DataState string
	Facts                              *facts.Facts
	Warnings                           []string
}

// Result tells what Apply did.
type Result struct {
	Hosts []HostResult
}

// HostResult is one host's part.
type HostResult struct {
	Member    string
	Uploads   int      // files written (not skipped)
	Changed   []string // steps that changed something
	Started   bool     // the member was started (it was not running)
	Restarted bool     // the member was restarted to pick up changed files
	Facts     *facts.Facts
}

// Changes is the total number of changed steps and (re)starts.
func (r *Result) Changes() (changed, uploads, restarts int) {
	for _, h := range r.Hosts {
		changed += len(h.Changed)
		uploads += h.Uploads
		if h.Started || h.Restarted {
			restarts++
		}
	}
	return
}

// PreflightError is a preflight that failed: no host was changed.
type PreflightError struct {
	Problems []facts.Problem
}

func (e *PreflightError) Error() string {
	var b strings.Builder
	b.WriteString("preflight failed, no host was changed:")
	for _, p := range e.Problems {
		if p.Fatal {
			b.WriteString("\n  " + p.Error())
		}
	}
	return b.String()
}

// ErrDeclined is returned when Confirm said no.
var ErrDeclined = errors.New("apply cancelled: nothing was changed")

func (o *Options) parallel() int {
	if o.Parallel > 0 {
		return o.Parallel
	}
	return 10
}

func (o *Options) stepTimeout() time.Duration {
	if o.StepTimeout > 0 {
		return o.StepTimeout
	}
	return 5 * time.Minute
}

func (o *Options) healthTimeout() time.Duration {
	if o.HealthTimeout > 0 {
		return o.HealthTimeout
	}
	return 90 * time.Second
}

// LocalRoot is the folder of a local member's files.
func LocalRoot(stateDir, cluster, member string) string {
	return filepath.Join(stateDir, cluster, "members", member)
}

// host is one member's run state.
type host struct {
	hp    plan.HostPlan
	t     remote.Transport
	facts *facts.Facts
	res   HostResult
	// restartPending: files of the running member changed; restartPre are
	// the commands to run before its restart (systemctl daemon-reload).
	restartPending bool
	restartPre     []string
	// startChanged and startPre are for the start of a member that was not
	// running (or to check one that runs unchanged).
	startChanged bool
	startPre     []string
}

// session is what Apply and Reset share: the plan, the hosts, their
// transports and facts.
type session struct {
	p     *plan.Plan
	q     *plan.Plan // with defaults
	opts  Options
	ev    *emitter
	hosts []*host
	// clientTLS reaches https member URLs (see ClientTLS).
	clientTLS *tls.Config
	// adding is the member that member add is joining to the cluster: its
	// empty data dir is expected.
	adding string
}

func newSession(p *plan.Plan, opts Options) (*session, error) {
	if opts.Connect == nil {
		return nil, errors.New("executor: no Connect function")
	}
	if opts.StateDir == "" {
		return nil, errors.New("executor: no state dir")
	}
	var errs []string
	for _, f := range plan.Validate(p) {
		if f.Severity == plan.SeverityError {
			errs = append(errs, "  "+f.Message+" ("+f.Code+"; "+f.Hint+")")
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("the plan is not valid (run etcdctl-wizard plan validate):\n%s", strings.Join(errs, "\n"))
	}
	s := &session{p: p, q: p.WithDefaults(), opts: opts, ev: &emitter{fn: opts.Events}}
	var err error
	if s.clientTLS, err = ClientTLS(p, opts.BaseDir); err != nil {
		return nil, err
	}
	hps, err := plan.BuildFor(p, s.hostOptions(nil))
	if err != nil {
		return nil, err
	}
	for _, hp := range hps {
		s.hosts = append(s.hosts, &host{hp: hp, res: HostResult{Member: hp.Member}})
	}
	return s, nil
}

// hostOptions chooses each host's layout: local members live under the
// state dir; systemd where it runs (per facts), else the supervisor.
func (s *session) hostOptions(fs map[string]*facts.Facts) func(string) plan.HostOptions {
	transport := map[string]string{}
	for _, m := range s.q.Spec.Members {
		transport[m.Name] = m.Transport
	}
	return func(member string) plan.HostOptions {
		o := plan.HostOptions{Service: plan.ServiceSupervisor}
		if transport[member] == plan.TransportLocal {
			o.Root = LocalRoot(s.opts.StateDir, s.q.Metadata.Name, member)
			return o
		}
		if f := fs[member]; f != nil && f.Systemd {
			o.Service = plan.ServiceSystemd
		}
		return o
	}
}

func (s *session) close() {
	for _, h := range s.hosts {
		if h.t != nil {
			h.t.Close()
		}
	}
}

// connectAndGather connects to hosts and gathers their facts, in
// parallel. Failures become fatal problems naming the host.
func (s *session) connectAndGather(ctx context.Context, hosts []*host) []facts.Problem {
	var mu sync.Mutex
	var problems []facts.Problem
	var g errgroup.Group
	g.SetLimit(max(s.opts.parallel(), 1))
	for _, h := range hosts {
		g.Go(func() error {
			name := h.hp.Member
			s.ev.emit(Event{Host: name, Step: StepConnect, State: StateRunning, Message: targetString(h.hp.Target)})
			cctx, cancel := context.WithTimeout(ctx, s.opts.stepTimeout())
			defer cancel()
			t, err := s.opts.Connect(cctx, h.hp)
			if err != nil {
				s.ev.emit(Event{Host: name, Step: StepConnect, State: StateFailed, Err: err.Error()})
				mu.Lock()
				problems = append(problems, facts.Problem{Host: name, Fatal: true,
					Message: fmt.Sprintf("cannot connect to %s: %v", targetString(h.hp.Target), err)})
				mu.Unlock()
				return nil
			}
			h.t = t
			s.ev.emit(Event{Host: name, Step: StepConnect, State: StateDone, Message: t.String()})
			f, err := facts.Gather(cctx, t, name, h.hp.Layout)
			if err != nil {
				s.ev.emit(Event{Host: name, Step: StepFacts, State: StateFailed, Err: err.Error()})
				mu.Lock()
				problems = append(problems, facts.Problem{Host: name, Fatal: true, Message: err.Error()})
				mu.Unlock()
				return nil
			}
			h.facts, h.res.Facts = f, f
			s.ev.emit(Event{Host: name, Step: StepFacts, State: StateDone, Message: factsText(f)})
			return nil
		})
	}
	g.Wait()
	sortProblems(problems)
	return problems
}

func sortProblems(ps []facts.Problem) {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Host < ps[j].Host })
}

func targetString(t plan.Target) string {
	if t.Transport == plan.TransportLocal {
		return "this machine"
	}
	s := fmt.Sprintf("%s@%s:%d", t.User, t.Host, t.Port)
	if t.JumpHost != "" {
		s += " via " + t.JumpHost
	}
	return s
}

func factsText(f *facts.Facts) string {
	init := "no systemd"
	if f.Systemd {
		init = "systemd"
	}
	inst := "not installed"
	if f.Installed {
		inst = "installed"
		if f.InstalledVersion != "" {
			inst += " (" + f.InstalledVersion + ")"
		}
	}
	run := ""
	if f.Running {
		run = ", running"
	}
	return fmt.Sprintf("%s %s, %s, %s%s, clock %+v, %s free", f.OS, f.Machine, init, inst, run, f.ClockSkew, size(f.FreeDisk))
}

// source is a file's content on this machine, hashed once per run.
type source struct {
	path string
	f    *os.File
	size int64
	sum  string
}

type sources struct {
	mu   sync.Mutex
	byID map[string]*source
}

func (ss *sources) open(p string) (*source, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if s, ok := ss.byID[p]; ok {
		return s, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		if err == nil {
			err = fmt.Errorf("%s is not a regular file", p)
		}
		return nil, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		f.Close()
		return nil, err
	}
	s := &source{path: p, f: f, size: st.Size(), sum: hex.EncodeToString(h.Sum(nil))}
	ss.byID[p] = s
	return s, nil
}

func (ss *sources) close() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, s := range ss.byID {
		s.f.Close()
	}
}

// resolveSource finds the local path of a file's Source for a host.
func (s *session) resolveSource(src string, f *facts.Facts) (string, error) {
	switch {
	case strings.HasPrefix(src, "bundled:"):
		if f == nil || f.Arch == "" {
			return "", errors.New("the host's architecture has no bundled etcd-node")
		}
		if s.opts.NodeBinary == nil {
			return "", errors.New("no bundled etcd-node binary is available: run make node-assets or pass --node-binary")
		}
		return s.opts.NodeBinary(f.Arch)
	case strings.HasPrefix(src, "file:"):
		p := strings.TrimPrefix(src, "file:")
		if !filepath.IsAbs(p) && s.opts.BaseDir != "" {
			p = filepath.Join(s.opts.BaseDir, p)
		}
		return p, nil
	}
	return "", fmt.Errorf("unknown file source %q", src)
}

// healthClient is an HTTP client that reaches a member's URLs from its host.
func (s *session) healthClient(t remote.Transport) *http.Client {
	cfg := s.opts.HealthTLS
	if cfg == nil {
		cfg = s.clientTLS
	}
	return &http.Client{
		Timeout: 3 * time.Second,
		Transport: &http.Transport{
			DialContext:       t.Dial,
			TLSClientConfig:   cfg,
			DisableKeepAlives: true,
		},
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"etcdctl-wizard/certs"
	"etcdctl-wizard/plan"
	"etcdctl-wizard/remote"
	"etcdctl-wizard/remote/facts"
)

// Apply brings the plan's cluster up (see the package doc). A preflight
// failure is a *PreflightError and no host was changed.
func Apply(ctx context.Context, p *plan.Plan, opts Options) (*Result, error) {
	s, err := newSession(p, opts)
	if err != nil {
		return nil, err
	}
	defer s.close()
	start := time.Now()
	s.ev.emit(Event{Step: StepConnect, State: StateRunning, Message: fmt.Sprintf("%d hosts", len(s.hosts))})
	problems := s.connectAndGather(ctx, s.hosts)
	if len(problems) == 0 {
		problems = s.preflight(ctx, s.hosts)
	}
	srcs := &sources{byID: map[string]*source{}}
	defer srcs.close()
	if !hasFatal(problems) {
		problems = append(problems, s.checkSources(srcs, s.hosts)...)
	}
	for _, pr := range problems {
		st := StateWarning
		if pr.Fatal {
			st = StateFailed
		}
		s.ev.emit(Event{Host: pr.Host, Step: StepPreflight, State: st, Err: pr.Message})
	}
	if hasFatal(problems) {
		return nil, &PreflightError{Problems: problems}
	}
	s.ev.emit(Event{Step: StepPreflight, State: StateDone, Message: fmt.Sprintf("%d hosts ready", len(s.hosts))})
	if s.opts.Confirm != nil {
		ok, err := s.opts.Confirm(s.summary(problems))
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, ErrDeclined
		}
	}
	j, err := LoadJournal(JournalPath(s.opts.StateDir, s.q.Metadata.Name))
	if err != nil {
		return nil, err
	}
	clusterID := ""
	if len(s.hosts) > 0 {
		clusterID = s.hosts[0].hp.ClusterID
	}
	if j.ClusterID == clusterID && !j.Finished && !j.Started.IsZero() {
		var where []string
		for _, h := range s.hosts {
			if jh := j.Hosts[h.hp.Member]; jh != nil && !jh.Complete {
				where = append(where, h.hp.Member+" after "+orNone(jh.LastStep))
			}
		}
		s.ev.emit(Event{Step: "journal", State: StateInfo, Message: "resuming the apply interrupted at " + j.Updated.Format(time.RFC3339) + ": " + strings.Join(where, ", ")})
	}
	if j.ClusterID != clusterID {
		j.Hosts = map[string]*JournalHost{}
	}
	if err := j.update(func(j *Journal) {
		j.Cluster, j.ClusterID, j.Started, j.Finished = s.q.Metadata.Name, clusterID, time.Now().UTC(), false
		for _, h := range s.hosts {
			jh := j.host(h.hp.Member)
			jh.Complete, jh.Steps = false, map[string]time.Time{}
		}
	}); err != nil {
		return nil, err
	}

	// Changes: hosts in parallel, each through its steps up to the start.
	var g errgroup.Group
	g.SetLimit(s.opts.parallel())
	errs := make([]error, len(s.hosts))
	for i, h := range s.hosts {
		g.Go(func() error {
			errs[i] = s.applyHost(ctx, h, srcs, j)
			return nil
		})
	}
	g.Wait()
	if err := joinHostErrors(s.hosts, errs); err != nil {
		return s.result(), err
	}
	if d := newDiscoveryToken(s.q, s.hosts[0].t); d != nil && s.fresh() {
		stop := s.followRegistrations(ctx, d, 200*time.Millisecond)
		defer stop()
	}
	if err := s.startAll(ctx, j); err != nil {
		return s.result(), err
	}
	if err := s.rollingRestart(ctx, j); err != nil {
		return s.result(), err
	}
	// Health: every member, then the cluster.
	if err := s.waitHealthy(ctx); err != nil {
		return s.result(), err
	}
	_ = j.update(func(j *Journal) {
		j.Finished = true
		for _, h := range s.hosts {
			j.host(h.hp.Member).Complete = true
		}
	})
	changed, uploads, restarts := s.result().Changes()
	s.ev.emit(Event{Step: "apply", State: StateDone, Message: fmt.Sprintf("cluster %s healthy in %s: %d steps changed, %d files uploaded, %d members (re)started",
		s.q.Metadata.Name, time.Since(start).Round(time.Millisecond), changed, uploads, restarts)})
	return s.result(), nil
}

func orNone(s string) string {
	if s == "" {
		return "no step"
	}
	return s
}

func hasFatal(ps []facts.Problem) bool {
	for _, p := range ps {
		if p.Fatal {
			return true
		}
	}
	return false
}

func joinHostErrors(hosts []*host, errs []error) error {
	var msgs []string
	var first error
	for i, err := range errs {
		if err != nil {
			if first == nil {
				first = err
			}
			msgs = append(msgs, hosts[i].hp.Member+": "+err.Error())
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	if len(msgs) == 1 {
		return fmt.Errorf("%s: %w", hosts[indexOfErr(errs)].hp.Member, first)
	}
	return fmt.Errorf("%d hosts failed (apply again to resume):\n  %s: %w", len(msgs), strings.Join(msgs, "\n  "), errors.Join(errs...))
}

func indexOfErr(errs []error) int {
	for i, e := range errs {
		if e != nil {
			return i
		}
	}
	return 0
}

func (s *session) result() *Result {
	r := &Result{}
	for _, h := range s.hosts {
		r.Hosts = append(r.Hosts, h.res)
	}
	return r
}

func (s *session) summary(problems []facts.Problem) Summary {
	return s.summaryOf(s.hosts, problems)
}

func (s *session) summaryOf(hosts []*host, problems []facts.Problem) Summary {
	sum := Summary{Cluster: s.q.Metadata.Name}
	for _, h := range hosts {
		hs := HostSummary{Member: h.hp.Member, Target: targetString(h.hp.Target), Service: h.hp.Layout.Service, Facts: h.facts,
			DataState: h.facts.DataState(h.hp.ClusterID, h.hp.Member)}
		for _, p := range problems {
			if p.Host == h.hp.Member {
				hs.Warnings = append(hs.Warnings, p.Message)
			}
		}
		sum.Hosts = append(sum.Hosts, hs)
	}
	return sum
}

// rebuild makes the host plans again for the facts gathered so far (the
// service manager of each host) and the session's plan.
func (s *session) rebuild() error {
	fs := map[string]*facts.Facts{}
	for _, h := range s.hosts {
		fs[h.hp.Member] = h.facts
	}
	hps, err := plan.BuildFor(s.p, s.hostOptions(fs))
	if err != nil {
		return err
	}
	for i, h := range s.hosts {
		h.hp = hps[i]
	}
	return nil
}

// preflight rebuilds the host plans for the facts and judges the hosts
// (every host of the plan for apply; the new one for member add).
func (s *session) preflight(ctx context.Context, hosts []*host) []facts.Problem {
	if err := s.rebuild(); err != nil {
		return []facts.Problem{{Fatal: true, Message: err.Error()}}
	}
	joins := map[string]bool{}
	for _, m := range s.q.Spec.Members {
		joins[m.Name] = m.Join
	}
	var problems []facts.Problem
	for _, h := range hosts {
		problems = append(problems, facts.Preflight(h.facts, facts.Expect{
			Cluster: s.q.Metadata.Name, ClusterID: h.hp.ClusterID, MemberID: h.hp.MemberID,
			Layout: h.hp.Layout, Bundled: s.q.Spec.Node.Binary == plan.BinaryBundled,
			Joins: joins[h.hp.Member], Adding: s.adding == h.hp.Member,
		})...)
	}
	if _, pinned := s.q.PinnedClusterID(); pinned && s.adding == "" && s.fresh() {
		problems = append(problems, facts.Problem{Host: s.q.Metadata.Name, Fatal: true, Message: fmt.Sprintf(
			"spec.clusterID pins the running cluster %s, but no host holds its data: this plan describes a cluster that changed members at runtime, and bootstrapping it again would form another cluster ID. "+
				"To bootstrap a new cluster from it, remove spec.clusterID and the join and memberID fields of its members",
			s.q.Spec.ClusterID)})
	}
	problems = append(problems, checkCertificates(s.p, s.opts.BaseDir)...)
	if len(hosts) > 0 && !hasFatal(problems) && s.adding == "" {
		problems = append(problems, checkDiscovery(ctx, s.q, hosts[0].t, s.fresh())...)
		problems = append(problems, checkDNS(ctx, s.q, hosts[0].t, s.opts.DNSServer)...)
	}
	sortProblems(problems)
	return problems
}

// fresh reports whether the cluster is still to bootstrap: no host holds
// this plan's member data yet.
func (s *session) fresh() bool {
	for _, h := range s.hosts {
		if h.facts != nil && h.facts.DataState(h.hp.ClusterID, h.hp.Member) == facts.DataSame {
			return false
		}
	}
	return true
}

// checkSources makes sure every local file the steps of hosts upload exists.
func (s *session) checkSources(srcs *sources, hosts []*host) []facts.Problem {
	var problems []facts.Problem
	for _, h := range hosts {
		for _, st := range h.hp.Steps {
			for _, f := range st.Files {
				if f.Source == "" {
					continue
				}
				p, err := s.resolveSource(f.Source, h.facts)
				if err == nil && filepath.Base(p) == certs.CAKeyFile {
					err = errors.New("refusing to upload the CA's private key: it stays on this machine")
				}
				if err == nil {
					_, err = srcs.open(p)
				}
				if err != nil {
					problems = append(problems, facts.Problem{Host: h.hp.Member, Fatal: true,
						Message: fmt.Sprintf("%s for %s: %v", st.Kind, f.Path, err)})
				}
			}
		}
	}
	return problems
}

// memberFailure is a member that exited or never answered; it carries the
// tail of its log.
type memberFailure struct {
	Member, Why, LogTail string
}

func (e *memberFailure) Error() string {
	return fmt.Sprintf("member %s %s; the last lines of its log:\n%s", e.Member, e.Why, indent(e.LogTail))
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = "    " + lines[i]
	}
	return strings.Join(lines, "\n")
}

// logTail returns the last n lines of a member's log.
func logTail(ctx context.Context, h *host, n int) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := remote.Output(ctx, h.t, remote.Cmd{Root: true, Command: h.hp.Layout.LogTailCommand(n, false)})
	if err != nil && len(out) == 0 {
		return "(no log: " + err.Error() + ")"
	}
	return string(out)
}

// waitHealthy waits for every member to answer and then for the cluster to
// report health on every member.
func (s *session) waitHealthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.healthTimeout())
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(s.hosts))
	for i, h := range s.hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.waitMember(ctx, h)
		}()
	}
	wg.Wait()
	if err := joinHostErrors(s.hosts, errs); err != nil {
		return err
	}
	return s.waitCluster(ctx, s.hosts)
}

// waitCluster waits until every member of hosts reports health.
func (s *session) waitCluster(ctx context.Context, hosts []*host) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.healthTimeout())
	defer cancel()
	s.ev.emit(Event{Step: StepClusterHealth, State: StateRunning})
	for {
		var sick []string
		for _, h := range hosts {
			if ok, why := s.health(ctx, h); !ok {
				sick = append(sick, h.hp.Member+" ("+why+")")
			}
		}
		if len(sick) == 0 {
			s.ev.emit(Event{Step: StepClusterHealth, State: StateDone, Message: fmt.Sprintf("%d members healthy", len(hosts))})
			return nil
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			err = fmt.Errorf("the cluster did not become healthy within %s: %s", s.opts.healthTimeout(), strings.Join(sick, ", "))
			s.ev.emit(Event{Step: StepClusterHealth, State: StateFailed, Err: err.Error()})
			return err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// supervisorExit is what the supervisor logs when the member exits.
const supervisorExit = "etcdctl-wizard-supervisor: "

// waitMember waits until the member's client URL answers HTTP. A member
// that exits meanwhile fails at once with its log tail.
func (s *session) waitMember(ctx context.Context, h *host) error {
	name, lay := h.hp.Member, h.hp.Layout
	s.ev.emit(Event{Host: name, Step: StepMemberHealth, State: StateRunning})
	started := h.res.Started || h.res.Restarted
	var lastExitCheck time.Time
	for {
		if ok, _ := s.answers(ctx, h); ok {
			s.ev.emit(Event{Host: name, Step: StepMemberHealth, State: StateDone, Message: "serving on " + lay.ClientURLs[0]})
			return nil
		}
		// Looking for an exit costs a command on the host: twice a second.
		if started && time.Since(lastExitCheck) > 500*time.Millisecond {
			lastExitCheck = time.Now()
			if exited, err := s.exited(ctx, h); err == nil && exited {
				f := &memberFailure{Member: name, Why: "exited right after its start", LogTail: logTail(context.WithoutCancel(ctx), h, 30)}
				s.ev.emit(Event{Host: name, Step: StepMemberHealth, State: StateFailed, Err: f.Error()})
				return f
			}
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			f := &memberFailure{Member: name, Why: fmt.Sprintf("did not answer on %s within %s", lay.ClientURLs[0], s.opts.healthTimeout()),
				LogTail: logTail(context.WithoutCancel(ctx), h, 30)}
			s.ev.emit(Event{Host: name, Step: StepMemberHealth, State: StateFailed, Err: f.Error()})
			return f
		}
	}
}

// exited tells whether the member process exited since the start: the
// supervisor logged an exit after its last start line, or systemd reports
// the unit failed or restarting.
func (s *session) exited(ctx context.Context, h *host) (bool, error) {
	lay := h.hp.Layout
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if lay.Service == plan.ServiceSupervisor {
		out, err := remote.Output(cctx, h.t, remote.Cmd{Root: true, Command: "tail -n 200 " + remote.Quote(lay.LogFile) + " | grep -F " + remote.Quote(supervisorExit) + " | tail -n 1"})
		if err != nil {
			return false, err
		}
		return strings.Contains(string(out), " exited with status "), nil
	}
	out, _ := remote.Output(cctx, h.t, remote.Cmd{Root: true, Command: "systemctl show -p ActiveState,NRestarts --value " + plan.UnitName})
	f := strings.Fields(string(out))
	if len(f) == 2 {
		n, _ := strconv.Atoi(f[1])
		return f[0] == "failed" || n > 0, nil
	}
	return false, nil
}

// answers tells whether the member's client URL answers any HTTP.
func (s *session) answers(ctx context.Context, h *host) (bool, string) {
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := newRequest(cctx, h.hp.Layout.ClientURLs[0]+"/version")
	if err != nil {
		return false, err.Error()
	}
	resp, err := s.healthClient(h.t).Do(req)
	if err != nil {
		return false, err.Error()
	}
	resp.Body.Close()
	return true, ""
}

// health asks the member's /health.
func (s *session) health(ctx context.Context, h *host) (bool, string) {
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := newRequest(cctx, h.hp.Layout.ClientURLs[0]+"/health")
	if err != nil {
		return false, err.Error()
	}
	resp, err := s.healthClient(h.t).Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var v struct {
		Health any `json:"health"`
	}
	if json.Unmarshal(body, &v) == nil && fmt.Sprint(v.Health) == "true" {
		return true, ""
	}
	return false, strings.TrimSpace(string(bytes.TrimSpace(body)))
}

package executor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"etcdctl-wizard/node/config"
	"etcdctl-wizard/plan"
	"etcdctl-wizard/remote/follow"
)

// Step names of the membership events.
const (
	StepCluster       = "cluster"
	StepMemberAdd     = "member-add"
	StepMemberPromote = "member-promote"
	StepMoveLeader    = "move-leader"
	StepMemberRemove  = "member-remove"
	StepRollback      = "rollback"
	StepPlan          = "plan"
)

// MemberOptions configure AddMember and RemoveMember besides Options.
type MemberOptions struct {
	// SavePlan writes the plan that describes the cluster after the
	// change (spec.clusterID pinned); required. It is called once the
	// cluster has changed, also when a later step failed but the member
	// stays (a learner that could not be promoted).
	SavePlan func(*plan.Plan) error
	// PromoteTimeout bounds the wait for the learner to catch up with the
	// leader; 0 means Options.HealthTimeout's default (90 s).
	PromoteTimeout time.Duration
	// Force removes a voting member of a two-member cluster, or while
	// other members are unhealthy as long as the rest keep a quorum.
	Force bool
}

// clusterConn is a clientv3 connection to the running cluster through the
// SSH transport of one member's host, and what MemberList answered.
type clusterConn struct {
	s         *session
	cli       *clientv3.Client
	via       *host
	clusterID uint64
	members   []*pb.Member
}

func (c *clusterConn) close() {
	if c != nil && c.cli != nil {
		c.cli.Close()
	}
}

// ClusterUnreachableError is a cluster that no member of the plan answered
// for.
type ClusterUnreachableError struct {
	Cluster string
	Why     []string
}

func (e *ClusterUnreachableError) Error() string {
	return fmt.Sprintf("cannot reach cluster %s through any member of the plan:\n  %s\ncheck the hosts and the members (etcdctl-wizard status -f PLAN)",
		e.Cluster, strings.Join(e.Why, "\n  "))
}

func (s *session) endpoint(h *host) follow.Endpoint {
	return follow.Endpoint{Member: h.hp.Member, URL: h.hp.Layout.ClientURLs[0], Transport: h.t}
}

// dialCluster lists the cluster's members through the first plan member
// that answers, the member named avoid last.
func (s *session) dialCluster(ctx context.Context, avoid string) (*clusterConn, error) {
	order := slices.Clone(s.hosts)
	sort.SliceStable(order, func(i, j int) bool { return order[i].hp.Member != avoid && order[j].hp.Member == avoid })
	var why []string
	for _, h := range order {
		if h.t == nil || h.hp.Layout == nil {
			why = append(why, h.hp.Member+": host unreachable")
			continue
		}
		cli, err := follow.Client(s.endpoint(h), s.clientTLS)
		if err != nil {
			why = append(why, h.hp.Member+": "+err.Error())
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := cli.MemberList(lctx)
		cancel()
		if err != nil {
			cli.Close()
			why = append(why, h.hp.Member+": member list: "+err.Error())
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			continue
		}
		c := &clusterConn{s: s, cli: cli, via: h, clusterID: resp.Header.ClusterId, members: resp.Members}
		s.ev.emit(Event{Step: StepCluster, State: StateInfo, Message: fmt.Sprintf("cluster %s has %d members (asked %s)",
			config.IDString(c.clusterID), len(c.members), h.hp.Member)})
		return c, nil
	}
	return nil, &ClusterUnreachableError{Cluster: s.q.Metadata.Name, Why: why}
}

// peerURLs is a member's advertised peer URLs as the plan renders them.
func (s *session) peerURLs(member string) []string {
	for _, mc := range s.q.MemberConfigs() {
		if mc.Name == member {
			v, _ := mc.Lookup("initial-advertise-peer-urls")
			return strings.Split(v, ",")
		}
	}
	return nil
}

func sameURLs(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(a, b)
}

// MemberRow is one member of the running cluster, of the plan, or both.
type MemberRow struct {
	Name       string   `json:"name"`
	ID         string   `json:"id,omitempty"`
	PeerURLs   []string `json:"peerURLs,omitempty"`
	ClientURLs []string `json:"clientURLs,omitempty"`
	InPlan     bool     `json:"inPlan"`
	InCluster  bool     `json:"inCluster"`
	Learner    bool     `json:"learner,omitempty"`
	Leader     bool     `json:"leader,omitempty"`
	// Health is "healthy", "unhealthy: why", or "" when the wizard cannot
	// ask (the member is not in the plan).
	Health string `json:"health,omitempty"`
	// Note says what the difference means and what to do.
	Note string `json:"note,omitempty"`
}

// MemberView is the running cluster side by side with the plan.
type MemberView struct {
	Cluster   string `json:"cluster"`
	ClusterID string `json:"clusterID"`
	// PlanClusterID is the ID the plan holds for the cluster (spec.clusterID
	// or the computed one); Pinned tells which.
	PlanClusterID string      `json:"planClusterID"`
	Pinned        bool        `json:"pinned"`
	Via           string      `json:"via"`
	Members       []MemberRow `json:"members"`
	// InSync: every member is in both, with the same peer URLs, no learner.
	InSync bool `json:"inSync"`
}

// ListMembers compares the running cluster's members (clientv3 MemberList
// through the first plan member that answers) with the plan's. An
// unreachable cluster is a *ClusterUnreachableError.
func ListMembers(ctx context.Context, p *plan.Plan, opts Options) (*MemberView, error) {
	s, _, err := open(ctx, p, opts)
	if err != nil {
		return nil, err
	}
	defer s.close()
	c, err := s.dialCluster(ctx, "")
	if err != nil {
		return nil, err
	}
	defer c.close()
	v := &MemberView{Cluster: s.q.Metadata.Name, ClusterID: config.IDString(c.clusterID), Via: c.via.hp.Member}
	if id, ok := s.q.PinnedClusterID(); ok {
		v.PlanClusterID, v.Pinned = config.IDString(id), true
	} else if len(s.hosts) > 0 {
		v.PlanClusterID = s.hosts[0].hp.ClusterID
	}
	var eps []follow.Endpoint
	for _, h := range s.hosts {
		eps = append(eps, s.endpoint(h))
	}
	st := follow.Status(ctx, eps, s.clientTLS)
	health := map[string]follow.MemberStatus{}
	for _, m := range st.Members {
		health[m.Name] = m
	}
	inCluster := map[string]*pb.Member{}
	for _, m := range c.members {
		if m.Name != "" {
			inCluster[m.Name] = m
		}
	}
	matched := map[uint64]bool{}
	v.InSync = v.ClusterID == v.PlanClusterID
	for _, h := range s.hosts {
		name := h.hp.Member
		row := MemberRow{Name: name, InPlan: true, PeerURLs: s.peerURLs(name), ClientURLs: h.hp.Layout.ClientURLs}
		m := inCluster[name]
		if m == nil {
			// An added member that never started has no name yet.
			for _, x := range c.members {
				if x.Name == "" && sameURLs(x.PeerURLs, row.PeerURLs) {
					m = x
				}
			}
		}
		if ms, ok := health[name]; ok {
			row.Leader = ms.Leader
			row.Health = "healthy"
			if !ms.Healthy {
				row.Health = "unhealthy"
				if ms.Err != "" {
					row.Health += ": " + ms.Err
				}
			}
		}
		if m == nil {
			row.Note = "only in the plan: not added yet, or lost (removed outside the wizard); add it with member add after removing it from the plan, or remove it from the plan"
			v.InSync = false
		} else {
			matched[m.ID] = true
			row.InCluster, row.ID, row.Learner = true, config.IDString(m.ID), m.IsLearner
			if m.Name == "" {
				row.Note = "added but never started"
				v.InSync = false
			}
			if !sameURLs(m.PeerURLs, row.PeerURLs) {
				row.Note = "peer URLs differ: the cluster has " + strings.Join(m.PeerURLs, ",")
				v.InSync = false
			}
			if m.IsLearner {
				row.Note = strings.TrimPrefix(row.Note+"; learner: not voting until promoted", "; ")
				v.InSync = false
			}
		}
		v.Members = append(v.Members, row)
	}
	for _, m := range c.members {
		if matched[m.ID] {
			continue
		}
		v.InSync = false
		name := m.Name
		note := "only in the cluster: added outside the wizard; add it to spec.members (join: true, memberID) or remove it with etcdctl member remove " + config.IDString(m.ID)
		if name == "" {
			note = "only in the cluster, added but never started; remove it with etcdctl member remove " + config.IDString(m.ID)
		}
		v.Members = append(v.Members, MemberRow{Name: name, ID: config.IDString(m.ID), PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs,
			InCluster: true, Learner: m.IsLearner, Note: note})
	}
	return v, nil
}

// AddResult tells what AddMember did.
type AddResult struct {
	Member    string
	MemberID  string
	ClusterID string
	Promoted  bool
	Host      HostResult
	Plan      *plan.Plan // the plan written with SavePlan
}

// AddMember adds m to the running cluster that p describes, the way etcd
// recommends: preflight of the new host (as apply does), a healthy cluster
// whose members are the plan's, MemberAdd as a learner, provision and start
// of the new member with --initial-cluster-state existing, MemberPromote
// once it has caught up, then SavePlan with the member (join: true, its
// memberID) and spec.clusterID pinned. A failure before the member runs
// rolls back (MemberRemove, its host cleaned); the error says where the
// cluster stands.
func AddMember(ctx context.Context, p *plan.Plan, m plan.Member, opts Options, mo MemberOptions) (*AddResult, error) {
	if mo.SavePlan == nil {
		return nil, errors.New("executor: no SavePlan function")
	}
	grown, err := PlanWithMember(p, m)
	if err != nil {
		return nil, err
	}
	m = grown.Spec.Members[len(grown.Spec.Members)-1]

	// The running cluster, through the plan's hosts.
	old, _, err := open(ctx, p, opts)
	if err != nil {
		return nil, err
	}
	defer old.close()
	c, err := old.dialCluster(ctx, "")
	if err != nil {
		return nil, err
	}
	defer c.close()
	if err := old.checkCanAdd(ctx, c, m.Name, grown); err != nil {
		return nil, err
	}
	grown.Spec.ClusterID = config.IDString(c.clusterID)

	// The new host: connected and judged as apply judges a host.
	s, err := newSession(grown, opts)
	if err != nil {
		return nil, err
	}
	defer s.close()
	s.adopt(old)
	nh := s.host(m.Name)
	s.adding = m.Name
	problems := s.connectAndGather(ctx, []*host{nh})
	if !hasFatal(problems) {
		problems = append(problems, s.preflight(ctx, []*host{nh})...)
	}
	srcs := &sources{byID: map[string]*source{}}
	defer srcs.close()
	if !hasFatal(problems) {
		problems = append(problems, s.checkSources(srcs, []*host{nh})...)
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
	s.ev.emit(Event{Host: m.Name, Step: StepPreflight, State: StateDone, Message: "ready to join cluster " + grown.Spec.ClusterID})
	if s.opts.Confirm != nil {
		ok, err := s.opts.Confirm(s.summaryOf([]*host{nh}, problems))
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, errors.New("member add cancelled: nothing was changed")
		}
	}

	// MemberAdd as a learner.
	peers := s.peerURLs(m.Name)
	s.ev.emit(Event{Host: m.Name, Step: StepMemberAdd, State: StateRunning})
	actx, cancel := context.WithTimeout(ctx, 15*time.Second)
	resp, err := c.cli.MemberAddAsLearner(actx, peers)
	cancel()
	if err != nil {
		s.ev.emit(Event{Host: m.Name, Step: StepMemberAdd, State: StateFailed, Err: err.Error()})
		return nil, fmt.Errorf("member add %s %s: %w; the cluster was not changed (check with etcdctl-wizard member list)", m.Name, strings.Join(peers, ","), err)
	}
	id := resp.Member.ID
	res := &AddResult{Member: m.Name, MemberID: config.IDString(id), ClusterID: grown.Spec.ClusterID}
	s.ev.emit(Event{Host: m.Name, Step: StepMemberAdd, State: StateDone, Message: "learner " + res.MemberID + " added to cluster " + res.ClusterID})
	grown.Spec.Members[len(grown.Spec.Members)-1].MemberID = res.MemberID
	s.p, s.q = grown, grown.WithDefaults()
	if err := s.rebuild(); err != nil {
		return res, s.rollbackAdd(ctx, c, nh, id, err)
	}

	// Provision and start it, then let it catch up and promote it.
	j := &Journal{Hosts: map[string]*JournalHost{}} // not kept: the cluster itself records the add
	if err := s.applyHost(ctx, nh, srcs, j); err != nil {
		return res, s.rollbackAdd(ctx, c, nh, id, err)
	}
	if err := s.start(ctx, nh, nh.startChanged, nh.startPre); err != nil {
		return res, s.rollbackAdd(ctx, c, nh, id, err)
	}
	res.Host = nh.res
	hctx, hcancel := context.WithTimeout(ctx, s.opts.healthTimeout())
	err = s.waitMember(hctx, nh)
	hcancel()
	if err != nil {
		return res, s.rollbackAdd(ctx, c, nh, id, err)
	}
	if err := s.promote(ctx, c, nh, id, mo.PromoteTimeout); err != nil {
		return res, s.rollbackAdd(ctx, c, nh, id, err)
	}
	res.Promoted = true
	res.Plan = grown
	werr := s.waitCluster(ctx, s.hosts)
	if err := mo.SavePlan(grown); err != nil {
		return res, fmt.Errorf("member %s (ID %s) joined cluster %s, but the plan could not be written: %w; add it to spec.members by hand (join: true, memberID: %s) and set spec.clusterID: %s",
			m.Name, res.MemberID, res.ClusterID, err, res.MemberID, res.ClusterID)
	}
	s.ev.emit(Event{Step: StepPlan, State: StateDone, Message: fmt.Sprintf("plan written with %s (join: true, memberID %s) and spec.clusterID %s", m.Name, res.MemberID, res.ClusterID)})
	if werr != nil {
		return res, fmt.Errorf("member %s (ID %s) joined and was promoted, and the plan lists it, but the cluster is not healthy: %w; see etcdctl-wizard status -f PLAN", m.Name, res.MemberID, werr)
	}
	s.ev.emit(Event{Step: StepMemberAdd, State: StateDone, Message: fmt.Sprintf("%s is a voting member of cluster %s", m.Name, res.ClusterID)})
	return res, nil
}

// PlanWithMember is p with m appended as a joining member (join: true),
// judged without any connection: m's name must be new and the plan with it
// valid (a placeholder stands for spec.clusterID, which only the running
// cluster knows). AddMember starts with it; callers use it to refuse bad
// input before preparing anything, such as certificates.
func PlanWithMember(p *plan.Plan, m plan.Member) (*plan.Plan, error) {
	for i, x := range p.Spec.Members {
		if x.Name == m.Name {
			return nil, fmt.Errorf("member %s is already in the plan (spec.members[%d]): choose another name, or remove it first with member remove", m.Name, i)
		}
	}
	m.Join, m.MemberID = true, ""
	grown := p.Clone()
	grown.Spec.Members = append(grown.Spec.Members, m)
	probe := grown.Clone()
	if probe.Spec.ClusterID == "" {
		probe.Spec.ClusterID = "1"
	}
	var bad []string
	for _, f := range plan.Validate(probe) {
		if f.Severity == plan.SeverityError {
			bad = append(bad, "  "+f.Message+" ("+f.Code+"; "+f.Hint+")")
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("the plan with member %s is not valid; nothing was changed:\n%s", m.Name, strings.Join(bad, "\n"))
	}
	return grown, nil
}

// checkCanAdd refuses a member add that etcd would refuse, or that would
// start a member with an initial cluster that differs from the running
// one (etcd compares them when a member joins): the cluster must be the
// plan's, healthy, without learners or unstarted members, and have no
// member of the new name or peer URLs.
func (s *session) checkCanAdd(ctx context.Context, c *clusterConn, name string, grown *plan.Plan) error {
	cid := config.IDString(c.clusterID)
	if pinned, ok := s.q.PinnedClusterID(); ok && pinned != c.clusterID {
		return fmt.Errorf("the plan pins spec.clusterID %s but its hosts run cluster %s: this plan is not that cluster's; nothing was changed", config.IDString(pinned), cid)
	}
	gs := &session{q: grown.WithDefaults()}
	newPeers := gs.peerURLs(name)
	var problems []string
	inPlan := map[string]bool{}
	for _, h := range s.hosts {
		inPlan[h.hp.Member] = true
	}
	listed := map[string]bool{}
	for _, m := range c.members {
		id := config.IDString(m.ID)
		switch {
		case m.Name == name:
			problems = append(problems, fmt.Sprintf("the cluster already has a member named %s (ID %s)", name, id))
		case m.IsLearner:
			problems = append(problems, fmt.Sprintf("member %s (ID %s) is a learner still being added: promote it (etcdctl member promote %s) or remove it (etcdctl member remove %s) first", orUnnamed(m.Name), id, id, id))
		case m.Name == "":
			problems = append(problems, fmt.Sprintf("member %s with peer URLs %s was added but never started: remove it (etcdctl member remove %s) or start it first", id, strings.Join(m.PeerURLs, ","), id))
		case !inPlan[m.Name]:
			problems = append(problems, fmt.Sprintf("member %s (ID %s) is in the cluster but not in the plan: add it to spec.members (join: true, memberID: %s) first, or remove it from the cluster", m.Name, id, id))
		case !sameURLs(m.PeerURLs, s.peerURLs(m.Name)):
			problems = append(problems, fmt.Sprintf("member %s has peer URLs %s in the cluster but %s in the plan", m.Name, strings.Join(m.PeerURLs, ","), strings.Join(s.peerURLs(m.Name), ",")))
		}
		for _, u := range m.PeerURLs {
			if slices.Contains(newPeers, u) {
				problems = append(problems, fmt.Sprintf("peer URL %s is already member %s's (ID %s)", u, orUnnamed(m.Name), id))
			}
		}
		listed[m.Name] = true
	}
	for _, h := range s.hosts {
		if !listed[h.hp.Member] {
			problems = append(problems, fmt.Sprintf("plan member %s is not in the cluster: remove it from the plan (or from the cluster and the plan with member remove) first", h.hp.Member))
		}
	}
	if len(problems) == 0 {
		var eps []follow.Endpoint
		for _, h := range s.hosts {
			eps = append(eps, s.endpoint(h))
		}
		st := follow.Status(ctx, eps, s.clientTLS)
		for _, m := range st.Members {
			if !m.Healthy {
				problems = append(problems, fmt.Sprintf("member %s is not healthy (%s): a new member raises the quorum, so add members to a healthy cluster only", m.Name, orNone(m.Err)))
			}
		}
		if len(problems) == 0 && !st.Healthy {
			problems = append(problems, "the members do not agree on one leader: wait for the election and try again")
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("cannot add %s to cluster %s; nothing was changed:\n  %s", name, cid, strings.Join(problems, "\n  "))
	}
	return nil
}

func orUnnamed(name string) string {
	if name == "" {
		return "(unstarted)"
	}
	return name
}

// adopt takes over the connected hosts of another session of the same
// cluster, so that each host is connected once.
func (s *session) adopt(o *session) {
	for _, oh := range o.hosts {
		if h := s.host(oh.hp.Member); h != nil && oh.t != nil {
			h.t, h.facts, h.res.Facts = oh.t, oh.facts, oh.facts
			oh.t = nil
		}
	}
	_ = s.rebuild()
}

func (s *session) host(member string) *host {
	for _, h := range s.hosts {
		if h.hp.Member == member {
			return h
		}
	}
	return nil
}

// promote promotes the learner id, retrying while etcd answers that it is
// not in sync with the leader yet (and through elections), up to timeout.
func (s *session) promote(ctx context.Context, c *clusterConn, h *host, id uint64, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = s.opts.healthTimeout()
	}
	name := h.hp.Member
	s.ev.emit(Event{Host: name, Step: StepMemberPromote, State: StateRunning})
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	tries := 0
	for {
		tries++
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := c.cli.MemberPromote(pctx, id)
		pcancel()
		if err == nil {
			s.ev.emit(Event{Host: name, Step: StepMemberPromote, State: StateDone,
				Message: fmt.Sprintf("voting member after %s (%d tries)", time.Since(start).Round(time.Millisecond), tries)})
			return nil
		}
		if !retryablePromote(err) {
			s.ev.emit(Event{Host: name, Step: StepMemberPromote, State: StateFailed, Err: err.Error()})
			return fmt.Errorf("member promote %s: %w", config.IDString(id), err)
		}
		if serr := sleepCtx(ctx, 200*time.Millisecond); serr != nil {
			err = fmt.Errorf("member promote %s: the learner did not catch up with the leader within %s (last answer: %v)", config.IDString(id), timeout, err)
			s.ev.emit(Event{Host: name, Step: StepMemberPromote, State: StateFailed, Err: err.Error()})
			return err
		}
	}
}

// retryablePromote: the learner is still catching up, or the cluster is
// between leaders.
func retryablePromote(err error) bool {
	msg := err.Error()
	if strings.Contains(msg, "can only promote a learner member which is in sync with leader") ||
		strings.Contains(msg, "no leader") || strings.Contains(msg, "leader changed") || strings.Contains(msg, "not leader") {
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}

// rollbackAdd undoes a member add whose member never became a voter:
// MemberRemove of the learner, then its host is cleaned (the data of a
// removed member cannot rejoin). The error says what state the cluster is
// in and what to run next.
func (s *session) rollbackAdd(ctx context.Context, c *clusterConn, h *host, id uint64, cause error) error {
	ctx = context.WithoutCancel(ctx)
	name, sid := h.hp.Member, config.IDString(id)
	s.ev.emit(Event{Host: name, Step: StepRollback, State: StateRunning, Message: "removing learner " + sid})
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	_, rerr := c.cli.MemberRemove(rctx, id)
	cancel()
	var cleanErr error
	if h.t != nil && h.facts != nil {
		_, cleanErr = s.resetHost(ctx, h)
	}
	switch {
	case rerr != nil:
		s.ev.emit(Event{Host: name, Step: StepRollback, State: StateFailed, Err: rerr.Error()})
		return fmt.Errorf("member add of %s failed: %w\nrolling back failed too: the cluster still lists learner %s (%v). It does not vote, so the quorum is unchanged. Remove it with: etcdctl member remove %s; the plan was not changed",
			name, cause, sid, rerr, sid)
	case cleanErr != nil:
		s.ev.emit(Event{Host: name, Step: StepRollback, State: StateWarning, Err: cleanErr.Error()})
		return fmt.Errorf("member add of %s failed: %w\nrolled back: learner %s was removed from the cluster, which has its members as before; cleaning %s's host failed (%v): run member add again once the host is reachable (it re-checks the host); the plan was not changed",
			name, cause, sid, name, cleanErr)
	}
	s.ev.emit(Event{Host: name, Step: StepRollback, State: StateDone, Message: "learner " + sid + " removed, host cleaned"})
	return fmt.Errorf("member add of %s failed: %w\nrolled back: learner %s was removed from the cluster, which has its members as before, and %s's host was cleaned; the plan was not changed. Fix the cause and run member add again",
		name, cause, sid, name)
}

// RemoveResult tells what RemoveMember did.
type RemoveResult struct {
	Member    string
	MemberID  string // "" when the cluster did not list it
	ClusterID string
	// MovedLeader names the member that took over the leadership, when the
	// removed member led; LeaderElection is true when it led and could not
	// hand over (the members do not support MoveLeader).
	MovedLeader    string
	LeaderElection bool
	Host           *ResetResult // nil when its host was unreachable
	Plan           *plan.Plan
}

// RemoveMember removes the plan's member name from the running cluster:
// it refuses to remove the last voting member, a member of a two-member
// cluster, or one while other members are unhealthy (MemberOptions.Force
// allows the last two as long as a quorum stays); it hands the leadership
// to a healthy voting member first (MoveLeader) when name leads;
// MemberRemove; waits for the rest to be healthy; stops the member and
// removes its files from its host (as reset does); then SavePlan without
// it, spec.clusterID pinned.
func RemoveMember(ctx context.Context, p *plan.Plan, name string, opts Options, mo MemberOptions) (*RemoveResult, error) {
	if mo.SavePlan == nil {
		return nil, errors.New("executor: no SavePlan function")
	}
	idx := slices.IndexFunc(p.Spec.Members, func(m plan.Member) bool { return m.Name == name })
	if idx < 0 {
		var names []string
		for _, m := range p.Spec.Members {
			names = append(names, m.Name)
		}
		return nil, fmt.Errorf("no member %q in the plan (its members: %s); nothing was changed", name, strings.Join(names, ", "))
	}
	s, _, err := open(ctx, p, opts)
	if err != nil {
		return nil, err
	}
	defer s.close()
	c, err := s.dialCluster(ctx, name)
	if err != nil {
		return nil, err
	}
	defer c.close()
	cid := config.IDString(c.clusterID)
	if pinned, ok := s.q.PinnedClusterID(); ok && pinned != c.clusterID {
		return nil, fmt.Errorf("the plan pins spec.clusterID %s but its hosts run cluster %s: this plan is not that cluster's; nothing was changed", config.IDString(pinned), cid)
	}
	res := &RemoveResult{Member: name, ClusterID: cid}
	target := s.host(name)
	var tm *pb.Member
	for _, m := range c.members {
		if m.Name == name || (m.Name == "" && sameURLs(m.PeerURLs, s.peerURLs(name))) {
			tm = m
		}
	}
	if tm != nil {
		res.MemberID = config.IDString(tm.ID)
		if err := s.checkCanRemove(ctx, c, tm, mo.Force); err != nil {
			return nil, err
		}
		if s.opts.Confirm != nil {
			ok, err := s.opts.Confirm(s.summaryOf([]*host{target}, nil))
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, errors.New("member remove cancelled: nothing was changed")
			}
		}
		if err := s.handOver(ctx, c, tm, res); err != nil {
			return nil, err
		}
		s.ev.emit(Event{Host: name, Step: StepMemberRemove, State: StateRunning})
		via := c
		if c.via == target {
			// The member to remove answered for the cluster: ask another.
			if other, err := s.dialCluster(ctx, name); err == nil && other.via != target {
				defer other.close()
				via = other
			}
		}
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		_, err := via.cli.MemberRemove(rctx, tm.ID)
		cancel()
		if err != nil {
			s.ev.emit(Event{Host: name, Step: StepMemberRemove, State: StateFailed, Err: err.Error()})
			return nil, fmt.Errorf("member remove %s (ID %s): %w; check with etcdctl-wizard member list whether the cluster still lists it, and run member remove again", name, res.MemberID, err)
		}
		s.ev.emit(Event{Host: name, Step: StepMemberRemove, State: StateDone, Message: fmt.Sprintf("member %s removed from cluster %s", res.MemberID, cid)})
	} else {
		s.ev.emit(Event{Host: name, Step: StepMemberRemove, State: StateSkipped, Message: "the cluster does not list it: only its host and the plan are cleaned"})
	}

	// The rest must be healthy; then the member's host is cleaned.
	var rest []*host
	for _, h := range s.hosts {
		if h != target && h.t != nil {
			rest = append(rest, h)
		}
	}
	healthErr := s.waitCluster(ctx, rest)
	var cleanErr error
	if target.t != nil && target.facts != nil {
		r, err := s.resetHost(ctx, target)
		res.Host, cleanErr = &r, err
	} else {
		cleanErr = fmt.Errorf("host unreachable: its service and files (%s, the env file, the binary) are still there; the removed member cannot rejoin, so stop etcd-node and remove them when the host is back", target.hp.Layout.DataDir)
	}
	shrunk := p.Clone()
	shrunk.Spec.Members = slices.Delete(shrunk.Spec.Members, idx, idx+1)
	shrunk.Spec.ClusterID = cid
	if err := mo.SavePlan(shrunk); err != nil {
		return res, fmt.Errorf("member %s was removed from cluster %s, but the plan could not be written: %w; remove it from spec.members by hand and set spec.clusterID: %s", name, cid, err, cid)
	}
	res.Plan = shrunk
	s.ev.emit(Event{Step: StepPlan, State: StateDone, Message: fmt.Sprintf("plan written without %s, spec.clusterID %s", name, cid)})
	if healthErr != nil {
		return res, fmt.Errorf("member %s was removed and the plan no longer lists it, but the rest of the cluster is not healthy: %w; see etcdctl-wizard status -f PLAN", name, healthErr)
	}
	if cleanErr != nil {
		return res, fmt.Errorf("member %s was removed from cluster %s and from the plan; cleaning its host failed: %w", name, cid, cleanErr)
	}
	return res, nil
}

// checkCanRemove refuses removals that leave no cluster or that put the
// quorum at risk without need.
func (s *session) checkCanRemove(ctx context.Context, c *clusterConn, tm *pb.Member, force bool) error {
	if tm.IsLearner {
		return nil // a learner does not vote: the quorum is unchanged
	}
	name := orUnnamed(tm.Name)
	var voters []*pb.Member
	for _, m := range c.members {
		if !m.IsLearner {
			voters = append(voters, m)
		}
	}
	if len(voters) <= 1 {
		return fmt.Errorf("cannot remove %s: it is the last voting member of cluster %s, and removing it would end the cluster; to delete the whole cluster use etcdctl-wizard reset -f PLAN",
			name, config.IDString(c.clusterID))
	}
	health := s.voterHealth(ctx, voters)
	remaining, healthy := 0, 0
	var sick []string
	for _, m := range voters {
		if m.ID == tm.ID {
			continue
		}
		remaining++
		if why := health[m.ID]; why == "" {
			healthy++
		} else {
			sick = append(sick, orUnnamed(m.Name)+" ("+why+")")
		}
	}
	quorum := remaining/2 + 1
	switch {
	case healthy < quorum:
		return fmt.Errorf("cannot remove %s: of the %d voting members that would remain, only %d are healthy, below the quorum of %d: the cluster would stop serving. Unhealthy: %s. Bring them back first",
			name, remaining, healthy, quorum, strings.Join(sick, ", "))
	case len(voters) == 2 && !force:
		return fmt.Errorf("refusing to remove %s from a two-member cluster: the removal must be committed by both members, and the one left tolerates no failure; add a member first (member add), or pass --force to remove it anyway", name)
	case len(sick) > 0 && !force:
		return fmt.Errorf("refusing to remove %s while other members are unhealthy: %s. The cluster keeps a quorum (%d of %d healthy), but it would have less margin; bring them back first, or pass --force",
			name, strings.Join(sick, ", "), healthy, remaining)
	}
	return nil
}

// voterHealth asks every voting member the plan can reach for its health:
// "" when healthy, else why not.
func (s *session) voterHealth(ctx context.Context, voters []*pb.Member) map[uint64]string {
	var eps []follow.Endpoint
	ids := map[string]uint64{}
	out := map[uint64]string{}
	for _, m := range voters {
		h := s.host(m.Name)
		if h == nil || m.Name == "" {
			out[m.ID] = "not in the plan: the wizard cannot ask it"
			continue
		}
		eps = append(eps, s.endpoint(h))
		ids[m.Name] = m.ID
	}
	for _, ms := range follow.Status(ctx, eps, s.clientTLS).Members {
		switch {
		case !ms.Healthy && ms.Err != "":
			out[ids[ms.Name]] = ms.Err
		case !ms.Healthy:
			out[ids[ms.Name]] = "unhealthy"
		}
	}
	return out
}

// handOver moves the leadership away from tm when it leads: to a healthy
// voting member, with MoveLeader sent to the leader. Members without
// MoveLeader (etcd-node builds before it had one) lose their leader to an
// election instead.
func (s *session) handOver(ctx context.Context, c *clusterConn, tm *pb.Member, res *RemoveResult) error {
	target := s.host(tm.Name)
	if target == nil || target.t == nil || tm.IsLearner {
		return nil
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	st, err := c.cli.Status(lctx, c.via.hp.Layout.ClientURLs[0])
	cancel()
	if err != nil || st.Leader != tm.ID {
		return nil
	}
	var to *pb.Member
	health := s.voterHealth(ctx, c.members)
	for _, m := range c.members {
		if m.ID != tm.ID && !m.IsLearner && m.Name != "" && health[m.ID] == "" {
			to = m
			break
		}
	}
	if to == nil {
		return nil
	}
	s.ev.emit(Event{Host: tm.Name, Step: StepMoveLeader, State: StateRunning, Message: "to " + to.Name})
	cli, err := follow.Client(s.endpoint(target), s.clientTLS)
	if err != nil {
		return err
	}
	defer cli.Close()
	mctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	_, err = cli.MoveLeader(mctx, to.ID)
	cancel()
	switch {
	case err == nil:
		res.MovedLeader = to.Name
		s.ev.emit(Event{Host: tm.Name, Step: StepMoveLeader, State: StateDone, Message: "leadership moved to " + to.Name})
		return nil
	case status.Code(err) == codes.Unimplemented:
		res.LeaderElection = true
		s.ev.emit(Event{Host: tm.Name, Step: StepMoveLeader, State: StateWarning,
			Message: "the members do not support MoveLeader: removing the leader directly, which costs one election"})
		return nil
	}
	s.ev.emit(Event{Host: tm.Name, Step: StepMoveLeader, State: StateFailed, Err: err.Error()})
	return fmt.Errorf("moving the leadership from %s to %s: %w; nothing was changed, try again", tm.Name, to.Name, err)
}

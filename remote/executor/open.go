package executor

import (
	"context"

	"etcdctl-wizard/plan"
	"etcdctl-wizard/remote"
	"etcdctl-wizard/remote/facts"
)

// Host is a member's host as Open found it.
type Host struct {
	Plan      plan.HostPlan // with the layout apply uses on this host
	Transport remote.Transport
	Facts     *facts.Facts
}

// Hosts are the opened hosts of a plan; Close ends their connections.
type Hosts struct {
	Hosts []Host
	// Problems are the hosts that could not be reached or read; their Host
	// has a nil Transport.
	Problems []facts.Problem
	s        *session
}

// Close closes every transport.
func (h *Hosts) Close() { h.s.close() }

// Open connects to every host of the plan and gathers facts, without
// changing anything: what status and logs need. Unreachable hosts are
// listed in Problems; when no host is reachable, the error is a
// *PreflightError.
func Open(ctx context.Context, p *plan.Plan, opts Options) (*Hosts, error) {
	s, problems, err := open(ctx, p, opts)
	if err != nil {
		return nil, err
	}
	out := &Hosts{s: s, Problems: problems}
	for _, h := range s.hosts {
		out.Hosts = append(out.Hosts, Host{Plan: h.hp, Transport: h.t, Facts: h.facts})
	}
	return out, nil
}

// open is Open's session: every reachable host connected, with its facts
// and the layout apply uses there.
func open(ctx context.Context, p *plan.Plan, opts Options) (*session, []facts.Problem, error) {
	s, err := newSession(p, opts)
	if err != nil {
		return nil, nil, err
	}
	problems := s.connectAndGather(ctx, s.hosts)
	reachable := 0
	for _, h := range s.hosts {
		if h.facts != nil {
			reachable++
		} else if h.t != nil {
			h.t.Close()
			h.t = nil
		}
	}
	if reachable == 0 {
		s.close()
		return nil, nil, &PreflightError{Problems: problems}
	}
	if err := s.rebuild(); err != nil {
		s.close()
		return nil, nil, err
	}
	return s, problems, nil
}

package applier

import (
	"context"
	"time"

	"etcdctl-wizard/plan"
	"etcdctl-wizard/remote"
	"etcdctl-wizard/remote/executor"
	"etcdctl-wizard/tui"
)

// Members implements tui.MemberManager over executor.ListMembers, asked
// every MembersInterval through known host keys only (never a new one) and
// the secrets the operator gave before.
func (a *Applier) Members(ctx context.Context, p *plan.Plan, planDir string) <-chan tui.MemberList {
	ch := make(chan tui.MemberList)
	go func() {
		defer close(ch)
		opts := a.options(planDir, &remote.KnownHosts{Path: a.cfg.KnownHosts})
		for {
			v, err := executor.ListMembers(ctx, p, opts)
			if ctx.Err() != nil {
				return
			}
			select {
			case ch <- convertMembers(v, err):
			case <-ctx.Done():
				return
			}
			select {
			case <-time.After(a.cfg.MembersInterval):
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

func convertMembers(v *executor.MemberView, err error) tui.MemberList {
	if err != nil {
		return tui.MemberList{Time: time.Now(), Err: err}
	}
	out := tui.MemberList{Time: time.Now(), Cluster: v.Cluster, ClusterID: v.ClusterID, PlanClusterID: v.PlanClusterID,
		Pinned: v.Pinned, Via: v.Via, InSync: v.InSync}
	for _, r := range v.Members {
		out.Members = append(out.Members, tui.MemberEntry{Name: r.Name, ID: r.ID, PeerURLs: r.PeerURLs, ClientURLs: r.ClientURLs,
			InPlan: r.InPlan, InCluster: r.InCluster, Learner: r.Learner, Leader: r.Leader, Health: r.Health, Note: r.Note})
	}
	return out
}

// AddMember implements tui.MemberManager over executor.AddMember, with
// Apply's host-key pins, questions and events.
func (a *Applier) AddMember(ctx context.Context, p *plan.Plan, planDir string, m plan.Member, accepted []tui.HostKey, save func(*plan.Plan) error) <-chan tui.Event {
	return a.run(ctx, planDir, accepted, func(opts executor.Options) error {
		_, err := executor.AddMember(ctx, p, m, opts, executor.MemberOptions{SavePlan: save, PromoteTimeout: a.cfg.HealthTimeout})
		return err
	})
}

// RemoveMember implements tui.MemberManager over executor.RemoveMember
// (without Force: the command line's --force is for the cases the wizard
// shows as refused).
func (a *Applier) RemoveMember(ctx context.Context, p *plan.Plan, planDir, name string, save func(*plan.Plan) error) <-chan tui.Event {
	return a.run(ctx, planDir, nil, func(opts executor.Options) error {
		_, err := executor.RemoveMember(ctx, p, name, opts, executor.MemberOptions{SavePlan: save})
		return err
	})
}

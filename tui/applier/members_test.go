package applier

import (
	"context"
	"testing"
	"time"

	"etcdctl-wizard/node/nodetest/proc"
	"etcdctl-wizard/plan"
	"etcdctl-wizard/tui"
)

// applied brings up the local 3-member plan through the adapter.
func applied(t *testing.T, ctx context.Context, a *Applier, p *plan.Plan, dir string) {
	t.Helper()
	for ev := range a.Apply(ctx, p, dir, nil) {
		if ev.Final && ev.Err != nil {
			t.Fatalf("apply: %v", ev.Err)
		}
	}
}

// firstList waits for a list of the running cluster that satisfies ok.
func firstList(t *testing.T, ctx context.Context, a *Applier, p *plan.Plan, dir string, what string, ok func(tui.MemberList) bool) tui.MemberList {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var last tui.MemberList
	for l := range a.Members(ctx, p, dir) {
		if l.Err == nil && ok(l) {
			return l
		}
		last = l
	}
	t.Fatalf("no member list with %s; last %+v", what, last)
	return last
}

// drain follows a change to its final event.
func drain(t *testing.T, ch <-chan tui.Event) (final tui.Event, steps map[string]bool) {
	t.Helper()
	steps = map[string]bool{}
	for ev := range ch {
		if ev.Final {
			final = ev
		}
		if ev.Step != "" {
			steps[ev.Step] = true
		}
	}
	return final, steps
}

// The membership of a real local cluster through the adapter: listed
// beside the plan, a fourth local member added (learner, started,
// promoted, the plan saved with it), listed, and removed again.
func TestMembersAddRemoveLocal(t *testing.T) {
	p, a, dir := localPlan(t, "tui-members")
	a.cfg.MembersInterval = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	applied(t, ctx, a, p, dir)

	l := firstList(t, ctx, a, p, dir, "3 healthy members and a leader", func(l tui.MemberList) bool {
		leaders, healthy := 0, 0
		for _, e := range l.Members {
			if e.Leader {
				leaders++
			}
			if e.Health == "healthy" && e.InPlan && e.InCluster && e.ID != "" {
				healthy++
			}
		}
		return leaders == 1 && healthy == 3
	})
	if !l.InSync || l.Cluster != "tui-members" || l.ClusterID == "" || l.ClusterID != l.PlanClusterID || l.Via != "member0" {
		t.Fatalf("list %+v", l)
	}

	// A fourth local member on ports of its own.
	r, base, err := proc.ReserveOffsets([]int{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	m3 := plan.Member{Name: "member3", IP: "127.0.0.1", ClientPort: base, PeerPort: base + 1, Transport: plan.TransportLocal}
	var saved *plan.Plan
	save := func(q *plan.Plan) error { saved = q; return nil }
	final, steps := drain(t, a.AddMember(ctx, p, dir, m3, nil, save))
	if final.Err != nil || !final.Final {
		t.Fatalf("add: %+v", final)
	}
	for _, s := range []string{"member-add", "member-promote", "plan"} {
		if !steps[s] {
			t.Errorf("no %s event: %v", s, steps)
		}
	}
	if saved == nil || len(saved.Spec.Members) != 4 || !saved.Spec.Members[3].Join || saved.Spec.Members[3].MemberID == "" || saved.Spec.ClusterID != l.ClusterID {
		t.Fatalf("saved plan %+v", saved)
	}
	grown := saved
	l = firstList(t, ctx, a, grown, dir, "member3 a healthy voter", func(l tui.MemberList) bool {
		for _, e := range l.Members {
			if e.Name == "member3" && e.InCluster && e.InPlan && !e.Learner && e.Health == "healthy" {
				return true
			}
		}
		return false
	})
	if !l.InSync || !l.Pinned || len(l.Members) != 4 {
		t.Fatalf("list %+v", l)
	}

	// Removed again: the plan saved without it.
	saved = nil
	final, steps = drain(t, a.RemoveMember(ctx, grown, dir, "member3", save))
	if final.Err != nil || !steps["member-remove"] {
		t.Fatalf("remove: %+v %v", final, steps)
	}
	if saved == nil || len(saved.Spec.Members) != 3 {
		t.Fatalf("saved plan %+v", saved)
	}
}

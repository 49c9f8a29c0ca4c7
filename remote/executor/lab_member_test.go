package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"etcdctl-wizard/node/config"
	"etcdctl-wizard/node/nodetest"
	"etcdctl-wizard/plan"
	"etcdctl-wizard/remote/follow"
)

// labMembers is etcdctl member list -w json.
type labMembers struct {
	Header struct {
		ClusterID uint64 `json:"cluster_id"`
	} `json:"header"`
	Members []struct {
		ID        uint64   `json:"ID"`
		Name      string   `json:"name"`
		PeerURLs  []string `json:"peerURLs"`
		IsLearner bool     `json:"isLearner"`
	} `json:"members"`
}

func (e *labEnv) memberList(t *testing.T, etcdctl, endpoint string) labMembers {
	t.Helper()
	var ml labMembers
	out := e.etcdctl(t, etcdctl, "--endpoints="+endpoint, "member", "list", "-w", "json")
	if err := json.Unmarshal([]byte(out), &ml); err != nil {
		t.Fatalf("member list: %v\n%s", err, out)
	}
	return ml
}

// names lists the members as "name" or "name(learner)", sorted.
func (ml labMembers) names() string {
	var out []string
	for _, m := range ml.Members {
		n := m.Name
		if m.IsLearner {
			n += "(learner)"
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

// pidsOf is memberPIDs for some hosts.
func (e *labEnv) pidsOf(t *testing.T, names ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range names {
		out[n] = strings.TrimSpace(e.lab.Host(n).MustExec(t, `pid=$(cat /run/etcd-node.pid.child) && echo "$pid $(cut -d' ' -f22 /proc/$pid/stat)"`))
	}
	return out
}

// reapplyChangesNothing re-applies p and checks that no member restarted
// and that nothing but env files was written.
func (e *labEnv) reapplyChangesNothing(t *testing.T, p *plan.Plan, wantEnv int) {
	t.Helper()
	var names []string
	for _, m := range p.Spec.Members {
		names = append(names, m.Name)
	}
	before := e.pidsOf(t, names...)
	res, err := Apply(context.Background(), p, e.options())
	if err != nil {
		t.Fatalf("re-apply: %v", err)
	}
	envs := 0
	for _, h := range res.Hosts {
		if h.Started || h.Restarted || h.Uploads > 1 || (len(h.Changed) > 0 && !slices.Equal(h.Changed, []string{plan.StepEnvFile})) {
			t.Errorf("re-apply on %s: %+v", h.Member, h)
		}
		envs += h.Uploads
	}
	if envs != wantEnv {
		t.Errorf("re-apply wrote %d env files, want %d", envs, wantEnv)
	}
	if after := e.pidsOf(t, names...); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("members restarted: %v -> %v", before, after)
	}
	// And once more: now nothing at all.
	res, err = Apply(context.Background(), p, e.options())
	if err != nil {
		t.Fatalf("second re-apply: %v", err)
	}
	if c, u, r := res.Changes(); c+u+r != 0 {
		t.Errorf("second re-apply changed %d steps, %d uploads, %d restarts", c, u, r)
	}
}

// TestLabMemberAddRemove grows a 3-member static cluster to 4 by runtime
// reconfiguration and shrinks it again, through the plan, with the
// refusals on the way: a busy port on the new host, a name that exists, a
// two-member cluster.
func TestLabMemberAddRemove(t *testing.T) {
	e := newLabEnv(t, 4)
	_, etcdctl := nodetest.Upstream(t)
	ctx := context.Background()
	p := labPlan(t, 3, plan.TLSNone)
	if _, err := Apply(ctx, p, e.options()); err != nil {
		t.Fatalf("apply: %v", err)
	}
	e.etcdctl(t, etcdctl, "--endpoints=http://10.0.1.10:2379", "put", "before-add", "yes")
	planFile := filepath.Join(t.TempDir(), "plan.yaml")
	if err := plan.Save(planFile, p); err != nil {
		t.Fatal(err)
	}
	saves := 0
	mo := MemberOptions{SavePlan: func(q *plan.Plan) error { saves++; return plan.Save(planFile, q) }}
	infra3 := plan.Member{Name: "infra3", IP: "10.0.1.13"}

	t.Run("refusals", func(t *testing.T) {
		_, err := AddMember(ctx, p, plan.Member{Name: "infra1", IP: "10.0.1.13"}, e.options(), mo)
		if err == nil || !strings.Contains(err.Error(), "member infra1 is already in the plan") {
			t.Errorf("add of an existing name: %v", err)
		}
		_, err = AddMember(ctx, p, plan.Member{Name: "infra3", IP: "10.0.1.300"}, e.options(), mo)
		if err == nil || !strings.Contains(err.Error(), `infra3: ip "10.0.1.300" is not a unicast IP address`) {
			t.Errorf("add with a bad ip: %v", err)
		}
		// A busy peer port on the new host: the preflight stops the add
		// before the cluster is changed.
		h := e.lab.Host("infra3")
		release := holdPort(t, h, "10.0.1.13:2380")
		_, err = AddMember(ctx, p, infra3, e.options(), mo)
		release()
		var pe *PreflightError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), "infra3: port 2380 is already in use (listening: 10.0.1.13:2380)") {
			t.Fatalf("add with a busy port: %v", err)
		}
		if got := e.memberList(t, etcdctl, "http://10.0.1.10:2379").names(); got != "infra0,infra1,infra2" {
			t.Errorf("members after the refused add: %s", got)
		}
		e.hostsUntouched(t, h)

		// A member that exits at its start: the learner is removed again
		// and its host cleaned.
		broken := infra3
		broken.Flags = map[string]string{"listen-metrics-urls": "http://10.0.9.9:2381"}
		_, err = AddMember(ctx, p, broken, e.options(), mo)
		var mf *memberFailure
		if !errors.As(err, &mf) || !strings.Contains(err.Error(), "rolled back: learner ") || !strings.Contains(err.Error(), "10.0.9.9:2381") {
			t.Fatalf("add of a member that cannot start: %v", err)
		}
		t.Log(err)
		if got := e.memberList(t, etcdctl, "http://10.0.1.10:2379").names(); got != "infra0,infra1,infra2" {
			t.Errorf("members after the rolled back add: %s", got)
		}
		e.hostsUntouched(t, h)
		if saves != 0 {
			t.Errorf("a refused add wrote the plan %d times", saves)
		}
	})
	if t.Failed() {
		return
	}

	start := time.Now()
	res, err := AddMember(ctx, p, infra3, e.options(), mo)
	if err != nil {
		t.Fatalf("member add: %v", err)
	}
	t.Logf("member add infra3: %s", time.Since(start).Round(time.Millisecond))
	ml := e.memberList(t, etcdctl, "http://10.0.1.10:2379")
	if got := ml.names(); got != "infra0,infra1,infra2,infra3" {
		t.Fatalf("members after the add: %s", got)
	}
	cid := config.IDString(ml.Header.ClusterID)
	if res.ClusterID != cid || !res.Promoted {
		t.Errorf("result %+v, cluster %s", res, cid)
	}
	if got := e.etcdctl(t, etcdctl, "--endpoints=http://10.0.1.13:2379", "get", "before-add", "--print-value-only"); got != "yes\n" {
		t.Errorf("infra3 serves %q", got)
	}
	grown, err := plan.Load(planFile)
	if err != nil {
		t.Fatal(err)
	}
	if saves != 1 || len(grown.Spec.Members) != 4 || grown.Spec.ClusterID != cid {
		t.Fatalf("saved plan (%d saves): %+v", saves, grown.Spec)
	}
	if m := grown.Spec.Members[3]; m.Name != "infra3" || !m.Join || m.MemberID != res.MemberID {
		t.Errorf("saved member: %+v, added %s", m, res.MemberID)
	}
	if mk := e.lab.Host("infra3").MustExec(t, "cat /var/lib/etcd/infra3.etcd/"+plan.MarkerName); !strings.Contains(mk, `"clusterID":"`+cid+`"`) || !strings.Contains(mk, `"memberID":"`+res.MemberID+`"`) {
		t.Errorf("marker of infra3: %s", mk)
	}
	// Re-apply: the bootstrap flags of infra0..2 list infra3 now; their
	// env files change, nobody restarts.
	e.reapplyChangesNothing(t, grown, 3)
	if env := e.lab.Host("infra0").MustExec(t, "cat /etc/etcd/etcd-node.env"); !strings.Contains(env, "infra3=http://10.0.1.13:2380") {
		t.Errorf("infra0's env file after re-apply:\n%s", env)
	}

	// Remove the leader.
	hosts, err := Open(ctx, grown, e.options())
	if err != nil {
		t.Fatal(err)
	}
	st := follow.Status(ctx, hosts.Endpoints(), nil)
	hosts.Close()
	leader := st.Leader
	if !st.Healthy || leader == "" {
		t.Fatalf("status: %+v", st)
	}
	start = time.Now()
	rres, err := RemoveMember(ctx, grown, leader, e.options(), mo)
	if err != nil {
		t.Fatalf("member remove %s (the leader): %v", leader, err)
	}
	t.Logf("member remove %s (the leader): %s, moved leader to %q, election %v", leader, time.Since(start).Round(time.Millisecond), rres.MovedLeader, rres.LeaderElection)
	// etcd-node serves MoveLeader: the leadership is handed over first.
	if rres.MovedLeader == "" || rres.LeaderElection {
		t.Errorf("the leader was removed without handing the leadership over: %+v", rres)
	}
	var rest []string
	var eps []string
	for _, m := range grown.Spec.Members {
		if m.Name != leader {
			rest = append(rest, m.Name)
			eps = append(eps, "http://"+m.IP+":2379")
		}
	}
	if got := e.memberList(t, etcdctl, eps[0]).names(); got != strings.Join(rest, ",") {
		t.Errorf("members after removing %s: %s", leader, got)
	}
	if out := e.etcdctl(t, etcdctl, "--endpoints="+strings.Join(eps, ","), "endpoint", "health"); strings.Count(out, "is healthy") != 3 {
		t.Errorf("health after the remove:\n%s", out)
	}
	e.hostsUntouched(t, e.lab.Host(leader))
	shrunk, err := plan.Load(planFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(shrunk.Spec.Members) != 3 || slices.ContainsFunc(shrunk.Spec.Members, func(m plan.Member) bool { return m.Name == leader }) || shrunk.Spec.ClusterID != cid {
		t.Errorf("plan after the remove: %+v", shrunk.Spec)
	}
	e.reapplyChangesNothing(t, shrunk, 3)

	// Down to two, then the refusal.
	hosts, err = Open(ctx, shrunk, e.options())
	if err != nil {
		t.Fatal(err)
	}
	st = follow.Status(ctx, hosts.Endpoints(), nil)
	hosts.Close()
	var follower string
	for _, m := range st.Members {
		if !m.Leader {
			follower = m.Name
		}
	}
	if _, err := RemoveMember(ctx, shrunk, follower, e.options(), mo); err != nil {
		t.Fatalf("member remove %s: %v", follower, err)
	}
	two, err := plan.Load(planFile)
	if err != nil {
		t.Fatal(err)
	}
	n := saves
	_, err = RemoveMember(ctx, two, two.Spec.Members[0].Name, e.options(), mo)
	if err == nil || !strings.Contains(err.Error(), "two-member cluster") {
		t.Fatalf("remove from a two-member cluster: %v", err)
	}
	if got := e.memberList(t, etcdctl, "http://"+two.Spec.Members[0].IP+":2379").names(); strings.Count(got, ",") != 1 || saves != n {
		t.Errorf("after the refused remove: members %s, %d saves", got, saves-n)
	}

	// Once the cluster is gone, its pinned plan cannot bootstrap it again.
	if _, err := Reset(ctx, two, e.options()); err != nil {
		t.Fatalf("reset: %v", err)
	}
	_, err = Apply(ctx, two, e.options())
	var pe *PreflightError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "spec.clusterID pins the running cluster "+cid+", but no host holds its data") {
		t.Errorf("apply of the pinned plan on empty hosts: %v", err)
	}
	e.hostsUntouched(t)
}

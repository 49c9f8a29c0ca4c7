package tui

import (
	"errors"
	"strings"
	"testing"

	"etcdctl-wizard/plan"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
)

// follow runs cmd the way the program would, and the commands that the
// change events it yields return, until a message of another kind (the
// membership asked again after the change) has been handled.
func follow(m *Model, cmd tea.Cmd) {
	for cmd != nil {
		msg := cmd()
		_, cmd = m.Update(msg)
		if _, ok := msg.(memberEventMsg); !ok {
			return
		}
	}
}

// runningList is the guide's cluster as member list sees it: infra1 leads,
// infra3 is a learner the plan does not list, infra2 is only in the plan.
func runningList() MemberList {
	return MemberList{Cluster: "etcd-cluster-1", ClusterID: "cdf818194e3a8c32", PlanClusterID: "cdf818194e3a8c32", Via: "infra0",
		Members: []MemberEntry{
			{Name: "infra0", ID: "8e9e05c52164694d", PeerURLs: []string{"http://10.0.1.10:2380"}, ClientURLs: []string{"http://10.0.1.10:2379"},
				InPlan: true, InCluster: true, Health: "healthy"},
			{Name: "infra1", ID: "91bc3c398fb3c146", PeerURLs: []string{"http://10.0.1.11:2380"}, InPlan: true, InCluster: true, Leader: true, Health: "healthy"},
			{Name: "infra2", PeerURLs: []string{"http://10.0.1.12:2380"}, InPlan: true, Health: "unhealthy: connection refused",
				Note: "only in the plan: not added yet, or lost"},
			{Name: "infra3", ID: "fd422379fda50e48", PeerURLs: []string{"http://10.0.1.13:2380"}, InCluster: true, Learner: true,
				Note: "only in the cluster: added outside the wizard"},
		}}
}

// healthyList is threeHosts' cluster in sync with its plan.
func healthyList() MemberList {
	l := runningList()
	l.Members = l.Members[:2]
	l.Members = append(l.Members, MemberEntry{Name: "infra2", ID: "fd422379fda50e49", PeerURLs: []string{"http://10.0.1.12:2380"},
		InPlan: true, InCluster: true, Health: "healthy"})
	l.InSync = true
	return l
}

// atCluster opens threeHosts, saved as cluster.yaml, on the cluster screen
// from the start screen, with the first membership list shown.
func atCluster(t *testing.T, fa *fakeApplier) *Model {
	t.Helper()
	m := newModel(t, Options{Applier: fa})
	if err := plan.Save("cluster.yaml", threeHosts()); err != nil {
		t.Fatal(err)
	}
	mustContain(t, view(m), "Manage a running cluster", "add or remove members")
	press(m, "<down>", "<down>", "<enter>", "cluster.yaml")
	mustContain(t, view(m), "plan file: [cluster.yaml")
	_, cmd := m.Update(keys("<enter>")[0])
	if m.Screen() != "Cluster" || !m.manage {
		t.Fatalf("screen %s", m.Screen())
	}
	mustContain(t, view(m), "Asking the cluster of cluster.yaml for its members", "[Cluster]")
	run(m, cmd)
	return m
}

func TestStartManageEntry(t *testing.T) {
	// Without an applier that manages members there is no entry.
	m := newModel(t, Options{Applier: struct{ Applier }{&fakeApplier{}}})
	mustNotContain(t, view(m), "Manage a running cluster")
	// A file that is no plan stays on the start screen, with the error.
	fa := &fakeApplier{}
	m = newModel(t, Options{Applier: fa})
	press(m, "<down>", "<down>", "<enter>", "missing.yaml", "<enter>")
	if m.Screen() != "Start" {
		t.Fatalf("screen %s", m.Screen())
	}
	mustContain(t, view(m), "error: ", "missing.yaml")
	// esc leaves the path; q quits from the start screen again.
	press(m, "<esc>")
	if _, cmd := m.Update(keys("q")[0]); cmd == nil {
		t.Fatal("q does not quit the start screen")
	}
}

func TestClusterScreenShowsMembers(t *testing.T) {
	fa := &fakeApplier{members: fakeMembers{lists: []MemberList{runningList()}}}
	m := atCluster(t, fa)
	v := view(m)
	mustContain(t, v, "Cluster etcd-cluster-1, ID cdf818194e3a8c32 (as the plan computes), via infra0",
		"the plan and the cluster differ", "plan file cluster.yaml",
		"> infra0     8e9e05c52164694d voter   in both         healthy",
		"  infra1     91bc3c398fb3c146 leader  in both         healthy",
		"  infra2     -                -       only in plan    unhealthy: connection refused",
		"  infra3     fd422379fda50e48 learner only in cluster -",
		"infra0 peer http://10.0.1.10:2380, client http://10.0.1.10:2379",
		"a add member", "d remove member", "r refresh", "l member log", "q/esc back")
	// The selected member's note says what the difference means.
	press(m, "<down>", "<down>")
	mustContain(t, view(m), "only in the plan: not added yet, or lost")
	// A member that only the cluster knows cannot be removed here.
	press(m, "<down>", "d")
	mustContain(t, view(m), "infra3 is not in the plan: run etcdctl member remove fd422379fda50e48")
	// Its log cannot be read either; a plan member's can.
	press(m, "l")
	mustContain(t, view(m), "select a member of the plan")
	press(m, "<up>")
	_, cmd := m.Update(keys("l")[0])
	run(m, cmd)
	mustContain(t, view(m), "Member log of infra2", "infra2 serving client requests")
	// A later list replaces the first; a list of an older follow is dropped.
	gen := m.cluster.gen
	_, cmd = m.Update(keys("r")[0])
	m.Update(memberListMsg{healthyList(), true, gen})
	mustContain(t, view(m), "only in cluster")
	run(m, cmd)
	mustContain(t, view(m), "only in cluster") // the fake lists runningList again
	m.Update(memberListMsg{healthyList(), true, m.cluster.gen})
	mustContain(t, view(m), "the plan matches the cluster")
	mustNotContain(t, view(m), "only in cluster")
	// q goes back to the start screen, which q then quits.
	press(m, "q")
	if m.Screen() != "Start" || m.manage {
		t.Fatalf("screen %s", m.Screen())
	}
	m.cluster.stop()
}

func TestClusterUnreachable(t *testing.T) {
	unreachable := errors.New("cannot reach cluster etcd-cluster-1 through any member of the plan:\n  infra0: host unreachable\ncheck the hosts and the members (etcdctl-wizard status -f PLAN)")
	fa := &fakeApplier{members: fakeMembers{lists: []MemberList{{Err: unreachable}}}}
	m := atCluster(t, fa)
	defer m.cluster.stop()
	mustContain(t, view(m), "cannot reach cluster etcd-cluster-1", "infra0: host unreachable",
		"Next: check the hosts and the members; the wizard asks again every few seconds (r now)")
	press(m, "<down>", "l", "d")
	mustContain(t, view(m), "no member selected")
	if m.Screen() != "Cluster" || len(fa.members.removed) != 0 {
		t.Fatalf("screen %s removed %v", m.Screen(), fa.members.removed)
	}
	// The removal's quorum check does not guess without the members.
	if got := removalConsequences(m.cluster.list, "infra0"); !strings.Contains(got[0], "not known yet") {
		t.Fatalf("consequences %q", got)
	}
}

func TestClusterAddMember(t *testing.T) {
	grown := threeHosts()
	grown.Spec.ClusterID = "cdf818194e3a8c32"
	grown.Spec.Members = append(grown.Spec.Members, plan.Member{Name: "infra3", IP: "10.0.1.13", Join: true, MemberID: "fd422379fda50e48",
		SSH: plan.SSH{Port: 2222}})
	fa := &fakeApplier{
		keys: []HostKey{{Member: "infra3", Host: "[10.0.1.13]:2222", KeyType: "ssh-ed25519", Fingerprint: "SHA256:new3"}},
		members: fakeMembers{lists: []MemberList{healthyList()}, savePlan: grown, changeEvents: []Event{
			{Host: "infra3", Step: "preflight", State: StepDone, Progress: -1, Log: []string{"preflight: ready to join cluster cdf818194e3a8c32"}},
			{Host: "infra3", Step: "member-add", State: StepDone, Progress: -1},
			{Host: "infra3", Step: "upload binary", State: StepRunning, Progress: 0.5},
			{Host: "infra3", Step: "member-promote", State: StepDone, Progress: -1},
			{Step: "plan", State: StepDone, Progress: -1, Log: []string{"plan: plan written with infra3 (join: true, memberID fd422379fda50e48)"}},
			{Final: true},
		}}}
	m := atCluster(t, fa)
	defer m.cluster.stop()
	press(m, "a")
	mustContain(t, view(m), "New member", "name", "IP", "SSH host (optional)", "ctrl+s add the member")
	// q is typed into the form, not taken as back.
	press(m, "infra0q", "<backspace>", "<tab>", "10.0.1.300", "<tab>", "<tab>", "<tab>", "<tab>", "99999", "<ctrl+s>")
	v := view(m)
	mustContain(t, v, `name "infra0" is also used by spec.members[0].name`, `ip "10.0.1.300" is not a unicast IP address`,
		"ssh.port 99999 is out of range", "the new member is not valid: fix the fields marked ✗; nothing was changed")
	if m.Screen() != "Cluster" || len(fa.members.added) != 0 {
		t.Fatalf("screen %s added %v", m.Screen(), fa.members.added)
	}
	// A port that is no number is refused by the field itself.
	press(m, "e", "<ctrl+u>", "22x", "<ctrl+s>")
	mustContain(t, view(m), `SSH port "22x" is not a number`)
	// Corrected, the new host's key is asked before anything runs.
	press(m, "e", "<ctrl+u>", "2222", "<enter>", "<up>", "<up>", "<up>", "<up>", "e", "<ctrl+u>", "10.0.1.13", "<enter>",
		"<up>", "e", "<ctrl+u>", "infra3", "<enter>")
	_, cmd := m.Update(keys("<ctrl+s>")[0])
	if m.Screen() != "Host keys" {
		t.Fatalf("screen %s:\n%s", m.Screen(), view(m))
	}
	mustContain(t, view(m), "Connecting to the 1 host", "[Host keys]")
	run(m, cmd)
	mustContain(t, view(m), "infra3", "[10.0.1.13]:2222", "ssh-ed25519 SHA256:new3", "[ ] undecided")
	press(m, "<enter>")
	mustContain(t, view(m), "decide on infra3's key first")
	if len(fa.members.added) != 0 {
		t.Fatal("the add ran before the key was trusted")
	}
	press(m, "y")
	_, cmd = m.Update(keys("<enter>")[0])
	if m.Screen() != "Cluster" || !m.cluster.running() {
		t.Fatalf("screen %s running %v", m.Screen(), m.cluster.running())
	}
	mustContain(t, view(m), "Member add of infra3...")
	// Busy: the screen is not left, nor a second change started.
	press(m, "q")
	mustContain(t, view(m), "member add of infra3 is running: wait for it to finish")
	if _, quit := m.Update(keys("<ctrl+c>")[0]); quit != nil || m.Screen() != "Cluster" {
		t.Fatalf("ctrl+c left a running member add: screen %s", m.Screen())
	}
	// Three events: the rows show the new host's steps live.
	for i := 0; i < 3; i++ {
		msg := cmd()
		_, cmd = m.Update(msg)
	}
	mustContain(t, view(m), "infra3     upload binary", "########........  50%")
	follow(m, cmd)
	got := fa.members.added
	if len(got) != 1 || got[0].Name != "infra3" || got[0].IP != "10.0.1.13" || got[0].SSH.Port != 2222 || !got[0].Join {
		t.Fatalf("added %+v", got)
	}
	if acc := fa.members.accepted; len(acc) != 1 || acc[0].Fingerprint != "SHA256:new3" {
		t.Fatalf("accepted %+v", acc)
	}
	v = view(m)
	mustContain(t, v, "✓ member add of infra3 done", "member add of infra3 done; plan file rewritten: cluster.yaml",
		"plan: plan written with infra3", "member-promote")
	// The plan file is what save wrote, and the screen manages it now.
	saved, err := plan.Load("cluster.yaml")
	if err != nil || len(saved.Spec.Members) != 4 || saved.Spec.ClusterID != "cdf818194e3a8c32" {
		t.Fatalf("saved plan %v %+v", err, saved)
	}
	if len(m.p.Spec.Members) != 4 {
		t.Fatalf("the wizard's plan has %d members", len(m.p.Spec.Members))
	}
	// esc in the form cancels it.
	press(m, "a", "<esc>", "<esc>")
	mustNotContain(t, view(m), "New member")
}

func TestClusterRemoveMember(t *testing.T) {
	refusal := errors.New("refusing to remove infra1 while other members are unhealthy: infra2 (connection refused). The cluster keeps a quorum (1 of 2 healthy), but it would have less margin; bring them back first, or pass --force")
	fa := &fakeApplier{members: fakeMembers{lists: []MemberList{healthyList()}, changeEvents: []Event{
		{Step: "cluster", Progress: -1, Log: []string{"info: cluster: cluster cdf818194e3a8c32 has 3 members (asked infra0)"}},
		{Final: true, Err: refusal},
	}}}
	m := atCluster(t, fa)
	defer m.cluster.stop()
	press(m, "<down>", "d")
	v := view(m)
	mustContain(t, v, "Remove infra1 from the running cluster? Its data, binary and service on its host are deleted.",
		"voting members 3 → 2: quorum 2 → 2, failures tolerated 1 → 0", "it leads: the leadership moves to a healthy member first",
		"Type infra1 and press enter to remove it (esc cancels)")
	// A wrong name removes nothing; q and d are typed, not keys.
	press(m, "infra2qd", "<enter>")
	mustContain(t, view(m), "the name does not match infra1: nothing was removed")
	if len(fa.members.removed) != 0 {
		t.Fatalf("removed %v", fa.members.removed)
	}
	press(m, "<ctrl+u>", "infra1")
	_, cmd := m.Update(keys("<enter>")[0])
	follow(m, cmd)
	if got := fa.members.removed; len(got) != 1 || got[0] != "infra1" {
		t.Fatalf("removed %v", got)
	}
	// The refusal is shown whole, with what to do next; the plan stays.
	v = view(m)
	mustContain(t, v, `✗ member remove of infra1 failed at the run step ""`, "refusing to remove infra1 while other members are unhealthy",
		"or pass --force", "Next: the error above says where the cluster and the plan stand", "press d to remove again")
	if p, err := plan.Load("cluster.yaml"); err != nil || len(p.Spec.Members) != 3 {
		t.Fatalf("plan %v %+v", err, p)
	}
	// Esc leaves the confirmation without a change.
	press(m, "d", "<esc>")
	mustNotContain(t, view(m), "Type infra1")
}

// The consequences of a removal as RemoveMember judges them.
func TestRemovalConsequences(t *testing.T) {
	two := healthyList()
	two.Members = two.Members[:2]
	sick := healthyList()
	sick.Members[2].Health = "unhealthy: connection refused"
	one := healthyList()
	one.Members = one.Members[:1]
	learner := runningList()
	for _, c := range []struct {
		l    MemberList
		name string
		want string
	}{
		{two, "infra0", "refused in a two-member cluster"},
		{sick, "infra0", "refused while infra2 not healthy"},
		{one, "infra0", "it is the last voting member"},
		{learner, "infra3", "it is a learner: it does not vote"},
		{learner, "infra2", "the cluster does not list it"},
	} {
		got := strings.Join(removalConsequences(&c.l, c.name), "\n")
		if !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// The cluster screen with its form and a failed change fits 80x24.
func TestClusterSmallWindow(t *testing.T) {
	fa := &fakeApplier{members: fakeMembers{lists: []MemberList{runningList()}, changeEvents: []Event{
		{Host: "infra2", Step: "member-remove", State: StepFailed, Progress: -1, Err: errors.New(strings.Repeat("a long reason ", 20))},
		{Final: true, Err: errors.New(strings.Repeat("a long error ", 20))},
	}}}
	m := atCluster(t, fa)
	defer m.cluster.stop()
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	check := func(name string) {
		t.Helper()
		lines := strings.Split(m.View(), "\n")
		if len(lines) > 24 {
			t.Fatalf("%s: %d lines", name, len(lines))
		}
		for _, l := range lines {
			if ansi.StringWidth(l) > 80 {
				t.Fatalf("%s: %q is wider than 80", name, l)
			}
		}
	}
	check("members")
	press(m, "a")
	check("form")
	press(m, "<esc>", "<esc>", "<down>", "<down>", "d", "infra2")
	check("confirm")
	_, cmd := m.Update(keys("<enter>")[0])
	follow(m, cmd)
	check("failed")
	mustContain(t, view(m), "✗ member remove of infra2 failed at infra2 step \"member-remove\"")
}

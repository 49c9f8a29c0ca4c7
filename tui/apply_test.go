package tui

import (
	"context"
	"errors"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// run executes a command the way the program would, one level deep, and
// feeds its message back (batches are expanded; ticks are skipped).
func run(m *Model, cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	msg := cmd()
	if b, ok := msg.(tea.BatchMsg); ok {
		for _, c := range b {
			if c == nil {
				continue
			}
			if msg := c(); msg != nil {
				if _, isTick := msg.(tickMsg); !isTick {
					m.Update(msg)
				}
			}
		}
		return
	}
	m.Update(msg)
}

// atReview is a sandbox plan at the review screen with a fake applier.
func atReview(t *testing.T, fa *fakeApplier) *Model {
	t.Helper()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := newModel(t, Options{Sandbox: sandboxPlan, Applier: fa, Now: func() time.Time { return t0.Add(3 * time.Second) }})
	press(m, "<enter>")
	if m.Screen() != "Review" {
		t.Fatalf("screen %s", m.Screen())
	}
	return m
}

func TestHostKeysAcceptance(t *testing.T) {
	fa := &fakeApplier{keys: []HostKey{
		{Member: "infra0", Host: "10.0.1.10:22", KeyType: "ssh-ed25519", Fingerprint: "SHA256:aaaa"},
		{Member: "infra1", Host: "10.0.1.11:22", KeyType: "ssh-ed25519", Fingerprint: "SHA256:bbbb"},
	}}
	m := atReview(t, fa)
	_, cmd := m.Update(keys("a")[0])
	mustContain(t, view(m), "Connecting to the 3 hosts")
	run(m, cmd)
	mustContain(t, view(m), "SHA256:aaaa", "SHA256:bbbb", "[ ] undecided")
	press(m, "<enter>")
	mustContain(t, view(m), "decide on infra0's key first")
	press(m, "y", "n", "<enter>")
	mustContain(t, view(m), "[x] trusted", "[-] not trusted", "infra1's key is not trusted")
	press(m, "y")
	_, cmd = m.Update(keys("<enter>")[0])
	if m.Screen() != "Apply" {
		t.Fatalf("screen %s", m.Screen())
	}
	if got := fa.acceptedKeys(); len(got) != 2 || got[1].Fingerprint != "SHA256:bbbb" {
		t.Fatalf("accepted %+v", got)
	}
	m.apply.cancel()
	_ = cmd
}

func TestHostKeyChangedIsRefused(t *testing.T) {
	fa := &fakeApplier{keys: []HostKey{{Member: "infra0", Host: "10.0.1.10:22", KeyType: "ssh-ed25519",
		Fingerprint: "SHA256:new", Changed: true, OldFingerprint: "SHA256:old"}}}
	m := atReview(t, fa)
	_, cmd := m.Update(keys("a")[0])
	run(m, cmd)
	mustContain(t, view(m), "[refused] CHANGED", "known_hosts has SHA256:old")
	press(m, "y")
	mustContain(t, view(m), "cannot be accepted here")
	press(m, "<enter>")
	if m.Screen() != "Host keys" || fa.applied != 0 {
		t.Fatalf("screen %s applied %d", m.Screen(), fa.applied)
	}
}

// Leaving the host-key screen while it scans, then coming back: the first
// scan's late answer is dropped.
func TestHostKeysLateAnswer(t *testing.T) {
	fa := &fakeApplier{keys: []HostKey{{Member: "old", Host: "h", Fingerprint: "SHA256:old"}}}
	m := atReview(t, fa)
	_, first := m.Update(keys("a")[0])
	press(m, "<esc>")
	fa.keys = []HostKey{{Member: "new", Host: "h", Fingerprint: "SHA256:new"}}
	_, second := m.Update(keys("a")[0])
	m.Update(first())
	mustContain(t, view(m), "Connecting to the 3 hosts")
	m.Update(second())
	mustContain(t, view(m), "SHA256:new")
	mustNotContain(t, view(m), "SHA256:old")
}

func TestHostKeysError(t *testing.T) {
	fa := &fakeApplier{keysErr: errors.New("dial tcp 10.0.1.10:22: connection refused")}
	m := atReview(t, fa)
	_, cmd := m.Update(keys("a")[0])
	run(m, cmd)
	mustContain(t, view(m), "connection refused", "press r to retry")
	fa.keysErr = nil
	_, cmd = m.Update(keys("r")[0])
	run(m, cmd) // no keys to decide: straight on to the apply
	if m.Screen() != "Apply" {
		t.Fatalf("screen %s", m.Screen())
	}
	m.apply.cancel()
}

func TestApplyRowsProgressAndFailure(t *testing.T) {
	m := atReview(t, &fakeApplier{})
	press(m, "a")
	m.cur = scrApply
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m.apply.init(m)
	defer m.apply.cancel()
	evs := []Event{
		{Time: t0, Host: "member0", Step: "upload binary", State: StepRunning, Progress: 0.5},
		{Time: t0, Host: "member1", Step: "env file", State: StepDone, Progress: -1},
	}
	for _, ev := range evs {
		m.Update(applyEventMsg{ev, true, m.apply.run})
	}
	v := view(m)
	mustContain(t, v, "member0    upload binary", "########........  50%", "3s", "member1    env file                 done")
	// A note on the run as a whole (what the applier makes of an executor
	// info event such as a discovery token's registrations) is shown.
	m.Update(applyEventMsg{Event{Time: t0, Log: []string{"info: discovery: 1 of 3 members registered: member1"}, Progress: -1}, true, m.apply.run})
	mustContain(t, view(m), "info: discovery: 1 of 3 members registered: member1")
	m.Update(statusMsg{ClusterStatus{Leader: "", Members: []MemberStatus{{Name: "member1", Endpoint: "http://127.0.0.1:22479", Err: "connection refused"}}}, true, m.apply.run})
	mustContain(t, view(m), "leader none", "unhealthy connection refused")
	// Cancel asks first.
	press(m, "<esc>")
	mustContain(t, view(m), "Cancel the apply?")
	press(m, "n")
	mustNotContain(t, view(m), "Cancel the apply?")
	// A failure names the host and step, shows its log and what to do.
	fail := errors.New("member2: etcd-node exited: listen tcp 127.0.0.1:22580: bind: address already in use")
	m.Update(applyEventMsg{Event{Time: t0.Add(time.Second), Host: "member2", Step: "start", State: StepFailed, Err: fail,
		Log: []string{`{"level":"fatal","msg":"listen failed"}`}}, true, m.apply.run})
	m.Update(applyEventMsg{Event{Time: t0.Add(2 * time.Second), Final: true, Err: fail}, true, m.apply.run})
	v = view(m)
	mustContain(t, v, `✗ apply failed on member2 at step "start"`, "address already in use", "Log of member2:",
		`"msg":"listen failed"`, "press r to apply again")
	if m.Screen() != "Apply" || m.apply.running() {
		t.Fatalf("screen %s running %v", m.Screen(), m.apply.running())
	}
	// l fetches the member's own log.
	mustContain(t, view(m), "l member log")
	_, cmd := m.Update(keys("l")[0])
	run(m, cmd)
	mustContain(t, view(m), "Member log of member2", "member2 serving client requests")
	// q quits again once the apply ended.
	// Apply again: the first run's late messages do not touch the second.
	run := m.apply.run
	press(m, "r")
	if m.apply.run != run+1 || !m.apply.running() {
		t.Fatalf("apply again: run %d running %v", m.apply.run, m.apply.running())
	}
	m.Update(applyEventMsg{Event{}, false, run})
	m.Update(statusMsg{healthyStatus(), true, run})
	if !m.apply.running() || m.apply.status != nil {
		t.Fatalf("a stale message changed the new run: running %v status %v", m.apply.running(), m.apply.status)
	}
	m.apply.cancel()
	m.Update(applyEventMsg{Event{Final: true, Err: context.Canceled}, true, m.apply.run})
	_, cmd = m.Update(keys("q")[0])
	if cmd == nil {
		t.Fatal("q did not quit after the failure")
	}
}

func TestDoneEnvironment(t *testing.T) {
	for _, c := range []struct {
		tls   string
		wants []string
	}{
		{"none", []string{"export ETCDCTL_ENDPOINTS=http://10.0.1.10:2379,http://10.0.1.11:2379,http://10.0.1.12:2379"}},
		{"self-signed", []string{"export ETCDCTL_ENDPOINTS=https://10.0.1.10:2379", "ETCDCTL_CACERT=", "pki/ca.crt", "ETCDCTL_CERT=", "pki/infra0-client.crt", "pki/infra0-client.key"}},
		{"auto", []string{"ETCDCTL_INSECURE_SKIP_TLS_VERIFY=true"}},
	} {
		p := threeHosts()
		p.Spec.TLS.Mode = c.tls
		if c.tls == "self-signed" {
			p.Spec.TLS.Dir = "pki"
		}
		m := withPlan(t, p, Options{})
		m.goTo(scrDone)
		mustContain(t, view(m), append(c.wants, "is running with 3 members", "The plan is saved in plan.yaml")...)
	}
}

// A sudo password asked during the apply: typed hidden, sent once; esc
// declines the next one.
func TestApplyAsksSudoPassword(t *testing.T) {
	m := atReview(t, &fakeApplier{})
	m.cur = scrApply
	m.apply.init(m)
	defer m.apply.cancel()
	first, second := make(chan []byte, 1), make(chan []byte, 1)
	m.Update(applyEventMsg{Event{Host: "member0", Ask: &Question{Prompt: "sudo password for ops@10.0.1.10:22", Reply: first}}, true, m.apply.run})
	m.Update(applyEventMsg{Event{Host: "member1", Ask: &Question{Prompt: "sudo password for ops@10.0.1.11:22", Reply: second}}, true, m.apply.run})
	mustContain(t, view(m), "sudo password for ops@10.0.1.10:22: [", "enter answer", "esc decline")
	press(m, "q", "s3cret") // q is part of the password, not quit
	mustNotContain(t, view(m), "s3cret")
	mustContain(t, view(m), "*******")
	press(m, "<enter>")
	if got := string(<-first); got != "qs3cret" {
		t.Fatalf("answer %q", got)
	}
	mustContain(t, view(m), "sudo password for ops@10.0.1.11:22")
	press(m, "<esc>")
	if got := <-second; got != nil {
		t.Fatalf("declined answer %q", got)
	}
	mustNotContain(t, view(m), "sudo password")
	mustContain(t, view(m), "cancel apply")
}

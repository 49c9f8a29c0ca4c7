package tmuxtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"etcdctl-wizard/plan"
	"etcdctl-wizard/remote/lab"
)

// The wizard against three lab hosts over SSH (real sshd in network
// namespaces, the wizard inside the lab's parent namespace): the host keys
// are unknown, shown with their fingerprints and accepted one by one, then
// the apply brings up 3 healthy members with a leader.
func TestTerminalLabApplyWithHostKeys(t *testing.T) {
	bin := binaries(t)
	l := lab.Start(t, 3)
	for _, h := range l.Hosts {
		// The lab's /root overlays this machine's; its .bashrc is slow to
		// start (see remote/executor's lab tests).
		h.MustExec(t, ": > /root/.bashrc")
	}
	dir := t.TempDir()
	p := &plan.Plan{APIVersion: plan.APIVersion, Kind: plan.KindCluster, Metadata: plan.Metadata{Name: "etcd-cluster-1"}}
	for _, h := range l.Hosts {
		p.Spec.Members = append(p.Spec.Members, plan.Member{Name: h.Name, IP: h.IP, SSH: plan.SSH{Port: h.Port, KeyFile: l.ClientKey}})
	}
	if err := plan.Save(filepath.Join(dir, "lab.yaml"), p); err != nil {
		t.Fatal(err)
	}
	known := filepath.Join(dir, "known_hosts")
	s := newSession(t, dir, "env", "SSH_AUTH_SOCK=", "ip", "netns", "exec", l.Name, filepath.Join(bin, "etcdctl-wizard"),
		"-f", "lab.yaml", "--state-dir", filepath.Join(dir, "state"), "--known-hosts", known, "--ssh-config", "none",
		"--node-binary", filepath.Join(bin, "etcd-node"))
	s.waitFor(10*time.Second, "[Hosts]", "infra2")
	s.keys("n", "n", "n")
	s.waitFor(5*time.Second, "[Review]", "no findings", "a apply")
	s.keys("a")
	var want []string
	for _, h := range l.Hosts {
		want = append(want, h.Fingerprint)
	}
	s.waitFor(30*time.Second, append(want, "[Host keys]", "[ ] undecided")...)
	s.keys("y", "y", "y")
	s.waitFor(5*time.Second, "[x] trusted")
	s.keys("Enter")
	s.waitFor(3*time.Minute, "[Done]", "etcd-cluster-1 is running with 3 members")
	s.waitUntil(30*time.Second, "3 healthy members and a leader", healthy3)
	s.keys("q")
	s.waitFor(10*time.Second, "WIZARD EXITED 0")
	// The accepted keys are recorded, one per host.
	data, err := os.ReadFile(known)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range l.Hosts {
		if !strings.Contains(string(data), h.IP) {
			t.Fatalf("known_hosts lacks %s:\n%s", h.IP, data)
		}
	}
	// And the cluster is there for the command line too.
	out, err := l.Command(t.Context(), filepath.Join(bin, "etcdctl-wizard"), "status", "-f", filepath.Join(dir, "lab.yaml"),
		"--known-hosts", known, "--ssh-config", "none", "--state-dir", filepath.Join(dir, "state")).CombinedOutput()
	if err != nil || strings.Count(string(out), "healthy") < 3 {
		t.Fatalf("status: %v\n%s", err, out)
	}
}

// A login user whose sudo wants a password: the wizard asks for it, once
// per host, hidden, and the apply goes on with it.
func TestTerminalLabSudoPassword(t *testing.T) {
	bin := binaries(t)
	l := lab.Start(t, 3)
	for _, h := range l.Hosts {
		h.MustExec(t, ": > /root/.bashrc")
		if err := h.AddUser(t.Context(), "ops", "s3cret-pw", lab.SudoPassword); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	p := &plan.Plan{APIVersion: plan.APIVersion, Kind: plan.KindCluster, Metadata: plan.Metadata{Name: "etcd-cluster-1"}}
	for _, h := range l.Hosts {
		p.Spec.Members = append(p.Spec.Members, plan.Member{Name: h.Name, IP: h.IP, SSH: plan.SSH{Port: h.Port, User: "ops", KeyFile: l.ClientKey}})
	}
	if err := plan.Save(filepath.Join(dir, "lab.yaml"), p); err != nil {
		t.Fatal(err)
	}
	known := filepath.Join(dir, "known_hosts")
	data, err := os.ReadFile(l.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(known, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s := newSession(t, dir, "env", "SSH_AUTH_SOCK=", "ip", "netns", "exec", l.Name, filepath.Join(bin, "etcdctl-wizard"),
		"-f", "lab.yaml", "--state-dir", filepath.Join(dir, "state"), "--known-hosts", known, "--ssh-config", "none",
		"--node-binary", filepath.Join(bin, "etcd-node"))
	s.waitFor(10*time.Second, "[Hosts]")
	s.keys("n", "n", "n")
	s.waitFor(5*time.Second, "[Review]", "a apply")
	s.keys("a")
	asked := map[string]bool{}
	for len(asked) < len(l.Hosts) {
		screen := s.waitUntil(60*time.Second, "a sudo password question", func(screen string) bool {
			for _, h := range l.Hosts {
				if !asked[h.IP] && strings.Contains(screen, "(ops@"+h.IP+":22): [") {
					return true
				}
			}
			return false
		})
		for _, h := range l.Hosts {
			if !asked[h.IP] && strings.Contains(screen, "(ops@"+h.IP+":22): [") {
				asked[h.IP] = true
				s.keys("s3cret-pw")
				s.waitFor(5*time.Second, "*********")
				if strings.Contains(s.capture(), "s3cret-pw") {
					t.Fatal("the password is shown")
				}
				s.keys("Enter")
				break
			}
		}
	}
	s.waitFor(3*time.Minute, "[Done]", "etcd-cluster-1 is running with 3 members")
	s.waitUntil(30*time.Second, "3 healthy members and a leader", healthy3)
	s.keys("q")
	s.waitFor(10*time.Second, "WIZARD EXITED 0")
}

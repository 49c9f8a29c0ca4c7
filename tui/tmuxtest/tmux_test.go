// Package tmuxtest runs the built etcdctl-wizard binary in a real terminal
// (a detached tmux session) and drives it with send-keys, polling
// capture-pane with a deadline: the wizard as an operator sees it.
package tmuxtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"etcdctl-wizard/node/nodetest"
	"etcdctl-wizard/plan"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds etcdctl-wizard and etcd-node (side by side, as make build
// does: the wizard finds the node binary next to itself).
func binaries(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "wizard-tmux-bin-")
		if buildErr != nil {
			return
		}
		for _, pkg := range []string{"etcdctl-wizard", "etcd-node"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, pkg), "etcdctl-wizard/cmd/"+pkg).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// session is a tmux session running one command.
type session struct {
	t    *testing.T
	name string
}

func newSession(t *testing.T, dir string, command ...string) *session {
	t.Helper()
	name := fmt.Sprintf("wizard-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-"))
	// The pane stays after the command ends (remain-on-exit), so that its
	// exit is visible; TERM is fixed so the output is the same everywhere.
	script := strings.Join(quoteAll(command), " ") + `; echo "WIZARD EXITED $?"; sleep 600`
	args := []string{"new-session", "-d", "-s", name, "-x", "100", "-y", "30", "-c", dir,
		"-e", "TERM=xterm-256color", "-e", "NO_COLOR=1", "sh", "-c", script}
	if out, err := exec.Command("tmux", args...).CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	s := &session{t: t, name: name}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last screen:\n%s", s.capture())
		}
		exec.Command("tmux", "kill-session", "-t", name).Run()
	})
	return s
}

func quoteAll(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return out
}

func (s *session) capture() string {
	out, err := exec.Command("tmux", "capture-pane", "-p", "-t", s.name).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("capture-pane: %v: %s", err, out)
	}
	return string(out)
}

// keys sends tmux key names (Enter, Escape, Down, C-u) or literal text.
func (s *session) keys(keys ...string) {
	s.t.Helper()
	for _, k := range keys {
		args := []string{"send-keys", "-t", s.name}
		switch k {
		case "Enter", "Escape", "Down", "Up", "Left", "Right", "Tab", "C-u", "C-c":
			args = append(args, k)
		default:
			args = append(args, "-l", k)
		}
		if out, err := exec.Command("tmux", args...).CombinedOutput(); err != nil {
			s.t.Fatalf("send-keys %q: %v\n%s", k, err, out)
		}
	}
}

// waitFor polls the screen until every text is on it, or fails at the
// deadline.
func (s *session) waitFor(timeout time.Duration, texts ...string) string {
	s.t.Helper()
	return s.waitUntil(timeout, fmt.Sprintf("%q", texts), func(screen string) bool {
		for _, want := range texts {
			if !strings.Contains(screen, want) {
				return false
			}
		}
		return true
	})
}

// waitUntil polls the screen until ok says yes, or fails at the deadline.
func (s *session) waitUntil(timeout time.Duration, what string, ok func(screen string) bool) string {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		screen := s.capture()
		if ok(screen) {
			return screen
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("after %s the screen does not show %s:\n%s", timeout, what, screen)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}

// healthy3 is a screen with three healthy members and a leader.
func healthy3(screen string) bool {
	return strings.Count(screen, " healthy") == 3 && strings.Contains(screen, "Cluster: leader ") && !strings.Contains(screen, "leader none")
}

// waitGone polls the screen until text is no longer on it.
func (s *session) waitGone(timeout time.Duration, text string) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for strings.Contains(s.capture(), text) {
		if time.Now().After(deadline) {
			s.t.Fatalf("after %s the screen still shows %q:\n%s", timeout, text, s.capture())
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}

func guidePlan() *plan.Plan {
	p := &plan.Plan{APIVersion: plan.APIVersion, Kind: plan.KindCluster, Metadata: plan.Metadata{Name: "etcd-cluster-1"}}
	for i, ip := range []string{"10.0.1.10", "10.0.1.11", "10.0.1.12"} {
		p.Spec.Members = append(p.Spec.Members, plan.Member{Name: fmt.Sprintf("infra%d", i), IP: ip})
	}
	return p
}

// Open the wizard on a 3-host plan, walk to the review, export the dry run,
// quit.
func TestTerminalReviewAndExport(t *testing.T) {
	bin := binaries(t)
	dir := t.TempDir()
	if err := plan.Save(filepath.Join(dir, "cluster.yaml"), guidePlan()); err != nil {
		t.Fatal(err)
	}
	s := newSession(t, dir, filepath.Join(bin, "etcdctl-wizard"), "-f", "cluster.yaml", "--state-dir", filepath.Join(dir, "state"))
	s.waitFor(10*time.Second, "[Hosts]", "infra2", "10.0.1.12", "q quit")
	s.keys("n")
	s.waitFor(5*time.Second, "[Bootstrap]", "(•) static")
	s.keys("n")
	s.waitFor(5*time.Second, "[TLS]", "(•) none")
	s.keys("n")
	s.waitFor(5*time.Second, "[Review]", "no findings", "etcd-node --name infra0")
	s.keys("x")
	s.waitFor(5*time.Second, "Write the dry run into folder")
	s.keys("C-u", "out", "Enter")
	s.waitFor(5*time.Second, "wrote 9 files to out")
	s.keys("q")
	s.waitFor(5*time.Second, "WIZARD EXITED 0")
	for _, f := range []string{"infra0.sh", "infra1.env", "infra2.service"} {
		if _, err := os.Stat(filepath.Join(dir, "out", f)); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, "out", "infra0.sh"))
	if err != nil || !strings.Contains(string(data), "--initial-cluster infra0=http://10.0.1.10:2380,infra1=http://10.0.1.11:2380,infra2=http://10.0.1.12:2380") {
		t.Fatalf("infra0.sh: %v\n%s", err, data)
	}
	// The log went to the log file, not the screen.
	if logData, err := os.ReadFile(filepath.Join(dir, "state", "wizard.log")); err != nil || !strings.Contains(string(logData), "wizard ended: <nil>") {
		t.Fatalf("log file: %v\n%s", err, logData)
	}
}

// A plan typed in the terminal: three hosts pasted, one wrong address
// corrected in the table, on to the review.
func TestTerminalTypeAPlan(t *testing.T) {
	bin := binaries(t)
	dir := t.TempDir()
	s := newSession(t, dir, filepath.Join(bin, "etcdctl-wizard"), "--state-dir", filepath.Join(dir, "state"))
	s.waitFor(10*time.Second, "> Local sandbox", "New cluster")
	s.keys("Down", "Enter")
	s.waitFor(5*time.Second, "[Hosts]", "no hosts yet")
	// A bracketed paste of two lines (tmux paste-buffer -p), as from a
	// terminal's clipboard.
	for _, args := range [][]string{{"set-buffer", "-b", s.name, "infra0 10.0.1.10\ninfra1 10.0.1.11\n"}, {"paste-buffer", "-p", "-d", "-b", s.name, "-t", s.name}} {
		if out, err := exec.Command("tmux", args...).CombinedOutput(); err != nil {
			t.Fatalf("tmux %v: %v %s", args, err, out)
		}
	}
	s.waitFor(5*time.Second, "added 2 hosts", "infra1")
	// The paste box, for terminals without bracketed paste; ctrl+s ends it.
	s.keys("p")
	s.waitFor(5*time.Second, "Paste one host per line")
	s.keys("infra2 10.0.1.300")
	if out, err := exec.Command("tmux", "send-keys", "-t", s.name, "C-s").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	s.waitFor(5*time.Second, "added 1 host", `ip "10.0.1.300" is not a unicast IP address`)
	s.keys("Right", "e", "C-u", "10.0.1.12", "Enter")
	s.waitGone(5*time.Second, "unicast")
	s.waitFor(5*time.Second, "10.0.1.12")
	s.keys("n", "n", "n")
	s.waitFor(5*time.Second, "[Review]", "etcd-cluster-1: 3 members", "no findings")
	s.keys("s", "Enter")
	s.waitFor(5*time.Second, "saved the plan to etcd-cluster-1.yaml")
	s.keys("q")
	s.waitFor(5*time.Second, "WIZARD EXITED 0")
	p, err := plan.Load(filepath.Join(dir, "etcd-cluster-1.yaml"))
	if err != nil || len(p.Spec.Members) != 3 || p.Spec.Members[2].IP != "10.0.1.12" {
		t.Fatalf("saved plan: %v %+v", err, p)
	}
}

// The sandbox from the start screen: apply, three healthy members and a
// leader, quit; then 'sandbox down' removes it.
func TestTerminalSandboxApply(t *testing.T) {
	bin := binaries(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	base := nodetest.SandboxBasePort(t)
	wizard := filepath.Join(bin, "etcdctl-wizard")
	t.Cleanup(func() {
		if out, err := exec.Command(wizard, "sandbox", "down", "--state-dir", state).CombinedOutput(); err != nil {
			t.Errorf("sandbox down: %v\n%s", err, out)
		}
	})
	s := newSession(t, dir, wizard, "--state-dir", state, "--sandbox-base-port", fmt.Sprint(base), "--known-hosts", filepath.Join(dir, "known_hosts"))
	s.waitFor(10*time.Second, "> Local sandbox")
	s.keys("Enter")
	s.waitFor(5*time.Second, "[Review]", "sandbox: 3 members", "no findings", "a apply")
	s.keys("a")
	s.waitFor(90*time.Second, "[Done]", "sandbox is running with 3 members")
	screen := s.waitUntil(30*time.Second, "3 healthy members and a leader", healthy3)
	if !strings.Contains(screen, fmt.Sprintf("export ETCDCTL_ENDPOINTS=http://127.0.0.1:%d,http://127.0.0.1:%d,http://127.0.0.1:%d", base, base+100, base+200)) {
		t.Fatalf("no etcdctl environment:\n%s", screen)
	}
	s.keys("q")
	s.waitFor(10*time.Second, "WIZARD EXITED 0")
	// The cluster outlives the wizard: status sees it.
	out, err := exec.Command(wizard, "status", "-f", filepath.Join(state, "sandbox", "plan.yaml"), "--state-dir", state).CombinedOutput()
	if err != nil || strings.Count(string(out), "healthy") < 3 {
		t.Fatalf("status: %v\n%s", err, out)
	}
}

// Without a terminal the binary explains itself and exits 1.
func TestNoTerminal(t *testing.T) {
	bin := binaries(t)
	cmd := exec.Command(filepath.Join(bin, "etcdctl-wizard"))
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "the wizard needs a terminal") {
		t.Fatalf("%v\n%s", err, out)
	}
}

// BenchmarkBinaryFirstFrame measures the built binary in tmux from the
// session's start to the first frame on the pane (process start, Go
// runtime, cobra, terminal set-up and the first render), polling every
// millisecond.
func BenchmarkBinaryFirstFrame(b *testing.B) {
	bin := binaries(b)
	dir := b.TempDir()
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("wizard-bench-%d-%d", os.Getpid(), i)
		start := time.Now()
		if out, err := exec.Command("tmux", "new-session", "-d", "-s", name, "-x", "100", "-y", "30", "-c", dir,
			filepath.Join(bin, "etcdctl-wizard"), "--state-dir", filepath.Join(dir, "state")).CombinedOutput(); err != nil {
			b.Fatalf("%v %s", err, out)
		}
		for {
			out, _ := exec.Command("tmux", "capture-pane", "-p", "-t", name).Output()
			if strings.Contains(string(out), "Local sandbox") {
				break
			}
			if time.Since(start) > 10*time.Second {
				b.Fatalf("no frame:\n%s", out)
			}
			time.Sleep(time.Millisecond)
		}
		b.ReportMetric(float64(time.Since(start).Microseconds())/1000, "ms/frame")
		exec.Command("tmux", "kill-session", "-t", name).Run()
	}
}

// Self-signed TLS chosen in the terminal: the review lists the missing
// certificates, c creates the CA and issues them, the findings are gone.
func TestTerminalSelfSignedCertificates(t *testing.T) {
	bin := binaries(t)
	dir := t.TempDir()
	if err := plan.Save(filepath.Join(dir, "cluster.yaml"), guidePlan()); err != nil {
		t.Fatal(err)
	}
	s := newSession(t, dir, filepath.Join(bin, "etcdctl-wizard"), "-f", "cluster.yaml", "--state-dir", filepath.Join(dir, "state"))
	s.waitFor(10*time.Second, "[Hosts]")
	s.keys("n", "n")
	s.waitFor(5*time.Second, "[TLS]")
	s.keys("Right", "Down", "e", "pki", "Enter")
	s.waitFor(5*time.Second, "no CA there yet")
	s.keys("n")
	s.waitFor(5*time.Second, "[Review]", "TLS self-signed", "c creates the CA and certificates")
	s.keys("c")
	s.waitFor(20*time.Second, "certificates ready in pki", "no findings", "created CA")
	s.keys("q")
	s.waitFor(5*time.Second, "WIZARD EXITED 0")
	p, err := plan.Load(filepath.Join(dir, "cluster.yaml"))
	if err != nil || p.Spec.TLS.Mode != plan.TLSSelfSigned {
		t.Fatalf("%v %+v", err, p)
	}
	if fs := plan.ValidateCertificates(p, dir); len(fs) != 0 {
		t.Fatalf("findings: %+v", fs)
	}
}

// A sandbox brought up by the command line, managed from the start screen:
// the cluster screen shows its members beside the plan, live, and removes
// one after its name is typed; the plan file no longer lists it.
func TestTerminalManageSandbox(t *testing.T) {
	bin := binaries(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	base := nodetest.SandboxBasePort(t)
	wizard := filepath.Join(bin, "etcdctl-wizard")
	if out, err := exec.Command(wizard, "sandbox", "up", "--state-dir", state, "--base-port", fmt.Sprint(base)).CombinedOutput(); err != nil {
		t.Fatalf("sandbox up: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(wizard, "sandbox", "down", "--state-dir", state).CombinedOutput(); err != nil {
			t.Errorf("sandbox down: %v\n%s", err, out)
		}
	})
	planFile := filepath.Join(state, "sandbox", "plan.yaml")
	s := newSession(t, dir, wizard, "--state-dir", state, "--known-hosts", filepath.Join(dir, "known_hosts"))
	s.waitFor(10*time.Second, "Manage a running cluster")
	s.keys("Down", "Down", "Down", "Enter")
	s.waitFor(5*time.Second, "plan file: [")
	s.keys(planFile, "Enter")
	s.waitFor(20*time.Second, "[Cluster]", "the plan matches the cluster", "member0", "member1", "member2", "leader")
	s.waitUntil(20*time.Second, "3 healthy members", func(screen string) bool { return strings.Count(screen, " healthy") == 3 })
	s.keys("Down", "Down", "d")
	s.waitFor(5*time.Second, "Remove member2 from the running cluster?", "voting members 3 → 2")
	s.keys("member2", "Enter")
	s.waitFor(60*time.Second, "✓ member remove of member2 done", "plan file rewritten")
	s.waitUntil(20*time.Second, "2 members listed", func(screen string) bool {
		return strings.Count(screen, "in both") == 2 && !strings.Contains(screen, "member2     ")
	})
	s.keys("q")
	s.waitFor(5*time.Second, "What do you want to do?")
	s.keys("q")
	s.waitFor(5*time.Second, "WIZARD EXITED 0")
	p, err := plan.Load(planFile)
	if err != nil || len(p.Spec.Members) != 2 || p.Spec.ClusterID == "" {
		t.Fatalf("plan %v %+v", err, p)
	}
}

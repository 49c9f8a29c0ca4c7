package tui

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"etcdctl-wizard/plan"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest"
)

// The flows run the wizard in a real tea.Program at 100x30 without colours
// and compare the final screen with testdata/<test>.golden (go test -update
// rewrites them).

// flow is a running wizard and everything it has drawn so far.
type flow struct {
	*teatest.TestModel
	seen bytes.Buffer
}

func startFlow(t *testing.T, opts Options) *flow {
	t.Helper()
	t.Chdir(t.TempDir())
	return &flow{TestModel: teatest.NewTestModel(t, New(opts), teatest.WithInitialTermSize(100, 30))}
}

func send(tm *flow, spec ...string) {
	for _, k := range keys(spec...) {
		tm.Send(k)
	}
}

// waitFor polls the output (with a deadline) until text has been drawn
// since the flow started.
func waitFor(t *testing.T, tm *flow, text string) {
	t.Helper()
	teatest.WaitFor(t, io.TeeReader(tm.Output(), &tm.seen), func([]byte) bool { return bytes.Contains(tm.seen.Bytes(), []byte(text)) },
		teatest.WithDuration(10*time.Second), teatest.WithCheckInterval(10*time.Millisecond))
}

// requireGolden compares with testdata/<test>.golden of the package.
func requireGolden(t *testing.T, v string) {
	t.Helper()
	if err := os.Chdir(pkgDir); err != nil {
		t.Fatal(err)
	}
	golden.RequireEqual(t, []byte(v))
}

func finalView(t *testing.T, tm *flow) (*Model, string) {
	t.Helper()
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(*Model)
	return fm, fm.View()
}

// A 3-host static plan typed from scratch: one address is wrong, the error
// shows when the field is left, it is corrected in the table, and the
// review has no findings.
func TestFlowStaticPlanWithCorrectedError(t *testing.T) {
	tm := startFlow(t, Options{})
	send(tm, "<enter>")
	tm.Send(pasteMsg("infra0 10.0.1.10\ninfra1 10.0.1.11\n"))
	send(tm, "a", "infra2", "<tab>", "10.0.1.300", "<enter>")
	waitFor(t, tm, "is not a unicast IP address")
	send(tm, "e", "<ctrl+u>", "10.0.1.12", "<enter>", "n", "n", "n")
	waitFor(t, tm, "no findings")
	send(tm, "q")
	fm, v := finalView(t, tm)
	if fm.Screen() != "Review" || len(fm.Plan().Spec.Members) != 3 || fm.Plan().Spec.Members[2].IP != "10.0.1.12" {
		t.Fatalf("screen %s members %+v", fm.Screen(), fm.Plan().Spec.Members)
	}
	requireGolden(t, v)
}

// The TLS choice: self-signed asks for the CA folder, and the review reports
// the certificates still missing from it.
func TestFlowTLSChoice(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "plan.yaml")
	if err := plan.Save(path, threeHosts()); err != nil {
		t.Fatal(err)
	}
	tm := startFlow(t, Options{})
	send(tm, "<down>", "<enter>", path, "<enter>", "n", "n", "<right>")
	waitFor(t, tm, "CA folder")
	send(tm, "<down>", "e", "pki", "<enter>")
	waitFor(t, tm, "no CA there yet")
	send(tm, "<up>", "<right>", "<left>", "n")
	waitFor(t, tm, "Findings")
	send(tm, "<esc>", "<right>", "q")
	fm, v := finalView(t, tm)
	if tls := fm.Plan().Spec.TLS; tls.Mode != plan.TLSAuto || tls.Dir != "" {
		t.Fatalf("tls %+v", tls)
	}
	requireGolden(t, v)
}

// Export of a dry run from a plan opened with -f.
func TestFlowExportDryRun(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := plan.Save("guide.yaml", threeHosts()); err != nil {
		t.Fatal(err)
	}
	tm := &flow{TestModel: teatest.NewTestModel(t, New(Options{PlanPath: "guide.yaml"}), teatest.WithInitialTermSize(100, 30))}
	send(tm, "n", "n", "n", "x", "<ctrl+u>", "dry-run", "<enter>")
	waitFor(t, tm, "wrote 9 files")
	send(tm, "q")
	_, v := finalView(t, tm)
	for _, name := range []string{"infra0.sh", "infra1.env", "infra2.service"} {
		if _, err := os.Stat(filepath.Join("dry-run", name)); err != nil {
			t.Fatal(err)
		}
	}
	requireGolden(t, v)
}

func sandboxEvents() []Event {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var evs []Event
	for i, step := range []string{"facts", "preflight", "install binary", "env file", "start", "wait healthy"} {
		for _, h := range []string{"member0", "member1", "member2"} {
			evs = append(evs, Event{Time: t0.Add(time.Duration(i) * time.Second), Host: h, Step: step, State: StepRunning, Progress: -1})
			evs = append(evs, Event{Time: t0.Add(time.Duration(i)*time.Second + 500*time.Millisecond), Host: h, Step: step, State: StepDone, Progress: -1,
				Log: []string{h + ": " + step + " ok"}})
		}
	}
	return append(evs, Event{Time: t0.Add(7 * time.Second), Final: true})
}

func healthyStatus() ClusterStatus {
	return ClusterStatus{Leader: "member1", Term: 2, Index: 9, Members: []MemberStatus{
		{Name: "member0", Endpoint: "http://127.0.0.1:22379", Healthy: true},
		{Name: "member1", Endpoint: "http://127.0.0.1:22479", Healthy: true},
		{Name: "member2", Endpoint: "http://127.0.0.1:22579", Healthy: true},
	}}
}

// The sandbox from the start screen to the done screen, with a scripted
// applier (tui/applier runs the real one in its own tests).
func TestFlowSandboxToDone(t *testing.T) {
	fa := &fakeApplier{events: sandboxEvents(), status: []ClusterStatus{healthyStatus()}}
	tm := startFlow(t, Options{Sandbox: sandboxPlan, Applier: fa})
	send(tm, "<enter>", "a")
	waitFor(t, tm, "is running with 3 members")
	waitFor(t, tm, "leader member1")
	send(tm, "q")
	fm, v := finalView(t, tm)
	if fm.Screen() != "Done" {
		t.Fatalf("screen %s", fm.Screen())
	}
	requireGolden(t, v)
}

// Keys reach a model that is busy applying: cancel asks first.
func TestFlowCancelApply(t *testing.T) {
	fa := &fakeApplier{events: sandboxEvents(), gate: make(chan struct{}), pauseAt: 3}
	tm := startFlow(t, Options{Sandbox: sandboxPlan, Applier: fa})
	send(tm, "<enter>", "a")
	waitFor(t, tm, "facts ok")
	send(tm, "q") // q does not quit during an apply
	send(tm, "<esc>")
	waitFor(t, tm, "Cancel the apply?")
	send(tm, "n", "<esc>", "y")
	waitFor(t, tm, "Cancelled.")
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")})
	fm, _ := finalView(t, tm)
	if fm.Screen() != "Apply" || !fm.apply.cancelled || fm.apply.failed != nil {
		t.Fatalf("screen %s apply %+v", fm.Screen(), fm.apply)
	}
}

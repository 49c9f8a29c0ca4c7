package tui

import (
	"os"
	"strings"
	"testing"

	"etcdctl-wizard/plan"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"
)

// pkgDir is the package folder, where testdata lives; tests chdir away.
var pkgDir string

func TestMain(m *testing.M) {
	var err error
	if pkgDir, err = os.Getwd(); err != nil {
		panic(err)
	}
	// Golden views are compared without colours, whatever the terminal.
	lipgloss.SetColorProfile(termenv.Ascii)
	os.Exit(m.Run())
}

// keys turns a compact description into key messages: "<enter>", "<tab>",
// "<esc>", "<up>", "<down>", "<left>", "<right>", "<shift+tab>",
// "<backspace>", "<ctrl+s>", "<ctrl+c>", "<pgdown>"; any other text is typed
// rune by rune.
func keys(spec ...string) []tea.KeyMsg {
	named := map[string]tea.KeyType{
		"<enter>": tea.KeyEnter, "<tab>": tea.KeyTab, "<esc>": tea.KeyEsc, "<up>": tea.KeyUp, "<down>": tea.KeyDown,
		"<left>": tea.KeyLeft, "<right>": tea.KeyRight, "<shift+tab>": tea.KeyShiftTab, "<backspace>": tea.KeyBackspace,
		"<ctrl+s>": tea.KeyCtrlS, "<ctrl+c>": tea.KeyCtrlC, "<pgdown>": tea.KeyPgDown, "<ctrl+u>": tea.KeyCtrlU,
	}
	var out []tea.KeyMsg
	for _, s := range spec {
		if t, ok := named[s]; ok {
			out = append(out, tea.KeyMsg{Type: t})
			continue
		}
		for _, r := range s {
			if r == ' ' {
				out = append(out, tea.KeyMsg{Type: tea.KeySpace, Runes: []rune{' '}})
				continue
			}
			out = append(out, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
		}
	}
	return out
}

// press sends keys to the model, as the program would, ignoring commands.
func press(m *Model, spec ...string) {
	for _, k := range keys(spec...) {
		m.Update(k)
	}
}

// pasteMsg is a bracketed paste.
func pasteMsg(text string) tea.KeyMsg {
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(text), Paste: true}
}

func view(m *Model) string { return ansi.Strip(m.View()) }

func mustContain(t *testing.T, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Fatalf("view lacks %q:\n%s", w, got)
		}
	}
}

func mustNotContain(t *testing.T, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if strings.Contains(got, w) {
			t.Fatalf("view has %q:\n%s", w, got)
		}
	}
}

// threeHosts is the guide's static cluster.
func threeHosts() *plan.Plan {
	p := newPlan("etcd-cluster-1")
	for i, ip := range []string{"10.0.1.10", "10.0.1.11", "10.0.1.12"} {
		p.Spec.Members = append(p.Spec.Members, plan.Member{Name: "infra" + string(rune('0'+i)), IP: ip})
	}
	return p
}

func sandboxPlan() (*plan.Plan, string, error) {
	p := newPlan("sandbox")
	dd := ""
	p.Spec.Node.DataDir = &dd
	p.Spec.Node.Listen = plan.ListenIP
	for i := 0; i < 3; i++ {
		p.Spec.Members = append(p.Spec.Members, plan.Member{Name: "member" + string(rune('0'+i)), IP: "127.0.0.1",
			ClientPort: 22379 + 100*i, PeerPort: 22380 + 100*i, Transport: plan.TransportLocal})
	}
	return p, "sandbox.yaml", nil
}

// newModel is a wizard at 100x30 in a temporary working directory.
func newModel(t *testing.T, opts Options) *Model {
	t.Helper()
	t.Chdir(t.TempDir())
	m := New(opts)
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 30})
	return m
}

// withPlan opens p at the hosts screen.
func withPlan(t *testing.T, p *plan.Plan, opts Options) *Model {
	t.Helper()
	m := newModel(t, opts)
	m.openPlan(p, "plan.yaml", false)
	return m
}

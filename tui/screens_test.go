package tui

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"etcdctl-wizard/plan"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"
)

func TestStartSandboxIsTheDefault(t *testing.T) {
	m := newModel(t, Options{Sandbox: sandboxPlan})
	mustContain(t, view(m), "> Local sandbox", "New cluster", "Open a plan file")
	mustNotContain(t, view(m), "ttach") // no dead entry for attach mode
	press(m, "<enter>")
	if m.Screen() != "Review" || !m.sandbox || len(m.Plan().Spec.Members) != 3 {
		t.Fatalf("screen %s sandbox %v", m.Screen(), m.sandbox)
	}
	mustContain(t, view(m), "sandbox: 3 members, static bootstrap, TLS none")
}

func TestStartWithoutSandbox(t *testing.T) {
	m := newModel(t, Options{})
	mustContain(t, view(m), "> New cluster")
	mustNotContain(t, view(m), "sandbox")
	press(m, "<enter>")
	if m.Screen() != "Hosts" || m.Plan().Metadata.Name != "etcd-cluster-1" {
		t.Fatalf("screen %s plan %+v", m.Screen(), m.Plan().Metadata)
	}
	mustContain(t, view(m), "no hosts yet")
}

func TestStartOpenPlan(t *testing.T) {
	m := newModel(t, Options{})
	if err := plan.Save("mine.yaml", threeHosts()); err != nil {
		t.Fatal(err)
	}
	os.WriteFile("bad.yaml", []byte("apiVersion: etcdctl-wizard/v1\nkind: Cluster\nspec:\n  bogus: 1\n"), 0o644)
	press(m, "<down>", "<enter>", "bad.yaml", "<enter>")
	if m.Screen() != "Start" {
		t.Fatalf("a bad plan was opened: %s", m.Screen())
	}
	mustContain(t, view(m), "error: ", "bad.yaml")
	press(m, "<ctrl+u>", "mine.yaml", "<enter>")
	if m.Screen() != "Hosts" || len(m.Plan().Spec.Members) != 3 {
		t.Fatalf("screen %s", m.Screen())
	}
	mustContain(t, view(m), "infra2", "10.0.1.12", "opened mine.yaml")
}

func TestOpenFlagGoesToHosts(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.yaml")
	if err := plan.Save(path, threeHosts()); err != nil {
		t.Fatal(err)
	}
	m := New(Options{PlanPath: path})
	if m.Screen() != "Hosts" || m.planPath != path {
		t.Fatalf("screen %s path %s", m.Screen(), m.planPath)
	}
	m = New(Options{PlanPath: filepath.Join(dir, "missing.yaml")})
	if m.Screen() != "Start" || !strings.Contains(view(m), "missing.yaml") {
		t.Fatalf("screen %s view\n%s", m.Screen(), view(m))
	}
}

func TestHostsAddEditValidateOnBlur(t *testing.T) {
	m := withPlan(t, newPlan("c1"), Options{})
	press(m, "a", "infra0", "<tab>", "10.0.1.300", "<tab>")
	got := m.Plan().Spec.Members
	if len(got) != 1 || got[0].Name != "infra0" || got[0].IP != "10.0.1.300" {
		t.Fatalf("members %+v", got)
	}
	mustContain(t, view(m), `✗ infra0 IP: infra0: ip "10.0.1.300" is not a unicast IP address`)
	// The error stays while other fields are edited...
	press(m, "infra0.example.com", "<enter>")
	mustContain(t, view(m), "infra0.example.com", "is not a unicast IP address")
	// ... and goes once the field is fixed.
	press(m, "<left>", "e", "<ctrl+u>", "10.0.1.10", "<enter>")
	mustNotContain(t, view(m), "unicast")
	// A port that is not a number is refused by the cell itself.
	press(m, "<right>", "<right>", "<right>", "e", "twenty", "<enter>")
	mustContain(t, view(m), `SSH port "twenty" is not a number`)
	press(m, "e", "<ctrl+u>", "70000", "<enter>")
	mustContain(t, view(m), "ssh.port 70000 is out of range")
	press(m, "e", "<ctrl+u>", "2222", "<enter>")
	mustNotContain(t, view(m), "out of range", "not a number")
	if m.Plan().Spec.Members[0].SSH.Port != 2222 {
		t.Fatalf("port %d", m.Plan().Spec.Members[0].SSH.Port)
	}
	// Esc abandons an edit.
	press(m, "e", "<ctrl+u>", "1", "<esc>")
	if m.Plan().Spec.Members[0].SSH.Port != 2222 {
		t.Fatalf("esc kept the edit")
	}
}

func TestHostsPasteRemoveDuplicates(t *testing.T) {
	m := withPlan(t, newPlan("c1"), Options{})
	m.Update(pasteMsg("infra0 10.0.1.10\n# a comment\ninfra1, 10.0.1.11, infra1.example.com, admin, 2222, ~/.ssh/id_lab, bastion:22\ninfra0 10.0.1.12\n"))
	mem := m.Plan().Spec.Members
	if len(mem) != 3 {
		t.Fatalf("members %+v", mem)
	}
	want := plan.Member{Name: "infra1", IP: "10.0.1.11", Hostname: "infra1.example.com",
		SSH: plan.SSH{User: "admin", Port: 2222, KeyFile: "~/.ssh/id_lab", JumpHost: "bastion:22"}}
	if !reflect.DeepEqual(mem[1], want) {
		t.Fatalf("pasted %+v, want %+v", mem[1], want)
	}
	v := view(m)
	mustContain(t, v, "added 3 hosts", `name "infra0" is also used by spec.members[0].name`)
	// Removing the duplicate clears the error of the twin.
	press(m, "d")
	if len(m.Plan().Spec.Members) != 2 {
		t.Fatalf("remove: %+v", m.Plan().Spec.Members)
	}
	mustNotContain(t, view(m), "also used")
	// The paste box for terminals without bracketed paste.
	press(m, "p", "infra2 10.0.1.12", "<enter>", "too many fields here a b c d e f", "<ctrl+s>")
	if len(m.Plan().Spec.Members) != 3 || m.Plan().Spec.Members[2].Name != "infra2" {
		t.Fatalf("paste box: %+v", m.Plan().Spec.Members)
	}
	mustContain(t, view(m), "added 1 host; skipped")
}

func TestHostsNeedAHostToGoOn(t *testing.T) {
	m := withPlan(t, newPlan("c1"), Options{})
	press(m, "n")
	if m.Screen() != "Hosts" {
		t.Fatal("moved on without hosts")
	}
	mustContain(t, view(m), "add at least one host")
	press(m, "<esc>")
	if m.Screen() != "Start" {
		t.Fatalf("back: %s", m.Screen())
	}
}

func TestBootstrapModes(t *testing.T) {
	m := withPlan(t, threeHosts(), Options{})
	press(m, "n")
	mustContain(t, view(m), "(•) static", "each member gets --initial-cluster")
	mustNotContain(t, view(m), "Discovery URL")
	press(m, "<down>", "<right>")
	if m.Plan().Spec.Bootstrap.Mode != plan.ModeDiscovery {
		t.Fatalf("mode %s", m.Plan().Spec.Bootstrap.Mode)
	}
	press(m, "<down>", "e", "ftp://x", "<enter>")
	mustContain(t, view(m), "Discovery URL", "✗ ")
	press(m, "e", "<ctrl+u>", "https://discovery.example.com/v2/keys/discovery/abc", "<tab>", "e", "3", "<enter>")
	b := m.Plan().Spec.Bootstrap
	if b.Discovery.URL != "https://discovery.example.com/v2/keys/discovery/abc" || b.Discovery.Size != 3 {
		t.Fatalf("discovery %+v", b.Discovery)
	}
	mustNotContain(t, view(m), "✗ ")
	// Changing the mode drops the discovery answers.
	press(m, "<up>", "<up>", "<right>")
	b = m.Plan().Spec.Bootstrap
	if b.Mode != plan.ModeDNSSRV || b.Discovery != (plan.Discovery{}) {
		t.Fatalf("bootstrap %+v", b)
	}
	press(m, "<down>", "e", "example.com", "<enter>")
	mustContain(t, view(m), "Records to publish", "give the hosts a hostname")
	for i := range m.Plan().Spec.Members {
		m.Plan().Spec.Members[i].Hostname = m.Plan().Spec.Members[i].Name + ".example.com"
	}
	mustContain(t, view(m), "_etcd-server._tcp.example.com. 300 IN SRV 0 0 2380 infra0.example.com.",
		"infra2.example.com. 300 IN A 10.0.1.12")
	press(m, "<up>", "<left>")
	if m.Plan().Spec.Bootstrap.DNSSRV != (plan.DNSSRV{}) {
		t.Fatalf("dns answers kept: %+v", m.Plan().Spec.Bootstrap.DNSSRV)
	}
	// The cluster name is checked when left.
	press(m, "<up>", "e", "<ctrl+u>", "<enter>")
	mustContain(t, view(m), "metadata.name is missing")
	press(m, "n")
	if m.Screen() != "TLS" {
		t.Fatalf("screen %s", m.Screen())
	}
}

func TestTLSChoice(t *testing.T) {
	m := withPlan(t, threeHosts(), Options{})
	press(m, "n", "n")
	mustContain(t, view(m), "(•) none", "auto-TLS", "encrypts but does not authenticate", "encrypts and authenticates")
	press(m, "<right>")
	if m.Plan().Spec.TLS.Mode != plan.TLSSelfSigned {
		t.Fatalf("tls %+v", m.Plan().Spec.TLS)
	}
	mustContain(t, view(m), "CA folder", "where the CA and member certificates live")
	press(m, "<down>", "e", "pki", "<enter>")
	mustContain(t, view(m), "no CA there yet")
	press(m, "<up>", "<right>")
	if tls := m.Plan().Spec.TLS; tls.Mode != plan.TLSAuto || tls.Dir != "" {
		t.Fatalf("tls %+v", tls)
	}
	mustNotContain(t, view(m), "CA folder")
	press(m, "n")
	mustContain(t, view(m), "TLS auto", "https://10.0.1.10:2380")
}

func TestReviewErrorsBlock(t *testing.T) {
	p := threeHosts()
	p.Spec.Members[2].IP = "10.0.1.11" // same address as infra1
	m := withPlan(t, p, Options{Applier: &fakeApplier{}})
	press(m, "n", "n", "n")
	mustContain(t, view(m), "errors block export and apply", "✗ error", "10.0.1.11:2380 is also used by infra1")
	press(m, "x")
	mustContain(t, view(m), "fix them before exporting")
	press(m, "a")
	mustContain(t, view(m), "block the apply")
	if m.Screen() != "Review" {
		t.Fatalf("screen %s", m.Screen())
	}
}

func TestReviewWarningsNeedAcknowledgement(t *testing.T) {
	p := threeHosts()
	p.Spec.Members = p.Spec.Members[:2] // an even member count is a warning
	m := withPlan(t, p, Options{Applier: &fakeApplier{}})
	press(m, "n", "n", "n")
	mustContain(t, view(m), "! warning", "press w to acknowledge")
	press(m, "a")
	if m.Screen() != "Review" {
		t.Fatal("applied with unacknowledged warnings")
	}
	press(m, "w", "a")
	if m.Screen() != "Host keys" {
		t.Fatalf("screen %s: %s", m.Screen(), view(m))
	}
	// The plan was saved before the apply.
	if got, err := plan.Load("plan.yaml"); err != nil || len(got.Spec.Members) != 2 {
		t.Fatalf("saved plan %v %v", got, err)
	}
}

func TestReviewSaveAndExport(t *testing.T) {
	m := withPlan(t, threeHosts(), Options{})
	press(m, "n", "n", "n")
	v := view(m)
	mustContain(t, v, "no findings", "Per-member command lines:", "etcd-node --name infra0")
	press(m, "s", "<ctrl+u>", "saved.yaml", "<enter>")
	mustContain(t, view(m), "saved the plan to saved.yaml")
	got, err := plan.Load("saved.yaml")
	if err != nil || !reflect.DeepEqual(got, m.Plan()) {
		t.Fatalf("saved %+v, %v", got, err)
	}
	press(m, "x", "<enter>")
	mustContain(t, view(m), "wrote 9 files to etcd-cluster-1-dry-run")
	for _, f := range []struct {
		name string
		mode os.FileMode
	}{{"infra0.sh", 0o755}, {"infra1.env", 0o600}, {"infra2.service", 0o644}} {
		st, err := os.Stat(filepath.Join("etcd-cluster-1-dry-run", f.name))
		if err != nil || st.Mode().Perm() != f.mode {
			t.Fatalf("%s: %v %v", f.name, st, err)
		}
	}
	ex, _ := plan.Export(m.Plan(), plan.FormatEnv)
	data, _ := os.ReadFile(filepath.Join("etcd-cluster-1-dry-run", "infra1.env"))
	if string(data) != string(ex.Files[1].Data) {
		t.Fatalf("env file differs from plan export:\n%s", data)
	}
	// Without an applier the apply explains itself.
	press(m, "a")
	mustContain(t, view(m), "without an applier")
}

func TestResizeTo80x24(t *testing.T) {
	p := threeHosts()
	p.Spec.Members[0].Hostname = "a-very-long-hostname-that-does-not-fit.infra.example.com"
	p.Spec.Members[0].SSH.KeyFile = "/home/operator/.ssh/id_ed25519_for_the_lab"
	m := withPlan(t, p, Options{})
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	press(m, "<right>", "<right>")
	mustContain(t, view(m), "  hostname: a-very-long-hostname-that-does-not-fit.infra.example.com")
	press(m, "<left>", "<left>")
	for _, size := range []tea.WindowSizeMsg{{Width: 80, Height: 24}, {Width: 120, Height: 40}, {Width: 80, Height: 24}} {
		m.Update(size)
		for _, scr := range []string{"Hosts", "Bootstrap", "TLS", "Review"} {
			v := m.View()
			lines := strings.Split(v, "\n")
			if len(lines) > size.Height {
				t.Fatalf("%s at %dx%d: %d lines", scr, size.Width, size.Height, len(lines))
			}
			for _, l := range lines {
				if w := ansi.StringWidth(l); w > size.Width {
					t.Fatalf("%s at %dx%d: line of %d columns: %q", scr, size.Width, size.Height, w, l)
				}
			}
			if !strings.Contains(v, "q quit") {
				t.Fatalf("%s: no key help:\n%s", scr, v)
			}
			press(m, "n")
		}
		press(m, "<esc>", "<esc>", "<esc>")
	}
}

// Keys typed faster than they are read come as one message; each counts.
func TestCoalescedKeys(t *testing.T) {
	m := withPlan(t, threeHosts(), Options{})
	m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("nnn")})
	if m.Screen() != "Review" {
		t.Fatalf("screen %s", m.Screen())
	}
	m = withPlan(t, newPlan("c"), Options{})
	m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("a")})
	m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("infra0")})
	press(m, "<enter>")
	if got := m.Plan().Spec.Members[0].Name; got != "infra0" {
		t.Fatalf("name %q", got)
	}
}

// Self-signed TLS: the review issues the CA and certificates through the
// hook and judges the plan again.
func TestReviewIssuesCertificates(t *testing.T) {
	p := threeHosts()
	p.Spec.TLS = plan.TLS{Mode: plan.TLSSelfSigned, Dir: "pki"}
	var gotPlan, gotDir string
	m := withPlan(t, p, Options{IssueCertificates: func(planPath, dir string) (string, error) {
		gotPlan, gotDir = planPath, dir
		return "created CA \"c\" in pki\nwrote infra0-peer.crt", nil
	}})
	press(m, "n", "n", "n")
	mustContain(t, view(m), "c create CA & certs")
	press(m, "c")
	if gotPlan != "plan.yaml" || gotDir != "pki" {
		t.Fatalf("hook got %q %q", gotPlan, gotDir)
	}
	if _, err := plan.Load("plan.yaml"); err != nil {
		t.Fatalf("plan not saved first: %v", err)
	}
	mustContain(t, view(m), "certificates ready in pki", "Certificates:", "wrote infra0-peer.crt")
	// Without self-signed TLS the key is not offered.
	m = withPlan(t, threeHosts(), Options{IssueCertificates: func(string, string) (string, error) { t.Fatal("called"); return "", nil }})
	press(m, "n", "n", "n", "c")
	mustNotContain(t, view(m), "create CA")
}

// fakeResolver publishes some of the records.
type fakeResolver struct {
	srv   map[string][]*net.SRV
	hosts map[string][]string
}

func (f fakeResolver) LookupSRV(_ context.Context, _, _, name string) (string, []*net.SRV, error) {
	if r, ok := f.srv[name]; ok {
		return name, r, nil
	}
	return "", nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (f fakeResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	if r, ok := f.hosts[host]; ok {
		return r, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func TestDNSLiveCheck(t *testing.T) {
	p := threeHosts()
	for i := range p.Spec.Members {
		p.Spec.Members[i].Hostname = p.Spec.Members[i].Name + ".example.com"
	}
	res := fakeResolver{
		srv: map[string][]*net.SRV{"_etcd-server._tcp.example.com.": {
			{Target: "infra0.example.com.", Port: 2380}, {Target: "infra1.example.com.", Port: 2380}, {Target: "infra2.example.com.", Port: 2380}}},
		hosts: map[string][]string{"infra0.example.com": {"10.0.1.10"}, "infra1.example.com": {"10.0.1.99"}},
	}
	m := withPlan(t, p, Options{Resolver: res})
	press(m, "n", "<down>", "<right>", "<right>", "<down>", "e", "example.com", "<enter>")
	mustContain(t, view(m), "press c to look them up now", "c check DNS live")
	_, cmd := m.Update(keys("c")[0])
	mustContain(t, view(m), "looking up the records")
	m.Update(cmd())
	mustContain(t, view(m),
		"✓ SRV  _etcd-server._tcp.example.com. infra0.example.com.:2380",
		"✗ missing: looking up _etcd-client._tcp.example.com. failed (no such name)",
		"✓ A    infra0.example.com 10.0.1.10",
		"✗ infra1.example.com resolves to 10.0.1.99, not to infra1's address 10.0.1.11",
		"✗ missing: infra2.example.com does not resolve (no such name)")
	// A change to the answers drops the stale check.
	press(m, "e", "<ctrl+u>", "example.org", "<enter>")
	mustNotContain(t, view(m), "Live check")
}

// Colours follow NO_COLOR: the same terminal gets colour sequences without
// it and none with it, while the markers (">", "(•)", "✗") stay.
func TestNoColor(t *testing.T) {
	t.Setenv("TERM", "xterm-256color")
	t.Setenv("COLORTERM", "")
	t.Setenv("CLICOLOR_FORCE", "")
	render := func() string {
		r := lipgloss.NewRenderer(io.Discard, termenv.WithTTY(true))
		m := New(Options{Renderer: r, Sandbox: sandboxPlan})
		m.Update(tea.WindowSizeMsg{Width: 100, Height: 30})
		return m.View()
	}
	t.Setenv("NO_COLOR", "")
	if v := render(); !strings.Contains(v, "\x1b[") {
		t.Fatalf("no colours on a colour terminal: %q", v)
	}
	t.Setenv("NO_COLOR", "1")
	v := render()
	if strings.Contains(v, "\x1b[") {
		t.Fatalf("colours despite NO_COLOR: %q", v)
	}
	mustContain(t, v, "> Local sandbox")
}

// Every screen fits 80x24, the apply and done screens included.
func TestSmallWindowAllScreens(t *testing.T) {
	m := atReview(t, &fakeApplier{keys: []HostKey{{Member: "member0", Host: "h", KeyType: "ssh-ed25519", Fingerprint: "SHA256:x"}}})
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
	check("review")
	_, cmd := m.Update(keys("a")[0])
	run(m, cmd)
	check("host keys")
	m.cur = scrApply
	m.apply.init(m)
	defer m.apply.cancel()
	for i := 0; i < 60; i++ {
		m.Update(applyEventMsg{Event{Host: fmt.Sprintf("member%d", i%3), Step: "start", State: StepRunning, Progress: 0.5,
			Log: []string{strings.Repeat("a very long log line ", 10)}}, true, m.apply.run})
	}
	m.Update(statusMsg{healthyStatus(), true, m.apply.run})
	check("apply")
	m.goTo(scrDone)
	check("done")
}

// A discovery token from a running cluster, sized for the hosts.
func TestDiscoveryToken(t *testing.T) {
	m := withPlan(t, threeHosts(), Options{Applier: &fakeApplier{}})
	press(m, "n", "<down>", "<right>", "<down>", "<down>", "e", "http://10.0.0.5:2379", "<enter>")
	mustContain(t, view(m), "t create token")
	_, cmd := m.Update(keys("t")[0])
	m.Update(cmd())
	if got := m.Plan().Spec.Bootstrap.Discovery.URL; got != "http://10.0.0.5:2379/v2/keys/_etcd/registry/tok3" {
		t.Fatalf("discovery url %q", got)
	}
	mustContain(t, view(m), "created the discovery token", "Discovery URL    http://10.0.0.5:2379/v2/keys/_etcd/registry/tok3")
	// Without a capable applier the field is not offered.
	m = withPlan(t, threeHosts(), Options{})
	press(m, "n", "<down>", "<right>")
	mustNotContain(t, view(m), "new token")
}

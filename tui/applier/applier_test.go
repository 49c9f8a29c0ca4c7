package applier

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"etcdctl-wizard/certs"
	"etcdctl-wizard/node/nodetest"
	"etcdctl-wizard/plan"
	"etcdctl-wizard/remote"
	"etcdctl-wizard/remote/executor"
	"etcdctl-wizard/tui"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"
	gliderssh "github.com/gliderlabs/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func signer(t *testing.T) (ssh.Signer, ed25519.PrivateKey) {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return s, k
}

// sshServer is an in-process SSH server that lets any key in.
func sshServer(t *testing.T, hostKey ssh.Signer) (string, int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &gliderssh.Server{
		Handler:          func(s gliderssh.Session) { s.Exit(0) },
		PublicKeyHandler: func(gliderssh.Context, gliderssh.PublicKey) bool { return true },
	}
	srv.AddHostKey(hostKey)
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	addr := l.Addr().(*net.TCPAddr)
	return addr.IP.String(), addr.Port
}

func TestHostKeysUnknownChangedKnown(t *testing.T) {
	dir := t.TempDir()
	hostKey, _ := signer(t)
	host, port := sshServer(t, hostKey)
	_, clientKey := signer(t)
	block, err := ssh.MarshalPrivateKey(clientKey, "")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "id_test")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	known := filepath.Join(dir, "known_hosts")
	p := &plan.Plan{Metadata: plan.Metadata{Name: "c"}, Spec: plan.Spec{Members: []plan.Member{
		{Name: "infra0", IP: "10.0.1.10", SSH: plan.SSH{Host: host, Port: port, User: "root", KeyFile: keyFile}},
		{Name: "local0", IP: "127.0.0.1", Transport: plan.TransportLocal},
	}}}
	t.Setenv("SSH_AUTH_SOCK", "")
	a := New(Config{KnownHosts: known, SSHConfig: "none", ConnectTimeout: 5 * time.Second})
	ctx := context.Background()

	// Unknown: reported, not trusted, known_hosts untouched.
	keys, err := a.HostKeys(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	want := tui.HostKey{Member: "infra0", Host: knownhosts.Normalize(net.JoinHostPort(host, fmt.Sprint(port))), KeyType: "ssh-ed25519",
		Fingerprint: ssh.FingerprintSHA256(hostKey.PublicKey())}
	if len(keys) != 1 || keys[0] != want {
		t.Fatalf("keys %+v, want %+v", keys, want)
	}
	if _, err := os.Stat(known); err == nil {
		if data, _ := os.ReadFile(known); len(strings.TrimSpace(string(data))) > 0 {
			t.Fatalf("known_hosts written before acceptance:\n%s", data)
		}
	}

	// Changed: another key on record.
	other, _ := signer(t)
	line := knownhosts.Line([]string{want.Host}, other.PublicKey())
	if err := os.WriteFile(known, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err = a.HostKeys(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || !keys[0].Changed || !strings.Contains(keys[0].OldFingerprint, ssh.FingerprintSHA256(other.PublicKey())) ||
		!strings.Contains(keys[0].Fingerprint, want.Fingerprint) {
		t.Fatalf("keys %+v", keys)
	}

	// Known: nothing to decide.
	line = knownhosts.Line([]string{want.Host}, hostKey.PublicKey())
	if err := os.WriteFile(known, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if keys, err = a.HostKeys(ctx, p); err != nil || len(keys) != 0 {
		t.Fatalf("keys %+v, %v", keys, err)
	}

	// Unreachable: an error naming the member.
	p.Spec.Members[0].SSH.Port = port + 1
	if _, err := a.HostKeys(ctx, p); err == nil || !strings.Contains(err.Error(), "infra0") {
		t.Fatalf("unreachable host: %v", err)
	}
}

func TestConvertEvents(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		in        executor.Event
		want      tui.Event
		droppable bool
	}{
		{executor.Event{Host: "m0", Step: "binary", State: executor.StateProgress, Progress: &executor.Progress{Done: 25, Total: 100}, Time: now},
			tui.Event{Host: "m0", Step: "binary", State: tui.StepRunning, Progress: 0.25, Time: now}, true},
		{executor.Event{Host: "m0", Step: "env", State: executor.StateSkipped, Time: now},
			tui.Event{Host: "m0", Step: "env", State: tui.StepSkipped, Progress: -1, Time: now}, false},
		{executor.Event{Host: "m1", Step: "start", State: executor.StateFailed, Err: "exited\nlog line", Time: now},
			tui.Event{Host: "m1", Step: "start", State: tui.StepFailed, Progress: -1, Log: []string{"exited", "log line"}, Err: errors.New("exited\nlog line"), Time: now}, false},
		{executor.Event{Host: "m1", Step: "preflight", State: executor.StateWarning, Err: "clock skew 3s", Time: now},
			tui.Event{Host: "m1", Progress: -1, Log: []string{"warning: preflight: clock skew 3s"}, Time: now}, false},
		{executor.Event{Step: "apply", State: executor.StateDone, Message: "cluster c healthy", Time: now},
			tui.Event{Step: "apply", State: tui.StepDone, Progress: -1, Log: []string{"apply: cluster c healthy"}, Time: now}, false},
	} {
		got, droppable := convert(c.in)
		if fmt.Sprint(got) != fmt.Sprint(c.want) || droppable != c.droppable {
			t.Errorf("convert(%+v) = %+v %v, want %+v %v", c.in, got, droppable, c.want, c.droppable)
		}
	}
}

// localPlan is a sandbox-like plan on free ports, with the etcd-node built
// for it and a reset at the end of the test.
func localPlan(t *testing.T, name string) (*plan.Plan, *Applier, string) {
	t.Helper()
	dir := t.TempDir()
	node := filepath.Join(dir, "etcd-node")
	if out, err := exec.Command("go", "build", "-o", node, "etcdctl-wizard/cmd/etcd-node").CombinedOutput(); err != nil {
		t.Fatalf("build etcd-node: %v\n%s", err, out)
	}
	base := nodetest.SandboxBasePort(t)
	dd := ""
	p := &plan.Plan{APIVersion: plan.APIVersion, Kind: plan.KindCluster, Metadata: plan.Metadata{Name: name},
		Spec: plan.Spec{Node: plan.Node{DataDir: &dd, Listen: plan.ListenIP}}}
	for i := 0; i < 3; i++ {
		p.Spec.Members = append(p.Spec.Members, plan.Member{Name: fmt.Sprintf("member%d", i), IP: "127.0.0.1",
			ClientPort: base + 100*i, PeerPort: base + 100*i + 1, Transport: plan.TransportLocal})
	}
	a := New(Config{StateDir: filepath.Join(dir, "state"), KnownHosts: filepath.Join(dir, "known_hosts"), SSHConfig: "none",
		NodeBinary: func(string) (string, error) { return node, nil }, StatusInterval: 200 * time.Millisecond})
	t.Cleanup(func() {
		if _, err := executor.Reset(context.Background(), p, a.options(dir, nil)); err != nil {
			t.Errorf("reset: %v", err)
		}
	})
	return p, a, dir
}

// The real apply of a local 3-member plan through the adapter: events up to
// the final one, then a healthy cluster with a leader.
func TestApplyAndStatusLocal(t *testing.T) {
	p, a, dir := localPlan(t, "tui-local")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var final *tui.Event
	steps := map[string]bool{}
	for ev := range a.Apply(ctx, p, dir, nil) {
		if ev.Final {
			final = &ev
			continue
		}
		if ev.Host != "" {
			steps[ev.Host] = true
		}
	}
	if final == nil || final.Err != nil {
		t.Fatalf("final event %+v", final)
	}
	if len(steps) != 3 {
		t.Fatalf("events for hosts %v", steps)
	}
	for st := range a.Status(ctx, p, dir) {
		healthy := 0
		for _, m := range st.Members {
			if m.Healthy {
				healthy++
			}
		}
		if healthy == 3 && st.Leader != "" && st.Term > 0 {
			lines, err := a.LogTail(ctx, p, dir, "member1", 5)
			if err != nil || len(lines) == 0 || !strings.Contains(lines[len(lines)-1], `"level"`) {
				t.Fatalf("log tail: %v %q", err, lines)
			}
			// The running cluster is a discovery service for the next one.
			service := fmt.Sprintf("http://127.0.0.1:%d", p.Spec.Members[0].ClientPort)
			u, err := a.NewDiscoveryURL(ctx, service, 5)
			if err != nil || !strings.HasPrefix(u, service+"/v2/keys/") {
				t.Fatalf("discovery url %q: %v", u, err)
			}
			resp, err := http.Get(u + "/_config/size")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(body), `"value":"5"`) {
				t.Fatalf("%s/_config/size: %s", u, body)
			}
			cancel()
			return
		}
	}
	t.Fatal("status ended before 3 healthy members and a leader")
}

// The wizard's sandbox flow with the real executor, from the start screen
// to the done screen.
func TestWizardSandboxToDone(t *testing.T) {
	p, a, dir := localPlan(t, "sandbox")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := tui.New(tui.Options{Applier: a, Context: ctx, Sandbox: func() (*plan.Plan, string, error) {
		return p, filepath.Join(dir, "plan.yaml"), nil
	}})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(100, 30))
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("a")})
	var seen bytes.Buffer
	teatest.WaitFor(t, io.TeeReader(tm.Output(), &seen), func([]byte) bool {
		s := seen.String()
		return strings.Contains(s, "sandbox is running with 3 members") && strings.Contains(s, "Cluster: leader member")
	}, teatest.WithDuration(90*time.Second), teatest.WithCheckInterval(50*time.Millisecond))
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")})
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(*tui.Model)
	v := fm.View()
	if fm.Screen() != "Done" || !strings.Contains(v, "export ETCDCTL_ENDPOINTS=http://127.0.0.1:") {
		t.Fatalf("screen %s:\n%s", fm.Screen(), v)
	}
	if _, err := plan.Load(filepath.Join(dir, "plan.yaml")); err != nil {
		t.Fatalf("the plan was not saved before the apply: %v", err)
	}
}

// A busy port stops the run at the preflight, before any change: the
// wizard names the host, the step and the cause, and says what to do.
func TestWizardPreflightFailure(t *testing.T) {
	p, a, dir := localPlan(t, "busy")
	busy, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p.Spec.Members[1].ClientPort))
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := tui.New(tui.Options{Applier: a, Context: ctx, Sandbox: func() (*plan.Plan, string, error) {
		return p, filepath.Join(dir, "plan.yaml"), nil
	}})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(100, 30))
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("a")})
	var seen bytes.Buffer
	teatest.WaitFor(t, io.TeeReader(tm.Output(), &seen), func([]byte) bool {
		return strings.Contains(seen.String(), "Next: fix the cause above")
	}, teatest.WithDuration(60*time.Second), teatest.WithCheckInterval(50*time.Millisecond))
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")})
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(*tui.Model)
	v := fm.View()
	for _, want := range []string{`apply failed on member1 at step "preflight"`, "preflight failed, no host was changed",
		fmt.Sprint(p.Spec.Members[1].ClientPort)} {
		if !strings.Contains(v, want) {
			t.Fatalf("the failure screen lacks %q:\n%s", want, v)
		}
	}
}

func TestNewDiscoveryURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path != "/new":
			http.NotFound(w, r)
		case r.URL.Query().Get("size") == "0":
			http.Error(w, "invalid size", http.StatusBadRequest)
		case r.URL.Query().Get("size") == "9":
			fmt.Fprint(w, "<html>not a url</html>")
		default:
			fmt.Fprintf(w, "http://%s/v2/keys/_etcd/registry/abc?size=%s\n", r.Host, r.URL.Query().Get("size"))
		}
	}))
	defer srv.Close()
	a := New(Config{})
	ctx := context.Background()
	for _, service := range []string{srv.URL, srv.URL + "/", srv.URL + "/new"} {
		u, err := a.NewDiscoveryURL(ctx, service, 3)
		if err != nil || u != srv.URL+"/v2/keys/_etcd/registry/abc?size=3" {
			t.Fatalf("%s: %q %v", service, u, err)
		}
	}
	for _, c := range []struct {
		service string
		size    int
		want    string
	}{
		{srv.URL, 0, "400 Bad Request: invalid size"},
		{srv.URL, 9, "not a discovery URL"},
		{"10.0.0.5:2379", 3, "give its URL"},
	} {
		if _, err := a.NewDiscoveryURL(ctx, c.service, c.size); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s size %d: %v, want %q", c.service, c.size, err, c.want)
		}
	}
}

// An encrypted key: the host-key scan stops at the passphrase (the key was
// checked by then) instead of failing; the apply's question is asked once
// and remembered.
func TestEncryptedKeyAndRememberedSecrets(t *testing.T) {
	dir := t.TempDir()
	hostKey, _ := signer(t)
	host, port := sshServer(t, hostKey)
	_, clientKey := signer(t)
	block, err := ssh.MarshalPrivateKeyWithPassphrase(clientKey, "", []byte("pass phrase"))
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "id_enc")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	known := filepath.Join(dir, "known_hosts")
	hp := knownhosts.Normalize(net.JoinHostPort(host, fmt.Sprint(port)))
	if err := os.WriteFile(known, []byte(knownhosts.Line([]string{hp}, hostKey.PublicKey())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSH_AUTH_SOCK", "")
	// Decrypting the key (bcrypt) is slow under the race detector.
	a := New(Config{KnownHosts: known, SSHConfig: "none", ConnectTimeout: time.Minute})
	p := &plan.Plan{Metadata: plan.Metadata{Name: "c"}, Spec: plan.Spec{Members: []plan.Member{
		{Name: "infra0", IP: "10.0.1.10", SSH: plan.SSH{Host: host, Port: port, User: "root", KeyFile: keyFile}}}}}
	if keys, err := a.HostKeys(context.Background(), p); err != nil || len(keys) != 0 {
		t.Fatalf("keys %+v, %v", keys, err)
	}
	// The apply's connection asks for the passphrase, once.
	asked := 0
	hosts, err := plan.Build(p)
	if err != nil {
		t.Fatal(err)
	}
	ask := func(member, prompt string) ([]byte, error) {
		asked++
		if member != "infra0" || prompt != "passphrase of "+keyFile {
			t.Errorf("asked %s %q", member, prompt)
		}
		return []byte("pass phrase"), nil
	}
	kh := &remote.KnownHosts{Path: known}
	for i := 0; i < 2; i++ {
		tr, err := a.connect(kh, ask)(context.Background(), hosts[0])
		if err != nil {
			t.Fatal(err)
		}
		tr.Close()
	}
	if asked != 1 {
		t.Fatalf("asked %d times", asked)
	}
	// Status and logs use the remembered answer without asking.
	tr, err := a.connect(kh, nil)(context.Background(), hosts[0])
	if err != nil {
		t.Fatal(err)
	}
	tr.Close()
}

// Certificates that the members would refuse (issued for another address)
// stop the wizard's apply in its preflight, before any member is started:
// the check belongs to the executor, since the wizard, unlike the CLI's
// apply, does not issue certificates on its way.
func TestApplyRefusesCertificatesThatDoNotFit(t *testing.T) {
	p, a, dir := localPlan(t, "bad-certs")
	p.Spec.TLS = plan.TLS{Mode: plan.TLSSelfSigned, Dir: "pki"}
	pki := filepath.Join(dir, "pki")
	ca, _, err := certs.LoadOrCreateCA(pki, certs.CAOptions{Name: p.Metadata.Name})
	if err != nil {
		t.Fatal(err)
	}
	wrong := []net.IP{net.ParseIP("10.9.9.9")}
	for _, m := range p.Spec.Members {
		for _, r := range []struct {
			kind certs.Kind
			base string
		}{{certs.KindPeer, m.Name + "-peer"}, {certs.KindServer, m.Name + "-client"}} {
			is, err := certs.Issue(ca, certs.Request{Kind: r.kind, Name: m.Name, IPs: wrong})
			if err != nil {
				t.Fatal(err)
			}
			if err := certs.WriteIssued(pki, r.base, is); err != nil {
				t.Fatal(err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var final *tui.Event
	for ev := range a.Apply(ctx, p, dir, nil) {
		if ev.Final {
			final = &ev
		}
		if ev.Host != "" && ev.Step == plan.StepStart {
			t.Errorf("%s reached the start step", ev.Host)
		}
	}
	var pe *executor.PreflightError
	if final == nil || !errors.As(final.Err, &pe) || !strings.Contains(final.Err.Error(), "member0-peer.crt") ||
		!strings.Contains(final.Err.Error(), "does not cover IP 127.0.0.1") {
		t.Fatalf("final event %+v", final)
	}
}

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"etcdctl-wizard/node/nodetest"
	"etcdctl-wizard/remote/executor"
	"etcdctl-wizard/remote/lab"
)

// nodeBinary is $ETCDCTL_WIZARD_NODE_BINARY (e.g. make's bin/etcd-node), or
// etcd-node built from the source tree.
func nodeBinary(t testing.TB) string {
	if p := os.Getenv("ETCDCTL_WIZARD_NODE_BINARY"); p != "" {
		return p
	}
	return nodetest.BuildNode(t)
}

func TestApplyRefusesWithoutTerminalOrYes(t *testing.T) {
	for _, args := range [][]string{
		{"apply", "-f", filepath.Join(plans, "static.yaml")},
		{"reset", "-f", filepath.Join(plans, "static.yaml")},
	} {
		code, _, stderr := runCLI(t, "", args...)
		if code != 1 || !strings.Contains(stderr, "stdin is not a terminal: pass --yes") {
			t.Errorf("%v: exit %d, %q", args, code, stderr)
		}
	}
	code, _, stderr := runCLI(t, "", "apply", "--yes", "-f", filepath.Join(plans, "static.yaml"), "-o", "xml")
	if code != 1 || !strings.Contains(stderr, "use text or json") {
		t.Errorf("bad output: exit %d, %q", code, stderr)
	}
	code, _, stderr = runCLI(t, "", "apply", "--yes", "-f", filepath.Join(t.TempDir(), "missing.yaml"))
	if code != 1 || !strings.Contains(stderr, "missing.yaml") {
		t.Errorf("missing plan: exit %d, %q", code, stderr)
	}
}

// freeBase finds a sandbox base port whose six ports are free.
func freeBase(t *testing.T) int {
	for try := 0; try < 50; try++ {
		base := nodetest.ReservePorts(t, 1)[0]
		if base+201 > 65535 {
			continue
		}
		ok := true
		for _, p := range []int{base, base + 1, base + 100, base + 101, base + 200, base + 201} {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free sandbox ports")
	return 0
}

func TestSandboxUpStatusDown(t *testing.T) {
	node := nodeBinary(t)
	state := t.TempDir()
	base := freeBase(t)
	common := []string{"--state-dir", state, "--node-binary", node, "--base-port", strconv.Itoa(base)}
	t.Cleanup(func() { runCLI(t, "", append([]string{"sandbox", "down"}, common...)...) })
	code, stdout, stderr := runCLI(t, "", append([]string{"sandbox", "up", "-o", "json"}, common...)...)
	if code != 0 {
		t.Fatalf("sandbox up: exit %d\n%s\n%s", code, stdout, stderr)
	}
	var last executor.Event
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
			t.Fatalf("not a JSON event line: %q", sc.Text())
		}
	}
	if last.Step != "apply" || last.State != executor.StateDone {
		t.Fatalf("last event %+v", last)
	}
	code, stdout, stderr = runCLI(t, "", "sandbox", "status", "--state-dir", state)
	if code != 0 || strings.Count(stdout, "  healthy") != 3 || !strings.Contains(stdout, "cluster sandbox: healthy, leader member") {
		t.Fatalf("sandbox status: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = runCLI(t, "", "sandbox", "down", "--state-dir", state)
	if code != 0 {
		t.Fatalf("sandbox down: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if ents, _ := os.ReadDir(filepath.Join(state, "sandbox")); len(ents) != 0 {
		t.Errorf("left in the sandbox folder: %v", ents)
	}
	for _, p := range []int{base, base + 100, base + 200} {
		if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err != nil {
			t.Errorf("port %d still in use after down: %v", p, err)
		} else {
			l.Close()
		}
	}
}

// TestLabCLI runs the wizard's binary inside the lab: apply (accepting the
// unknown host keys by fingerprint), status, logs, reset.
func TestLabCLI(t *testing.T) {
	node := nodeBinary(t)
	dir := t.TempDir()
	wizard := filepath.Join(dir, "etcdctl-wizard")
	if out, err := exec.Command("go", "build", "-o", wizard, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	l := lab.Start(t, 3)
	for _, h := range l.Hosts {
		h.MustExec(t, ": > /root/.bashrc") // the machine's starts pyenv: slow
	}
	planFile := filepath.Join(dir, "plan.yaml")
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: etcdctl-wizard/v1\nkind: Cluster\nmetadata:\n  name: etcd-cluster-1\nspec:\n  tls:\n    mode: none\n  node:\n    dataDir: \"\"\n  members:\n")
	for _, h := range l.Hosts {
		fmt.Fprintf(&b, "    - name: %s\n      ip: %s\n      ssh:\n        keyFile: %s\n", h.Name, h.IP, l.ClientKey)
	}
	if err := os.WriteFile(planFile, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	known := filepath.Join(dir, "known_hosts") // empty: every key is unknown
	common := []string{"-f", planFile, "--state-dir", filepath.Join(dir, "state"), "--known-hosts", known, "--ssh-config", "none"}
	wiz := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := l.Command(ctx, wizard, args...)
		cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK=")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// Unknown keys and no terminal: refused, naming the fingerprint.
	out, err := wiz(append([]string{"apply", "--yes", "--node-binary", node}, common...)...)
	if err == nil || !strings.Contains(out, "preflight failed, no host was changed") {
		t.Fatalf("apply with unknown host keys: %v\n%s", err, out)
	}
	// The key the host presents, read on the host itself.
	var accept []string
	for _, h := range l.Hosts {
		fp := ""
		for _, line := range strings.Split(h.MustExec(t, "for k in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -l -E sha256 -f $k; done"), "\n") {
			if f := strings.Fields(line); len(f) > 1 && strings.Contains(out, "--accept-host-key "+h.IP+"="+f[1]) {
				fp = f[1]
			}
		}
		if fp == "" {
			t.Fatalf("the refusal does not name a key of %s:\n%s", h.Name, out)
		}
		accept = append(accept, "--accept-host-key", h.IP+"="+fp)
	}
	out, err = wiz(append(append([]string{"apply", "--yes", "--node-binary", node}, accept...), common...)...)
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	if !strings.Contains(out, "cluster-health  done: 3 members healthy") {
		t.Errorf("apply output:\n%s", out)
	}
	t.Logf("apply:\n%s", out)
	out, err = wiz(append([]string{"status"}, common...)...)
	if err != nil || strings.Count(out, "  healthy") != 3 {
		t.Fatalf("status: %v\n%s", err, out)
	}
	t.Logf("status:\n%s", out)
	out, err = wiz(append([]string{"logs", "infra1", "-n", "5"}, common...)...)
	if err != nil || strings.Count(strings.TrimSpace(out), "\n") != 4 || !strings.Contains(out, `"level"`) {
		t.Fatalf("logs: %v\n%s", err, out)
	}
	out, err = wiz(append([]string{"logs", "-n", "2"}, common...)...)
	if err != nil || strings.Count(out, "infra0 | ") != 2 || strings.Count(out, "infra1 | ") != 2 || strings.Count(out, "infra2 | ") != 2 {
		t.Fatalf("logs of all members: %v\n%s", err, out)
	}
	out, err = wiz(append([]string{"reset", "--yes"}, common...)...)
	if err != nil || !strings.Contains(out, "3 hosts reset") {
		t.Fatalf("reset: %v\n%s", err, out)
	}
	for _, h := range l.Hosts {
		if out := h.MustExec(t, "ls -A /usr/local/bin /var/lib /etc | grep -E 'etcd' || true"); strings.TrimSpace(out) != "" {
			t.Errorf("%s after reset: %s", h.Name, out)
		}
	}
}

// TestLabCLISelfSigned applies a plan with the wizard's CA: apply issues the
// member certificates, installs them (keys 0600, never the CA key), and
// upstream etcdctl inside the lab talks to the cluster with the CA and the
// wizard's client certificate.
func TestLabCLISelfSigned(t *testing.T) {
	node := nodeBinary(t)
	_, etcdctl := nodetest.Upstream(t)
	dir := t.TempDir()
	wizard := filepath.Join(dir, "etcdctl-wizard")
	if out, err := exec.Command("go", "build", "-o", wizard, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	l := lab.Start(t, 3)
	for _, h := range l.Hosts {
		h.MustExec(t, ": > /root/.bashrc") // the machine's starts pyenv: slow
	}
	planFile := filepath.Join(dir, "plan.yaml")
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: etcdctl-wizard/v1\nkind: Cluster\nmetadata:\n  name: etcd-cluster-1\nspec:\n  tls:\n    mode: self-signed\n    dir: pki\n  node:\n    dataDir: \"\"\n  members:\n")
	for _, h := range l.Hosts {
		fmt.Fprintf(&b, "    - name: %s\n      ip: %s\n      ssh:\n        keyFile: %s\n", h.Name, h.IP, l.ClientKey)
	}
	if err := os.WriteFile(planFile, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	common := []string{"-f", planFile, "--state-dir", filepath.Join(dir, "state"), "--known-hosts", l.KnownHosts, "--ssh-config", "none"}
	wiz := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := l.Command(ctx, wizard, args...)
		cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK=")
		cmd.Dir = dir // spec.tls.dir is relative to it
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := wiz(append([]string{"apply", "--yes", "--node-binary", node}, common...)...)
	if err != nil || !strings.Contains(out, "3 members healthy") {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	pki := filepath.Join(dir, "pki")
	for _, h := range l.Hosts {
		modes := h.MustExec(t, "cd /etc/etcd/pki && stat -c '%n %a' *")
		for _, want := range []string{h.Name + "-client.key 600", h.Name + "-peer.key 600", "ca.crt 644", h.Name + "-peer.crt 644"} {
			if !strings.Contains(modes, want) {
				t.Errorf("%s: want %q in\n%s", h.Name, want, modes)
			}
		}
		if out := h.MustExec(t, "grep -rl 'PRIVATE KEY' /etc/etcd/pki | sort"); strings.TrimSpace(out) != "/etc/etcd/pki/"+h.Name+"-client.key\n/etc/etcd/pki/"+h.Name+"-peer.key" {
			t.Errorf("%s: private keys on the host: %s", h.Name, out)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hc, err := l.Command(ctx, etcdctl, "--endpoints=https://10.0.1.10:2379,https://10.0.1.11:2379,https://10.0.1.12:2379",
		"--cacert", filepath.Join(pki, "ca.crt"), "--cert", filepath.Join(pki, "etcdctl-wizard.crt"), "--key", filepath.Join(pki, "etcdctl-wizard.key"),
		"endpoint", "health").CombinedOutput()
	if err != nil || strings.Count(string(hc), "is healthy") != 3 {
		t.Fatalf("etcdctl endpoint health: %v\n%s", err, hc)
	}
	out, err = wiz(append([]string{"status"}, common...)...)
	if err != nil || strings.Count(out, "  healthy") != 3 {
		t.Fatalf("status: %v\n%s", err, out)
	}
	// Re-apply: certificates kept, nothing uploaded, nothing restarted.
	out, err = wiz(append([]string{"apply", "--yes", "--node-binary", node}, common...)...)
	if err != nil || !strings.Contains(out, "0 steps changed, 0 files uploaded, 0 members (re)started") {
		t.Fatalf("re-apply: %v\n%s", err, out)
	}
	out, err = wiz(append([]string{"reset", "--yes"}, common...)...)
	if err != nil {
		t.Fatalf("reset: %v\n%s", err, out)
	}
	for _, h := range l.Hosts {
		if out := h.MustExec(t, "ls -A /etc /var/lib /usr/local/bin | grep etcd || true"); strings.TrimSpace(out) != "" {
			t.Errorf("%s after reset: %s", h.Name, out)
		}
	}
}

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"etcdctl-wizard/remote/lab"
)

// openPTY returns a pseudo-terminal pair.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// TestLabPrompts answers the terminal's questions: yes to each unknown host
// key (shown with its SHA256 fingerprint), then no to the apply itself.
func TestLabPrompts(t *testing.T) {
	dir := t.TempDir()
	wizard := filepath.Join(dir, "etcdctl-wizard")
	if out, err := exec.Command("go", "build", "-o", wizard, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	l := lab.Start(t, 3)
	planFile := filepath.Join(dir, "plan.yaml")
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: etcdctl-wizard/v1\nkind: Cluster\nmetadata:\n  name: etcd-cluster-1\nspec:\n  node:\n    dataDir: \"\"\n  members:\n")
	for _, h := range l.Hosts {
		fmt.Fprintf(&b, "    - name: %s\n      ip: %s\n      ssh:\n        keyFile: %s\n", h.Name, h.IP, l.ClientKey)
	}
	if err := os.WriteFile(planFile, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	known := filepath.Join(dir, "known_hosts")
	master, slave := openPTY(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := l.Command(ctx, wizard, "apply", "-f", planFile, "--state-dir", filepath.Join(dir, "state"), "--known-hosts", known,
		"--ssh-config", "none", "--node-binary", wizard) // never sent: the apply is declined
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK=")
	cmd.Stdin, cmd.Stderr = slave, slave
	var stdout strings.Builder
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var mu sync.Mutex
	var screen strings.Builder
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			mu.Lock()
			screen.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	answered := 0
	var err error
	deadline := time.Now().Add(time.Minute)
loop:
	for time.Now().Before(deadline) {
		select {
		case err = <-exited:
			break loop
		default:
		}
		mu.Lock()
		asked := strings.Count(screen.String(), "[y/N]")
		mu.Unlock()
		if asked > answered {
			answer := "y\n"
			if answered == 3 {
				answer = "n\n" // the apply itself
			}
			master.Write([]byte(answer))
			answered++
			continue
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	out := screen.String()
	mu.Unlock()
	if answered != 4 || err == nil || !strings.Contains(out, "apply cancelled: nothing was changed") {
		t.Fatalf("answered %d questions; exit %v; terminal:\n%s\nstdout:\n%s", answered, err, out, stdout.String())
	}
	for _, h := range l.Hosts {
		if !strings.Contains(out, "The authenticity of host "+h.IP+" can't be established") {
			t.Errorf("no question about %s:\n%s", h.Name, out)
		}
	}
	if !strings.Contains(out, "Apply cluster etcd-cluster-1 to these 3 hosts?") || !strings.Contains(out, "infra1     root@10.0.1.11:22") {
		t.Errorf("no summary before the question:\n%s", out)
	}
	kh, _ := os.ReadFile(known)
	if n := strings.Count(string(kh), "\n"); n != 3 {
		t.Errorf("known_hosts has %d keys:\n%s", n, kh)
	}
	for _, h := range l.Hosts {
		if out := h.MustExec(t, "ls -A /usr/local/bin /etc | grep etcd || true"); strings.TrimSpace(out) != "" {
			t.Errorf("%s was changed: %s", h.Name, out)
		}
	}

	// reset wants the cluster name typed; another answer changes nothing.
	master2, slave2 := openPTY(t)
	cmd = l.Command(ctx, wizard, "reset", "-f", planFile, "--state-dir", filepath.Join(dir, "state"), "--known-hosts", known, "--ssh-config", "none")
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK=")
	cmd.Stdin, cmd.Stderr, cmd.Stdout = slave2, slave2, &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave2.Close()
	var screen2 strings.Builder
	read2 := make(chan struct{})
	go func() {
		defer close(read2)
		buf := make([]byte, 4096)
		for {
			n, err := master2.Read(buf)
			mu.Lock()
			screen2.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	waitForScreen := func(want string) bool {
		for end := time.Now().Add(time.Minute); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			mu.Lock()
			ok := strings.Contains(screen2.String(), want)
			mu.Unlock()
			if ok {
				return true
			}
		}
		return false
	}
	if !waitForScreen("Type the cluster name to confirm: ") {
		cmd.Process.Kill()
		t.Fatalf("no question from reset:\n%s", screen2.String())
	}
	master2.Write([]byte("etcd-cluster-2\n"))
	err = cmd.Wait()
	<-read2
	mu.Lock()
	out = screen2.String()
	mu.Unlock()
	if err == nil || !strings.Contains(out, "reset cancelled: nothing was changed") {
		t.Errorf("reset with the wrong name: %v\n%s", err, out)
	}
}

package remote

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"etcdctl-wizard/remote/lab"
)

// labSSH connects to a lab host as root with the lab's key. The connection
// is always made from inside the lab (lab.Dial): lab addresses must never be
// dialed from the machine's own namespace.
func labSSH(t testing.TB, l *lab.Lab, h *lab.Host, mod ...func(*SSHOptions)) *SSH {
	t.Helper()
	s, err := labDial(t, l, h, mod...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func labDial(t testing.TB, l *lab.Lab, h *lab.Host, mod ...func(*SSHOptions)) (*SSH, error) {
	t.Helper()
	kh := filepath.Join(t.TempDir(), "known_hosts")
	b, err := os.ReadFile(l.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(kh, b, 0o600)
	o := SSHOptions{
		Name: h.Name, Host: h.IP, Port: h.Port, User: "root",
		KeyFiles:   []string{l.ClientKey},
		KnownHosts: &KnownHosts{Path: kh},
		ConfigFile: "none", AgentSocket: "none",
		ConnectTimeout: 20 * time.Second,
	}
	for _, m := range mod {
		m(&o)
	}
	o.Dial = l.Dial
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return DialSSH(ctx, o)
}

func TestLabSSH(t *testing.T) {
	l := lab.Start(t, 3)
	ctx := testCtx(t)

	t.Run("hostname", func(t *testing.T) {
		for i, h := range l.Hosts {
			s := labSSH(t, l, h)
			out, err := Output(ctx, s, Cmd{Command: "hostname"})
			if want := fmt.Sprintf("infra%d\n", i); err != nil || string(out) != want {
				t.Errorf("%s: hostname %q %v", h.Name, out, err)
			}
			b, err := s.ReadFile(ctx, "/etc/hostname")
			if err != nil || string(b) != h.Name+"\n" {
				t.Errorf("%s: /etc/hostname %q %v", h.Name, b, err)
			}
			if _, err := s.ReadFile(ctx, "/etc/nope"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("missing file: %v", err)
			}
		}
	})

	t.Run("upload20MB", func(t *testing.T) {
		h := l.Hosts[0]
		s := labSSH(t, l, h)
		content := randomBytes(t, 20<<20)
		var calls atomic.Int64
		var last atomic.Int64
		f := BytesFile("/usr/local/bin/blob", 0o755, content)
		f.Progress = func(done, total int64) {
			calls.Add(1)
			last.Store(done)
		}
		t0 := time.Now()
		res, err := s.Upload(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		d := time.Since(t0)
		t.Logf("20 MiB to %s in %v (%.0f MB/s)", h.Name, d.Round(time.Millisecond), 20*1.048576/d.Seconds())
		if !res.Changed || res.Sent != 20<<20 || calls.Load() < 20 || last.Load() != 20<<20 {
			t.Errorf("result %+v, %d progress calls, last %d", res, calls.Load(), last.Load())
		}
		got := h.MustExec(t, "sha256sum /usr/local/bin/blob; stat -c '%a %U' /usr/local/bin/blob; ls -a /usr/local/bin")
		if !strings.HasPrefix(got, sha(content)+" ") || !strings.Contains(got, "\n755 root\n") || strings.Contains(got, "etcdctl-wizard-upload") {
			t.Errorf("on the host:\n%s", got)
		}
		res, err = s.Upload(ctx, f)
		if err != nil || res.Changed || res.Sent != 0 {
			t.Errorf("second upload: %+v %v", res, err)
		}
		// Only infra0 has it.
		if out, err := l.Hosts[1].Exec(ctx, "test -e /usr/local/bin/blob"); err == nil {
			t.Errorf("blob on infra1 %s", out)
		}
	})

	t.Run("cutByUnpluggedCable", func(t *testing.T) {
		h := l.Hosts[1]
		// Short keepalives: an unplugged cable sends no reset, only silence.
		s := labSSH(t, l, h, func(o *SSHOptions) { o.KeepaliveInterval = 200 * time.Millisecond; o.KeepaliveCountMax = 3 })
		cutUpload(t, s, h, func() error { return h.SetLink(false) }, func() error { return h.SetLink(true) })
	})

	t.Run("cutByKilledSession", func(t *testing.T) {
		h := l.Hosts[2]
		s := labSSH(t, l, h)
		cutUpload(t, s, h, func() error {
			n, err := h.KillSessions()
			if err == nil && n == 0 {
				err = errors.New("no session to kill")
			}
			return err
		}, func() error { return nil })
	})

	t.Run("hostKeys", func(t *testing.T) {
		if l.Hosts[0].Fingerprint == l.Hosts[1].Fingerprint {
			t.Fatal("two hosts share a host key")
		}
		// infra0's key recorded for infra1's address: a changed key.
		_, err := labDial(t, l, l.Hosts[1], func(o *SSHOptions) {
			b, _ := os.ReadFile(o.KnownHosts.Path)
			line := strings.SplitN(string(b), "\n", 2)[0]
			os.WriteFile(o.KnownHosts.Path, []byte(strings.Replace(line, "10.0.1.10 ", "10.0.1.11 ", 1)+"\n"), 0o600)
		})
		var ce *HostKeyChangedError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), l.Hosts[0].Fingerprint) ||
			!strings.Contains(err.Error(), l.Hosts[1].Fingerprint) {
			t.Fatalf("changed key: %v", err)
		}
		// Unknown, pinned on the command line: accepted and recorded.
		var path string
		s, err := labDial(t, l, l.Hosts[2], func(o *SSHOptions) {
			os.WriteFile(o.KnownHosts.Path, nil, 0o600)
			path = o.KnownHosts.Path
			o.KnownHosts.Confirm = AcceptFingerprints(map[string]string{"infra2": l.Hosts[2].Fingerprint}, nil)
		})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		if b, _ := os.ReadFile(path); !strings.HasPrefix(string(b), "10.0.1.12 ssh-ed25519 ") {
			t.Errorf("recorded %q", b)
		}
	})

	t.Run("sudoNoPasswd", func(t *testing.T) {
		h := l.Hosts[0]
		if err := h.AddUser(ctx, "ops", "", lab.SudoNoPasswd); err != nil {
			t.Fatal(err)
		}
		s := labSSH(t, l, h, func(o *SSHOptions) { o.User = "ops" })
		if out, err := Output(ctx, s, Cmd{Command: "id -un"}); err != nil || string(out) != "ops\n" {
			t.Errorf("as ops: %q %v", out, err)
		}
		if out, err := Output(ctx, s, Cmd{Command: "id -u; cat", Root: true, Stdin: strings.NewReader("in")}); err != nil || string(out) != "0\nin" {
			t.Errorf("as root: %q %v", out, err)
		}
		res, err := s.Upload(ctx, BytesFile("/usr/local/bin/tool", 0o750, []byte("#!/bin/sh\necho tool\n")))
		if err != nil || !res.Changed {
			t.Fatalf("upload through sudo: %+v %v", res, err)
		}
		got := h.MustExec(t, "stat -c '%a %U:%G' /usr/local/bin/tool; /usr/local/bin/tool; ls -A /home/ops/.cache/etcdctl-wizard/uploads")
		if got != "750 root:root\ntool\n" {
			t.Errorf("on the host:\n%s", got)
		}
		if b, err := s.ReadFile(ctx, "/etc/shadow"); err != nil || !strings.Contains(string(b), "root:") {
			t.Errorf("root-only file: %v", err)
		}
		res, err = s.Upload(ctx, File{Path: "/etc/etcd/key.pem", Mode: 0o600, Owner: "ops", Content: strings.NewReader("k"), Size: 1})
		if err != nil || !res.Changed {
			t.Fatalf("owned upload: %+v %v", res, err)
		}
		if got := h.MustExec(t, "stat -c '%a %U' /etc/etcd/key.pem"); got != "600 ops\n" {
			t.Errorf("owner: %q", got)
		}
	})

	t.Run("sudoPassword", func(t *testing.T) {
		h := l.Hosts[1]
		if err := h.AddUser(ctx, "deploy", "pa ss'word", lab.SudoPassword); err != nil {
			t.Fatal(err)
		}
		var asked atomic.Int64
		s := labSSH(t, l, h, func(o *SSHOptions) {
			o.User = "deploy"
			o.SudoPassword = func(string) ([]byte, error) { asked.Add(1); return []byte("pa ss'word"), nil }
		})
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// The password goes to sudo, the rest of stdin to the command.
				out, err := Output(ctx, s, Cmd{Command: "id -u; cat", Root: true, Stdin: strings.NewReader("payload")})
				if err != nil || string(out) != "0\npayload" {
					t.Errorf("as root: %q %v", out, err)
				}
			}()
		}
		wg.Wait()
		if _, err := s.Upload(ctx, BytesFile("/opt/x", 0o644, []byte("x"))); err != nil {
			t.Error(err)
		}
		if asked.Load() != 1 {
			t.Errorf("password asked %d times", asked.Load())
		}

		bad := labSSH(t, l, h, func(o *SSHOptions) {
			o.User = "deploy"
			o.SudoPassword = func(string) ([]byte, error) { return []byte("wrong"), nil }
		})
		if err := bad.Run(ctx, Cmd{Command: "true", Root: true}); err == nil || !strings.Contains(err.Error(), "refused the password") {
			t.Errorf("wrong password: %v", err)
		}
		// No way to ask: a clear error, not a hang.
		none := labSSH(t, l, h, func(o *SSHOptions) { o.User = "deploy" })
		if err := none.Run(ctx, Cmd{Command: "true", Root: true}); err == nil || !strings.Contains(err.Error(), "sudo needs a password") {
			t.Errorf("no password hook: %v", err)
		}
	})

	t.Run("jumpHost", func(t *testing.T) {
		// infra0 is the bastion for infra1: the second hop is dialed by
		// OpenSSH on infra0, inside the lab.
		s := labSSH(t, l, l.Hosts[1], func(o *SSHOptions) { o.JumpHost = "root@" + l.Hosts[0].IP })
		out, err := Output(ctx, s, Cmd{Command: "hostname; echo $SSH_CLIENT"})
		if err != nil || !strings.HasPrefix(string(out), "infra1\n10.0.1.10 ") {
			t.Fatalf("through infra0: %q %v", out, err)
		}
	})

	t.Run("cancelKillsRemoteCommand", func(t *testing.T) {
		h := l.Hosts[2]
		s := labSSH(t, l, h)
		cctx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() { errc <- s.Run(cctx, Cmd{Command: "exec sleep 4242"}) }()
		count := func() string {
			return strings.TrimSpace(h.MustExec(t, "pgrep -f -c -x 'sleep 4242' || true"))
		}
		waitFor(t, "the remote sleep to start", func() bool { return count() == "1" })
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled: %v", err)
		}
		waitFor(t, "the remote sleep to die", func() bool { return count() == "0" })
	})
}

// cutUpload cuts the connection while an upload is a quarter through, checks
// that the upload fails as a lost connection without touching the
// destination, heals the cut, and checks that the next upload on the same
// transport completes.
func cutUpload(t *testing.T, s *SSH, h *lab.Host, cut, heal func() error) {
	ctx := testCtx(t)
	dst := "/usr/local/bin/etcd-node"
	content := randomBytes(t, 20<<20)
	var once sync.Once
	var cutErr error
	f := BytesFile(dst, 0o755, content)
	f.Progress = func(done, total int64) {
		if done >= total/4 {
			once.Do(func() { cutErr = cut() })
		}
	}
	t0 := time.Now()
	_, err := s.Upload(ctx, f)
	if cutErr != nil {
		t.Fatal(cutErr)
	}
	if !errors.Is(err, ErrConnLost) {
		t.Fatalf("upload over a cut connection: %v", err)
	}
	t.Logf("cut noticed after %v: %v", time.Since(t0).Round(time.Millisecond), err)
	if out, err := h.Exec(ctx, "test -e "+dst); err == nil {
		t.Fatalf("destination exists after a cut upload %s", out)
	}
	if err := heal(); err != nil {
		t.Fatal(err)
	}
	f.Progress = nil
	res, err := s.Upload(ctx, f)
	if err != nil || !res.Changed || res.Sent != int64(len(content)) {
		t.Fatalf("upload after the cut: %+v %v", res, err)
	}
	got := h.MustExec(t, "sha256sum "+dst+"; ls -a /usr/local/bin")
	if !strings.HasPrefix(got, sha(content)+" ") || strings.Contains(got, "etcdctl-wizard-upload") {
		t.Errorf("on the host:\n%s", got)
	}
}

// waitFor polls cond until it holds or 20 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkLabUpload measures upload throughput to a lab host over real sshd:
// SFTP with concurrent writes, sha256 on the host, rename.
func BenchmarkLabUpload(b *testing.B) {
	l := lab.Start(b, 1)
	s := labSSH(b, l, l.Hosts[0])
	const size = 64 << 20
	content := randomBytes(b, size)
	ctx := context.Background()
	b.SetBytes(size)
	for i := 0; b.Loop(); i++ {
		content[0] = byte(i) // new content each time, so nothing is skipped
		if _, err := s.Upload(ctx, BytesFile("/opt/bench", 0o644, content)); err != nil {
			b.Fatal(err)
		}
	}
}

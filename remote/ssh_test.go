package remote

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

func TestRunOutputStdinAndExitStatus(t *testing.T) {
	f := newFixture(t)
	s := f.dial(t)
	ctx := testCtx(t)

	out, err := Output(ctx, s, Cmd{Command: "echo hello; echo oops >&2"})
	if err != nil || string(out) != "hello\n" {
		t.Fatalf("echo: %q %v", out, err)
	}
	out, err = Output(ctx, s, Cmd{Command: "tr a-z A-Z", Stdin: strings.NewReader("piped in")})
	if err != nil || string(out) != "PIPED IN" {
		t.Fatalf("stdin: %q %v", out, err)
	}
	var stderr bytes.Buffer
	if err := s.Run(ctx, Cmd{Command: "echo to-stderr >&2", Stderr: &stderr}); err != nil || stderr.String() != "to-stderr\n" {
		t.Fatalf("stderr: %q %v", stderr.String(), err)
	}
	// Quoted arguments arrive intact through sh.
	arg := `it's "quoted" $HOME; rm -rf /`
	out, err = Output(ctx, s, Cmd{Command: "printf %s " + Quote(arg)})
	if err != nil || string(out) != arg {
		t.Fatalf("quoting: %q %v", out, err)
	}

	err = s.Run(ctx, Cmd{Command: "echo first line >&2; echo it failed >&2; exit 3"})
	var ee *ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("exit 3 gave %v", err)
	}
	if ee.Status != 3 || !strings.Contains(ee.Stderr, "it failed") || !strings.Contains(err.Error(), "status 3") ||
		!strings.Contains(err.Error(), "it failed") {
		t.Errorf("exit error %+v: %v", ee, err)
	}
	if errors.Is(err, ErrConnLost) {
		t.Errorf("a failed command is not a lost connection: %v", err)
	}
	// The connection survives failed commands.
	if err := s.Run(ctx, Cmd{Command: "true"}); err != nil {
		t.Fatal(err)
	}
	// Root on a root login runs the command as is (this server runs as root).
	out, err = Output(ctx, s, Cmd{Command: "id -u", Root: true})
	if err != nil || string(out) != fmt.Sprintf("%d\n", os.Geteuid()) {
		t.Fatalf("root: %q %v", out, err)
	}
}

func TestRunConcurrent(t *testing.T) {
	f := newFixture(t)
	s := f.dial(t)
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := Output(ctx, s, Cmd{Command: fmt.Sprintf("echo %d", i)})
			if err == nil && string(out) != fmt.Sprintf("%d\n", i) {
				err = fmt.Errorf("command %d printed %q", i, out)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestRunCancel(t *testing.T) {
	f := newFixture(t)
	s := f.dial(t)
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- s.Run(ctx, Cmd{Command: "echo started; exec sleep 60", Stdout: writerFunc(func(p []byte) {
			if strings.Contains(string(p), "started") {
				close(started)
			}
		})})
	}()
	<-started
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	// The connection is still usable.
	if err := s.Run(testCtx(t), Cmd{Command: "true"}); err != nil {
		t.Fatal(err)
	}
}

type writerFunc func(p []byte)

func (w writerFunc) Write(p []byte) (int, error) { w(p); return len(p), nil }

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestUpload(t *testing.T) {
	f := newFixture(t)
	s := f.dial(t)
	ctx := testCtx(t)
	dst := filepath.Join(t.TempDir(), "sub", "dir", "blob")
	content := randomBytes(t, 5<<20+123)

	var calls, last, total atomic.Int64
	monotonic := true
	file := BytesFile(dst, 0o640, content)
	file.Progress = func(done, tot int64) {
		if done < last.Load() {
			monotonic = false
		}
		calls.Add(1)
		last.Store(done)
		total.Store(tot)
	}
	res, err := s.Upload(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.Sent != int64(len(content)) || res.SHA256 != sha(content) {
		t.Errorf("first upload: %+v", res)
	}
	if calls.Load() < 10 || !monotonic || last.Load() != int64(len(content)) || total.Load() != int64(len(content)) {
		t.Errorf("progress: %d calls, monotonic %v, last %d of %d", calls.Load(), monotonic, last.Load(), total.Load())
	}
	got, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("content differs (%d bytes, %v)", len(got), err)
	}
	if st, _ := os.Stat(dst); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", st.Mode())
	}
	assertNoTemp(t, filepath.Dir(dst))

	// Same content and mode: nothing is sent.
	res, err = s.Upload(ctx, BytesFile(dst, 0o640, content))
	if err != nil || res.Changed || res.Sent != 0 {
		t.Errorf("same file again: %+v %v", res, err)
	}
	// Same content, other mode: fixed without sending.
	res, err = s.Upload(ctx, BytesFile(dst, 0o600, content))
	if err != nil || !res.Changed || res.Sent != 0 {
		t.Errorf("mode change: %+v %v", res, err)
	}
	if st, _ := os.Stat(dst); st.Mode().Perm() != 0o600 {
		t.Errorf("mode after fix %v", st.Mode())
	}
	// New content replaces the file; an empty file is a file too.
	for _, c := range [][]byte{[]byte("short"), {}} {
		res, err = s.Upload(ctx, BytesFile(dst, 0o600, c))
		if err != nil || !res.Changed || res.Sent != int64(len(c)) {
			t.Errorf("upload %q: %+v %v", c, res, err)
		}
		if got, _ := os.ReadFile(dst); !bytes.Equal(got, c) {
			t.Errorf("content %q, want %q", got, c)
		}
	}
	assertNoTemp(t, filepath.Dir(dst))

	// A directory in the way is an error, not a move into it.
	if _, err := s.Upload(ctx, BytesFile(filepath.Dir(dst), 0o644, c1)); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Errorf("upload over a directory: %v", err)
	}
	for _, bad := range []string{"relative/path", "/a/../b", "/"} {
		if _, err := s.Upload(ctx, BytesFile(bad, 0o644, c1)); err == nil {
			t.Errorf("destination %q accepted", bad)
		}
	}
}

var c1 = []byte("x")

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), "etcdctl-wizard-upload") {
			t.Errorf("temporary file %s left", e.Name())
		}
	}
}

func TestUploadChecksumMismatch(t *testing.T) {
	f := newFixture(t)
	s := f.dial(t)
	ctx := testCtx(t)
	dst := filepath.Join(t.TempDir(), "file")
	old := []byte("old content")
	if err := os.WriteFile(dst, old, 0o644); err != nil {
		t.Fatal(err)
	}

	// The caller's sha256 does not match what was sent.
	file := BytesFile(dst, 0o644, []byte("new content"))
	file.SHA256 = sha([]byte("something else"))
	_, err := s.Upload(ctx, file)
	var ce *ChecksumError
	if !errors.As(err, &ce) || ce.Want != file.SHA256 || ce.Got != sha([]byte("new content")) {
		t.Fatalf("declared sum mismatch: %v", err)
	}
	if !strings.Contains(err.Error(), ce.Want) || !strings.Contains(err.Error(), ce.Got) {
		t.Errorf("message lacks the sums: %v", err)
	}

	// The copy on the host is damaged between transfer and check.
	f.srv.mu.Lock()
	f.srv.beforeExec = func(cmd string) {
		if !strings.Contains(cmd, "mismatch") {
			return
		}
		tmp := tmpName(dst)
		b, _ := os.ReadFile(tmp)
		if len(b) > 0 {
			b[0] ^= 0xff
			os.WriteFile(tmp, b, 0o600)
		}
	}
	f.srv.mu.Unlock()
	content := randomBytes(t, 300<<10)
	_, err = s.Upload(ctx, BytesFile(dst, 0o644, content))
	if !errors.As(err, &ce) || ce.Want != sha(content) || ce.Got == ce.Want {
		t.Fatalf("damaged transfer: %v", err)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, old) {
		t.Errorf("the destination was replaced after a mismatch: %q", got)
	}
	assertNoTemp(t, filepath.Dir(dst))
}

func TestUploadCancel(t *testing.T) {
	f := newFixture(t)
	s := f.dial(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dst := filepath.Join(t.TempDir(), "file")
	file := BytesFile(dst, 0o644, randomBytes(t, 8<<20))
	file.Progress = func(done, _ int64) {
		if done > 1<<20 {
			cancel()
		}
	}
	if _, err := s.Upload(ctx, file); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled upload: %v", err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("destination exists after a cancelled upload: %v", err)
	}
	// The transport still works.
	if _, err := s.Upload(testCtx(t), BytesFile(dst, 0o644, []byte("ok"))); err != nil {
		t.Fatal(err)
	}
}

func TestReadFile(t *testing.T) {
	f := newFixture(t)
	s := f.dial(t)
	ctx := testCtx(t)
	p := filepath.Join(t.TempDir(), "it's a file")
	want := randomBytes(t, 100<<10)
	os.WriteFile(p, want, 0o600)
	got, err := s.ReadFile(ctx, p)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read: %d bytes, %v", len(got), err)
	}
	_, err = s.ReadFile(ctx, p+".missing")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestDialThroughHost(t *testing.T) {
	f := newFixture(t, withForwarding())
	s := f.dial(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	c, err := s.Dial(testCtx(t), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo: %q %v", buf, err)
	}
	if fw := f.srv.forwarded(); len(fw) != 1 || fw[0] != ln.Addr().String() {
		t.Errorf("forwards %v", fw)
	}
}

func TestUnknownHostKey(t *testing.T) {
	f := newFixture(t)
	os.WriteFile(f.knownHosts, nil, 0o600)
	fp := ssh.FingerprintSHA256(f.srv.hostKeys[0].PublicKey())
	ctx := testCtx(t)

	// Nobody to ask: refused, with the fingerprint and the way to accept it.
	_, err := DialSSH(ctx, f.options())
	var ue *HostKeyUnknownError
	if !errors.As(err, &ue) || ue.Key.Fingerprint != fp || !strings.Contains(err.Error(), fp) ||
		!strings.Contains(err.Error(), "--accept-host-key") {
		t.Fatalf("no confirm: %v", err)
	}

	// Declined.
	var asked []HostKey
	o := f.options()
	o.KnownHosts.Confirm = func(k HostKey) (bool, error) { asked = append(asked, k); return false, nil }
	if _, err := DialSSH(ctx, o); !errors.As(err, &ue) {
		t.Fatalf("declined: %v", err)
	}
	if len(asked) != 1 || asked[0].Fingerprint != fp || asked[0].Host != "[127.0.0.1]:"+fmt.Sprint(f.srv.port) ||
		asked[0].Alias != "127.0.0.1" || asked[0].Type != "ssh-ed25519" {
		t.Errorf("asked %+v", asked)
	}
	if b, _ := os.ReadFile(f.knownHosts); len(b) != 0 {
		t.Errorf("declined key recorded: %q", b)
	}

	// The callback's error aborts.
	o.KnownHosts.Confirm = func(HostKey) (bool, error) { return false, errors.New("no terminal") }
	if _, err := DialSSH(ctx, o); err == nil || !strings.Contains(err.Error(), "no terminal") {
		t.Fatalf("confirm error: %v", err)
	}

	// Accepted: recorded, and not asked again.
	asked = nil
	o.KnownHosts.Confirm = func(k HostKey) (bool, error) { asked = append(asked, k); return true, nil }
	s, err := DialSSH(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	b, _ := os.ReadFile(f.knownHosts)
	if want := f.srv.knownLine(f.srv.hostKeys[0].PublicKey()) + "\n"; string(b) != want {
		t.Errorf("known_hosts %q, want %q", b, want)
	}
	s, err = DialSSH(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if len(asked) != 1 {
		t.Errorf("asked %d times", len(asked))
	}
}

func TestAcceptFingerprints(t *testing.T) {
	f := newFixture(t)
	os.WriteFile(f.knownHosts, nil, 0o600)
	fp := ssh.FingerprintSHA256(f.srv.hostKeys[0].PublicKey())
	other := ssh.FingerprintSHA256(newClientKey(t, f.dir, nil).signer.PublicKey())
	ctx := testCtx(t)

	host, pin, err := ParseAcceptHostKey("127.0.0.1=" + other)
	if err != nil {
		t.Fatal(err)
	}
	o := f.options()
	o.KnownHosts.Confirm = AcceptFingerprints(map[string]string{host: pin}, nil)
	if _, err := DialSSH(ctx, o); err == nil || !strings.Contains(err.Error(), fp) || !strings.Contains(err.Error(), other) {
		t.Fatalf("wrong pin: %v", err)
	}
	o.KnownHosts.Confirm = AcceptFingerprints(map[string]string{"127.0.0.1": fp}, nil)
	s, err := DialSSH(ctx, o)
	if err != nil {
		t.Fatalf("right pin: %v", err)
	}
	s.Close()

	for _, bad := range []string{"host", "host=", "=SHA256:x", "host=MD5:aa", "host=SHA256:short"} {
		if _, _, err := ParseAcceptHostKey(bad); err == nil {
			t.Errorf("ParseAcceptHostKey(%q) accepted", bad)
		}
	}
}

func TestChangedHostKey(t *testing.T) {
	f := newFixture(t)
	old := newClientKey(t, f.dir, nil).signer.PublicKey()
	os.WriteFile(f.knownHosts, []byte("# comment\n"+f.srv.knownLine(old)+"\n"), 0o600)
	o := f.options()
	o.KnownHosts.Confirm = func(HostKey) (bool, error) {
		t.Error("asked to confirm a changed key")
		return true, nil
	}
	_, err := DialSSH(testCtx(t), o)
	var ce *HostKeyChangedError
	if !errors.As(err, &ce) {
		t.Fatalf("changed key: %v", err)
	}
	oldFP, newFP := ssh.FingerprintSHA256(old), ssh.FingerprintSHA256(f.srv.hostKeys[0].PublicKey())
	msg := err.Error()
	if !strings.Contains(msg, oldFP) || !strings.Contains(msg, newFP) || !strings.Contains(msg, "line 2") ||
		!strings.Contains(msg, "ssh-keygen -R") {
		t.Errorf("message: %s", msg)
	}
	if b, _ := os.ReadFile(f.knownHosts); strings.Count(string(b), "\n") != 2 {
		t.Errorf("known_hosts changed: %q", b)
	}
}

// A host with two key types, of which known_hosts records one, is not
// "changed": the client asks for the recorded type.
func TestSeveralHostKeyTypes(t *testing.T) {
	for _, i := range []int{0, 1} {
		f := newFixture(t, withECDSA())
		k := f.srv.hostKeys[i].PublicKey()
		os.WriteFile(f.knownHosts, []byte(f.srv.knownLine(k)+"\n"), 0o600)
		s := f.dial(t)
		if err := s.Run(testCtx(t), Cmd{Command: "true"}); err != nil {
			t.Fatalf("%s recorded: %v", k.Type(), err)
		}
	}
}

func TestKeyFilePermissions(t *testing.T) {
	f := newFixture(t)
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		os.Chmod(f.key.path, mode)
		_, err := DialSSH(testCtx(t), f.options())
		var pe *KeyPermissionError
		if !errors.As(err, &pe) || pe.Path != f.key.path || !strings.Contains(err.Error(), "chmod 600 "+f.key.path) {
			t.Errorf("mode %04o: %v", mode, err)
		}
	}
	os.Chmod(f.key.path, 0o400)
	f.dial(t)
	// A missing explicit key is an error naming it, not a silent fallback.
	if _, err := DialSSH(testCtx(t), SSHOptions{Host: "127.0.0.1", Port: f.srv.port, User: "u", ConfigFile: "none",
		AgentSocket: "none", KeyFiles: []string{f.key.path + ".nope"}, KnownHosts: &KnownHosts{Path: f.knownHosts}}); err == nil ||
		!strings.Contains(err.Error(), ".nope") {
		t.Errorf("missing key: %v", err)
	}
}

func TestLoginRefused(t *testing.T) {
	f := newFixture(t)
	stranger := newClientKey(t, f.dir, nil)
	_, err := DialSSH(testCtx(t), func() SSHOptions { o := f.options(); o.KeyFiles = []string{stranger.path}; return o }())
	if err == nil || !strings.Contains(err.Error(), "login as tester") || !strings.Contains(err.Error(), stranger.path) {
		t.Fatalf("refused login: %v", err)
	}
}

func TestEncryptedKeyPassphrase(t *testing.T) {
	f := newFixture(t)
	enc := newClientKey(t, f.dir, []byte("correct horse"))
	f.srv.authorize(enc.signer.PublicKey())
	withKey := func(o *SSHOptions) { o.KeyFiles = []string{enc.path} }

	var asked []string
	s := f.dial(t, withKey, func(o *SSHOptions) {
		o.Passphrase = func(p string) ([]byte, error) { asked = append(asked, p); return []byte("correct horse"), nil }
	})
	if err := s.Run(testCtx(t), Cmd{Command: "true"}); err != nil {
		t.Fatal(err)
	}
	if len(asked) != 1 || asked[0] != enc.path {
		t.Errorf("asked %v", asked)
	}

	o := f.options()
	withKey(&o)
	o.Passphrase = func(string) ([]byte, error) { return []byte("wrong"), nil }
	if _, err := DialSSH(testCtx(t), o); err == nil || !strings.Contains(err.Error(), enc.path) {
		t.Errorf("wrong passphrase: %v", err)
	}
	o.Passphrase = nil
	if _, err := DialSSH(testCtx(t), o); err == nil || !strings.Contains(err.Error(), "passphrase") {
		t.Errorf("no prompt: %v", err)
	}

	// A key the server does not accept is never decrypted: no question asked.
	other := newClientKey(t, f.dir, []byte("pw"))
	asked = nil
	o.KeyFiles = []string{other.path, f.key.path}
	o.Passphrase = func(p string) ([]byte, error) { asked = append(asked, p); return []byte("pw"), nil }
	s2, err := DialSSH(testCtx(t), o)
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	if len(asked) != 0 {
		t.Errorf("asked for an unused key: %v", asked)
	}
}

func TestAgent(t *testing.T) {
	f := newFixture(t)
	enc := newClientKey(t, f.dir, []byte("secret"))
	f.srv.authorize(enc.signer.PublicKey())
	sock := filepath.Join(f.dir, "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	keyring := agent.NewKeyring()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { agent.ServeAgent(keyring, c); c.Close() }()
		}
	}()
	raw, _ := os.ReadFile(enc.path)
	priv, err := ssh.ParseRawPrivateKeyWithPassphrase(raw, []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if err := keyring.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	// The agent holds the key that is encrypted on disk: it signs, and no
	// passphrase is asked for.
	s := f.dial(t, func(o *SSHOptions) {
		o.AgentSocket = sock
		o.KeyFiles = []string{enc.path}
		o.Passphrase = func(string) ([]byte, error) {
			t.Error("passphrase asked although the agent has the key")
			return nil, errors.New("no")
		}
	})
	if err := s.Run(testCtx(t), Cmd{Command: "true"}); err != nil {
		t.Fatal(err)
	}
	// Agent alone, through $SSH_AUTH_SOCK and no key file at all.
	t.Setenv("SSH_AUTH_SOCK", sock)
	t.Setenv("HOME", f.dir) // no ~/.ssh/id_* keys to fall back on
	s2 := f.dial(t, func(o *SSHOptions) { o.AgentSocket = ""; o.KeyFiles = nil })
	if err := s2.Run(testCtx(t), Cmd{Command: "true"}); err != nil {
		t.Fatal(err)
	}
}

func TestJumpHost(t *testing.T) {
	bastion := newTestServer(t, withForwarding())
	f := newFixture(t)
	bastion.authorize(f.key.signer.PublicKey())
	kh, _ := os.ReadFile(f.knownHosts)
	kh = append(kh, bastion.knownLine(bastion.hostKeys[0].PublicKey())+"\n"...)
	os.WriteFile(f.knownHosts, kh, 0o600)

	s := f.dial(t, func(o *SSHOptions) { o.JumpHost = "jumper@127.0.0.1:" + fmt.Sprint(bastion.port) })
	out, err := Output(testCtx(t), s, Cmd{Command: "echo through"})
	if err != nil || string(out) != "through\n" {
		t.Fatalf("through the bastion: %q %v", out, err)
	}
	if fw := bastion.forwarded(); len(fw) != 1 || fw[0] != f.srv.addr {
		t.Errorf("bastion forwarded %v, want [%s]", fw, f.srv.addr)
	}
	if !strings.Contains(s.String(), "via jumper@127.0.0.1:") {
		t.Errorf("String() = %s", s)
	}
	// Uploads go through too.
	dst := filepath.Join(t.TempDir(), "f")
	if _, err := s.Upload(testCtx(t), BytesFile(dst, 0o644, []byte("hi"))); err != nil {
		t.Fatal(err)
	}

	// The bastion's key is checked like any other.
	os.WriteFile(f.knownHosts, []byte(f.srv.knownLine(f.srv.hostKeys[0].PublicKey())+"\n"), 0o600)
	o := f.options()
	o.JumpHost = "127.0.0.1:" + fmt.Sprint(bastion.port)
	var ue *HostKeyUnknownError
	if _, err := DialSSH(testCtx(t), o); !errors.As(err, &ue) || ue.Key.Host != "[127.0.0.1]:"+fmt.Sprint(bastion.port) {
		t.Fatalf("unknown bastion key: %v", err)
	}
}

func TestSSHConfig(t *testing.T) {
	bastion := newTestServer(t, withForwarding())
	f := newFixture(t)
	bastion.authorize(f.key.signer.PublicKey())
	kh, _ := os.ReadFile(f.knownHosts)
	kh = append(kh, bastion.knownLine(bastion.hostKeys[0].PublicKey())+"\n"...)
	os.WriteFile(f.knownHosts, kh, 0o600)
	t.Setenv("HOME", f.dir)
	keyName := filepath.Base(f.key.path)
	cfg := filepath.Join(f.dir, "ssh_config")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
Host bastion
  HostName 127.0.0.1
  Port %d
  User jumper
  IdentityFile ~/%s

# The first value found wins, so the specific block comes first.
Host infra0
  HostName 127.0.0.1
  Port %d
  User deploy
  IdentityFile %%d/%s

Host infra*
  HostName %%h.invalid
  ProxyJump bastion
`, bastion.port, keyName, f.srv.port, keyName)), 0o600)

	s := f.dial(t, func(o *SSHOptions) {
		*o = SSHOptions{Host: "infra0", ConfigFile: cfg, AgentSocket: "none", KnownHosts: &KnownHosts{Path: f.knownHosts}}
	})
	if err := s.Run(testCtx(t), Cmd{Command: "true"}); err != nil {
		t.Fatal(err)
	}
	if want := "deploy@127.0.0.1:" + fmt.Sprint(f.srv.port) + " via jumper@127.0.0.1:" + fmt.Sprint(bastion.port); s.String() != "infra0 ("+want+")" {
		t.Errorf("String() = %q, want infra0 (%s)", s, want)
	}
	if fw := bastion.forwarded(); len(fw) != 1 {
		t.Errorf("bastion forwarded %v", fw)
	}

	// Explicit options win over the file; "none" skips the jump.
	c, err := loadSSHConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e, err := resolve(c, "infra0", 2222, "root", []string{"/k"}, "none", 0)
	if err != nil || e.port != 2222 || e.user != "root" || len(e.jumps) != 0 || e.keyFiles[0] != "/k" ||
		e.keyFiles[1] != filepath.Join(f.dir, keyName) {
		t.Errorf("explicit: %+v %v", e, err)
	}
	e, err = resolve(c, "infra7", 0, "", nil, "", 0)
	if err != nil || e.host != "infra7.invalid" || len(e.jumps) != 1 || e.jumps[0].String() != "jumper@127.0.0.1:"+fmt.Sprint(bastion.port) {
		t.Errorf("pattern: %+v %v", e, err)
	}
	e, err = resolve(c, "other", 0, "", nil, "a@h1:2200,h2", 0)
	if err != nil || len(e.jumps) != 2 || e.jumps[0].String() != "a@h1:2200" || e.jumps[1].host != "h2" || e.jumps[1].port != 22 {
		t.Errorf("jump list: %+v %v", e, err)
	}
	if hops := e.hops(); len(hops) != 3 || hops[2].alias != "other" {
		t.Errorf("hops %+v", hops)
	}
	if _, err := resolve(c, "x", 0, "", nil, "u@:22", 0); err == nil {
		t.Error("empty jump host accepted")
	}
	loop := filepath.Join(f.dir, "loop")
	os.WriteFile(loop, []byte("Host a\n  ProxyJump b\nHost b\n  ProxyJump a\n"), 0o600)
	lc, _ := loadSSHConfig(loop)
	if _, err := resolve(lc, "a", 0, "u", nil, "", 0); err == nil || !strings.Contains(err.Error(), "loop") {
		t.Errorf("ProxyJump loop: %v", err)
	}
	if _, err := loadSSHConfig(filepath.Join(f.dir, "missing")); err == nil {
		t.Error("an explicit missing config file is an error")
	}
}

// proxy forwards TCP connections to target and can freeze them: bytes stop
// flowing but nothing is closed, like an unplugged cable.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	frozen bool
	wake   chan struct{}
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, wake: make(chan struct{})}
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go p.pipe(c, u)
			go p.pipe(u, c)
		}
	}()
	return p
}

func (p *proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for {
			p.mu.Lock()
			frozen, wake := p.frozen, p.wake
			p.mu.Unlock()
			if !frozen {
				break
			}
			<-wake
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

// freeze stops the existing connections; new ones are not affected once
// thaw is called.
func (p *proxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frozen = true
}

func (p *proxy) thawAndDrop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.frozen = false
	close(p.wake)
	p.wake = make(chan struct{})
}

func (p *proxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func TestKeepaliveDetectsDeadConnection(t *testing.T) {
	f := newFixture(t)
	px := newProxy(t, f.srv.addr)
	// The proxy's port is another known_hosts name for the same server.
	kh, _ := os.ReadFile(f.knownHosts)
	os.WriteFile(f.knownHosts, append(kh, knownHostLine(px.ln.Addr().String(), f.srv.hostKeys[0].PublicKey())+"\n"...), 0o600)
	s := f.dial(t, func(o *SSHOptions) {
		o.Port = px.port()
		o.KeepaliveInterval = 100 * time.Millisecond
		o.KeepaliveCountMax = 3
	})
	ctx := testCtx(t)
	started := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- s.Run(ctx, Cmd{Command: "echo started; exec sleep 60", Stdout: writerFunc(func(p []byte) {
			if strings.Contains(string(p), "started") {
				close(started)
			}
		})})
	}()
	<-started
	t0 := time.Now()
	px.freeze()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrConnLost) || !strings.Contains(err.Error(), "keepalive") {
			t.Fatalf("run on a frozen connection: %v", err)
		}
		t.Logf("dead connection noticed after %v", time.Since(t0).Round(time.Millisecond))
	case <-time.After(20 * time.Second):
		t.Fatal("a frozen connection was not noticed")
	}
	px.thawAndDrop()
	// The next operation dials again.
	out, err := Output(ctx, s, Cmd{Command: "echo again"})
	if err != nil || string(out) != "again\n" {
		t.Fatalf("after reconnect: %q %v", out, err)
	}
}

func TestConnectTimeout(t *testing.T) {
	// Accepts TCP connections and never says a word.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	f := newFixture(t)
	o := f.options()
	o.Port = ln.Addr().(*net.TCPAddr).Port
	o.ConnectTimeout = 300 * time.Millisecond
	t0 := time.Now()
	_, err = DialSSH(testCtx(t), o)
	if err == nil || !strings.Contains(err.Error(), "within 300ms") {
		t.Fatalf("silent server: %v", err)
	}
	if d := time.Since(t0); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
	// Cancellation beats the timeout: cancelled once the TCP connection is up.
	ctx, cancel := context.WithCancel(context.Background())
	o.ConnectTimeout = time.Minute
	o.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		defer cancel()
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	if _, err := DialSSH(ctx, o); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled connect: %v", err)
	}
}

func TestClosedTransport(t *testing.T) {
	f := newFixture(t)
	s := f.dial(t)
	s.Close()
	if err := s.Run(testCtx(t), Cmd{Command: "true"}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("run after close: %v", err)
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":           "''",
		"plain":      "plain",
		"/a/b-c_d.e": "/a/b-c_d.e",
		"a b":        "'a b'",
		"it's":       `'it'\''s'`,
		"$(x)":       "'$(x)'",
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}

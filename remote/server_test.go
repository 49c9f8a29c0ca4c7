package remote

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// testServer is an in-process SSH server for fast unit tests: commands run
// through sh on this machine, SFTP is pkg/sftp's server on the local
// filesystem. It has no sudo: the lab tests cover that with real sshd.
type testServer struct {
	t        *testing.T
	addr     string
	port     int
	hostKeys []ssh.Signer
	srv      *gliderssh.Server

	mu         sync.Mutex
	authorized []ssh.PublicKey
	forwards   []string // direct-tcpip destinations asked for
	commands   []string
	// beforeExec, when set, runs before each command (to tamper with files
	// between an upload's transfer and its check).
	beforeExec func(cmd string)
}

type serverOpt func(*testServer)

// withForwarding lets the server open direct-tcpip channels: a bastion.
func withForwarding() serverOpt {
	return func(s *testServer) {
		s.srv.LocalPortForwardingCallback = func(_ gliderssh.Context, host string, port uint32) bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.forwards = append(s.forwards, net.JoinHostPort(host, strconv.Itoa(int(port))))
			return true
		}
		s.srv.ChannelHandlers = map[string]gliderssh.ChannelHandler{
			"session":      gliderssh.DefaultSessionHandler,
			"direct-tcpip": gliderssh.DirectTCPIPHandler,
		}
	}
}

// withECDSA adds an ECDSA host key next to the ed25519 one.
func withECDSA() serverOpt {
	return func(s *testServer) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			s.t.Fatal(err)
		}
		sg, err := ssh.NewSignerFromKey(k)
		if err != nil {
			s.t.Fatal(err)
		}
		s.hostKeys = append(s.hostKeys, sg)
		s.srv.AddHostKey(sg)
	}
}

func newTestServer(t *testing.T, opts ...serverOpt) *testServer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hk, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{t: t, hostKeys: []ssh.Signer{hk}}
	s.srv = &gliderssh.Server{
		Handler: s.handle,
		PublicKeyHandler: func(_ gliderssh.Context, key gliderssh.PublicKey) bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, a := range s.authorized {
				if string(a.Marshal()) == string(key.Marshal()) {
					return true
				}
			}
			return false
		},
		SubsystemHandlers: map[string]gliderssh.SubsystemHandler{
			"sftp": func(sess gliderssh.Session) {
				srv, err := sftp.NewServer(sess)
				if err != nil {
					return
				}
				srv.Serve()
				srv.Close()
			},
		},
	}
	s.srv.AddHostKey(hk)
	for _, o := range opts {
		o(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	s.port = ln.Addr().(*net.TCPAddr).Port
	go s.srv.Serve(ln)
	t.Cleanup(func() { s.srv.Close() })
	return s
}

func (s *testServer) authorize(k ssh.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authorized = append(s.authorized, k)
}

func (s *testServer) forwarded() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.forwards...)
}

func (s *testServer) handle(sess gliderssh.Session) {
	raw := sess.RawCommand()
	s.mu.Lock()
	s.commands = append(s.commands, raw)
	hook := s.beforeExec
	s.mu.Unlock()
	if hook != nil {
		hook(raw)
	}
	cmd := exec.Command("/bin/sh", "-c", raw)
	// A session of its own, as sshd gives every command.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Stdout = sess
	cmd.Stderr = sess.Stderr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		sess.Exit(255)
		return
	}
	if err := cmd.Start(); err != nil {
		io.WriteString(sess.Stderr(), err.Error())
		sess.Exit(127)
		return
	}
	go func() {
		io.Copy(stdin, sess)
		stdin.Close()
	}()
	// A closed session kills the command, as a remote process would die of
	// SIGPIPE or "signal KILL".
	done := make(chan struct{})
	go func() {
		select {
		case <-sess.Context().Done():
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		case <-done:
		}
	}()
	err = cmd.Wait()
	close(done)
	var ee *exec.ExitError
	switch {
	case err == nil:
		sess.Exit(0)
	case errors.As(err, &ee):
		sess.Exit(ee.ExitCode())
	default:
		sess.Exit(255)
	}
}

// knownLine is the known_hosts line of s's host key k.
func (s *testServer) knownLine(k ssh.PublicKey) string {
	return knownHostLine(s.addr, k)
}

func knownHostLine(addr string, k ssh.PublicKey) string {
	return "[127.0.0.1]:" + addr[strings.LastIndexByte(addr, ':')+1:] + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

var keySeq atomic.Int64

// clientKey is a private key file for tests.
type clientKey struct {
	path   string
	signer ssh.Signer
}

func newClientKey(t *testing.T, dir string, passphrase []byte) clientKey {
	t.Helper()
	p := filepath.Join(dir, "id_test_"+strconv.Itoa(int(keySeq.Add(1))))
	if passphrase != nil {
		// ssh-keygen, because x/crypto encrypts with 16 bcrypt rounds, which
		// take seconds per key under the race detector; -a 1 keeps it fast.
		out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-a", "1", "-N", string(passphrase), "-C", "test", "-f", p).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
		pub, err := os.ReadFile(p + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		pk, _, _, _, err := ssh.ParseAuthorizedKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := os.ReadFile(p)
		priv, err := ssh.ParseRawPrivateKeyWithPassphrase(raw, passphrase)
		if err != nil {
			t.Fatal(err)
		}
		sg, err := ssh.NewSignerFromKey(priv)
		if err != nil || string(sg.PublicKey().Marshal()) != string(pk.Marshal()) {
			t.Fatalf("signer: %v", err)
		}
		return clientKey{path: p, signer: sg}
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sg, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return clientKey{path: p, signer: sg}
}

// fixture is a server, a key it accepts and a known_hosts that knows it.
type fixture struct {
	srv        *testServer
	key        clientKey
	knownHosts string
	dir        string
}

func newFixture(t *testing.T, opts ...serverOpt) *fixture {
	t.Helper()
	dir := t.TempDir()
	srv := newTestServer(t, opts...)
	key := newClientKey(t, dir, nil)
	srv.authorize(key.signer.PublicKey())
	kh := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(kh, []byte(srv.knownLine(srv.hostKeys[0].PublicKey())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &fixture{srv: srv, key: key, knownHosts: kh, dir: dir}
}

func (f *fixture) options() SSHOptions {
	return SSHOptions{
		Host:        "127.0.0.1",
		Port:        f.srv.port,
		User:        "tester",
		KeyFiles:    []string{f.key.path},
		KnownHosts:  &KnownHosts{Path: f.knownHosts},
		ConfigFile:  "none",
		AgentSocket: "none",
	}
}

func (f *fixture) dial(t *testing.T, mod ...func(*SSHOptions)) *SSH {
	t.Helper()
	o := f.options()
	for _, m := range mod {
		m(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := DialSSH(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

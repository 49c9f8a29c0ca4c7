package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// DialFunc opens the TCP connection to the first SSH hop. Tests of the lab
// use one that dials from inside the lab's network namespace.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// SSHOptions configures one SSH transport. Explicit fields win over
// ~/.ssh/config, which wins over the defaults.
type SSHOptions struct {
	// Name labels the host in messages (e.g. the member name); optional.
	Name string
	// Host is a ~/.ssh/config alias, a host name or an IP address.
	Host string
	// Port; 0 means ~/.ssh/config's Port, then 22.
	Port int
	// User; "" means ~/.ssh/config's User, then the local user name.
	User string
	// KeyFiles are private keys to offer (after the ssh-agent's keys), before
	// ~/.ssh/config's IdentityFile entries. With neither, ~/.ssh/id_ed25519,
	// id_ecdsa and id_rsa are offered when present.
	KeyFiles []string
	// JumpHost is "[user@]host[:port]" or a comma-separated chain of them,
	// overriding ~/.ssh/config's ProxyJump; "none" connects directly.
	JumpHost string
	// ConfigFile is the ssh config to read; "" means ~/.ssh/config when it
	// exists, "none" reads none.
	ConfigFile string
	// KnownHosts checks host keys; required.
	KnownHosts *KnownHosts
	// AgentSocket is the ssh-agent socket; "" means $SSH_AUTH_SOCK, "none"
	// uses no agent.
	AgentSocket string
	// Passphrase is asked for the passphrase of an encrypted key file, only
	// when the server accepts that key.
	Passphrase PassphraseFunc
	// SudoPassword is asked once per transport when the login user is not
	// root and sudo wants a password. The password is written to sudo's stdin.
	SudoPassword func(target string) ([]byte, error)
	// Dial opens the first hop's TCP connection; nil uses net.Dialer.
	Dial DialFunc
	// ConnectTimeout bounds TCP connect, handshake and login of each hop;
	// 0 means 15 s.
	ConnectTimeout time.Duration
	// KeepaliveInterval is how often an idle-or-not connection is probed;
	// 0 means 10 s, negative disables keepalives.
	KeepaliveInterval time.Duration
	// KeepaliveCountMax unanswered probes in a row declare the connection
	// dead; 0 means 3.
	KeepaliveCountMax int
}

// SSH is a Transport over SSH. Create it with DialSSH.
type SSH struct {
	opts   SSHOptions
	target endpoint
	auth   *authenticator

	mu     sync.Mutex // guards conn and closed; held while (re)connecting
	conn   *sshConn
	closed bool

	privMu   sync.Mutex
	priv     privilege
	privErr  error
	sudoPass []byte
}

var _ Transport = (*SSH)(nil)

// sshConn is one live connection chain (jump hosts first, target last).
type sshConn struct {
	clients []*ssh.Client
	client  *ssh.Client

	dead chan struct{}
	once sync.Once
	err  error // why it died; set before dead is closed
}

func (c *sshConn) kill(err error) {
	c.once.Do(func() {
		c.err = err
		close(c.dead)
		for i := len(c.clients) - 1; i >= 0; i-- {
			c.clients[i].Close()
		}
	})
}

func (c *sshConn) isDead() bool {
	select {
	case <-c.dead:
		return true
	default:
		return false
	}
}

var errClosed = errors.New("transport closed")

// DialSSH resolves the host through ~/.ssh/config and connects, checking the
// host key of every hop and logging in.
func DialSSH(ctx context.Context, opts SSHOptions) (*SSH, error) {
	if opts.Host == "" {
		return nil, errors.New("ssh: no host given")
	}
	if opts.KnownHosts == nil {
		return nil, errors.New("ssh: no known_hosts given: host keys must be checked")
	}
	cfg, err := loadSSHConfig(opts.ConfigFile)
	if err != nil {
		return nil, err
	}
	target, err := resolve(cfg, opts.Host, opts.Port, opts.User, opts.KeyFiles, opts.JumpHost, 0)
	if err != nil {
		return nil, err
	}
	s := &SSH{opts: opts, target: target,
		auth: &authenticator{agentSocket: opts.AgentSocket, passphrase: opts.Passphrase}}
	if _, err := s.connection(ctx); err != nil {
		s.auth.close()
		return nil, err
	}
	return s, nil
}

func (s *SSH) String() string {
	desc := s.target.String()
	if len(s.target.jumps) > 0 {
		var via []string
		for _, h := range s.target.hops()[:len(s.target.hops())-1] {
			via = append(via, h.String())
		}
		desc += " via " + strings.Join(via, ",")
	}
	name := s.opts.Name
	if name == "" {
		name = s.target.alias
	}
	if name != s.target.host {
		return name + " (" + desc + ")"
	}
	return desc
}

// Close ends the connection and releases the agent.
func (s *SSH) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.conn != nil {
		s.conn.kill(fmt.Errorf("%w: %w", ErrConnLost, errClosed))
		s.conn = nil
	}
	s.auth.close()
	return nil
}

// connection returns the live connection, dialing a new one when there is
// none or the last one died.
func (s *SSH) connection(ctx context.Context) (*sshConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("%s: %w", s, errClosed)
	}
	if s.conn != nil && !s.conn.isDead() {
		return s.conn, nil
	}
	s.conn = nil
	c, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	s.conn = c
	return c, nil
}

func (s *SSH) connect(ctx context.Context) (*sshConn, error) {
	hops := s.target.hops()
	c := &sshConn{dead: make(chan struct{})}
	fail := func(err error) (*sshConn, error) {
		for i := len(c.clients) - 1; i >= 0; i-- {
			c.clients[i].Close()
		}
		return nil, err
	}
	for i, h := range hops {
		var nc net.Conn
		var err error
		dctx, cancel := context.WithTimeout(ctx, s.connectTimeout())
		if i == 0 {
			dial := s.opts.Dial
			if dial == nil {
				dial = (&net.Dialer{}).DialContext
			}
			nc, err = dial(dctx, "tcp", h.addr())
		} else {
			nc, err = c.clients[i-1].DialContext(dctx, "tcp", h.addr())
		}
		cancel()
		if err != nil {
			via := ""
			if i > 0 {
				via = " through " + hops[i-1].String()
			}
			return fail(fmt.Errorf("ssh %s: connecting to %s%s: %w", s.label(), h.addr(), via, err))
		}
		cl, err := s.handshake(ctx, nc, h)
		if err != nil {
			return fail(err)
		}
		c.clients = append(c.clients, cl)
	}
	c.client = c.clients[len(c.clients)-1]
	s.watch(c)
	return c, nil
}

func (s *SSH) label() string {
	if s.opts.Name != "" {
		return s.opts.Name
	}
	return s.opts.Host
}

func (s *SSH) connectTimeout() time.Duration {
	if s.opts.ConnectTimeout > 0 {
		return s.opts.ConnectTimeout
	}
	return 15 * time.Second
}

func (s *SSH) handshake(ctx context.Context, nc net.Conn, h endpoint) (*ssh.Client, error) {
	name := ""
	if h.alias == s.target.alias && h.addr() == s.target.addr() {
		name = s.opts.Name
	}
	cb, algos, err := s.opts.KnownHosts.callback(name, h.alias, h.addr())
	if err != nil {
		nc.Close()
		return nil, err
	}
	method, offered, err := s.auth.method(h)
	if err != nil {
		nc.Close()
		return nil, err
	}
	cfg := &ssh.ClientConfig{
		User:              h.user,
		Auth:              []ssh.AuthMethod{method},
		HostKeyCallback:   cb,
		HostKeyAlgorithms: algos,
		ClientVersion:     "SSH-2.0-etcdctl-wizard",
	}
	// Channel connections (later hops) have no deadlines: closing the
	// connection is what unblocks a stuck handshake on every kind.
	timeout := s.connectTimeout()
	var timedOut, stopped bool
	var mu sync.Mutex
	timer := time.AfterFunc(timeout, func() {
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			timedOut = true
			nc.Close()
		}
	})
	stopCtx := context.AfterFunc(ctx, func() { nc.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(nc, h.addr(), cfg)
	mu.Lock()
	stopped = true
	mu.Unlock()
	timer.Stop()
	ctxFired := !stopCtx()
	if err != nil {
		nc.Close()
		var changed *HostKeyChangedError
		var unknown *HostKeyUnknownError
		switch {
		case errors.As(err, &changed) || errors.As(err, &unknown):
			return nil, fmt.Errorf("ssh %s: %w", s.label(), unwrapHandshake(err))
		case ctxFired:
			return nil, fmt.Errorf("ssh %s: connecting to %s: %w", s.label(), h, ctx.Err())
		case timedOut:
			return nil, fmt.Errorf("ssh %s: %s did not complete the SSH handshake and login within %s", s.label(), h, timeout)
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, fmt.Errorf("ssh %s: login as %s to %s refused; offered %s: %w",
				s.label(), h.user, h.addr(), strings.Join(offered, ", "), err)
		default:
			return nil, fmt.Errorf("ssh %s: %s: %w", s.label(), h, err)
		}
	}
	if ctxFired {
		sc.Close()
		return nil, fmt.Errorf("ssh %s: connecting to %s: %w", s.label(), h, ctx.Err())
	}
	return ssh.NewClient(sc, chans, reqs), nil
}

// unwrapHandshake drops x/crypto's "ssh: handshake failed:" prefix from host
// key errors, whose own text says everything.
func unwrapHandshake(err error) error {
	if u := errors.Unwrap(err); u != nil && strings.HasPrefix(err.Error(), "ssh: handshake failed: ") {
		return u
	}
	return err
}

// watch kills c when the connection ends or stops answering keepalives.
func (s *SSH) watch(c *sshConn) {
	go func() {
		err := c.client.Wait()
		if err == nil {
			err = io.EOF
		}
		c.kill(fmt.Errorf("%w: %v", ErrConnLost, err))
	}()
	interval := s.opts.KeepaliveInterval
	if interval < 0 {
		return
	}
	if interval == 0 {
		interval = 10 * time.Second
	}
	max := s.opts.KeepaliveCountMax
	if max <= 0 {
		max = 3
	}
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		missed := 0
		for {
			select {
			case <-c.dead:
				return
			case <-t.C:
			}
			switch err := s.probe(c, interval); {
			case err == nil:
				missed = 0
			case errors.Is(err, context.DeadlineExceeded):
				if missed++; missed >= max {
					c.kill(fmt.Errorf("%w: %d keepalives in a row unanswered (%s apart)", ErrConnLost, missed, interval))
					return
				}
			default:
				c.kill(fmt.Errorf("%w: %v", ErrConnLost, err))
				return
			}
		}
	}()
}

// probe sends one keepalive and waits up to timeout for any answer (OpenSSH
// answers "failure", which still proves the peer is alive).
func (s *SSH) probe(c *sshConn, timeout time.Duration) error {
	reply := make(chan error, 1)
	go func() {
		_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
		reply <- err
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-reply:
		return err
	case <-t.C:
		return context.DeadlineExceeded
	case <-c.dead:
		return c.err
	}
}

// opErr wraps the error of an operation on c, telling a lost connection
// (ErrConnLost) from a failure of the operation itself.
func (s *SSH) opErr(c *sshConn, what string, err error) error {
	if !c.isDead() && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		// A failure caused by the connection dropping can reach us before the
		// watcher notices; one quick probe settles it.
		if perr := s.probe(c, 5*time.Second); perr != nil && !errors.Is(perr, context.DeadlineExceeded) {
			c.kill(fmt.Errorf("%w: %v", ErrConnLost, perr))
		}
	}
	if c.isDead() {
		return fmt.Errorf("%s: %s: %w", s, what, c.err)
	}
	return fmt.Errorf("%s: %s: %w", s, what, err)
}

// Run implements Transport.
func (s *SSH) Run(ctx context.Context, c Cmd) error {
	line, stdin, err := s.wrap(ctx, c)
	if err != nil {
		return err
	}
	return s.exec(ctx, line, stdin, c)
}

// sidPrefix makes the remote shell report its session id on stderr before
// the command runs, so that a cancelled command can be killed with all its
// children: sshd refuses "signal" requests on root logins (they run without
// privilege separation), and closing the channel alone leaves the process
// running.
const sidPrefix = `read -r _ _ _ _ _ ewz_sid _ </proc/$$/stat 2>/dev/null; printf '\036etcdctl-wizard-sid %s\n' "$ewz_sid" >&2; exec "$@"`

// killScript kills every process of session $1 (processes that started
// sessions of their own, such as daemons, are left alone).
const killScript = `read -r _ _ _ _ _ own _ </proc/$$/stat
# Never our own session: that would mean the command was not in a session of
# its own (not started by sshd), and killing it would hit unrelated processes.
[ -n "$sid" ] && [ "$sid" != "$own" ] && [ "$sid" != 0 ] && [ "$sid" != 1 ] || exit 0
for f in /proc/[0-9]*/stat; do
  read -r line <"$f" 2>/dev/null || continue
  set -f
  set -- ${line##*) }
  if [ "$4" = "$sid" ]; then p=${f#/proc/}; kill -KILL "${p%/stat}" 2>/dev/null; fi
done
exit 0`

// exec runs argv (a command line already wrapped for sudo) on the connection.
func (s *SSH) exec(ctx context.Context, argv string, stdin io.Reader, c Cmd) error {
	conn, err := s.connection(ctx)
	if err != nil {
		return err
	}
	sess, err := conn.client.NewSession()
	if err != nil {
		return s.opErr(conn, "opening a session", err)
	}
	defer sess.Close()
	if stdin != nil {
		sess.Stdin = stdin
	}
	if c.Stdout != nil {
		sess.Stdout = c.Stdout
	}
	var tail *tailBuffer
	stderr := c.Stderr
	if stderr == nil {
		tail = &tailBuffer{max: 4096}
		stderr = tail
	}
	sid := &sidFilter{w: stderr}
	sess.Stderr = sid
	if err := sess.Start("sh -c " + Quote(sidPrefix) + " sh " + argv); err != nil {
		return s.opErr(conn, "starting "+Quote(shorten(c.Command, 80)), err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		sess.Signal(ssh.SIGKILL)
		if id := sid.id(); id != "" && !conn.isDead() {
			kctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			s.Run(kctx, Cmd{Command: "sid=" + id + "\n" + killScript, Root: c.Root})
			cancel()
		}
		sess.Close()
		// The remote side closes the channel once the process is gone; do
		// not hang on a host that does not answer any more.
		t := time.NewTimer(10 * time.Second)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
		}
		return fmt.Errorf("%s: %s: %w", s, shorten(c.Command, 80), ctx.Err())
	}
	sid.flush()
	if err == nil {
		return nil
	}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		x := &ExitError{Target: s.String(), Command: shorten(c.Command, 200), Status: ee.ExitStatus(), Signal: ee.Signal()}
		if x.Signal != "" {
			x.Status = -1
		}
		if tail != nil {
			x.Stderr = tail.String()
		}
		return x
	}
	return s.opErr(conn, shorten(c.Command, 80), err)
}

// sidFilter takes the session id line that sidPrefix prints off the front
// of stderr and passes the rest on.
type sidFilter struct {
	w io.Writer

	mu   sync.Mutex
	buf  []byte
	done bool
	sid  string
}

const sidMarker = "\x1eetcdctl-wizard-sid "

func (f *sidFilter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		return f.w.Write(p)
	}
	f.buf = append(f.buf, p...)
	i := bytes.IndexByte(f.buf, '\n')
	if i < 0 && len(f.buf) < 64 && bytes.HasPrefix([]byte(sidMarker), f.buf[:min(len(f.buf), len(sidMarker))]) {
		return len(p), nil
	}
	f.done = true
	rest := f.buf
	if i >= 0 && bytes.HasPrefix(f.buf, []byte(sidMarker)) {
		if id := string(f.buf[len(sidMarker):i]); id != "" && strings.Trim(id, "0123456789") == "" {
			f.sid = id
		}
		rest = f.buf[i+1:]
	}
	f.buf = nil
	if len(rest) > 0 {
		if _, err := f.w.Write(rest); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (f *sidFilter) id() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sid
}

// flush passes on what is held back when stderr ended early.
func (f *sidFilter) flush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.done && len(f.buf) > 0 {
		f.w.Write(f.buf)
	}
	f.done, f.buf = true, nil
}

// Dial implements Transport: a direct-tcpip channel from the host to addr.
func (s *SSH) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := s.connection(ctx)
	if err != nil {
		return nil, err
	}
	nc, err := conn.client.DialContext(ctx, network, addr)
	if err != nil {
		return nil, s.opErr(conn, "dialing "+addr, err)
	}
	return nc, nil
}

// privilege is how Root commands run for the login user.
type privilege int

const (
	privUnknown privilege = iota
	privRoot
	privSudo
	privSudoPassword
)

const probeScript = `if [ "$(id -u)" = 0 ]; then echo root
elif ! command -v sudo >/dev/null 2>&1; then echo nosudo
elif sudo -n true 2>/dev/null; then echo nopasswd
else echo password; fi`

// privilege finds out once per transport how to become root.
func (s *SSH) privilege(ctx context.Context) (privilege, []byte, error) {
	s.privMu.Lock()
	defer s.privMu.Unlock()
	if s.priv != privUnknown || s.privErr != nil {
		return s.priv, s.sudoPass, s.privErr
	}
	var out bytes.Buffer
	if err := s.exec(ctx, shCommand(probeScript), nil, Cmd{Command: "probe privileges", Stdout: &out}); err != nil {
		return privUnknown, nil, err
	}
	who := s.target.user
	switch strings.TrimSpace(out.String()) {
	case "root":
		s.priv = privRoot
	case "nopasswd":
		s.priv = privSudo
	case "nosudo":
		s.privErr = fmt.Errorf("%s: %s is not root and sudo is not installed: log in as root or install sudo", s, who)
	case "password":
		if s.opts.SudoPassword == nil {
			s.privErr = fmt.Errorf("%s: sudo needs a password for %s and none can be asked for: allow NOPASSWD in sudoers or give the password", s, who)
			break
		}
		pass, err := s.opts.SudoPassword(s.String())
		if err != nil {
			return privUnknown, nil, fmt.Errorf("%s: sudo password: %w", s, err)
		}
		if bytes.ContainsAny(pass, "\n\r") {
			clear(pass)
			s.privErr = fmt.Errorf("%s: the sudo password contains a line break", s)
			break
		}
		// -k ignores cached credentials, so sudo always reads the password
		// line and never hands it to the command instead.
		err = s.exec(ctx, "sudo -S -k -p '' -- true", bytes.NewReader(append(append([]byte(nil), pass...), '\n')),
			Cmd{Command: "sudo -S -k true"})
		var ee *ExitError
		if errors.As(err, &ee) {
			clear(pass)
			s.privErr = fmt.Errorf("%s: sudo refused the password for %s", s, who)
			break
		} else if err != nil {
			clear(pass)
			return privUnknown, nil, err
		}
		s.priv, s.sudoPass = privSudoPassword, pass
	default:
		return privUnknown, nil, fmt.Errorf("%s: unexpected answer to the privilege probe: %q", s, shorten(out.String(), 200))
	}
	return s.priv, s.sudoPass, s.privErr
}

// shCommand runs cmd under sh whatever the login shell is.
func shCommand(cmd string) string { return "sh -c " + Quote(cmd) }

// wrap turns c into the command line and stdin to send.
func (s *SSH) wrap(ctx context.Context, c Cmd) (string, io.Reader, error) {
	if !c.Root {
		return shCommand(c.Command), c.Stdin, nil
	}
	priv, pass, err := s.privilege(ctx)
	if err != nil {
		return "", nil, err
	}
	switch priv {
	case privRoot:
		return shCommand(c.Command), c.Stdin, nil
	case privSudo:
		return "sudo -n -H -- " + shCommand(c.Command), c.Stdin, nil
	default:
		stdin := c.Stdin
		if stdin == nil {
			stdin = strings.NewReader("")
		}
		pw := append(append([]byte(nil), pass...), '\n')
		return "sudo -S -k -p '' -H -- " + shCommand(c.Command), io.MultiReader(bytes.NewReader(pw), stdin), nil
	}
}

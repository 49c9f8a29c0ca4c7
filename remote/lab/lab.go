// Package lab starts the test lab of DESIGN.md §6 from Go tests: N hosts,
// each a network namespace running real OpenSSH sshd with its own host keys,
// hostname and private /etc, /var, /usr/local, /opt, /root, /home, /run and
// /tmp, on a bridge inside one parent namespace with no route out. The work is
// done by testdata/lab/lab.sh; this package runs it, reads what it built, and
// gives tests the three ways in:
//
//   - Lab.Dial connects from inside the parent namespace, the only place where
//     10.0.1.x exists. Hand it to remote.SSHOptions.Dial. Traffic to lab
//     addresses must never leave from the machine's own namespace.
//   - Lab.Command runs a program inside the parent namespace (the wizard's
//     binary, upstream etcdctl).
//   - Host.Exec runs a shell command inside a host (its network, mount and
//     UTS namespaces) for assertions, without SSH.
//
// It needs root, iproute2, util-linux and openssh-server.
package lab

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Config describes a lab to start.
type Config struct {
	// Hosts is the number of hosts: infra0 at 10.0.1.10, infra1 at 10.0.1.11 ...
	Hosts int
	// Name is the parent namespace's name and the hosts' prefix; "" picks a
	// unique one, so that parallel test packages do not collide.
	Name string
	// Owner is the process whose death makes the lab stale (lab.sh down
	// --stale removes it); 0 means this process.
	Owner int
	// Script is lab.sh; "" finds testdata/lab/lab.sh above the working
	// directory, or takes $ETCDCTL_WIZARD_LAB_SCRIPT.
	Script string
	// StateRoot is where labs keep their files; "" means the script's
	// default (/run/etcdctl-wizard-lab).
	StateRoot string
}

// Lab is a running lab.
type Lab struct {
	// Name is the parent network namespace; the hosts are Name-infraI.
	Name string
	// Dir is the lab's state folder.
	Dir string
	// Hosts are the lab hosts, in order.
	Hosts []*Host
	// ClientKey is an ed25519 private key (0600) that logs in as root on
	// every host.
	ClientKey string
	// KnownHosts is a known_hosts file listing every host's ed25519 key.
	KnownHosts string
	// Gateway is the parent namespace's address on the lab bridge.
	Gateway string

	script string
	env    []string
}

// Host is one lab host.
type Host struct {
	Name string // infra0 ...
	IP   string // 10.0.1.10 ...
	Port int    // sshd's port
	// NetNS is the host's network namespace.
	NetNS string
	// PID is sshd's process id; Exec enters its namespaces.
	PID int
	// Fingerprint is the SHA256 fingerprint of the host's ed25519 key.
	Fingerprint string

	lab *Lab
}

// Addr is host:port of the host's sshd.
func (h *Host) Addr() string { return net.JoinHostPort(h.IP, strconv.Itoa(h.Port)) }

// Start starts a lab of n hosts for a test and tears it down when the test
// ends; a teardown that leaves anything behind fails the test.
func Start(t testing.TB, n int) *Lab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := New(ctx, Config{Hosts: n})
	if err != nil {
		t.Fatalf("starting the lab: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("lab teardown: %v", err)
		}
	})
	return l
}

// New starts a lab. It first removes labs left by crashed runs.
func New(ctx context.Context, cfg Config) (*Lab, error) {
	if cfg.Hosts < 1 {
		return nil, errors.New("lab: at least one host")
	}
	script := cfg.Script
	if script == "" {
		var err error
		if script, err = findScript(); err != nil {
			return nil, err
		}
	}
	if cfg.Name == "" {
		b := make([]byte, 4)
		rand.Read(b)
		cfg.Name = "ewl" + hex.EncodeToString(b)
	}
	if cfg.Owner == 0 {
		cfg.Owner = os.Getpid()
	}
	l := &Lab{Name: cfg.Name, Gateway: "10.0.1.1", script: script, env: os.Environ()}
	if cfg.StateRoot != "" {
		l.env = append(l.env, "LAB_STATE_ROOT="+cfg.StateRoot)
	}
	if _, err := l.run(ctx, "down", "--stale"); err != nil {
		return nil, err
	}
	out, err := l.run(ctx, "up", strconv.Itoa(cfg.Hosts), "--prefix", cfg.Name, "--owner", strconv.Itoa(cfg.Owner))
	if err != nil {
		return nil, err
	}
	l.Dir = strings.TrimSpace(out)
	l.ClientKey = filepath.Join(l.Dir, "client", "id_ed25519")
	l.KnownHosts = filepath.Join(l.Dir, "known_hosts")
	if err := l.readHosts(); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func (l *Lab) run(ctx context.Context, args ...string) (string, error) {
	// Through bash: the script need not be executable in a fresh checkout.
	cmd := exec.CommandContext(ctx, "bash", append([]string{l.script}, args...)...)
	cmd.Env = l.env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("lab.sh %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

func (l *Lab) readHosts() error {
	f, err := os.Open(filepath.Join(l.Dir, "hosts.tsv"))
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.Split(sc.Text(), "\t")
		if len(p) != 6 {
			return fmt.Errorf("lab: bad hosts.tsv line %q", sc.Text())
		}
		port, err1 := strconv.Atoi(p[2])
		pid, err2 := strconv.Atoi(p[4])
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("lab: bad hosts.tsv line %q: %w", sc.Text(), err)
		}
		l.Hosts = append(l.Hosts, &Host{Name: p[0], IP: p[1], Port: port, NetNS: p[3], PID: pid, Fingerprint: p[5], lab: l})
	}
	return sc.Err()
}

// Close kills every process in the lab's namespaces, deletes them and the
// state folder, and checks that no mount or namespace is left.
func (l *Lab) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := l.run(ctx, "down", "--prefix", l.Name)
	return err
}

// Host returns the host called name, or nil.
func (l *Lab) Host(name string) *Host {
	for _, h := range l.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Dial connects to addr from inside the lab's parent namespace.
func (l *Lab) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := inNetns("/run/netns/"+l.Name, func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lab %s: %w", l.Name, err)
	}
	return c, nil
}

// Listen listens on addr inside the lab's parent namespace (e.g. a discovery
// or DNS server for the hosts at 10.0.1.1).
func (l *Lab) Listen(ctx context.Context, network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := inNetns("/run/netns/"+l.Name, func() error {
		var lc net.ListenConfig
		var err error
		ln, err = lc.Listen(ctx, network, addr)
		return err
	})
	return ln, err
}

// inNetns runs fn on an OS thread that has entered the network namespace at
// nsPath. Sockets keep the namespace they were created in, so connections
// made by fn can be used from any goroutine afterwards. The thread is never
// given back to the Go scheduler: it ends when the goroutine does.
func inNetns(nsPath string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// The main thread must never change namespace: tools that look
			// up a process's namespace read the main thread's, and the lab's
			// teardown would take this test process for a lab process.
			// Locked here, it cannot run the retry.
			errc <- inNetns(nsPath, fn)
			runtime.UnlockOSThread()
			return
		}
		f, err := os.Open(nsPath)
		if err != nil {
			errc <- err
			return
		}
		err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
		f.Close()
		if err != nil {
			errc <- fmt.Errorf("entering %s: %w", nsPath, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Command prepares name with args to run inside the parent namespace.
func (l *Lab) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.Name, name}, args...)...)
}

// Exec runs a shell command inside h and returns its stdout; a failure's
// error carries stderr.
func (h *Host) Exec(ctx context.Context, cmd string) (string, error) {
	return h.Run(ctx, cmd, nil)
}

// Run is Exec with stdin (for secrets such as passwords: never in argv).
func (h *Host) Run(ctx context.Context, cmd string, stdin io.Reader) (string, error) {
	c := exec.CommandContext(ctx, "nsenter", "-t", strconv.Itoa(h.PID), "-n", "-m", "-u", "--wd=/", "--",
		"env", "HOME=/root", "/bin/sh", "-c", cmd)
	c.Stdin = stdin
	var stderr strings.Builder
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s: %q: %w: %s", h.Name, cmd, err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// MustExec is Exec that fails the test on error.
func (h *Host) MustExec(t testing.TB, cmd string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := h.Exec(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// SetLink plugs (up) or unplugs (down) the host's cable to the bridge: a
// partition, with no reset sent to anyone.
func (h *Host) SetLink(up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	i := strings.TrimPrefix(h.Name, "infra")
	out, err := exec.Command("ip", "-n", h.lab.Name, "link", "set", "h"+i, state).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: link %s: %w: %s", h.Name, state, err, out)
	}
	if !up {
		return nil
	}
	// While the cable was out the parent's ARP entry for the host went to
	// FAILED, and connects fail with "no route to host" until it is resolved
	// again. Forget it and return only once sshd answers, so a test that plugs
	// a host back in can use it at once.
	_ = exec.Command("ip", "-n", h.lab.Name, "neigh", "flush", "to", h.IP).Run()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := h.lab.Dial(ctx, "tcp", h.Addr())
		cancel()
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: link up but sshd unreachable after 10 s: %w", h.Name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// KillSessions kills sshd's per-connection processes on h, which cuts every
// SSH connection to it at once (the peer sees the TCP connection close).
// It returns how many it killed.
func (h *Host) KillSessions() (int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The fields after the command name, which is in parentheses and may
		// contain anything.
		rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
		f := strings.Fields(rest)
		if len(f) < 2 || f[1] != strconv.Itoa(h.PID) {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
			n++
		}
	}
	return n, nil
}

// Sudo is how a user added by AddUser may become root.
type Sudo int

const (
	NoSudo       Sudo = iota // not in sudoers
	SudoNoPasswd             // NOPASSWD: ALL
	SudoPassword             // ALL, asking for the user's password
)

// AddUser creates a login user on h that accepts the lab's client key. A
// non-empty password is set (through stdin) for sudo to ask for.
func (h *Host) AddUser(ctx context.Context, name, password string, sudo Sudo) error {
	if !validUser(name) || strings.ContainsAny(password, "\n:") {
		return fmt.Errorf("lab: bad user name or password for %q", name)
	}
	script := fmt.Sprintf(`set -e
useradd -m -s /bin/bash %[1]s
read -r pw || true
if [ -n "$pw" ]; then printf '%%s:%%s\n' %[1]s "$pw" | chpasswd
else usermod -p '*' %[1]s; fi
install -d -m 0700 -o %[1]s -g %[1]s /home/%[1]s/.ssh
install -m 0600 -o %[1]s -g %[1]s /root/.ssh/authorized_keys /home/%[1]s/.ssh/authorized_keys
`, name)
	switch sudo {
	case SudoNoPasswd:
		script += fmt.Sprintf("echo '%s ALL=(ALL) NOPASSWD:ALL' >/etc/sudoers.d/%s\nchmod 0440 /etc/sudoers.d/%s\n", name, name, name)
	case SudoPassword:
		script += fmt.Sprintf("echo '%s ALL=(ALL) ALL' >/etc/sudoers.d/%s\nchmod 0440 /etc/sudoers.d/%s\n", name, name, name)
	}
	_, err := h.Run(ctx, script, strings.NewReader(password+"\n"))
	return err
}

func validUser(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func findScript() (string, error) {
	if s := os.Getenv("ETCDCTL_WIZARD_LAB_SCRIPT"); s != "" {
		return s, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "testdata", "lab", "lab.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("lab: testdata/lab/lab.sh not found above the working directory; set ETCDCTL_WIZARD_LAB_SCRIPT")
		}
		dir = parent
	}
}

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"etcdctl-wizard/plan"
	"etcdctl-wizard/remote"
	"etcdctl-wizard/remote/executor"
)

// hostFlags are the flags of every command that reaches the plan's hosts.
type hostFlags struct {
	file           string
	stateDir       string
	knownHosts     string
	acceptHostKeys []string
	nodeBinary     string
	sshConfig      string
	connectTimeout time.Duration
}

func (o *hostFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&o.file, "file", "f", "", "plan file")
	f.StringVar(&o.stateDir, "state-dir", "", "where the journal and local members live (default $XDG_STATE_HOME/etcdctl-wizard or ~/.local/state/etcdctl-wizard)")
	f.StringVar(&o.knownHosts, "known-hosts", "", "known_hosts file (default ~/.ssh/known_hosts)")
	f.StringArrayVar(&o.acceptHostKeys, "accept-host-key", nil, "trust an unknown host key: HOST=SHA256:... as printed by ssh-keygen -lf (repeatable)")
	f.StringVar(&o.nodeBinary, "node-binary", "", "etcd-node binary to install for bundled plans (default: assets/bin/etcd-node-linux-<arch> next to the wizard or in the source tree)")
	f.StringVar(&o.sshConfig, "ssh-config", "", "ssh config file (default ~/.ssh/config; none to read none)")
	f.DurationVar(&o.connectTimeout, "connect-timeout", 15*time.Second, "SSH connect and login timeout per host")
}

// defaultStateDir is $XDG_STATE_HOME/etcdctl-wizard or ~/.local/state/etcdctl-wizard.
func defaultStateDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "etcdctl-wizard"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("state dir: %w (pass --state-dir)", err)
	}
	return filepath.Join(home, ".local", "state", "etcdctl-wizard"), nil
}

// isTerminal reports whether f is a terminal.
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(file.Fd()), unix.TCGETS)
	return err == nil
}

// prompter asks y/N questions on the terminal, one at a time.
type prompter struct {
	in  *bufio.Reader
	out io.Writer
	tty bool
}

func newPrompter(stdin io.Reader, stderr io.Writer) *prompter {
	return &prompter{in: bufio.NewReader(stdin), out: stderr, tty: isTerminal(stdin)}
}

func (p *prompter) ask(question string) (string, error) {
	fmt.Fprint(p.out, question)
	line, err := p.in.ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("no answer: %w", err)
	}
	return strings.TrimSpace(line), nil
}

func (p *prompter) yes(question string) (bool, error) {
	a, err := p.ask(question + " [y/N] ")
	if err != nil {
		return false, err
	}
	return strings.EqualFold(a, "y") || strings.EqualFold(a, "yes"), nil
}

// executorOptions builds the options shared by apply, status, logs and reset.
func (o *hostFlags) executorOptions(p *prompter) (executor.Options, error) {
	var opts executor.Options
	stateDir := o.stateDir
	if stateDir == "" {
		d, err := defaultStateDir()
		if err != nil {
			return opts, err
		}
		stateDir = d
	}
	known := o.knownHosts
	if known == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return opts, fmt.Errorf("known_hosts: %w (pass --known-hosts)", err)
		}
		known = filepath.Join(home, ".ssh", "known_hosts")
	}
	pins := map[string]string{}
	for _, a := range o.acceptHostKeys {
		h, fp, err := remote.ParseAcceptHostKey(a)
		if err != nil {
			return opts, err
		}
		pins[h] = fp
	}
	var ask remote.ConfirmFunc
	if p.tty {
		ask = func(k remote.HostKey) (bool, error) {
			return p.yes(fmt.Sprintf("The authenticity of host %s can't be established.\n%s key fingerprint is %s.\nTrust it and record it in %s?",
				k.Host, k.Type, k.Fingerprint, known))
		}
	}
	kh := &remote.KnownHosts{Path: known, Confirm: remote.AcceptFingerprints(pins, ask)}
	timeout := o.connectTimeout
	sshConfig := o.sshConfig
	opts = executor.Options{
		StateDir: stateDir,
		Connect: func(ctx context.Context, h plan.HostPlan) (remote.Transport, error) {
			if h.Target.Transport == plan.TransportLocal {
				// Local members live under the state dir, which this user owns.
				return remote.NewLocal(remote.LocalOptions{Name: h.Member}), nil
			}
			so := remote.SSHOptions{Name: h.Member, Host: h.Target.Host, Port: h.Target.Port, User: h.Target.User,
				JumpHost: h.Target.JumpHost, KnownHosts: kh, ConnectTimeout: timeout, ConfigFile: sshConfig}
			if h.Target.KeyFile != "" {
				so.KeyFiles = []string{h.Target.KeyFile}
			}
			if p.tty {
				so.SudoPassword = func(target string) ([]byte, error) {
					return readPassword(p, "sudo password for "+target+": ")
				}
			}
			return remote.DialSSH(ctx, so)
		},
		NodeBinary: o.nodeBinaryFunc(),
		// Relative file sources (spec.tls.dir, spec.node.binary) are
		// relative to the plan file's folder, as in plan validate, certs
		// and the wizard: a plan means the same wherever it is run from.
		BaseDir: planDir(o.file),
	}
	return opts, nil
}

// readPassword reads a line from the terminal without echo.
func readPassword(p *prompter, prompt string) ([]byte, error) {
	fmt.Fprint(p.out, prompt)
	fd := int(os.Stdin.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	noEcho := *old
	noEcho.Lflag &^= unix.ECHO
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &noEcho); err != nil {
		return nil, err
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, old)
	line, err := p.in.ReadBytes('\n')
	fmt.Fprintln(p.out)
	if err != nil && len(line) == 0 {
		return nil, err
	}
	return []byte(strings.TrimRight(string(line), "\r\n")), nil
}

// nodeBinaryFunc finds the bundled etcd-node for an architecture.
func (o *hostFlags) nodeBinaryFunc() func(arch string) (string, error) {
	explicit := o.nodeBinary
	return func(arch string) (string, error) {
		if explicit != "" {
			if _, err := os.Stat(explicit); err != nil {
				return "", fmt.Errorf("--node-binary: %w", err)
			}
			return explicit, nil
		}
		name := "etcd-node-linux-" + arch
		var candidates []string
		if exe, err := os.Executable(); err == nil {
			dir := filepath.Dir(exe)
			candidates = append(candidates, filepath.Join(dir, name), filepath.Join(dir, "..", "assets", "bin", name))
			if arch == runtime.GOARCH && runtime.GOOS == "linux" {
				candidates = append(candidates, filepath.Join(dir, "etcd-node"))
			}
		}
		if wd, err := os.Getwd(); err == nil {
			for d := wd; ; d = filepath.Dir(d) {
				candidates = append(candidates, filepath.Join(d, "assets", "bin", name))
				if filepath.Dir(d) == d {
					break
				}
			}
		}
		for _, c := range candidates {
			if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() {
				return c, nil
			}
		}
		return "", fmt.Errorf("no etcd-node binary for linux/%s: run make node-assets (builds assets/bin/%s) or pass --node-binary", arch, name)
	}
}

// loadPlan loads -f.
func (o *hostFlags) loadPlan(stdin io.Reader) (*plan.Plan, error) {
	if o.file == "" {
		return nil, errors.New("no plan: pass -f PLAN")
	}
	return loadPlan(stdin, o.file)
}

// planAndOptions loads -f and the executor options that reach its hosts:
// what every command working on the plan's hosts starts with.
func (o *hostFlags) planAndOptions(stdin io.Reader, pr *prompter) (*plan.Plan, executor.Options, error) {
	p, err := o.loadPlan(stdin)
	if err != nil {
		return nil, executor.Options{}, err
	}
	opts, err := o.executorOptions(pr)
	if err != nil {
		return nil, executor.Options{}, err
	}
	return p, opts, nil
}

package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"etcdctl-wizard/plan"
	"etcdctl-wizard/tui"
	"etcdctl-wizard/tui/applier"
)

// wizardOptions are the root command's flags: the wizard's.
type wizardOptions struct {
	file       string
	logFile    string
	stateDir   string
	knownHosts string
	nodeBinary string
	sshConfig  string
	// sandboxPort is the sandbox's first client port (hidden; tests move
	// it off the default).
	sandboxPort int
}

// wireWizard makes the root command open the wizard.
func wireWizard(root *cobra.Command, stdin io.Reader, stdout, stderr io.Writer) {
	var o wizardOptions
	f := root.Flags()
	f.StringVarP(&o.file, "file", "f", "", "open this plan in the wizard")
	f.StringVar(&o.logFile, "log-file", "", "where the wizard logs while it runs (default <state dir>/wizard.log)")
	f.StringVar(&o.stateDir, "state-dir", "", "state dir (default $XDG_STATE_HOME/etcdctl-wizard or ~/.local/state/etcdctl-wizard)")
	f.StringVar(&o.knownHosts, "known-hosts", "", "known_hosts file (default ~/.ssh/known_hosts)")
	f.StringVar(&o.nodeBinary, "node-binary", "", "etcd-node binary to install for bundled plans")
	f.StringVar(&o.sshConfig, "ssh-config", "", "ssh config file (default ~/.ssh/config; none to read none)")
	f.IntVar(&o.sandboxPort, "sandbox-base-port", 22379, "client port of the sandbox's first member")
	_ = f.MarkHidden("sandbox-base-port")
	root.Long += `

Without a command, in a terminal, it opens the wizard (with -f PLAN, on that plan).`
	root.RunE = func(cmd *cobra.Command, _ []string) error {
		return runWizard(cmd.Context(), stdin, stdout, stderr, o)
	}
}

// notATerminal is what the root command says when it cannot open the
// wizard.
const notATerminal = `etcdctl-wizard: the wizard needs a terminal, but stdin or stdout is not one.
Use the non-interactive commands instead:
  etcdctl-wizard plan import FILE... -o PLAN   build a plan from etcd command lines or ETCD_* files
  etcdctl-wizard plan validate -f PLAN         check a plan
  etcdctl-wizard plan export -f PLAN           print the dry run (sh, env, systemd, json, yaml, dns)
  etcdctl-wizard apply -f PLAN --yes           provision the plan's hosts
  etcdctl-wizard sandbox up                    run a 3-member cluster on this machine
Run 'etcdctl-wizard --help' for all commands.
`

func terminal(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(int(file.Fd()))
}

func runWizard(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, o wizardOptions) error {
	// Checked before anything touches the terminal: bubbletea would open
	// /dev/tty otherwise.
	if !terminal(stdin) || !terminal(stdout) {
		fmt.Fprint(stderr, notATerminal)
		return &exitError{code: 1}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	stateDir := o.stateDir
	if stateDir == "" {
		d, err := defaultStateDir()
		if err != nil {
			return err
		}
		stateDir = d
	}
	if o.knownHosts == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return fmt.Errorf("known_hosts: %w (pass --known-hosts)", err)
		}
		o.knownHosts = filepath.Join(home, ".ssh", "known_hosts")
	}
	logPath := o.logFile
	if logPath == "" {
		logPath = filepath.Join(stateDir, "wizard.log")
	}
	restore, err := logToFile(logPath)
	if err != nil {
		return err
	}
	defer restore()
	log.Printf("wizard started (plan %q)", o.file)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hf := hostFlags{nodeBinary: o.nodeBinary}
	opts := tui.Options{
		PlanPath: o.file,
		Context:  ctx,
		Applier: applier.New(applier.Config{StateDir: stateDir, KnownHosts: o.knownHosts, SSHConfig: o.sshConfig,
			NodeBinary: hf.nodeBinaryFunc(), StepTimeout: defaultStepTimeout, HealthTimeout: defaultHealthTimeout}),
		IssueCertificates: issueCertificates,
		// The new member's certificates, issued as 'member add' issues them.
		IssueMemberCertificates: func(planPath string, grown *plan.Plan) (string, error) {
			var out strings.Builder
			err := memberCertificates(nil, &out, planPath, grown)
			return out.String(), err
		},
		Sandbox: func() (*plan.Plan, string, error) {
			dir := filepath.Join(stateDir, sandboxName)
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, "", err
			}
			path := filepath.Join(dir, "plan.yaml")
			p, err := plan.LoadReader(strings.NewReader(sandboxPlan(3, o.sandboxPort)), path)
			return p, path, err
		},
	}
	err = tui.Run(opts, stdin, stdout)
	log.Printf("wizard ended: %v", err)
	return err
}

// logToFile sends the standard logger and file descriptor 2 to the log file
// while the wizard draws the terminal, so that no library's stray stderr
// output lands on the screen; restore puts them back.
func logToFile(path string) (restore func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	oldOut, oldFlags := log.Writer(), log.Flags()
	log.SetOutput(f)
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	saved, dupErr := unix.Dup(2)
	if dupErr == nil {
		if err := unix.Dup2(int(f.Fd()), 2); err != nil {
			unix.Close(saved)
			saved = -1
		}
	}
	return func() {
		log.SetOutput(oldOut)
		log.SetFlags(oldFlags)
		if dupErr == nil && saved >= 0 {
			_ = unix.Dup2(saved, 2)
			unix.Close(saved)
		}
		fmt.Fprintf(f, "%s log closed\n", time.Now().Format(time.RFC3339))
		f.Close()
	}, nil
}

// issueCertificates is the wizard's 'certs issue -f PLAN --dir DIR': the CA
// created or reused, the plan's member certificates issued.
func issueCertificates(planPath, dir string) (string, error) {
	var out strings.Builder
	err := runCertsIssue(nil, &out, certsIssueOptions{file: planPath, dir: dir, loopback: true, validity: "1y"},
		func(string) bool { return false })
	return out.String(), err
}

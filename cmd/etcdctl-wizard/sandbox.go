package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"etcdctl-wizard/plan"
)

// sandboxName is the sandbox cluster's name; its plan and members live in
// <state dir>/sandbox/.
const sandboxName = "sandbox"

type sandboxOptions struct {
	hostFlags
	basePort int
	members  int
	output   string
}

func newSandboxCmd() *cobra.Command {
	var o sandboxOptions
	cmd := &cobra.Command{
		Use:   "sandbox up|down|status",
		Short: "Run a 3-member cluster on this machine (127.0.0.1), without SSH",
		Long: `sandbox up writes a plan with local members on 127.0.0.1 (their own ports, their files under
the state dir) to <state dir>/sandbox/plan.yaml and applies it; status shows the cluster; down stops
the members and removes their files.`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"up", "down", "status"},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSandbox(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), o, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.stateDir, "state-dir", "", "state dir (default $XDG_STATE_HOME/etcdctl-wizard or ~/.local/state/etcdctl-wizard)")
	f.StringVar(&o.nodeBinary, "node-binary", "", "etcd-node binary (default: next to the wizard or assets/bin)")
	f.IntVar(&o.basePort, "base-port", 22379, "client port of the first member; member i uses base+100*i (client) and base+100*i+1 (peer)")
	f.IntVar(&o.members, "members", 3, "number of members")
	f.StringVarP(&o.output, "output", "o", "text", "output: text or json")
	return cmd
}

// sandboxPlan renders the sandbox plan.
func sandboxPlan(members, basePort int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# The sandbox: members on this machine (transport local), written by etcdctl-wizard sandbox up.
apiVersion: etcdctl-wizard/v1
kind: Cluster
metadata:
  name: %s
spec:
  bootstrap:
    mode: static
  tls:
    mode: none
  node:
    dataDir: ""
    listen: ip
  members:
`, sandboxName)
	for i := 0; i < members; i++ {
		fmt.Fprintf(&b, "    - name: member%d\n      ip: 127.0.0.1\n      clientPort: %d\n      peerPort: %d\n      transport: local\n",
			i, basePort+100*i, basePort+100*i+1)
	}
	return b.String()
}

func runSandbox(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, o sandboxOptions, action string) error {
	if o.stateDir == "" {
		d, err := defaultStateDir()
		if err != nil {
			return err
		}
		o.stateDir = d
	}
	if o.members < 1 || o.members > 9 {
		return fmt.Errorf("--members %d: between 1 and 9", o.members)
	}
	if o.basePort < 1024 || o.basePort+100*(o.members-1)+1 > 65535 {
		return fmt.Errorf("--base-port %d: the members' ports must lie within 1024-65535", o.basePort)
	}
	dir := filepath.Join(o.stateDir, sandboxName)
	o.file = filepath.Join(dir, "plan.yaml")
	switch action {
	case "up":
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		text := sandboxPlan(o.members, o.basePort)
		if _, err := plan.LoadReader(strings.NewReader(text), o.file); err != nil {
			return err
		}
		tmp := o.file + ".tmp"
		if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, o.file); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "sandbox plan: %s\n", o.file)
		return runApply(ctx, stdin, stdout, stderr, applyOptions{hostFlags: o.hostFlags, output: o.output, yes: true, parallel: 10,
			stepTimeout: defaultStepTimeout, healthTimeout: defaultHealthTimeout})
	case "down", "status":
		if _, err := os.Stat(o.file); err != nil {
			return fmt.Errorf("no sandbox in %s: run etcdctl-wizard sandbox up", dir)
		}
		if action == "down" {
			err := runReset(ctx, stdin, stdout, stderr, resetOptions{hostFlags: o.hostFlags, output: o.output, yes: true})
			if err == nil {
				os.Remove(o.file)
			}
			return err
		}
		return runStatus(ctx, stdin, stdout, stderr, statusOptions{hostFlags: o.hostFlags, output: o.output})
	}
	return fmt.Errorf("sandbox %q: use up, down or status", action)
}

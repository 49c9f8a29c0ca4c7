// Command etcdctl-wizard plans, validates, exports and (later) applies etcd
// clusters. See README.md.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"etcdctl-wizard/node/version"

	"github.com/spf13/cobra"
)

// exitError carries an exit status for errors already reported to the
// user, so that main does not print them twice.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes the command line and returns the exit status; tests call it
// directly.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd(stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintf(stderr, "etcdctl-wizard: %v\n", err)
	return 1
}

func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "etcdctl-wizard",
		Short: "Plan, validate and export etcd clusters",
		Long: `etcdctl-wizard plans an etcd cluster (static, discovery or DNS SRV bootstrap; no TLS,
self-signed or auto TLS), validates it with the same checks the members run at start,
and exports it as etcd command lines, ETCD_* files, systemd units or the step list
that apply runs.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w\nRun '%s --help' for usage", err, cmd.CommandPath())
	})
	root.AddCommand(newVersionCmd(), newPlanCmd(), newCertsCmd(), newDiscoveryCmd(), newDNSCmd())
	root.AddCommand(newApplyCmd(), newStatusCmd(), newLogsCmd(), newResetCmd(), newSandboxCmd(), newMemberCmd())
	wireWizard(root, stdin, stdout, stderr)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "etcdctl-wizard %s (%s, %s/%s)\n", version.Build, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"etcdctl-wizard/remote/executor"
)

type resetOptions struct {
	hostFlags
	output string
	yes    bool
}

func newResetCmd() *cobra.Command {
	var o resetOptions
	cmd := &cobra.Command{
		Use:   "reset -f PLAN",
		Short: "Stop the plan's members and remove their data, binaries and service files",
		Long: `reset stops every member of the plan and removes its data dir, the installed binary, the env
file, certificates and the service. It touches only the plan's hosts and only the paths the plan
names; a data dir holding another cluster's data is kept. It asks you to type the cluster name,
unless --yes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runReset(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), o)
		},
	}
	o.register(cmd)
	cmd.Flags().StringVarP(&o.output, "output", "o", "text", "output: text or json")
	cmd.Flags().BoolVarP(&o.yes, "yes", "y", false, "do not ask for the cluster name")
	return cmd
}

func runReset(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, o resetOptions) error {
	sink, err := eventSink(o.output, stdout)
	if err != nil {
		return err
	}
	pr := newPrompter(stdin, stderr)
	if !o.yes && !pr.tty {
		return errors.New("reset deletes the cluster's data and asks you to type its name, but stdin is not a terminal: pass --yes")
	}
	p, opts, err := o.planAndOptions(stdin, pr)
	if err != nil {
		return err
	}
	opts.Events = sink
	if !o.yes {
		opts.Confirm = func(s executor.Summary) (bool, error) {
			fmt.Fprint(stderr, summaryText(s))
			a, err := pr.ask(fmt.Sprintf("This deletes the data of cluster %s on these %d hosts. Type the cluster name to confirm: ", s.Cluster, len(s.Hosts)))
			if err != nil {
				return false, err
			}
			return a == s.Cluster, nil
		}
	}
	ctx, cancel := signalContext(ctx)
	defer cancel()
	_, err = executor.Reset(ctx, p, opts)
	return err
}

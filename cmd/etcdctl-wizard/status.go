package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"etcdctl-wizard/remote/executor"
	"etcdctl-wizard/remote/follow"
)

type statusOptions struct {
	hostFlags
	output   string
	watch    bool
	interval time.Duration
}

func newStatusCmd() *cobra.Command {
	var o statusOptions
	cmd := &cobra.Command{
		Use:   "status -f PLAN",
		Short: "Show the members, the leader, raft term and index, and health of the plan's cluster",
		Long: `status asks every member for its status with the etcd v3 API, through each host's SSH
connection (port-forwarding to the member's client URL), so it works behind a bastion.
The exit status is 1 when the cluster is not healthy.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runStatus(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), o)
		},
	}
	o.register(cmd)
	cmd.Flags().StringVarP(&o.output, "output", "o", "text", "output: text or json")
	cmd.Flags().BoolVarP(&o.watch, "watch", "w", false, "keep printing the status")
	cmd.Flags().DurationVar(&o.interval, "interval", 2*time.Second, "time between statuses with --watch")
	return cmd
}

func runStatus(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, o statusOptions) error {
	if err := checkTextOrJSON(o.output); err != nil {
		return err
	}
	p, opts, err := o.planAndOptions(stdin, newPrompter(stdin, stderr))
	if err != nil {
		return err
	}
	ctx, cancel := signalContext(ctx)
	defer cancel()
	hosts, err := executor.Open(ctx, p, opts)
	if err != nil {
		return err
	}
	defer hosts.Close()
	tlsCfg, err := executor.ClientTLS(p, opts.BaseDir)
	if err != nil {
		return err
	}
	eps := hosts.Endpoints()
	if o.watch {
		for st := range follow.Follow(ctx, eps, tlsCfg, o.interval) {
			if err := printStatus(stdout, o.output, p.Metadata.Name, st); err != nil {
				return err
			}
		}
		return nil
	}
	st := follow.Status(ctx, eps, tlsCfg)
	if err := printStatus(stdout, o.output, p.Metadata.Name, st); err != nil {
		return err
	}
	if !st.Healthy {
		return &exitError{code: 1}
	}
	return nil
}

func printStatus(w io.Writer, output, cluster string, st follow.ClusterStatus) error {
	if output == "json" {
		b, err := json.Marshal(st)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	health := "healthy"
	if !st.Healthy {
		health = "NOT healthy"
	}
	leader := st.Leader
	if leader == "" {
		leader = "none"
	}
	fmt.Fprintf(w, "cluster %s: %s, leader %s, raft term %d, index %d (%s)\n", cluster, health, leader, st.Term, st.Index, st.Time.Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tID\tURL\tLEADER\tTERM\tINDEX\tVERSION\tHEALTH")
	for _, m := range st.Members {
		h := "healthy"
		if !m.Healthy {
			h = "unhealthy"
			if m.Err != "" {
				h += ": " + m.Err
			}
		}
		ld := ""
		if m.Leader {
			ld = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", m.Name, m.ID, m.URL, ld, m.RaftTerm, m.RaftIndex, m.Version, h)
	}
	return tw.Flush()
}

package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"etcdctl-wizard/node/discovery"
	"etcdctl-wizard/remote/discoverytoken"
)

func newDiscoveryCmd() *cobra.Command {
	return newGroupCmd("discovery", "Create and inspect etcd discovery tokens",
		`discovery works with the etcd discovery service protocol (discovery.etcd.io, or any etcd-node
cluster, which serves it on its client port). A token bootstraps exactly one cluster, once.`,
		newDiscoveryNewCmd(), newDiscoveryShowCmd())
}

func newDiscoveryNewCmd() *cobra.Command {
	var service string
	var size int
	cmd := &cobra.Command{
		Use:   "new --service URL [--size N]",
		Short: "Create a discovery token expecting N members and print its URL",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 15*time.Second)
			defer cancel()
			u, err := discoverytoken.New(ctx, nil, service, size)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), u)
			return err
		},
	}
	cmd.Flags().StringVar(&service, "service", "", "the discovery service (required): a base URL serving /new, e.g. http://10.0.0.5:2379,\nor a v2 keys folder to create the token in, e.g. http://10.0.0.5:2379/v2/keys/discovery")
	cmd.Flags().IntVar(&size, "size", 3, "the number of members the token expects")
	_ = cmd.MarkFlagRequired("service")
	return cmd
}

func newDiscoveryShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show URL",
		Short: "Show a token's expected size and its registrations, without registering",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 15*time.Second)
			defer cancel()
			st, err := discovery.InspectV2(ctx, args[0], "", nil)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "size %d, %d registered\n", st.Size, len(st.Registrations))
			for _, r := range st.Registrations {
				fmt.Fprintf(out, "  %s  %s\n", r.ID, r.Value)
			}
			return nil
		},
	}
}

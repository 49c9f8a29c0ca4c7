package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/spf13/cobra"

	"etcdctl-wizard/plan"
	"etcdctl-wizard/plan/dnscheck"
)

func newDNSCmd() *cobra.Command {
	return newGroupCmd("dns", "Print and check the DNS records of a dns-srv plan",
		`dns works with the SRV and A records the members of a dns-srv plan look up at start
(--discovery-srv, --discovery-srv-name). apply runs the same check from the first host
before it changes anything.`,
		newDNSRecordsCmd(), newDNSCheckCmd())
}

func newDNSRecordsCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "records -f PLAN",
		Short: "Print the records to publish, in zone-file syntax",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := loadDNSPlan(cmd.InOrStdin(), file)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), p.DNSRecords())
			return err
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "plan file (- for stdin)")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func newDNSCheckCmd() *cobra.Command {
	var file, server string
	cmd := &cobra.Command{
		Use:   "check -f PLAN [--server ADDR]",
		Short: "Look the plan's records up and say which are missing or wrong (exit 1 when members could not bootstrap)",
		Long: `check looks up every SRV and A record the plan needs, through this machine's resolver or the
given DNS server, and compares them with the plan: missing records, wrong ports, server SRV targets
that are no member (the members would wait for them), host names resolving to another address.
Problems with client records are warnings. The members resolve from their hosts: where their DNS
differs from this machine's, trust the check apply runs from the first host.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := loadDNSPlan(cmd.InOrStdin(), file)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 15*time.Second)
			defer cancel()
			r, err := resolverFor(server)
			if err != nil {
				return err
			}
			return printDNSReport(cmd.OutOrStdout(), dnscheck.Check(ctx, p, r))
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "plan file (- for stdin)")
	cmd.Flags().StringVar(&server, "server", "", "DNS server to ask, IP or IP:PORT (default: this machine's resolver)")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func loadDNSPlan(stdin io.Reader, file string) (*plan.Plan, error) {
	p, err := loadPlan(stdin, file)
	if err != nil {
		return nil, err
	}
	if p.WithDefaults().Spec.Bootstrap.Mode != plan.ModeDNSSRV {
		return nil, fmt.Errorf("%s: spec.bootstrap.mode is %q: only dns-srv plans need DNS records", file, p.WithDefaults().Spec.Bootstrap.Mode)
	}
	return p, nil
}

// resolverFor is this machine's resolver, or one asking only server.
func resolverFor(server string) (*net.Resolver, error) {
	if server == "" {
		return net.DefaultResolver, nil
	}
	if _, _, err := net.SplitHostPort(server); err != nil {
		server = net.JoinHostPort(server, "53")
	}
	if host, _, _ := net.SplitHostPort(server); net.ParseIP(host) == nil {
		return nil, fmt.Errorf("--server %q: give the DNS server's IP address, optionally with :PORT", server)
	}
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, server)
	}}, nil
}

func printDNSReport(w io.Writer, rep dnscheck.Report) error {
	fatal := 0
	for _, rec := range rep.Records {
		switch {
		case rec.OK():
			fmt.Fprintf(w, "ok       %s\n", rec)
		case rec.Fatal:
			fatal++
			fmt.Fprintf(w, "error    %s\n         %s\n", rec, rec.Problem)
		default:
			fmt.Fprintf(w, "warning  %s\n         %s\n", rec, rec.Problem)
		}
	}
	if fatal > 0 {
		return errors.New(plural(fatal, "record") + " would stop the members at start; publish them as shown (etcdctl-wizard dns records -f PLAN)")
	}
	return nil
}

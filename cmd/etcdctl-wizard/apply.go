package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"etcdctl-wizard/plan"
	"etcdctl-wizard/remote/executor"
)

const (
	defaultStepTimeout   = 5 * time.Minute
	defaultHealthTimeout = 90 * time.Second
)

type applyOptions struct {
	hostFlags
	output        string
	yes           bool
	parallel      int
	stepTimeout   time.Duration
	healthTimeout time.Duration
	dnsServer     string
}

func newApplyCmd() *cobra.Command {
	var o applyOptions
	cmd := &cobra.Command{
		Use:   "apply -f PLAN",
		Short: "Provision the plan's cluster on its hosts and wait until it is healthy",
		Long: `apply connects to every host of the plan, gathers facts and runs a preflight on all of them;
only when every host passes does it change anything: it installs the node binary, certificates,
the ETCD_* env file and a service (a systemd unit, or a small supervisor where systemd does not
run), starts the members and waits until the cluster is healthy. Every step is checked first, so
applying an unchanged plan again changes and restarts nothing, and an interrupted apply resumes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runApply(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), o)
		},
	}
	o.register(cmd)
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "text", "output: text (one line per event) or json (one JSON event per line)")
	f.BoolVarP(&o.yes, "yes", "y", false, "do not ask for confirmation")
	f.IntVar(&o.parallel, "parallel", 10, "hosts changed at once")
	f.DurationVar(&o.stepTimeout, "step-timeout", defaultStepTimeout, "time limit of one step on one host")
	f.DurationVar(&o.healthTimeout, "health-timeout", defaultHealthTimeout, "time limit for the members and the cluster to become healthy")
	f.StringVar(&o.dnsServer, "dns-server", "", "dns-srv plans: the DNS server the preflight asks from the first host (default: the one in its /etc/resolv.conf)")
	return cmd
}

// eventSink picks the event consumer for --output.
func eventSink(output string, w io.Writer) (func(executor.Event), error) {
	switch output {
	case "text":
		return executor.LinePrinter(w), nil
	case "json":
		return executor.JSONLines(w), nil
	}
	return nil, fmt.Errorf("--output %q: use text or json", output)
}

func signalContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx == nil {
		ctx = context.Background()
	}
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

func runApply(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, o applyOptions) error {
	sink, err := eventSink(o.output, stdout)
	if err != nil {
		return err
	}
	if o.parallel < 1 {
		return fmt.Errorf("--parallel %d: at least 1", o.parallel)
	}
	pr := newPrompter(stdin, stderr)
	if !o.yes && !pr.tty {
		return errors.New("apply changes hosts and asks for confirmation, but stdin is not a terminal: pass --yes to apply without asking")
	}
	p, opts, err := o.planAndOptions(stdin, pr)
	if err != nil {
		return err
	}
	opts.Events, opts.Parallel, opts.StepTimeout, opts.HealthTimeout, opts.DNSServer = sink, o.parallel, o.stepTimeout, o.healthTimeout, o.dnsServer
	if !o.yes {
		opts.Confirm = func(s executor.Summary) (bool, error) {
			fmt.Fprint(stderr, summaryText(s))
			return pr.yes(fmt.Sprintf("Apply cluster %s to these %d hosts?", s.Cluster, len(s.Hosts)))
		}
	}
	if p.WithDefaults().Spec.TLS.Mode == plan.TLSSelfSigned {
		if err := ensureCertificates(stdin, stderr, o.file); err != nil {
			return err
		}
	}
	ctx, cancel := signalContext(ctx)
	defer cancel()
	_, err = executor.Apply(ctx, p, opts)
	return err
}

// ensureCertificates issues, with the CA in spec.tls.dir (created when
// missing), every member certificate the plan needs that is missing or no
// longer fits, and the wizard's own client certificate (etcdctl-wizard.crt)
// for status and health checks. Valid files are kept. The CA key stays in
// that folder: apply uploads only the files the members' flags name.
func ensureCertificates(stdin io.Reader, w io.Writer, file string) error {
	none := func(string) bool { return false }
	base := certsIssueOptions{file: file, loopback: true, validity: "1y"}
	if err := runCertsIssue(stdin, w, base, none); err != nil {
		var me *misfitError
		if errors.As(err, &me) {
			return fmt.Errorf("certificates that the plan's members would not accept; no host was changed:\n%s\nreplace them with `etcdctl-wizard certs issue -f %s --force`, then apply again",
				strings.Join(me.files, "\n"), file)
		}
		return fmt.Errorf("certificates: %w", err)
	}
	base.client = "etcdctl-wizard"
	if err := runCertsIssue(stdin, w, base, none); err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	return nil
}

func summaryText(s executor.Summary) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Cluster %s:\n", s.Cluster)
	for _, h := range s.Hosts {
		state := "new member"
		switch {
		case h.Facts != nil && h.Facts.Running:
			state = "running member (changed files restart it)"
		case h.DataState != "absent" && h.DataState != "empty":
			state = "existing data of this cluster"
		}
		fmt.Fprintf(&b, "  %-10s %-28s %-10s %s\n", h.Member, h.Target, h.Service, state)
		for _, w := range h.Warnings {
			fmt.Fprintf(&b, "             warning: %s\n", w)
		}
	}
	return b.String()
}

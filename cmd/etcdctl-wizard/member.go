package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"etcdctl-wizard/plan"
	"etcdctl-wizard/remote/executor"
)

func newMemberCmd() *cobra.Command {
	return newGroupCmd("member", "List, add and remove members of the plan's running cluster",
		`member attaches to the running cluster the plan describes, through the SSH connections of its
hosts (as status does), and changes its membership by runtime reconfiguration. add and remove
rewrite the plan file afterwards, so that it keeps describing the cluster (see docs/plan.md,
"Runtime membership and identity").`,
		newMemberListCmd(), newMemberAddCmd(), newMemberRemoveCmd())
}

type memberListOptions struct {
	hostFlags
	output string
}

func newMemberListCmd() *cobra.Command {
	var o memberListOptions
	cmd := &cobra.Command{
		Use:   "list -f PLAN",
		Short: "Show the running cluster's members beside the plan's",
		Long: `list asks the first member of the plan that answers for the cluster's member list (clientv3
MemberList through its host's SSH connection) and shows it beside the plan: members in both,
members only in the plan (not added yet, or lost), members only in the cluster (added outside
the wizard), learners, the leader and each member's health. The exit status is 1 when no member
answers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runMemberList(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), o)
		},
	}
	o.register(cmd)
	cmd.Flags().StringVarP(&o.output, "output", "o", "text", "output: text or json")
	return cmd
}

func runMemberList(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, o memberListOptions) error {
	if err := checkTextOrJSON(o.output); err != nil {
		return err
	}
	p, opts, err := o.planAndOptions(stdin, newPrompter(stdin, stderr))
	if err != nil {
		return err
	}
	ctx, cancel := signalContext(ctx)
	defer cancel()
	v, err := executor.ListMembers(ctx, p, opts)
	if err != nil {
		return err
	}
	if o.output == "json" {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	return printMemberView(stdout, v)
}

func printMemberView(w io.Writer, v *executor.MemberView) error {
	plan := "the plan computes " + v.PlanClusterID
	if v.Pinned {
		plan = "pinned in the plan"
	}
	if v.PlanClusterID != v.ClusterID {
		plan += " (differs: not this plan's cluster?)"
	}
	sync := "the plan matches the cluster"
	if !v.InSync {
		sync = "the plan and the cluster differ"
	}
	fmt.Fprintf(w, "cluster %s: ID %s (%s), asked through %s; %s\n", v.Cluster, v.ClusterID, plan, v.Via, sync)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tID\tPEER URLS\tPLAN\tCLUSTER\tROLE\tHEALTH\tNOTE")
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "-"
	}
	for _, m := range v.Members {
		role := "voter"
		switch {
		case !m.InCluster:
			role = "-"
		case m.Learner:
			role = "learner"
		case m.Leader:
			role = "leader"
		}
		name := m.Name
		if name == "" {
			name = "(unstarted)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, dash(m.ID), strings.Join(m.PeerURLs, ","), yes(m.InPlan), yes(m.InCluster), role, dash(m.Health), m.Note)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

type memberChangeOptions struct {
	hostFlags
	output        string
	yes           bool
	stepTimeout   time.Duration
	healthTimeout time.Duration
}

func (o *memberChangeOptions) register(cmd *cobra.Command) {
	o.hostFlags.register(cmd)
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "text", "output: text (one line per event) or json (one JSON event per line)")
	f.BoolVarP(&o.yes, "yes", "y", false, "do not ask for confirmation")
	f.DurationVar(&o.stepTimeout, "step-timeout", defaultStepTimeout, "time limit of one step on one host")
	f.DurationVar(&o.healthTimeout, "health-timeout", defaultHealthTimeout, "time limit for a member and the cluster to become healthy (and for a learner to catch up)")
}

// prepare checks the flags that every membership change shares and loads
// the plan, which must be a file: the change rewrites it.
func (o *memberChangeOptions) prepare(stdin io.Reader, stdout, stderr io.Writer, what string) (*plan.Plan, executor.Options, *prompter, error) {
	var opts executor.Options
	sink, err := eventSink(o.output, stdout)
	if err != nil {
		return nil, opts, nil, err
	}
	pr := newPrompter(stdin, stderr)
	if !o.yes && !pr.tty {
		return nil, opts, nil, fmt.Errorf("member %s changes the running cluster and asks for confirmation, but stdin is not a terminal: pass --yes", what)
	}
	if o.file == "-" {
		return nil, opts, nil, fmt.Errorf("member %s rewrites the plan file: give its path with -f, not -", what)
	}
	p, opts, err := o.planAndOptions(stdin, pr)
	if err != nil {
		return nil, opts, nil, err
	}
	opts.Events, opts.StepTimeout, opts.HealthTimeout = sink, o.stepTimeout, o.healthTimeout
	return p, opts, pr, nil
}

// savePlan writes the plan over -f atomically.
func (o *memberChangeOptions) savePlan(p *plan.Plan) error {
	return plan.Save(o.file, p)
}

type memberAddOptions struct {
	memberChangeOptions
	member plan.Member
}

func newMemberAddCmd() *cobra.Command {
	var o memberAddOptions
	cmd := &cobra.Command{
		Use:   "add -f PLAN --name NAME --ip IP",
		Short: "Add a host to the running cluster as a new member, and to the plan",
		Long: `add joins a new member to the running cluster the way etcd recommends: it runs apply's
preflight on the new host (facts, free ports, no foreign data, host key), checks that the cluster
is healthy and is the plan's (same members, no learner left over) and has no member of that name
or peer URL; then MemberAdd as a learner, installs and starts the member with
--initial-cluster-state existing, waits until it serves and has caught up (MemberPromote, retried
while etcd says the learner is not in sync yet), and writes the plan with the member (join: true,
memberID) and spec.clusterID. With tls.mode self-signed the member's certificates are issued
first. A failure before the promotion rolls back: the learner is removed and its host cleaned.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runMemberAdd(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), o)
		},
	}
	o.memberChangeOptions.register(cmd)
	f := cmd.Flags()
	f.StringVar(&o.member.Name, "name", "", "the new member's name (required)")
	f.StringVar(&o.member.IP, "ip", "", "the address the new member binds and advertises (required)")
	f.StringVar(&o.member.Hostname, "hostname", "", "its host name (advertised in dns-srv mode)")
	f.StringVar(&o.member.SSH.Host, "ssh-host", "", "SSH host (default: the ip)")
	f.StringVar(&o.member.SSH.User, "ssh-user", "", "SSH user (default root)")
	f.IntVar(&o.member.SSH.Port, "ssh-port", 0, "SSH port (default 22)")
	f.StringVar(&o.member.SSH.KeyFile, "ssh-key", "", "SSH private key file (default: ssh-agent, then ~/.ssh/id_*)")
	f.StringVar(&o.member.SSH.JumpHost, "ssh-jump-host", "", "bastion, user@host:port")
	return cmd
}

func runMemberAdd(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, o memberAddOptions) error {
	m := o.member
	if m.Name == "" || m.IP == "" {
		return errors.New("member add needs the new member's --name and --ip")
	}
	p, opts, pr, err := o.prepare(stdin, stdout, stderr, "add")
	if err != nil {
		return err
	}
	if !o.yes {
		opts.Confirm = func(s executor.Summary) (bool, error) {
			fmt.Fprint(stderr, summaryText(s))
			return pr.yes(fmt.Sprintf("Add %s to the running cluster %s?", m.Name, s.Cluster))
		}
	}
	grown, err := executor.PlanWithMember(p, m)
	if err != nil {
		return err
	}
	if p.WithDefaults().Spec.TLS.Mode == plan.TLSSelfSigned {
		if err := memberCertificates(stdin, stderr, o.file, grown); err != nil {
			return err
		}
	}
	ctx, cancel := signalContext(ctx)
	defer cancel()
	start := time.Now()
	res, err := executor.AddMember(ctx, p, m, opts, executor.MemberOptions{SavePlan: o.savePlan, PromoteTimeout: o.healthTimeout})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%s (ID %s) is a voting member of cluster %s after %s; %s lists it\n",
		res.Member, res.MemberID, res.ClusterID, time.Since(start).Round(time.Millisecond), o.file)
	return nil
}

// memberCertificates issues the new member's certificates as apply does
// (ensureCertificates), from a copy of the plan that lists it, written next
// to the plan so that its relative tls.dir means the same; the copy is
// removed afterwards.
func memberCertificates(stdin io.Reader, w io.Writer, file string, grown *plan.Plan) error {
	data, err := plan.Marshal(grown)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(file), ".etcdctl-wizard-member-add-*.yaml")
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("certificates: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	if err := ensureCertificates(stdin, w, f.Name()); err != nil {
		// The copy is gone once this returns: name the plan itself.
		return errors.New(strings.ReplaceAll(err.Error(), f.Name(), file))
	}
	return nil
}

type memberRemoveOptions struct {
	memberChangeOptions
	force bool
}

func newMemberRemoveCmd() *cobra.Command {
	var o memberRemoveOptions
	cmd := &cobra.Command{
		Use:   "remove -f PLAN NAME",
		Short: "Remove a member from the running cluster, clean its host, and drop it from the plan",
		Long: `remove takes a member out of the running cluster: it refuses to remove the last voting
member, a member of a two-member cluster, or one while other members are unhealthy (--force
allows the last two as long as the rest keep a quorum). When the member leads, the leadership is
first moved to a healthy voting member (MoveLeader; members that lack it hold an election).
Then MemberRemove, the member is stopped and its data, binary, env file, certificates and
service are removed from its host (as reset does), and the plan is written without it, with
spec.clusterID.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMemberRemove(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], o)
		},
	}
	o.memberChangeOptions.register(cmd)
	cmd.Flags().BoolVar(&o.force, "force", false, "remove from a two-member cluster, or while other members are unhealthy (never below a quorum)")
	return cmd
}

func runMemberRemove(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, name string, o memberRemoveOptions) error {
	p, opts, pr, err := o.prepare(stdin, stdout, stderr, "remove")
	if err != nil {
		return err
	}
	if !o.yes {
		opts.Confirm = func(s executor.Summary) (bool, error) {
			fmt.Fprint(stderr, summaryText(s))
			return pr.yes(fmt.Sprintf("Remove %s from the running cluster %s and delete its data on its host?", name, s.Cluster))
		}
	}
	ctx, cancel := signalContext(ctx)
	defer cancel()
	res, err := executor.RemoveMember(ctx, p, name, opts, executor.MemberOptions{SavePlan: o.savePlan, Force: o.force})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%s is no longer a member of cluster %s; its host was cleaned and %s no longer lists it\n", name, res.ClusterID, o.file)
	return nil
}

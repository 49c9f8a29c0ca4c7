package main

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/spf13/cobra"

	"etcdctl-wizard/remote/executor"
	"etcdctl-wizard/remote/follow"
)

type logsOptions struct {
	hostFlags
	lines  int
	follow bool
}

func newLogsCmd() *cobra.Command {
	var o logsOptions
	cmd := &cobra.Command{
		Use:   "logs -f PLAN [MEMBER]",
		Short: "Print the tail of the members' logs (all members, or one)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			member := ""
			if len(args) == 1 {
				member = args[0]
			}
			return runLogs(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), o, member)
		},
	}
	o.register(cmd)
	cmd.Flags().IntVarP(&o.lines, "lines", "n", 50, "lines to print from the end of each log")
	cmd.Flags().BoolVar(&o.follow, "follow", false, "keep printing new lines (Ctrl-C to stop)")
	return cmd
}

// prefixWriter prefixes every line with the member name when several logs
// interleave.
type prefixWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := indexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		p.mu.Lock()
		_, err := fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf[:i])
		p.mu.Unlock()
		if err != nil {
			return 0, err
		}
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func runLogs(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, o logsOptions, member string) error {
	if o.lines < 0 {
		return fmt.Errorf("--lines %d: not negative", o.lines)
	}
	p, err := o.loadPlan(stdin)
	if err != nil {
		return err
	}
	if member != "" {
		found := false
		for _, m := range p.Spec.Members {
			found = found || m.Name == member
		}
		if !found {
			return fmt.Errorf("member %q is not in the plan", member)
		}
		// Only that member's host is contacted.
		q := *p
		q.Spec.Members = nil
		for _, m := range p.Spec.Members {
			if m.Name == member {
				q.Spec.Members = append(q.Spec.Members, m)
			}
		}
		p = &q
	}
	opts, err := o.executorOptions(newPrompter(stdin, stderr))
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
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, len(hosts.Hosts))
	for _, pr := range hosts.Problems {
		fmt.Fprintf(stderr, "etcdctl-wizard: %s\n", pr.Error())
	}
	for i, h := range hosts.Hosts {
		if (member != "" && h.Plan.Member != member) || h.Transport == nil {
			continue
		}
		var w io.Writer = stdout
		if member == "" {
			w = &prefixWriter{mu: &mu, w: stdout, prefix: h.Plan.Member + " | "}
		}
		run := func() { errs[i] = follow.Tail(ctx, h.Transport, h.Plan.Layout, o.lines, o.follow, w) }
		if o.follow {
			wg.Add(1)
			go func() { defer wg.Done(); run() }()
		} else {
			run()
		}
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("%s: %w", hosts.Hosts[i].Plan.Member, err)
		}
	}
	if len(hosts.Problems) > 0 {
		return &exitError{code: 1}
	}
	return nil
}

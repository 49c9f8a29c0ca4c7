// Command bench compares etcd-node with upstream etcd on loopback: it starts a 3-member cluster
// of each with identical static flags, runs the same clientv3 workload against both in one run,
// and prints one table (metric | etcd-node | upstream etcd | ratio). `make bench` runs it.
//
// Workload (the published etcd performance setup, scaled to one machine): puts of sequential
// 8-byte keys with 256-byte values at 1 and 64 concurrent clients (1 and 16 connections), then
// linearizable Range of one key at the same concurrencies, all sent to the leader; the time from
// a put on the leader to its event at a watcher on a follower; RSS of every member idle and after
// the cluster holds --fill-keys keys.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"etcdctl-wizard/node/nodetest/proc"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	ours      string        // etcd-node binary; empty: build ./cmd/etcd-node
	upstream  string        // upstream etcd binary; empty: the cached v3.7.3 build
	ops       int           // operations per measured phase (0: limited by duration only)
	duration  time.Duration // time limit per measured phase (0: limited by ops only)
	clients   []int         // concurrencies to measure
	maxConns  int           // connections are min(clients, maxConns)
	rounds    int           // each phase alternates between the clusters this many times
	fillKeys  int           // keys the cluster holds before the loaded RSS is read
	watchOps  int           // puts timed from the put to the event on a follower's watcher
	valueSize int
	dataRoot  string // parent of the temp dir holding both clusters' data
	keep      bool   // keep data dirs and logs
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.ours, "ours", "", "etcd-node binary to measure (default: go build ./cmd/etcd-node)")
	fs.StringVar(&o.upstream, "upstream", "", "upstream etcd binary (default: v3.7.3 built by testdata/upstream/build.sh)")
	fs.IntVar(&o.ops, "ops", 10000, "operations per measured phase; 0 to use -duration alone")
	fs.DurationVar(&o.duration, "duration", 0, "time limit per measured phase (0: none)")
	clients := fs.String("clients", "1,64", "comma-separated concurrent client counts")
	fs.IntVar(&o.maxConns, "max-conns", 16, "connections per phase are min(clients, max-conns)")
	fs.IntVar(&o.rounds, "rounds", 4, "split each phase into this many rounds alternating between the clusters")
	fs.IntVar(&o.fillKeys, "fill-keys", 100000, "keys written before the loaded RSS is read")
	fs.IntVar(&o.watchOps, "watch-ops", 1000, "puts timed to their watch event on a follower (0: skip)")
	fs.IntVar(&o.valueSize, "value-size", 256, "value size in bytes")
	fs.StringVar(&o.dataRoot, "data-root", "", "folder for the clusters' data dirs (default: the system temp dir)")
	fs.BoolVar(&o.keep, "keep", false, "keep data dirs and member logs")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if o.clients, err = parseCounts(*clients); err != nil {
		return o, fmt.Errorf("-clients: %w", err)
	}
	switch {
	case o.ops < 0 || o.duration < 0:
		return o, errors.New("-ops and -duration must not be negative")
	case o.ops == 0 && o.duration == 0:
		return o, errors.New("set -ops or -duration (or both) so each phase ends")
	case o.maxConns < 1:
		return o, fmt.Errorf("-max-conns must be at least 1, got %d", o.maxConns)
	case o.rounds < 1:
		return o, fmt.Errorf("-rounds must be at least 1, got %d", o.rounds)
	case o.watchOps < 0:
		return o, fmt.Errorf("-watch-ops must not be negative, got %d", o.watchOps)
	case o.fillKeys < 0:
		return o, fmt.Errorf("-fill-keys must not be negative, got %d", o.fillKeys)
	case o.valueSize < 1:
		return o, fmt.Errorf("-value-size must be at least 1, got %d", o.valueSize)
	}
	return o, nil
}

func parseCounts(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive count", part)
		}
		out = append(out, n)
	}
	return out, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if o.ours == "" || o.upstream == "" {
		root, err := proc.RepoRoot()
		if err != nil {
			return err
		}
		if o.ours == "" {
			fmt.Fprintln(stderr, "building ./cmd/etcd-node ...")
			if o.ours, err = proc.BuildNode(ctx, root); err != nil {
				return fmt.Errorf("%w\n(pass -ours BINARY to measure another build)", err)
			}
		}
		if o.upstream == "" {
			if o.upstream, _, err = proc.EnsureUpstream(ctx, root); err != nil {
				return err
			}
		}
	}
	// Both clusters live under one folder so they share a disk.
	dir, err := os.MkdirTemp(o.dataRoot, "etcd-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(stderr, "data and logs kept in", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	specs := []struct{ label, bin string }{{"etcd-node", o.ours}, {"upstream etcd", o.upstream}}
	var targets []*target
	defer func() {
		for _, t := range targets {
			t.close()
		}
	}()
	for i, s := range specs {
		fmt.Fprintf(stderr, "== starting %s (%s)\n", s.label, s.bin)
		t, err := startTarget(ctx, o, s.label, s.bin, filepath.Join(dir, fmt.Sprintf("c%d", i)), stderr)
		targets = append(targets, t)
		if err != nil {
			return fmt.Errorf("%s: %w", s.label, err)
		}
	}
	if err := measure(ctx, o, targets, stderr); err != nil {
		return err
	}
	return writeReport(stdout, o, o.ours, o.upstream, targets[0].res, targets[1].res)
}

package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"etcdctl-wizard/node/nodetest/proc"
)

// target is one cluster under test and what was measured on it.
type target struct {
	label    string
	c        *proc.Cluster
	leader   int
	endpoint string
	value    string
	written  int64 // sequential keys written so far; the next put writes key `written`
	res      clusterResult
}

// startTarget starts a 3-member cluster of bin under dir and waits for its leader. The returned
// target must be closed even on error.
func startTarget(ctx context.Context, o options, label, bin, dir string, progress io.Writer) (*target, error) {
	t := &target{label: label}
	c, err := proc.StartCluster(ctx, proc.ClusterConfig{Binary: bin, Size: 3, Token: "etcd-bench", DataDirRoot: dir})
	t.c = c
	if err != nil {
		return t, withLogs(err, c)
	}
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if t.leader, err = c.WaitLeader(lctx); err != nil {
		return t, withLogs(err, c)
	}
	t.endpoint = c.Members[t.leader].ClientURL
	value := make([]byte, o.valueSize)
	for i := range value {
		value[i] = byte('a' + rand.IntN(26))
	}
	t.value = string(value)
	fmt.Fprintf(progress, "%s: 3 members healthy, leader %s at %s\n", label, c.Members[t.leader].Name, t.endpoint)
	return t, nil
}

func (t *target) close() { t.c.Close() }

func (t *target) put(ctx context.Context, cl *clientv3.Client, seq int64) error {
	_, err := cl.Put(ctx, benchKey(t.written+seq), t.value)
	return err
}

func (t *target) get(ctx context.Context, cl *clientv3.Client, _ int64) error {
	resp, err := cl.Get(ctx, benchKey(0)) // clientv3's Get is linearizable by default
	if err == nil && len(resp.Kvs) != 1 {
		err = fmt.Errorf("range of the first key found %d keys", len(resp.Kvs))
	}
	return err
}

// load runs one stretch of a phase on this target.
func (t *target) load(ctx context.Context, o options, kind string, clients, ops int, dur time.Duration) (loadResult, error) {
	conns, err := dial(t.endpoint, min(clients, o.maxConns))
	if err != nil {
		return loadResult{}, err
	}
	defer closeAll(conns)
	op := t.get
	if kind == "put" {
		op = t.put
	}
	r, err := runLoad(ctx, conns, clients, ops, dur, op)
	if err != nil {
		return r, withLogs(fmt.Errorf("%s, %s: %w", kind, clientsLabel(clients), err), t.c)
	}
	if kind == "put" {
		t.written += int64(r.ops)
	}
	return r, nil
}

func (t *target) rss(what string) error {
	rows, err := rssRows(t.c, t.leader, what)
	if err != nil {
		return fmt.Errorf("%s: %w", t.label, err)
	}
	t.res.rss = append(t.res.rss, rows...)
	return nil
}

// measure runs the workload on all targets. Each phase is split into rounds that alternate
// between the targets, so that load from other programs on the machine, which comes and goes,
// falls on both sides alike instead of on whichever cluster happened to run at that moment.
func measure(ctx context.Context, o options, targets []*target, progress io.Writer) error {
	for _, t := range targets {
		if err := t.rss("idle"); err != nil {
			return err
		}
	}
	type phase struct {
		kind, name string
		clients    int
	}
	var phases []phase
	for _, n := range o.clients {
		phases = append(phases, phase{"put", "put", n})
	}
	for _, n := range o.clients {
		phases = append(phases, phase{"range", "linearizable range", n})
	}
	rounds := o.rounds
	if o.ops > 0 {
		rounds = min(rounds, o.ops)
	}
	for _, ph := range phases {
		acc := make([]loadResult, len(targets))
		for r := range rounds {
			// Spread ops (or time) evenly over the rounds; the first rounds take the remainder.
			ops := o.ops / rounds
			if r < o.ops%rounds {
				ops++
			}
			dur := o.duration / time.Duration(rounds)
			for k := range targets {
				i := (k + r) % len(targets) // alternate who goes first
				res, err := targets[i].load(ctx, o, ph.kind, ph.clients, ops, dur)
				if err != nil {
					return fmt.Errorf("%s: %w", targets[i].label, err)
				}
				acc[i] = acc[i].merge(res)
			}
		}
		name := ph.name + " " + clientsLabel(ph.clients)
		for i, t := range targets {
			r := acc[i]
			t.res.load = append(t.res.load,
				metric{name: name + " (ops/s)", value: r.opsPerSec(), higher: true},
				metric{name: name + " p50 (ms)", value: r.percentile(50)},
				metric{name: name + " p99 (ms)", value: r.percentile(99)})
			fmt.Fprintf(progress, "%s: %s: %d ops in %v, %.0f ops/s, p50 %.2f ms, p99 %.2f ms\n",
				t.label, name, r.ops, r.elapsed.Round(time.Millisecond), r.opsPerSec(), r.percentile(50), r.percentile(99))
		}
	}
	if o.watchOps > 0 {
		acc := make([]loadResult, len(targets))
		for r := range rounds {
			for k := range targets {
				i := (k + r) % len(targets)
				res, err := targets[i].watchLatency(ctx, max(1, o.watchOps/rounds))
				if err != nil {
					return fmt.Errorf("%s: put to watch event: %w", targets[i].label, withLogs(err, targets[i].c))
				}
				acc[i] = acc[i].merge(res)
			}
		}
		for i, t := range targets {
			r := acc[i]
			t.res.load = append(t.res.load,
				metric{name: "put to watch event on a follower p50 (ms)", value: r.percentile(50)},
				metric{name: "put to watch event on a follower p99 (ms)", value: r.percentile(99)})
			fmt.Fprintf(progress, "%s: put to watch event on a follower: %d events, p50 %.2f ms, p99 %.2f ms\n",
				t.label, r.ops, r.percentile(50), r.percentile(99))
		}
	}
	for _, t := range targets {
		if missing := int64(o.fillKeys) - t.written; missing > 0 {
			start := time.Now()
			if _, err := t.load(ctx, o, "put", slices.Max(o.clients), int(missing), 0); err != nil {
				return fmt.Errorf("%s: fill: %w", t.label, err)
			}
			fmt.Fprintf(progress, "%s: filled to %d keys in %v\n", t.label, t.written, time.Since(start).Round(time.Millisecond))
		}
		if err := t.rss(fmt.Sprintf("after %d keys", o.fillKeys)); err != nil {
			return err
		}
		t.res.keys = int(t.written)
	}
	return nil
}

package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// watchLatency measures how long a write takes to reach a watcher on
// another member: a watcher on a follower, puts on the leader one at a
// time, each timed from the put's start to its event's arrival. One at a
// time, so the figure is the path's latency, not a queue's.
func (t *target) watchLatency(ctx context.Context, n int) (loadResult, error) {
	follower := t.c.Members[(t.leader+1)%len(t.c.Members)].ClientURL
	wconns, err := dial(follower, 1)
	if err != nil {
		return loadResult{}, err
	}
	defer closeAll(wconns)
	pconns, err := dial(t.endpoint, 1)
	if err != nil {
		return loadResult{}, err
	}
	defer closeAll(pconns)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	const prefix = "bench-watch/"
	wch := wconns[0].Watch(clientv3.WithRequireLeader(ctx), prefix, clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	if resp, ok := <-wch; !ok || !resp.Created {
		return loadResult{}, fmt.Errorf("watch on %s was not created: %v", follower, resp.Err())
	}
	var r loadResult
	start := time.Now()
	for i := range n {
		key := fmt.Sprintf("%s%08d", prefix, i)
		t0 := time.Now()
		if _, err := pconns[0].Put(ctx, key, t.value); err != nil {
			return r, err
		}
		if err := awaitEvent(ctx, wch, key); err != nil {
			return r, fmt.Errorf("watch on %s: %w", follower, err)
		}
		r.latencies = append(r.latencies, time.Since(t0))
	}
	r.ops, r.elapsed = n, time.Since(start)
	slices.Sort(r.latencies)
	return r, nil
}

// awaitEvent reads the watch channel until the event for key arrives.
func awaitEvent(ctx context.Context, wch clientv3.WatchChan, key string) error {
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case resp, ok := <-wch:
			if !ok || resp.Err() != nil {
				return fmt.Errorf("watch ended: %v", resp.Err())
			}
			for _, ev := range resp.Events {
				if string(ev.Kv.Key) == key {
					return nil
				}
			}
		case <-timeout.C:
			return fmt.Errorf("no event for %s within 10 s", key)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

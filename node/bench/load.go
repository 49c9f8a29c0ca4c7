package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sync/errgroup"

	"etcdctl-wizard/node/nodetest/proc"
)

// opTimeout bounds one request so that a wedged cluster ends the run instead of hanging it.
const opTimeout = 30 * time.Second

// metric is one table row. higher says which direction is better.
type metric struct {
	name   string
	value  float64
	higher bool
}

type clusterResult struct {
	load []metric // throughput and latency rows
	rss  []metric // memory rows
	keys int      // keys written in total
}

// metrics is every row in table order.
func (r clusterResult) metrics() []metric { return slices.Concat(r.load, r.rss) }

// loadResult is what one phase measured.
type loadResult struct {
	ops       int
	elapsed   time.Duration
	latencies []time.Duration // sorted
}

func (r loadResult) opsPerSec() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ops) / r.elapsed.Seconds()
}

// percentile returns the nearest-rank percentile p (0 < p <= 100) in milliseconds.
func (r loadResult) percentile(p float64) float64 {
	if len(r.latencies) == 0 {
		return 0
	}
	rank := int(float64(len(r.latencies))*p/100+0.999999) - 1
	rank = max(0, min(rank, len(r.latencies)-1))
	return float64(r.latencies[rank]) / float64(time.Millisecond)
}

// merge adds another stretch of the same phase. Latencies are re-sorted.
func (r loadResult) merge(o loadResult) loadResult {
	lats := slices.Concat(r.latencies, o.latencies)
	slices.Sort(lats)
	return loadResult{ops: r.ops + o.ops, elapsed: r.elapsed + o.elapsed, latencies: lats}
}

// runLoad runs op from `clients` concurrent workers spread over conns until total operations
// were issued (total > 0) or dur has passed (dur > 0). seq numbers the operations from 0.
func runLoad(ctx context.Context, conns []*clientv3.Client, clients, total int, dur time.Duration,
	op func(ctx context.Context, cl *clientv3.Client, seq int64) error) (loadResult, error) {
	var next atomic.Int64
	perWorker := make([][]time.Duration, clients)
	g, gctx := errgroup.WithContext(ctx)
	start := time.Now()
	deadline := start.Add(dur)
	for w := range clients {
		cl := conns[w%len(conns)]
		g.Go(func() error {
			for {
				if dur > 0 && !time.Now().Before(deadline) {
					return nil
				}
				seq := next.Add(1) - 1
				if total > 0 && seq >= int64(total) {
					return nil
				}
				octx, cancel := context.WithTimeout(gctx, opTimeout)
				t0 := time.Now()
				err := op(octx, cl, seq)
				lat := time.Since(t0)
				cancel()
				if err != nil {
					return fmt.Errorf("operation %d: %w", seq, err)
				}
				perWorker[w] = append(perWorker[w], lat)
			}
		})
	}
	err := g.Wait()
	elapsed := time.Since(start)
	if err != nil {
		return loadResult{}, err
	}
	lats := slices.Concat(perWorker...)
	slices.Sort(lats)
	return loadResult{ops: len(lats), elapsed: elapsed, latencies: lats}, nil
}

func dial(endpoint string, n int) ([]*clientv3.Client, error) {
	conns := make([]*clientv3.Client, 0, n)
	for range n {
		cl, err := proc.NewClient([]string{endpoint})
		if err != nil {
			closeAll(conns)
			return nil, err
		}
		conns = append(conns, cl)
	}
	return conns, nil
}

func closeAll(conns []*clientv3.Client) {
	for _, c := range conns {
		c.Close()
	}
}

// benchKey is the 8-byte sequential key number n.
func benchKey(n int64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	return string(b[:])
}

func clientsLabel(n int) string {
	if n == 1 {
		return "1 client"
	}
	return fmt.Sprintf("%d clients", n)
}

// rssRows reads every member's RSS, the leader first: members are compared by role across the
// two clusters because the leader does more work than the followers.
func rssRows(c *proc.Cluster, leader int, what string) ([]metric, error) {
	var rows []metric
	for n := range c.Members {
		i := (leader + n) % len(c.Members)
		rss, err := proc.RSS(c.Members[i].Pid())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Members[i].Name, err)
		}
		role := "leader"
		if n > 0 {
			role = fmt.Sprintf("follower %d", n)
		}
		rows = append(rows, metric{name: fmt.Sprintf("RSS %s, %s (MiB)", what, role), value: float64(rss) / (1 << 20)})
	}
	return rows, nil
}

// withLogs appends the tail of every member's log so a failed run explains itself.
func withLogs(err error, c *proc.Cluster) error {
	if c == nil {
		return err
	}
	var b strings.Builder
	for _, m := range c.Members {
		fmt.Fprintf(&b, "\n---- %s log (%s) ----\n%s", m.Name, m.Config().LogPath, m.LogTail(4<<10))
	}
	return fmt.Errorf("%w%s", err, b.String())
}

package executor

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"etcdctl-wizard/plan"
	"etcdctl-wizard/remote"
)

// electionTimeout is etcd's default --election-timeout, which the plans use.
const electionTimeout = time.Second

// BenchmarkApply measures apply of the guide's static plan (auto TLS) on 3 and 5 lab
// hosts, from start to all members healthy, next to the floor: the parallel
// upload of the node binary to every host plus one election timeout.
//
//	go test -run '^$' -bench Apply -benchtime 3x ./remote/executor
func BenchmarkApply(b *testing.B) {
	for _, n := range []int{3, 5} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			e := newLabEnv(b, n)
			p := labPlan(b, n, plan.TLSAuto) // a TLS cluster, as DESIGN.md §7 measures
			ctx := context.Background()
			floor := uploadFloor(b, e, n) + electionTimeout
			var each []time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if _, err := Reset(ctx, p, e.options()); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				var timeline []string
				o := e.options()
				o.Events = func(ev Event) {
					if ev.State != StateProgress && ev.State != StateRunning {
						timeline = append(timeline, fmt.Sprintf("%6dms %-7s %-15s %s", ev.Time.Sub(start).Milliseconds(), ev.Host, ev.Step, ev.State))
					}
				}
				if _, err := Apply(ctx, p, o); err != nil {
					b.Fatal(err)
				}
				each = append(each, time.Since(start))
				if testing.Verbose() {
					b.Logf("timeline:\n%s", strings.Join(timeline, "\n"))
				}
			}
			// The median: one slow first election (raft's randomised
			// timeouts on a loaded machine) should not decide the figure.
			slices.Sort(each)
			avg := each[len(each)/2]
			b.ReportMetric(avg.Seconds(), "apply-s")
			b.ReportMetric(floor.Seconds(), "floor-s")
			b.ReportMetric(avg.Seconds()/floor.Seconds(), "x-floor")
			b.Logf("%d hosts: runs %v; median apply %s, floor %s (upload %s + election %s), ratio %.2f",
				n, each, avg.Round(time.Millisecond), floor.Round(time.Millisecond), (floor - electionTimeout).Round(time.Millisecond), electionTimeout, avg.Seconds()/floor.Seconds())
		})
	}
}

// uploadFloor is the time to upload the node binary to every host at once,
// over connections already open (best of three).
func uploadFloor(b *testing.B, e *labEnv, n int) time.Duration {
	b.Helper()
	ctx := context.Background()
	o := e.options()
	ts := make([]remote.Transport, n)
	for i, h := range e.lab.Hosts {
		t, err := o.Connect(ctx, plan.HostPlan{Member: h.Name, Target: plan.Target{Host: h.IP, Port: h.Port, User: "root"}})
		if err != nil {
			b.Fatal(err)
		}
		defer t.Close()
		ts[i] = t
	}
	best := time.Duration(1 << 62)
	for try := 0; try < 3; try++ {
		start := time.Now()
		var g errgroup.Group
		for i, t := range ts {
			g.Go(func() error {
				f, closeFn, err := remote.OpenFile(e.node, fmt.Sprintf("/tmp/floor-%d-%d", try, i))
				if err != nil {
					return err
				}
				defer closeFn()
				_, err = t.Upload(ctx, f)
				return err
			})
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
		best = min(best, time.Since(start))
	}
	return best
}

package mvcc

import (
	"encoding/binary"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"etcdctl-wizard/node/backend"
)

// Benchmarks use etcd's benchmark defaults where it has them: 8-byte keys,
// 256-byte values, and the backend's default batching (100ms / 10000 writes).
const benchKeys = 10000

func benchStore(b *testing.B) *Store {
	b.Helper()
	var commits, total atomic.Int64
	be, err := backend.Open(filepath.Join(b.TempDir(), "db"), backend.Options{OnCommit: func(d time.Duration) {
		commits.Add(1)
		total.Add(int64(d))
	}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = be.Close() })
	b.Cleanup(func() {
		if n := commits.Load(); n > 0 {
			b.ReportMetric(float64(total.Load())/float64(n)/float64(time.Millisecond), "commit-ms")
		}
	})
	s, err := New(be)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func benchKey(i int) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, uint64(i))
	return k
}

var benchValue = make([]byte, 256)

// applier hands out raft indexes to concurrent writers.
type applier struct {
	s    *Store
	next atomic.Uint64
}

func (a *applier) put(b *testing.B, key []byte) {
	_, err := a.s.Put(Index{Index: a.next.Add(1), Term: 1}, &pb.PutRequest{Key: key, Value: benchValue})
	if err != nil {
		b.Error(err)
	}
}

func preload(b *testing.B, s *Store) *applier {
	b.Helper()
	a := &applier{s: s}
	for i := range benchKeys {
		a.put(b, benchKey(i))
	}
	return a
}

// latencies collects per-operation durations and reports percentiles in µs.
type latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, d...)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B) {
	if len(l.all) == 0 {
		return
	}
	slices.Sort(l.all)
	at := func(p float64) float64 {
		return float64(l.all[int(p*float64(len(l.all)-1))]) / float64(time.Microsecond)
	}
	b.ReportMetric(at(0.5), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
	b.ReportMetric(at(1), "max-µs")
}

// timedParallel runs op b.N times from goroutines goroutines (1, or a multiple of
// GOMAXPROCS) and reports throughput and latency percentiles.
func timedParallel(b *testing.B, goroutines int, op func(rng *rand.Rand)) {
	var lat latencies
	var seed atomic.Uint64
	worker := func(next func() bool) {
		rng := rand.New(rand.NewPCG(seed.Add(1), 3))
		var mine []time.Duration
		for next() {
			t0 := time.Now()
			op(rng)
			mine = append(mine, time.Since(t0))
		}
		lat.add(mine)
	}
	b.ResetTimer()
	start := time.Now()
	if goroutines == 1 {
		i := 0
		worker(func() bool { i++; return i <= b.N })
	} else {
		b.SetParallelism(max(1, goroutines/runtime.GOMAXPROCS(0)))
		b.RunParallel(func(pb *testing.PB) { worker(pb.Next) })
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
	lat.report(b)
}

func BenchmarkPut(b *testing.B) {
	for _, g := range []int{1, 64} {
		b.Run(goroutineName(g), func(b *testing.B) {
			a := &applier{s: benchStore(b)}
			timedParallel(b, g, func(rng *rand.Rand) { a.put(b, benchKey(rng.IntN(benchKeys))) })
		})
	}
}

func BenchmarkTxnThreePuts(b *testing.B) {
	a := &applier{s: benchStore(b)}
	timedParallel(b, 1, func(rng *rand.Rand) {
		k := rng.IntN(benchKeys - 3)
		req := &pb.TxnRequest{Success: []*pb.RequestOp{putOp(string(benchKey(k)), "v"), putOp(string(benchKey(k+1)), "v"), putOp(string(benchKey(k+2)), "v")}}
		if _, err := a.s.Txn(Index{Index: a.next.Add(1), Term: 1}, req); err != nil {
			b.Error(err)
		}
	})
}

func BenchmarkRange1Key(b *testing.B) {
	for _, g := range []int{1, 64} {
		b.Run(goroutineName(g), func(b *testing.B) {
			s := benchStore(b)
			preload(b, s)
			timedParallel(b, g, func(rng *rand.Rand) {
				if _, err := s.Range(&pb.RangeRequest{Key: benchKey(rng.IntN(benchKeys))}); err != nil {
					b.Error(err)
				}
			})
		})
	}
}

// BenchmarkRange1KeyDuringWrites measures reads while one writer applies puts as
// fast as it can, so batches are committed (and fsynced) throughout: read latency
// must not follow the commits.
func BenchmarkRange1KeyDuringWrites(b *testing.B) {
	for _, g := range []int{1, 64} {
		b.Run(goroutineName(g), func(b *testing.B) {
			s := benchStore(b)
			a := preload(b, s)
			stop := make(chan struct{})
			var wrote atomic.Int64
			done := make(chan struct{})
			go func() {
				defer close(done)
				rng := rand.New(rand.NewPCG(9, 9))
				for {
					select {
					case <-stop:
						return
					default:
					}
					a.put(b, benchKey(rng.IntN(benchKeys)))
					wrote.Add(1)
				}
			}()
			timedParallel(b, g, func(rng *rand.Rand) {
				if _, err := s.Range(&pb.RangeRequest{Key: benchKey(rng.IntN(benchKeys))}); err != nil {
					b.Error(err)
				}
			})
			close(stop)
			<-done
			b.ReportMetric(float64(wrote.Load())/b.Elapsed().Seconds(), "writes/s")
		})
	}
}

func goroutineName(g int) string {
	if g == 1 {
		return "1goroutine"
	}
	return "64goroutines"
}

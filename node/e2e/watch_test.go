package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"etcdctl-wizard/node/nodetest"
	"etcdctl-wizard/node/nodetest/proc"
)

func memberClient(t *testing.T, url string) *clientv3.Client {
	t.Helper()
	cl, err := proc.NewClient([]string{url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// recvEvents reads n events from wch, failing on an error or a timeout.
func recvEvents(t *testing.T, wch clientv3.WatchChan, n int) []*clientv3.Event {
	t.Helper()
	var out []*clientv3.Event
	timeout := time.After(20 * time.Second)
	for len(out) < n {
		select {
		case resp, ok := <-wch:
			if !ok {
				t.Fatalf("watch closed after %d of %d events", len(out), n)
			}
			if err := resp.Err(); err != nil {
				t.Fatalf("watch error after %d events: %v", len(out), err)
			}
			out = append(out, resp.Events...)
		case <-timeout:
			t.Fatalf("got %d of %d events", len(out), n)
		}
	}
	if len(out) != n {
		t.Fatalf("got %d events, want %d", len(out), n)
	}
	return out
}

// checkIncreasing asserts every event is exactly one revision after the
// previous one (the writers of these tests make one change per revision).
func checkIncreasing(t *testing.T, evs []*clientv3.Event, first int64) {
	t.Helper()
	for i, ev := range evs {
		if ev.Kv.ModRevision != first+int64(i) {
			t.Fatalf("event %d at revision %d, want %d: a gap or a duplicate", i, ev.Kv.ModRevision, first+int64(i))
		}
	}
}

func putN(t *testing.T, cl *clientv3.Client, prefix string, n, workers int) {
	t.Helper()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				if _, err := cl.Put(context.Background(), fmt.Sprintf("%s%04d", prefix, i), "v"); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func goroutines(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var n int
	if _, err := fmt.Sscanf(string(b), "goroutine profile: total %d", &n); err != nil {
		t.Fatalf("pprof goroutine: %v: %.100s", err, b)
	}
	return n
}

// TestWatchClient exercises the Watch service with upstream clientv3 on one
// cluster, writing through the leader and watching on a follower.
func TestWatchClient(t *testing.T) {
	c := nodetest.StartCluster(t, nodetest.ClusterOptions{Binary: nodetest.BuildNode(t), ExtraFlags: []string{"--enable-pprof"}})
	leader := c.WaitLeader()
	lcli := memberClient(t, c.Member(leader).ClientURL())
	followerURL := c.Member((leader + 1) % 3).ClientURL()
	fcli := memberClient(t, followerURL)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	t.Run("follower sees every write, measured", func(t *testing.T) {
		wch := fcli.Watch(ctx, "f/", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
		if resp := <-wch; !resp.Created {
			t.Fatalf("first response %+v, want created", resp)
		}
		start := time.Now()
		const n = 500
		go putN(t, lcli, "f/", n, 16)
		evs := recvEvents(t, wch, n)
		t.Logf("%d writes through the leader seen by a follower's watcher in %v (%.0f events/s)", n, time.Since(start), n/time.Since(start).Seconds())
		checkIncreasing(t, evs, evs[0].Kv.ModRevision)
		// Latency from an acknowledged put to its event on the follower.
		var worst time.Duration
		for i := 0; i < 20; i++ {
			t0 := time.Now()
			if _, err := lcli.Put(ctx, "f/lat", "x"); err != nil {
				t.Fatal(err)
			}
			recvEvents(t, wch, 1)
			worst = max(worst, time.Since(t0))
		}
		t.Logf("put (acknowledged by the leader) to event on a follower: worst of 20 %v", worst)
	})

	t.Run("history replay during concurrent writes", func(t *testing.T) {
		first, err := lcli.Put(ctx, "h/start", "v")
		if err != nil {
			t.Fatal(err)
		}
		putN(t, lcli, "h/", 1000, 16)
		done := make(chan struct{})
		go func() { putN(t, lcli, "h/b", 1000, 16); close(done) }()
		wch := fcli.Watch(ctx, "h/", clientv3.WithPrefix(), clientv3.WithRev(first.Header.Revision))
		evs := recvEvents(t, wch, 2001)
		<-done
		checkIncreasing(t, evs, first.Header.Revision)
	})

	t.Run("ranges filters prev kv", func(t *testing.T) {
		base, err := lcli.Put(ctx, "r/a", "1")
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range []clientv3.Op{clientv3.OpPut("r/b", "1"), clientv3.OpPut("r/c", "1"), clientv3.OpPut("r/b", "2"), clientv3.OpDelete("r/b"), clientv3.OpPut("r/d", "1"), clientv3.OpPut("s", "1")} {
			if _, err := lcli.Do(ctx, op); err != nil {
				t.Fatal(err)
			}
		}
		from := clientv3.WithRev(base.Header.Revision)
		str := func(evs []*clientv3.Event) string {
			var parts []string
			for _, e := range evs {
				s := fmt.Sprintf("%s %s=%s", e.Type, e.Kv.Key, e.Kv.Value)
				if e.PrevKv != nil {
					s += fmt.Sprintf(" (was %s)", e.PrevKv.Value)
				}
				parts = append(parts, s)
			}
			return strings.Join(parts, ", ")
		}
		cases := []struct {
			key  string
			opts []clientv3.OpOption
			n    int
			want string
		}{
			{"r/b", []clientv3.OpOption{clientv3.WithRange("r/d")}, 4, "PUT r/b=1, PUT r/c=1, PUT r/b=2, DELETE r/b="},
			{"r/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithFilterPut()}, 1, "DELETE r/b="},
			{"r/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithFilterDelete()}, 5, "PUT r/a=1, PUT r/b=1, PUT r/c=1, PUT r/b=2, PUT r/d=1"},
			{"r/b", []clientv3.OpOption{clientv3.WithPrevKV()}, 3, "PUT r/b=1, PUT r/b=2 (was 1), DELETE r/b= (was 2)"},
			{"r/c", []clientv3.OpOption{clientv3.WithFromKey()}, 3, "PUT r/c=1, PUT r/d=1, PUT s=1"},
		}
		for _, tc := range cases {
			wctx, wcancel := context.WithCancel(ctx)
			got := str(recvEvents(t, fcli.Watch(wctx, tc.key, append(tc.opts, from)...), tc.n))
			wcancel()
			if got != tc.want {
				t.Errorf("watch %s %d options: %s, want %s", tc.key, len(tc.opts), got, tc.want)
			}
		}
		// A DELETE event carries the key and the deletion's revision.
		evs := recvEvents(t, fcli.Watch(ctx, "r/", clientv3.WithPrefix(), clientv3.WithFilterPut(), from), 1)
		if evs[0].Type != mvccpb.DELETE || evs[0].Kv.ModRevision != base.Header.Revision+4 || evs[0].Kv.Version != 0 {
			t.Errorf("delete event %+v", evs[0].Kv)
		}
	})

	t.Run("compacted revision", func(t *testing.T) {
		resp, err := lcli.Put(ctx, "c", "1")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lcli.Put(ctx, "c", "2"); err != nil {
			t.Fatal(err)
		}
		rev := resp.Header.Revision + 1
		if _, err := lcli.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
			t.Fatal(err)
		}
		// A linearizable read makes the follower apply the compaction first.
		if _, err := fcli.Get(ctx, "c"); err != nil {
			t.Fatal(err)
		}
		wr := <-fcli.Watch(ctx, "c", clientv3.WithRev(rev-1))
		if wr.Err() != rpctypes.ErrCompacted || wr.CompactRevision != rev {
			t.Fatalf("watch below the compaction: err %v compact %d, want ErrCompacted at %d (%+v)", wr.Err(), wr.CompactRevision, rev, wr)
		}
		// At the compaction revision itself the change is still there.
		if evs := recvEvents(t, fcli.Watch(ctx, "c", clientv3.WithRev(rev)), 1); string(evs[0].Kv.Value) != "2" {
			t.Fatalf("event at the compaction revision: %s", evs[0].Kv.Value)
		}
	})

	t.Run("raw streams: ids, cancel, progress, many watchers, no leaks", func(t *testing.T) {
		before := goroutines(t, followerURL)
		wc := pb.NewWatchClient(fcli.ActiveConnection())
		sctx, scancel := context.WithCancel(ctx)
		stream, err := wc.Watch(sctx)
		if err != nil {
			t.Fatal(err)
		}
		create := func(id int64, key string) *pb.WatchResponse {
			t.Helper()
			if err := stream.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{Key: []byte(key), WatchId: id}}}); err != nil {
				t.Fatal(err)
			}
			r, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		// 100 watchers on one stream: ids from 0 up.
		for i := 0; i < 100; i++ {
			if r := create(0, "m"); !r.Created || r.WatchId != int64(i) || r.Header.GetMemberId() == 0 || r.Header.GetClusterId() == 0 {
				t.Fatalf("create %d: %+v", i, r)
			}
		}
		if r := create(7, "m"); !r.Canceled || r.WatchId != -1 || r.CancelReason != "mvcc: duplicate watch ID provided on the WatchStream" {
			t.Fatalf("duplicate id: %+v", r)
		}
		put, err := lcli.Put(ctx, "m", "1")
		if err != nil {
			t.Fatal(err)
		}
		seen := map[int64]bool{}
		for len(seen) < 100 {
			r, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Events) != 1 || r.Events[0].Kv.ModRevision != put.Header.Revision || r.Header.Revision != put.Header.Revision || seen[r.WatchId] {
				t.Fatalf("event response %+v", r)
			}
			seen[r.WatchId] = true
		}
		if err := stream.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_ProgressRequest{ProgressRequest: &pb.WatchProgressRequest{}}}); err != nil {
			t.Fatal(err)
		}
		if r, err := stream.Recv(); err != nil || r.WatchId != -1 || r.Header.Revision < put.Header.Revision || len(r.Events) != 0 {
			t.Fatalf("progress: %+v %v", r, err)
		}
		if err := stream.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: 42}}}); err != nil {
			t.Fatal(err)
		}
		if r, err := stream.Recv(); err != nil || r.WatchId != 42 || !r.Canceled {
			t.Fatalf("cancel: %+v %v", r, err)
		}
		// 100 more streams, each with a watcher that gets the next write.
		var streams []pb.Watch_WatchClient
		for i := 0; i < 100; i++ {
			s, err := wc.Watch(sctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{Key: []byte("n")}}}); err != nil {
				t.Fatal(err)
			}
			if r, err := s.Recv(); err != nil || !r.Created {
				t.Fatalf("stream %d: %+v %v", i, r, err)
			}
			streams = append(streams, s)
		}
		if _, err := lcli.Put(ctx, "n", "1"); err != nil {
			t.Fatal(err)
		}
		for i, s := range streams {
			if r, err := s.Recv(); err != nil || len(r.Events) != 1 {
				t.Fatalf("stream %d: %+v %v", i, r, err)
			}
		}
		scancel()
		// Every stream's goroutines end once the client is gone.
		deadline := time.Now().Add(10 * time.Second)
		for n := goroutines(t, followerURL); n > before+5; n = goroutines(t, followerURL) {
			if time.Now().After(deadline) {
				t.Fatalf("%d goroutines after closing 101 streams, %d before", n, before)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("kill -9 and resume from the last revision", func(t *testing.T) {
		victim := (leader + 2) % 3
		vcli := memberClient(t, c.Member(victim).ClientURL())
		wctx, wcancel := context.WithCancel(ctx)
		wch := vcli.Watch(wctx, "k/", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
		<-wch
		putN(t, lcli, "k/a", 20, 1)
		seen := recvEvents(t, wch, 20)
		last := seen[len(seen)-1].Kv.ModRevision
		c.Member(victim).Kill()
		wcancel()
		putN(t, lcli, "k/b", 30, 1)
		c.Member(victim).Restart()
		c.Member(victim).WaitHealthy()
		evs := recvEvents(t, vcli.Watch(ctx, "k/", clientv3.WithPrefix(), clientv3.WithRev(last+1)), 30)
		checkIncreasing(t, evs, last+1)
		if k := string(evs[0].Kv.Key); k != "k/b0000" {
			t.Fatalf("first missed event is %s", k)
		}
	})
}

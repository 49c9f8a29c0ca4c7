package watch

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"etcdctl-wizard/node/backend"
	"etcdctl-wizard/node/mvcc"
)

// store is an mvcc store applying writes the way the raft loop does, with
// the hub subscribed to it.
type store struct {
	t    *testing.T
	kv   *mvcc.Store
	mu   sync.Mutex
	next uint64
}

func newStore(t *testing.T) *store {
	t.Helper()
	b, err := backend.Open(filepath.Join(t.TempDir(), "db"), backend.Options{BatchInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	kv, err := mvcc.New(b)
	if err != nil {
		t.Fatal(err)
	}
	return &store{t: t, kv: kv, next: 1}
}

func (s *store) idx() mvcc.Index {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	return mvcc.Index{Index: s.next, Term: 1}
}

func (s *store) put(key, val string) {
	if _, err := s.kv.Put(s.idx(), &pb.PutRequest{Key: []byte(key), Value: []byte(val)}); err != nil {
		s.t.Error(err)
	}
}

func newHub(t *testing.T, s *store, opt Options) *Hub {
	h := NewHub(s.kv, s.kv.Rev(), opt)
	s.kv.OnWrite = h.OnWrite
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { h.Run(stop); close(done) }()
	t.Cleanup(func() { close(stop); <-done })
	return h
}

// collect drains st until it has n events (or a compaction) or times out,
// returning the responses in order.
func collect(t *testing.T, st *Stream, n int, slow time.Duration) []*pb.WatchResponse {
	t.Helper()
	var out []*pb.WatchResponse
	got := 0
	deadline := time.After(20 * time.Second)
	for got < n {
		select {
		case <-st.Ready():
		case <-deadline:
			t.Fatalf("got %d of %d events", got, n)
		}
		for _, it := range st.take() {
			out = append(out, it.resp)
			got += len(it.resp.Events)
			if it.resp.CompactRevision != 0 {
				return out
			}
		}
		time.Sleep(slow) // a slow client: the queue fills while it sleeps
	}
	return out
}

// checkContiguous asserts the events are exactly revisions from..to, one per
// revision (every write below touches one key).
func checkContiguous(t *testing.T, resps []*pb.WatchResponse, from, to int64) {
	t.Helper()
	want := from
	for _, r := range resps {
		for _, ev := range r.Events {
			if ev.Kv.ModRevision != want {
				t.Fatalf("event at revision %d, want %d (gap or duplicate)", ev.Kv.ModRevision, want)
			}
			want++
		}
	}
	if want != to+1 {
		t.Fatalf("events end at %d, want %d", want-1, to)
	}
}

// A watcher starting far in the past, with a tiny queue, ring and read batch,
// while writes keep coming: it goes through history, the ring and the slow
// consumer path many times, and must see every revision exactly once.
func TestHandOverUnderConcurrentWrites(t *testing.T) {
	s := newStore(t)
	for i := 0; i < 300; i++ {
		s.put(fmt.Sprintf("k%d", i%7), "v")
	}
	h := newHub(t, s, Options{MaxQueuedResponses: 2, RevsPerRead: 16, RingRevisions: 8, SyncInterval: time.Millisecond})
	st := h.NewStream()
	defer st.Close()
	st.Create(&pb.WatchCreateRequest{Key: []byte("k"), RangeEnd: []byte("l"), StartRevision: 2})
	const more = 2000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < more; i++ {
			s.put(fmt.Sprintf("k%d", i%7), fmt.Sprint(i))
		}
	}()
	resps := collect(t, st, 300+more, 0)
	wg.Wait()
	if !resps[0].Created {
		t.Fatalf("first response %v, want created", resps[0])
	}
	checkContiguous(t, resps, 2, 301+more)
}

// A client that does not read must not block writes; once it reads again it
// gets everything from history, in order.
func TestSlowConsumerDoesNotBlockWrites(t *testing.T) {
	s := newStore(t)
	h := newHub(t, s, Options{MaxQueuedResponses: 1, RingRevisions: 4})
	st := h.NewStream()
	defer st.Close()
	st.Create(&pb.WatchCreateRequest{Key: []byte("a")})
	done := make(chan struct{})
	go func() {
		for i := 0; i < 100; i++ {
			s.put("a", fmt.Sprint(i))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("writes blocked by a watcher that does not read")
	}
	h.mu.Lock()
	unsynced := len(h.unsynced)
	h.mu.Unlock()
	if unsynced != 1 {
		t.Fatalf("%d unsynced watchers, want the slow one", unsynced)
	}
	checkContiguous(t, collect(t, st, 100, 0), 2, 101)
}

// After a snapshot install (Reset) a watcher behind the new store's
// compaction revision is canceled with it; one that is not catches up.
func TestResetCompactedOrCaughtUp(t *testing.T) {
	s := newStore(t)
	h := newHub(t, s, Options{})
	behind, ahead := h.NewStream(), h.NewStream()
	defer behind.Close()
	defer ahead.Close()
	behind.Create(&pb.WatchCreateRequest{Key: []byte("a")})
	ahead.Create(&pb.WatchCreateRequest{Key: []byte("a"), StartRevision: 5})
	collect(t, behind, 0, 0)
	collect(t, ahead, 0, 0)
	// What a snapshot does: the store moves on without announcing anything.
	s.kv.OnWrite = nil
	for i := 0; i < 10; i++ {
		s.put("a", fmt.Sprint(i)) // revisions 2..11
	}
	if _, err := s.kv.Compact(s.idx(), 5); err != nil {
		t.Fatal(err)
	}
	s.kv.OnWrite = h.OnWrite
	h.Reset(s.kv.Rev())
	r := collect(t, behind, 1, 0)
	if last := r[len(r)-1]; last.CompactRevision != 5 || !last.Canceled {
		t.Fatalf("watcher from 2 after compaction at 5: %v", last)
	}
	s.put("a", "x")
	checkContiguous(t, collect(t, ahead, 8, 0), 5, 12)
}

// Closing streams frees their watchers.
func TestCloseFreesWatchers(t *testing.T) {
	s := newStore(t)
	h := newHub(t, s, Options{})
	var sts []*Stream
	for i := 0; i < 100; i++ {
		st := h.NewStream()
		st.Create(&pb.WatchCreateRequest{Key: []byte("a"), StartRevision: 1})
		st.Create(&pb.WatchCreateRequest{Key: []byte("b")})
		sts = append(sts, st)
	}
	if n := h.watching(); n != 200 {
		t.Fatalf("%d watchers, want 200", n)
	}
	for _, st := range sts {
		st.Close()
	}
	if n := h.watching(); n != 0 {
		t.Fatalf("%d watchers left after closing every stream", n)
	}
}

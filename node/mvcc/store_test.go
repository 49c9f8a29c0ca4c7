package mvcc

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"etcdctl-wizard/node/backend"
)

// storedRevisions lists the revision keys in the backend, e.g. "3_0" or "5_0t".
func storedRevisions(t *testing.T, b *backend.Backend) []string {
	t.Helper()
	var out []string
	err := b.Update(func(tx *backend.WriteTx) error {
		return tx.Scan(keyBucket, nil, nil, func(k, _ []byte) error {
			r, tomb, err := bytesToRev(k)
			if err != nil {
				return err
			}
			s := fmt.Sprintf("%d_%d", r.main, r.sub)
			if tomb {
				s += "t"
			}
			out = append(out, s)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCompaction(t *testing.T) {
	h := newHarness(t)
	h.put("a", "1") // 2
	h.put("a", "2") // 3
	h.put("b", "1") // 4
	h.del("b", "")  // 5
	h.put("c", "1") // 6
	h.put("d", "1") // 7
	h.del("d", "")  // 8

	if _, err := h.s.Compact(h.idx(), 9); !errors.Is(err, ErrFutureRev) {
		t.Errorf("compact beyond the current revision = %v, want ErrFutureRev", err)
	}
	resp, err := h.s.Compact(h.idx(), 5)
	if err != nil || resp.Header.Revision != 8 {
		t.Fatalf("compact 5 = %v, %v", resp, err)
	}
	if _, err := h.s.Compact(h.idx(), 5); !errors.Is(err, ErrCompacted) {
		t.Errorf("compact at the same revision = %v, want ErrCompacted", err)
	}
	if _, err := h.s.Compact(h.idx(), 3); !errors.Is(err, ErrCompacted) {
		t.Errorf("compact below = %v, want ErrCompacted", err)
	}

	check := func(when string) {
		t.Helper()
		if h.s.Rev() != 8 || h.s.CompactRev() != 5 {
			t.Errorf("%s: rev/compact = %d/%d, want 8/5", when, h.s.Rev(), h.s.CompactRev())
		}
		if _, err := h.s.Range(&pb.RangeRequest{Key: []byte("a"), Revision: 4}); !errors.Is(err, ErrCompacted) {
			t.Errorf("%s: read at 4 = %v, want ErrCompacted", when, err)
		}
		reads := []struct {
			key  string
			rev  int64
			want string
		}{
			{"a", 5, "a=2 c2 m3 v2 l0"}, // the value as of the compaction revision stays
			{"b", 5, "<none>"},
			{"c", 5, "<none>"},
			{"a", 0, "a=2 c2 m3 v2 l0"},
			{"c", 6, "c=1 c6 m6 v1 l0"},
			{"d", 7, "d=1 c7 m7 v1 l0"},
			{"d", 0, "<none>"},
		}
		for _, r := range reads {
			if got := kvString(h.get(r.key, r.rev)); got != r.want {
				t.Errorf("%s: %s@%d = %s, want %s", when, r.key, r.rev, got, r.want)
			}
		}
		// 2_0 (old a) and 4_0 (b's value) are gone; the tombstone at exactly the
		// compaction revision stays (etcd 3.7), later revisions are untouched.
		want := []string{"3_0", "5_0t", "6_0", "7_0", "8_0t"}
		if got := storedRevisions(t, h.b); !slices.Equal(got, want) {
			t.Errorf("%s: stored revisions %v, want %v", when, got, want)
		}
	}
	check("after compaction")
	h.reopen()
	check("after restart")

	// Version and create revision keep counting from before the compaction.
	if got := kvString(h.put("a", "3").PrevKv); got != "<none>" {
		t.Errorf("unexpected prev kv %s", got)
	}
	if got := kvString(h.get("a", 0)); got != "a=3 c2 m9 v3 l0" {
		t.Errorf("a after compaction and put = %s, want a=3 c2 m9 v3 l0", got)
	}

	// Compacting past the tombstones drops the deleted keys entirely.
	if _, err := h.s.Compact(h.idx(), 9); err != nil {
		t.Fatal(err)
	}
	if got, want := storedRevisions(t, h.b), []string{"6_0", "9_0"}; !slices.Equal(got, want) {
		t.Errorf("after compact 9: stored %v, want %v", got, want)
	}
	resp2, err := h.s.Range(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, Revision: 9})
	if err != nil || len(resp2.Kvs) != 2 {
		t.Errorf("all keys at 9 = %v, %v", resp2, err)
	}
}

// TestRestartKeepsEverything: close and reopen give the same revision, data,
// compaction point and consistent index.
func TestRestartKeepsEverything(t *testing.T) {
	h := newHarness(t)
	h.put("a", "1")
	h.put("b", "1")
	if _, err := h.s.Txn(h.idx(), &pb.TxnRequest{Success: []*pb.RequestOp{putOp("a", "2"), delOp("b", "")}}); err != nil {
		t.Fatal(err)
	}
	h.del("nothing", "") // applied, changes nothing
	wantCI := h.s.ConsistentIndex()
	snapshot := func() string {
		resp, err := h.s.Range(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(h.s.Rev(), kvStrings(resp.Kvs), kvString(h.get("b", 3)))
	}
	before := snapshot()
	h.reopen()
	if after := snapshot(); after != before {
		t.Errorf("after restart %s, want %s", after, before)
	}
	if got := h.s.ConsistentIndex(); got != wantCI || got.Index != 4 {
		t.Errorf("consistent index after restart = %+v, want %+v (4 entries applied)", got, wantCI)
	}
}

// TestCrashAndReplay: writes after the last batch commit are lost in a crash, and
// the consistent index says where the WAL replay starts; replaying the whole log
// over the crashed copy (entries it already has are skipped) rebuilds the state.
func TestCrashAndReplay(t *testing.T) {
	log := []func(s *Store, idx Index) error{
		func(s *Store, idx Index) error {
			_, err := s.Put(idx, &pb.PutRequest{Key: []byte("a"), Value: []byte("1")})
			return err
		},
		func(s *Store, idx Index) error {
			_, err := s.Txn(idx, &pb.TxnRequest{Success: []*pb.RequestOp{putOp("b", "1"), putOp("c", "1")}})
			return err
		},
		func(s *Store, idx Index) error {
			_, err := s.DeleteRange(idx, &pb.DeleteRangeRequest{Key: []byte("a")})
			return err
		},
		func(s *Store, idx Index) error {
			_, err := s.Put(idx, &pb.PutRequest{Key: []byte("b"), Value: []byte("2")})
			return err
		},
		func(s *Store, idx Index) error {
			_, err := s.Compact(idx, 3)
			return err
		},
	}
	apply := func(s *Store, from int) {
		t.Helper()
		for i := from; i < len(log); i++ {
			if err := log[i](s, Index{Index: uint64(i + 1), Term: 2}); err != nil {
				t.Fatalf("entry %d: %v", i+1, err)
			}
		}
	}
	state := func(s *Store) string {
		resp, err := s.Range(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(s.Rev(), s.CompactRev(), kvStrings(resp.Kvs), s.ConsistentIndex())
	}

	live := newHarness(t)
	for i := range 2 {
		if err := log[i](live.s, Index{Index: uint64(i + 1), Term: 2}); err != nil {
			t.Fatal(err)
		}
	}
	if err := live.b.ForceCommit(); err != nil {
		t.Fatal(err)
	}
	apply(live.s, 2) // entries 3..5 stay in the open batch
	want := state(live.s)

	data, err := os.ReadFile(live.path)
	if err != nil {
		t.Fatal(err)
	}
	crashed := &harness{t: t, path: filepath.Join(t.TempDir(), "db")}
	if err := os.WriteFile(crashed.path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	crashed.open()
	if ci := crashed.s.ConsistentIndex(); ci.Index != 2 || ci.Term != 2 {
		t.Fatalf("crashed consistent index = %+v, want 2/2", ci)
	}
	if got := kvString(crashed.get("a", 0)); got != "a=1 c2 m2 v1 l0" {
		t.Errorf("crashed copy: a = %s (entry 3 deleted it after the last commit)", got)
	}
	if crashed.s.Rev() != 3 {
		t.Errorf("crashed copy Rev = %d, want 3", crashed.s.Rev())
	}
	apply(crashed.s, 0) // the lead replays from the start of its WAL: 1 and 2 are skipped
	if got := state(crashed.s); got != want {
		t.Errorf("after replay %s, want %s", got, want)
	}
}

func TestReplayIsIdempotent(t *testing.T) {
	h := newHarness(t)
	var calls atomic.Int64
	h.s.OnWrite = func([]*mvccpb.Event) { calls.Add(1) }
	idx := Index{Index: 10, Term: 3}
	put := &pb.PutRequest{Key: []byte("k"), Value: []byte("v")}
	steps := []struct {
		name    string
		do      func() (int64, error)
		wantRev int64 // header revision
	}{
		{"first apply", func() (int64, error) { r, err := h.s.Put(idx, put); return r.GetHeader().GetRevision(), err }, 2},
		{"same entry again", func() (int64, error) { r, err := h.s.Put(idx, put); return r.GetHeader().GetRevision(), err }, 2},
		{"older entry", func() (int64, error) {
			r, err := h.s.DeleteRange(Index{Index: 9, Term: 3}, &pb.DeleteRangeRequest{Key: []byte("k")})
			return r.GetHeader().GetRevision(), err
		}, 2},
		{"older txn", func() (int64, error) {
			r, err := h.s.Txn(Index{Index: 10, Term: 3}, &pb.TxnRequest{Success: []*pb.RequestOp{putOp("x", "")}})
			return r.GetHeader().GetRevision(), err
		}, 2},
		{"older compaction", func() (int64, error) {
			r, err := h.s.Compact(Index{Index: 5, Term: 3}, 2)
			return r.GetHeader().GetRevision(), err
		}, 2},
		{"next entry", func() (int64, error) {
			r, err := h.s.Put(Index{Index: 11, Term: 3}, put)
			return r.GetHeader().GetRevision(), err
		}, 3},
	}
	for _, s := range steps {
		rev, err := s.do()
		if err != nil || rev != s.wantRev {
			t.Errorf("%s: revision %d, %v; want %d", s.name, rev, err, s.wantRev)
		}
	}
	if got := kvString(h.get("k", 0)); got != "k=v c2 m3 v2 l0" {
		t.Errorf("k = %s, want version 2 (applied twice, not five times)", got)
	}
	if calls.Load() != 2 || h.s.CompactRev() != -1 {
		t.Errorf("OnWrite calls %d, compact rev %d; want 2, -1", calls.Load(), h.s.CompactRev())
	}
	if ci := h.s.ConsistentIndex(); ci.Index != 11 {
		t.Errorf("consistent index %d, want 11", ci.Index)
	}
}

func TestOnWriteEvents(t *testing.T) {
	h := newHarness(t)
	var got [][]string
	h.s.OnWrite = func(evs []*mvccpb.Event) {
		var batch []string
		for _, e := range evs {
			batch = append(batch, fmt.Sprintf("%s %s prev=%s", e.Type, kvString(e.Kv), kvString(e.PrevKv)))
		}
		got = append(got, batch)
	}
	h.put("a", "1")
	h.del("zzz", "") // no change: no call
	if _, err := h.s.Txn(h.idx(), &pb.TxnRequest{Success: []*pb.RequestOp{putOp("a", "2"), putOp("b", "1"), delOp("c", "")}}); err != nil {
		t.Fatal(err)
	}
	h.del("a", "c")
	want := [][]string{
		{"PUT a=1 c2 m2 v1 l0 prev=<none>"},
		{"PUT a=2 c2 m3 v2 l0 prev=a=1 c2 m2 v1 l0", "PUT b=1 c3 m3 v1 l0 prev=<none>"},
		{"DELETE a= c0 m4 v0 l0 prev=a=2 c2 m3 v2 l0", "DELETE b= c0 m4 v0 l0 prev=b=1 c3 m3 v1 l0"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events:\n%v\nwant\n%v", got, want)
	}
}

func TestCorruptKeyBucketIsAnError(t *testing.T) {
	cases := []struct {
		name       string
		key, value []byte
	}{
		{"malformed revision key", []byte("garbage"), []byte{}},
		{"undecodable value", revToBytes(revision{main: 2}, false), []byte{0xff, 0xff, 0xff}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "db")
			b, err := backend.Open(path, backend.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = b.Close() }()
			if err := b.Put(keyBucket, c.key, c.value); err != nil {
				t.Fatal(err)
			}
			_, err = New(b)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
				t.Errorf("New = %v, want ErrCorrupt naming %s", err, path)
			}
		})
	}
}

// TestConcurrentReadersSeeAppliedWrites runs readers against a writer whose batch
// commits every few writes. Every read must see at least the writes applied before
// it started, and every value must be the one written at its mod revision.
func TestConcurrentReadersSeeAppliedWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	b, err := backend.Open(path, backend.Options{BatchLimit: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }()
	s, err := New(b)
	if err != nil {
		t.Fatal(err)
	}
	const keys, writes = 50, 600
	var applied atomic.Int64 // revision of the last completed write
	applied.Store(1)
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 7))
			for applied.Load() < writes+1 {
				floor := applied.Load()
				k := fmt.Sprint("k", rng.IntN(keys))
				resp, err := s.Range(&pb.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l")})
				if err != nil {
					errc <- err
					return
				}
				if resp.Header.Revision < floor {
					errc <- fmt.Errorf("read at %d after write %d was applied", resp.Header.Revision, floor)
					return
				}
				for _, kv := range resp.Kvs {
					if string(kv.Value) != fmt.Sprint(kv.ModRevision) {
						errc <- fmt.Errorf("%s: value %s at mod revision %d", kv.Key, kv.Value, kv.ModRevision)
						return
					}
				}
				if _, err := s.Range(&pb.RangeRequest{Key: []byte(k)}); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range writes {
		rev := s.Rev() + 1 // the single writer knows the revision it will get
		k := []byte(fmt.Sprint("k", rng.IntN(keys)))
		var err error
		if i%10 == 9 {
			_, err = s.DeleteRange(Index{Index: uint64(i + 1), Term: 1}, &pb.DeleteRangeRequest{Key: k})
		} else {
			_, err = s.Put(Index{Index: uint64(i + 1), Term: 1}, &pb.PutRequest{Key: k, Value: []byte(fmt.Sprint(rev))})
		}
		if err != nil {
			t.Fatal(err)
		}
		applied.Store(s.Rev())
	}
	applied.Store(writes + 1)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

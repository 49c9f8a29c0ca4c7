package mvcc

import (
	"errors"
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

func eventString(e *mvccpb.Event, withPrev bool) string {
	s := fmt.Sprintf("%s %s", e.Type, kvString(e.Kv))
	if withPrev {
		s += " prev " + kvString(e.PrevKv)
	}
	return s
}

// History must read back exactly what OnWrite announced live, so that a
// watcher catching up from the bucket sees what a synced one saw.
func TestHistoryMatchesLiveEvents(t *testing.T) {
	h := newHarness(t)
	var live []*mvccpb.Event
	h.s.OnWrite = func(evs []*mvccpb.Event) { live = append(live, evs...) }
	h.put("a", "1")
	h.put("b", "1")
	h.put("a", "2")
	h.del("a", "")
	h.put("a", "3")
	if _, err := h.s.Txn(h.idx(), &pb.TxnRequest{Success: []*pb.RequestOp{putOp("c", "1"), putOp("b", "2"), delOp("a", "")}}); err != nil {
		t.Fatal(err)
	}
	h.del("a", "\x00") // deletes b and c at one revision
	h.put("zz", "1")

	for _, prev := range []bool{false, true} {
		got, _, err := h.s.History([]byte("a"), []byte{0}, 1, h.s.Rev(), prev)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(live) {
			t.Fatalf("prev=%v: %d events, want %d", prev, len(got), len(live))
		}
		for i := range live {
			if g, w := eventString(got[i], prev), eventString(live[i], prev); g != w {
				t.Errorf("prev=%v event %d: %s, want %s", prev, i, g, w)
			}
		}
	}

	// A single key and a [key, end) range select their events only.
	one, _, err := h.s.History([]byte("b"), nil, 1, h.s.Rev(), false)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, e := range live {
		if string(e.Kv.Key) == "b" {
			want = append(want, eventString(e, false))
		}
	}
	if len(one) != len(want) {
		t.Fatalf("key b: %d events, want %d", len(one), len(want))
	}
	for i := range one {
		if g := eventString(one[i], false); g != want[i] {
			t.Errorf("key b event %d: %s, want %s", i, g, want[i])
		}
	}
	rng, _, err := h.s.History([]byte("b"), []byte("d"), 4, 7, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range rng {
		if k := string(e.Kv.Key); k < "b" || k >= "d" || e.Kv.ModRevision < 4 || e.Kv.ModRevision > 7 {
			t.Errorf("event outside [b,d) x [4,7]: %s", eventString(e, false))
		}
	}
}

func TestHistoryCompacted(t *testing.T) {
	h := newHarness(t)
	for i := 0; i < 5; i++ {
		h.put("k", fmt.Sprint(i)) // revisions 2..6
	}
	h.del("k", "") // 7
	h.put("k", "again")
	if _, err := h.s.Compact(h.idx(), 7); err != nil {
		t.Fatal(err)
	}
	if _, rev, err := h.s.History([]byte("k"), nil, 6, 10, false); !errors.Is(err, ErrCompacted) || rev != 7 {
		t.Fatalf("from 6 after compacting at 7: rev %d err %v, want 7 and ErrCompacted", rev, err)
	}
	// The delete at exactly the compaction revision is still there; the put
	// after it has no previous value (a new generation).
	got, _, err := h.s.History([]byte("k"), nil, 7, 10, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Type != mvccpb.Event_DELETE || got[0].Kv.ModRevision != 7 || got[1].Kv.ModRevision != 8 || got[1].PrevKv != nil {
		t.Fatalf("history from 7: %v", got)
	}
}

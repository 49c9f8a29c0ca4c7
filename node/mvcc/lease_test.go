package mvcc

import (
	"errors"
	"slices"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"etcdctl-wizard/node/backend"
	"etcdctl-wizard/node/lease"
)

func leaseHarness(t *testing.T, ids ...int64) (*harness, *lease.Lessor) {
	t.Helper()
	h := newHarness(t)
	le := lease.New(lease.Config{MinTTL: 1})
	for _, id := range ids {
		le.Grant(id, 10)
	}
	h.s.Leases = le
	return h, le
}

func keyStrings(t *testing.T, le *lease.Lessor, id int64) []string {
	t.Helper()
	keys, err := le.Keys(id)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = string(k)
	}
	return out
}

func TestPutWithUnknownLeaseIsRefused(t *testing.T) {
	h, _ := leaseHarness(t, 1)
	rev := h.s.Rev()
	if _, err := h.s.Put(h.idx(), &pb.PutRequest{Key: []byte("k"), Lease: 2}); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("put: %v, want ErrLeaseNotFound", err)
	}
	txn := &pb.TxnRequest{Success: []*pb.RequestOp{putOp("a", "1"), {Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("b"), Lease: 2}}}}}
	if _, err := h.s.Txn(h.idx(), txn); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("txn: %v, want ErrLeaseNotFound", err)
	}
	if h.s.Rev() != rev || h.get("a", 0) != nil {
		t.Fatal("a refused txn wrote something")
	}
	if ToGRPCError(ErrLeaseNotFound).Error() != "rpc error: code = NotFound desc = etcdserver: requested lease not found" {
		t.Fatalf("gRPC error %v", ToGRPCError(ErrLeaseNotFound))
	}
	// The refusal is an answer, not a store failure.
	if _, err := h.s.Put(h.idx(), &pb.PutRequest{Key: []byte("k"), Lease: 1}); err != nil {
		t.Fatal(err)
	}
}

func TestAttachmentsFollowWrites(t *testing.T) {
	h, le := leaseHarness(t, 1, 2)
	for _, r := range []*pb.PutRequest{
		{Key: []byte("a"), Lease: 1},
		{Key: []byte("b"), Lease: 1},
		{Key: []byte("c"), Lease: 1},
		{Key: []byte("d"), Lease: 1},
		{Key: []byte("b"), Lease: 2}, // moved
		{Key: []byte("c")},           // no lease any more
		{Key: []byte("a"), IgnoreLease: true, Value: nil, IgnoreValue: true},
	} {
		if _, err := h.s.Put(h.idx(), r); err != nil {
			t.Fatal(err)
		}
	}
	h.del("d", "")
	if got := keyStrings(t, le, 1); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("lease 1 keys %v, want [a]", got)
	}
	if got := keyStrings(t, le, 2); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("lease 2 keys %v, want [b]", got)
	}
	// A txn that puts then deletes a key leaves it without a lease.
	txn := &pb.TxnRequest{Success: []*pb.RequestOp{
		{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("x"), Lease: 2}}},
		txnOp(&pb.TxnRequest{Success: []*pb.RequestOp{delOp("b", "")}}),
	}}
	if _, err := h.s.Txn(h.idx(), txn); err != nil {
		t.Fatal(err)
	}
	if got := keyStrings(t, le, 2); !slices.Equal(got, []string{"x"}) {
		t.Fatalf("lease 2 keys %v, want [x]", got)
	}
}

func TestDeleteKeysIsOneRevisionWithTheLeaseRecord(t *testing.T) {
	h, le := leaseHarness(t, 1)
	var events [][]*mvccpb.Event
	h.s.OnWrite = func(evs []*mvccpb.Event) { events = append(events, evs) }
	if _, err := h.s.Update(h.idx(), func(tx *backend.WriteTx) error { return lease.Put(tx, 1, 10) }); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"k1", "k2", "k3"} {
		if _, err := h.s.Put(h.idx(), &pb.PutRequest{Key: []byte(k), Value: []byte("v"), Lease: 1}); err != nil {
			t.Fatal(err)
		}
	}
	keys, _ := le.Keys(1)
	before := h.s.Rev()
	idx := h.idx()
	rev, applied, err := h.s.DeleteKeys(idx, keys, func(tx *backend.WriteTx) error { return lease.Delete(tx, 1) })
	if err != nil || !applied || rev != before+1 {
		t.Fatalf("DeleteKeys: rev %d applied %v err %v; want rev %d", rev, applied, err, before+1)
	}
	last := events[len(events)-1]
	if len(last) != 3 {
		t.Fatalf("last write had %d events, want 3 deletes at one revision", len(last))
	}
	for _, ev := range last {
		if ev.Type != mvccpb.Event_DELETE || ev.Kv.ModRevision != rev {
			t.Fatalf("event %v", ev)
		}
	}
	if got, _ := lease.Load(h.b); len(got) != 0 {
		t.Fatalf("lease record left: %v", got)
	}
	// A replay of the same entry (after a restart) changes nothing.
	n := len(events)
	if _, applied, err := h.s.DeleteKeys(idx, keys, nil); err != nil || applied || len(events) != n {
		t.Fatalf("replay: applied %v err %v events %d->%d", applied, err, n, len(events))
	}
}

func TestLeasedKeysAfterReopen(t *testing.T) {
	h, _ := leaseHarness(t, 1, 2)
	for _, r := range []*pb.PutRequest{
		{Key: []byte("a"), Lease: 1},
		{Key: []byte("b"), Lease: 2},
		{Key: []byte("c")},
		{Key: []byte("d"), Lease: 1},
	} {
		if _, err := h.s.Put(h.idx(), r); err != nil {
			t.Fatal(err)
		}
	}
	h.del("d", "")
	h.reopen()
	var got []string
	err := h.s.LeasedKeys(func(key []byte, id int64) { got = append(got, string(key)+"/"+string(rune('0'+id))) })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"a/1", "b/2"}) {
		t.Fatalf("leased keys %v", got)
	}
}

package mvcc

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"etcdctl-wizard/node/backend"
)

// harness applies requests the way the raft loop would: every write is the next
// raft entry.
type harness struct {
	t    testing.TB
	path string
	b    *backend.Backend
	s    *Store
	next uint64
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	h := &harness{t: t, path: filepath.Join(t.TempDir(), "member", "snap", "db")}
	h.open()
	return h
}

// open (re)opens backend and store on h.path. The batch is committed only on
// demand, so tests decide what a crash would keep.
func (h *harness) open() {
	h.t.Helper()
	b, err := backend.Open(h.path, backend.Options{BatchInterval: time.Hour})
	if err != nil {
		h.t.Fatal(err)
	}
	s, err := New(b)
	if err != nil {
		_ = b.Close()
		h.t.Fatal(err)
	}
	h.b, h.s = b, s
	h.next = s.ConsistentIndex().Index + 1
	h.t.Cleanup(func() { _ = b.Close() })
}

func (h *harness) reopen() {
	h.t.Helper()
	if err := h.b.Close(); err != nil {
		h.t.Fatal(err)
	}
	h.open()
}

func (h *harness) idx() Index {
	i := Index{Index: h.next, Term: 1}
	h.next++
	return i
}

func (h *harness) put(key, val string) *pb.PutResponse {
	h.t.Helper()
	resp, err := h.s.Put(h.idx(), &pb.PutRequest{Key: []byte(key), Value: []byte(val)})
	if err != nil {
		h.t.Fatalf("put %s: %v", key, err)
	}
	return resp
}

func (h *harness) del(key, end string) *pb.DeleteRangeResponse {
	h.t.Helper()
	resp, err := h.s.DeleteRange(h.idx(), &pb.DeleteRangeRequest{Key: []byte(key), RangeEnd: bytesOrNil(end)})
	if err != nil {
		h.t.Fatalf("delete %s: %v", key, err)
	}
	return resp
}

func (h *harness) get(key string, rev int64) *mvccpb.KeyValue {
	h.t.Helper()
	resp, err := h.s.Range(&pb.RangeRequest{Key: []byte(key), Revision: rev})
	if err != nil {
		h.t.Fatalf("get %s@%d: %v", key, rev, err)
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	return resp.Kvs[0]
}

func bytesOrNil(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}

// kvString renders a KeyValue compactly for comparisons in tables.
func kvString(kv *mvccpb.KeyValue) string {
	if kv == nil {
		return "<none>"
	}
	return fmt.Sprintf("%s=%s c%d m%d v%d l%d", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease)
}

func kvStrings(kvs []*mvccpb.KeyValue) []string {
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		out[i] = kvString(kv)
	}
	return out
}

func putOp(key, val string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(key), Value: []byte(val)}}}
}

func delOp(key, end string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte(key), RangeEnd: bytesOrNil(end)}}}
}

func rangeOp(key, end string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte(key), RangeEnd: bytesOrNil(end)}}}
}

func txnOp(t *pb.TxnRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: t}}
}

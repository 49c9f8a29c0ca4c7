package mvcc

import (
	"errors"
	"slices"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"etcdctl-wizard/node/backend"
)

// TestRevisionSemantics replays a history whose revisions, versions and create
// revisions are what etcd 3.7 answers for the same requests (etcdctl put/del/txn
// against a fresh member, which starts at revision 1).
func TestRevisionSemantics(t *testing.T) {
	h := newHarness(t)
	if got := h.s.Rev(); got != 1 {
		t.Fatalf("fresh store Rev = %d, want 1", got)
	}
	steps := []struct {
		name    string
		do      func() int64 // returns the response header revision
		wantRev int64        // header revision and Rev() afterwards
		key     string
		wantKV  string
	}{
		{"create", func() int64 { return h.put("foo", "a").Header.Revision }, 2, "foo", "foo=a c2 m2 v1 l0"},
		{"overwrite", func() int64 { return h.put("foo", "b").Header.Revision }, 3, "foo", "foo=b c2 m3 v2 l0"},
		{"same value still a write", func() int64 { return h.put("foo", "b").Header.Revision }, 4, "foo", "foo=b c2 m4 v3 l0"},
		{"delete", func() int64 {
			r := h.del("foo", "")
			if r.Deleted != 1 {
				t.Errorf("deleted = %d", r.Deleted)
			}
			return r.Header.Revision
		}, 5, "foo", "<none>"},
		{"delete of nothing keeps the revision", func() int64 {
			r := h.del("foo", "")
			if r.Deleted != 0 {
				t.Errorf("deleted = %d", r.Deleted)
			}
			return r.Header.Revision
		}, 5, "foo", "<none>"},
		{"recreate resets version and create revision", func() int64 { return h.put("foo", "c").Header.Revision }, 6, "foo", "foo=c c6 m6 v1 l0"},
		{"txn of three puts is one revision", func() int64 {
			r, err := h.s.Txn(h.idx(), &pb.TxnRequest{Success: []*pb.RequestOp{putOp("t1", "x"), putOp("t2", "y"), putOp("foo", "d")}})
			if err != nil {
				t.Fatal(err)
			}
			return r.Header.Revision
		}, 7, "foo", "foo=d c6 m7 v2 l0"},
		{"failed txn without failure ops changes nothing", func() int64 {
			r, err := h.s.Txn(h.idx(), &pb.TxnRequest{
				Compare: []*pb.Compare{{Key: []byte("foo"), Target: pb.Compare_VALUE, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_Value{Value: []byte("nope")}}},
				Success: []*pb.RequestOp{putOp("foo", "never")},
			})
			if err != nil || r.Succeeded {
				t.Fatalf("txn = %v, %v", r, err)
			}
			return r.Header.Revision
		}, 7, "foo", "foo=d c6 m7 v2 l0"},
		{"delete range of several keys is one revision", func() int64 {
			r := h.del("t1", "t3")
			if r.Deleted != 2 {
				t.Errorf("deleted = %d", r.Deleted)
			}
			return r.Header.Revision
		}, 8, "t2", "<none>"},
	}
	for _, s := range steps {
		if got := s.do(); got != s.wantRev {
			t.Errorf("%s: header revision %d, want %d", s.name, got, s.wantRev)
		}
		if got := h.s.Rev(); got != s.wantRev {
			t.Errorf("%s: Rev() = %d, want %d", s.name, got, s.wantRev)
		}
		if got := kvString(h.get(s.key, 0)); got != s.wantKV {
			t.Errorf("%s: %s = %s, want %s", s.name, s.key, got, s.wantKV)
		}
	}

	// The txn's three changes are sub revisions 0, 1, 2 of revision 7 on disk.
	var subs []string
	err := h.b.Update(func(tx *backend.WriteTx) error {
		return tx.Scan(keyBucket, revToBytes(revision{main: 7}, false), revToBytes(revision{main: 8}, false), func(k, _ []byte) error {
			r, tomb, err := bytesToRev(k)
			if err != nil || tomb {
				t.Errorf("key %x: %v tomb=%v", k, err, tomb)
			}
			subs = append(subs, string(rune('0'+r.sub)))
			return nil
		})
	})
	if err != nil || strings.Join(subs, ",") != "0,1,2" {
		t.Errorf("sub revisions of revision 7 = %v (%v), want 0,1,2", subs, err)
	}
}

// TestHistoricReads reads every key at every revision of a small history.
func TestHistoricReads(t *testing.T) {
	h := newHarness(t)
	h.put("k", "v1")   // 2
	h.put("k", "v2")   // 3
	h.del("k", "")     // 4
	h.put("k", "v3")   // 5
	h.put("other", "") // 6
	cases := []struct {
		rev  int64
		want string
	}{
		{1, "<none>"},
		{2, "k=v1 c2 m2 v1 l0"},
		{3, "k=v2 c2 m3 v2 l0"},
		{4, "<none>"},
		{5, "k=v3 c5 m5 v1 l0"},
		{6, "k=v3 c5 m5 v1 l0"},
		{0, "k=v3 c5 m5 v1 l0"},
	}
	for _, c := range cases {
		resp, err := h.s.Range(&pb.RangeRequest{Key: []byte("k"), Revision: c.rev})
		if err != nil {
			t.Fatalf("rev %d: %v", c.rev, err)
		}
		got := "<none>"
		if len(resp.Kvs) > 0 {
			got = kvString(resp.Kvs[0])
		}
		if got != c.want {
			t.Errorf("k@%d = %s, want %s", c.rev, got, c.want)
		}
		if resp.Header.Revision != 6 {
			t.Errorf("k@%d: header revision %d, want the current 6", c.rev, resp.Header.Revision)
		}
	}
	if _, err := h.s.Range(&pb.RangeRequest{Key: []byte("k"), Revision: 7}); !errors.Is(err, ErrFutureRev) {
		t.Errorf("read at 7 = %v, want ErrFutureRev", err)
	}
}

func TestRangeOptions(t *testing.T) {
	h := newHarness(t)
	// Revisions: a=2, b=3, c=4, foo/1=5, foo/2=6, foo2=7, b again=8 (version 2), z=9.
	for _, kv := range [][2]string{{"a", "3"}, {"b", "1"}, {"c", "2"}, {"foo/1", "x"}, {"foo/2", "y"}, {"foo2", "z"}, {"b", "0"}, {"z", "9"}} {
		h.put(kv[0], kv[1])
	}
	keys := func(resp *pb.RangeResponse) string {
		var ks []string
		for _, kv := range resp.Kvs {
			ks = append(ks, string(kv.Key))
		}
		return strings.Join(ks, ",")
	}
	cases := []struct {
		name      string
		req       *pb.RangeRequest
		keys      string
		count     int64
		more      bool
		checkKV   func(t *testing.T, resp *pb.RangeResponse)
		wantError error
	}{
		{name: "single key", req: &pb.RangeRequest{Key: []byte("b")}, keys: "b", count: 1},
		{name: "missing key", req: &pb.RangeRequest{Key: []byte("nope")}, keys: "", count: 0},
		{name: "half-open range", req: &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("c")}, keys: "a,b", count: 2},
		{name: "prefix", req: &pb.RangeRequest{Key: []byte("foo/"), RangeEnd: []byte("foo0")}, keys: "foo/1,foo/2", count: 2},
		{name: "from key", req: &pb.RangeRequest{Key: []byte("foo2"), RangeEnd: []byte{0}}, keys: "foo2,z", count: 2},
		{name: "all keys", req: &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}, keys: "a,b,c,foo/1,foo/2,foo2,z", count: 7},
		{name: "end before key", req: &pb.RangeRequest{Key: []byte("c"), RangeEnd: []byte("a")}, keys: "", count: 0},
		{name: "limit sets more and counts all", req: &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, Limit: 2}, keys: "a,b", count: 7, more: true},
		{name: "limit equal to count", req: &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("c"), Limit: 2}, keys: "a,b", count: 2},
		{name: "count only", req: &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, CountOnly: true}, keys: "", count: 7},
		{name: "keys only", req: &pb.RangeRequest{Key: []byte("b"), KeysOnly: true}, keys: "b", count: 1, checkKV: func(t *testing.T, resp *pb.RangeResponse) {
			if got := kvString(resp.Kvs[0]); got != "b= c3 m8 v2 l0" {
				t.Errorf("keys-only kv = %s", got)
			}
		}},
		{name: "sort by value ascending", req: &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("d"), SortTarget: pb.RangeRequest_VALUE, SortOrder: pb.RangeRequest_ASCEND}, keys: "b,c,a", count: 3},
		{name: "sort target without order means ascending", req: &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("d"), SortTarget: pb.RangeRequest_VALUE}, keys: "b,c,a", count: 3},
		{name: "sort by key descending", req: &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("d"), SortOrder: pb.RangeRequest_DESCEND}, keys: "c,b,a", count: 3},
		{name: "sort by mod descending with limit", req: &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, SortTarget: pb.RangeRequest_MOD, SortOrder: pb.RangeRequest_DESCEND, Limit: 3}, keys: "z,b,foo2", count: 7, more: true},
		{name: "sort by create ascending", req: &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("d"), SortTarget: pb.RangeRequest_CREATE, SortOrder: pb.RangeRequest_ASCEND}, keys: "a,b,c", count: 3},
		{name: "sort by version descending, ties in key order", req: &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("d"), SortTarget: pb.RangeRequest_VERSION, SortOrder: pb.RangeRequest_DESCEND}, keys: "b,a,c", count: 3},
		{name: "min mod revision filter keeps count", req: &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, MinModRevision: 7}, keys: "b,foo2,z", count: 7},
		{name: "max mod revision", req: &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, MaxModRevision: 4}, keys: "a,c", count: 7},
		{name: "create revision window", req: &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, MinCreateRevision: 3, MaxCreateRevision: 5}, keys: "b,c,foo/1", count: 7},
		{name: "filter then limit", req: &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, MinCreateRevision: 3, Limit: 2}, keys: "b,c", count: 7, more: true},
		{name: "historic range", req: &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, Revision: 4}, keys: "a,b,c", count: 3, checkKV: func(t *testing.T, resp *pb.RangeResponse) {
			if got := kvString(resp.Kvs[1]); got != "b=1 c3 m3 v1 l0" {
				t.Errorf("b@4 = %s", got)
			}
		}},
		{name: "future revision", req: &pb.RangeRequest{Key: []byte("a"), Revision: 10}, wantError: ErrFutureRev},
		{name: "empty key", req: &pb.RangeRequest{}, wantError: ErrEmptyKey},
		{name: "bad sort order", req: &pb.RangeRequest{Key: []byte("a"), SortOrder: 9}, wantError: ErrInvalidSortOption},
		{name: "bad sort target", req: &pb.RangeRequest{Key: []byte("a"), SortTarget: 9}, wantError: ErrInvalidSortOption},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := h.s.Range(c.req)
			if c.wantError != nil {
				if !errors.Is(err, c.wantError) {
					t.Fatalf("err = %v, want %v", err, c.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := keys(resp); got != c.keys {
				t.Errorf("keys = %q, want %q", got, c.keys)
			}
			if resp.Count != c.count || resp.More != c.more {
				t.Errorf("count/more = %d/%v, want %d/%v", resp.Count, resp.More, c.count, c.more)
			}
			if resp.Header.GetRevision() != 9 {
				t.Errorf("header revision %d, want 9", resp.Header.GetRevision())
			}
			if c.checkKV != nil {
				c.checkKV(t, resp)
			}
		})
	}
}

func TestPutOptions(t *testing.T) {
	h := newHarness(t)
	if _, err := h.s.Put(h.idx(), &pb.PutRequest{Key: []byte("k"), Value: []byte("v1"), Lease: 7}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		req     *pb.PutRequest
		wantErr error
		prev    string // PrevKv in the response
		after   string // k afterwards
		rev     int64  // store revision afterwards
	}{
		{"prev_kv", &pb.PutRequest{Key: []byte("k"), Value: []byte("v2"), PrevKv: true}, nil, "k=v1 c2 m2 v1 l7", "k=v2 c2 m3 v2 l0", 3},
		{"ignore_value keeps value", &pb.PutRequest{Key: []byte("k"), IgnoreValue: true, Lease: 9}, nil, "<none>", "k=v2 c2 m4 v3 l9", 4},
		{"ignore_lease keeps lease", &pb.PutRequest{Key: []byte("k"), Value: []byte("v3"), IgnoreLease: true}, nil, "<none>", "k=v3 c2 m5 v4 l9", 5},
		{"ignore_value on a missing key", &pb.PutRequest{Key: []byte("missing"), IgnoreValue: true}, ErrKeyNotFound, "", "k=v3 c2 m5 v4 l9", 5},
		{"ignore_lease on a missing key", &pb.PutRequest{Key: []byte("missing"), Value: []byte("x"), IgnoreLease: true}, ErrKeyNotFound, "", "k=v3 c2 m5 v4 l9", 5},
		{"ignore_value with a value", &pb.PutRequest{Key: []byte("k"), Value: []byte("x"), IgnoreValue: true}, ErrValueProvided, "", "k=v3 c2 m5 v4 l9", 5},
		{"ignore_lease with a lease", &pb.PutRequest{Key: []byte("k"), Lease: 1, IgnoreLease: true}, ErrLeaseProvided, "", "k=v3 c2 m5 v4 l9", 5},
		{"empty key", &pb.PutRequest{Value: []byte("x")}, ErrEmptyKey, "", "k=v3 c2 m5 v4 l9", 5},
		{"prev_kv of a new key", &pb.PutRequest{Key: []byte("n"), PrevKv: true}, nil, "<none>", "k=v3 c2 m5 v4 l9", 6},
	}
	for _, c := range cases {
		resp, err := h.s.Put(h.idx(), c.req)
		if !errors.Is(err, c.wantErr) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.wantErr)
		}
		if err == nil && kvString(resp.PrevKv) != c.prev {
			t.Errorf("%s: prev_kv = %s, want %s", c.name, kvString(resp.PrevKv), c.prev)
		}
		if got := kvString(h.get("k", 0)); got != c.after {
			t.Errorf("%s: k = %s, want %s", c.name, got, c.after)
		}
		if h.s.Rev() != c.rev {
			t.Errorf("%s: Rev = %d, want %d", c.name, h.s.Rev(), c.rev)
		}
	}
	// Rejected requests are applied entries too: the consistent index moved on.
	if got := h.s.ConsistentIndex().Index; got != h.next-1 {
		t.Errorf("ConsistentIndex = %d, want %d", got, h.next-1)
	}
}

func TestDeleteRangePrevKvs(t *testing.T) {
	h := newHarness(t)
	h.put("a", "1")
	h.put("b", "2")
	h.put("c", "3")
	resp, err := h.s.DeleteRange(h.idx(), &pb.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte("c"), PrevKv: true})
	if err != nil {
		t.Fatal(err)
	}
	got := kvStrings(resp.PrevKvs)
	want := []string{"a=1 c2 m2 v1 l0", "b=2 c3 m3 v1 l0"}
	if resp.Deleted != 2 || !slices.Equal(got, want) || resp.Header.Revision != 5 {
		t.Errorf("delete = %d %v rev %d, want 2 %v rev 5", resp.Deleted, got, resp.Header.Revision, want)
	}
	if _, err := h.s.DeleteRange(h.idx(), &pb.DeleteRangeRequest{}); !errors.Is(err, ErrEmptyKey) {
		t.Errorf("empty key delete = %v", err)
	}
}

// TestNilAndEmptyRequests: malformed requests from a buggy caller are answered
// with errors (or empty results), never a panic.
func TestNilAndEmptyRequests(t *testing.T) {
	h := newHarness(t)
	h.put("a", "1")
	calls := []struct {
		name string
		call func() error
		want error
	}{
		{"nil range", func() error { _, err := h.s.Range(nil); return err }, ErrEmptyKey},
		{"nil put", func() error { _, err := h.s.Put(h.idx(), nil); return err }, ErrEmptyKey},
		{"nil delete", func() error { _, err := h.s.DeleteRange(h.idx(), nil); return err }, ErrEmptyKey},
		{"nil txn", func() error { _, err := h.s.Txn(h.idx(), nil); return err }, nil},
		{"nil read-only txn", func() error { _, err := h.s.Txn(Index{}, nil); return err }, nil},
		{"nil op", func() error {
			_, err := h.s.Txn(h.idx(), &pb.TxnRequest{Success: []*pb.RequestOp{nil}})
			return err
		}, ErrKeyNotFound},
		{"nil compare", func() error {
			_, err := h.s.Txn(h.idx(), &pb.TxnRequest{Compare: []*pb.Compare{nil}})
			return err
		}, ErrEmptyKey},
		{"nil nested txn", func() error {
			_, err := h.s.Txn(h.idx(), &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestTxn{}}}})
			return err
		}, nil},
		{"nil put in op", func() error {
			_, err := h.s.Txn(h.idx(), &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{}}}})
			return err
		}, ErrEmptyKey},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if h.s.Rev() != 2 {
		t.Errorf("Rev = %d: a malformed request changed the store", h.s.Rev())
	}
}

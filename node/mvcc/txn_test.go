package mvcc

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

func cmpValue(key string, res pb.Compare_CompareResult, v string) *pb.Compare {
	return &pb.Compare{Key: []byte(key), Target: pb.Compare_VALUE, Result: res, TargetUnion: &pb.Compare_Value{Value: []byte(v)}}
}

func cmpInt(key, end string, target pb.Compare_CompareTarget, res pb.Compare_CompareResult, n int64) *pb.Compare {
	c := &pb.Compare{Key: []byte(key), RangeEnd: bytesOrNil(end), Target: target, Result: res}
	switch target {
	case pb.Compare_VERSION:
		c.TargetUnion = &pb.Compare_Version{Version: n}
	case pb.Compare_CREATE:
		c.TargetUnion = &pb.Compare_CreateRevision{CreateRevision: n}
	case pb.Compare_MOD:
		c.TargetUnion = &pb.Compare_ModRevision{ModRevision: n}
	case pb.Compare_LEASE:
		c.TargetUnion = &pb.Compare_Lease{Lease: n}
	}
	return c
}

func TestTxnCompares(t *testing.T) {
	h := newHarness(t)
	h.put("a", "10")                                                                        // 2
	h.put("b", "20")                                                                        // 3
	h.put("b", "21")                                                                        // 4: b version 2
	if _, err := h.s.Put(h.idx(), &pb.PutRequest{Key: []byte("l"), Lease: 5}); err != nil { // 5
		t.Fatal(err)
	}
	cases := []struct {
		name string
		cmp  *pb.Compare
		want bool
	}{
		{"value equal", cmpValue("a", pb.Compare_EQUAL, "10"), true},
		{"value not equal", cmpValue("a", pb.Compare_NOT_EQUAL, "10"), false},
		{"value greater", cmpValue("a", pb.Compare_GREATER, "09"), true},
		{"value less", cmpValue("a", pb.Compare_LESS, "09"), false},
		{"value of missing key fails even for not-equal", cmpValue("zz", pb.Compare_NOT_EQUAL, "x"), false},
		{"version", cmpInt("b", "", pb.Compare_VERSION, pb.Compare_EQUAL, 2), true},
		{"missing key has version 0", cmpInt("zz", "", pb.Compare_VERSION, pb.Compare_EQUAL, 0), true},
		{"missing key has create revision 0", cmpInt("zz", "", pb.Compare_CREATE, pb.Compare_EQUAL, 0), true},
		{"create revision", cmpInt("b", "", pb.Compare_CREATE, pb.Compare_EQUAL, 3), true},
		{"mod revision greater", cmpInt("b", "", pb.Compare_MOD, pb.Compare_GREATER, 3), true},
		{"mod revision less", cmpInt("b", "", pb.Compare_MOD, pb.Compare_LESS, 4), false},
		{"lease", cmpInt("l", "", pb.Compare_LEASE, pb.Compare_EQUAL, 5), true},
		{"lease of a key without one", cmpInt("a", "", pb.Compare_LEASE, pb.Compare_EQUAL, 0), true},
		{"range: every key must match", cmpInt("a", "c", pb.Compare_VERSION, pb.Compare_EQUAL, 1), false},
		{"range: all match", cmpInt("a", "c", pb.Compare_CREATE, pb.Compare_GREATER, 1), true},
		{"range from key", cmpInt("b", "\x00", pb.Compare_MOD, pb.Compare_GREATER, 3), true},
		{"empty range behaves as missing key", cmpInt("x", "y", pb.Compare_VERSION, pb.Compare_EQUAL, 0), true},
	}
	for _, c := range cases {
		resp, err := h.s.Txn(Index{}, &pb.TxnRequest{Compare: []*pb.Compare{c.cmp}, Success: []*pb.RequestOp{rangeOp("a", "")}})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if resp.Succeeded != c.want {
			t.Errorf("%s: succeeded = %v, want %v", c.name, resp.Succeeded, c.want)
		}
	}
}

// TestTxnExecution checks branch choice, nested txns, response order and the
// revisions reported inside, as etcd's apply layer builds them.
func TestTxnExecution(t *testing.T) {
	h := newHarness(t)
	h.put("a", "1") // 2
	h.put("b", "2") // 3

	req := &pb.TxnRequest{
		Compare: []*pb.Compare{cmpValue("a", pb.Compare_EQUAL, "1")},
		Success: []*pb.RequestOp{
			rangeOp("a", ""),
			putOp("a", "new"),
			rangeOp("a", ""), // sees the put above
			txnOp(&pb.TxnRequest{
				// Nested compares run against the state before the outer txn.
				Compare: []*pb.Compare{cmpValue("a", pb.Compare_EQUAL, "1")},
				Success: []*pb.RequestOp{putOp("c", "nested")},
				Failure: []*pb.RequestOp{putOp("d", "wrong")},
			}),
			delOp("b", ""),
			delOp("nothing", ""),
		},
		Failure: []*pb.RequestOp{putOp("f", "failure")},
	}
	resp, err := h.s.Txn(h.idx(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Succeeded || resp.Header.Revision != 4 || len(resp.Responses) != 6 {
		t.Fatalf("txn = succeeded %v rev %d responses %d", resp.Succeeded, resp.Header.Revision, len(resp.Responses))
	}
	r := resp.Responses
	checks := []struct {
		name, got, want string
	}{
		{"range before put", kvString(r[0].GetResponseRange().Kvs[0]), "a=1 c2 m2 v1 l0"},
		{"range before put header", fmt.Sprint(r[0].GetResponseRange().Header.Revision), "3"},
		{"put header", fmt.Sprint(r[1].GetResponsePut().Header.Revision), "4"},
		{"range after put", kvString(r[2].GetResponseRange().Kvs[0]), "a=new c2 m4 v2 l0"},
		{"range after put header", fmt.Sprint(r[2].GetResponseRange().Header.Revision), "4"},
		{"nested succeeded", fmt.Sprint(r[3].GetResponseTxn().Succeeded), "true"},
		{"nested header stays empty", fmt.Sprint(r[3].GetResponseTxn().Header.GetRevision()), "0"},
		{"nested put", fmt.Sprint(r[3].GetResponseTxn().Responses[0].GetResponsePut().Header.Revision), "4"},
		{"delete b", fmt.Sprint(r[4].GetResponseDeleteRange().Deleted), "1"},
		{"delete nothing", fmt.Sprint(r[5].GetResponseDeleteRange().Deleted, r[5].GetResponseDeleteRange().Header.Revision), "0 4"},
		{"c written", kvString(h.get("c", 0)), "c=nested c4 m4 v1 l0"},
		{"d not written", kvString(h.get("d", 0)), "<none>"},
		{"f not written", kvString(h.get("f", 0)), "<none>"},
		{"b deleted", kvString(h.get("b", 0)), "<none>"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: %s, want %s", c.name, c.got, c.want)
		}
	}

	// The failure branch runs when a compare fails.
	resp, err = h.s.Txn(h.idx(), &pb.TxnRequest{
		Compare: []*pb.Compare{cmpValue("a", pb.Compare_EQUAL, "1")},
		Success: []*pb.RequestOp{putOp("s", "x")},
		Failure: []*pb.RequestOp{putOp("f", "y")},
	})
	if err != nil || resp.Succeeded || resp.Header.Revision != 5 || kvString(h.get("f", 0)) != "f=y c5 m5 v1 l0" {
		t.Errorf("failure branch: %v %v, f = %s", resp, err, kvString(h.get("f", 0)))
	}
}

func TestTxnRejectsAsAWhole(t *testing.T) {
	h := newHarness(t)
	h.put("a", "1") // 2
	cases := []struct {
		name string
		req  *pb.TxnRequest
		want error
	}{
		{"two puts of one key", &pb.TxnRequest{Success: []*pb.RequestOp{putOp("x", "1"), putOp("x", "2")}}, ErrDuplicateKey},
		{"put inside a deleted range", &pb.TxnRequest{Success: []*pb.RequestOp{delOp("w", "y"), putOp("x", "1")}}, ErrDuplicateKey},
		{"put and delete of one key", &pb.TxnRequest{Failure: []*pb.RequestOp{putOp("x", "1"), delOp("x", "")}}, ErrDuplicateKey},
		{"nested put of an outer put", &pb.TxnRequest{Success: []*pb.RequestOp{putOp("x", "1"), txnOp(&pb.TxnRequest{Success: []*pb.RequestOp{putOp("x", "2")}})}}, ErrDuplicateKey},
		{"nested put under outer delete", &pb.TxnRequest{Success: []*pb.RequestOp{delOp("x", ""), txnOp(&pb.TxnRequest{Failure: []*pb.RequestOp{putOp("x", "2")}})}}, ErrDuplicateKey},
		{"ignore_value on missing key", &pb.TxnRequest{Success: []*pb.RequestOp{putOp("y", "1"), {Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("missing"), IgnoreValue: true}}}}}, ErrKeyNotFound},
		{"range at a future revision", &pb.TxnRequest{Success: []*pb.RequestOp{putOp("y", "1"), {Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("a"), Revision: 3}}}}}, ErrFutureRev},
		{"empty op", &pb.TxnRequest{Success: []*pb.RequestOp{putOp("y", "1"), {}}}, ErrKeyNotFound},
		{"compare without key", &pb.TxnRequest{Compare: []*pb.Compare{{Target: pb.Compare_VERSION}}}, ErrEmptyKey},
		// CheckTxn accepts this like etcd (a from-key delete conflicts with nothing),
		// but the put would find its key deleted; etcd 3.7.3 crashes here.
		{"ignore_value after a from-key delete of the key", &pb.TxnRequest{Success: []*pb.RequestOp{
			delOp("a", "\x00"),
			txnOp(&pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("a"), IgnoreValue: true}}}}}),
		}}, ErrKeyNotFound},
	}
	for _, c := range cases {
		_, err := h.s.Txn(h.idx(), c.req)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
		if h.s.Rev() != 2 || h.get("y", 0) != nil || h.get("x", 0) != nil || h.get("a", 0) == nil {
			t.Fatalf("%s: a rejected txn changed the store (rev %d)", c.name, h.s.Rev())
		}
	}

	// Accepted by etcd: then/else of one nested txn may put the same key, deletes
	// may overlap, and a "from key" delete (range_end \x00) conflicts with nothing.
	ok := []*pb.TxnRequest{
		{Success: []*pb.RequestOp{txnOp(&pb.TxnRequest{Success: []*pb.RequestOp{putOp("x", "1")}, Failure: []*pb.RequestOp{putOp("x", "2")}})}},
		{Success: []*pb.RequestOp{delOp("a", "c"), delOp("b", "d")}},
		{Success: []*pb.RequestOp{delOp("a", "\x00"), putOp("b", "1")}},
		{Success: []*pb.RequestOp{putOp("x", "1")}, Failure: []*pb.RequestOp{putOp("x", "1")}},
	}
	for i, r := range ok {
		if _, err := h.s.Txn(h.idx(), r); err != nil {
			t.Errorf("accepted txn %d: %v", i, err)
		}
	}
}

func TestCheckTxnMaxOps(t *testing.T) {
	ops := func(n int) []*pb.RequestOp {
		var out []*pb.RequestOp
		for i := range n {
			out = append(out, putOp(fmt.Sprint("k", i), "v"))
		}
		return out
	}
	cases := []struct {
		name string
		req  *pb.TxnRequest
		max  int
		want error
	}{
		{"at the limit", &pb.TxnRequest{Success: ops(3)}, 3, nil},
		{"over the limit", &pb.TxnRequest{Failure: ops(4)}, 3, ErrTooManyOps},
		{"no limit", &pb.TxnRequest{Success: ops(300)}, 0, nil},
		{"nested within the budget left", &pb.TxnRequest{Success: []*pb.RequestOp{txnOp(&pb.TxnRequest{Success: ops(2)})}}, 3, nil},
		{"nested over the budget left", &pb.TxnRequest{Success: []*pb.RequestOp{putOp("a", "1"), txnOp(&pb.TxnRequest{Success: ops(2)})}}, 3, ErrTooManyOps},
	}
	for _, c := range cases {
		if err := CheckTxn(c.req, c.max); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func TestReadOnlyTxnDoesNotWrite(t *testing.T) {
	h := newHarness(t)
	h.put("a", "1")
	before := h.s.ConsistentIndex()
	resp, err := h.s.Txn(Index{}, &pb.TxnRequest{Success: []*pb.RequestOp{rangeOp("a", "")}})
	if err != nil || len(resp.Responses) != 1 || resp.Header.Revision != 2 {
		t.Fatalf("read-only txn = %v, %v", resp, err)
	}
	if h.s.ConsistentIndex() != before || h.s.Rev() != 2 {
		t.Error("read-only txn touched the consistent index or revision")
	}
	if !TxnReadOnly(&pb.TxnRequest{Success: []*pb.RequestOp{rangeOp("a", "")}}) ||
		TxnReadOnly(&pb.TxnRequest{Failure: []*pb.RequestOp{putOp("a", "")}}) ||
		TxnReadOnly(&pb.TxnRequest{Success: []*pb.RequestOp{txnOp(&pb.TxnRequest{})}}) {
		t.Error("TxnReadOnly misclassifies")
	}
}

func TestToGRPCError(t *testing.T) {
	for _, m := range grpcErrors {
		wrapped := fmt.Errorf("context: %w", m.err)
		if got := ToGRPCError(wrapped); got != m.grpc {
			t.Errorf("%v -> %v, want %v", m.err, got, m.grpc)
		}
		// The gRPC message is etcd's text for the same error (ErrCorrupt has no etcd twin).
		if m.err != ErrCorrupt && !strings.HasSuffix(m.grpc.Error(), m.err.Error()) {
			t.Errorf("%q does not end with %q", m.grpc.Error(), m.err.Error())
		}
	}
	other := errors.New("other")
	if ToGRPCError(other) != other || ToGRPCError(nil) != nil {
		t.Error("unknown errors must pass through")
	}
}

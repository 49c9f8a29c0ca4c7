package mvcc

import (
	"bytes"
	"cmp"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// TxnReadOnly tells whether every op of both branches is a Range (etcd's
// IsTxnReadonly). Such a txn can be served without raft, like a Range.
func TxnReadOnly(r *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{r.GetSuccess(), r.GetFailure()} {
		for _, op := range ops {
			if op.GetRequestRange() == nil {
				return false
			}
		}
	}
	return true
}

// nestedTxn returns the txn of a nested-txn op, treating a nil one as empty, or
// nil if op is not a nested txn.
func nestedTxn(op *pb.RequestOp) *pb.TxnRequest {
	v, ok := op.GetRequest().(*pb.RequestOp_RequestTxn)
	if !ok {
		return nil
	}
	if v.RequestTxn == nil {
		return &pb.TxnRequest{}
	}
	return v.RequestTxn
}

func branch(r *pb.TxnRequest, succeeded bool) []*pb.RequestOp {
	if succeeded {
		return r.GetSuccess()
	}
	return r.GetFailure()
}

// executeTxn runs a validated txn the way etcd does: every compare, nested ones
// included, is evaluated first against the state before the txn (the "path"),
// then the chosen ops are checked (historic ranges, ignore_* puts) so the txn
// fails as a whole before writing anything, then the ops run in order.
func (t *txnCtx) executeTxn(r *pb.TxnRequest) (*pb.TxnResponse, error) {
	path := t.compareToPath(r)
	var deleted []keyInterval
	if _, err := t.checkTxn(r, path, &deleted); err != nil {
		return nil, err
	}
	resp, _ := newTxnResp(r, path)
	if _, err := t.runTxn(r, path, resp); err != nil {
		return nil, err
	}
	resp.Header.Revision = t.rev()
	return resp, nil
}

func (t *txnCtx) compareToPath(r *pb.TxnRequest) []bool {
	ok := true
	for _, c := range r.GetCompare() {
		if !t.applyCompare(c) {
			ok = false
			break
		}
	}
	path := []bool{ok}
	for _, op := range branch(r, ok) {
		if n := nestedTxn(op); n != nil {
			path = append(path, t.compareToPath(n)...)
		}
	}
	return path
}

func (t *txnCtx) applyCompare(c *pb.Compare) bool {
	// Revisions and versions come from the index alone; value and lease need the values.
	keysOnly := c.Target != pb.Compare_VALUE && c.Target != pb.Compare_LEASE
	rr, err := t.rangeKeys(c.Key, gteRange(c.RangeEnd), rangeOpts{keysOnly: keysOnly})
	if err != nil {
		return false
	}
	if len(rr.kvs) == 0 {
		// A missing key has no value to compare, not even an empty one.
		if c.Target == pb.Compare_VALUE {
			return false
		}
		return compareKV(c, &mvccpb.KeyValue{})
	}
	for _, kv := range rr.kvs {
		if !compareKV(c, kv) {
			return false
		}
	}
	return true
}

func compareKV(c *pb.Compare, kv *mvccpb.KeyValue) bool {
	var res int
	switch c.Target {
	case pb.Compare_VALUE:
		res = bytes.Compare(kv.Value, c.GetValue())
	case pb.Compare_CREATE:
		res = cmp.Compare(kv.CreateRevision, c.GetCreateRevision())
	case pb.Compare_MOD:
		res = cmp.Compare(kv.ModRevision, c.GetModRevision())
	case pb.Compare_VERSION:
		res = cmp.Compare(kv.Version, c.GetVersion())
	case pb.Compare_LEASE:
		res = cmp.Compare(kv.Lease, c.GetLease())
	}
	switch c.Result {
	case pb.Compare_EQUAL:
		return res == 0
	case pb.Compare_NOT_EQUAL:
		return res != 0
	case pb.Compare_GREATER:
		return res > 0
	case pb.Compare_LESS:
		return res < 0
	}
	return true // an unknown result is true in etcd too
}

// checkTxn returns how many nested txns the chosen branch holds (to advance path).
// deleted collects, in execution order, the ranges deleted by the ops before.
func (t *txnCtx) checkTxn(r *pb.TxnRequest, path []bool, deleted *[]keyInterval) (int, error) {
	nested := 0
	for _, op := range branch(r, path[0]) {
		var err error
		switch v := op.GetRequest().(type) {
		case *pb.RequestOp_RequestRange:
			err = t.checkRange(v.RequestRange)
		case *pb.RequestOp_RequestPut:
			p := v.RequestPut
			err = t.checkLease(p)
			if err == nil && (p.IgnoreValue || p.IgnoreLease) {
				_, err = t.prevForPut(p)
				// A "from key" delete earlier in the txn can remove the key before
				// the put runs (CheckTxn lets it through, as etcd does). etcd then
				// crashes; reject the whole txn before it writes anything instead.
				if err == nil && anyContainsOpen(*deleted, string(p.Key)) {
					err = ErrKeyNotFound
				}
			}
		case *pb.RequestOp_RequestDeleteRange:
			d := v.RequestDeleteRange
			*deleted = append(*deleted, deleteInterval(d.Key, d.RangeEnd))
		case *pb.RequestOp_RequestTxn:
			var n int
			n, err = t.checkTxn(nestedTxn(op), path[1:], deleted)
			nested += n + 1
			path = path[n+1:]
		}
		if err != nil {
			return 0, err
		}
	}
	return nested, nil
}

// deleteInterval is the key range a delete removes; an empty end is unbounded.
func deleteInterval(key, end []byte) keyInterval {
	switch {
	case len(end) == 0:
		return pointInterval(string(key))
	case len(end) == 1 && end[0] == 0:
		return keyInterval{string(key), ""}
	}
	return keyInterval{string(key), string(end)}
}

func anyContainsOpen(ivs []keyInterval, k string) bool {
	for _, iv := range ivs {
		if iv.begin <= k && (iv.end == "" || k < iv.end) {
			return true
		}
	}
	return false
}

func (t *txnCtx) checkRange(r *pb.RangeRequest) error {
	switch {
	case r.Revision == 0:
		return nil
	case r.Revision > t.rev():
		return ErrFutureRev
	case r.Revision < t.s.compactRev:
		return ErrCompacted
	}
	return nil
}

// newTxnResp builds the response skeleton for the chosen branches. Nested txn
// responses keep an empty header, as in etcd.
func newTxnResp(r *pb.TxnRequest, path []bool) (*pb.TxnResponse, int) {
	ops := branch(r, path[0])
	resp := &pb.TxnResponse{
		Header:    &pb.ResponseHeader{},
		Succeeded: path[0],
		Responses: make([]*pb.ResponseOp, len(ops)),
	}
	nested := 0
	for i, op := range ops {
		ro := &pb.ResponseOp{}
		if n := nestedTxn(op); n != nil {
			sub, c := newTxnResp(n, path[1:])
			ro.Response = &pb.ResponseOp_ResponseTxn{ResponseTxn: sub}
			path = path[c+1:]
			nested += c + 1
		}
		resp.Responses[i] = ro
	}
	return resp, nested
}

func (t *txnCtx) runTxn(r *pb.TxnRequest, path []bool, resp *pb.TxnResponse) (int, error) {
	nested := 0
	for i, op := range branch(r, path[0]) {
		ro := resp.Responses[i]
		switch v := op.GetRequest().(type) {
		case *pb.RequestOp_RequestRange:
			rr, err := t.executeRange(v.RequestRange)
			if err != nil {
				return 0, err
			}
			ro.Response = &pb.ResponseOp_ResponseRange{ResponseRange: rr}
		case *pb.RequestOp_RequestPut:
			pr, err := t.executePut(v.RequestPut)
			if err != nil {
				return 0, err
			}
			ro.Response = &pb.ResponseOp_ResponsePut{ResponsePut: pr}
		case *pb.RequestOp_RequestDeleteRange:
			dr, err := t.executeDeleteRange(v.RequestDeleteRange)
			if err != nil {
				return 0, err
			}
			ro.Response = &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: dr}
		case *pb.RequestOp_RequestTxn:
			n, err := t.runTxn(nestedTxn(op), path[1:], ro.GetResponseTxn())
			if err != nil {
				return 0, err
			}
			nested += n + 1
			path = path[n+1:]
		}
	}
	return nested, nil
}

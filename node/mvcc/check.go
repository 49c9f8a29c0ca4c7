package mvcc

import (
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// The Check functions are etcd's request validation (v3rpc/key.go). The store runs
// them again before applying, so every member rejects the same entries; the gRPC
// layer should call them before proposing, to fail fast.

// CheckRange validates a RangeRequest.
func CheckRange(r *pb.RangeRequest) error {
	if len(r.GetKey()) == 0 {
		return ErrEmptyKey
	}
	if _, ok := pb.RangeRequest_SortOrder_name[int32(r.GetSortOrder())]; !ok {
		return ErrInvalidSortOption
	}
	if _, ok := pb.RangeRequest_SortTarget_name[int32(r.GetSortTarget())]; !ok {
		return ErrInvalidSortOption
	}
	return nil
}

// CheckPut validates a PutRequest.
func CheckPut(r *pb.PutRequest) error {
	switch {
	case len(r.GetKey()) == 0:
		return ErrEmptyKey
	case r.GetIgnoreValue() && len(r.GetValue()) != 0:
		return ErrValueProvided
	case r.GetIgnoreLease() && r.GetLease() != 0:
		return ErrLeaseProvided
	}
	return nil
}

// CheckDeleteRange validates a DeleteRangeRequest.
func CheckDeleteRange(r *pb.DeleteRangeRequest) error {
	if len(r.GetKey()) == 0 {
		return ErrEmptyKey
	}
	return nil
}

// CheckTxn validates a TxnRequest: every op, at most maxTxnOps compares or ops per
// branch (0 = no limit; etcd's --max-txn-ops defaults to 128), and no key written
// twice by the ops that can run together (ErrDuplicateKey).
func CheckTxn(r *pb.TxnRequest, maxTxnOps int) error {
	limit := maxTxnOps
	if limit <= 0 {
		limit = -1
	}
	if err := checkTxnOps(r, limit); err != nil {
		return err
	}
	if _, _, err := checkIntervals(r.GetSuccess()); err != nil {
		return err
	}
	_, _, err := checkIntervals(r.GetFailure())
	return err
}

// checkTxnOps checks one txn level; limit < 0 means no limit.
func checkTxnOps(r *pb.TxnRequest, limit int) error {
	opc := max(len(r.GetCompare()), len(r.GetSuccess()), len(r.GetFailure()))
	if limit >= 0 && opc > limit {
		return ErrTooManyOps
	}
	for _, c := range r.GetCompare() {
		if len(c.GetKey()) == 0 {
			return ErrEmptyKey
		}
	}
	// Like etcd, a nested txn gets what this level left of the budget.
	nested := -1
	if limit >= 0 {
		nested = limit - opc
	}
	for _, ops := range [][]*pb.RequestOp{r.GetSuccess(), r.GetFailure()} {
		for _, op := range ops {
			if err := checkRequestOp(op, nested); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkRequestOp(op *pb.RequestOp, limit int) error {
	switch v := op.GetRequest().(type) {
	case *pb.RequestOp_RequestRange:
		return CheckRange(v.RequestRange)
	case *pb.RequestOp_RequestPut:
		return CheckPut(v.RequestPut)
	case *pb.RequestOp_RequestDeleteRange:
		return CheckDeleteRange(v.RequestDeleteRange)
	case *pb.RequestOp_RequestTxn:
		return checkTxnOps(v.RequestTxn, limit)
	default:
		// etcd answers an empty op with "key not found".
		return fmt.Errorf("%w: empty request op", ErrKeyNotFound)
	}
}

// keyInterval is [begin, end) compared as plain strings, like etcd's affine
// intervals with a non-empty end. A delete with range_end "\x00" therefore
// conflicts with nothing here, exactly as in etcd.
type keyInterval struct{ begin, end string }

func (iv keyInterval) contains(k string) bool { return iv.begin <= k && k < iv.end }

func pointInterval(k string) keyInterval { return keyInterval{k, k + "\x00"} }

func anyContains(ivs []keyInterval, k string) bool {
	for _, iv := range ivs {
		if iv.contains(k) {
			return true
		}
	}
	return false
}

// checkIntervals finds a key put twice, or put and deleted, by ops that can run in
// the same execution (then/else branches of a nested txn exclude each other). It
// returns the puts and deletes of reqs for the enclosing level.
func checkIntervals(reqs []*pb.RequestOp) (map[string]struct{}, []keyInterval, error) {
	var dels []keyInterval
	for _, op := range reqs {
		d := op.GetRequestDeleteRange()
		if d == nil {
			continue
		}
		if len(d.GetRangeEnd()) != 0 {
			dels = append(dels, keyInterval{string(d.GetKey()), string(d.GetRangeEnd())})
		} else {
			dels = append(dels, pointInterval(string(d.GetKey())))
		}
	}

	puts := make(map[string]struct{})
	for _, op := range reqs {
		txn := op.GetRequestTxn()
		if txn == nil {
			continue
		}
		putsThen, delsThen, err := checkIntervals(txn.GetSuccess())
		if err != nil {
			return nil, nil, err
		}
		putsElse, delsElse, err := checkIntervals(txn.GetFailure())
		if err != nil {
			return nil, nil, err
		}
		for k := range putsThen {
			if _, dup := puts[k]; dup || anyContains(dels, k) {
				return nil, nil, ErrDuplicateKey
			}
			puts[k] = struct{}{}
		}
		for k := range putsElse {
			if _, dup := puts[k]; dup {
				if _, sameBranchPair := putsThen[k]; !sameBranchPair {
					return nil, nil, ErrDuplicateKey
				}
			}
			if anyContains(dels, k) {
				return nil, nil, ErrDuplicateKey
			}
			puts[k] = struct{}{}
		}
		dels = append(dels, delsThen...)
		dels = append(dels, delsElse...)
	}

	for _, op := range reqs {
		p := op.GetRequestPut()
		if p == nil {
			continue
		}
		k := string(p.GetKey())
		if _, dup := puts[k]; dup || anyContains(dels, k) {
			return nil, nil, ErrDuplicateKey
		}
		puts[k] = struct{}{}
	}
	return puts, dels, nil
}

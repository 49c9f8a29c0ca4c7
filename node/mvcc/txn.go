package mvcc

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"slices"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"

	"etcdctl-wizard/node/backend"
)

// getter reads values: a backend.ReadTx for readers, the batch WriteTx for the writer.
type getter interface {
	Get(bucket, key []byte) []byte
}

// txnCtx is one store transaction, read-only (tx == nil) or the writer's. The
// caller holds Store.mu (shared for reads, exclusive for writes). Its methods
// follow etcd's storeTxnRead/storeTxnWrite and etcdserver/txn.
type txnCtx struct {
	s          *Store
	g          getter
	tx         *backend.WriteTx
	beginRev   int64
	changes    int64
	wantEvents bool
	events     []*mvccpb.Event
	// attached lists, in order, the lease of every key put or deleted (0),
	// for Store.Leases once the write is done.
	attached []attachment
	// afterUnlock runs once Store.mu is released, still inside the batch (compaction
	// cleans the backend there).
	afterUnlock func() error
}

// rev is the revision this transaction reads at: its own writes are visible at
// beginRev+1 as soon as it has made one.
func (t *txnCtx) rev() int64 {
	if t.changes > 0 {
		return t.beginRev + 1
	}
	return t.beginRev
}

func (t *txnCtx) readKV(r revision) (*mvccpb.KeyValue, error) {
	v := t.g.Get(keyBucket, revToBytes(r, false))
	if v == nil {
		return nil, fmt.Errorf("%w: revision %d_%d is indexed but not stored", ErrCorrupt, r.main, r.sub)
	}
	kv := &mvccpb.KeyValue{}
	if err := proto.Unmarshal(v, kv); err != nil {
		return nil, fmt.Errorf("%w: value of revision %d_%d: %v", ErrCorrupt, r.main, r.sub, err)
	}
	return kv, nil
}

type rangeOpts struct {
	limit     int64
	rev       int64
	countOnly bool
	// keysOnly answers from the index alone (etcd 3.7's FastKeysOnly): no value, no lease.
	keysOnly bool
}

type rangeResult struct {
	kvs   []*mvccpb.KeyValue
	count int64 // all matching keys, even beyond limit
	rev   int64
}

// gteRange turns a request range_end into the index's convention: nil = the key
// alone, empty = every key >= key ("\x00" on the wire), else [key, end).
func gteRange(end []byte) []byte {
	switch {
	case len(end) == 0:
		return nil
	case len(end) == 1 && end[0] == 0:
		return []byte{}
	}
	return end
}

func (t *txnCtx) rangeKeys(key, end []byte, ro rangeOpts) (*rangeResult, error) {
	curRev := t.rev()
	rev := ro.rev
	if rev > curRev {
		return nil, ErrFutureRev
	}
	if rev <= 0 {
		rev = curRev
	}
	if rev < t.s.compactRev {
		return nil, ErrCompacted
	}
	res := &rangeResult{rev: curRev}
	var err error
	t.s.index.visit(key, end, func(ki *keyIndex) bool {
		mod, created, ver, ok := ki.get(rev)
		if !ok {
			return true
		}
		res.count++
		if ro.countOnly || (ro.limit > 0 && int64(len(res.kvs)) >= ro.limit) {
			return true // keep counting
		}
		if ro.keysOnly {
			res.kvs = append(res.kvs, &mvccpb.KeyValue{Key: ki.key, ModRevision: mod.main, CreateRevision: created.main, Version: ver})
			return true
		}
		var kv *mvccpb.KeyValue
		if kv, err = t.readKV(mod); err != nil {
			return false
		}
		res.kvs = append(res.kvs, kv)
		return true
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

func defaultOrdering(target pb.RangeRequest_SortTarget, order pb.RangeRequest_SortOrder) bool {
	return order == pb.RangeRequest_NONE || (target == pb.RangeRequest_KEY && order == pb.RangeRequest_ASCEND)
}

func hasRevisionFilters(r *pb.RangeRequest) bool {
	return r.MinModRevision != 0 || r.MaxModRevision != 0 || r.MinCreateRevision != 0 || r.MaxCreateRevision != 0
}

// executeRange is etcd's executeRange: fetch (one more than limit, to know about
// "more"; everything when sorting or filtering), filter, sort, truncate. Count is
// the number of keys in the range before filters, as in etcd.
func (t *txnCtx) executeRange(r *pb.RangeRequest) (*pb.RangeResponse, error) {
	limit := r.Limit
	if !defaultOrdering(r.SortTarget, r.SortOrder) || hasRevisionFilters(r) {
		limit = 0
	}
	if limit > 0 && limit < math.MaxInt64 {
		limit++
	}
	rr, err := t.rangeKeys(r.Key, gteRange(r.RangeEnd), rangeOpts{
		limit:     limit,
		rev:       r.Revision,
		countOnly: r.CountOnly,
		keysOnly:  r.KeysOnly && r.SortTarget != pb.RangeRequest_VALUE,
	})
	if err != nil {
		return nil, err
	}
	kvs := slices.DeleteFunc(rr.kvs, func(kv *mvccpb.KeyValue) bool {
		return (r.MaxModRevision != 0 && kv.ModRevision > r.MaxModRevision) ||
			(r.MinModRevision != 0 && kv.ModRevision < r.MinModRevision) ||
			(r.MaxCreateRevision != 0 && kv.CreateRevision > r.MaxCreateRevision) ||
			(r.MinCreateRevision != 0 && kv.CreateRevision < r.MinCreateRevision)
	})
	sortKVs(kvs, r.SortTarget, r.SortOrder)
	resp := &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: rr.rev}, Count: rr.count}
	if r.Limit > 0 && int64(len(kvs)) > r.Limit {
		kvs, resp.More = kvs[:r.Limit], true
	}
	if r.KeysOnly {
		for _, kv := range kvs {
			kv.Value = nil
		}
	}
	resp.Kvs = kvs
	return resp, nil
}

// sortKVs sorts as etcd does: a non-key target without an order means ascending.
// Ties keep key order (the stable sort starts from key order).
func sortKVs(kvs []*mvccpb.KeyValue, target pb.RangeRequest_SortTarget, order pb.RangeRequest_SortOrder) {
	if target != pb.RangeRequest_KEY && order == pb.RangeRequest_NONE {
		order = pb.RangeRequest_ASCEND
	}
	if defaultOrdering(target, order) {
		return
	}
	var by func(a, b *mvccpb.KeyValue) int
	switch target {
	case pb.RangeRequest_KEY:
		by = func(a, b *mvccpb.KeyValue) int { return bytes.Compare(a.Key, b.Key) }
	case pb.RangeRequest_VERSION:
		by = func(a, b *mvccpb.KeyValue) int { return cmp.Compare(a.Version, b.Version) }
	case pb.RangeRequest_CREATE:
		by = func(a, b *mvccpb.KeyValue) int { return cmp.Compare(a.CreateRevision, b.CreateRevision) }
	case pb.RangeRequest_MOD:
		by = func(a, b *mvccpb.KeyValue) int { return cmp.Compare(a.ModRevision, b.ModRevision) }
	case pb.RangeRequest_VALUE:
		by = func(a, b *mvccpb.KeyValue) int { return bytes.Compare(a.Value, b.Value) }
	default:
		return // rejected by CheckRange
	}
	if order == pb.RangeRequest_DESCEND {
		asc := by
		by = func(a, b *mvccpb.KeyValue) int { return asc(b, a) }
	}
	slices.SortStableFunc(kvs, by)
}

// put writes key at beginRev+1 and returns that revision. prev, when known, is the
// key's current value (saves a read for the event).
func (t *txnCtx) put(key, value []byte, lease int64, prev *mvccpb.KeyValue) (int64, error) {
	rev := t.beginRev + 1
	created, ver := rev, int64(0)
	ki := t.s.index.get(key)
	if ki != nil {
		if mod, c, v, ok := ki.get(rev); ok {
			created, ver = c.main, v
			if t.wantEvents && prev == nil {
				var err error
				if prev, err = t.readKV(mod); err != nil {
					return 0, err
				}
			}
		}
	}
	ir := revision{main: rev, sub: t.changes}
	kv := &mvccpb.KeyValue{Key: key, Value: value, CreateRevision: created, ModRevision: rev, Version: ver + 1, Lease: lease}
	data, err := proto.Marshal(kv)
	if err != nil {
		return 0, fmt.Errorf("mvcc: marshal %q: %w", key, err)
	}
	if err := t.tx.PutSeq(keyBucket, revToBytes(ir, false), data); err != nil {
		return 0, err
	}
	if ki == nil {
		ki = &keyIndex{key: bytes.Clone(key)}
		t.s.index.insert(ki)
	}
	ki.put(ir)
	t.changes++
	t.attach(ki.key, lease)
	if t.wantEvents {
		t.events = append(t.events, &mvccpb.Event{Type: mvccpb.Event_PUT, Kv: kv, PrevKv: prev})
	}
	return rev, nil
}

// deleteRange tombstones every key of the range alive now and returns how many.
func (t *txnCtx) deleteRange(key, end []byte) (int64, error) {
	at := t.rev()
	var live []*keyIndex
	var mods []revision
	t.s.index.visit(key, end, func(ki *keyIndex) bool {
		if mod, _, _, ok := ki.get(at); ok {
			live = append(live, ki)
			mods = append(mods, mod)
		}
		return true
	})
	for i, ki := range live {
		var prev *mvccpb.KeyValue
		if t.wantEvents {
			var err error
			if prev, err = t.readKV(mods[i]); err != nil {
				return 0, err
			}
		}
		ir := revision{main: t.beginRev + 1, sub: t.changes}
		data, err := proto.Marshal(&mvccpb.KeyValue{Key: ki.key})
		if err != nil {
			return 0, fmt.Errorf("mvcc: marshal %q: %w", ki.key, err)
		}
		if err := t.tx.PutSeq(keyBucket, revToBytes(ir, true), data); err != nil {
			return 0, err
		}
		ki.tombstone(ir)
		t.changes++
		t.attach(ki.key, 0)
		if t.wantEvents {
			t.events = append(t.events, &mvccpb.Event{
				Type:   mvccpb.Event_DELETE,
				Kv:     &mvccpb.KeyValue{Key: ki.key, ModRevision: ir.main},
				PrevKv: prev,
			})
		}
	}
	return int64(len(live)), nil
}

// prevForPut reads the key's current value when the request needs it, and enforces
// that ignore_value/ignore_lease only apply to an existing key.
func (t *txnCtx) prevForPut(p *pb.PutRequest) (*mvccpb.KeyValue, error) {
	if !p.IgnoreValue && !p.IgnoreLease && !p.PrevKv {
		return nil, nil
	}
	rr, err := t.rangeKeys(p.Key, nil, rangeOpts{})
	if err != nil {
		return nil, err
	}
	if len(rr.kvs) == 0 {
		if p.IgnoreValue || p.IgnoreLease {
			return nil, ErrKeyNotFound
		}
		return nil, nil
	}
	return rr.kvs[0], nil
}

func (t *txnCtx) executePut(p *pb.PutRequest) (*pb.PutResponse, error) {
	prev, err := t.prevForPut(p)
	if err != nil {
		return nil, err
	}
	val, lease := p.Value, p.Lease
	if p.IgnoreValue {
		val = prev.Value
	}
	if p.IgnoreLease {
		lease = prev.Lease
	}
	resp := &pb.PutResponse{Header: &pb.ResponseHeader{}}
	if p.PrevKv {
		resp.PrevKv = prev
	}
	if resp.Header.Revision, err = t.put(p.Key, val, lease, prev); err != nil {
		return nil, err
	}
	return resp, nil
}

func (t *txnCtx) executeDeleteRange(d *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	end := gteRange(d.RangeEnd)
	resp := &pb.DeleteRangeResponse{Header: &pb.ResponseHeader{}}
	if d.PrevKv {
		rr, err := t.rangeKeys(d.Key, end, rangeOpts{})
		if err != nil {
			return nil, err
		}
		resp.PrevKvs = rr.kvs
	}
	n, err := t.deleteRange(d.Key, end)
	if err != nil {
		return nil, err
	}
	resp.Deleted = n
	// etcd: the revision of this txn if anything in it changed, else the current one.
	resp.Header.Revision = t.rev()
	return resp, nil
}

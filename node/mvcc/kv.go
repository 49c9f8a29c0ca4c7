package mvcc

import (
	"bytes"
	"errors"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"etcdctl-wizard/node/backend"
)

// Range serves a read at the current revision (or a historic one). It sees every
// write applied before it started.
func (s *Store) Range(r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if err := CheckRange(r); err != nil {
		return nil, err
	}
	var resp *pb.RangeResponse
	err := s.read(func(t *txnCtx) (err error) {
		resp, err = t.executeRange(r)
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// Put applies a put from raft entry idx.
func (s *Store) Put(idx Index, r *pb.PutRequest) (*pb.PutResponse, error) {
	var resp *pb.PutResponse
	applied, err := s.write(idx, func(t *txnCtx) (err error) {
		if err = CheckPut(r); err != nil {
			return err
		}
		if err = t.checkLease(r); err != nil {
			return err
		}
		resp, err = t.executePut(r)
		return err
	})
	switch {
	case err != nil:
		return nil, err
	case !applied:
		return &pb.PutResponse{Header: s.header()}, nil
	}
	return resp, nil
}

// DeleteRange applies a delete from raft entry idx. Deleting nothing does not
// change the revision.
func (s *Store) DeleteRange(idx Index, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	var resp *pb.DeleteRangeResponse
	applied, err := s.write(idx, func(t *txnCtx) (err error) {
		if err = CheckDeleteRange(r); err != nil {
			return err
		}
		resp, err = t.executeDeleteRange(r)
		return err
	})
	switch {
	case err != nil:
		return nil, err
	case !applied:
		return &pb.DeleteRangeResponse{Header: s.header()}, nil
	}
	return resp, nil
}

// Txn applies a transaction from raft entry idx: all its writes get one revision
// (sub revisions 0, 1, ...), none if it changes nothing. With idx.Index == 0 a
// read-only txn (TxnReadOnly) is served like a Range, without taking the writer's
// path. The size limit (--max-txn-ops) is the gRPC layer's: call CheckTxn there.
func (s *Store) Txn(idx Index, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if idx.Index == 0 && TxnReadOnly(r) {
		if err := CheckTxn(r, 0); err != nil {
			return nil, err
		}
		var resp *pb.TxnResponse
		err := s.read(func(t *txnCtx) (err error) {
			resp, err = t.executeTxn(r)
			return err
		})
		if err != nil {
			return nil, err
		}
		return resp, nil
	}
	var resp *pb.TxnResponse
	applied, err := s.write(idx, func(t *txnCtx) (err error) {
		if err = CheckTxn(r, 0); err != nil {
			return err
		}
		resp, err = t.executeTxn(r)
		return err
	})
	switch {
	case err != nil:
		return nil, err
	case !applied:
		return &pb.TxnResponse{Header: s.header()}, nil
	}
	return resp, nil
}

// Compact discards revisions older than rev, keeping each key's value as of rev,
// so reads at rev and later still work and reads before rev get ErrCompacted. It
// is physical at once (one batch): the backend no longer holds the old revisions.
func (s *Store) Compact(idx Index, rev int64) (*pb.CompactionResponse, error) {
	_, err := s.write(idx, func(t *txnCtx) error {
		if rev <= s.compactRev {
			return ErrCompacted
		}
		if rev > s.currentRev.Load() {
			return ErrFutureRev
		}
		if err := t.tx.Put(backend.MetaBucket, scheduledCompactRevKey, revToBytes(revision{main: rev}, false)); err != nil {
			return err
		}
		keep := s.index.compact(rev)
		s.compactRev = rev
		// Readers only look up revisions through the index, which no longer lists
		// the discarded ones: the backend can be cleaned without blocking them.
		t.afterUnlock = func() error { return s.compactBackend(t.tx, rev, keep) }
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &pb.CompactionResponse{Header: s.header()}, nil
}

// compactBackend deletes the revisions at or below rev that the index dropped.
func (s *Store) compactBackend(tx *backend.WriteTx, rev int64, keep map[revision]struct{}) error {
	var drop [][]byte
	err := tx.Scan(keyBucket, nil, revToBytes(revision{main: rev + 1}, false), func(k, _ []byte) error {
		r, _, err := bytesToRev(k)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		if _, ok := keep[r]; !ok {
			drop = append(drop, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range drop {
		if err := tx.Delete(keyBucket, k); err != nil {
			return err
		}
	}
	return tx.Put(backend.MetaBucket, finishedCompactRevKey, revToBytes(revision{main: rev}, false))
}

// compactLocked finishes an interrupted compaction during New (nothing else runs).
func (s *Store) compactLocked(tx *backend.WriteTx, rev int64) error {
	keep := s.index.compact(rev)
	s.compactRev = rev
	return s.compactBackend(tx, rev, keep)
}

func (s *Store) header() *pb.ResponseHeader {
	return &pb.ResponseHeader{Revision: s.currentRev.Load()}
}

func (s *Store) read(fn func(t *txnCtx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.b.View(func(rt *backend.ReadTx) error {
		return fn(&txnCtx{s: s, g: rt, beginRev: s.currentRev.Load()})
	})
}

// requestErrors are answers to a request, not failures of the store.
var requestErrors = []error{
	ErrCompacted, ErrFutureRev, ErrKeyNotFound, ErrEmptyKey, ErrValueProvided,
	ErrLeaseProvided, ErrTooManyOps, ErrDuplicateKey, ErrInvalidSortOption, ErrLeaseNotFound,
}

func isRequestError(err error) bool {
	for _, e := range requestErrors {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// write runs fn as the write transaction of raft entry idx and records idx as
// applied in the same batch, whatever fn's answer: a rejected request is applied
// too. It reports applied=false when idx was applied before (WAL replay).
func (s *Store) write(idx Index, fn func(t *txnCtx) error) (applied bool, err error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.failed != nil {
		return false, s.failed
	}
	var events []*mvccpb.Event
	var attached []attachment
	err = s.b.Update(func(tx *backend.WriteTx) error {
		if ci, _ := tx.ConsistentIndex(); idx.Index != 0 && idx.Index <= ci {
			return nil
		}
		applied = true
		t := &txnCtx{s: s, g: tx, tx: tx, wantEvents: s.OnWrite != nil}
		s.mu.Lock()
		t.beginRev = s.currentRev.Load()
		ferr := fn(t)
		if t.changes > 0 {
			s.currentRev.Store(t.beginRev + 1)
		}
		s.mu.Unlock()
		if ferr == nil && t.afterUnlock != nil {
			ferr = t.afterUnlock()
		}
		events, attached = t.events, t.attached
		if idx.Index != 0 {
			if cerr := tx.SetConsistentIndex(idx.Index, idx.Term); cerr != nil {
				return cerr
			}
		}
		return ferr
	})
	if err != nil && !isRequestError(err) {
		// A write failed half way (or the batch could not be committed): memory and
		// disk may now differ from the other members. Refuse further writes; the
		// member must restart and replay its WAL.
		s.failed = fmt.Errorf("mvcc: store stopped by a failed write: %w", err)
		return applied, err
	}
	// The attachments mirror what the index now holds, error or not.
	for _, a := range attached {
		s.Leases.Attach(a.key, a.lease)
	}
	if len(events) > 0 && s.OnWrite != nil {
		s.OnWrite(events)
	}
	return applied, err
}

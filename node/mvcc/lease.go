package mvcc

import (
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"etcdctl-wizard/node/backend"
)

// Leases is what the store needs of the lessor (node/lease). Grants and
// revokes are applied in raft order like the writes, so LeaseExists gives the
// same answer on every member.
type Leases interface {
	LeaseExists(id int64) bool
	// Attach records that key now belongs to lease id, 0 for none.
	Attach(key []byte, id int64)
}

type attachment struct {
	key   []byte
	lease int64
}

func (t *txnCtx) attach(key []byte, lease int64) {
	if t.s.Leases != nil {
		t.attached = append(t.attached, attachment{key: key, lease: lease})
	}
}

// checkLease refuses a put with a lease that does not exist, as etcd checks
// before it runs a put or a txn.
func (t *txnCtx) checkLease(p *pb.PutRequest) error {
	if p.GetLease() != 0 && t.s.Leases != nil && !t.s.Leases.LeaseExists(p.GetLease()) {
		return ErrLeaseNotFound
	}
	return nil
}

// DeleteKeys applies a lease revoke from raft entry idx: it deletes keys (each
// one alone, in the given order) at one revision, and runs also in the same
// backend batch (to delete the lease record), so a crash keeps both or
// neither. It returns the revision after the write and whether idx was
// applied now rather than before a restart.
func (s *Store) DeleteKeys(idx Index, keys [][]byte, also func(tx *backend.WriteTx) error) (rev int64, applied bool, err error) {
	applied, err = s.write(idx, func(t *txnCtx) error {
		for _, k := range keys {
			if _, err := t.deleteRange(k, nil); err != nil {
				return err
			}
		}
		rev = t.rev()
		if also != nil {
			return also(t.tx)
		}
		return nil
	})
	if !applied {
		rev = s.Rev()
	}
	return rev, applied, err
}

// Update runs fn in the backend batch of raft entry idx, for an entry that
// changes no key but must be recorded with it (a lease grant). It reports
// whether idx was applied now rather than before a restart.
func (s *Store) Update(idx Index, fn func(tx *backend.WriteTx) error) (applied bool, err error) {
	return s.write(idx, func(t *txnCtx) error { return fn(t.tx) })
}

// LeasedKeys calls fn with every live key that has a lease, at the current
// revision, to rebuild the lessor's attachments.
func (s *Store) LeasedKeys(fn func(key []byte, lease int64)) error {
	return s.read(func(t *txnCtx) error {
		rev := t.rev()
		var err error
		t.s.index.visit([]byte{0}, []byte{}, func(ki *keyIndex) bool {
			mod, _, _, ok := ki.get(rev)
			if !ok {
				return true
			}
			kv, rerr := t.readKV(mod)
			if rerr != nil {
				err = rerr
				return false
			}
			if kv.Lease != 0 {
				fn(kv.Key, kv.Lease)
			}
			return true
		})
		return err
	})
}

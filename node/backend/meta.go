package backend

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// MetaBucket holds the consistent index (and, for mvcc, the compaction revisions).
// The bucket and key names are etcd's.
var MetaBucket = []byte("meta")

var (
	consistentIndexKey = []byte("consistent_index")
	termKey            = []byte("term")
)

type consistentIndex struct{ index, term uint64 }

func readConsistentIndex(tx *bolt.Tx) (consistentIndex, error) {
	bk := tx.Bucket(MetaBucket)
	if bk == nil {
		return consistentIndex{}, nil
	}
	var ci consistentIndex
	for _, f := range []struct {
		key []byte
		dst *uint64
	}{{consistentIndexKey, &ci.index}, {termKey, &ci.term}} {
		v := bk.Get(f.key)
		if v == nil {
			continue
		}
		if len(v) != 8 {
			return consistentIndex{}, fmt.Errorf("meta/%s holds %d bytes, want 8", f.key, len(v))
		}
		*f.dst = binary.BigEndian.Uint64(v)
	}
	return ci, nil
}

// SetConsistentIndex records that the raft entry index (of term) is applied. It is
// written into the batch just before the batch commits, so the stored index always
// covers exactly the writes committed with it (etcd does the same in a pre-commit
// hook). A lower index than the current one is ignored: replaying old entries must
// never move the replay point backwards.
func (t *WriteTx) SetConsistentIndex(index, term uint64) error {
	cur := t.b.ci.Load()
	if index < cur.index || (index == cur.index && term == cur.term) {
		return nil
	}
	t.b.ci.Store(&consistentIndex{index: index, term: term})
	t.b.ciDirty = true
	return nil
}

// writeConsistentIndex puts the in-memory consistent index into the batch. wmu is held.
func (b *Backend) writeConsistentIndex() error {
	if !b.ciDirty {
		return nil
	}
	ci := b.ci.Load()
	var ib, tb [8]byte
	binary.BigEndian.PutUint64(ib[:], ci.index)
	binary.BigEndian.PutUint64(tb[:], ci.term)
	tx := &WriteTx{b: b}
	if err := tx.Put(MetaBucket, consistentIndexKey, ib[:]); err != nil {
		return err
	}
	if err := tx.Put(MetaBucket, termKey, tb[:]); err != nil {
		return err
	}
	b.ciDirty = false
	return nil
}

// ConsistentIndex is the last applied raft index and term, including the open batch.
func (t *WriteTx) ConsistentIndex() (index, term uint64) {
	ci := t.b.ci.Load()
	return ci.index, ci.term
}

// SetConsistentIndex records an applied raft entry that wrote nothing else here
// (a conf change, a lease grant...), in its own Update.
func (b *Backend) SetConsistentIndex(index, term uint64) error {
	return b.Update(func(tx *WriteTx) error { return tx.SetConsistentIndex(index, term) })
}

// ConsistentIndex is the last applied raft index and term. Right after Open it is
// what the file holds, i.e. where WAL replay must start (index+1).
func (b *Backend) ConsistentIndex() (index, term uint64) {
	ci := b.ci.Load()
	return ci.index, ci.term
}

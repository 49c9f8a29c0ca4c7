package mvcc

import (
	"fmt"
	"sync"
	"sync/atomic"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"

	"etcdctl-wizard/node/backend"
)

// Bucket and meta key names are etcd's, so the file reads like an etcd member's.
var (
	keyBucket              = []byte("key")
	scheduledCompactRevKey = []byte("scheduledCompactRev")
	finishedCompactRevKey  = []byte("finishedCompactRev")
)

// Index is the raft position of the entry a write comes from. Index 0 means "not
// from raft": always applied and the consistent index is left alone.
type Index struct {
	Index, Term uint64
}

// Store is etcd's MVCC key space over a backend. Reads may run concurrently with
// each other and with the writer; writes are applied one at a time.
type Store struct {
	// OnWrite, when set, receives the events of every write transaction that
	// changed something, in revision order, after readers can see them. Delete
	// events carry the key and the deletion revision; events carry PrevKv. It is
	// called with writes blocked; set it before the first write.
	OnWrite func(events []*mvccpb.Event)
	// Leases, when set, refuses puts with a lease it does not know
	// (ErrLeaseNotFound) and learns every key's lease from each write. Set
	// it before the first write.
	Leases Leases

	b *backend.Backend

	// wmu orders whole write calls, so OnWrite sees events in revision order.
	wmu    sync.Mutex
	failed error // guarded by wmu
	// mu guards the index and compactRev: readers hold it shared for a whole
	// request, so they see one revision; the writer holds it for the in-memory part.
	mu         sync.RWMutex
	index      treeIndex
	compactRev int64
	currentRev atomic.Int64
}

// New builds the store on b, rebuilding the in-memory index from the key bucket.
func New(b *backend.Backend) (*Store, error) {
	s := &Store{b: b, compactRev: -1}
	s.currentRev.Store(1) // etcd's empty store is at revision 1; the first write makes 2
	if err := s.restore(); err != nil {
		return nil, fmt.Errorf("mvcc: restore from %s: %w", b.Path(), err)
	}
	return s, nil
}

func (s *Store) restore() error {
	var scheduled int64 = -1
	err := s.b.Update(func(tx *backend.WriteTx) (err error) {
		// A damaged page makes bbolt panic during the scan; report it instead.
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("%w: reading the key bucket: %v", ErrCorrupt, r)
			}
		}()
		if s.compactRev, err = readRevMeta(tx, finishedCompactRevKey); err != nil {
			return err
		}
		if scheduled, err = readRevMeta(tx, scheduledCompactRevKey); err != nil {
			return err
		}
		return tx.Scan(keyBucket, nil, nil, s.restoreKey)
	})
	if err != nil {
		return err
	}
	s.currentRev.Store(max(s.currentRev.Load(), s.compactRev, scheduled))
	if scheduled > s.compactRev {
		// Only a file written by another implementation can hold an unfinished
		// compaction (ours is one batch); finish it as etcd does.
		return s.b.Update(func(tx *backend.WriteTx) error { return s.compactLocked(tx, scheduled) })
	}
	return nil
}

func (s *Store) restoreKey(k, v []byte) error {
	rev, tomb, err := bytesToRev(k)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	kv := &mvccpb.KeyValue{}
	if err := proto.Unmarshal(v, kv); err != nil {
		return fmt.Errorf("%w: value of revision %d_%d: %v", ErrCorrupt, rev.main, rev.sub, err)
	}
	s.currentRev.Store(max(s.currentRev.Load(), rev.main))
	ki := s.index.get(kv.Key)
	if ki == nil {
		ki = &keyIndex{key: kv.Key}
		if tomb {
			ki.restoreTombstone(rev)
		} else {
			ki.restore(revision{main: kv.CreateRevision}, rev, kv.Version)
		}
		s.index.insert(ki)
		return nil
	}
	if tomb {
		ki.tombstone(rev)
	} else {
		ki.put(rev)
	}
	return nil
}

func readRevMeta(tx *backend.WriteTx, key []byte) (int64, error) {
	v := tx.Get(backend.MetaBucket, key)
	if v == nil {
		return -1, nil
	}
	rev, _, err := bytesToRev(v)
	if err != nil {
		return 0, fmt.Errorf("%w: meta/%s: %v", ErrCorrupt, key, err)
	}
	return rev.main, nil
}

// Rev is the current store revision.
func (s *Store) Rev() int64 { return s.currentRev.Load() }

// CompactRev is the last compaction revision, -1 if the store was never compacted.
func (s *Store) CompactRev() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.compactRev
}

// ConsistentIndex is the last raft entry applied to the backend.
func (s *Store) ConsistentIndex() Index {
	i, t := s.b.ConsistentIndex()
	return Index{Index: i, Term: t}
}

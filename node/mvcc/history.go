package mvcc

import (
	"bytes"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"

	"etcdctl-wizard/node/backend"
)

// History returns the changes of the keys in a request range (key and
// range_end as on the wire: empty end is the key alone, "\x00" every key >=
// key) with revisions from..to, in revision order, as watch events: a delete
// carries the key and its revision only. With prevKV each event that is not a
// creation also carries the key's value just before it, when that is not
// compacted away. to is clamped to the current revision.
//
// A from below the compaction revision returns ErrCompacted with that
// revision: the changes are gone. Changes at exactly the compaction revision
// are all kept (compaction keeps a key's value and tombstone at that
// revision), so from == compactRev is served, as in etcd.
func (s *Store) History(key, end []byte, from, to int64, prevKV bool) (events []*mvccpb.Event, compactRev int64, err error) {
	// The shared lock keeps compactRev stable, and compaction only deletes
	// revisions below it, so none of the revisions read here disappear.
	s.mu.RLock()
	defer s.mu.RUnlock()
	if from < s.compactRev {
		return nil, s.compactRev, ErrCompacted
	}
	to = min(to, s.currentRev.Load())
	in := keyMatcher(key, gteRange(end))
	err = s.b.View(func(rt *backend.ReadTx) error {
		t := &txnCtx{s: s, g: rt, beginRev: s.currentRev.Load()}
		for main := max(from, 1); main <= to; main++ {
			// The changes of one revision have sub revisions 0, 1, ... without
			// gaps; each is stored either as a value or as a tombstone.
			for sub := int64(0); ; sub++ {
				ev, err := t.historyEvent(revision{main: main, sub: sub})
				if err != nil {
					return err
				}
				if ev == nil {
					break
				}
				if !in(ev.Kv.Key) {
					continue
				}
				if prevKV && !(ev.Type == mvccpb.Event_PUT && ev.Kv.CreateRevision == ev.Kv.ModRevision) {
					if ev.PrevKv, err = t.valueBefore(ev.Kv.Key, main); err != nil {
						return err
					}
				}
				events = append(events, ev)
			}
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return events, s.compactRev, nil
}

// historyEvent reads the change stored under r, nil when there is none.
func (t *txnCtx) historyEvent(r revision) (*mvccpb.Event, error) {
	typ := mvccpb.Event_PUT
	v := t.g.Get(keyBucket, revToBytes(r, false))
	if v == nil {
		typ = mvccpb.Event_DELETE
		if v = t.g.Get(keyBucket, revToBytes(r, true)); v == nil {
			return nil, nil
		}
	}
	kv := &mvccpb.KeyValue{}
	if err := proto.Unmarshal(v, kv); err != nil {
		return nil, fmt.Errorf("%w: value of revision %d_%d: %v", ErrCorrupt, r.main, r.sub, err)
	}
	if typ == mvccpb.Event_DELETE {
		kv.ModRevision = r.main // a tombstone stores the key only
	}
	return &mvccpb.Event{Type: typ, Kv: kv}, nil
}

// valueBefore is the key's value as of rev-1, nil if it did not exist then or
// that revision is compacted (etcd's watch answers without prev_kv then too).
func (t *txnCtx) valueBefore(key []byte, rev int64) (*mvccpb.KeyValue, error) {
	if rev-1 < t.s.compactRev {
		return nil, nil
	}
	ki := t.s.index.get(key)
	if ki == nil {
		return nil, nil
	}
	mod, _, _, ok := ki.get(rev - 1)
	if !ok {
		return nil, nil
	}
	return t.readKV(mod)
}

// keyMatcher tells whether a key is in a range in the index's convention (see
// gteRange).
func keyMatcher(key, end []byte) func(k []byte) bool {
	switch {
	case end == nil:
		return func(k []byte) bool { return bytes.Equal(k, key) }
	case len(end) == 0:
		return func(k []byte) bool { return bytes.Compare(k, key) >= 0 }
	}
	return func(k []byte) bool { return bytes.Compare(k, key) >= 0 && bytes.Compare(k, end) < 0 }
}

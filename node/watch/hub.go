package watch

import (
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.uber.org/zap"
)

// Source is the store the hub reads history from (node/mvcc's Store.History,
// through whatever store is current after a snapshot install).
type Source interface {
	// History returns the events of [key, end) (end as on the wire) with
	// revisions from..to in order, or mvcc.ErrCompacted and the compaction
	// revision when from is below it.
	History(key, end []byte, from, to int64, prevKV bool) ([]*mvccpb.Event, int64, error)
	// CompactRev is the compaction revision, -1 if none.
	CompactRev() int64
}

// Options tune the hub; zero values take the defaults.
type Options struct {
	Logger *zap.Logger
	// SyncInterval is how often unsynced watchers are retried when nothing
	// else wakes the hub (etcd: 100 ms).
	SyncInterval time.Duration
	// MaxQueuedResponses bounds the event responses queued per stream.
	MaxQueuedResponses int
	// RevsPerRead bounds the revisions read from history in one step.
	RevsPerRead int64
	// RingRevisions and RingBytes bound the in-memory recent events.
	RingRevisions, RingBytes int
	// MaxWatchersPerSync bounds the unsynced watchers handled per round.
	MaxWatchersPerSync int
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = 100 * time.Millisecond
	}
	if o.MaxQueuedResponses <= 0 {
		o.MaxQueuedResponses = 256
	}
	if o.RevsPerRead <= 0 {
		o.RevsPerRead = 256
	}
	if o.RingRevisions <= 0 {
		o.RingRevisions = 1024
	}
	if o.RingBytes <= 0 {
		o.RingBytes = 16 << 20
	}
	if o.MaxWatchersPerSync <= 0 {
		o.MaxWatchersPerSync = 512
	}
	return o
}

// Hub dispatches the store's changes to the watchers of every stream.
type Hub struct {
	src  Source
	opt  Options
	kick chan struct{}

	mu       sync.Mutex
	rev      int64 // the last revision announced by OnWrite or Reset
	ring     ring
	synced   map[*watcher]struct{}
	unsynced map[*watcher]struct{}
	// progressWanted are streams that asked for progress while some of their
	// watchers were not synced; they are answered once all are.
	progressWanted map[*Stream]struct{}
}

// NewHub starts a hub at the store's current revision rev. Register OnWrite
// and Reset with the store before any write can happen after rev, and run Run.
func NewHub(src Source, rev int64, opt Options) *Hub {
	opt = opt.withDefaults()
	h := &Hub{
		src: src, opt: opt, kick: make(chan struct{}, 1),
		rev:      rev,
		ring:     ring{maxRevs: opt.RingRevisions, maxBytes: opt.RingBytes, base: rev},
		synced:   map[*watcher]struct{}{},
		unsynced: map[*watcher]struct{}{},

		progressWanted: map[*Stream]struct{}{},
	}
	return h
}

// Rev is the last revision the hub announced.
func (h *Hub) Rev() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rev
}

// OnWrite takes the events of one applied write transaction (one revision),
// from the store's apply path. It never blocks on a client.
func (h *Hub) OnWrite(evs []*mvccpb.Event) {
	if len(evs) == 0 {
		return
	}
	rev := evs[0].Kv.ModRevision
	h.mu.Lock()
	defer h.mu.Unlock()
	if rev <= h.rev {
		return // already known (a listener registered while a write was in flight)
	}
	h.rev = rev
	h.ring.add(rev, evs)
	for w := range h.synced {
		if rev < w.minRev {
			continue // starts at a future revision
		}
		m := w.match(evs)
		if len(m) > 0 && !w.stream.out.push(eventItem(w, rev, m)) {
			// The client is slow: catch it up from history later rather than
			// block the apply loop or drop events.
			delete(h.synced, w)
			h.unsynced[w] = struct{}{}
			h.kickLocked()
			continue
		}
		w.minRev = rev + 1
	}
}

// Reset tells the hub that the store was replaced by a snapshot at revision
// rev: the revisions in between were never announced. Every watcher catches
// up from the new store's history, or is canceled as compacted. It runs with
// the store locked and does not read it.
func (h *Hub) Reset(rev int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rev = rev
	h.ring.reset(rev)
	for w := range h.synced {
		h.unsynced[w] = struct{}{}
	}
	clear(h.synced)
	h.kickLocked()
}

// Kick makes Run retry the unsynced watchers now.
func (h *Hub) Kick() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

func (h *Hub) kickLocked() { h.Kick() }

// remove takes w out of both groups.
func (h *Hub) removeLocked(w *watcher) {
	delete(h.synced, w)
	delete(h.unsynced, w)
}

// watching counts the hub's watchers (tests check that streams free theirs).
func (h *Hub) watching() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.synced) + len(h.unsynced)
}

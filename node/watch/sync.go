package watch

import (
	"errors"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.uber.org/zap"

	"etcdctl-wizard/node/mvcc"
)

// Run catches unsynced watchers up until stop is closed.
func (h *Hub) Run(stop <-chan struct{}) {
	t := time.NewTicker(h.opt.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-h.kick:
		case <-t.C:
		}
		h.syncRound()
	}
}

// syncRound gives each unsynced watcher (up to MaxWatchersPerSync) what it
// can take now, then answers the progress requests that waited for them.
func (h *Hub) syncRound() {
	h.mu.Lock()
	ws := make([]*watcher, 0, min(len(h.unsynced), h.opt.MaxWatchersPerSync))
	for w := range h.unsynced {
		if len(ws) == h.opt.MaxWatchersPerSync {
			h.kickLocked() // more next round
			break
		}
		ws = append(ws, w)
	}
	h.mu.Unlock()
	for _, w := range ws {
		h.syncWatcher(w)
	}
	h.mu.Lock()
	for s := range h.progressWanted {
		if s.progressAllLocked() {
			delete(h.progressWanted, s)
		}
	}
	h.mu.Unlock()
}

// syncWatcher reads w's missing revisions from history, a batch at a time and
// without the hub's lock, until what is missing is in the ring; it then queues
// that last part and moves w to synced in one step under the lock, so no
// revision announced meanwhile is missed or given twice. It returns early
// when w's stream queue is full (retried later) or w is gone.
func (h *Hub) syncWatcher(w *watcher) {
	for {
		// Read before the lock (the store is never read under it): a watcher
		// that starts below the compaction is canceled even when the ring
		// still holds what it asks for, as etcd does.
		compactRev := h.src.CompactRev()
		h.mu.Lock()
		if _, ok := h.unsynced[w]; !ok {
			h.mu.Unlock()
			return
		}
		if w.minRev < compactRev {
			h.mu.Unlock()
			h.compacted(w, compactRev)
			return
		}
		if w.minRev > h.rev || h.ring.covers(w.minRev) {
			if m := w.match(h.ring.since(w.minRev)); len(m) > 0 && !w.stream.out.push(eventItem(w, h.rev, m)) {
				h.mu.Unlock()
				return
			}
			w.minRev = max(w.minRev, h.rev+1)
			delete(h.unsynced, w)
			h.synced[w] = struct{}{}
			h.mu.Unlock()
			return
		}
		from := w.minRev
		to := min(h.rev, from+h.opt.RevsPerRead-1)
		h.mu.Unlock()

		evs, compactRev, err := h.src.History(w.key, w.reqEnd, from, to, w.prevKV)
		if errors.Is(err, mvcc.ErrCompacted) {
			h.compacted(w, compactRev)
			return
		}
		if err != nil {
			h.opt.Logger.Warn("watch: reading history", zap.Int64("from", from), zap.Int64("to", to), zap.Error(err))
			return // retried next round
		}
		h.mu.Lock()
		if _, ok := h.unsynced[w]; !ok || w.minRev != from {
			h.mu.Unlock()
			return
		}
		if m := w.match(evs); len(m) > 0 && !w.stream.out.push(eventItem(w, to, m)) {
			h.mu.Unlock()
			return
		}
		w.minRev = to + 1
		h.mu.Unlock()
	}
}

// compacted cancels w, whose next revision was compacted away, as etcd does:
// a response with compact_revision and canceled set.
func (h *Hub) compacted(w *watcher, compactRev int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.unsynced[w]; !ok {
		return
	}
	h.removeLocked(w)
	w.stream.forgetLocked(w)
	w.stream.out.push(item{rev: h.rev, resp: &pb.WatchResponse{WatchId: w.id, CompactRevision: compactRev, Canceled: true}})
}

func eventItem(w *watcher, rev int64, evs []*mvccpb.Event) item {
	return item{w: w, rev: rev, events: true, resp: &pb.WatchResponse{WatchId: w.id, Events: evs}}
}

package watch

import (
	"bytes"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// watcher is one watch of a stream. Fields after the request's are guarded by
// Hub.mu.
type watcher struct {
	id       int64
	stream   *Stream
	key, end []byte // end in the store's convention: nil = key alone, empty = every key >= key
	// reqEnd is range_end as requested, for the store's History.
	reqEnd          []byte
	noPut, noDelete bool
	prevKV          bool
	progressNotify  bool
	fragment        bool
	startRev        int64 // as requested; 0 = from now

	minRev int64 // the next revision this watcher has not been given
}

// inRange tells whether key is watched.
func (w *watcher) inRange(key []byte) bool {
	switch {
	case w.end == nil:
		return bytes.Equal(key, w.key)
	case len(w.end) == 0:
		return bytes.Compare(key, w.key) >= 0
	}
	return bytes.Compare(key, w.key) >= 0 && bytes.Compare(key, w.end) < 0
}

// wants applies the NOPUT/NODELETE filters.
func (w *watcher) wants(ev *mvccpb.Event) bool {
	if ev.Type == mvccpb.Event_PUT {
		return !w.noPut
	}
	return !w.noDelete
}

// match returns the events this watcher is given out of evs (shared, not
// copied), in order.
func (w *watcher) match(evs []*mvccpb.Event) []*mvccpb.Event {
	var out []*mvccpb.Event
	for _, ev := range evs {
		if w.wants(ev) && w.inRange(ev.Kv.Key) {
			out = append(out, ev)
		}
	}
	return out
}

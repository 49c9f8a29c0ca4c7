package watch

import "go.etcd.io/etcd/api/v3/mvccpb"

// ring keeps the events of the most recent revisions, so an unsynced watcher's
// last step to synced is served from memory under the hub's lock. It holds
// every revision above base, up to the hub's revision, without gaps.
type ring struct {
	maxRevs, maxBytes int
	base              int64
	entries           []ringEntry
	bytes             int
}

type ringEntry struct {
	rev    int64
	events []*mvccpb.Event
	size   int
}

func eventsSize(evs []*mvccpb.Event) int {
	n := 0
	for _, ev := range evs {
		n += 64 + len(ev.Kv.Key) + len(ev.Kv.Value)
		if ev.PrevKv != nil {
			n += len(ev.PrevKv.Value)
		}
	}
	return n
}

// reset empties the ring: revisions up to rev are not in it.
func (r *ring) reset(rev int64) {
	r.base, r.entries, r.bytes = rev, nil, 0
}

func (r *ring) add(rev int64, evs []*mvccpb.Event) {
	e := ringEntry{rev: rev, events: evs, size: eventsSize(evs)}
	r.entries = append(r.entries, e)
	r.bytes += e.size
	drop := 0
	for len(r.entries)-drop > r.maxRevs || (r.bytes > r.maxBytes && drop < len(r.entries)) {
		r.bytes -= r.entries[drop].size
		r.base = r.entries[drop].rev
		drop++
	}
	if drop > 0 {
		clear(r.entries[:drop])
		r.entries = r.entries[drop:]
	}
}

// covers tells whether every revision from rev on is in the ring.
func (r *ring) covers(rev int64) bool { return rev > r.base }

// since returns the events of revisions >= rev, in order.
func (r *ring) since(rev int64) []*mvccpb.Event {
	var out []*mvccpb.Event
	for _, e := range r.entries {
		if e.rev >= rev {
			out = append(out, e.events...)
		}
	}
	return out
}

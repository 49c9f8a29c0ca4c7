package watch

import (
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// item is one response waiting to be sent. Its header is added when it is
// sent; rev is the header's revision.
type item struct {
	w      *watcher // the watcher the events are for; nil for control responses
	resp   *pb.WatchResponse
	rev    int64
	events bool
}

// outbox is a stream's queue of responses, in the order they must be sent.
// Responses that carry events are bounded (a slow client must not make the
// member buffer without limit); control responses (created, canceled,
// progress) are always taken: they come from the client's own requests, so
// their number is bounded by what the client asked for.
type outbox struct {
	mu        sync.Mutex
	items     []item
	nEvents   int
	maxEvents int
	rejected  bool // an event response was refused since the last take
	closed    bool
	ready     chan struct{} // signalled when items were added
}

func newOutbox(maxEvents int) *outbox {
	return &outbox{maxEvents: maxEvents, ready: make(chan struct{}, 1)}
}

// push queues it, or reports false when it carries events and the queue is full.
func (o *outbox) push(it item) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return true // the stream is gone: nothing to catch up
	}
	if it.events {
		if o.nEvents >= o.maxEvents {
			o.rejected = true
			return false
		}
		o.nEvents++
	}
	o.items = append(o.items, it)
	select {
	case o.ready <- struct{}{}:
	default:
	}
	return true
}

// take removes every queued item; rejected tells whether a push was refused
// since the last take (the hub should retry its unsynced watchers now).
func (o *outbox) take() (items []item, rejected bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	items, rejected = o.items, o.rejected
	o.items, o.nEvents, o.rejected = nil, 0, false
	return items, rejected
}

func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.items = nil
	o.mu.Unlock()
}

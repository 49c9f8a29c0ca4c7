package watch

import (
	"bytes"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// etcd's texts for refused watch requests (server/storage/mvcc/watcher.go).
const (
	reasonEmptyRange  = "mvcc: watcher range is empty"
	reasonDuplicateID = "mvcc: duplicate watch ID provided on the WatchStream"
)

// Stream is the watchers of one gRPC Watch stream and the queue of its
// responses. Its watcher table is guarded by Hub.mu.
type Stream struct {
	h        *Hub
	out      *outbox
	watchers map[int64]*watcher
	nextID   int64
	closed   bool
}

// NewStream opens a stream; Close it when the client goes away.
func (h *Hub) NewStream() *Stream {
	return &Stream{h: h, out: newOutbox(h.opt.MaxQueuedResponses), watchers: map[int64]*watcher{}}
}

// Refuse answers a create request that may not be served (auth) with a
// created and canceled response, watch_id -1, and reason.
func (s *Stream) Refuse(reason string) {
	h := s.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.closed {
		return
	}
	s.out.push(item{rev: h.rev, resp: &pb.WatchResponse{WatchId: -1, Created: true, Canceled: true, CancelReason: reason}})
}

// Create adds a watcher and queues its created response (or the refusal,
// with watch_id -1, as etcd answers).
func (s *Stream) Create(r *pb.WatchCreateRequest) {
	key := r.GetKey()
	if len(key) == 0 {
		key = []byte{0}
	}
	var end []byte // nil: the key alone
	switch re := r.GetRangeEnd(); {
	case len(re) == 1 && re[0] == 0:
		end = []byte{} // every key >= key
	case len(re) > 0:
		end = re
	}
	h := s.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.closed {
		return
	}
	refuse := func(reason string) {
		s.out.push(item{rev: h.rev, resp: &pb.WatchResponse{WatchId: -1, Created: true, Canceled: true, CancelReason: reason}})
	}
	if r.GetStartRevision() < 0 {
		refuse(rpctypes.ErrCompacted.Error())
		return
	}
	if len(end) > 0 && bytes.Compare(key, end) >= 0 {
		refuse(reasonEmptyRange)
		return
	}
	id := r.GetWatchId()
	if id == 0 { // clientv3.AutoWatchID: the lowest free id from nextID up
		for s.watchers[s.nextID] != nil {
			s.nextID++
		}
		id = s.nextID
		s.nextID++
	} else if s.watchers[id] != nil {
		refuse(reasonDuplicateID)
		return
	}
	w := &watcher{
		id: id, stream: s, key: key, end: end, reqEnd: r.GetRangeEnd(),
		prevKV: r.GetPrevKv(), progressNotify: r.GetProgressNotify(), fragment: r.GetFragment(),
		startRev: r.GetStartRevision(), minRev: r.GetStartRevision(),
	}
	for _, f := range r.GetFilters() {
		switch f {
		case pb.WatchCreateRequest_NOPUT:
			w.noPut = true
		case pb.WatchCreateRequest_NODELETE:
			w.noDelete = true
		}
	}
	s.watchers[id] = w
	// Queued before any event of w can be: the client sees created first.
	s.out.push(item{rev: h.rev, resp: &pb.WatchResponse{WatchId: id, Created: true}})
	if w.minRev == 0 || w.minRev > h.rev {
		w.minRev = max(w.minRev, h.rev+1)
		h.synced[w] = struct{}{}
		return
	}
	h.unsynced[w] = struct{}{}
	h.kickLocked()
}

// Cancel removes watcher id and queues its canceled response; an unknown id
// gets no answer, as from etcd.
func (s *Stream) Cancel(id int64) {
	h := s.h
	h.mu.Lock()
	defer h.mu.Unlock()
	w := s.watchers[id]
	if w == nil || s.closed {
		return
	}
	h.removeLocked(w)
	s.forgetLocked(w)
	s.out.push(item{rev: h.rev, resp: &pb.WatchResponse{WatchId: id, Canceled: true}})
}

// forgetLocked drops w from the stream's table.
func (s *Stream) forgetLocked(w *watcher) {
	if s.watchers[w.id] == w {
		delete(s.watchers, w.id)
	}
}

// RequestProgress answers a WatchProgressRequest: a response with watch_id -1
// and the hub's revision, queued after every event up to that revision. When
// some watcher is still catching up the answer waits until all are synced,
// since the revision would otherwise claim events the client has not had.
func (s *Stream) RequestProgress() {
	h := s.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.closed || s.progressAllLocked() {
		return
	}
	h.progressWanted[s] = struct{}{}
	h.kickLocked()
}

// progressAllLocked queues the stream's progress response if every watcher
// is synced and reports whether the request is settled. A stream without
// watchers gets nothing, as from etcd.
func (s *Stream) progressAllLocked() bool {
	h := s.h
	if s.closed || len(s.watchers) == 0 {
		return true
	}
	for _, w := range s.watchers {
		if !s.readyLocked(w) {
			return false
		}
	}
	s.out.push(item{rev: h.rev, resp: &pb.WatchResponse{WatchId: -1}})
	return true
}

// readyLocked reports whether w has had every event up to the hub's
// revision: it is synced. A watcher waiting for a future start revision is
// synced too; as in etcd it gets progress at the current revision (nothing
// it asked for has happened yet) rather than none until its first event.
func (s *Stream) readyLocked(w *watcher) bool {
	_, synced := s.h.synced[w]
	return synced
}

// notifyProgress queues the periodic progress_notify responses of the given
// watchers (those that had no events since the last tick) that are synced.
func (s *Stream) notifyProgress(quiet []*watcher) {
	h := s.h
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, w := range quiet {
		if s.watchers[w.id] == w && s.readyLocked(w) {
			s.out.push(item{rev: h.rev, resp: &pb.WatchResponse{WatchId: w.id}})
		}
	}
}

// progressWatchers lists the watchers that asked for progress notifications.
func (s *Stream) progressWatchers() []*watcher {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	var out []*watcher
	for _, w := range s.watchers {
		if w.progressNotify {
			out = append(out, w)
		}
	}
	return out
}

// Close removes every watcher of the stream from the hub.
func (s *Stream) Close() {
	h := s.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	for _, w := range s.watchers {
		h.removeLocked(w)
	}
	s.watchers = nil
	delete(h.progressWanted, s)
	s.out.close()
}

// Ready is signalled when responses were queued.
func (s *Stream) Ready() <-chan struct{} { return s.out.ready }

// take returns the queued responses, and kicks the hub when it refused some
// for lack of room: there is room again.
func (s *Stream) take() []item {
	items, rejected := s.out.take()
	if rejected {
		s.h.Kick()
	}
	return items
}

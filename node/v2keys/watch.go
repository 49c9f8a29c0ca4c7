package v2keys

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// historySize is how many events a wait can look back, like etcd v2.
const historySize = 1000

// hub keeps the recent v2 events and the pending waits.
type hub struct {
	mu       sync.Mutex
	history  []*Event // oldest first, at most historySize
	dropped  bool     // events fell off the front of history
	startRev int64    // events with index >= startRev are all in history (unless dropped)
	waiters  map[*waiter]struct{}
}

type waiter struct {
	key       string
	recursive bool
	since     int64
	ch        chan *Event // buffered 1
}

func newHub() *hub { return &hub{waiters: map[*waiter]struct{}{}} }

// onWrite turns one write's MVCC events into v2 events and wakes the waits.
func (h *hub) onWrite(events []*mvccpb.Event) {
	evs := convert(events)
	if len(evs) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ev := range evs {
		h.history = append(h.history, ev)
		for w := range h.waiters {
			if w.matches(ev) {
				w.ch <- ev
				delete(h.waiters, w)
			}
		}
	}
	if n := len(h.history) - historySize; n > 0 {
		h.history = append([]*Event(nil), h.history[n:]...)
		h.dropped = true
	}
}

func convert(events []*mvccpb.Event) []*Event {
	var out []*Event
	deleted := map[string]bool{}
	var dels []*Event
	for _, e := range events {
		p, ok := pathOf(e.GetKv().GetKey())
		if !ok {
			continue
		}
		var prev *Node
		if pk := e.GetPrevKv(); pk != nil {
			if st, ok := decode(pk); ok {
				prev = st.node()
			}
		}
		if e.GetType() == mvccpb.Event_DELETE {
			n := &Node{Key: p, ModifiedIndex: e.GetKv().GetModRevision()}
			if prev != nil {
				n.Dir, n.CreatedIndex = prev.Dir, prev.CreatedIndex
			}
			deleted[p] = true
			dels = append(dels, &Event{Action: "delete", Node: n, PrevNode: prev, index: n.ModifiedIndex})
			continue
		}
		st, ok := decode(e.GetKv())
		if !ok || st.act == actImplDir {
			continue
		}
		out = append(out, &Event{Action: actionNames[st.act], Node: st.node(), PrevNode: prev, index: st.modified})
	}
	// A recursive delete is one event for the top node, as in etcd v2.
	for _, ev := range dels {
		top := true
		for d := path.Dir(ev.Node.Key); d != "/"; d = path.Dir(d) {
			if deleted[d] {
				top = false
				break
			}
		}
		if top {
			out = append(out, ev)
		}
	}
	return out
}

func (w *waiter) matches(ev *Event) bool {
	if ev.index < w.since {
		return false
	}
	k := ev.Node.Key
	switch {
	case k == w.key:
		return true
	case w.recursive && under(k, w.key):
		return !isHidden(w.key, k)
	case ev.Action == "delete" && under(w.key, k):
		return true
	}
	return false
}

// errOutdated is etcd's answer to a wait older than the history.
func outdated(start, since, cur int64) *Error {
	return newError(codeEventIndexOld, fmt.Sprintf("the requested history has been cleared [%d/%d]", start, since), cur)
}

// register looks for an event at or after since; if there is none it
// registers a waiter. scan is true when since is older than what the hub
// has seen, so the caller must look at the stored state instead.
func (h *hub) register(key string, recursive bool, since, cur int64) (ev *Event, w *waiter, scan bool, err *Error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	w = &waiter{key: key, recursive: recursive, since: since, ch: make(chan *Event, 1)}
	if h.dropped && len(h.history) > 0 && since < h.history[0].index {
		return nil, nil, false, outdated(h.history[0].index, since, cur)
	}
	if since < h.startRev && !h.dropped {
		return nil, nil, true, nil
	}
	for _, e := range h.history {
		if w.matches(e) {
			return e, nil, false, nil
		}
	}
	h.waiters[w] = struct{}{}
	return nil, w, false, nil
}

// reset forgets the history after the store was replaced (a snapshot from
// the leader) at revision rev: pending waits end empty, so clients ask
// again and are answered from the stored state.
func (h *hub) reset(rev int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.history, h.dropped, h.startRev = nil, false, rev+1
	for w := range h.waiters {
		w.ch <- nil
		delete(h.waiters, w)
	}
}

func (h *hub) cancel(w *waiter) {
	h.mu.Lock()
	delete(h.waiters, w)
	h.mu.Unlock()
}

// scanState finds, in the stored state, the oldest change at or after since
// of key (or below it when recursive): the answer to a wait that reaches
// back before this member started listening. Deletions before then are not
// known.
func (s *store) scanState(ctx context.Context, key string, recursive bool, since int64) (*Event, error) {
	var cands []*stored
	v, err := s.read(ctx, key, true)
	if err != nil {
		return nil, err
	}
	if v.target != nil {
		cands = append(cands, v.target)
	}
	if recursive && (key == "/" || (v.target != nil && v.target.dir)) {
		prefix := storeKey(strings.TrimSuffix(key, "/") + "/")
		r, err := s.b.Range(ctx, &pb.RangeRequest{Key: prefix, RangeEnd: prefixEnd(prefix), Revision: v.rev, Serializable: true})
		if err != nil {
			return nil, err
		}
		for _, kv := range r.Kvs {
			if st, ok := decode(kv); ok && !isHidden(key, st.path) && st.act != actImplDir {
				cands = append(cands, st)
			}
		}
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].modified < cands[j].modified })
	for _, st := range cands {
		if st.modified >= since && st.act != actImplDir {
			return &Event{Action: actionNames[st.act], Node: st.node(), index: st.modified}, nil
		}
	}
	return nil, nil
}

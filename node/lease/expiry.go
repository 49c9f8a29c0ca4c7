package lease

import (
	"container/heap"
	"context"
	"time"
)

// refreshLocked starts l's deadline afresh: now + extend + TTL.
func (le *Lessor) refreshLocked(l *lease, now time.Time, extend time.Duration) {
	l.deadline = now.Add(extend + time.Duration(l.ttl)*time.Second)
	l.due = l.deadline
	le.due.update(l)
}

// Promote makes the Lessor primary: it starts tracking time, and every
// deadline is now + extend + TTL. The server calls it once the new leader
// has applied every entry of the earlier terms (so it knows every lease),
// with extend about an election timeout: the old leader may have renewed a
// lease just before it lost leadership, and the clients need time to find
// the new leader.
func (le *Lessor) Promote(extend time.Duration) {
	le.mu.Lock()
	defer le.mu.Unlock()
	if !le.primary {
		le.primary = true
		le.demoted = make(chan struct{})
	}
	now := le.cfg.Now()
	for _, l := range le.leases {
		le.refreshLocked(l, now, extend)
	}
}

// Demote stops tracking time: the member is no longer the leader. Renewals
// waiting for a revoke give up with ErrNotPrimary.
func (le *Lessor) Demote() {
	le.mu.Lock()
	defer le.mu.Unlock()
	if !le.primary {
		return
	}
	le.primary = false
	close(le.demoted)
	for _, l := range le.leases {
		l.deadline, l.due, l.qi = time.Time{}, time.Time{}, -1
	}
	le.due = nil
}

// Primary reports whether the Lessor tracks time.
func (le *Lessor) Primary() bool {
	le.mu.Lock()
	defer le.mu.Unlock()
	return le.primary
}

// Renew restarts lease id's deadline and returns its TTL. A lease past its
// deadline is being revoked: as in etcd, Renew waits for the revoke
// (ErrNotFound) rather than bring it back, or for a demotion (ErrNotPrimary:
// ask the new leader), or for ctx.
func (le *Lessor) Renew(ctx context.Context, id int64) (int64, error) {
	le.mu.Lock()
	if !le.primary {
		le.mu.Unlock()
		return -1, ErrNotPrimary
	}
	l := le.leases[id]
	if l == nil {
		le.mu.Unlock()
		return -1, ErrNotFound
	}
	now := le.cfg.Now()
	if now.Before(l.deadline) {
		le.refreshLocked(l, now, 0)
		le.mu.Unlock()
		return l.ttl, nil
	}
	revoked, demoted := l.revoked, le.demoted
	le.mu.Unlock()
	select {
	case <-revoked:
		return -1, ErrNotFound
	case <-demoted:
		return -1, ErrNotPrimary
	case <-ctx.Done():
		return -1, ctx.Err()
	}
}

// Status is a lease as TimeToLive reports it.
type Status struct {
	ID         int64
	TTL        int64 // remaining seconds, rounded down
	GrantedTTL int64
	Keys       [][]byte // only when asked for
}

// TimeToLive reports lease id's remaining time; only the primary knows it.
func (le *Lessor) TimeToLive(id int64, withKeys bool) (*Status, error) {
	le.mu.Lock()
	defer le.mu.Unlock()
	if !le.primary {
		return nil, ErrNotPrimary
	}
	l := le.leases[id]
	if l == nil {
		return nil, ErrNotFound
	}
	st := &Status{ID: id, GrantedTTL: l.ttl, TTL: max(0, int64(l.deadline.Sub(le.cfg.Now())/time.Second))}
	if withKeys {
		st.Keys = sortedKeys(l)
	}
	return st, nil
}

// Expired returns up to limit leases past their deadline, earliest first,
// for the server to revoke. Each is offered again after RetryInterval while
// it still exists, in case its revoke is lost. A Lessor that is not primary
// has none.
func (le *Lessor) Expired(limit int) []int64 {
	le.mu.Lock()
	defer le.mu.Unlock()
	if !le.primary {
		return nil
	}
	now := le.cfg.Now()
	var out []int64
	for len(out) < limit && le.due.Len() > 0 {
		l := le.due[0]
		if now.Before(l.due) {
			break
		}
		out = append(out, l.id)
		l.due = now.Add(le.cfg.RetryInterval)
		heap.Fix(&le.due, 0)
	}
	return out
}

// dueQueue is a min-heap of leases by due time; each lease knows its index,
// so a renewal moves it in place instead of queueing a duplicate.
type dueQueue []*lease

func (q dueQueue) Len() int           { return len(q) }
func (q dueQueue) Less(i, j int) bool { return q[i].due.Before(q[j].due) }
func (q dueQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].qi, q[j].qi = i, j
}

func (q *dueQueue) Push(x any) {
	l := x.(*lease)
	l.qi = len(*q)
	*q = append(*q, l)
}

func (q *dueQueue) Pop() any {
	old := *q
	l := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	l.qi = -1
	return l
}

func (q *dueQueue) update(l *lease) {
	if l.qi >= 0 {
		heap.Fix(q, l.qi)
		return
	}
	heap.Push(q, l)
}

func (q *dueQueue) remove(l *lease) {
	if l.qi >= 0 {
		heap.Remove(q, l.qi)
	}
}

package lease

import (
	"bytes"
	"slices"
	"sync"
	"time"
)

// Config configures a Lessor.
type Config struct {
	// MinTTL (seconds) is the shortest TTL granted: shorter requests get it.
	// etcd derives it from the election timeout, so that a lease outlives a
	// leader election (see MinTTL).
	MinTTL int64
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// RetryInterval is how long an expired lease that is still there waits
	// before Expired offers it again (its revoke may have been lost with a
	// leader change or a dropped proposal). Default 3s, as in etcd.
	RetryInterval time.Duration
}

// MinTTL is etcd's minimum lease TTL: 1.5 election timeouts, rounded up to
// whole seconds, computed in heartbeat ticks as etcd does.
func MinTTL(heartbeatMs, electionMs uint) int64 {
	if heartbeatMs == 0 {
		return 1
	}
	ticks := electionMs / heartbeatMs
	ms := int64(3*ticks/2) * int64(heartbeatMs)
	return (ms + 999) / 1000
}

// Lessor holds the leases of one member. It is safe for concurrent use; the
// apply loop is its only writer of leases and attachments.
type Lessor struct {
	cfg Config

	mu     sync.Mutex
	leases map[int64]*lease
	owner  map[string]int64 // attached key → its lease
	// primary is set between Promote and Demote; demoted is closed by Demote,
	// so a renew waiting for a revoke learns that it will not come from here.
	primary bool
	demoted chan struct{}
	due     dueQueue
}

type lease struct {
	id, ttl int64
	keys    map[string]struct{}
	// deadline is when the lease expires; zero on a Lessor that is not primary.
	deadline time.Time
	// due is when Expired next looks at the lease: its deadline, then again
	// every RetryInterval while its revoke is pending.
	due     time.Time
	qi      int // index in the due queue, -1 when not queued
	revoked chan struct{}
}

// New returns an empty Lessor that is not primary.
func New(cfg Config) *Lessor {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = 3 * time.Second
	}
	return &Lessor{cfg: cfg, leases: map[int64]*lease{}, owner: map[string]int64{}, demoted: closedChan()}
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// CheckGrant validates a grant against the current leases and returns the TTL
// the lease would get. The apply loop calls it right before Grant, so the
// answer holds.
func (le *Lessor) CheckGrant(id, ttl int64) (int64, error) {
	if id == 0 {
		return 0, ErrNotFound // etcd's answer to the reserved "no lease" ID
	}
	if ttl > MaxTTL {
		return 0, ErrTTLTooLarge
	}
	le.mu.Lock()
	defer le.mu.Unlock()
	if _, ok := le.leases[id]; ok {
		return 0, ErrExists
	}
	return max(ttl, le.cfg.MinTTL), nil
}

// Grant adds lease id with ttl (as returned by CheckGrant). A primary Lessor
// starts its deadline now.
func (le *Lessor) Grant(id, ttl int64) {
	le.mu.Lock()
	defer le.mu.Unlock()
	l := &lease{id: id, ttl: ttl, keys: map[string]struct{}{}, qi: -1, revoked: make(chan struct{})}
	le.leases[id] = l
	if le.primary {
		le.refreshLocked(l, le.cfg.Now(), 0)
	}
}

// Revoke forgets lease id and its attachments; the caller deleted its keys.
func (le *Lessor) Revoke(id int64) {
	le.mu.Lock()
	defer le.mu.Unlock()
	l := le.leases[id]
	if l == nil {
		return
	}
	for k := range l.keys {
		delete(le.owner, k)
	}
	le.due.remove(l)
	delete(le.leases, id)
	close(l.revoked)
}

// LeaseExists reports whether lease id is granted and not revoked.
func (le *Lessor) LeaseExists(id int64) bool {
	le.mu.Lock()
	defer le.mu.Unlock()
	return le.leases[id] != nil
}

// Attach records that key now belongs to lease id (0: to no lease),
// detaching it from its previous lease. The store calls it for every put
// and delete it applies, in order. A lease that does not exist is ignored,
// as etcd does when it rebuilds attachments.
func (le *Lessor) Attach(key []byte, id int64) {
	le.mu.Lock()
	defer le.mu.Unlock()
	k := string(key)
	if old, ok := le.owner[k]; ok {
		if old == id {
			return
		}
		if l := le.leases[old]; l != nil {
			delete(l.keys, k)
		}
		delete(le.owner, k)
	}
	if l := le.leases[id]; l != nil {
		l.keys[k] = struct{}{}
		le.owner[k] = id
	}
}

// Keys returns the keys attached to lease id, sorted (the order in which a
// revoke deletes them on every member), or ErrNotFound.
func (le *Lessor) Keys(id int64) ([][]byte, error) {
	le.mu.Lock()
	defer le.mu.Unlock()
	l := le.leases[id]
	if l == nil {
		return nil, ErrNotFound
	}
	return sortedKeys(l), nil
}

func sortedKeys(l *lease) [][]byte {
	out := make([][]byte, 0, len(l.keys))
	for k := range l.keys {
		out = append(out, []byte(k))
	}
	slices.SortFunc(out, bytes.Compare)
	return out
}

// IDs lists the leases, by ID.
func (le *Lessor) IDs() []int64 {
	le.mu.Lock()
	defer le.mu.Unlock()
	out := make([]int64, 0, len(le.leases))
	for id := range le.leases {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// TTL is the granted TTL of lease id.
func (le *Lessor) TTL(id int64) (int64, bool) {
	le.mu.Lock()
	defer le.mu.Unlock()
	if l := le.leases[id]; l != nil {
		return l.ttl, true
	}
	return 0, false
}

// Reset replaces every lease by the given ones (ID → TTL) and attaches the
// keys that attach yields, for a member that rebuilds its state from a
// backend. A primary Lessor starts the new leases' deadlines afresh.
func (le *Lessor) Reset(ttls map[int64]int64, attach func(fn func(key []byte, id int64)) error) error {
	le.mu.Lock()
	le.leases, le.owner, le.due = map[int64]*lease{}, map[string]int64{}, nil
	now := le.cfg.Now()
	for id, ttl := range ttls {
		l := &lease{id: id, ttl: max(ttl, le.cfg.MinTTL), keys: map[string]struct{}{}, qi: -1, revoked: make(chan struct{})}
		le.leases[id] = l
		if le.primary {
			le.refreshLocked(l, now, 0)
		}
	}
	le.mu.Unlock()
	if attach == nil {
		return nil
	}
	return attach(le.Attach)
}

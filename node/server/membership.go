package server

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"sync"
)

// Member is one cluster member. The JSON form is etcd's: it is the context
// of membership conf changes and the body of the peer port's GET /members.
type Member struct {
	ID         uint64   `json:"id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs,omitempty"`
	IsLearner  bool     `json:"isLearner,omitempty"`
	// IsPromote marks a conf change context that promotes a learner.
	IsPromote bool `json:"isPromote,omitempty"`
}

func (m *Member) clone() *Member {
	c := *m
	c.PeerURLs = append([]string(nil), m.PeerURLs...)
	c.ClientURLs = append([]string(nil), m.ClientURLs...)
	return &c
}

// Buckets of the backend that hold the membership, so that it is part of
// every snapshot and of the consistent state after a crash.
var (
	bucketMembers        = []byte("members")
	bucketMembersRemoved = []byte("members_removed")
)

// membership is the cluster's member set, mirrored to the backend.
type membership struct {
	mu      sync.RWMutex
	members map[uint64]*Member
	removed map[uint64]bool
	store   kvBuckets
}

// kvBuckets is the part of the backend membership persists through.
type kvBuckets interface {
	Put(bucket, key, value []byte) error
	Delete(bucket, key []byte) error
	ForEach(bucket []byte, fn func(k, v []byte) error) error
}

func newMembership() *membership {
	return &membership{members: map[uint64]*Member{}, removed: map[uint64]bool{}}
}

// setStore points the membership at a (re)opened backend.
func (c *membership) setStore(store kvBuckets) {
	c.mu.Lock()
	c.store = store
	c.mu.Unlock()
}

// membershipSnapshot is the membership as carried in a raft snapshot's
// data. A restart rebuilds the membership from it and replays the conf
// changes after it, exactly as they were applied the first time.
type membershipSnapshot struct {
	Members []*Member `json:"members"`
	Removed []uint64  `json:"removed,omitempty"`
}

func (c *membership) marshalSnapshot() ([]byte, error) {
	snap := membershipSnapshot{Members: c.list()}
	c.mu.RLock()
	for id := range c.removed {
		snap.Removed = append(snap.Removed, id)
	}
	c.mu.RUnlock()
	sort.Slice(snap.Removed, func(i, j int) bool { return snap.Removed[i] < snap.Removed[j] })
	return json.Marshal(snap)
}

// restoreSnapshot replaces the in-memory membership with a snapshot's; the
// backend already holds the same state.
func (c *membership) restoreSnapshot(data []byte) error {
	var snap membershipSnapshot
	if len(data) > 0 {
		if err := json.Unmarshal(data, &snap); err != nil {
			return fmt.Errorf("snapshot carries unreadable membership: %w", err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.members = map[uint64]*Member{}
	c.removed = map[uint64]bool{}
	for _, m := range snap.Members {
		c.members[m.ID] = m
	}
	for _, id := range snap.Removed {
		c.removed[id] = true
	}
	return nil
}

// load reads the membership the backend holds (after a database from the
// leader was installed).
func (c *membership) load() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.members = map[uint64]*Member{}
	c.removed = map[uint64]bool{}
	if err := c.store.ForEach(bucketMembers, func(_, v []byte) error {
		var m Member
		if err := json.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("corrupt member record %q: %w", v, err)
		}
		c.members[m.ID] = &m
		return nil
	}); err != nil {
		return err
	}
	return c.store.ForEach(bucketMembersRemoved, func(k, _ []byte) error {
		id, err := strconv.ParseUint(string(k), 16, 64)
		if err != nil {
			return fmt.Errorf("corrupt removed-member record %q", k)
		}
		c.removed[id] = true
		return nil
	})
}

func idKey(id uint64) []byte { return []byte(strconv.FormatUint(id, 16)) }

func (c *membership) persist(m *Member) error {
	v, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return c.store.Put(bucketMembers, idKey(m.ID), v)
}

// add inserts or replaces a member; re-applying the same add after a
// restart is harmless.
func (c *membership) add(m *Member) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	m = m.clone()
	m.IsPromote = false
	if old, ok := c.members[m.ID]; ok && m.Name == "" {
		m.Name, m.ClientURLs = old.Name, old.ClientURLs
	}
	c.members[m.ID] = m
	return c.persist(m)
}

func (c *membership) remove(id uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.members, id)
	c.removed[id] = true
	if err := c.store.Delete(bucketMembers, idKey(id)); err != nil {
		return err
	}
	return c.store.Put(bucketMembersRemoved, idKey(id), []byte("removed"))
}

func (c *membership) update(id uint64, fn func(m *Member)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.members[id]
	if !ok {
		return nil // removed meanwhile; the entry is a no-op like etcd's
	}
	m = m.clone()
	fn(m)
	c.members[id] = m
	return c.persist(m)
}

func (c *membership) get(id uint64) *Member {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if m, ok := c.members[id]; ok {
		return m.clone()
	}
	return nil
}

func (c *membership) isRemoved(id uint64) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.removed[id]
}

// list returns the members sorted by ID.
func (c *membership) list() []*Member {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]*Member, 0, len(c.members))
	for _, m := range c.members {
		out = append(out, m.clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (c *membership) voters() []*Member {
	var out []*Member
	for _, m := range c.list() {
		if !m.IsLearner {
			out = append(out, m)
		}
	}
	return out
}

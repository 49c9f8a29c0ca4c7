package lease

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// clock is a manual clock for the deadline tests: nothing sleeps.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newTestLessor(t *testing.T) (*Lessor, *clock) {
	t.Helper()
	c := &clock{now: time.Unix(1000, 0)}
	return New(Config{MinTTL: 2, Now: c.Now, RetryInterval: 3 * time.Second}), c
}

func grant(t *testing.T, le *Lessor, id, ttl int64) {
	t.Helper()
	ttl, err := le.CheckGrant(id, ttl)
	if err != nil {
		t.Fatal(err)
	}
	le.Grant(id, ttl)
}

func TestMinTTL(t *testing.T) {
	for _, c := range []struct {
		hb, el uint
		want   int64
	}{
		{100, 1000, 2}, // etcd's defaults: 15 ticks of 100ms = 1.5s, rounded up
		{50, 250, 1},   // 7 ticks of 50ms = 350ms
		{100, 5000, 8}, // 75 ticks = 7.5s
		{10, 100, 1},
		{250, 1250, 2}, // 7 ticks (integer 15/2) of 250ms = 1.75s
	} {
		if got := MinTTL(c.hb, c.el); got != c.want {
			t.Errorf("MinTTL(%d, %d) = %d, want %d", c.hb, c.el, got, c.want)
		}
	}
}

func TestCheckGrant(t *testing.T) {
	le, _ := newTestLessor(t)
	if ttl, err := le.CheckGrant(1, 1); err != nil || ttl != 2 {
		t.Fatalf("short TTL: %d, %v; want the minimum 2", ttl, err)
	}
	if _, err := le.CheckGrant(1, MaxTTL+1); !errors.Is(err, ErrTTLTooLarge) {
		t.Fatalf("huge TTL: %v", err)
	}
	if ttl, err := le.CheckGrant(1, MaxTTL); err != nil || ttl != MaxTTL {
		t.Fatalf("max TTL: %d, %v", ttl, err)
	}
	if _, err := le.CheckGrant(0, 10); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ID 0: %v", err)
	}
	grant(t, le, 1, 10)
	if _, err := le.CheckGrant(1, 10); !errors.Is(err, ErrExists) {
		t.Fatalf("existing ID: %v", err)
	}
}

func TestFollowerNeverExpires(t *testing.T) {
	le, c := newTestLessor(t)
	grant(t, le, 1, 2)
	c.advance(time.Hour)
	if got := le.Expired(10); len(got) != 0 {
		t.Fatalf("a follower's lessor expired %v", got)
	}
	if _, err := le.Renew(context.Background(), 1); !errors.Is(err, ErrNotPrimary) {
		t.Fatalf("renew on a follower: %v", err)
	}
	if _, err := le.TimeToLive(1, false); !errors.Is(err, ErrNotPrimary) {
		t.Fatalf("time to live on a follower: %v", err)
	}
}

func TestPrimaryExpiresAtDeadline(t *testing.T) {
	le, c := newTestLessor(t)
	le.Promote(0)
	grant(t, le, 1, 5)
	grant(t, le, 2, 10)
	c.advance(5*time.Second - time.Millisecond)
	if got := le.Expired(10); len(got) != 0 {
		t.Fatalf("expired before the deadline: %v", got)
	}
	st, err := le.TimeToLive(1, false)
	if err != nil || st.TTL != 0 || st.GrantedTTL != 5 {
		t.Fatalf("time to live just before the deadline: %+v, %v", st, err)
	}
	c.advance(time.Millisecond)
	if got := le.Expired(10); !slices.Equal(got, []int64{1}) {
		t.Fatalf("at the deadline: %v, want [1]", got)
	}
	// Offered once, then again only after the retry interval if it is still there.
	if got := le.Expired(10); len(got) != 0 {
		t.Fatalf("offered twice: %v", got)
	}
	c.advance(3 * time.Second)
	if got := le.Expired(10); !slices.Equal(got, []int64{1}) {
		t.Fatalf("after the retry interval: %v, want [1]", got)
	}
	le.Revoke(1)
	c.advance(5 * time.Second)
	if got := le.Expired(10); !slices.Equal(got, []int64{2}) {
		t.Fatalf("after the revoke: %v, want [2]", got)
	}
}

func TestRenewPushesDeadline(t *testing.T) {
	le, c := newTestLessor(t)
	le.Promote(0)
	grant(t, le, 1, 4)
	for range 10 {
		c.advance(3 * time.Second)
		ttl, err := le.Renew(context.Background(), 1)
		if err != nil || ttl != 4 {
			t.Fatalf("renew: %d, %v", ttl, err)
		}
		if got := le.Expired(10); len(got) != 0 {
			t.Fatalf("renewed lease expired: %v", got)
		}
	}
	st, _ := le.TimeToLive(1, false)
	if st.TTL != 4 {
		t.Fatalf("remaining right after a renew: %d, want 4", st.TTL)
	}
	c.advance(4 * time.Second)
	if got := le.Expired(10); !slices.Equal(got, []int64{1}) {
		t.Fatalf("after the last renew's TTL: %v", got)
	}
	if _, err := le.Renew(context.Background(), 99); !errors.Is(err, ErrNotFound) {
		t.Fatalf("renew unknown: %v", err)
	}
}

// An expired lease is being revoked: a renew must not bring it back. It waits
// for the revoke, or for a demotion, as in etcd.
func TestRenewOfExpiredLeaseWaits(t *testing.T) {
	le, c := newTestLessor(t)
	le.Promote(0)
	grant(t, le, 1, 2)
	grant(t, le, 2, 2)
	c.advance(2 * time.Second)

	done := make(chan error, 1)
	go func() { _, err := le.Renew(context.Background(), 1); done <- err }()
	le.Revoke(1)
	if err := <-done; !errors.Is(err, ErrNotFound) {
		t.Fatalf("renew racing a revoke: %v, want not found", err)
	}

	go func() { _, err := le.Renew(context.Background(), 2); done <- err }()
	le.Demote()
	if err := <-done; !errors.Is(err, ErrNotPrimary) {
		t.Fatalf("renew racing a demotion: %v, want not primary", err)
	}

	le.Promote(0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := le.Renew(ctx, 2); err != nil {
		t.Fatalf("after a new promotion the lease has a fresh deadline: %v", err)
	}
}

// A new leader starts every deadline afresh with the extension, however
// close to expiry the lease was on the old leader: a leader change never
// expires a lease early.
func TestPromoteRestartsDeadlines(t *testing.T) {
	le, c := newTestLessor(t)
	le.Promote(0)
	grant(t, le, 1, 10)
	c.advance(9 * time.Second)
	le.Demote()
	c.advance(5 * time.Second) // the election
	if got := le.Expired(10); len(got) != 0 {
		t.Fatalf("a demoted lessor expired %v", got)
	}
	le.Promote(time.Second)
	c.advance(11*time.Second - time.Millisecond)
	if got := le.Expired(10); len(got) != 0 {
		t.Fatalf("expired before TTL + extension after the promotion: %v", got)
	}
	c.advance(time.Millisecond)
	if got := le.Expired(10); !slices.Equal(got, []int64{1}) {
		t.Fatalf("after TTL + extension: %v", got)
	}
}

func TestExpiredIsBoundedAndOrdered(t *testing.T) {
	le, c := newTestLessor(t)
	le.Promote(0)
	for id := int64(1); id <= 10; id++ {
		grant(t, le, id, 20-id) // id 10 expires first
	}
	c.advance(time.Minute)
	if got := le.Expired(3); !slices.Equal(got, []int64{10, 9, 8}) {
		t.Fatalf("first batch %v, want the 3 earliest", got)
	}
	if got := le.Expired(100); len(got) != 7 {
		t.Fatalf("second batch %v, want the other 7", got)
	}
}

func TestAttachments(t *testing.T) {
	le, _ := newTestLessor(t)
	grant(t, le, 1, 10)
	grant(t, le, 2, 10)
	le.Attach([]byte("b"), 1)
	le.Attach([]byte("a"), 1)
	le.Attach([]byte("c"), 1)
	le.Attach([]byte("c"), 2) // moved to another lease
	le.Attach([]byte("a"), 0) // deleted or put without a lease
	le.Attach([]byte("z"), 7) // unknown lease: ignored
	keys, err := le.Keys(1)
	if err != nil || len(keys) != 1 || string(keys[0]) != "b" {
		t.Fatalf("lease 1 keys %q, %v; want [b]", keys, err)
	}
	if keys, _ := le.Keys(2); len(keys) != 1 || string(keys[0]) != "c" {
		t.Fatalf("lease 2 keys %q; want [c]", keys)
	}
	le.Revoke(2)
	le.Attach([]byte("c"), 1) // the revoke forgot c's old owner
	if keys, _ := le.Keys(1); len(keys) != 2 {
		t.Fatalf("lease 1 keys %q; want [b c]", keys)
	}
	if _, err := le.Keys(2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("keys of a revoked lease: %v", err)
	}
	if got := le.IDs(); !slices.Equal(got, []int64{1}) {
		t.Fatalf("IDs %v", got)
	}
}

func TestResetRebuilds(t *testing.T) {
	le, c := newTestLessor(t)
	le.Promote(0)
	grant(t, le, 1, 10)
	le.Attach([]byte("old"), 1)
	err := le.Reset(map[int64]int64{5: 1, 6: 30}, func(fn func([]byte, int64)) error {
		fn([]byte("k"), 6)
		fn([]byte("orphan"), 9)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if le.LeaseExists(1) {
		t.Fatal("lease 1 survived the reset")
	}
	if ttl, _ := le.TTL(5); ttl != 2 {
		t.Fatalf("stored TTL 1 below the minimum: got %d, want 2", ttl)
	}
	if keys, _ := le.Keys(6); len(keys) != 1 || string(keys[0]) != "k" {
		t.Fatalf("lease 6 keys %q", keys)
	}
	c.advance(2 * time.Second)
	if got := le.Expired(10); !slices.Equal(got, []int64{5}) {
		t.Fatalf("a primary tracks the rebuilt leases: %v", got)
	}
}

package peer

import (
	"bytes"
	"context"
	"errors"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// fakeLeases knows lease 7 (TTL 5, key "k") and refuses everything while
// notLeader is set, like a member that lost leadership.
type fakeLeases struct{ notLeader bool }

var errNotLeader = errors.New("not the leader")

func (f *fakeLeases) RenewLease(_ context.Context, id int64) (int64, error) {
	switch {
	case f.notLeader:
		return -1, errNotLeader
	case id != 7:
		return -1, ErrLeaseNotFound
	}
	return 5, nil
}

func (f *fakeLeases) LeaseTimeToLive(_ context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	switch {
	case f.notLeader:
		return nil, errNotLeader
	case r.ID != 7:
		return nil, ErrLeaseNotFound
	}
	resp := &pb.LeaseTimeToLiveResponse{ID: 7, TTL: 3, GrantedTTL: 5}
	if r.Keys {
		resp.Keys = [][]byte{[]byte("k")}
	}
	return resp, nil
}

// TestLeaseForwarding: keep-alives and time-to-live requests reach the
// leader's lessor, an unknown lease comes back as ErrLeaseNotFound (and only
// the leader's own answer does), other refusals as errors to retry on, and
// requests from another cluster are refused.
func TestLeaseForwarding(t *testing.T) {
	fl := &fakeLeases{}
	leader := startNode(t, 1, 0xabc, "127.0.0.1:0", func(c *Config) { c.Leases = fl })
	ctx := context.Background()
	cl := plainClient()

	if ttl, err := RenewLease(ctx, cl, leader.url, 0xabc, 2, 7); err != nil || ttl != 5 {
		t.Fatalf("renew: %d, %v", ttl, err)
	}
	if _, err := RenewLease(ctx, cl, leader.url, 0xabc, 2, 8); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("renew unknown: %v", err)
	}
	resp, err := LeaseTimeToLive(ctx, cl, leader.url, 0xabc, 2, &pb.LeaseTimeToLiveRequest{ID: 7, Keys: true})
	if err != nil || resp.TTL != 3 || resp.GrantedTTL != 5 || len(resp.Keys) != 1 || !bytes.Equal(resp.Keys[0], []byte("k")) {
		t.Fatalf("time to live: %v, %v", resp, err)
	}
	if _, err := LeaseTimeToLive(ctx, cl, leader.url, 0xabc, 2, &pb.LeaseTimeToLiveRequest{ID: 8}); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("time to live unknown: %v", err)
	}

	fl.notLeader = true
	if _, err := RenewLease(ctx, cl, leader.url, 0xabc, 2, 7); err == nil || errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("renew on a member that is not the leader: %v", err)
	}
	fl.notLeader = false
	if _, err := RenewLease(ctx, cl, leader.url, 0xdef, 2, 7); err == nil || errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("renew from another cluster: %v", err)
	}

	// A peer port without lease paths answers 404 too: not a missing lease.
	other := startNode(t, 3, 0xabc, "127.0.0.1:0")
	if _, err := RenewLease(ctx, cl, other.url+"/nowhere", 0xabc, 2, 7); err == nil || errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("renew at an unknown path: %v", err)
	}
	if _, err := RenewLease(ctx, cl, other.url, 0xabc, 2, 7); err == nil || errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("renew at a member without leases: %v", err)
	}
	if _, err := RenewLease(ctx, cl, "ftp://x", 0xabc, 2, 7); err == nil {
		t.Fatal("a bad peer URL was accepted")
	}
}

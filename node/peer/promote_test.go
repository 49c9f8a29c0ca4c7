package peer

import (
	"context"
	"errors"
	"net/http"
	"testing"
)

// TestPromoteForwarding: a forwarded promote reaches the leader's raft
// side, its refusal comes back with status and etcd's message, and a
// request from another cluster is refused before it gets there.
func TestPromoteForwarding(t *testing.T) {
	leader := startNode(t, 1, 0xabc, "127.0.0.1:0")
	var got []uint64
	leader.raft.promote = func(id uint64) error {
		got = append(got, id)
		if id == 0x99 {
			return &PromoteError{Status: http.StatusPreconditionFailed, Message: "etcdserver: can only promote a learner member which is in sync with leader"}
		}
		return nil
	}
	ctx := context.Background()
	if err := PromoteMember(ctx, plainClient(), leader.url, 0xabc, 2, 0x42); err != nil {
		t.Fatalf("promote: %v", err)
	}
	err := PromoteMember(ctx, plainClient(), leader.url, 0xabc, 2, 0x99)
	var pe *PromoteError
	if !errors.As(err, &pe) || pe.Status != http.StatusPreconditionFailed || pe.Message != "etcdserver: can only promote a learner member which is in sync with leader" {
		t.Fatalf("refused promote: %v", err)
	}
	err = PromoteMember(ctx, plainClient(), leader.url, 0xdef, 2, 0x42)
	if !errors.As(err, &pe) || pe.Status != http.StatusPreconditionFailed || pe.Message != "cluster ID mismatch" {
		t.Fatalf("promote from another cluster: %v", err)
	}
	if len(got) != 2 || got[0] != 0x42 || got[1] != 0x99 {
		t.Fatalf("promotions seen by the leader: %x", got)
	}
	if err := PromoteMember(ctx, plainClient(), "ftp://x", 0xabc, 2, 0x42); err == nil {
		t.Fatal("a bad peer URL was accepted")
	}
}

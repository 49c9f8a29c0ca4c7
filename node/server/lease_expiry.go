package server

import (
	"context"
	"errors"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"

	"etcdctl-wizard/node/lease"
)

// etcd's pace for expiring leases: look every 500ms, propose at most
// leaseRevokeRate revokes a second, at most maxPendingRevokes at a time, so
// that a mass expiry does not flood raft and the clients' writes.
const (
	leaseExpiryInterval = 500 * time.Millisecond
	leaseRevokeRate     = 1000
	maxPendingRevokes   = 16
)

// expireLeases is the leader's expiry loop: it proposes a revoke for each
// lease past its deadline. Only a primary lessor reports any, so followers
// and a leader still applying its predecessors' entries never expire one.
func (s *Server) expireLeases() {
	tick := time.NewTicker(leaseExpiryInterval)
	defer tick.Stop()
	pending := make(chan struct{}, maxPendingRevokes)
	for {
		select {
		case <-tick.C:
		case <-s.stopc:
			return
		}
		if s.lead.Load() != s.id {
			continue
		}
		ids := s.lessor.Expired(leaseRevokeRate * int(leaseExpiryInterval) / int(time.Second))
		if len(ids) == 0 || !s.confirmLeadership() {
			// Unrevoked leases are offered again after the lessor's retry interval.
			continue
		}
		for _, id := range ids {
			select {
			case pending <- struct{}{}:
			case <-s.stopc:
				return
			}
			go func() {
				defer func() { <-pending }()
				s.revokeExpired(id)
			}()
		}
	}
}

// confirmLeadership makes sure this member still leads before it revokes:
// a leader stuck (e.g. on a slow disk) may not know yet that another one
// was elected, and its proposals would be forwarded to it (etcd #15247).
func (s *Server) confirmLeadership() bool {
	ctx, cancel := context.WithTimeout(context.Background(), s.requestTimeout())
	defer cancel()
	if err := s.reads.wait(ctx); err != nil {
		s.lg.Warn("not revoking expired leases: cannot confirm leadership", zap.Error(err))
		return false
	}
	return s.lead.Load() == s.id && s.lessor.Primary()
}

func (s *Server) revokeExpired(id int64) {
	// The member revokes with root's rights (etcd's WithRoot), whoever
	// attached the keys.
	ctx, cancel := context.WithTimeout(AsInternal(context.Background()), s.requestTimeout())
	defer cancel()
	_, err := s.LeaseRevoke(ctx, &pb.LeaseRevokeRequest{ID: id})
	switch {
	case err == nil:
		s.lg.Debug("revoked an expired lease", zap.String("lease-id", leaseHex(id)))
	case errors.Is(err, lease.ErrNotFound):
		// Revoked by a client meanwhile.
	default:
		s.lg.Warn("failed to revoke an expired lease", zap.String("lease-id", leaseHex(id)), zap.Error(err))
	}
}

func leaseHex(id int64) string { return idHex(uint64(id)) }

package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"etcdctl-wizard/node/backend"
	"etcdctl-wizard/node/lease"
	"etcdctl-wizard/node/mvcc"
	"etcdctl-wizard/node/peer"
)

// Leases, as in etcd: grants and revokes are raft entries (applied below on
// every member, persisted with the entry's index); renewals and time-to-live
// answers are the leader's, and a follower forwards them to the leader's
// peer port (peer/lease.go). The leader's expiry loop is in lease_expiry.go.

// leaseRetryWait spaces the attempts of a forwarded lease request while the
// leadership moves (etcd waits 50ms too).
const leaseRetryWait = 50 * time.Millisecond

// errLeaderUnknown: the leader is not (yet) in this member's membership.
var errLeaderUnknown = errors.New("the leader is not a known member")

func (s *Server) newLessor() {
	s.lessor = lease.New(lease.Config{MinTTL: lease.MinTTL(s.cfg.HeartbeatMs, s.cfg.ElectionMs)})
}

// recoverLeases rebuilds the lessor from a freshly opened backend and store
// (start, restart, snapshot install) and hooks it to the store.
func (s *Server) recoverLeases(b *backend.Backend, kv *mvcc.Store) error {
	ttls, err := lease.Load(b)
	if err != nil {
		return err
	}
	if err := s.lessor.Reset(ttls, kv.LeasedKeys); err != nil {
		return fmt.Errorf("rebuilding the lease attachments: %w", err)
	}
	kv.Leases = s.lessor
	return nil
}

// LeaseGrant grants a lease through raft; ID 0 asks for a generated ID.
func (s *Server) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	if err := s.RequireAuth(ctx); err != nil {
		return nil, err
	}
	if r.TTL > lease.MaxTTL {
		return nil, lease.ErrTTLTooLarge
	}
	for r.ID == 0 {
		r.ID = int64(s.reqIDs.id() & (1<<63 - 1)) // positive IDs only, as etcd
	}
	resp, err := s.propose(ctx, &pb.InternalRaftRequest{LeaseGrant: r})
	if err != nil {
		return nil, err
	}
	g := resp.(*pb.LeaseGrantResponse)
	g.Header = s.Header(g.Header)
	return g, nil
}

// LeaseRevoke revokes a lease and deletes its keys through raft.
func (s *Server) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	// The keys' permissions are checked at apply (checkApplyAuth).
	if err := s.RequireAuth(ctx); err != nil {
		return nil, err
	}
	resp, err := s.propose(ctx, &pb.InternalRaftRequest{LeaseRevoke: r})
	if err != nil {
		return nil, err
	}
	rv := resp.(*pb.LeaseRevokeResponse)
	rv.Header = s.Header(rv.Header)
	return rv, nil
}

// LeaseLeases lists the leases this member knows: every applied grant not
// yet revoked, as in etcd (no forwarding, no read barrier). With auth, every
// key of every lease must be readable, unless the user is root.
func (s *Server) LeaseLeases(ctx context.Context) (*pb.LeaseLeasesResponse, error) {
	ids := s.lessor.IDs()
	if err := s.checkLeasesReadable(ctx, ids...); err != nil {
		return nil, err
	}
	out := make([]*pb.LeaseStatus, len(ids))
	for i, id := range ids {
		out[i] = &pb.LeaseStatus{ID: id}
	}
	return &pb.LeaseLeasesResponse{Header: s.Header(nil), Leases: out}, nil
}

// applyLeaseGrant records a grant in the batch of its entry. A replayed
// entry that the backend already holds is not granted again in memory: the
// lessor was rebuilt from that backend.
func (s *Server) applyLeaseGrant(idx mvcc.Index, kv *mvcc.Store, r *pb.LeaseGrantRequest) applyResult {
	ttl, err := s.lessor.CheckGrant(r.ID, r.TTL)
	if err != nil {
		_ = s.setConsistentIndex(idx)
		return applyResult{err: err}
	}
	applied, err := kv.Update(idx, func(tx *backend.WriteTx) error { return lease.Put(tx, r.ID, ttl) })
	if err != nil {
		return applyResult{err: err}
	}
	if applied {
		s.lessor.Grant(r.ID, ttl)
	}
	return applyResult{resp: &pb.LeaseGrantResponse{Header: &pb.ResponseHeader{Revision: kv.Rev()}, ID: r.ID, TTL: ttl}}
}

// applyLeaseRevoke deletes the lease's keys at one revision and the lease
// record in the same batch, then forgets the lease.
func (s *Server) applyLeaseRevoke(idx mvcc.Index, kv *mvcc.Store, r *pb.LeaseRevokeRequest) applyResult {
	keys, err := s.lessor.Keys(r.ID)
	if err != nil {
		_ = s.setConsistentIndex(idx)
		return applyResult{err: err}
	}
	rev, applied, err := kv.DeleteKeys(idx, keys, func(tx *backend.WriteTx) error { return lease.Delete(tx, r.ID) })
	if err != nil {
		return applyResult{err: err}
	}
	if applied {
		s.lessor.Revoke(r.ID)
	}
	return applyResult{resp: &pb.LeaseRevokeResponse{Header: &pb.ResponseHeader{Revision: rev}}}
}

// LeaseRenew renews a lease on the leader, forwarding it there from a
// follower, and returns its TTL (lease.ErrNotFound for an unknown lease).
func (s *Server) LeaseRenew(ctx context.Context, id int64) (int64, error) {
	// Checked here, on the member the client talks to: the keep-alive may
	// be forwarded to the leader, which sees no token. Every member knows
	// the lease's keys (attachments are applied everywhere).
	if err := s.checkLeaseRenew(ctx, id); err != nil {
		return -1, err
	}
	var ttl int64
	err := s.onLeader(ctx, func(ctx context.Context) (err error) {
		ttl, err = s.renewAsLeader(ctx, id)
		return err
	}, func(ctx context.Context, peerURL string) (err error) {
		ttl, err = peer.RenewLease(ctx, s.leaseClient, peerURL, s.clusterID.Load(), s.id, id)
		return err
	})
	return ttl, err
}

// LeaseTimeToLive answers from the leader, forwarding from a follower.
func (s *Server) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	if err := s.RequireAuth(ctx); err != nil {
		return nil, err
	}
	if r.Keys {
		if err := s.checkLeasesReadable(ctx, r.ID); err != nil {
			return nil, err
		}
	}
	var resp *pb.LeaseTimeToLiveResponse
	err := s.onLeader(ctx, func(ctx context.Context) (err error) {
		resp, err = s.timeToLiveAsLeader(ctx, r)
		return err
	}, func(ctx context.Context, peerURL string) (err error) {
		resp, err = peer.LeaseTimeToLive(ctx, s.leaseClient, peerURL, s.clusterID.Load(), s.id, r)
		return err
	})
	if err != nil {
		return nil, err
	}
	resp.Header = s.Header(nil)
	return resp, nil
}

// onLeader runs local when this member is the leader, else forward with each
// of the leader's peer URLs, until one answers or the lease is not found. A
// leader change, a leader that has not yet applied its predecessors' entries
// or an unreachable leader is retried until the request times out.
func (s *Server) onLeader(ctx context.Context, local func(context.Context) error, forward func(context.Context, string) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.requestTimeout())
	defer cancel()
	for {
		if err := s.waitLeader(ctx); err != nil {
			return err
		}
		err := errLeaderUnknown
		if lead := s.lead.Load(); lead == s.id {
			err = local(ctx)
		} else if m := s.cluster.get(lead); m != nil {
			for _, u := range m.PeerURLs {
				if err = forward(ctx, u); err == nil || errors.Is(err, peer.ErrLeaseNotFound) {
					break
				}
			}
		}
		switch {
		case err == nil:
			return nil
		case errors.Is(err, lease.ErrNotFound), errors.Is(err, peer.ErrLeaseNotFound):
			return lease.ErrNotFound
		}
		select {
		case <-time.After(leaseRetryWait):
		case <-ctx.Done():
			return toGRPC(ctx.Err())
		case <-s.stopc:
			return rpctypes.ErrGRPCStopped
		}
	}
}

// waitApplied waits until everything committed so far is applied, so that a
// grant acknowledged before a renew is known to the lessor (etcd's
// waitAppliedIndex).
func (s *Server) waitApplied(ctx context.Context) error {
	select {
	case <-s.applyWait.wait(s.committed.Load()):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.stopc:
		return ErrStopped
	}
}

func (s *Server) renewAsLeader(ctx context.Context, id int64) (int64, error) {
	if err := s.waitApplied(ctx); err != nil {
		return -1, err
	}
	return s.lessor.Renew(ctx, id)
}

func (s *Server) timeToLiveAsLeader(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	if err := s.waitApplied(ctx); err != nil {
		return nil, err
	}
	st, err := s.lessor.TimeToLive(r.ID, r.Keys)
	if err != nil {
		return nil, err
	}
	return &pb.LeaseTimeToLiveResponse{ID: st.ID, TTL: st.TTL, GrantedTTL: st.GrantedTTL, Keys: st.Keys}, nil
}

// leasePeer serves the lease requests other members forward to this one
// (peer.Leases). It answers only as the leader and never forwards again.
type leasePeer Server

func (p *leasePeer) RenewLease(ctx context.Context, id int64) (int64, error) {
	s := (*Server)(p)
	if s.lead.Load() != s.id {
		return -1, rpctypes.ErrGRPCNotLeader
	}
	ttl, err := s.renewAsLeader(ctx, id)
	return ttl, toPeerLeaseError(err)
}

func (p *leasePeer) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	s := (*Server)(p)
	if s.lead.Load() != s.id {
		return nil, rpctypes.ErrGRPCNotLeader
	}
	resp, err := s.timeToLiveAsLeader(ctx, r)
	return resp, toPeerLeaseError(err)
}

func toPeerLeaseError(err error) error {
	if errors.Is(err, lease.ErrNotFound) {
		return peer.ErrLeaseNotFound
	}
	return err
}

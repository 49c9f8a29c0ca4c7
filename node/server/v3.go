package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"etcdctl-wizard/node/auth"
	"etcdctl-wizard/node/config"
	"etcdctl-wizard/node/mvcc"
	"etcdctl-wizard/node/peer"
	"etcdctl-wizard/node/version"
)

// maxGapBetweenApplyAndCommit bounds how far proposals may run ahead of
// the apply; beyond it clients get "too many requests", as from etcd.
const maxGapBetweenApplyAndCommit = 5000

// Header fills a response header the way etcd does.
func (s *Server) Header(h *pb.ResponseHeader) *pb.ResponseHeader {
	if h == nil {
		h = &pb.ResponseHeader{}
	}
	h.ClusterId = s.ClusterID()
	h.MemberId = s.id
	h.RaftTerm = s.term.Load()
	if h.Revision == 0 {
		s.kvMu.RLock()
		h.Revision = s.kv.Rev()
		s.kvMu.RUnlock()
	}
	return h
}

// Range reads keys; linearizable unless the request is serializable.
func (s *Server) Range(ctx context.Context, req *pb.RangeRequest) (*pb.RangeResponse, error) {
	if err := mvcc.CheckRange(req); err != nil {
		return nil, mvcc.ToGRPCError(err)
	}
	if !req.GetSerializable() {
		if err := s.reads.wait(ctx); err != nil {
			return nil, toGRPC(err)
		}
	}
	ai, err := s.infoOrEmpty(ctx)
	if err == nil {
		err = s.auth.IsRangePermitted(ai, req.GetKey(), req.GetRangeEnd())
	}
	if err != nil {
		return nil, auth.ToGRPCError(err)
	}
	s.kvMu.RLock()
	resp, err := s.kv.Range(req)
	s.kvMu.RUnlock()
	if err != nil {
		return nil, mvcc.ToGRPCError(err)
	}
	// A permission change during the read: refused, as etcd's doSerialize.
	if ai.Revision != 0 && ai.Revision != s.auth.Revision() {
		return nil, rpctypes.ErrGRPCAuthOldRevision
	}
	resp.Header = s.Header(resp.Header)
	return resp, nil
}

// Put writes a key through raft.
func (s *Server) Put(ctx context.Context, req *pb.PutRequest) (*pb.PutResponse, error) {
	if err := mvcc.CheckPut(req); err != nil {
		return nil, mvcc.ToGRPCError(err)
	}
	resp, err := s.propose(ctx, &pb.InternalRaftRequest{Put: req})
	if err != nil {
		return nil, err
	}
	r := resp.(*pb.PutResponse)
	r.Header = s.Header(r.Header)
	return r, nil
}

// DeleteRange deletes keys through raft.
func (s *Server) DeleteRange(ctx context.Context, req *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	if err := mvcc.CheckDeleteRange(req); err != nil {
		return nil, mvcc.ToGRPCError(err)
	}
	resp, err := s.propose(ctx, &pb.InternalRaftRequest{DeleteRange: req})
	if err != nil {
		return nil, err
	}
	r := resp.(*pb.DeleteRangeResponse)
	r.Header = s.Header(r.Header)
	return r, nil
}

// Txn runs a transaction through raft.
func (s *Server) Txn(ctx context.Context, req *pb.TxnRequest) (*pb.TxnResponse, error) {
	// Rejected here too so a bad transaction fails fast instead of
	// taking a raft round trip; every member checks again at apply.
	if err := mvcc.CheckTxn(req, int(s.cfg.MaxTxnOps)); err != nil {
		return nil, mvcc.ToGRPCError(err)
	}
	resp, err := s.propose(ctx, &pb.InternalRaftRequest{Txn: req})
	if err != nil {
		return nil, err
	}
	r := resp.(*pb.TxnResponse)
	r.Header = s.Header(r.Header)
	return r, nil
}

// Compact compacts the key history through raft.
func (s *Server) Compact(ctx context.Context, req *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	resp, err := s.propose(ctx, &pb.InternalRaftRequest{Compaction: req})
	if err != nil {
		return nil, err
	}
	r := resp.(*pb.CompactionResponse)
	r.Header = s.Header(r.Header)
	return r, nil
}

func (s *Server) proposeMemberAttr(ctx context.Context, m *Member) error {
	_, err := s.propose(ctx, &pb.InternalRaftRequest{ClusterMemberAttrSet: &membershippb.ClusterMemberAttrSetRequest{
		Member_ID:        m.ID,
		MemberAttributes: &membershippb.Attributes{Name: m.Name, ClientUrls: m.ClientURLs},
	}})
	return err
}

// waitLeader gives an election in progress a chance before a request fails
// with "no leader".
func (s *Server) waitLeader(ctx context.Context) error {
	if s.lead.Load() != raft.None {
		return nil
	}
	deadline := time.NewTimer(2 * time.Duration(s.cfg.ElectionMs) * time.Millisecond)
	defer deadline.Stop()
	tick := time.NewTicker(time.Duration(s.cfg.HeartbeatMs) * time.Millisecond)
	defer tick.Stop()
	for s.lead.Load() == raft.None {
		select {
		case <-tick.C:
		case <-deadline.C:
			return rpctypes.ErrGRPCNoLeader
		case <-ctx.Done():
			return toGRPC(ctx.Err())
		case <-s.stopc:
			return rpctypes.ErrGRPCStopped
		}
	}
	return nil
}

// propose replicates a request and waits for its apply result.
func (s *Server) propose(ctx context.Context, r *pb.InternalRaftRequest) (proto.Message, error) {
	if s.committed.Load() > s.appliedIndex.Load()+maxGapBetweenApplyAndCommit {
		return nil, rpctypes.ErrGRPCRequestTooManyRequests
	}
	if err := s.waitLeader(ctx); err != nil {
		return nil, err
	}
	id := s.reqIDs.id()
	r.Header = &pb.RequestHeader{ID: id}
	// Who asks goes with the request, so that each member checks it at
	// apply; Authenticate is checked by its password instead.
	if r.Authenticate == nil {
		ai, err := s.authInfo(ctx)
		if err != nil {
			return nil, auth.ToGRPCError(err)
		}
		if ai != nil {
			r.Header.Username, r.Header.AuthRevision = ai.Username, ai.Revision
		}
	}
	data, err := proto.Marshal(r)
	if err != nil {
		return nil, err
	}
	if len(data) > int(s.cfg.MaxRequestBytes) {
		return nil, rpctypes.ErrGRPCRequestTooLarge
	}
	ch := s.waits.register(id)
	ctx, cancel := context.WithTimeout(ctx, s.requestTimeout())
	defer cancel()
	s.metrics.proposalsPending.Inc()
	defer s.metrics.proposalsPending.Dec()
	if err := s.node.Propose(ctx, data); err != nil {
		s.waits.cancel(id)
		s.metrics.proposalsFailed.Inc()
		if errors.Is(err, raft.ErrProposalDropped) {
			return nil, rpctypes.ErrGRPCNoLeader
		}
		return nil, toGRPC(err)
	}
	select {
	case res := <-ch:
		if res.err != nil {
			return nil, auth.ToGRPCError(mvcc.ToGRPCError(res.err))
		}
		return res.resp, nil
	case <-ctx.Done():
		s.waits.cancel(id)
		s.metrics.proposalsFailed.Inc()
		return nil, toGRPC(ctx.Err())
	case <-s.stopc:
		return nil, rpctypes.ErrGRPCStopped
	}
}

func toGRPC(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, errReadTimeout):
		return rpctypes.ErrGRPCTimeout
	case errors.Is(err, context.Canceled):
		return rpctypes.ErrGRPCCanceled
	case errors.Is(err, ErrStopped), errors.Is(err, raft.ErrStopped):
		return rpctypes.ErrGRPCStopped
	}
	return err
}

// Members returns the current membership.
func (s *Server) Members() []*Member { return s.cluster.list() }

// MemberList returns the membership; linearizable waits for a ReadIndex.
func (s *Server) MemberList(ctx context.Context, linearizable bool) ([]*Member, error) {
	if linearizable {
		if err := s.reads.wait(ctx); err != nil {
			return nil, toGRPC(err)
		}
	}
	return s.cluster.list(), nil
}

// MemberAdd adds a member (or learner) by runtime reconfiguration.
func (s *Server) MemberAdd(ctx context.Context, peerURLs []string, learner bool) (*Member, error) {
	urls, err := config.ParseURLs(strings.Join(peerURLs, ","))
	if err != nil || len(urls) == 0 {
		return nil, rpctypes.ErrGRPCMemberBadURLs
	}
	now := time.Now()
	m := &Member{ID: config.MemberID(config.URLStrings(urls), "", &now), PeerURLs: config.URLStrings(urls), IsLearner: learner}
	for _, x := range s.cluster.list() {
		for _, u := range x.PeerURLs {
			for _, nu := range m.PeerURLs {
				if u == nu {
					return nil, rpctypes.ErrGRPCPeerURLExist
				}
			}
		}
	}
	if learner {
		n := 0
		for _, x := range s.cluster.list() {
			if x.IsLearner {
				n++
			}
		}
		if n >= s.cfg.MaxLearners {
			return nil, rpctypes.ErrGRPCTooManyLearners
		}
	} else if s.cfg.StrictReconfigCheck {
		if err := s.checkCanAddVoter(); err != nil {
			return nil, err
		}
	}
	typ := raftpb.ConfChangeAddNode
	if learner {
		typ = raftpb.ConfChangeAddLearnerNode
	}
	if err := s.proposeConfChange(ctx, typ, m.ID, m); err != nil {
		return nil, err
	}
	return m, nil
}

// MemberRemove removes a member by runtime reconfiguration.
func (s *Server) MemberRemove(ctx context.Context, id uint64) error {
	m := s.cluster.get(id)
	if m == nil {
		return rpctypes.ErrGRPCMemberNotFound
	}
	if s.cfg.StrictReconfigCheck && !m.IsLearner {
		if err := s.checkCanRemoveVoter(id); err != nil {
			return err
		}
	}
	return s.proposeConfChange(ctx, raftpb.ConfChangeRemoveNode, id, &Member{ID: id})
}

// MemberUpdate changes a member's peer URLs.
func (s *Server) MemberUpdate(ctx context.Context, id uint64, peerURLs []string) error {
	urls, err := config.ParseURLs(strings.Join(peerURLs, ","))
	if err != nil || len(urls) == 0 {
		return rpctypes.ErrGRPCMemberBadURLs
	}
	if s.cluster.get(id) == nil {
		return rpctypes.ErrGRPCMemberNotFound
	}
	return s.proposeConfChange(ctx, raftpb.ConfChangeUpdateNode, id, &Member{ID: id, PeerURLs: config.URLStrings(urls)})
}

// MemberPromote makes an in-sync learner a voter. Only the leader knows
// whether the learner is in sync.
// MemberPromote promotes the learner id. Only the leader can (see
// peer/promote.go); a follower forwards the request to it.
func (s *Server) MemberPromote(ctx context.Context, id uint64) error {
	if err := s.waitLeader(ctx); err != nil {
		return err
	}
	if lead := s.lead.Load(); lead != s.id {
		return s.forwardPromote(ctx, lead, id)
	}
	return s.promoteAsLeader(ctx, id)
}

// forwardPromote asks the leader to promote id and turns its refusal back
// into etcd's error.
func (s *Server) forwardPromote(ctx context.Context, lead, id uint64) error {
	if _, err := s.promotable(id); err != nil {
		return err
	}
	leader := s.cluster.get(lead)
	if leader == nil {
		return rpctypes.ErrGRPCNotLeader
	}
	ctx, cancel := context.WithTimeout(ctx, s.requestTimeout())
	defer cancel()
	var errs []error
	for _, u := range leader.PeerURLs {
		err := peer.PromoteMember(ctx, s.peerClient(s.requestTimeout()), u, s.clusterID.Load(), s.id, id)
		var pe *peer.PromoteError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &pe):
			return promoteErrorFromText(pe.Message)
		}
		errs = append(errs, err)
	}
	return status.Errorf(codes.Unavailable, "forwarding the promote to the leader %s: %v", idHex(lead), errors.Join(errs...))
}

// promoteErrors are the etcd errors a promote can end with.
var promoteErrors = []error{rpctypes.ErrGRPCLearnerNotReady, rpctypes.ErrGRPCMemberNotLearner, rpctypes.ErrGRPCMemberNotFound, rpctypes.ErrGRPCNotLeader}

func promoteErrorFromText(msg string) error {
	for _, e := range promoteErrors {
		if rpctypes.ErrorDesc(e) == msg {
			return e
		}
	}
	return status.Error(codes.Unknown, msg)
}

// PromoteMember runs a promote forwarded by a follower.
func (r *raftAdapter) PromoteMember(ctx context.Context, id uint64) error {
	err := (*Server)(r).promoteAsLeader(ctx, id)
	if err == nil {
		return nil
	}
	code := http.StatusInternalServerError
	switch err {
	case rpctypes.ErrGRPCLearnerNotReady, rpctypes.ErrGRPCMemberNotLearner:
		code = http.StatusPreconditionFailed
	case rpctypes.ErrGRPCMemberNotFound:
		code = http.StatusNotFound
	case rpctypes.ErrGRPCNotLeader:
		code = http.StatusServiceUnavailable
	}
	return &peer.PromoteError{Status: code, Message: rpctypes.ErrorDesc(err)}
}

// promotable returns a copy of learner id, or the error for what no
// leader would promote.
func (s *Server) promotable(id uint64) (*Member, error) {
	m := s.cluster.get(id)
	if m == nil {
		return nil, rpctypes.ErrGRPCMemberNotFound
	}
	if !m.IsLearner {
		return nil, rpctypes.ErrGRPCMemberNotLearner
	}
	return m, nil
}

func (s *Server) promoteAsLeader(ctx context.Context, id uint64) error {
	m, err := s.promotable(id)
	if err != nil {
		return err
	}
	if s.lead.Load() != s.id {
		return rpctypes.ErrGRPCNotLeader
	}
	st := s.node.Status()
	leaderMatch := st.Progress[s.id].Match
	if pr, ok := st.Progress[id]; !ok || float64(pr.Match) < 0.9*float64(leaderMatch) {
		return rpctypes.ErrGRPCLearnerNotReady
	}
	m.IsPromote = true // on the copy get returned: the member changes when the conf change applies
	m.IsLearner = false
	return s.proposeConfChange(ctx, raftpb.ConfChangeAddNode, id, m)
}

func (s *Server) proposeConfChange(ctx context.Context, typ raftpb.ConfChangeType, nodeID uint64, m *Member) error {
	if err := s.waitLeader(ctx); err != nil {
		return err
	}
	ctxJSON, err := json.Marshal(m)
	if err != nil {
		return err
	}
	id := s.reqIDs.id()
	cc := &raftpb.ConfChange{Id: proto.Uint64(id), Type: &typ, NodeId: proto.Uint64(nodeID), Context: ctxJSON}
	ch := s.waits.register(id)
	ctx, cancel := context.WithTimeout(ctx, s.requestTimeout())
	defer cancel()
	if err := s.node.ProposeConfChange(ctx, cc); err != nil {
		s.waits.cancel(id)
		return toGRPC(err)
	}
	select {
	case res := <-ch:
		return res.err
	case <-ctx.Done():
		s.waits.cancel(id)
		return toGRPC(ctx.Err())
	case <-s.stopc:
		return rpctypes.ErrGRPCStopped
	}
}

// validateConfChange checks a conf change against the membership at the
// time it is applied.
func (s *Server) validateConfChange(cc *raftpb.ConfChange, m *Member) error {
	id := cc.GetNodeId()
	if s.cluster.isRemoved(id) {
		return rpctypes.ErrGRPCMemberNotFound
	}
	switch cc.GetType() {
	case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
		existing := s.cluster.get(id)
		if m.IsPromote {
			if existing == nil {
				return rpctypes.ErrGRPCMemberNotFound
			}
			if !existing.IsLearner {
				return rpctypes.ErrGRPCMemberNotLearner
			}
			return nil
		}
		if existing != nil && existing.Name != "" {
			return rpctypes.ErrGRPCMemberExist
		}
	case raftpb.ConfChangeRemoveNode, raftpb.ConfChangeUpdateNode:
		if s.cluster.get(id) == nil {
			return rpctypes.ErrGRPCMemberNotFound
		}
	}
	return nil
}

// checkCanAddVoter is etcd's strict reconfiguration check for adding a
// voter: the started voters must still be a quorum of the grown cluster.
func (s *Server) checkCanAddVoter() error {
	voters := s.cluster.voters()
	if len(voters) == 1 {
		return nil // growing from one member is always allowed
	}
	started := 0
	for _, v := range voters {
		if v.Name != "" {
			started++
		}
	}
	if started < (len(voters)+1)/2+1 {
		return rpctypes.ErrGRPCMemberNotEnoughStarted
	}
	if s.activeVoters(0) < (len(voters)+1)/2+1 {
		return rpctypes.ErrGRPCUnhealthy
	}
	return nil
}

func (s *Server) checkCanRemoveVoter(id uint64) error {
	voters := s.cluster.voters()
	remaining := len(voters) - 1
	started := 0
	for _, v := range voters {
		if v.ID != id && v.Name != "" {
			started++
		}
	}
	if started < remaining/2+1 {
		return rpctypes.ErrGRPCMemberNotEnoughStarted
	}
	if s.activeVoters(id) < remaining/2+1 {
		return rpctypes.ErrGRPCUnhealthy
	}
	return nil
}

// activeVoters counts voters this member is connected to (itself included),
// leaving out exclude.
func (s *Server) activeVoters(exclude uint64) int {
	n := 0
	for _, v := range s.cluster.voters() {
		if v.ID == exclude {
			continue
		}
		if v.ID == s.id || !s.transport.ActiveSince(v.ID).IsZero() {
			n++
		}
	}
	return n
}

// Status answers Maintenance.Status.
func (s *Server) Status() *pb.StatusResponse {
	s.kvMu.RLock()
	size, inUse := s.backend.SizeBytes(), s.backend.SizeInUseBytes()
	s.kvMu.RUnlock()
	me := s.cluster.get(s.id)
	quota := s.cfg.QuotaBackendBytes
	if quota <= 0 {
		quota = 2 << 30
	}
	return &pb.StatusResponse{
		Header:           s.Header(nil),
		Version:          version.Server,
		DbSize:           size,
		DbSizeInUse:      inUse,
		DbSizeQuota:      quota,
		Leader:           s.lead.Load(),
		RaftIndex:        s.committed.Load(),
		RaftTerm:         s.term.Load(),
		RaftAppliedIndex: s.appliedIndex.Load(),
		IsLearner:        me != nil && me.IsLearner,
		StorageVersion:   version.Storage,
	}
}

// WriteSnapshot writes a consistent copy of the database to w.
func (s *Server) WriteSnapshot(w io.Writer) (int64, error) {
	s.kvMu.RLock()
	defer s.kvMu.RUnlock()
	return s.backend.Snapshot(w)
}

// IsLearner reports whether this member is a learner.
func (s *Server) IsLearner() bool {
	m := s.cluster.get(s.id)
	return m != nil && m.IsLearner
}

// ServesClusterVersion reports whether the member knows the cluster it is
// in: published and with a leader.
func (s *Server) ServesClusterVersion() bool {
	select {
	case <-s.readyc:
		return true
	default:
		return false
	}
}

// MoveLeader hands leadership to the voting member target, as etcd's
// Maintenance.MoveLeader: only the leader can (etcdctl move-leader sends
// it there), and the call returns once target leads or the request
// timeout passed.
func (s *Server) MoveLeader(ctx context.Context, target uint64) error {
	if s.lead.Load() != s.id {
		return rpctypes.ErrGRPCNotLeader
	}
	m := s.cluster.get(target)
	if m == nil || m.IsLearner {
		return rpctypes.ErrGRPCBadLeaderTransferee
	}
	if target == s.id {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.requestTimeout())
	defer cancel()
	s.node.TransferLeadership(ctx, s.id, target)
	tick := time.NewTicker(time.Duration(s.cfg.HeartbeatMs) * time.Millisecond)
	defer tick.Stop()
	for s.lead.Load() != target {
		select {
		case <-tick.C:
		case <-ctx.Done():
			// etcd has no gRPC code for it: an unknown error with its text.
			return status.Error(codes.Unknown, "etcdserver: request timed out, leader transfer took too long")
		}
	}
	return nil
}

package server

import (
	"encoding/json"
	"fmt"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"etcdctl-wizard/node/mvcc"
)

// applyResult is what a proposal's waiter receives.
type applyResult struct {
	resp proto.Message
	err  error
}

func (s *Server) applyEntries(ents []*raftpb.Entry) error {
	for _, e := range ents {
		var err error
		switch e.GetType() {
		case raftpb.EntryNormal:
			err = s.applyNormal(e)
		case raftpb.EntryConfChange:
			err = s.applyConfChange(e)
		default:
			err = fmt.Errorf("unsupported raft entry type %v at index %d", e.GetType(), e.GetIndex())
		}
		if err != nil {
			return err
		}
		s.appliedTerm = e.GetTerm()
		s.appliedIndex.Store(e.GetIndex())
		s.metrics.proposalsApplied.Set(float64(e.GetIndex()))
		s.applyWait.trigger(e.GetIndex())
	}
	return nil
}

// applyNormal applies a client request. Entries at or below the backend's
// consistent index were applied before a restart: the store skips them, and
// their waiters are long gone.
func (s *Server) applyNormal(e *raftpb.Entry) error {
	idx := mvcc.Index{Index: e.GetIndex(), Term: e.GetTerm()}
	if len(e.GetData()) == 0 {
		// The empty entry a new leader appends. Once the leader applies its
		// own, it has applied every entry of the earlier terms and knows
		// every lease: it starts their deadlines afresh (etcd's lessor
		// Promote), with an election timeout of grace.
		if s.lead.Load() == s.id && e.GetTerm() == s.term.Load() {
			s.lessor.Promote(time.Duration(s.cfg.ElectionMs) * time.Millisecond)
		}
		return s.setConsistentIndex(idx)
	}
	var req pb.InternalRaftRequest
	if err := proto.Unmarshal(e.GetData(), &req); err != nil {
		return fmt.Errorf("undecodable raft entry at index %d: %w", e.GetIndex(), err)
	}
	id := req.GetHeader().GetID()
	if id == 0 {
		id = req.GetID()
	}
	res := s.applyRequest(idx, &req)
	s.waits.trigger(id, res)
	return nil
}

func (s *Server) setConsistentIndex(idx mvcc.Index) error {
	s.kvMu.RLock()
	defer s.kvMu.RUnlock()
	if ci, _ := s.backend.ConsistentIndex(); idx.Index <= ci {
		return nil
	}
	return s.backend.SetConsistentIndex(idx.Index, idx.Term)
}

func (s *Server) applyRequest(idx mvcc.Index, req *pb.InternalRaftRequest) applyResult {
	s.kvMu.RLock()
	kv := s.kv
	s.kvMu.RUnlock()
	var r applyResult
	if err := s.checkApplyAuth(req); err != nil {
		_ = s.setConsistentIndex(idx)
		return applyResult{err: err}
	}
	switch {
	case isAuthRequest(req):
		r = s.applyAuth(idx, kv, req)
	case req.Put != nil:
		r.resp, r.err = kv.Put(idx, req.Put)
	case req.DeleteRange != nil:
		r.resp, r.err = kv.DeleteRange(idx, req.DeleteRange)
	case req.Txn != nil:
		r.resp, r.err = kv.Txn(idx, req.Txn)
	case req.LeaseGrant != nil:
		r = s.applyLeaseGrant(idx, kv, req.LeaseGrant)
	case req.LeaseRevoke != nil:
		r = s.applyLeaseRevoke(idx, kv, req.LeaseRevoke)
	case req.Compaction != nil:
		r.resp, r.err = kv.Compact(idx, req.Compaction.GetRevision())
		if r.err == nil {
			s.lg.Info("finished scheduled compaction", zap.Int64("compact-revision", req.Compaction.GetRevision()))
		}
	case req.ClusterMemberAttrSet != nil:
		attr := req.ClusterMemberAttrSet
		r.err = s.cluster.update(attr.GetMember_ID(), func(m *Member) {
			m.Name = attr.GetMemberAttributes().GetName()
			m.ClientURLs = attr.GetMemberAttributes().GetClientUrls()
		})
		_ = s.setConsistentIndex(idx)
	default:
		r.err = fmt.Errorf("unsupported request in raft entry %d", idx.Index)
		_ = s.setConsistentIndex(idx)
	}
	return r
}

// applyConfChange applies a membership change to raft and to the member
// set. An invalid change (checked again here, since the state may have
// moved since it was proposed) is applied to raft as a no-op, like etcd.
func (s *Server) applyConfChange(e *raftpb.Entry) error {
	var cc raftpb.ConfChange
	if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
		return fmt.Errorf("undecodable conf change at index %d: %w", e.GetIndex(), err)
	}
	var m Member
	if len(cc.GetContext()) > 0 {
		if err := json.Unmarshal(cc.GetContext(), &m); err != nil {
			return fmt.Errorf("undecodable conf change context at index %d: %w", e.GetIndex(), err)
		}
	}
	verr := s.validateConfChange(&cc, &m)
	if verr != nil {
		cc.NodeId = proto.Uint64(0)
	}
	s.confState = s.node.ApplyConfChange(&cc)
	defer func() { _ = s.setConsistentIndex(mvcc.Index{Index: e.GetIndex(), Term: e.GetTerm()}) }()
	if verr != nil {
		s.waits.trigger(cc.GetId(), applyResult{err: verr})
		return nil
	}
	var err error
	switch cc.GetType() {
	case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
		if m.IsPromote {
			err = s.cluster.update(m.ID, func(x *Member) { x.IsLearner = false })
			s.lg.Info("promoted learner member", zap.String("promoted-member-id", idHex(m.ID)))
			break
		}
		m.IsLearner = cc.GetType() == raftpb.ConfChangeAddLearnerNode
		err = s.cluster.add(&m)
		if m.ID != s.id {
			s.transport.AddPeer(m.ID, m.PeerURLs)
		}
		s.lg.Info("added member", zap.String("added-peer-id", idHex(m.ID)), zap.Strings("added-peer-peer-urls", m.PeerURLs))
	case raftpb.ConfChangeRemoveNode:
		id := cc.GetNodeId()
		err = s.cluster.remove(id)
		if id == s.id {
			s.lg.Warn("the member has been permanently removed from the cluster")
			defer s.signalRemoved()
		} else {
			s.transport.RemovePeer(id)
		}
		s.lg.Info("removed member", zap.String("removed-member-id", idHex(id)))
	case raftpb.ConfChangeUpdateNode:
		err = s.cluster.update(m.ID, func(x *Member) { x.PeerURLs = m.PeerURLs })
		if m.ID != s.id {
			s.transport.UpdatePeer(m.ID, m.PeerURLs)
		}
	}
	s.waits.trigger(cc.GetId(), applyResult{err: err})
	return err
}

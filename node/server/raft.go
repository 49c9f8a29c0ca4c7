package server

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// run is the raft loop. It owns the WAL, the raft storage and the apply of
// committed entries, and follows raft's Ready contract: persist entries and
// hard state (one fdatasync per Ready), then send, then apply, then Advance.
// The leader sends before it persists (raft thesis §10.2.1); an entry is
// acknowledged to a client only after it is applied, which is after this
// member's own write, so every acknowledged write is on a durable majority.
func (s *Server) run() {
	defer close(s.donec)
	ticker := time.NewTicker(time.Duration(s.cfg.HeartbeatMs) * time.Millisecond)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			s.node.Tick()
		case rd := <-s.node.Ready():
			if err := s.handleReady(rd); err != nil {
				s.fatal(fmt.Sprintf("raft loop stopped: %v", err))
				return
			}
			s.node.Advance()
		case <-s.stopc:
			return
		}
	}
}

func (s *Server) handleReady(rd raft.Ready) error {
	if rd.SoftState != nil {
		s.updateLeader(rd.SoftState.Lead)
	}
	if rd.HardState != nil {
		s.term.Store(rd.HardState.GetTerm())
		s.committed.Store(rd.HardState.GetCommit())
	}
	for _, rs := range rd.ReadStates {
		s.reads.deliver(rs)
	}
	isLeader := s.lead.Load() == s.id
	if isLeader {
		s.transport.Send(s.prepareMessages(rd.Messages))
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := s.persistSnapshot(rd.Snapshot); err != nil {
			return err
		}
	}
	if err := s.wal.Save(rd.HardState, rd.Entries); err != nil {
		return fmt.Errorf("writing the WAL: %w", err)
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := s.storage.ApplySnapshot(rd.Snapshot); err != nil {
			return err
		}
		if err := s.restoreFromSnapshot(rd.Snapshot); err != nil {
			return err
		}
	}
	if err := s.storage.Append(rd.Entries); err != nil {
		return err
	}
	if !isLeader {
		s.transport.Send(s.prepareMessages(rd.Messages))
	}
	if err := s.applyEntries(rd.CommittedEntries); err != nil {
		return err
	}
	return s.maybeSnapshot()
}

func (s *Server) updateLeader(lead uint64) {
	old := s.lead.Swap(lead)
	if old == lead {
		return
	}
	s.metrics.isLeader.Set(boolFloat(lead == s.id))
	if old == s.id {
		// Only the leader tracks lease deadlines; the next one restarts them.
		s.lessor.Demote()
	}
	if lead == raft.None {
		s.metrics.hasLeader.Set(0)
		s.lg.Info("raft lost its leader", zap.String("local-member-id", idHex(s.id)), zap.Uint64("term", s.term.Load()))
		return
	}
	s.metrics.hasLeader.Set(1)
	s.metrics.leaderChanges.Inc()
	s.lg.Info("raft elected a leader", zap.String("local-member-id", idHex(s.id)), zap.String("leader", idHex(lead)), zap.Uint64("term", s.term.Load()))
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// prepareMessages turns raft's MsgSnap into one that carries the current
// database: see snapshotForPeer.
func (s *Server) prepareMessages(msgs []*raftpb.Message) []*raftpb.Message {
	for i, m := range msgs {
		if m.GetType() != raftpb.MsgSnap {
			continue
		}
		sm, err := s.snapshotForPeer(m)
		if err != nil {
			s.lg.Warn("cannot prepare a snapshot for a follower", zap.String("to", idHex(m.GetTo())), zap.Error(err))
			s.node.ReportSnapshot(m.GetTo(), raft.SnapshotFailure)
			msgs[i] = nil
			continue
		}
		msgs[i] = sm
	}
	out := msgs[:0]
	for _, m := range msgs {
		if m != nil {
			if m.GetTo() == s.id {
				continue
			}
			out = append(out, m)
		}
	}
	return out
}

// raftAdapter is what the peer transport delivers to.
type raftAdapter Server

func (r *raftAdapter) Process(ctx context.Context, m *raftpb.Message) error {
	s := (*Server)(r)
	if s.cluster.isRemoved(m.GetFrom()) {
		return fmt.Errorf("member %s was removed from the cluster", idHex(m.GetFrom()))
	}
	return s.node.Step(ctx, m)
}

func (r *raftAdapter) IsIDRemoved(id uint64) bool  { return (*Server)(r).cluster.isRemoved(id) }
func (r *raftAdapter) ReportUnreachable(id uint64) { (*Server)(r).node.ReportUnreachable(id) }
func (r *raftAdapter) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	s := (*Server)(r)
	s.node.ReportSnapshot(id, status)
}

func idHex(id uint64) string { return fmt.Sprintf("%x", id) }

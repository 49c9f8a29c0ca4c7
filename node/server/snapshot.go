package server

import (
	"etcdctl-wizard/node/fileutil"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"etcdctl-wizard/node/backend"
	"etcdctl-wizard/node/peer"
	"etcdctl-wizard/node/wal"
)

// receivedDBPath is where a snapshot database received from the leader
// waits until raft hands the snapshot to the loop.
func (s *Server) receivedDBPath(index uint64) string {
	return filepath.Join(s.cfg.SnapPath(), fmt.Sprintf("%016x.snap.db", index))
}

// maybeSnapshot writes a raft snapshot once --snapshot-count entries were
// applied since the last one, so the WAL and the in-memory log stay bounded.
func (s *Server) maybeSnapshot() error {
	applied := s.appliedIndex.Load()
	if applied-s.snapIndex <= s.cfg.SnapshotCount {
		return nil
	}
	return s.snapshot(applied)
}

func (s *Server) snapshot(applied uint64) error {
	// The database on disk must cover the snapshot before the WAL can
	// forget the entries below it.
	s.kvMu.RLock()
	err := s.backend.ForceCommit()
	s.kvMu.RUnlock()
	if err != nil {
		return fmt.Errorf("committing the backend for a snapshot: %w", err)
	}
	members, err := s.cluster.marshalSnapshot()
	if err != nil {
		return err
	}
	snap, err := s.storage.CreateSnapshot(applied, s.confState, members)
	if err != nil {
		if err == raft.ErrSnapOutOfDate {
			return nil
		}
		return err
	}
	if err := s.persistSnapshot(snap); err != nil {
		return err
	}
	s.snapIndex = applied
	// Some entries stay in the log so that a slightly lagging follower
	// catches up from entries rather than a whole database.
	if catchUp := s.cfg.SnapshotCatchUp; applied > catchUp {
		compactTo := applied - catchUp
		if err := s.storage.Compact(compactTo); err != nil && err != raft.ErrCompacted {
			return err
		}
	}
	if _, err := s.wal.PurgeBefore(applied); err != nil {
		s.lg.Warn("cannot purge old WAL segments", zap.Error(err))
	}
	if _, err := s.snapshotter.Purge(keepSnapshots); err != nil {
		s.lg.Warn("cannot purge old snapshot files", zap.Error(err))
	}
	s.lg.Info("saved snapshot", zap.Uint64("snapshot-index", applied))
	return nil
}

// keepSnapshots is how many .snap files stay on disk.
const keepSnapshots = 3

// persistSnapshot records a snapshot: the .snap file, then the WAL marker;
// a restart uses the newest snapshot that has a marker in the WAL.
func (s *Server) persistSnapshot(snap *raftpb.Snapshot) error {
	if err := s.snapshotter.SaveSnap(snap); err != nil {
		return fmt.Errorf("saving snapshot: %w", err)
	}
	md := snap.GetMetadata()
	return s.wal.SaveSnapshot(wal.Marker{Index: md.GetIndex(), Term: md.GetTerm(), ConfState: md.GetConfState()})
}

// restoreFromSnapshot swaps in the database received with a snapshot from
// the leader and reloads the membership it carries.
func (s *Server) restoreFromSnapshot(snap *raftpb.Snapshot) error {
	md := snap.GetMetadata()
	if err := s.reopenBackendWith(md.GetIndex()); err != nil {
		return err
	}
	s.snapIndex = md.GetIndex()
	s.confState = md.GetConfState()
	s.appliedTerm = md.GetTerm()
	s.appliedIndex.Store(md.GetIndex())
	s.applyWait.trigger(md.GetIndex())
	if err := s.cluster.load(); err != nil {
		return err
	}
	for _, m := range s.cluster.list() {
		if m.ID != s.id {
			s.transport.AddPeer(m.ID, m.PeerURLs)
		}
	}
	s.lg.Info("applied snapshot from leader", zap.Uint64("snapshot-index", md.GetIndex()))
	return nil
}

func (s *Server) reopenBackendWith(index uint64) error {
	s.kvMu.Lock()
	defer s.kvMu.Unlock()
	if err := s.backend.Close(); err != nil {
		return err
	}
	if err := os.Rename(s.receivedDBPath(index), s.dbPath()); err != nil {
		return fmt.Errorf("installing the snapshot database: %w", err)
	}
	if err := fileutil.SyncDir(s.cfg.SnapPath()); err != nil {
		return err
	}
	return s.openBackend()
}

// installPendingSnapshotDB finishes a snapshot install that a crash
// interrupted: the .snap file was saved but the database not yet swapped.
func (s *Server) installPendingSnapshotDB(index uint64) error {
	path := s.receivedDBPath(index)
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	b, err := backend.Open(s.dbPath(), backend.Options{})
	if err != nil {
		return err
	}
	ci, _ := b.ConsistentIndex()
	if err := b.Close(); err != nil {
		return err
	}
	if ci >= index {
		return os.Remove(path)
	}
	s.lg.Warn("finishing an interrupted snapshot install", zap.Uint64("snapshot-index", index))
	if err := os.Rename(path, s.dbPath()); err != nil {
		return err
	}
	return fileutil.SyncDir(s.cfg.SnapPath())
}

// snapshotForPeer builds the snapshot message sent to a follower that fell
// behind the log: it carries the whole current database, so its metadata is
// moved to the index the database reflects (everything applied so far).
func (s *Server) snapshotForPeer(m *raftpb.Message) (*raftpb.Message, error) {
	applied := s.appliedIndex.Load()
	f, err := os.CreateTemp(s.cfg.SnapPath(), "outgoing-*.db")
	if err != nil {
		return nil, err
	}
	s.kvMu.RLock()
	_, err = s.backend.Snapshot(f)
	s.kvMu.RUnlock()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return nil, err
	}
	members, err := s.cluster.marshalSnapshot()
	if err != nil {
		os.Remove(f.Name())
		return nil, err
	}
	sm := proto.Clone(m).(*raftpb.Message)
	sm.Snapshot = &raftpb.Snapshot{Data: members, Metadata: &raftpb.SnapshotMetadata{
		Index:     proto.Uint64(applied),
		Term:      proto.Uint64(s.appliedTerm),
		ConfState: s.confState,
	}}
	s.snapMu.Lock()
	s.snapFiles[applied] = f.Name()
	s.snapMu.Unlock()
	s.lg.Info("sending database snapshot", zap.String("to", idHex(m.GetTo())), zap.Uint64("snapshot-index", applied))
	return sm, nil
}

// snapshotSource gives the transport the database copy of a MsgSnap.
func (s *Server) snapshotSource(m *raftpb.Message) (io.ReadCloser, int64, error) {
	index := m.GetSnapshot().GetMetadata().GetIndex()
	s.snapMu.Lock()
	path, ok := s.snapFiles[index]
	delete(s.snapFiles, index)
	s.snapMu.Unlock()
	if !ok {
		return nil, 0, fmt.Errorf("no database prepared for snapshot %d", index)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	// Unlinked now: the open handle keeps the data until it is sent.
	os.Remove(path)
	return f, st.Size(), nil
}

// snapshotSink stores a database received with a snapshot, durably, under
// the name the loop looks for when raft hands the snapshot over.
func (s *Server) snapshotSink(m *raftpb.Message, r io.Reader) error {
	index := m.GetSnapshot().GetMetadata().GetIndex()
	return backend.ReplaceDB(s.receivedDBPath(index), r)
}

// peerMembers answers the peer port's GET /members.
func (s *Server) peerMembers() []peer.MemberInfo {
	var out []peer.MemberInfo
	for _, m := range s.cluster.list() {
		out = append(out, peer.MemberInfo{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner})
	}
	return out
}

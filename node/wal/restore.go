package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"etcdctl-wizard/node/snap"
)

// ValidMarkers returns the snapshot markers in the log at dir whose index is
// covered by the commit index of the last hard state, oldest first. A marker
// past the commit index was written for a snapshot whose hard state never
// made it to disk; starting raft from it would trip raft's commit check.
func ValidMarkers(dir string) ([]Marker, error) {
	segs, err := listSegments(filepath.Clean(dir))
	if err != nil {
		return nil, err
	}
	return validMarkers(filepath.Clean(dir), segs)
}

func validMarkers(dir string, segs []segment) ([]Marker, error) {
	if len(segs) == 0 {
		return nil, fmt.Errorf("wal: no segment files in %s", dir)
	}
	// Only the run of consecutive segments ending at the tail is a log; a gap
	// before it is a purge that a crash interrupted.
	first := len(segs) - 1
	for first > 0 && segs[first-1].seq+1 == segs[first].seq {
		first--
	}
	var all []Marker
	hs := &raftpb.HardState{}
	_, err := walkSegments(dir, segs[first:], func(rec walRecord) error {
		switch rec.typ {
		case recSnapshot:
			all = append(all, Marker{Index: rec.snapshot.GetIndex(), Term: rec.snapshot.GetTerm(), ConfState: rec.snapshot.GetConfState()})
		case recHardState:
			hs = rec.hardState
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var valid []Marker
	for _, m := range all {
		if m.Index <= hs.GetCommit() {
			valid = append(valid, m)
		}
	}
	return valid, nil
}

// Restored is the state of a member after LoadRaftStorage.
type Restored struct {
	WAL       *WAL                // open for appending
	Storage   *raft.MemoryStorage // snapshot, hard state and entries, ready for raft.Config.Storage
	Metadata  []byte              // as given to Create
	HardState *raftpb.HardState   // never nil; empty when none was saved
	Snapshot  *raftpb.Snapshot    // nil when the log starts from the beginning
	Repair    *RepairReport       // non-nil when a torn tail was cut; log it
}

// LoadRaftStorage runs the restart sequence: find the snapshot markers in the
// log, load the newest snapshot file that has one, open the log at it, read
// it and fill a raft.MemoryStorage. The WAL directory stays locked by the
// returned WAL.
func LoadRaftStorage(walDir, snapDir string, opts Options) (*Restored, error) {
	walDir = filepath.Clean(walDir)
	lock, err := lockDir(walDir)
	if err != nil {
		return nil, err
	}
	r, err := loadLocked(walDir, snapDir, lock, opts.withDefaults())
	if err != nil {
		lock.Close()
		return nil, err
	}
	return r, nil
}

func loadLocked(walDir, snapDir string, lock *os.File, opts Options) (*Restored, error) {
	segs, err := listSegments(walDir)
	if err != nil {
		return nil, err
	}
	markers, err := validMarkers(walDir, segs)
	if err != nil {
		return nil, err
	}
	inLog := make(map[[2]uint64]bool, len(markers))
	for _, m := range markers {
		inLog[[2]uint64{m.Term, m.Index}] = true
	}
	sn, err := snap.New(snapDir).LoadNewestAvailable(func(term, index uint64) bool {
		return inLog[[2]uint64{term, index}]
	})
	var at Marker
	switch {
	case err == nil:
		md := sn.GetMetadata()
		at = Marker{Index: md.GetIndex(), Term: md.GetTerm(), ConfState: md.GetConfState()}
	case errors.Is(err, snap.ErrNoSnapshot):
		sn = nil
	default:
		return nil, err
	}

	w, err := openLocked(walDir, lock, at, opts)
	if err != nil {
		return nil, err
	}
	md, hs, ents, err := w.ReadAll()
	if err != nil {
		w.tail.Close()
		return nil, err
	}
	last := at.Index
	if len(ents) > 0 {
		last = ents[len(ents)-1].GetIndex()
	}
	// raft panics on a commit index outside the log; say so plainly instead.
	if c := hs.GetCommit(); c > last || (c < at.Index && !raft.IsEmptyHardState(hs)) {
		w.tail.Close()
		return nil, fmt.Errorf("wal: hard state commit %d is outside the log [%d, %d] in %s", c, at.Index, last, walDir)
	}
	ms := raft.NewMemoryStorage()
	if sn != nil {
		if err := ms.ApplySnapshot(sn); err != nil {
			w.tail.Close()
			return nil, fmt.Errorf("wal: apply snapshot: %w", err)
		}
	}
	if err := ms.SetHardState(hs); err != nil {
		w.tail.Close()
		return nil, err
	}
	if err := ms.Append(ents); err != nil {
		w.tail.Close()
		return nil, err
	}
	return &Restored{WAL: w, Storage: ms, Metadata: md, HardState: hs, Snapshot: sn, Repair: w.Repaired()}, nil
}

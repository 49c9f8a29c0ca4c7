package wal

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"etcdctl-wizard/node/snap"
)

func raftSnap(index, term uint64) *raftpb.Snapshot {
	return &raftpb.Snapshot{
		Data: []byte(`{"members":[1,2,3]}`),
		Metadata: &raftpb.SnapshotMetadata{Index: new(index), Term: new(term),
			ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}}},
	}
}

// takeSnapshot follows the member's order: marker, snapshot file, hard
// state, then purge.
func takeSnapshot(t *testing.T, w *WAL, ss *snap.Snapshotter, s *raftpb.Snapshot, hs *raftpb.HardState) {
	t.Helper()
	md := s.GetMetadata()
	if err := w.SaveSnapshot(Marker{Index: md.GetIndex(), Term: md.GetTerm(), ConfState: md.GetConfState()}); err != nil {
		t.Fatal(err)
	}
	if err := ss.SaveSnap(s); err != nil {
		t.Fatal(err)
	}
	mustSave(t, w, hs, nil)
	if _, err := w.PurgeBefore(md.GetIndex()); err != nil {
		t.Fatal(err)
	}
}

func TestLoadRaftStorage(t *testing.T) {
	tests := []struct {
		name     string
		build    func(t *testing.T, w *WAL, ss *snap.Snapshotter) // after entries 1..100 at term 2, commit 100
		wantSnap uint64
		broken   string // a snapshot file expected to be set aside
	}{
		{"no snapshot", func(*testing.T, *WAL, *snap.Snapshotter) {}, 0, ""},
		{"snapshot and purge", func(t *testing.T, w *WAL, ss *snap.Snapshotter) {
			takeSnapshot(t, w, ss, raftSnap(60, 2), hardState(2, 1, 100))
		}, 60, ""},
		{"newest snapshot file has no marker", func(t *testing.T, w *WAL, ss *snap.Snapshotter) {
			takeSnapshot(t, w, ss, raftSnap(60, 2), hardState(2, 1, 100))
			if err := ss.SaveSnap(raftSnap(80, 2)); err != nil {
				t.Fatal(err)
			}
		}, 60, ""},
		{"marker beyond the saved commit", func(t *testing.T, w *WAL, ss *snap.Snapshotter) {
			takeSnapshot(t, w, ss, raftSnap(60, 2), hardState(2, 1, 100))
			// Crash after marker and file, before the hard state of a
			// snapshot received from the leader.
			if err := w.SaveSnapshot(Marker{Index: 500, Term: 3}); err != nil {
				t.Fatal(err)
			}
			if err := ss.SaveSnap(raftSnap(500, 3)); err != nil {
				t.Fatal(err)
			}
		}, 60, ""},
		{"newest snapshot file broken", func(t *testing.T, w *WAL, ss *snap.Snapshotter) {
			takeSnapshot(t, w, ss, raftSnap(40, 2), hardState(2, 1, 100))
			if err := w.SaveSnapshot(Marker{Index: 60, Term: 2}); err != nil {
				t.Fatal(err)
			}
			if err := ss.SaveSnap(raftSnap(60, 2)); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(ss.Dir(), "0000000000000002-000000000000003c.snap"), []byte("garbage"))
		}, 40, "0000000000000002-000000000000003c.snap.broken"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			walDir, snapDir := filepath.Join(base, "member", "wal"), filepath.Join(base, "member", "snap")
			opts := Options{SegmentSize: 4 << 10}
			w := mustCreate(t, walDir, opts)
			mustSave(t, w, hardState(1, 1, 0), testEntries(1, 3, 1, 50))
			mustSave(t, w, hardState(2, 1, 3), nil)
			for i := uint64(4); i <= 100; i += 8 {
				mustSave(t, w, hardState(2, 1, i-1), testEntries(i, min(i+7, 100), 2, 200))
			}
			mustSave(t, w, hardState(2, 1, 100), nil)
			ss := snap.New(snapDir)
			tc.build(t, w, ss)
			mustClose(t, w)

			r, err := LoadRaftStorage(walDir, snapDir, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer mustClose(t, r.WAL)
			if string(r.Metadata) != "node=1 cluster=2" || r.Repair != nil {
				t.Fatalf("metadata %q, repair %v", r.Metadata, r.Repair)
			}
			checkHardState(t, r.HardState, hardState(2, 1, 100))
			if got := r.Snapshot.GetMetadata().GetIndex(); got != tc.wantSnap {
				t.Fatalf("snapshot %d, want %d", got, tc.wantSnap)
			}
			checkStorage(t, r.Storage, tc.wantSnap, 100)
			if tc.broken != "" {
				if _, err := os.Stat(filepath.Join(snapDir, tc.broken)); err != nil {
					t.Fatalf("broken snapshot not set aside: %v", err)
				}
			}
			// The WAL continues after the restored log.
			mustSave(t, r.WAL, hardState(2, 1, 101), testEntries(101, 101, 2, 10))
		})
	}
}

// checkStorage verifies ms holds entries (snap, last] and that raft accepts it.
func checkStorage(t *testing.T, ms *raft.MemoryStorage, snapIndex, last uint64) {
	t.Helper()
	first, _ := ms.FirstIndex()
	lastGot, _ := ms.LastIndex()
	if first != snapIndex+1 || lastGot != last {
		t.Fatalf("storage holds [%d, %d], want [%d, %d]", first, lastGot, snapIndex+1, last)
	}
	ents, err := ms.Entries(first, last+1, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var want []*raftpb.Entry
	for i := first; i <= last; i++ {
		if i <= 3 {
			want = append(want, testEntry(i, 1, 50))
		} else {
			want = append(want, testEntry(i, 2, 200))
		}
	}
	checkEntries(t, ents, want)
	if snapIndex > 0 {
		if term, err := ms.Term(snapIndex); err != nil || term != 2 {
			t.Fatalf("term at snapshot %d: %d %v", snapIndex, term, err)
		}
	}
	// raft panics when storage and hard state disagree; this must not.
	rn, err := raft.NewRawNode(&raft.Config{ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: ms,
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 16})
	if err != nil {
		t.Fatal(err)
	}
	if st := rn.Status(); st.GetCommit() != last {
		t.Fatalf("raft commit %d, want %d", st.GetCommit(), last)
	}
}

func TestLoadRaftStorageReportsRepair(t *testing.T) {
	base := t.TempDir()
	walDir := filepath.Join(base, "wal")
	w := mustCreate(t, walDir, Options{SegmentSize: 1 << 20})
	mustSave(t, w, hardState(1, 1, 1), testEntries(1, 1, 1, 50))
	off := w.off
	mustSave(t, w, hardState(1, 1, 2), testEntries(2, 2, 1, 50))
	mustClose(t, w)
	path := lastSegmentPath(t, walDir)
	b := readFile(t, path)
	b[off+frameHeaderLen+3] ^= 0xff
	writeFile(t, path, b)

	r, err := LoadRaftStorage(walDir, filepath.Join(base, "snap"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, r.WAL)
	if r.Repair == nil || r.Repair.Offset != off || !strings.Contains(r.Repair.String(), path) {
		t.Fatalf("repair report %v, want offset %d of %s", r.Repair, off, path)
	}
	if last, _ := r.Storage.LastIndex(); last != 1 {
		t.Fatalf("last index %d, want 1", last)
	}
}

func TestLoadRaftStorageErrors(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, walDir, snapDir string)
		want    string
	}{
		{"no wal dir", func(*testing.T, string, string) {}, "open dir"},
		{"purged log without its snapshot file", func(t *testing.T, walDir, snapDir string) {
			w := mustCreate(t, walDir, Options{SegmentSize: 2 << 10})
			mustSave(t, w, hardState(1, 1, 40), testEntries(1, 40, 1, 200))
			mustSave(t, w, nil, testEntries(41, 41, 1, 200))
			if err := w.SaveSnapshot(Marker{Index: 41, Term: 1}); err != nil {
				t.Fatal(err)
			}
			mustSave(t, w, hardState(1, 1, 41), nil)
			if _, err := w.PurgeBefore(41); err != nil {
				t.Fatal(err)
			}
			mustClose(t, w)
		}, "no segment"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			walDir, snapDir := filepath.Join(base, "wal"), filepath.Join(base, "snap")
			tc.prepare(t, walDir, snapDir)
			r, err := LoadRaftStorage(walDir, snapDir, Options{})
			if err == nil {
				r.WAL.Close()
				t.Fatal("LoadRaftStorage succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

package snap

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func testSnap(term, index uint64) *raftpb.Snapshot {
	return &raftpb.Snapshot{
		Data: []byte(`{"members":[{"id":"8e9e05c52164694d"}]}`),
		Metadata: &raftpb.SnapshotMetadata{
			Index:     new(index),
			Term:      new(term),
			ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}},
		},
	}
}

func mustSave(t *testing.T, s *Snapshotter, snaps ...*raftpb.Snapshot) {
	t.Helper()
	for _, sn := range snaps {
		if err := s.SaveSnap(sn); err != nil {
			t.Fatal(err)
		}
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "member", "snap")
	s := New(dir)
	want := testSnap(3, 1200)
	mustSave(t, s, want)
	got, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	// Load fills the optional fields the way raft.MemoryStorage expects.
	if !proto.Equal(got, raftpb.EnsureSnapshot(proto.Clone(want).(*raftpb.Snapshot))) {
		t.Fatalf("got %v, want %v", got, want)
	}
	name := "0000000000000003-00000000000004b0.snap"
	if names := dirNames(t, dir); !slices.Equal(names, []string{name}) {
		t.Fatalf("dir holds %v", names)
	}
	for path, mode := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, filepath.Join(dir, name): 0o600} {
		if fi, err := os.Stat(path); err != nil || fi.Mode() != mode {
			t.Fatalf("%s: %v %v, want mode %v", path, fi.Mode(), err, mode)
		}
	}
}

func TestSaveEmptySnapshotWritesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "snap")
	s := New(dir)
	mustSave(t, s, &raftpb.Snapshot{}, nil)
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("empty snapshot created %s: %v", dir, err)
	}
	if _, err := s.Load(); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("Load: %v, want ErrNoSnapshot", err)
	}
}

func TestLoadNewestSkipsBroken(t *testing.T) {
	type damage func(t *testing.T, path string)
	flip := func(at int) damage {
		return func(t *testing.T, path string) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b[at] ^= 1
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name   string
		damage damage
		broken bool
	}{
		{"intact", func(*testing.T, string) {}, false},
		{"payload bit flip", flip(20), true},
		{"checksum bit flip", flip(5), true},
		{"bad magic", flip(0), true},
		{"truncated", func(t *testing.T, path string) {
			if err := os.Truncate(path, 6); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"empty file", func(t *testing.T, path string) {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"content of another snapshot", func(t *testing.T, path string) {
			other := filepath.Join(filepath.Dir(path), fileName(1, 10))
			b, err := os.ReadFile(other)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := New(dir)
			mustSave(t, s, testSnap(1, 10), testSnap(2, 20), testSnap(2, 30))
			newest := filepath.Join(dir, fileName(2, 30))
			tc.damage(t, newest)
			got, err := s.Load()
			if err != nil {
				t.Fatal(err)
			}
			wantIndex := uint64(30)
			if tc.broken {
				wantIndex = 20
			}
			if got.GetMetadata().GetIndex() != wantIndex {
				t.Fatalf("loaded index %d, want %d", got.GetMetadata().GetIndex(), wantIndex)
			}
			_, err = os.Stat(newest + ".broken")
			if tc.broken != (err == nil) {
				t.Fatalf("broken file present: %v, want %v", err == nil, tc.broken)
			}
		})
	}
}

func TestLoadNewestAvailable(t *testing.T) {
	dir := t.TempDir()
	s := New(dir)
	mustSave(t, s, testSnap(1, 10), testSnap(2, 20), testSnap(3, 30))
	tests := []struct {
		name      string
		ok        func(term, index uint64) bool
		wantIndex uint64
		wantErr   error
	}{
		{"any", nil, 30, nil},
		{"only in the log", func(term, index uint64) bool { return index <= 20 }, 20, nil},
		{"term must match", func(term, index uint64) bool { return term == 1 }, 10, nil},
		{"none acceptable", func(uint64, uint64) bool { return false }, 0, ErrNoSnapshot},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.LoadNewestAvailable(tc.ok)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if got.GetMetadata().GetIndex() != tc.wantIndex {
				t.Fatalf("index %d, want %d", got.GetMetadata().GetIndex(), tc.wantIndex)
			}
		})
	}
}

func TestLoadOrdersByIndex(t *testing.T) {
	s := New(t.TempDir())
	// Lexical file-name order would pick term 5; the newest state is index 90.
	mustSave(t, s, testSnap(5, 40), testSnap(4, 90))
	got, err := s.Load()
	if err != nil || got.GetMetadata().GetIndex() != 90 {
		t.Fatalf("got %v %v", got.GetMetadata(), err)
	}
}

func TestLoadCleansTempFilesAndIgnoresOthers(t *testing.T) {
	dir := t.TempDir()
	s := New(dir)
	mustSave(t, s, testSnap(1, 10))
	tmp := filepath.Join(dir, fileName(2, 20)+tempMarker+"123")
	for _, name := range []string{tmp, filepath.Join(dir, "db"), filepath.Join(dir, "x.snap.broken")} {
		if err := os.WriteFile(name, []byte("junk"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Load()
	if err != nil || got.GetMetadata().GetIndex() != 10 {
		t.Fatalf("got %v %v", got.GetMetadata(), err)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temp file left: %v", err)
	}
	if names := dirNames(t, dir); !slices.Contains(names, "db") || !slices.Contains(names, "x.snap.broken") {
		t.Fatalf("unrelated files touched: %v", names)
	}
}

func TestLoadMissingDir(t *testing.T) {
	if _, err := New(filepath.Join(t.TempDir(), "nope")).Load(); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("got %v", err)
	}
}

func TestLoadUnreadableFileIsAnError(t *testing.T) {
	dir := t.TempDir()
	s := New(dir)
	mustSave(t, s, testSnap(1, 10))
	// A directory with a snapshot's name cannot be read: an I/O error, not
	// a broken snapshot, so Load must not fall back silently.
	if err := os.Mkdir(filepath.Join(dir, fileName(1, 20)), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(); err == nil || errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("got %v, want a read error", err)
	}
}

func TestPurge(t *testing.T) {
	tests := []struct {
		keep    int
		left    []uint64
		wantErr string
	}{
		{0, []uint64{10, 20, 30, 40}, "at least one"},
		{1, []uint64{40}, ""},
		{3, []uint64{20, 30, 40}, ""},
		{9, []uint64{10, 20, 30, 40}, ""},
	}
	for _, tc := range tests {
		t.Run(strings.Repeat("k", tc.keep), func(t *testing.T) {
			dir := t.TempDir()
			s := New(dir)
			mustSave(t, s, testSnap(1, 10), testSnap(1, 20), testSnap(1, 30), testSnap(1, 40))
			_, err := s.Purge(tc.keep)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, i := range tc.left {
				want = append(want, fileName(1, i))
			}
			if got := dirNames(t, dir); !slices.Equal(got, want) {
				t.Fatalf("left %v, want %v", got, want)
			}
		})
	}
}

func TestParseFileName(t *testing.T) {
	tests := []struct {
		name        string
		term, index uint64
		ok          bool
	}{
		{"0000000000000002-0000000000000010.snap", 2, 16, true},
		{"0000000000000002-0000000000000010.snap.broken", 0, 0, false},
		{"2-10.snap", 0, 0, false},
		{"000000000000000g-0000000000000010.snap", 0, 0, false},
		{"0000000000000002_0000000000000010.snap", 0, 0, false},
	}
	for _, tc := range tests {
		term, index, ok := parseFileName(tc.name)
		if term != tc.term || index != tc.index || ok != tc.ok {
			t.Errorf("%s: got %d %d %v", tc.name, term, index, ok)
		}
	}
}

package wal

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

func TestCreateLayout(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string)
		wantErr string
	}{
		{"fresh path with missing parents", func(t *testing.T, dir string) {}, ""},
		{"existing empty dir", func(t *testing.T, dir string) {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
		}, ""},
		{"stale temp dir from a crashed create", func(t *testing.T, dir string) {
			if err := os.MkdirAll(dir+".tmp", 0o700); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(dir+".tmp", segmentName(0, 0)), []byte("half"))
		}, ""},
		{"dir with other files", func(t *testing.T, dir string) {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(dir, "notes.txt"), []byte("x"))
		}, "not an empty directory"},
		{"existing WAL", func(t *testing.T, dir string) {
			mustClose(t, mustCreate(t, dir, Options{}))
		}, "already holds a WAL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data", "member", "wal")
			tc.prepare(t, dir)
			w, err := CreateWith(dir, []byte("md"), Options{SegmentSize: 1 << 20})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Create: got %v, want %q", err, tc.wantErr)
				}
				if _, serr := os.Stat(dir + ".tmp"); !errors.Is(serr, os.ErrNotExist) {
					t.Fatalf("temp dir left behind: %v", serr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer mustClose(t, w)
			if !Exist(dir) {
				t.Fatal("Exist false after Create")
			}
			if _, err := os.Stat(dir + ".tmp"); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("temp dir left behind: %v", err)
			}
			checkMode(t, dir, 0o700|os.ModeDir)
			checkMode(t, filepath.Join(dir, segmentName(0, 0)), 0o600)
			fi, err := os.Stat(filepath.Join(dir, segmentName(0, 0)))
			if err != nil || fi.Size() != 1<<20 {
				t.Fatalf("segment not preallocated: %v %v", fi, err)
			}
			md, hs, ents, err := w.ReadAll()
			if err != nil || string(md) != "md" || len(ents) != 0 || hs == nil {
				t.Fatalf("ReadAll after Create: %q %v %v %v", md, hs, ents, err)
			}
			if _, _, _, err := w.ReadAll(); err == nil {
				t.Fatal("second ReadAll succeeded")
			}
		})
	}
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != want {
		t.Fatalf("%s: mode %v, want %v", path, fi.Mode(), want)
	}
}

func TestExist(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		want  bool
	}{
		{"missing dir", nil, false},
		{"empty dir", []string{}, false},
		{"other files only", []string{"x.snap", "wal.txt", "a.wal.tmp"}, false},
		{"a segment", []string{segmentName(0, 0)}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "wal")
			if tc.files != nil {
				if err := os.Mkdir(dir, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range tc.files {
				writeFile(t, filepath.Join(dir, f), nil)
			}
			if got := Exist(dir); got != tc.want {
				t.Fatalf("Exist = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w := mustCreate(t, dir, Options{SegmentSize: 1 << 20})
	tests := []struct {
		name string
		open func() (*WAL, error)
	}{
		{"Open", func() (*WAL, error) { return OpenWith(dir, Marker{}, Options{}) }},
		{"LoadRaftStorage", func() (*WAL, error) {
			r, err := LoadRaftStorage(dir, filepath.Join(t.TempDir(), "snap"), Options{})
			if err != nil {
				return nil, err
			}
			return r.WAL, nil
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w2, err := tc.open()
			if err == nil {
				w2.Close()
				t.Fatal("second open of a locked WAL succeeded")
			}
			if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "wal dir "+dir+" is locked by another process") {
				t.Fatalf("got %v", err)
			}
		})
	}
	mustClose(t, w)
	w, _, _, _ = reopen(t, dir, Marker{}, Options{})
	mustClose(t, w)
}

func TestClosed(t *testing.T) {
	w := mustCreate(t, filepath.Join(t.TempDir(), "wal"), Options{SegmentSize: 1 << 20})
	mustClose(t, w)
	mustClose(t, w) // twice is fine
	if err := w.Save(hardState(1, 1, 0), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Save after Close: %v", err)
	}
	if err := w.SaveSnapshot(Marker{Index: 1, Term: 1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("SaveSnapshot after Close: %v", err)
	}
	if _, err := w.PurgeBefore(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("PurgeBefore after Close: %v", err)
	}
}

func TestSegmentCutAndPurge(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	opts := Options{SegmentSize: 4 << 10}
	w := mustCreate(t, dir, opts)
	for i := uint64(1); i <= 100; i += 2 {
		mustSave(t, w, hardState(1, 1, i+1), testEntries(i, i+1, 1, 300))
	}
	names := segmentFiles(t, dir)
	if len(names) < 5 {
		t.Fatalf("expected many segments, got %v", names)
	}
	// Names are consecutive and their first indexes grow; every segment but
	// the tail was shrunk to its data, the tail is preallocated.
	segs, _ := listSegments(dir)
	for i, s := range segs {
		if s.seq != uint64(i) || (i > 0 && s.index <= segs[i-1].index) {
			t.Fatalf("segment %d is %s", i, s.name)
		}
		fi, err := os.Stat(filepath.Join(dir, s.name))
		if err != nil {
			t.Fatal(err)
		}
		if last := i == len(segs)-1; last != (fi.Size() == opts.SegmentSize) {
			t.Fatalf("%s: size %d (last=%v)", s.name, fi.Size(), last)
		}
		if fi.Size() > opts.SegmentSize {
			t.Fatalf("%s: %d bytes exceeds the segment size", s.name, fi.Size())
		}
	}

	snap := Marker{Index: 61, Term: 1, ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}}}
	if err := w.SaveSnapshot(snap); err != nil {
		t.Fatal(err)
	}
	before := segmentFiles(t, dir)
	removed, err := w.PurgeBefore(snap.Index)
	if err != nil {
		t.Fatal(err)
	}
	left := segmentFiles(t, dir)
	if len(removed) == 0 || !slices.Equal(append(slices.Clone(removed), left...), before) {
		t.Fatalf("removed %v, left %v, had %v", removed, left, before)
	}
	// The segment that holds index 61 stays: it is the first one left.
	first, _ := listSegments(dir)
	if first[0].index > snap.Index || (len(first) > 1 && first[1].index <= snap.Index) {
		t.Fatalf("purge kept %v for index %d", left, snap.Index)
	}
	// Purging again at the same index removes nothing more.
	if again, err := w.PurgeBefore(snap.Index); err != nil || len(again) != 0 {
		t.Fatalf("second purge: %v %v", again, err)
	}
	mustSave(t, w, hardState(2, 1, 101), testEntries(101, 101, 2, 300))
	mustClose(t, w)

	w, md, hs, ents := reopen(t, dir, snap, opts)
	mustClose(t, w)
	if string(md) != "node=1 cluster=2" {
		t.Fatalf("metadata lost with purged segments: %q", md)
	}
	checkHardState(t, hs, hardState(2, 1, 101))
	checkEntries(t, ents, append(testEntries(62, 100, 1, 300), testEntry(101, 2, 300)))

	if _, err := OpenWith(dir, Marker{}, opts); !errors.Is(err, ErrSnapshotNotFound) {
		t.Fatalf("open at index 0 after purge: %v", err)
	}
}

func TestOpenAtSnapshot(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	opts := Options{SegmentSize: 4 << 10}
	w := mustCreate(t, dir, opts)
	mustSave(t, w, hardState(1, 1, 30), testEntries(1, 30, 1, 200))
	if err := w.SaveSnapshot(Marker{Index: 20, Term: 1}); err != nil {
		t.Fatal(err)
	}
	mustSave(t, w, hardState(1, 1, 40), testEntries(31, 40, 1, 200))
	// A snapshot from the leader far past the log; the log continues after it.
	if err := w.SaveSnapshot(Marker{Index: 100, Term: 2}); err != nil {
		t.Fatal(err)
	}
	mustSave(t, w, hardState(2, 1, 100), nil)
	mustSave(t, w, hardState(2, 1, 102), testEntries(101, 102, 2, 200))
	mustClose(t, w)

	tests := []struct {
		name    string
		at      Marker
		want    []*raftpb.Entry
		wantErr error
	}{
		{"no snapshot", Marker{}, nil, errGap},
		{"at 20", Marker{Index: 20, Term: 1}, nil, errGap},
		{"at 100", Marker{Index: 100, Term: 2}, testEntries(101, 102, 2, 200), nil},
		{"unknown index", Marker{Index: 101, Term: 2}, nil, ErrSnapshotNotFound},
		{"wrong term", Marker{Index: 20, Term: 7}, nil, ErrSnapshotMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, err := OpenWith(dir, tc.at, opts)
			if tc.wantErr != nil {
				if err == nil {
					w.Close()
					t.Fatal("Open succeeded")
				}
				if tc.wantErr == errGap {
					var ce *CorruptError
					if !errors.As(err, &ce) || !strings.Contains(err.Error(), "gap") {
						t.Fatalf("got %v, want a gap error", err)
					}
				} else if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer mustClose(t, w)
			_, _, ents, _ := w.ReadAll()
			checkEntries(t, ents, tc.want)
		})
	}
}

var errGap = errors.New("gap")

func TestStaleSegmentTempRemoved(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w := mustCreate(t, dir, Options{SegmentSize: 1 << 20})
	mustSave(t, w, hardState(1, 1, 1), testEntries(1, 1, 1, 10))
	mustClose(t, w)
	tmp := filepath.Join(dir, segmentName(1, 2)+".tmp")
	writeFile(t, tmp, []byte("interrupted cut"))
	w, _, _, ents := reopen(t, dir, Marker{}, Options{})
	defer mustClose(t, w)
	checkEntries(t, ents, testEntries(1, 1, 1, 10))
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temp segment still there: %v", err)
	}
}

func TestOpenRejectsBadDirectories(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string)
		want    string
	}{
		{"no segments", func(t *testing.T, dir string) {}, "no segment files"},
		{"unparsable name", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "junk.wal"), nil)
		}, "unexpected file name"},
		{"missing middle segment", func(t *testing.T, dir string) {
			for _, s := range []segment{{0, 0, ""}, {2, 5, ""}} {
				writeFile(t, filepath.Join(dir, segmentName(s.seq, s.index)), nil)
			}
		}, "segment missing"},
		{"renamed segment", func(t *testing.T, dir string) {
			sub := filepath.Join(t.TempDir(), "w")
			mustClose(t, mustCreate(t, sub, Options{SegmentSize: 1 << 16}))
			b := readFile(t, filepath.Join(sub, segmentName(0, 0)))
			writeFile(t, filepath.Join(dir, segmentName(0, 0)), b)
			writeFile(t, filepath.Join(dir, segmentName(1, 1)), b)
		}, "segment"},
		{"empty segment file", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, segmentName(0, 0)), nil)
		}, "no header"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "wal")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			tc.prepare(t, dir)
			w, err := OpenWith(dir, Marker{}, Options{})
			if err == nil {
				w.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

package wal

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func testEntry(index, term uint64, size int) *raftpb.Entry {
	return &raftpb.Entry{Index: new(index), Term: new(term), Type: new(raftpb.EntryNormal), Data: payload(index, term, size)}
}

// payload is deterministic so a reader can check an entry without a copy.
func payload(index, term uint64, size int) []byte {
	b := fmt.Appendf(nil, "i%d-t%d|", index, term)
	for len(b) < size {
		b = append(b, byte('a'+(index+uint64(len(b)))%26))
	}
	return b[:max(size, 1)]
}

func testEntries(first, last, term uint64, size int) []*raftpb.Entry {
	var out []*raftpb.Entry
	for i := first; i <= last; i++ {
		out = append(out, testEntry(i, term, size))
	}
	return out
}

func hardState(term, vote, commit uint64) *raftpb.HardState {
	return &raftpb.HardState{Term: new(term), Vote: new(vote), Commit: new(commit)}
}

func mustCreate(t testing.TB, dir string, opts Options) *WAL {
	t.Helper()
	w, err := CreateWith(dir, []byte("node=1 cluster=2"), opts)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return w
}

func mustSave(t testing.TB, w *WAL, hs *raftpb.HardState, ents []*raftpb.Entry) {
	t.Helper()
	if err := w.Save(hs, ents); err != nil {
		t.Fatalf("Save: %v", err)
	}
}

func mustClose(t testing.TB, w *WAL) {
	t.Helper()
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// reopen opens dir at snap and returns everything ReadAll gives.
func reopen(t testing.TB, dir string, snap Marker, opts Options) (*WAL, []byte, *raftpb.HardState, []*raftpb.Entry) {
	t.Helper()
	w, err := OpenWith(dir, snap, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	md, hs, ents, err := w.ReadAll()
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	return w, md, hs, ents
}

func checkEntries(t testing.TB, got, want []*raftpb.Entry) {
	t.Helper()
	if len(got) != len(want) {
		first := func(e []*raftpb.Entry) string {
			if len(e) == 0 {
				return "none"
			}
			return fmt.Sprintf("%d..%d", e[0].GetIndex(), e[len(e)-1].GetIndex())
		}
		t.Fatalf("got %d entries (%s), want %d (%s)", len(got), first(got), len(want), first(want))
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("entry %d: got index %d term %d, want index %d term %d (or data differs)",
				i, got[i].GetIndex(), got[i].GetTerm(), want[i].GetIndex(), want[i].GetTerm())
		}
	}
}

func checkHardState(t testing.TB, got, want *raftpb.HardState) {
	t.Helper()
	if !sameHardState(got, want) {
		t.Fatalf("hard state: got %v, want %v", got, want)
	}
}

// segmentFiles lists the segment names of dir in order.
func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	segs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range segs {
		out = append(out, s.name)
	}
	return out
}

func lastSegmentPath(t testing.TB, dir string) string {
	t.Helper()
	names := segmentFiles(t, dir)
	if len(names) == 0 {
		t.Fatal("no segments")
	}
	return filepath.Join(dir, names[len(names)-1])
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

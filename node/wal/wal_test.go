package wal

import (
	"errors"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

func TestRoundTripBatches(t *testing.T) {
	tests := []struct {
		name    string
		segSize int64
		total   uint64
		maxRun  int
		size    int
	}{
		{"default segment, small batches", 0, 400, 5, 100},
		{"tiny segments force many cuts", 4 << 10, 600, 12, 300},
		{"entries larger than a segment", 2 << 10, 40, 3, 5000},
		{"one-byte data", 4 << 10, 1000, 7, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "wal")
			opts := Options{SegmentSize: tc.segSize}
			rng := rand.New(rand.NewPCG(1, uint64(tc.total)))
			w := mustCreate(t, dir, opts)
			var want []*raftpb.Entry
			var hs *raftpb.HardState
			saves := 0
			for next := uint64(1); next <= tc.total; {
				last := min(next+uint64(rng.IntN(tc.maxRun)), tc.total)
				ents := testEntries(next, last, 1+next/100, tc.size)
				hs = hardState(1+next/100, 1, next)
				mustSave(t, w, hs, ents)
				want = append(want, ents...)
				next = last + 1
				saves++
				if saves%17 == 0 { // reopen midway: appending continues correctly
					mustClose(t, w)
					var got []*raftpb.Entry
					w, _, _, got = reopen(t, dir, Marker{}, opts)
					checkEntries(t, got, want)
				}
			}
			mustClose(t, w)
			w, md, gotHS, got := reopen(t, dir, Marker{}, opts)
			defer mustClose(t, w)
			if string(md) != "node=1 cluster=2" {
				t.Fatalf("metadata %q", md)
			}
			checkHardState(t, gotHS, hs)
			checkEntries(t, got, want)
			if w.Repaired() != nil {
				t.Fatalf("clean log reported a repair: %v", w.Repaired())
			}
			if tc.segSize != 0 && len(segmentFiles(t, dir)) < 2 {
				t.Fatalf("expected several segments, got %v", segmentFiles(t, dir))
			}
		})
	}
}

func TestOverwriteTail(t *testing.T) {
	tests := []struct {
		name    string
		segSize int64
	}{
		{"one segment", 0},
		{"across segment cuts", 2 << 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "wal")
			opts := Options{SegmentSize: tc.segSize}
			w := mustCreate(t, dir, opts)
			mustSave(t, w, hardState(1, 1, 3), testEntries(1, 10, 1, 200))
			// A new leader at term 2 replaces 6..10 with 6..8.
			mustSave(t, w, hardState(2, 2, 5), testEntries(6, 8, 2, 200))
			// And a leader at term 3 replaces 8 and continues.
			mustSave(t, w, hardState(3, 3, 7), testEntries(8, 12, 3, 200))
			mustClose(t, w)

			want := append(append(testEntries(1, 5, 1, 200), testEntries(6, 7, 2, 200)...), testEntries(8, 12, 3, 200)...)
			w, _, hs, got := reopen(t, dir, Marker{}, opts)
			checkEntries(t, got, want)
			checkHardState(t, hs, hardState(3, 3, 7))
			// Appending after the reopened overwritten log keeps it consistent.
			mustSave(t, w, nil, testEntries(13, 13, 3, 200))
			mustClose(t, w)
			w, _, _, got = reopen(t, dir, Marker{}, opts)
			mustClose(t, w)
			checkEntries(t, got, append(want, testEntry(13, 3, 200)))
		})
	}
}

func TestSaveRejectsGaps(t *testing.T) {
	tests := []struct {
		name string
		ents []*raftpb.Entry
		want string
	}{
		{"gap after last", testEntries(5, 6, 1, 10), "does not follow"},
		{"index zero", []*raftpb.Entry{testEntry(0, 1, 10)}, "does not follow"},
		{"not consecutive", []*raftpb.Entry{testEntry(4, 1, 10), testEntry(6, 1, 10)}, "not consecutive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := mustCreate(t, filepath.Join(t.TempDir(), "wal"), Options{})
			defer mustClose(t, w)
			mustSave(t, w, nil, testEntries(1, 3, 1, 10))
			err := w.Save(nil, tc.ents)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Save: got %v, want error with %q", err, tc.want)
			}
			// The refused call wrote nothing and did not poison the log.
			mustSave(t, w, nil, testEntries(4, 4, 1, 10))
		})
	}
}

func TestSaveSyncsOncePerCall(t *testing.T) {
	tests := []struct {
		name  string
		hs    *raftpb.HardState
		ents  []*raftpb.Entry
		syncs int
	}{
		{"nothing", nil, nil, 0},
		{"empty hard state", &raftpb.HardState{}, nil, 0},
		{"unchanged hard state", hardState(1, 1, 1), nil, 0},
		{"hard state only", hardState(2, 1, 1), nil, 1},
		{"entries only", nil, testEntries(2, 4, 1, 300), 1},
		{"both", hardState(2, 2, 3), testEntries(2, 65, 1, 300), 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			syncs := 0
			dir := filepath.Join(t.TempDir(), "wal")
			opts := Options{SegmentSize: 1 << 20, OnFsync: func(d time.Duration) {
				if d < 0 {
					t.Errorf("negative fsync duration %v", d)
				}
				syncs++
			}}
			w := mustCreate(t, dir, opts)
			mustSave(t, w, hardState(1, 1, 1), testEntries(1, 1, 1, 10))
			syncs = 0
			mustSave(t, w, tc.hs, tc.ents)
			if syncs != tc.syncs {
				t.Fatalf("syncs = %d, want %d", syncs, tc.syncs)
			}
			mustClose(t, w)
			w, _, hs, ents := reopen(t, dir, Marker{}, Options{})
			mustClose(t, w)
			wantHS := hardState(1, 1, 1)
			if tc.syncs == 1 && tc.hs != nil {
				wantHS = tc.hs
			}
			checkHardState(t, hs, wantHS)
			checkEntries(t, ents, append(testEntries(1, 1, 1, 10), tc.ents...))
		})
	}
}

// TestTornTailEveryOffset cuts the final frame at every byte, both by
// truncating the file and by zeroing the preallocated space, and checks that
// only that unsynced frame is lost and that the repaired log keeps working.
func TestTornTailEveryOffset(t *testing.T) {
	opts := Options{SegmentSize: 64 << 10}
	base := t.TempDir()
	dir := filepath.Join(base, "wal")
	w := mustCreate(t, dir, opts)
	var kept []*raftpb.Entry
	for i := uint64(0); i < 6; i++ {
		ents := testEntries(i*3+1, i*3+3, 1, 90)
		mustSave(t, w, hardState(1, 1, i*3+3), ents)
		kept = append(kept, ents...)
	}
	start := w.off
	lastEnts := testEntries(19, 22, 2, 90)
	mustSave(t, w, hardState(2, 1, 22), lastEnts)
	end := w.off
	mustClose(t, w)
	path := lastSegmentPath(t, dir)
	pristine := readFile(t, path)
	bodyEnd := start + frameHeaderLen + int64(len(lastFrameBody(t, pristine, start)))

	modes := []struct {
		name string
		cut  func(b []byte, at int64) []byte
	}{
		{"truncated file", func(b []byte, at int64) []byte { return b[:at] }},
		{"zeroed preallocation", func(b []byte, at int64) []byte {
			c := append([]byte(nil), b...)
			clear(c[at:])
			return c
		}},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			for at := start; at < end; at++ {
				writeFile(t, path, m.cut(pristine, at))
				w, err := OpenWith(dir, Marker{}, opts)
				if err != nil {
					t.Fatalf("cut at %d: Open: %v", at, err)
				}
				_, hs, got, err := w.ReadAll()
				if err != nil {
					t.Fatal(err)
				}
				complete := at >= bodyEnd // only padding is missing
				wantEnts, wantHS := kept, hardState(1, 1, 18)
				if complete {
					wantEnts, wantHS = append(append([]*raftpb.Entry(nil), kept...), lastEnts...), hardState(2, 1, 22)
				}
				checkEntries(t, got, wantEnts)
				checkHardState(t, hs, wantHS)
				rep := w.Repaired()
				if wantRepair := at > start && !complete; (rep != nil) != wantRepair {
					t.Fatalf("cut at %d: repair report %v, want one: %v", at, rep, wantRepair)
				}
				if rep != nil && (rep.Offset != start || rep.File != path || rep.Dropped <= 0) {
					t.Fatalf("cut at %d: report %+v, want offset %d in %s", at, rep, start, path)
				}
				// The repaired log takes new writes and reads back clean.
				next := wantEnts[len(wantEnts)-1].GetIndex() + 1
				mustSave(t, w, hardState(3, 1, next), testEntries(next, next, 3, 50))
				mustClose(t, w)
				w, _, _, got = reopen(t, dir, Marker{}, opts)
				if w.Repaired() != nil {
					t.Fatalf("cut at %d: second open repaired again: %v", at, w.Repaired())
				}
				mustClose(t, w)
				checkEntries(t, got, append(append([]*raftpb.Entry(nil), wantEnts...), testEntry(next, 3, 50)))
			}
		})
	}
}

func lastFrameBody(t *testing.T, data []byte, off int64) []byte {
	t.Helper()
	body, _, st, reason := parseFrame(data, 0, off)
	if st != frameOK {
		t.Fatalf("no frame at %d: %s", off, reason)
	}
	return body
}

// frameOffsets lists the frame offsets of a segment file, then the end of
// its data.
func frameOffsets(t *testing.T, path string, seq uint64) []int64 {
	t.Helper()
	sc := scanSegment(readFile(t, path), seq)
	if sc.bad != "" {
		t.Fatalf("%s: %s", path, sc.bad)
	}
	var out []int64
	for _, f := range sc.frames {
		out = append(out, f.off)
	}
	return append(out, sc.end)
}

func TestCorruption(t *testing.T) {
	type damage struct {
		segment int // index into the segment list; -1 is the last
		frame   int // index into its frames; -1 is the last, -2 the end of the data
		byteAt  int // offset inside the frame
		zero    int // when > 0, zero this many bytes instead of flipping one
	}
	tests := []struct {
		name       string
		dmg        damage
		wantRepair bool // otherwise a CorruptError
		wantLast   uint64
	}{
		{"bad crc in final frame body", damage{-1, -1, frameHeaderLen + 5, 0}, true, 43},
		{"bad crc in final frame header", damage{-1, -1, 5, 0}, true, 43},
		{"hole of zeros inside final frame", damage{-1, -1, frameHeaderLen + 8, 8}, true, 43},
		{"junk in the preallocated space", damage{-1, -2, 100, 0}, true, 44},
		{"bad crc in middle frame body", damage{-1, 2, frameHeaderLen + 3, 0}, false, 0},
		{"bad length in middle frame", damage{-1, 2, 4, 0}, false, 0},
		{"zeroed middle frame", damage{-1, 1, 0, 64}, false, 0},
		{"last frame of a non-last segment", damage{0, -1, frameHeaderLen + 1, 0}, false, 0},
		{"header of a non-last segment", damage{0, 0, 2, 0}, false, 0},
		{"header of the last segment", damage{-1, 0, frameHeaderLen + 2, 0}, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "wal")
			opts := Options{SegmentSize: 8 << 10}
			w := mustCreate(t, dir, opts)
			for i := uint64(1); i <= 40; i += 4 {
				mustSave(t, w, hardState(1, 1, i+3), testEntries(i, i+3, 1, 300))
			}
			// Small frames at the end so the last segment has several.
			for i := uint64(41); i <= 44; i++ {
				mustSave(t, w, hardState(1, 1, i), testEntries(i, i, 1, 10))
			}
			mustClose(t, w)
			segs, err := listSegments(dir)
			if err != nil || len(segs) < 2 {
				t.Fatalf("want 2+ segments, got %v %v", segs, err)
			}
			si := tc.dmg.segment
			if si < 0 {
				si = len(segs) - 1
			}
			path := filepath.Join(dir, segs[si].name)
			offs := frameOffsets(t, path, segs[si].seq)
			fi := tc.dmg.frame
			switch fi {
			case -1:
				fi = len(offs) - 2
			case -2:
				fi = len(offs) - 1
			}
			if len(offs) < 4 && si == len(segs)-1 {
				t.Fatalf("last segment has only %d frames", len(offs))
			}
			data := readFile(t, path)
			at := offs[fi] + int64(tc.dmg.byteAt)
			if tc.dmg.zero > 0 {
				clear(data[at : at+int64(tc.dmg.zero)])
			} else {
				data[at] ^= 0x40
			}
			writeFile(t, path, data)

			w, err = OpenWith(dir, Marker{}, opts)
			if !tc.wantRepair {
				var ce *CorruptError
				if !errors.As(err, &ce) {
					t.Fatalf("Open: got %v, want CorruptError", err)
				}
				if ce.File != path || ce.Offset != offs[fi] {
					t.Fatalf("CorruptError names %s@%d, want %s@%d", ce.File, ce.Offset, path, offs[fi])
				}
				if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "offset") {
					t.Fatalf("error %q does not name file and offset", msg)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer mustClose(t, w)
			_, _, ents, err := w.ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if r := w.Repaired(); r == nil || r.Offset != offs[fi] {
				t.Fatalf("repair report %v, want offset %d", r, offs[fi])
			}
			want := append(testEntries(1, 40, 1, 300), testEntries(41, 44, 1, 10)...)
			checkEntries(t, ents, want[:tc.wantLast])
		})
	}
}

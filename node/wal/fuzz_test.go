package wal

import (
	"encoding/binary"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// fuzzSegment builds a valid segment 0 with a few frames of every record type.
func fuzzSegment(tb testing.TB) []byte {
	var out []byte
	var b frameBuilder
	add := func(fill func()) {
		b.reset()
		fill()
		out = append(out, b.finish(0, int64(len(out)))...)
	}
	add(func() {
		var h [16]byte
		binary.LittleEndian.PutUint64(h[8:], 0)
		b.addRaw(recSegmentHeader, h[:])
		b.addRaw(recMetadata, []byte("md"))
	})
	add(func() {
		for _, e := range testEntries(1, 3, 1, 20) {
			if err := b.addProto(recEntry, e); err != nil {
				tb.Fatal(err)
			}
		}
		if err := b.addProto(recHardState, hardState(1, 1, 2)); err != nil {
			tb.Fatal(err)
		}
	})
	add(func() {
		md := &raftpb.SnapshotMetadata{Index: new(uint64(2)), Term: new(uint64(1)), ConfState: &raftpb.ConfState{Voters: []uint64{1}}}
		if err := b.addProto(recSnapshot, md); err != nil {
			tb.Fatal(err)
		}
	})
	add(func() {
		if err := b.addProto(recEntry, testEntry(2, 2, 5)); err != nil {
			tb.Fatal(err)
		}
	})
	return append(out, make([]byte, 64)...)
}

// FuzzDecodeSegment feeds arbitrary bytes to the segment decoder, as the
// last and as a middle segment: it must never panic, and whatever it accepts
// must be self-consistent.
func FuzzDecodeSegment(f *testing.F) {
	seg := fuzzSegment(f)
	f.Add(seg)
	f.Add(seg[:len(seg)-70])
	f.Add([]byte{})
	f.Add(make([]byte, 40))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, last := range []bool{true, false} {
			var res walkResult
			var ents []*raftpb.Entry
			err := walkSegmentData("seg", segment{}, data, last, &res, func(rec walRecord) error {
				switch rec.typ {
				case recEntry:
					return appendEntry(&ents, 0, rec.entry)
				case recHardState, recSnapshot:
					return nil
				}
				t.Fatalf("record type %d reached the caller", rec.typ)
				return nil
			})
			if err != nil {
				continue
			}
			if res.tailEnd%frameAlign != 0 || res.headerEnd > res.tailEnd {
				t.Fatalf("tail end %d, header end %d", res.tailEnd, res.headerEnd)
			}
			if !last && res.repair != nil {
				t.Fatal("a middle segment was repaired")
			}
			if res.repair != nil && (res.repair.Offset != res.tailEnd || findFrame(data, 0, res.tailEnd) >= 0) {
				t.Fatalf("repair %+v with tail end %d leaves valid frames behind", res.repair, res.tailEnd)
			}
			for i, e := range ents {
				if e.GetIndex() != uint64(i)+1 {
					t.Fatalf("entry %d has index %d", i, e.GetIndex())
				}
			}
		}
	})
}

// TestFuzzSeedDecodes makes sure the fuzz seed is a valid segment, so the
// fuzzer starts from meaningful input.
func TestFuzzSeedDecodes(t *testing.T) {
	var res walkResult
	n := 0
	err := walkSegmentData("seg", segment{}, fuzzSegment(t), true, &res, func(walRecord) error { n++; return nil })
	if err != nil || n != 6 || res.repair != nil || string(res.metadata) != "md" {
		t.Fatalf("seed: %v, %d records, repair %v, metadata %q", err, n, res.repair, res.metadata)
	}
}

// FuzzDecodeFrameBody gets past the checksums: it seals arbitrary bytes as a
// valid frame behind a valid segment header, so the record decoder and the
// structure checks see hostile input that a torn or edited file could hold.
func FuzzDecodeFrameBody(f *testing.F) {
	var b frameBuilder
	b.reset()
	if err := b.addProto(recEntry, testEntry(1, 1, 10)); err != nil {
		f.Fatal(err)
	}
	if err := b.addProto(recHardState, hardState(1, 1, 1)); err != nil {
		f.Fatal(err)
	}
	f.Add(append([]byte(nil), b.buf[frameHeaderLen:]...))
	f.Add([]byte{byte(recSegmentHeader), 16})
	f.Add([]byte{byte(recEntry), 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{byte(recMetadata), 1, 'x'})
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) == 0 {
			return // an empty frame cannot be written
		}
		seg := fuzzSegment(t)
		head := seg[:findFrame(seg, 0, frameAlign)] // just the header frame
		var fb frameBuilder
		fb.reset()
		fb.buf = append(fb.buf, body...)
		data := append(append([]byte(nil), head...), fb.finish(0, int64(len(head)))...)
		var res walkResult
		var ents []*raftpb.Entry
		err := walkSegmentData("seg", segment{}, data, true, &res, func(rec walRecord) error {
			if rec.typ == recEntry {
				return appendEntry(&ents, 0, rec.entry)
			}
			return nil
		})
		if err == nil && res.tailEnd != int64(len(data)) {
			t.Fatalf("accepted frame but tail end %d != %d", res.tailEnd, len(data))
		}
	})
}

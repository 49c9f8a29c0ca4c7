package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// segment is one `%016x-%016x.wal` file: its sequence number and the first
// raft index it may hold (last index written before it was cut, plus one).
type segment struct {
	seq, index uint64
	name       string
}

const segmentExt = ".wal"

func segmentName(seq, index uint64) string {
	return fmt.Sprintf("%016x-%016x%s", seq, index, segmentExt)
}

func parseSegmentName(name string) (seq, index uint64, ok bool) {
	base, found := strings.CutSuffix(name, segmentExt)
	if !found || len(base) != 33 || base[16] != '-' {
		return 0, 0, false
	}
	seq, err1 := strconv.ParseUint(base[:16], 16, 64)
	index, err2 := strconv.ParseUint(base[17:], 16, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return seq, index, true
}

// Exist reports whether dir holds at least one *.wal file. The member uses it
// to tell a restart (ignore --initial-cluster) from a first start.
func Exist(dir string) bool {
	names, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range names {
		if strings.HasSuffix(e.Name(), segmentExt) && e.Type().IsRegular() {
			return true
		}
	}
	return false
}

// listSegments returns the segment files of dir ordered by sequence number.
// Names that merely end in .wal but do not parse are an error rather than
// ignored: they would make Exist true while holding nothing readable.
func listSegments(dir string) ([]segment, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("wal: read dir: %w", err)
	}
	var segs []segment
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), segmentExt) {
			continue
		}
		seq, index, ok := parseSegmentName(e.Name())
		if !ok {
			return nil, fmt.Errorf("wal: unexpected file name %q in %s", e.Name(), dir)
		}
		segs = append(segs, segment{seq: seq, index: index, name: e.Name()})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].seq < segs[j].seq })
	for i := 1; i < len(segs); i++ {
		if segs[i].seq == segs[i-1].seq {
			return nil, fmt.Errorf("wal: two segments with sequence %d in %s", segs[i].seq, dir)
		}
	}
	return segs, nil
}

// startSegment picks where reading for a snapshot at index begins: the last
// segment (by sequence) whose first index is <= index. Every segment cut
// after it starts above index, and everything needed past index is in it or
// later. The segments from there on must have consecutive sequence numbers.
func startSegment(dir string, segs []segment, index uint64) (int, error) {
	start := -1
	for i, s := range segs {
		if s.index <= index {
			start = i
		}
	}
	if start < 0 {
		return 0, fmt.Errorf("wal: no segment in %s covers index %d (oldest starts at %d): %w",
			dir, index, segs[0].index, ErrSnapshotNotFound)
	}
	for i := start + 1; i < len(segs); i++ {
		if segs[i].seq != segs[i-1].seq+1 {
			return 0, fmt.Errorf("wal: segment missing between %s and %s in %s", segs[i-1].name, segs[i].name, dir)
		}
	}
	return start, nil
}

// frameAt is one verified frame of a segment.
type frameAt struct {
	off  int64
	body []byte
}

// segmentScan is what the bytes of one segment hold.
type segmentScan struct {
	frames []frameAt
	end    int64  // where the next frame goes (first damaged offset if bad)
	bad    string // why decoding stopped early; empty when the data ended cleanly
	later  int64  // offset of a valid frame behind the damage, or -1
}

func scanSegment(data []byte, seq uint64) segmentScan {
	var sc segmentScan
	off := int64(0)
	for {
		body, next, st, reason := parseFrame(data, seq, off)
		if st == frameOK {
			sc.frames = append(sc.frames, frameAt{off: off, body: body})
			off = next
			continue
		}
		sc.end = off
		if st == frameEnd {
			if off >= int64(len(data)) || allZero(data[off:]) {
				sc.later = -1
				return sc
			}
			reason = "zero-filled region followed by non-zero bytes"
		}
		sc.bad = reason
		sc.later = findFrame(data, seq, off+frameAlign)
		return sc
	}
}

// walRecord is one decoded record; only the field of its type is set.
type walRecord struct {
	typ        recordType
	seq, index uint64 // recSegmentHeader
	metadata   []byte
	entry      *raftpb.Entry
	hardState  *raftpb.HardState
	snapshot   *raftpb.SnapshotMetadata
}

func decodeRecord(t recordType, p []byte) (walRecord, error) {
	r := walRecord{typ: t}
	var err error
	switch t {
	case recSegmentHeader:
		if len(p) != 16 {
			return r, fmt.Errorf("%w: segment header of %d bytes", errBadRecord, len(p))
		}
		r.seq = binary.LittleEndian.Uint64(p[0:8])
		r.index = binary.LittleEndian.Uint64(p[8:16])
	case recMetadata:
		r.metadata = bytes.Clone(p)
	case recEntry:
		r.entry = &raftpb.Entry{}
		err = proto.Unmarshal(p, r.entry)
	case recHardState:
		r.hardState = &raftpb.HardState{}
		err = proto.Unmarshal(p, r.hardState)
	case recSnapshot:
		r.snapshot = &raftpb.SnapshotMetadata{}
		err = proto.Unmarshal(p, r.snapshot)
	default:
		return r, fmt.Errorf("%w: unknown record type %d", errBadRecord, t)
	}
	if err != nil {
		return r, fmt.Errorf("%w: type %d: %v", errBadRecord, t, err)
	}
	return r, nil
}

// walkResult describes the tail segment after a walk.
type walkResult struct {
	metadata  []byte
	tailEnd   int64 // offset after the last valid frame of the last segment
	headerEnd int64 // offset after the header frame of the last segment
	repair    *RepairReport
}

// walkSegments decodes segs in order and hands every record after the
// segment headers and metadata to fn. Damage is fatal, except a torn tail of
// the last segment with nothing valid behind it: that frame was being written
// when the process died, was never synced, so never acknowledged; it is
// reported for repair. walkSegments itself never writes.
func walkSegments(dir string, segs []segment, fn func(walRecord) error) (walkResult, error) {
	var res walkResult
	for i, s := range segs {
		path := filepath.Join(dir, s.name)
		data, err := os.ReadFile(path)
		if err != nil {
			return res, fmt.Errorf("wal: read segment: %w", err)
		}
		if err := walkSegmentData(path, s, data, i == len(segs)-1, &res, fn); err != nil {
			return res, err
		}
	}
	return res, nil
}

// walkSegmentData is walkSegments for one segment's bytes (the fuzz target).
func walkSegmentData(path string, s segment, data []byte, last bool, res *walkResult, fn func(walRecord) error) error {
	sc := scanSegment(data, s.seq)
	if sc.bad != "" {
		switch {
		case !last:
			return &CorruptError{File: path, Offset: sc.end, Reason: sc.bad + " (not the last segment)"}
		case sc.later >= 0:
			return &CorruptError{File: path, Offset: sc.end,
				Reason: fmt.Sprintf("%s, with valid data after it at offset %d", sc.bad, sc.later)}
		case len(sc.frames) == 0:
			return &CorruptError{File: path, Offset: 0, Reason: "segment header: " + sc.bad}
		}
		res.repair = &RepairReport{File: path, Offset: sc.end, Dropped: lastNonZero(data) - sc.end, Reason: sc.bad}
	}
	if len(sc.frames) == 0 {
		return &CorruptError{File: path, Offset: 0, Reason: "segment has no header"}
	}
	for fi, fr := range sc.frames {
		n := 0
		err := parseRecords(fr.body, func(t recordType, p []byte) error {
			rec, err := decodeRecord(t, p)
			if err != nil {
				return err
			}
			n++
			return checkStructure(s, fi == 0, n, rec, &res.metadata, fn)
		})
		if errors.Is(err, ErrSnapshotMismatch) {
			return fmt.Errorf("wal: %s at offset %d: %w", path, fr.off, err)
		}
		if err != nil {
			return &CorruptError{File: path, Offset: fr.off, Reason: err.Error()}
		}
	}
	if last {
		res.tailEnd = sc.end
		res.headerEnd = sc.frames[0].off + alignUp(frameHeaderLen+int64(len(sc.frames[0].body)))
	}
	return nil
}

// checkStructure enforces that every segment starts with a header naming it
// and the metadata (identical in all segments), then passes the rest on.
func checkStructure(s segment, firstFrame bool, n int, rec walRecord, md *[]byte, fn func(walRecord) error) error {
	switch {
	case firstFrame && n == 1:
		if rec.typ != recSegmentHeader {
			return fmt.Errorf("segment does not start with a header (record type %d)", rec.typ)
		}
		if rec.seq != s.seq || rec.index != s.index {
			return fmt.Errorf("segment header says %s, file is %s", segmentName(rec.seq, rec.index), s.name)
		}
		return nil
	case rec.typ == recSegmentHeader:
		return fmt.Errorf("segment header in the middle of a segment")
	case rec.typ == recMetadata:
		if *md != nil && !bytes.Equal(*md, rec.metadata) {
			return fmt.Errorf("metadata differs from earlier segments")
		}
		*md = rec.metadata
		return nil
	}
	return fn(rec)
}

// lastNonZero is the length of b without its trailing zeros.
func lastNonZero(b []byte) int64 {
	end := len(b)
	for end > 0 { // skip whole zero chunks with the vectorised compare first
		n := min(end, len(zeroChunk))
		if !allZero(b[end-n : end]) {
			break
		}
		end -= n
	}
	for end > 0 && b[end-1] == 0 {
		end--
	}
	return int64(end)
}

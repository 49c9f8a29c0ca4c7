package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"google.golang.org/protobuf/proto"
)

// On-disk format of a segment: a sequence of frames, each 8-byte aligned.
//
//	frame  = header(16) body(L) zero padding to a multiple of 8
//	header = magic u32 | L u32 | bodyCRC u32 | headerCRC u32   (little endian)
//	body   = record*
//	record = type u8 | uvarint n | n bytes
//
// One Save call writes exactly one frame and syncs it before returning, so a
// frame is the unit of atomicity: a crash can only tear the frame being
// written, and that frame was never acknowledged. Both CRCs (Castagnoli) are
// seeded with the segment sequence number and the frame's file offset, so a
// frame copied to another place, or left over from another file, never
// verifies. The header CRC lets a scan for "any valid frame after this
// damage" reject garbage offsets without reading their bodies.
//
// A header of 16 zero bytes marks the end of the written data; the rest of
// the preallocated segment must then be zero too.

const (
	frameMagic     = 0x4c415765 // "eWAL" as little-endian bytes
	frameHeaderLen = 16
	frameAlign     = 8
)

type recordType byte

const (
	recSegmentHeader recordType = 1 // seq u64 | first index u64, first record of every segment
	recMetadata      recordType = 2 // opaque bytes given at Create
	recEntry         recordType = 3 // raftpb.Entry
	recHardState     recordType = 4 // raftpb.HardState
	recSnapshot      recordType = 5 // raftpb.SnapshotMetadata (index, term, conf state)
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameSeed binds a frame's checksums to where it lives.
func frameSeed(seq uint64, off int64) uint32 {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[0:8], seq)
	binary.LittleEndian.PutUint64(b[8:16], uint64(off))
	return crc32.Update(0, castagnoli, b[:])
}

func alignUp(n int64) int64 { return (n + frameAlign - 1) &^ (frameAlign - 1) }

// frameBuilder accumulates the records of one frame behind a reserved header.
type frameBuilder struct{ buf []byte }

func (b *frameBuilder) reset() {
	b.buf = append(b.buf[:0], make([]byte, frameHeaderLen)...)
}

func (b *frameBuilder) addRaw(t recordType, p []byte) {
	b.buf = append(b.buf, byte(t))
	b.buf = binary.AppendUvarint(b.buf, uint64(len(p)))
	b.buf = append(b.buf, p...)
}

func (b *frameBuilder) addProto(t recordType, m proto.Message) error {
	size := proto.Size(m)
	b.buf = append(b.buf, byte(t))
	b.buf = binary.AppendUvarint(b.buf, uint64(size))
	start := len(b.buf)
	out, err := proto.MarshalOptions{}.MarshalAppend(b.buf, m)
	if err != nil {
		return fmt.Errorf("wal: marshal record: %w", err)
	}
	if len(out)-start != size {
		return fmt.Errorf("wal: marshal record: size %d, wrote %d", size, len(out)-start)
	}
	b.buf = out
	return nil
}

// finish seals the frame for position (seq, off) and returns it with padding.
func (b *frameBuilder) finish(seq uint64, off int64) []byte {
	bodyLen := len(b.buf) - frameHeaderLen
	total := alignUp(int64(len(b.buf)))
	b.buf = append(b.buf, make([]byte, total-int64(len(b.buf)))...)
	seed := frameSeed(seq, off)
	h := b.buf[:frameHeaderLen]
	binary.LittleEndian.PutUint32(h[0:4], frameMagic)
	binary.LittleEndian.PutUint32(h[4:8], uint32(bodyLen))
	binary.LittleEndian.PutUint32(h[8:12], crc32.Update(seed, castagnoli, b.buf[frameHeaderLen:frameHeaderLen+bodyLen]))
	binary.LittleEndian.PutUint32(h[12:16], crc32.Update(seed, castagnoli, h[0:12]))
	return b.buf
}

// frameStatus classifies what parseFrame found at an offset.
type frameStatus int

const (
	frameOK  frameStatus = iota
	frameEnd             // end of file, or a zero header: no more written data
	frameBad             // damaged or truncated frame; reason says why
)

// parseFrame reads the frame at off. On frameOK it returns the body and the
// offset of the next frame (which may lie past the end of data when the file
// was cut inside the padding).
func parseFrame(data []byte, seq uint64, off int64) (body []byte, next int64, st frameStatus, reason string) {
	if off >= int64(len(data)) {
		return nil, off, frameEnd, ""
	}
	rest := data[off:]
	if len(rest) < frameHeaderLen {
		if allZero(rest) {
			return nil, off, frameEnd, ""
		}
		return nil, off, frameBad, "truncated frame header"
	}
	h := rest[:frameHeaderLen]
	if allZero(h) {
		return nil, off, frameEnd, ""
	}
	if binary.LittleEndian.Uint32(h[0:4]) != frameMagic {
		return nil, off, frameBad, "bad frame magic"
	}
	seed := frameSeed(seq, off)
	if crc32.Update(seed, castagnoli, h[0:12]) != binary.LittleEndian.Uint32(h[12:16]) {
		return nil, off, frameBad, "frame header checksum mismatch"
	}
	n := int64(binary.LittleEndian.Uint32(h[4:8]))
	if n == 0 {
		return nil, off, frameBad, "empty frame"
	}
	if n > int64(len(rest))-frameHeaderLen {
		return nil, off, frameBad, fmt.Sprintf("truncated frame: body of %d bytes, %d left in file", n, int64(len(rest))-frameHeaderLen)
	}
	body = rest[frameHeaderLen : frameHeaderLen+n]
	if crc32.Update(seed, castagnoli, body) != binary.LittleEndian.Uint32(h[8:12]) {
		return nil, off, frameBad, "frame checksum mismatch"
	}
	return body, off + alignUp(frameHeaderLen+n), frameOK, ""
}

// findFrame returns the offset of the first valid frame at or after from, or
// -1. It is how a damaged spot is told apart from a torn tail: anything valid
// behind the damage was written after it had been synced.
func findFrame(data []byte, seq uint64, from int64) int64 {
	var magic [4]byte
	binary.LittleEndian.PutUint32(magic[:], frameMagic)
	off := alignUp(from)
	for off+frameHeaderLen <= int64(len(data)) {
		// bytes.Index skips a mostly-zero 64 MiB tail quickly.
		i := bytes.Index(data[off:], magic[:])
		if i < 0 {
			return -1
		}
		cand := off + int64(i)
		if cand%frameAlign == 0 {
			if _, _, st, _ := parseFrame(data, seq, cand); st == frameOK {
				return cand
			}
		}
		off = cand + 1
	}
	return -1
}

// zeroChunk lets allZero compare with the vectorised bytes.Equal; a
// preallocated 64 MiB tail is checked on every open.
var zeroChunk [4096]byte

func allZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeroChunk))
		if !bytes.Equal(b[:n], zeroChunk[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

var errBadRecord = errors.New("malformed record")

// parseRecords walks the records of a verified frame body. A malformed record
// inside a body whose checksum matched is not a torn write but a bug or a
// deliberate edit, so callers treat it as hard corruption.
func parseRecords(body []byte, fn func(t recordType, p []byte) error) error {
	for len(body) > 0 {
		t := recordType(body[0])
		n, w := binary.Uvarint(body[1:])
		if w <= 0 {
			return fmt.Errorf("%w: bad length of type %d record", errBadRecord, t)
		}
		body = body[1+w:]
		if n > uint64(len(body)) {
			return fmt.Errorf("%w: type %d record of %d bytes, %d left in frame", errBadRecord, t, n, len(body))
		}
		if err := fn(t, body[:n]); err != nil {
			return err
		}
		body = body[n:]
	}
	return nil
}

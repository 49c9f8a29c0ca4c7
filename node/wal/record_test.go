package wal

import (
	"bytes"
	"testing"
)

func TestZeroHelpers(t *testing.T) {
	big := make([]byte, 3*len(zeroChunk)+17)
	tests := []struct {
		name    string
		data    []byte
		allZero bool
		lastNZ  int64
	}{
		{"empty", nil, true, 0},
		{"zeros spanning chunks", big, true, 0},
		{"first byte", append([]byte{1}, big...), false, 1},
		{"last byte", append(append([]byte(nil), big...), 9), false, int64(len(big)) + 1},
		{"middle of a chunk", func() []byte { b := bytes.Clone(big); b[len(zeroChunk)+5] = 3; return b }(), false, int64(len(zeroChunk)) + 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := allZero(tc.data); got != tc.allZero {
				t.Errorf("allZero = %v", got)
			}
			if got := lastNonZero(tc.data); got != tc.lastNZ {
				t.Errorf("lastNonZero = %d, want %d", got, tc.lastNZ)
			}
		})
	}
}

func TestFrameRoundTripAndPlacement(t *testing.T) {
	var b frameBuilder
	b.reset()
	b.addRaw(recMetadata, []byte("hello"))
	frame := bytes.Clone(b.finish(3, 64))
	if len(frame)%frameAlign != 0 {
		t.Fatalf("frame of %d bytes is not aligned", len(frame))
	}
	place := func(seq uint64, off int) ([]byte, frameStatus) {
		data := make([]byte, off+len(frame)+32)
		copy(data[off:], frame)
		body, _, st, _ := parseFrame(data, seq, int64(off))
		return body, st
	}
	tests := []struct {
		name string
		seq  uint64
		off  int
		want frameStatus
	}{
		{"where it was written", 3, 64, frameOK},
		{"other offset", 3, 72, frameBad},
		{"other segment", 4, 64, frameBad},
	}
	for _, tc := range tests {
		body, st := place(tc.seq, tc.off)
		if st != tc.want {
			t.Errorf("%s: status %v, want %v", tc.name, st, tc.want)
		}
		if st == frameOK && !bytes.Equal(body, []byte{byte(recMetadata), 5, 'h', 'e', 'l', 'l', 'o'}) {
			t.Errorf("%s: body %q", tc.name, body)
		}
	}
}

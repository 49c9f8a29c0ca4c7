package peer

import (
	"encoding/binary"
	"fmt"
	"io"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

const (
	frameHeaderLen = 4
	// maxFrameLen bounds one message so a corrupt length cannot make the
	// receiver allocate gigabytes; raft messages are normally ≤ a few MB.
	maxFrameLen = 256 << 20
)

// appendFrame appends m as a length-prefixed frame to buf. On error buf is
// returned unchanged.
func appendFrame(buf []byte, m *raftpb.Message) ([]byte, error) {
	start := len(buf)
	buf = append(buf, 0, 0, 0, 0)
	out, err := proto.MarshalOptions{}.MarshalAppend(buf, m)
	if err != nil {
		return buf[:start], err
	}
	n := len(out) - start - frameHeaderLen
	if n == 0 || n > maxFrameLen {
		// An empty frame is a ping, so an empty message cannot be sent as is.
		return out[:start], fmt.Errorf("message of %d bytes cannot be framed", n)
	}
	binary.BigEndian.PutUint32(out[start:], uint32(n))
	return out, nil
}

// readFrame reads one frame into buf (grown as needed) and returns the
// payload; an empty payload is a ping.
func readFrame(r io.Reader, buf []byte) ([]byte, error) {
	var hdr [frameHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return buf, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrameLen {
		return buf, fmt.Errorf("frame of %d bytes exceeds the %d-byte limit", n, maxFrameLen)
	}
	if uint32(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return buf, err
	}
	return buf, nil
}

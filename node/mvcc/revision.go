package mvcc

import (
	"encoding/binary"
	"fmt"
)

// revision identifies one change: main is the store revision of the write
// transaction, sub the position of the change inside it.
type revision struct {
	main, sub int64
}

// Revision keys in the "key" bucket are etcd's: 8-byte big-endian main, '_',
// 8-byte big-endian sub, and a trailing 't' for a tombstone. Big-endian makes
// bbolt's byte order the revision order.
const (
	revBytesLen  = 8 + 1 + 8
	tombstoneTag = 't'
)

func revToBytes(r revision, tombstone bool) []byte {
	b := make([]byte, revBytesLen, revBytesLen+1)
	binary.BigEndian.PutUint64(b, uint64(r.main))
	b[8] = '_'
	binary.BigEndian.PutUint64(b[9:], uint64(r.sub))
	if tombstone {
		b = append(b, tombstoneTag)
	}
	return b
}

// bytesToRev parses a revision key and tells whether it marks a tombstone.
func bytesToRev(b []byte) (revision, bool, error) {
	switch {
	case len(b) == revBytesLen && b[8] == '_':
	case len(b) == revBytesLen+1 && b[8] == '_' && b[revBytesLen] == tombstoneTag:
	default:
		return revision{}, false, fmt.Errorf("malformed revision key %x", b)
	}
	r := revision{
		main: int64(binary.BigEndian.Uint64(b)),
		sub:  int64(binary.BigEndian.Uint64(b[9:])),
	}
	return r, len(b) == revBytesLen+1, nil
}

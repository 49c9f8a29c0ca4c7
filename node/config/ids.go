package config

import (
	"crypto/sha1"
	"encoding/binary"
	"sort"
	"strconv"
	"time"
)

// MemberID computes a member's ID like etcd: sha1 over the sorted peer URL
// strings concatenated, then the cluster token, then (for runtime adds) the
// Unix seconds of t; the ID is the first 8 bytes, big-endian. The member name
// is deliberately not an input.
func MemberID(peerURLs []string, token string, t *time.Time) uint64 {
	urls := append([]string(nil), peerURLs...)
	sort.Strings(urls)
	var b []byte
	for _, u := range urls {
		b = append(b, u...)
	}
	b = append(b, token...)
	if t != nil {
		b = strconv.AppendInt(b, t.Unix(), 10)
	}
	sum := sha1.Sum(b)
	return binary.BigEndian.Uint64(sum[:8])
}

// ClusterID computes the cluster ID from the member IDs like etcd: the sorted
// IDs as 8-byte big-endian words, sha1, first 8 bytes big-endian.
func ClusterID(memberIDs []uint64) uint64 {
	ids := append([]uint64(nil), memberIDs...)
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	b := make([]byte, 8*len(ids))
	for i, id := range ids {
		binary.BigEndian.PutUint64(b[8*i:], id)
	}
	sum := sha1.Sum(b)
	return binary.BigEndian.Uint64(sum[:8])
}

// IDString prints an ID the way etcd does: lowercase hex, no leading zeros.
func IDString(id uint64) string { return strconv.FormatUint(id, 16) }

// ParseID parses an ID printed by IDString.
func ParseID(s string) (uint64, error) { return strconv.ParseUint(s, 16, 64) }

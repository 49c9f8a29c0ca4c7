package auth

import (
	"bytes"
	"sort"

	"go.etcd.io/etcd/api/v3/authpb"
)

// Key ranges follow etcd's conventions (server/auth/range_perm_cache.go):
// an empty range end is the key alone, a range end of "\x00" is every key
// from the key on, anything else is [key, end). In a permission, key
// "\x00" with end "\x00" is the whole key space.

// interval is [begin, end); a nil end is past every key.
type interval struct{ begin, end []byte }

func isOpenEnded(end []byte) bool { return len(end) == 1 && end[0] == 0 }

// pointEnd is the end of the interval that holds key alone.
func pointEnd(key []byte) []byte { return append(bytes.Clone(key), 0) }

// permInterval is the interval a permission grants.
func permInterval(key, end []byte) interval {
	switch {
	case len(end) == 0:
		return interval{key, pointEnd(key)}
	case isOpenEnded(end):
		return interval{key, nil}
	}
	return interval{key, end}
}

// cmpEnd orders interval ends, nil being the greatest.
func cmpEnd(a, b []byte) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	return bytes.Compare(a, b)
}

// ValidPermissionRange reports whether etcd accepts key and end as a
// permission: a key, and an end that is empty, "\x00" or after the key.
func ValidPermissionRange(key, end []byte) bool {
	if len(key) == 0 {
		return false
	}
	return len(end) == 0 || isOpenEnded(end) || bytes.Compare(key, end) < 0
}

// rangePerms are one user's merged permissions, sorted by begin.
type rangePerms struct {
	read, write []interval
}

func mergePerms(roles []*authpb.Role) *rangePerms {
	p := &rangePerms{}
	for _, r := range roles {
		for _, perm := range r.GetKeyPermission() {
			iv := permInterval(perm.GetKey(), perm.GetRangeEnd())
			switch perm.GetPermType() {
			case authpb.Permission_READ:
				p.read = append(p.read, iv)
			case authpb.Permission_WRITE:
				p.write = append(p.write, iv)
			case authpb.Permission_READWRITE:
				p.read = append(p.read, iv)
				p.write = append(p.write, iv)
			}
		}
	}
	byBegin := func(ivs []interval) {
		sort.Slice(ivs, func(i, j int) bool { return bytes.Compare(ivs[i].begin, ivs[j].begin) < 0 })
	}
	byBegin(p.read)
	byBegin(p.write)
	return p
}

// permits reports whether ivs allow an access to key (end empty), or to
// the whole range [key, end) ("\x00": every key from key on). A range is
// allowed when the permissions together cover it without a gap, as etcd's
// interval tree Contains does; an empty or inverted range is not.
func permits(ivs []interval, key, end []byte) bool {
	if len(end) == 0 {
		for _, iv := range ivs {
			if bytes.Compare(iv.begin, key) <= 0 && cmpEnd(key, iv.end) < 0 {
				return true
			}
		}
		return false
	}
	var qend []byte
	if !isOpenEnded(end) {
		qend = end
		if bytes.Compare(key, qend) >= 0 {
			return false
		}
	}
	cur := key
	for _, iv := range ivs {
		if bytes.Compare(iv.begin, cur) > 0 {
			return false // a gap before this one; the rest start later still
		}
		if cmpEnd(iv.end, cur) > 0 {
			if iv.end == nil {
				return true
			}
			cur = iv.end
		}
		if qend != nil && bytes.Compare(cur, qend) >= 0 {
			return true
		}
	}
	return false
}

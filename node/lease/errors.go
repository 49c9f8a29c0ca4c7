package lease

import "errors"

// MaxTTL is the largest TTL a lease can be granted with (etcd's MaxLeaseTTL).
const MaxTTL = 9000000000

// Errors of the Lessor; the server maps them to etcd's rpctypes errors.
var (
	ErrNotFound    = errors.New("lease not found")
	ErrExists      = errors.New("lease already exists")
	ErrTTLTooLarge = errors.New("too large lease TTL")
	// ErrNotPrimary means the Lessor does not track time: the member is not
	// the leader, or is a leader still applying the earlier terms' entries.
	ErrNotPrimary = errors.New("not a primary lessor")
)

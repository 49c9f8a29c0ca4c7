package mvcc

import (
	"errors"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// Errors of the store. Their texts are etcd's; ToGRPCError maps them to the
// rpctypes errors clientv3 recognises.
var (
	ErrCompacted         = errors.New("mvcc: required revision has been compacted")
	ErrFutureRev         = errors.New("mvcc: required revision is a future revision")
	ErrKeyNotFound       = errors.New("etcdserver: key not found")
	ErrEmptyKey          = errors.New("etcdserver: key is not provided")
	ErrValueProvided     = errors.New("etcdserver: value is provided")
	ErrLeaseProvided     = errors.New("etcdserver: lease is provided")
	ErrTooManyOps        = errors.New("etcdserver: too many operations in txn request")
	ErrDuplicateKey      = errors.New("etcdserver: duplicate key given in txn request")
	ErrInvalidSortOption = errors.New("etcdserver: invalid sort option")
	// ErrLeaseNotFound refuses a put with a lease that is not granted.
	ErrLeaseNotFound = errors.New("etcdserver: requested lease not found")
	// ErrCorrupt means the index and the backend disagree; the member must stop.
	ErrCorrupt = errors.New("mvcc: index and backend disagree")
)

var grpcErrors = []struct{ err, grpc error }{
	{ErrCompacted, rpctypes.ErrGRPCCompacted},
	{ErrFutureRev, rpctypes.ErrGRPCFutureRev},
	{ErrKeyNotFound, rpctypes.ErrGRPCKeyNotFound},
	{ErrEmptyKey, rpctypes.ErrGRPCEmptyKey},
	{ErrValueProvided, rpctypes.ErrGRPCValueProvided},
	{ErrLeaseProvided, rpctypes.ErrGRPCLeaseProvided},
	{ErrTooManyOps, rpctypes.ErrGRPCTooManyOps},
	{ErrDuplicateKey, rpctypes.ErrGRPCDuplicateKey},
	{ErrInvalidSortOption, rpctypes.ErrGRPCInvalidSortOption},
	{ErrLeaseNotFound, rpctypes.ErrGRPCLeaseNotFound},
	{ErrCorrupt, rpctypes.ErrGRPCCorrupt},
}

// ToGRPCError maps a store error (possibly wrapped) to its rpctypes gRPC status
// error. Other errors, and nil, are returned unchanged.
func ToGRPCError(err error) error {
	for _, m := range grpcErrors {
		if errors.Is(err, m.err) {
			return m.grpc
		}
	}
	return err
}

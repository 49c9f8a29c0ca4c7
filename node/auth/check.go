package auth

import (
	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// Info is who sends a request: the user a token names and the auth
// revision when the token was looked up (etcd's AuthInfo). The zero Info
// is a request without a token.
type Info struct {
	Username string
	Revision uint64
}

// permitted is etcd's isOpPermitted: nothing is checked while auth is
// disabled; a request without a user, or checked against an older revision
// than the store's (the permissions may have changed since), is refused;
// root may do everything.
func (s *Store) permitted(ai Info, key, end []byte, typ authpb.Permission_Type) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.enabled {
		return nil
	}
	if ai.Revision == 0 {
		return ErrUserEmpty
	}
	if ai.Revision < s.rev {
		return ErrAuthOldRevision
	}
	u := s.users[ai.Username]
	if u == nil {
		return ErrPermissionDenied
	}
	if hasRootRole(u) {
		return nil
	}
	p := s.perms[ai.Username]
	ivs := p.read
	if typ == authpb.Permission_WRITE {
		ivs = p.write
	}
	if permits(ivs, key, end) {
		return nil
	}
	return ErrPermissionDenied
}

// IsRangePermitted checks read permission on a key (end empty) or range.
func (s *Store) IsRangePermitted(ai Info, key, end []byte) error {
	return s.permitted(ai, key, end, authpb.Permission_READ)
}

// IsPutPermitted checks write permission on a key.
func (s *Store) IsPutPermitted(ai Info, key []byte) error {
	return s.permitted(ai, key, nil, authpb.Permission_WRITE)
}

// IsDeleteRangePermitted checks write permission on a key or range.
func (s *Store) IsDeleteRangePermitted(ai Info, key, end []byte) error {
	return s.permitted(ai, key, end, authpb.Permission_WRITE)
}

// IsAdminPermitted checks that the user has the root role (anyone may
// while auth is disabled).
func (s *Store) IsAdminPermitted(ai Info) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.enabled {
		return nil
	}
	if ai.Username == "" {
		return ErrUserEmpty
	}
	u := s.users[ai.Username]
	if u == nil {
		return ErrUserNotFound
	}
	if !hasRootRole(u) {
		return ErrPermissionDenied
	}
	return nil
}

// HasRole reports whether user has role.
func (s *Store) HasRole(user, role string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, r := range s.users[user].GetRoles() {
		if r == role {
			return true
		}
	}
	return false
}

// LeaseKeys returns the keys attached to a lease (none for an unknown one).
type LeaseKeys func(id int64) [][]byte

// CheckLeaseKeys checks that the user may write every key attached to a
// lease, as etcd requires to revoke it, to attach another key to it, or to
// keep it alive; an admin may always.
func (s *Store) CheckLeaseKeys(ai Info, keys [][]byte) error {
	if s.IsAdminPermitted(ai) == nil {
		return nil
	}
	for _, k := range keys {
		if err := s.IsPutPermitted(ai, k); err != nil {
			return err
		}
	}
	return nil
}

// CheckLeaseKeysReadable checks read permission on every key of a lease
// (time-to-live with keys, lease list); an admin may always.
func (s *Store) CheckLeaseKeysReadable(ai Info, keys [][]byte) error {
	if s.IsAdminPermitted(ai) == nil {
		return nil
	}
	for _, k := range keys {
		if err := s.IsRangePermitted(ai, k, nil); err != nil {
			return err
		}
	}
	return nil
}

// CheckPut is etcd's checkPutAuth: write permission on the key, on every
// key already attached to the lease, and read permission for prev_kv.
func (s *Store) CheckPut(ai Info, r *pb.PutRequest, leaseKeys LeaseKeys) error {
	if err := s.IsPutPermitted(ai, r.GetKey()); err != nil {
		return err
	}
	if r.GetLease() != 0 {
		if err := s.CheckLeaseKeys(ai, leaseKeys(r.GetLease())); err != nil {
			return err
		}
	}
	if r.GetPrevKv() {
		return s.IsRangePermitted(ai, r.GetKey(), nil)
	}
	return nil
}

// CheckDeleteRange checks write permission on the range, and read
// permission for prev_kv.
func (s *Store) CheckDeleteRange(ai Info, r *pb.DeleteRangeRequest) error {
	if err := s.IsDeleteRangePermitted(ai, r.GetKey(), r.GetRangeEnd()); err != nil {
		return err
	}
	if r.GetPrevKv() {
		return s.IsRangePermitted(ai, r.GetKey(), r.GetRangeEnd())
	}
	return nil
}

// CheckTxn checks every compare (read) and every operation of both
// branches, nested transactions included, whichever branch will run.
func (s *Store) CheckTxn(ai Info, r *pb.TxnRequest, leaseKeys LeaseKeys) error {
	for _, c := range r.GetCompare() {
		if err := s.IsRangePermitted(ai, c.GetKey(), c.GetRangeEnd()); err != nil {
			return err
		}
	}
	for _, ops := range [][]*pb.RequestOp{r.GetSuccess(), r.GetFailure()} {
		for _, op := range ops {
			var err error
			switch {
			case op.GetRequestRange() != nil:
				err = s.IsRangePermitted(ai, op.GetRequestRange().GetKey(), op.GetRequestRange().GetRangeEnd())
			case op.GetRequestPut() != nil:
				err = s.CheckPut(ai, op.GetRequestPut(), leaseKeys)
			case op.GetRequestDeleteRange() != nil:
				err = s.CheckDeleteRange(ai, op.GetRequestDeleteRange())
			case op.GetRequestTxn() != nil:
				err = s.CheckTxn(ai, op.GetRequestTxn(), leaseKeys)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

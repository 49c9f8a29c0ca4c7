package auth

import (
	"sort"

	"go.etcd.io/etcd/api/v3/authpb"
)

// rootPerm is what etcd reports as the root role's permission: everything.
func rootPerm() *authpb.Permission {
	return &authpb.Permission{PermType: authpb.Permission_READWRITE, Key: []byte{}, RangeEnd: []byte{0}}
}

// UserGet returns a user's roles, sorted.
func (s *Store) UserGet(name string) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u := s.users[name]
	if u == nil {
		return nil, ErrUserNotFound
	}
	return append([]string(nil), u.GetRoles()...), nil
}

// UserList returns every user name, sorted as the backend keeps them.
func (s *Store) UserList() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.users))
	for name := range s.users {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// RoleGet returns a role's permissions (root: everything).
func (s *Store) RoleGet(name string) ([]*authpb.Permission, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.roles[name]
	if r == nil {
		return nil, ErrRoleNotFound
	}
	if name == rootRole {
		return []*authpb.Permission{rootPerm()}, nil
	}
	out := make([]*authpb.Permission, len(r.GetKeyPermission()))
	for i, p := range r.GetKeyPermission() {
		out[i] = &authpb.Permission{PermType: p.GetPermType(), Key: p.GetKey(), RangeEnd: p.GetRangeEnd()}
	}
	return out, nil
}

// RoleList returns every role name, sorted.
func (s *Store) RoleList() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.roles))
	for name := range s.roles {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

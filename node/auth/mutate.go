package auth

import (
	"bytes"
	"encoding/base64"
	"sort"
	"strconv"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
)

// The mutations below are etcd's (server/auth/store.go), applied from raft
// entries: each validates against the current state, writes the changed
// records and the revision into w (the entry's batch), then installs the
// new state. An error of this package changes nothing; any other error is
// the backend's.

// change collects what a mutation changed.
type change struct {
	st            *state
	users, roles  []string // names whose record must be written or deleted
	enabled, bump bool     // write the enabled flag; advance the revision
}

func (s *Store) commit(w Writer, c *change) error {
	if c.bump {
		c.st.rev++
	}
	for _, name := range c.users {
		var err error
		if u := c.st.users[name]; u != nil {
			err = putUser(w, u)
		} else {
			err = w.Delete(UsersBucket, []byte(name))
		}
		if err != nil {
			return err
		}
	}
	for _, name := range c.roles {
		var err error
		if r := c.st.roles[name]; r != nil {
			err = putRole(w, r)
		} else {
			err = w.Delete(RolesBucket, []byte(name))
		}
		if err != nil {
			return err
		}
	}
	if c.enabled {
		v := disabledValue
		if c.st.enabled {
			v = enabledValue
		}
		if err := w.Put(Bucket, enabledKey, v); err != nil {
			return err
		}
	}
	if err := w.Put(Bucket, revisionKey, encodeRevision(c.st.rev)); err != nil {
		return err
	}
	s.install(c.st)
	return nil
}

// Enable turns authentication on; the root user must exist and have the
// root role. Enabling does not change the revision, as in etcd.
func (s *Store) Enable(w Writer) error {
	st := s.snapshot()
	if st.enabled {
		return nil
	}
	u := st.users[rootUser]
	if u == nil {
		return ErrRootUserNotExist
	}
	if !hasRootRole(u) {
		return ErrRootRoleNotExist
	}
	st.enabled = true
	return s.commit(w, &change{st: st, enabled: true})
}

// Disable turns authentication off and forgets every token.
func (s *Store) Disable(w Writer) error {
	st := s.snapshot()
	if !st.enabled {
		return nil
	}
	st.enabled = false
	if err := s.commit(w, &change{st: st, enabled: true, bump: true}); err != nil {
		return err
	}
	s.tokens.clear()
	return nil
}

// decodeHash reads the password hash the receiving member computed (the
// raft entry never holds the password itself).
func decodeHash(hashed string) ([]byte, error) {
	h, err := base64.StdEncoding.DecodeString(hashed)
	if err != nil {
		return nil, ErrNoPasswordUser
	}
	return h, nil
}

// UserAdd adds a user with a password hash or with no password.
func (s *Store) UserAdd(w Writer, r *pb.AuthUserAddRequest) error {
	if r.GetName() == "" {
		return ErrUserEmpty
	}
	st := s.snapshot()
	if st.users[r.GetName()] != nil {
		return ErrUserAlreadyExist
	}
	opts := r.GetOptions()
	if opts == nil {
		opts = &authpb.UserAddOptions{}
	}
	u := &authpb.User{Name: []byte(r.GetName()), Options: proto.Clone(opts).(*authpb.UserAddOptions)}
	if !opts.GetNoPassword() {
		h, err := decodeHash(r.GetHashedPassword())
		if err != nil {
			return err
		}
		u.Password = h
	}
	st.users[r.GetName()] = u
	return s.commit(w, &change{st: st, users: []string{r.GetName()}, bump: true})
}

// UserDelete deletes a user (not root while auth is enabled) and its tokens.
func (s *Store) UserDelete(w Writer, name string) error {
	st := s.snapshot()
	if st.enabled && name == rootUser {
		return ErrInvalidAuthMgmt
	}
	if st.users[name] == nil {
		return ErrUserNotFound
	}
	delete(st.users, name)
	if err := s.commit(w, &change{st: st, users: []string{name}, bump: true}); err != nil {
		return err
	}
	s.tokens.invalidateUser(name)
	return nil
}

// UserChangePassword replaces a user's password hash (a user without
// password keeps none, as in etcd) and invalidates its tokens.
func (s *Store) UserChangePassword(w Writer, r *pb.AuthUserChangePasswordRequest) error {
	st := s.snapshot()
	old := st.users[r.GetName()]
	if old == nil {
		return ErrUserNotFound
	}
	u := &authpb.User{Name: old.GetName(), Roles: old.GetRoles(), Options: old.GetOptions()}
	if !old.GetOptions().GetNoPassword() {
		h, err := decodeHash(r.GetHashedPassword())
		if err != nil {
			return err
		}
		u.Password = h
	}
	st.users[r.GetName()] = u
	if err := s.commit(w, &change{st: st, users: []string{r.GetName()}, bump: true}); err != nil {
		return err
	}
	s.tokens.invalidateUser(r.GetName())
	return nil
}

// UserGrantRole grants a role (root needs no role record); granting it
// again changes nothing.
func (s *Store) UserGrantRole(w Writer, user, role string) error {
	st := s.snapshot()
	old := st.users[user]
	if old == nil {
		return ErrUserNotFound
	}
	if role != rootRole && st.roles[role] == nil {
		return ErrRoleNotFound
	}
	i := sort.SearchStrings(old.GetRoles(), role)
	if i < len(old.GetRoles()) && old.GetRoles()[i] == role {
		return nil
	}
	roles := append(append([]string(nil), old.GetRoles()...), role)
	sort.Strings(roles)
	st.users[user] = &authpb.User{Name: old.GetName(), Password: old.GetPassword(), Options: old.GetOptions(), Roles: roles}
	return s.commit(w, &change{st: st, users: []string{user}, bump: true})
}

// UserRevokeRole revokes a role (root keeps root while auth is enabled).
func (s *Store) UserRevokeRole(w Writer, user, role string) error {
	st := s.snapshot()
	if st.enabled && user == rootUser && role == rootRole {
		return ErrInvalidAuthMgmt
	}
	old := st.users[user]
	if old == nil {
		return ErrUserNotFound
	}
	var roles []string
	for _, r := range old.GetRoles() {
		if r != role {
			roles = append(roles, r)
		}
	}
	if len(roles) == len(old.GetRoles()) {
		return ErrRoleNotGranted
	}
	st.users[user] = &authpb.User{Name: old.GetName(), Password: old.GetPassword(), Options: old.GetOptions(), Roles: roles}
	return s.commit(w, &change{st: st, users: []string{user}, bump: true})
}

// RoleAdd adds a role without permissions.
func (s *Store) RoleAdd(w Writer, name string) error {
	if name == "" {
		return ErrRoleEmpty
	}
	st := s.snapshot()
	if st.roles[name] != nil {
		return ErrRoleAlreadyExist
	}
	st.roles[name] = &authpb.Role{Name: []byte(name)}
	return s.commit(w, &change{st: st, roles: []string{name}, bump: true})
}

// RoleDelete deletes a role (not root while auth is enabled) and revokes
// it from every user.
func (s *Store) RoleDelete(w Writer, name string) error {
	st := s.snapshot()
	if st.enabled && name == rootRole {
		return ErrInvalidAuthMgmt
	}
	if st.roles[name] == nil {
		return ErrRoleNotFound
	}
	delete(st.roles, name)
	c := &change{st: st, roles: []string{name}, bump: true}
	for uname, u := range st.users {
		var roles []string
		for _, r := range u.GetRoles() {
			if r != name {
				roles = append(roles, r)
			}
		}
		if len(roles) != len(u.GetRoles()) {
			st.users[uname] = &authpb.User{Name: u.GetName(), Password: u.GetPassword(), Options: u.GetOptions(), Roles: roles}
			c.users = append(c.users, uname)
		}
	}
	sort.Strings(c.users)
	return s.commit(w, c)
}

// RoleGrantPermission grants a permission, or changes the type of the one
// on the same range, keeping the permissions sorted by key as etcd does.
func (s *Store) RoleGrantPermission(w Writer, name string, perm *authpb.Permission) error {
	if perm == nil {
		return ErrPermissionNotGiven
	}
	if !ValidPermissionRange(perm.GetKey(), perm.GetRangeEnd()) {
		return ErrInvalidAuthMgmt
	}
	st := s.snapshot()
	old := st.roles[name]
	if old == nil {
		return ErrRoleNotFound
	}
	perms := make([]*authpb.Permission, 0, len(old.GetKeyPermission())+1)
	for _, p := range old.GetKeyPermission() {
		perms = append(perms, proto.Clone(p).(*authpb.Permission))
	}
	i := sort.Search(len(perms), func(i int) bool { return bytes.Compare(perms[i].GetKey(), perm.GetKey()) >= 0 })
	if i < len(perms) && bytes.Equal(perms[i].GetKey(), perm.GetKey()) && bytes.Equal(perms[i].GetRangeEnd(), perm.GetRangeEnd()) {
		perms[i].PermType = perm.GetPermType()
	} else {
		perms = append(perms, &authpb.Permission{Key: perm.GetKey(), RangeEnd: perm.GetRangeEnd(), PermType: perm.GetPermType()})
		sort.SliceStable(perms, func(i, j int) bool { return bytes.Compare(perms[i].GetKey(), perms[j].GetKey()) < 0 })
	}
	st.roles[name] = &authpb.Role{Name: old.GetName(), KeyPermission: perms}
	return s.commit(w, &change{st: st, roles: []string{name}, bump: true})
}

// RoleRevokePermission revokes the permissions on exactly [key, end).
func (s *Store) RoleRevokePermission(w Writer, name string, key, end []byte) error {
	st := s.snapshot()
	old := st.roles[name]
	if old == nil {
		return ErrRoleNotFound
	}
	var perms []*authpb.Permission
	for _, p := range old.GetKeyPermission() {
		if !bytes.Equal(p.GetKey(), key) || !bytes.Equal(p.GetRangeEnd(), end) {
			perms = append(perms, p)
		}
	}
	if len(perms) == len(old.GetKeyPermission()) {
		return ErrPermissionNotGranted
	}
	st.roles[name] = &authpb.Role{Name: old.GetName(), KeyPermission: perms}
	return s.commit(w, &change{st: st, roles: []string{name}, bump: true})
}

// Authenticate registers the token "<prefix>.<index>" for user name, at the
// apply of the raft entry index that the receiving member proposed after it
// checked the password. It writes nothing to the backend.
func (s *Store) Authenticate(name, prefix string, index uint64) (string, error) {
	s.mu.RLock()
	enabled, u := s.enabled, s.users[name]
	s.mu.RUnlock()
	if !enabled {
		return "", ErrAuthNotEnabled
	}
	if u == nil || u.GetOptions().GetNoPassword() {
		return "", ErrAuthFailed
	}
	token := prefix + "." + strconv.FormatUint(index, 10)
	s.tokens.assign(token, name)
	return token, nil
}

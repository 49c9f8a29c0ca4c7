package auth

import (
	"bytes"
	"errors"
	"sort"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// memBackend is a backend in maps, readable and writable.
type memBackend map[string]map[string][]byte

func (m memBackend) Put(bucket, key, value []byte) error {
	if m[string(bucket)] == nil {
		m[string(bucket)] = map[string][]byte{}
	}
	m[string(bucket)][string(key)] = bytes.Clone(value)
	return nil
}

func (m memBackend) Delete(bucket, key []byte) error {
	delete(m[string(bucket)], string(key))
	return nil
}

func (m memBackend) Get(bucket, key []byte) ([]byte, bool, error) {
	v, ok := m[string(bucket)][string(key)]
	return v, ok, nil
}

func (m memBackend) ForEach(bucket []byte, fn func(k, v []byte) error) error {
	var keys []string
	for k := range m[string(bucket)] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := fn([]byte(k), m[string(bucket)][k]); err != nil {
			return err
		}
	}
	return nil
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got %v, want %v", err, want)
	}
}

func addUser(t *testing.T, s *Store, w Writer, name, password string) {
	t.Helper()
	h, err := s.HashPassword(password)
	must(t, err)
	must(t, s.UserAdd(w, &pb.AuthUserAddRequest{Name: name, HashedPassword: h}))
}

func grant(t *testing.T, s *Store, w Writer, role string, typ authpb.Permission_Type, key, end string) {
	t.Helper()
	var e []byte
	if end != "" {
		e = []byte(end)
	}
	must(t, s.RoleGrantPermission(w, role, &authpb.Permission{PermType: typ, Key: []byte(key), RangeEnd: e}))
}

// newEnabled returns a store with auth enabled (root:rootpw), a user alice
// with role reader, and the backend it wrote.
func newEnabled(t *testing.T) (*Store, memBackend) {
	t.Helper()
	s, b := New(Config{BcryptCost: 4}), memBackend{}
	addUser(t, s, b, "root", "rootpw")
	wantErr(t, s.Enable(b), ErrRootRoleNotExist)
	must(t, s.UserGrantRole(b, "root", "root"))
	must(t, s.Enable(b))
	addUser(t, s, b, "alice", "alicepw")
	must(t, s.RoleAdd(b, "reader"))
	must(t, s.UserGrantRole(b, "alice", "reader"))
	return s, b
}

func TestPermitsRangesAndPoints(t *testing.T) {
	perms := mergePerms([]*authpb.Role{{Name: []byte("r"), KeyPermission: []*authpb.Permission{
		{PermType: authpb.Permission_READ, Key: []byte("/foo/"), RangeEnd: []byte("/foo0")}, // prefix /foo/
		{PermType: authpb.Permission_READWRITE, Key: []byte("a"), RangeEnd: []byte("c")},
		{PermType: authpb.Permission_READ, Key: []byte("c"), RangeEnd: []byte("e")}, // touches [a,c): one range
		{PermType: authpb.Permission_WRITE, Key: []byte("single")},
		{PermType: authpb.Permission_READ, Key: []byte("x"), RangeEnd: []byte{0}}, // x and after
	}}})
	for _, c := range []struct {
		ivs      []interval
		key, end string
		want     bool
	}{
		{perms.read, "/foo/x", "", true},
		{perms.read, "/foo", "", false},
		{perms.read, "/foo/", "/foo0", true},        // the prefix itself
		{perms.read, "/foo/a", "/foo/b", true},      // inside it
		{perms.read, "/foo/", "/foo1", false},       // beyond it
		{perms.read, "/fo", "/foo0", false},         // starts before it
		{perms.read, "a", "e", true},                // two touching permissions cover it
		{perms.read, "a", "f", false},               // a gap at e
		{perms.write, "a", "c", true},               // READWRITE counts as write
		{perms.write, "c", "", false},               // READ does not
		{perms.write, "single", "", true},           // a key alone
		{perms.write, "single", "single\x00", true}, // the range of that key alone
		{perms.write, "single", "singlf", false},    // not the keys after it
		{perms.write, "singlea", "", false},
		{perms.read, "x", "\x00", true}, // open-ended within an open-ended permission
		{perms.read, "zzz", "", true},
		{perms.read, "w", "\x00", false},
		{perms.read, "b", "a", false}, // an inverted range is never permitted
	} {
		if got := permits(c.ivs, []byte(c.key), []byte(c.end)); got != c.want {
			t.Errorf("permits(%q, %q) = %v, want %v", c.key, c.end, got, c.want)
		}
	}
	all := mergePerms([]*authpb.Role{{KeyPermission: []*authpb.Permission{{PermType: authpb.Permission_READ, Key: []byte{0}, RangeEnd: []byte{0}}}}})
	if !permits(all.read, []byte{0}, []byte{0}) || !permits(all.read, []byte("any"), nil) {
		t.Error("key \\x00 with end \\x00 must grant the whole key space")
	}
}

func TestValidPermissionRange(t *testing.T) {
	for _, c := range []struct {
		key, end string
		want     bool
	}{{"a", "", true}, {"a", "b", true}, {"a", "\x00", true}, {"", "", false}, {"b", "a", false}, {"a", "a", false}} {
		if got := ValidPermissionRange([]byte(c.key), []byte(c.end)); got != c.want {
			t.Errorf("ValidPermissionRange(%q, %q) = %v", c.key, c.end, got)
		}
	}
}

func TestChecksFollowEtcd(t *testing.T) {
	s, b := newEnabled(t)
	grant(t, s, b, "reader", authpb.Permission_READ, "/foo/", "/foo0")
	rev := s.Revision()
	alice, root := Info{"alice", rev}, Info{"root", rev}

	must(t, s.IsRangePermitted(alice, []byte("/foo/x"), nil))
	wantErr(t, s.IsPutPermitted(alice, []byte("/foo/x")), ErrPermissionDenied)
	wantErr(t, s.IsRangePermitted(Info{}, []byte("/foo/x"), nil), ErrUserEmpty)
	wantErr(t, s.IsRangePermitted(Info{"alice", rev - 1}, []byte("/foo/x"), nil), ErrAuthOldRevision)
	wantErr(t, s.IsRangePermitted(Info{"nobody", rev}, []byte("/foo/x"), nil), ErrPermissionDenied)
	// root: everything, any key, admin too.
	must(t, s.IsDeleteRangePermitted(root, []byte{0}, []byte{0}))
	must(t, s.IsAdminPermitted(root))
	wantErr(t, s.IsAdminPermitted(alice), ErrPermissionDenied)
	wantErr(t, s.IsAdminPermitted(Info{}), ErrUserEmpty)
	wantErr(t, s.IsAdminPermitted(Info{"nobody", rev}), ErrUserNotFound)

	// A txn is checked whole: compares, both branches, nested txns.
	read := &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("/foo/a")}}}
	put := &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("/foo/a")}}}
	noLease := func(int64) [][]byte { return nil }
	must(t, s.CheckTxn(alice, &pb.TxnRequest{Compare: []*pb.Compare{{Key: []byte("/foo/b")}}, Success: []*pb.RequestOp{read}}, noLease))
	wantErr(t, s.CheckTxn(alice, &pb.TxnRequest{Success: []*pb.RequestOp{read}, Failure: []*pb.RequestOp{put}}, noLease), ErrPermissionDenied)
	wantErr(t, s.CheckTxn(alice, &pb.TxnRequest{Compare: []*pb.Compare{{Key: []byte("/bar")}}}, noLease), ErrPermissionDenied)
	nested := &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: &pb.TxnRequest{Success: []*pb.RequestOp{put}}}}
	wantErr(t, s.CheckTxn(alice, &pb.TxnRequest{Success: []*pb.RequestOp{nested}}, noLease), ErrPermissionDenied)

	// A put with a lease needs write permission on the lease's other keys.
	grant(t, s, b, "reader", authpb.Permission_READWRITE, "/own/", "/own0")
	alice.Revision = s.Revision()
	leaseKeys := func(int64) [][]byte { return [][]byte{[]byte("/foo/held")} }
	wantErr(t, s.CheckPut(alice, &pb.PutRequest{Key: []byte("/own/k"), Lease: 7}, leaseKeys), ErrPermissionDenied)
	must(t, s.CheckPut(alice, &pb.PutRequest{Key: []byte("/own/k")}, leaseKeys))

	// Revoked: denied again.
	must(t, s.RoleRevokePermission(b, "reader", []byte("/foo/"), []byte("/foo0")))
	wantErr(t, s.IsRangePermitted(Info{"alice", s.Revision()}, []byte("/foo/x"), nil), ErrPermissionDenied)

	// Disabled: nothing is checked.
	must(t, s.Disable(b))
	must(t, s.IsPutPermitted(Info{}, []byte("/foo/x")))
	must(t, s.IsAdminPermitted(Info{}))
}

func TestManagementErrorsAndRevisions(t *testing.T) {
	s, b := New(Config{BcryptCost: 4}), memBackend{}
	if s.Revision() != 1 {
		t.Fatalf("a new store is at revision %d, want etcd's 1", s.Revision())
	}
	wantErr(t, s.Enable(b), ErrRootUserNotExist)
	wantErr(t, s.UserAdd(b, &pb.AuthUserAddRequest{}), ErrUserEmpty)
	wantErr(t, s.RoleAdd(b, ""), ErrRoleEmpty)
	s, b = newEnabled(t)
	rev := s.Revision()
	wantErr(t, s.UserAdd(b, &pb.AuthUserAddRequest{Name: "alice", Options: &authpb.UserAddOptions{NoPassword: true}}), ErrUserAlreadyExist)
	wantErr(t, s.RoleAdd(b, "reader"), ErrRoleAlreadyExist)
	wantErr(t, s.UserGrantRole(b, "alice", "nope"), ErrRoleNotFound)
	wantErr(t, s.UserGrantRole(b, "nobody", "reader"), ErrUserNotFound)
	must(t, s.UserGrantRole(b, "alice", "reader")) // again: no change
	wantErr(t, s.UserRevokeRole(b, "root", "root"), ErrInvalidAuthMgmt)
	wantErr(t, s.UserDelete(b, "root"), ErrInvalidAuthMgmt)
	wantErr(t, s.RoleDelete(b, "root"), ErrInvalidAuthMgmt)
	wantErr(t, s.RoleRevokePermission(b, "reader", []byte("k"), nil), ErrPermissionNotGranted)
	wantErr(t, s.RoleGrantPermission(b, "reader", nil), ErrPermissionNotGiven)
	wantErr(t, s.RoleGrantPermission(b, "reader", &authpb.Permission{Key: []byte("b"), RangeEnd: []byte("a")}), ErrInvalidAuthMgmt)
	if s.Revision() != rev {
		t.Fatalf("refused changes moved the revision %d -> %d", rev, s.Revision())
	}
	must(t, s.RoleDelete(b, "reader"))
	if roles, _ := s.UserGet("alice"); len(roles) != 0 {
		t.Fatalf("a deleted role is still granted: %v", roles)
	}
	if s.Revision() != rev+1 {
		t.Fatalf("a change moved the revision %d -> %d, want +1", rev, s.Revision())
	}
	// root was granted without a role record, as etcd allows: no role.
	_, err := s.RoleGet("root")
	wantErr(t, err, ErrRoleNotFound)
	must(t, s.RoleAdd(b, "root"))
	if perms, err := s.RoleGet("root"); err != nil || len(perms) != 1 || len(perms[0].Key) != 0 || string(perms[0].RangeEnd) != "\x00" {
		t.Fatalf("root role: %v %v, want etcd's everything", perms, err)
	}
}

func TestLoadRebuildsTheState(t *testing.T) {
	s, b := newEnabled(t)
	grant(t, s, b, "reader", authpb.Permission_READ, "/foo/", "/foo0")
	grant(t, s, b, "reader", authpb.Permission_WRITE, "/a", "")
	re := New(Config{})
	must(t, re.Load(b))
	if !re.Enabled() || re.Revision() != s.Revision() {
		t.Fatalf("loaded enabled=%v rev=%d, want true %d", re.Enabled(), re.Revision(), s.Revision())
	}
	if got := re.UserList(); len(got) != 2 || got[0] != "alice" || got[1] != "root" {
		t.Fatalf("users %v", got)
	}
	perms, err := re.RoleGet("reader")
	must(t, err)
	if len(perms) != 2 || string(perms[0].Key) != "/a" || string(perms[1].Key) != "/foo/" {
		t.Fatalf("reader's permissions, sorted by key: %v", perms)
	}
	must(t, re.IsRangePermitted(Info{"alice", re.Revision()}, []byte("/foo/x"), nil))
	if _, err := re.CheckPassword("alice", "alicepw"); err != nil {
		t.Fatalf("password after load: %v", err)
	}
	for k := range b[string(UsersBucket)] {
		if bytes.Contains(b[string(UsersBucket)][k], []byte("alicepw")) {
			t.Fatal("a password is stored in clear")
		}
	}
}

func TestPasswordsAndTokens(t *testing.T) {
	now := time.Unix(1000, 0)
	s, b := New(Config{BcryptCost: 4, TokenTTL: 10 * time.Second, Now: func() time.Time { return now }}), memBackend{}
	addUser(t, s, b, "root", "rootpw")
	must(t, s.UserGrantRole(b, "root", "root"))
	_, err := s.Authenticate("root", "x", 1)
	wantErr(t, err, ErrAuthNotEnabled)
	must(t, s.Enable(b))
	must(t, s.UserAdd(b, &pb.AuthUserAddRequest{Name: "svc", Options: &authpb.UserAddOptions{NoPassword: true}}))

	_, err = s.CheckPassword("root", "wrong")
	wantErr(t, err, ErrAuthFailed)
	_, err = s.CheckPassword("nobody", "x")
	wantErr(t, err, ErrAuthFailed)
	_, err = s.CheckPassword("svc", "")
	wantErr(t, err, ErrNoPasswordUser)
	if rev, err := s.CheckPassword("root", "rootpw"); err != nil || rev != s.Revision() {
		t.Fatalf("check: %d %v", rev, err)
	}

	prefix, err := NewTokenPrefix()
	must(t, err)
	token, err := s.Authenticate("root", prefix, 42)
	must(t, err)
	if idx, ok := TokenIndex(token); !ok || idx != 42 {
		t.Fatalf("token index of %q: %d %v", token, idx, ok)
	}
	if _, ok := TokenIndex("abc.1"); ok {
		t.Fatal("a token with a short prefix is accepted")
	}
	// Each use extends the token's life; TTL without use ends it.
	now = now.Add(8 * time.Second)
	if u, ok := s.TokenUser(token); !ok || u != "root" {
		t.Fatalf("token user %q %v", u, ok)
	}
	now = now.Add(8 * time.Second)
	if _, ok := s.TokenUser(token); !ok {
		t.Fatal("a token used 8s ago expired with a 10s TTL")
	}
	now = now.Add(10 * time.Second)
	if _, ok := s.TokenUser(token); ok {
		t.Fatal("a token unused for its TTL is still valid")
	}
	// A password change or a delete ends the user's tokens.
	token, _ = s.Authenticate("root", prefix, 43)
	h, _ := s.HashPassword("new")
	must(t, s.UserChangePassword(b, &pb.AuthUserChangePasswordRequest{Name: "root", HashedPassword: h}))
	if _, ok := s.TokenUser(token); ok {
		t.Fatal("a token survived its user's password change")
	}
	_, err = s.Authenticate("svc", prefix, 44)
	wantErr(t, err, ErrAuthFailed)
	token, _ = s.Authenticate("root", prefix, 45)
	must(t, s.Disable(b))
	if _, ok := s.TokenUser(token); ok {
		t.Fatal("a token survived auth disable")
	}
}

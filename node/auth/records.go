package auth

import (
	"encoding/binary"
	"fmt"

	"go.etcd.io/etcd/api/v3/authpb"
	"google.golang.org/protobuf/proto"
)

// The backend buckets and keys, named as in etcd (server/storage/schema),
// so that a database copied from etcd-node reads like etcd's.
var (
	Bucket      = []byte("auth")
	UsersBucket = []byte("authUsers")
	RolesBucket = []byte("authRoles")

	enabledKey  = []byte("authEnabled")
	revisionKey = []byte("authRevision")

	enabledValue  = []byte{1}
	disabledValue = []byte{0}
)

// Reader reads a backend (backend.Backend).
type Reader interface {
	Get(bucket, key []byte) ([]byte, bool, error)
	ForEach(bucket []byte, fn func(k, v []byte) error) error
}

// Writer writes into the backend batch of the raft entry being applied
// (backend.WriteTx).
type Writer interface {
	Put(bucket, key, value []byte) error
	Delete(bucket, key []byte) error
}

func encodeRevision(rev uint64) []byte { return binary.BigEndian.AppendUint64(nil, rev) }

func putUser(w Writer, u *authpb.User) error {
	b, err := proto.Marshal(u)
	if err != nil {
		return err
	}
	return w.Put(UsersBucket, u.GetName(), b)
}

func putRole(w Writer, r *authpb.Role) error {
	b, err := proto.Marshal(r)
	if err != nil {
		return err
	}
	return w.Put(RolesBucket, r.GetName(), b)
}

// state is what the backend holds, read back into memory.
type state struct {
	enabled bool
	rev     uint64
	users   map[string]*authpb.User
	roles   map[string]*authpb.Role
}

func load(r Reader) (*state, error) {
	st := &state{users: map[string]*authpb.User{}, roles: map[string]*authpb.Role{}}
	v, ok, err := r.Get(Bucket, enabledKey)
	if err != nil {
		return nil, err
	}
	st.enabled = ok && len(v) == 1 && v[0] == 1
	v, ok, err = r.Get(Bucket, revisionKey)
	if err != nil {
		return nil, err
	}
	if ok {
		if len(v) != 8 {
			return nil, fmt.Errorf("auth: damaged revision record %x in the %s bucket", v, Bucket)
		}
		st.rev = binary.BigEndian.Uint64(v)
	}
	err = r.ForEach(UsersBucket, func(k, v []byte) error {
		u := &authpb.User{}
		if err := proto.Unmarshal(v, u); err != nil || string(u.GetName()) != string(k) {
			return fmt.Errorf("auth: damaged user record %q in the %s bucket", k, UsersBucket)
		}
		st.users[string(k)] = u
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = r.ForEach(RolesBucket, func(k, v []byte) error {
		ro := &authpb.Role{}
		if err := proto.Unmarshal(v, ro); err != nil || string(ro.GetName()) != string(k) {
			return fmt.Errorf("auth: damaged role record %q in the %s bucket", k, RolesBucket)
		}
		st.roles[string(k)] = ro
		return nil
	})
	if err != nil {
		return nil, err
	}
	// etcd writes revision 1 when it creates the buckets; etcd-node writes
	// it with the first change, and counts from the same 1.
	if st.rev == 0 {
		st.rev = 1
	}
	return st, nil
}

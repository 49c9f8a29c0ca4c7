package auth

import (
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/authpb"
	"golang.org/x/crypto/bcrypt"
)

const (
	rootUser = "root"
	rootRole = "root"
)

// Config configures a Store.
type Config struct {
	// BcryptCost hashes new passwords (--bcrypt-cost); out of bcrypt's
	// range it is bcrypt's default, as in etcd.
	BcryptCost int
	// TokenTTL is how long a simple token lives unused (--auth-token-ttl);
	// 0 is etcd's 300s.
	TokenTTL time.Duration
	// Now is the clock of token expiry; nil is time.Now.
	Now func() time.Time
}

// Store is the auth state of one member. Mutations are called by the apply
// loop only (one at a time); checks may run concurrently with them.
type Store struct {
	mu      sync.RWMutex
	enabled bool
	rev     uint64
	users   map[string]*authpb.User
	roles   map[string]*authpb.Role
	perms   map[string]*rangePerms // by user, rebuilt on every change

	cost   int
	tokens *tokens
}

// New returns an empty store (auth disabled, revision 1); Load fills it.
func New(cfg Config) *Store {
	if cfg.BcryptCost < bcrypt.MinCost || cfg.BcryptCost > bcrypt.MaxCost {
		cfg.BcryptCost = bcrypt.DefaultCost
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Store{cost: cfg.BcryptCost, tokens: newTokens(cfg.TokenTTL, cfg.Now)}
	s.install(&state{rev: 1, users: map[string]*authpb.User{}, roles: map[string]*authpb.Role{}})
	return s
}

// Load replaces the state with what backend r holds (start, restart,
// snapshot install). Tokens survive it only while auth stays enabled: a
// token's user is looked up again on every check.
func (s *Store) Load(r Reader) error {
	st, err := load(r)
	if err != nil {
		return err
	}
	s.install(st)
	if !st.enabled {
		s.tokens.clear()
	}
	return nil
}

func (s *Store) install(st *state) {
	perms := make(map[string]*rangePerms, len(st.users))
	for name, u := range st.users {
		perms[name] = mergePerms(rolesOf(u, st.roles))
	}
	s.mu.Lock()
	s.enabled, s.rev, s.users, s.roles, s.perms = st.enabled, st.rev, st.users, st.roles, perms
	s.mu.Unlock()
}

func rolesOf(u *authpb.User, roles map[string]*authpb.Role) []*authpb.Role {
	var out []*authpb.Role
	for _, name := range u.GetRoles() {
		if r := roles[name]; r != nil {
			out = append(out, r)
		}
	}
	return out
}

// Enabled reports whether authentication is enabled.
func (s *Store) Enabled() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.enabled
}

// Revision is the auth revision: it grows with every change of users,
// roles or permissions, and with auth disable.
func (s *Store) Revision() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rev
}

// BcryptCost is the cost new password hashes are made with.
func (s *Store) BcryptCost() int { return s.cost }

// snapshot copies the state for a mutation to work on: the maps are new,
// the records shared (a mutation replaces a record, never changes it).
func (s *Store) snapshot() *state {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := &state{enabled: s.enabled, rev: s.rev, users: make(map[string]*authpb.User, len(s.users)), roles: make(map[string]*authpb.Role, len(s.roles))}
	for k, v := range s.users {
		st.users[k] = v
	}
	for k, v := range s.roles {
		st.roles[k] = v
	}
	return st
}

func hasRootRole(u *authpb.User) bool {
	for _, r := range u.GetRoles() {
		if r == rootRole {
			return true
		}
	}
	return false
}

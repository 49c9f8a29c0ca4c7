package auth

import (
	"encoding/base64"

	"golang.org/x/crypto/bcrypt"
)

// HashPassword hashes a password with the store's bcrypt cost, encoded as
// etcd carries it in a raft entry (AuthUserAddRequest.HashedPassword): the
// member that receives the request hashes, so no entry, WAL record or
// snapshot holds a password.
func (s *Store) HashPassword(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), s.cost)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(h), nil
}

// CheckPassword checks a user's password and returns the revision it was
// checked at: Authenticate retries when a change raced with it. bcrypt's
// comparison takes the same time whatever matches, and runs outside the
// store's lock (it is slow on purpose).
func (s *Store) CheckPassword(name, password string) (uint64, error) {
	s.mu.RLock()
	enabled, rev, u := s.enabled, s.rev, s.users[name]
	s.mu.RUnlock()
	if !enabled {
		return 0, ErrAuthNotEnabled
	}
	if u == nil {
		return 0, ErrAuthFailed
	}
	if u.GetOptions().GetNoPassword() {
		return 0, ErrNoPasswordUser
	}
	if bcrypt.CompareHashAndPassword(u.GetPassword(), []byte(password)) != nil {
		return 0, ErrAuthFailed
	}
	return rev, nil
}

package auth

import (
	"crypto/rand"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultTokenTTL is etcd's --auth-token-ttl default.
const DefaultTokenTTL = 300 * time.Second

const (
	tokenLetters      = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	tokenPrefixLength = 16
)

// NewTokenPrefix draws the random part of a simple token from crypto/rand,
// in etcd's alphabet and length.
func NewTokenPrefix() (string, error) {
	b := make([]byte, tokenPrefixLength)
	max := big.NewInt(int64(len(tokenLetters)))
	for i := range b {
		n, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", err
		}
		b[i] = tokenLetters[n.Int64()]
	}
	return string(b), nil
}

// TokenIndex is the raft index a simple token was assigned at: a member
// must have applied it before it can know the token.
func TokenIndex(token string) (uint64, bool) {
	prefix, idx, ok := strings.Cut(token, ".")
	if !ok || len(prefix) != tokenPrefixLength || strings.Contains(idx, ".") {
		return 0, false
	}
	n, err := strconv.ParseUint(idx, 10, 64)
	return n, err == nil
}

// tokens are the member's simple tokens: each lives TTL after its last use
// (etcd resets the deadline on every request), and is dropped when its
// user is deleted or changes password, or auth is disabled.
type tokens struct {
	mu      sync.Mutex
	ttl     time.Duration
	now     func() time.Time
	byToken map[string]tokenEntry
	swept   time.Time
}

type tokenEntry struct {
	user    string
	expires time.Time
}

func newTokens(ttl time.Duration, now func() time.Time) *tokens {
	return &tokens{ttl: ttl, now: now, byToken: map[string]tokenEntry{}}
}

func (t *tokens) assign(token, user string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.sweepLocked(now)
	t.byToken[token] = tokenEntry{user: user, expires: now.Add(t.ttl)}
}

// sweepLocked drops expired tokens, at most once a TTL, so that tokens
// nobody uses again do not pile up (lookups check the deadline anyway).
func (t *tokens) sweepLocked(now time.Time) {
	if now.Sub(t.swept) < t.ttl {
		return
	}
	t.swept = now
	for k, e := range t.byToken {
		if !now.Before(e.expires) {
			delete(t.byToken, k)
		}
	}
}

// lookup returns the user of a live token and extends its life.
func (t *tokens) lookup(token string) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.byToken[token]
	if !ok {
		return "", false
	}
	now := t.now()
	if !now.Before(e.expires) {
		delete(t.byToken, token)
		return "", false
	}
	e.expires = now.Add(t.ttl)
	t.byToken[token] = e
	return e.user, true
}

func (t *tokens) invalidateUser(user string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, e := range t.byToken {
		if e.user == user {
			delete(t.byToken, k)
		}
	}
}

func (t *tokens) clear() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.byToken)
}

// TokenUser returns the user of a live simple token, extending its life;
// the caller has waited until the token's index is applied (TokenIndex).
func (s *Store) TokenUser(token string) (string, bool) {
	return s.tokens.lookup(token)
}

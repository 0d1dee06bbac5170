package velocity

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/hangar-dev/hangar/internal/auth"
)

// maxSessions bounds the authkeys held at once; a login beyond it first
// drops expired keys, then the one closest to expiry.
const maxSessions = 10000

// sessions are the authkeys: random, expiring, in memory only (a daemon
// restart logs everyone out, as Velocity's own restart does). They are
// the only state this edge holds.
type sessions struct {
	mu    sync.Mutex
	ttl   time.Duration
	now   func() time.Time
	byKey map[string]session
}

type session struct {
	id      auth.Identity
	expires time.Time
	// loginAt is when the login that opened the session (renewals keep
	// it) began: a user deleted or with a password changed since then
	// ends it (Users.SessionValid).
	loginAt time.Time
}

func (s *sessions) init(ttl time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ttl <= 0 {
		ttl = DefaultSessionTTL
	}
	s.ttl = ttl
	if s.now == nil {
		s.now = time.Now
	}
	if s.byKey == nil {
		s.byKey = map[string]session{}
	}
}

// create returns a new authkey for id, logged in at loginAt, and when it
// expires.
func (s *sessions) create(id auth.Identity, loginAt time.Time) (string, time.Time, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", time.Time{}, err
	}
	key := hex.EncodeToString(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if len(s.byKey) >= maxSessions {
		s.sweepLocked(now)
	}
	if len(s.byKey) >= maxSessions {
		var oldest string
		var at time.Time
		for k, v := range s.byKey {
			if oldest == "" || v.expires.Before(at) {
				oldest, at = k, v.expires
			}
		}
		delete(s.byKey, oldest)
	}
	exp := now.Add(s.ttl)
	s.byKey[key] = session{id: id, expires: exp, loginAt: loginAt}
	return key, exp, nil
}

func (s *sessions) sweepLocked(now time.Time) {
	for k, v := range s.byKey {
		if !now.Before(v.expires) {
			delete(s.byKey, k)
		}
	}
}

// lookup returns the session of a live authkey.
func (s *sessions) lookup(key string) (session, bool) {
	if key == "" {
		return session{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.byKey[key]
	if !ok {
		return session{}, false
	}
	if !s.now().Before(v.expires) {
		delete(s.byKey, key)
		return session{}, false
	}
	return v, true
}

// drop forgets key.
func (s *sessions) drop(key string) {
	s.mu.Lock()
	delete(s.byKey, key)
	s.mu.Unlock()
}

package trust

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"slices"
	"time"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/operation"
)

type tokenState int

const (
	tokenLive tokenState = iota
	tokenUsed
	tokenExpired
	tokenRevoked
)

// token is a trust token's fate, by the hash of its secret.
type token struct {
	put     Put
	op      *operation.Op
	expires time.Time // zero: never
	state   tokenState
	ended   time.Time
}

// endedRetention is how long a used, expired or revoked token is
// remembered, so that trying it again says what happened to it.
const endedRetention = 24 * time.Hour

func secretKey(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// IssueToken makes a one-time token that grants put (a client
// certificate) to whoever redeems it, as an operation of class "token"
// whose metadata `lxc config trust add` turns into the token text.
func (s *Service) IssueToken(ctx context.Context, put Put) (*operation.Op, error) {
	if put.Type != "" && put.Type != api.CertificateTypeClient {
		return nil, errdefs.Invalid("tokens can only be issued for client certificates")
	}
	if err := s.validate(ctx, &put); err != nil {
		return nil, err
	}
	addrs := s.cfg.Addresses()
	if len(addrs) == 0 {
		return nil, errdefs.Invalid("cannot issue a token while the server is not listening on the network: set core.https_address first")
	}
	now := s.cfg.Now()
	expires, err := ParseExpiry(now, s.cfg.TokenExpiry())
	if err != nil {
		return nil, errdefs.Invalid("core.remote_token_expiry: %v", err)
	}
	secret := rand.Text()
	addresses := make([]any, len(addrs))
	for i, a := range addrs {
		addresses[i] = a
	}
	projects := make([]any, len(put.Projects))
	for i, p := range put.Projects {
		projects[i] = p
	}
	// JSON kinds only: the operation copies its metadata deeply, and a
	// client decodes it as LXD's (api.CertificateAddTokenFromOperation).
	meta := map[string]any{
		"secret":      secret,
		"fingerprint": s.cfg.Cert.Fingerprint,
		"addresses":   addresses,
		"request": map[string]any{
			"name": put.Name, "type": put.Type, "restricted": put.Restricted, "projects": projects,
			"certificate": "", "password": "", "token": true,
		},
	}
	if !expires.IsZero() {
		meta["expiresAt"] = expires.UTC().Format(time.RFC3339Nano)
	}
	key := secretKey(secret)
	tok := &token{put: put, expires: expires}

	s.tokensMu.Lock()
	defer s.tokensMu.Unlock()
	s.pruneTokensLocked(now)
	s.tokens[key] = tok
	tok.op = s.cfg.Ops.Start(operation.Spec{
		Class:       api.OperationClassToken,
		Description: "Certificate add token",
		Cancelable:  true,
		Metadata:    meta,
		Run: func(ctx context.Context, _ *operation.Op) error {
			var expired <-chan time.Time
			if !expires.IsZero() {
				t := time.NewTimer(expires.Sub(s.cfg.Now()))
				defer t.Stop()
				expired = t.C
			}
			select {
			case <-ctx.Done():
				// Redeemed (the redeemer marked it used first) or revoked.
				s.endToken(key, tokenRevoked)
				return ctx.Err()
			case <-expired:
				s.endToken(key, tokenExpired)
				return errdefs.Forbidden("token has expired")
			}
		},
	})
	s.cfg.Log.Info("trust token issued", "name", put.Name, "operation", tok.op.ID(), "expires", expires)
	return tok.op, nil
}

// endToken records a token's end unless it already ended (a redeemed
// token stays "used" when its operation is then cancelled).
func (s *Service) endToken(key string, st tokenState) {
	s.tokensMu.Lock()
	defer s.tokensMu.Unlock()
	if t := s.tokens[key]; t != nil && t.state == tokenLive {
		t.state, t.ended = st, s.cfg.Now()
	}
}

func (s *Service) pruneTokensLocked(now time.Time) {
	for k, t := range s.tokens {
		if t.state != tokenLive && now.Sub(t.ended) > endedRetention {
			delete(s.tokens, k)
		}
	}
}

// redeemToken uses the token of secret once and returns what it grants.
func (s *Service) redeemToken(secret string) (Put, error) {
	key := secretKey(secret)
	s.tokensMu.Lock()
	t := s.tokens[key]
	if t == nil {
		s.tokensMu.Unlock()
		return Put{}, errdefs.Forbidden("no such trust token (tokens do not survive a restart of hangard)")
	}
	now := s.cfg.Now()
	if t.state == tokenLive && !t.expires.IsZero() && now.After(t.expires) {
		t.state, t.ended = tokenExpired, now
	}
	switch t.state {
	case tokenUsed:
		s.tokensMu.Unlock()
		return Put{}, errdefs.Forbidden("trust token has already been used")
	case tokenExpired:
		s.tokensMu.Unlock()
		return Put{}, errdefs.Forbidden("trust token has expired")
	case tokenRevoked:
		s.tokensMu.Unlock()
		return Put{}, errdefs.Forbidden("trust token was revoked")
	}
	t.state, t.ended = tokenUsed, now
	op, put := t.op, t.put
	s.tokensMu.Unlock()
	// Single use: the operation ends (Cancelled) so list-tokens no longer
	// shows it. Already final means it expired meanwhile: used wins.
	_ = op.Cancel()
	put.Projects = slices.Clone(put.Projects)
	return put, nil
}

// Redeem checks a secret an untrusted client sent from source (a
// "host:port" or host): a trust token, else the trust password. It
// returns what the client's certificate is to be trusted as; every
// refusal is ErrForbidden, with why. Attempts are rate-limited per
// source host.
func (s *Service) Redeem(source, secret string) (Put, error) {
	host, _, err := net.SplitHostPort(source)
	if err != nil {
		host = source
	}
	if ok, wait := s.cfg.Limiter.Allow(host, s.cfg.Now()); !ok {
		s.cfg.Log.Warn("trust: too many attempts", "source", host)
		return Put{}, errdefs.Forbidden("too many trust attempts from %s: try again in %s", host, wait.Round(time.Millisecond))
	}
	if secret == "" {
		return Put{}, errdefs.Forbidden("no trust token or password given")
	}
	if tok, err := api.DecodeCertificateAddToken(secret); err == nil {
		put, err := s.redeemToken(tok.Secret)
		if err != nil {
			s.cfg.Log.Warn("trust: token refused", "source", host, "err", err)
			return Put{}, err
		}
		return put, nil
	}
	if err := checkPassword(s.cfg.Password(), secret); err != nil {
		s.cfg.Log.Warn("trust: password refused", "source", host, "err", err)
		return Put{}, err
	}
	return Put{Type: api.CertificateTypeClient}, nil
}

// RedeemAndAdd redeems secret and trusts der as it grants; name, when
// the grant has none (the password grants no name), is the certificate's
// common name or else the source host.
func (s *Service) RedeemAndAdd(ctx context.Context, source, secret string, der []byte) (Certificate, error) {
	put, err := s.Redeem(source, secret)
	if err != nil {
		return Certificate{}, err
	}
	if put.Name == "" {
		if x, err := x509ParseQuiet(der); err == nil && x != "" {
			put.Name = x
		} else if host, _, err := net.SplitHostPort(source); err == nil {
			put.Name = host
		} else {
			put.Name = source
		}
	}
	return s.Add(ctx, der, put)
}

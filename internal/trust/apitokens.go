package trust

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/store"
)

// APIToken is a bearer token's record; its secret is never kept.
type APIToken = store.APIToken

// Roles a bearer token may have. What each holds is the authorization
// core's built-in rule for tokens (auth.builtin).
const (
	RoleAdmin    = "admin"
	RoleOperator = "operator"
	RoleViewer   = "viewer"
)

// APITokenDB is what the token service needs of the store.
type APITokenDB interface {
	CreateAPIToken(ctx context.Context, t store.APIToken) (int64, error)
	GetAPIToken(ctx context.Context, id int64) (store.APIToken, error)
	ListAPITokens(ctx context.Context) ([]store.APIToken, error)
	DeleteAPIToken(ctx context.Context, name string) error
}

// APITokens issues, lists, revokes and checks bearer API tokens. A token
// reads "hgr_<id>_<secret>": the id finds the record with one primary-key
// read (no scan, no cache to keep in step with project deletes), the
// secret (32 random bytes, base64url) is compared by its SHA-256 in
// constant time. Its methods are safe for concurrent use.
type APITokens struct {
	DB  APITokenDB
	Now func() time.Time // time.Now when nil
}

const tokenPrefix = "hgr_"

var tokenName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

func (t *APITokens) now() time.Time {
	if t.Now == nil {
		return time.Now()
	}
	return t.Now()
}

// Create issues a token and returns its record and the token string, the
// only time the secret is seen. An operator or viewer token acts in one
// project ("default" when project is ""); an admin token acts on the
// whole server and takes no project. expiry is as core.remote_token_expiry
// ("30d", "1H 30M"; "" never).
func (t *APITokens) Create(ctx context.Context, name, project, role, expiry string) (APIToken, string, error) {
	if !tokenName.MatchString(name) {
		return APIToken{}, "", errdefs.Invalid("invalid token name %q: letters, digits, '_', '.' and '-', at most 64", name)
	}
	switch role {
	case RoleAdmin:
		if project != "" {
			return APIToken{}, "", errdefs.Invalid("an admin token acts on the whole server: it takes no project (give operator for one project)")
		}
	case RoleOperator, RoleViewer:
		if project == "" {
			project = "default"
		}
	default:
		return APIToken{}, "", errdefs.Invalid("token role %q: want admin, operator or viewer", role)
	}
	now := t.now()
	exp, err := ParseExpiry(now, expiry)
	if err != nil {
		return APIToken{}, "", errdefs.Invalid("token expiry: %v", err)
	}
	if !exp.IsZero() && !exp.After(now) {
		return APIToken{}, "", errdefs.Invalid("token expiry %q is not in the future", expiry)
	}
	var secret [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return APIToken{}, "", fmt.Errorf("token secret: %w", err)
	}
	enc := base64.RawURLEncoding.EncodeToString(secret[:])
	sum := sha256.Sum256([]byte(enc))
	rec := APIToken{Name: name, SecretHash: sum[:], Project: project, Role: role, CreatedAt: now, ExpiresAt: exp}
	id, err := t.DB.CreateAPIToken(ctx, rec)
	if err != nil {
		return APIToken{}, "", err
	}
	rec.ID = id
	rec.SecretHash = nil
	return rec, tokenPrefix + strconv.FormatInt(id, 10) + "_" + enc, nil
}

// List returns every token's record, without their secrets' hashes.
func (t *APITokens) List(ctx context.Context) ([]APIToken, error) {
	ts, err := t.DB.ListAPITokens(ctx)
	if err != nil {
		return nil, err
	}
	for i := range ts {
		ts[i].SecretHash = nil
	}
	return ts, nil
}

// Revoke deletes the token called name: from then on it is untrusted.
func (t *APITokens) Revoke(ctx context.Context, name string) error {
	return t.DB.DeleteAPIToken(ctx, name)
}

// ErrBadToken is a bearer token that does not identify anyone: malformed,
// unknown, revoked, expired or with a wrong secret. Which one is not told
// to the client.
var ErrBadToken = errors.New("invalid bearer token")

// Identify returns who the bearer token tok is. Every failure is
// ErrBadToken, wrapped with why for the daemon's log.
func (t *APITokens) Identify(ctx context.Context, tok string) (auth.Identity, error) {
	rest, ok := strings.CutPrefix(tok, tokenPrefix)
	idStr, secret, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || secret == "" {
		return auth.Identity{}, fmt.Errorf("%w: malformed", ErrBadToken)
	}
	id, err := strconv.ParseInt(idStr, 10, 64)
	if err != nil || id <= 0 {
		return auth.Identity{}, fmt.Errorf("%w: malformed id", ErrBadToken)
	}
	rec, err := t.DB.GetAPIToken(ctx, id)
	if errors.Is(err, errdefs.ErrNotFound) {
		return auth.Identity{}, fmt.Errorf("%w: token %d unknown or revoked", ErrBadToken, id)
	}
	if err != nil {
		return auth.Identity{}, fmt.Errorf("%w: %w", ErrBadToken, err)
	}
	sum := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(sum[:], rec.SecretHash) != 1 {
		return auth.Identity{}, fmt.Errorf("%w: token %q: wrong secret", ErrBadToken, rec.Name)
	}
	if !rec.ExpiresAt.IsZero() && !t.now().Before(rec.ExpiresAt) {
		return auth.Identity{}, fmt.Errorf("%w: token %q expired at %s", ErrBadToken, rec.Name, rec.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return TokenIdentity(rec), nil
}

// TokenIdentity is the identity a token's record acts as: its role is the
// identity's Type (the authorization core's built-in rules read it), and
// anything but an admin token is confined to its project.
func TokenIdentity(rec APIToken) auth.Identity {
	id := auth.Identity{Kind: auth.KindToken, Name: rec.Name, Type: rec.Role}
	if rec.Role != RoleAdmin || rec.Project != "" {
		id.Restricted = true
		id.Projects = []string{rec.Project}
	}
	return id
}

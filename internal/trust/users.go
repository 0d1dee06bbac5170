package trust

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/store"
)

// Local users log in to the dialects that have logins (the virt JSON-RPC
// auth.login, the /v/ user login): a name and a password, stored only as
// a PBKDF2 hash (HashPassword). What a user may do is what the auth
// groups that name it (Member{Method: auth.MethodUser, ID: name}) grant:
// the authorization core gives a user nothing of its own.

// User is a local user's record; the password is never kept.
type User struct {
	Name        string
	Description string
	CreatedAt   time.Time
}

// UserDB is what the user service needs of the store.
type UserDB interface {
	CreateUser(ctx context.Context, u store.User) error
	GetUser(ctx context.Context, name string) (store.User, error)
	ListUsers(ctx context.Context) ([]store.User, error)
	UpdateUser(ctx context.Context, name string, up store.UserUpdate) error
	// DeleteUser removes the user and, in the same transaction, every
	// group membership naming it.
	DeleteUser(ctx context.Context, name string) error
}

// UserGroups is what the user service needs of the authorization core
// (*auth.Authorizer): taking a deleted user out of the groups it holds
// in memory, under the lock that keeps group writes from interleaving
// with the store's delete.
type UserGroups interface {
	RemoveMember(ctx context.Context, m auth.Member, persist func() error) error
}

// Users creates, lists, deletes and checks local users. Its methods are
// safe for concurrent use. Who may manage users is the edge's check;
// Delete also needs admin of Groups, as every group change does.
type Users struct {
	DB UserDB
	// Groups drops a deleted user from the groups' in-memory snapshot;
	// nil: only the store's rows go (unit tests without an Authorizer).
	Groups UserGroups
	// Limiter caps login attempts per source host; nil: 5 at once, then
	// 2 a second.
	Limiter *Limiter
	Now     func() time.Time // time.Now when nil
	Log     *slog.Logger     // slog.Default() when nil

	// iterations is PBKDF2's work for new hashes: passwordIterations
	// unless a test of this package lowers it.
	iterations int

	once  sync.Once
	dummy string // a hash no password matches, checked for unknown names

	// revoked is when each user's sessions stopped counting: its delete
	// or its last password change. Dialect sessions live in memory, so
	// this does too: a restart ends them all anyway.
	revMu   sync.Mutex
	revoked map[string]time.Time
}

// userName is the rule of API token and group names.
var userName = tokenName

// maxPasswordLen bounds what a request may make hangard hash.
const maxPasswordLen = 4096

// dummySalt and dummyKey make the hash an unknown user's login is checked
// against: what a password is compared with does not matter, only that it
// costs what a real user's check costs, so they have HashPassword's sizes
// (16 and 32 bytes: a longer key would be a second PBKDF2 block, twice
// the work).
const dummySalt, dummyKey = "aGFuZ2FyOm5vLXVzZXIhIQ", "bm8gcGFzc3dvcmQgZXZlciBoYXNoZXMgdG8gdGhpcy4"

func (u *Users) init() {
	u.once.Do(func() {
		if u.iterations == 0 {
			u.iterations = passwordIterations
		}
		if u.Limiter == nil {
			u.Limiter = &Limiter{Rate: 2, Burst: 5}
		}
		if u.Log == nil {
			u.Log = slog.Default()
		}
		u.dummy = passwordScheme + "$" + strconv.Itoa(u.iterations) + "$" + dummySalt + "$" + dummyKey
	})
}

func (u *Users) now() time.Time {
	if u.Now == nil {
		return time.Now()
	}
	return u.Now()
}

func toUser(r store.User) User {
	return User{Name: r.Name, Description: r.Description, CreatedAt: r.CreatedAt}
}

func checkUserName(name string) error {
	if !userName.MatchString(name) {
		return errdefs.Invalid("invalid user name %q: letters, digits, '_', '.' and '-', starting with a letter or digit, at most 64", name)
	}
	return nil
}

// hash checks a new password and returns its stored form.
func (u *Users) hash(password string) (string, error) {
	switch {
	case password == "":
		return "", errdefs.Invalid("the password is empty")
	case len(password) > maxPasswordLen:
		return "", errdefs.Invalid("the password is longer than %d bytes", maxPasswordLen)
	}
	return hashPassword(password, u.iterations)
}

// Create adds a user. A bad name or an empty password is errdefs.Invalid,
// a name in use errdefs.Conflict.
func (u *Users) Create(ctx context.Context, name, password, description string) (User, error) {
	u.init()
	if err := checkUserName(name); err != nil {
		return User{}, err
	}
	// A name in use fails before the costly hash; the insert still
	// decides between concurrent creates.
	if _, err := u.DB.GetUser(ctx, name); err == nil {
		return User{}, errdefs.Conflict("user %q already exists", name)
	}
	hash, err := u.hash(password)
	if err != nil {
		return User{}, err
	}
	rec := store.User{Name: name, Description: description, PasswordHash: hash, CreatedAt: u.now()}
	if err := u.DB.CreateUser(ctx, rec); err != nil {
		return User{}, err
	}
	u.Log.Info("user created", "user", name)
	return toUser(rec), nil
}

// SetPassword replaces a user's password.
func (u *Users) SetPassword(ctx context.Context, name, password string) error {
	return u.Update(ctx, name, UserUpdate{Password: &password})
}

// UserUpdate changes a user: each field set (non-nil) replaces the
// current one.
type UserUpdate struct {
	Description *string
	Password    *string
}

// Update changes a user's description and password in one write; an
// unknown user is errdefs.NotFound, an empty password errdefs.Invalid.
func (u *Users) Update(ctx context.Context, name string, up UserUpdate) error {
	u.init()
	var su store.UserUpdate
	su.Description = up.Description
	if up.Password != nil {
		// An unknown user fails before the costly hash.
		if _, err := u.DB.GetUser(ctx, name); err != nil {
			return err
		}
		hash, err := u.hash(*up.Password)
		if err != nil {
			return err
		}
		su.PasswordHash = &hash
	}
	if err := u.DB.UpdateUser(ctx, name, su); err != nil {
		return err
	}
	if up.Password != nil {
		u.revoke(name)
		u.Log.Info("user password changed", "user", name)
	}
	return nil
}

// revoke ends every session name logged in before now.
func (u *Users) revoke(name string) {
	u.revMu.Lock()
	defer u.revMu.Unlock()
	if u.revoked == nil {
		u.revoked = map[string]time.Time{}
	}
	u.revoked[name] = u.now()
}

// SessionValid tells whether a session user name opened with a login at
// loginAt (taken before calling Login, so that a password changed while
// the login ran ends it too) still counts: not if the user was deleted or its password
// changed since (a user re-created under the same name is another user
// and does not inherit the old one's sessions). Dialects ask it on every
// request; it is a map lookup.
func (u *Users) SessionValid(name string, loginAt time.Time) bool {
	u.revMu.Lock()
	defer u.revMu.Unlock()
	at, ok := u.revoked[name]
	return !ok || loginAt.After(at)
}

// List returns every user, by name.
func (u *Users) List(ctx context.Context) ([]User, error) {
	rs, err := u.DB.ListUsers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]User, len(rs))
	for i, r := range rs {
		out[i] = toUser(r)
	}
	return out, nil
}

// Get returns one user; an unknown one is errdefs.NotFound.
func (u *Users) Get(ctx context.Context, name string) (User, error) {
	r, err := u.DB.GetUser(ctx, name)
	if err != nil {
		return User{}, err
	}
	return toUser(r), nil
}

// Delete removes a user and takes it out of every auth group, in one
// store transaction, so that a user created later under the same name
// inherits nothing. An unknown one is errdefs.NotFound.
func (u *Users) Delete(ctx context.Context, name string) error {
	u.init()
	del := func() error { return u.DB.DeleteUser(ctx, name) }
	var err error
	if u.Groups != nil {
		err = u.Groups.RemoveMember(ctx, auth.Member{Method: auth.MethodUser, ID: name}, del)
	} else {
		err = del()
	}
	if err != nil {
		return err
	}
	u.revoke(name)
	u.Log.Info("user deleted", "user", name)
	return nil
}

// Login checks name and password and returns the identity the user acts
// as ({Kind: auth.KindUser, Name: name}: what it may do is read from the
// groups naming it at each check, so a membership removed later stops
// applying at once). Attempts are rate-limited per source host (addr,
// "host:port" or a bare host). Every failure is ErrBadCredentials, never
// saying whether the name exists; an unknown name costs a password hash
// as a known one does, so timing does not tell either (but for a user
// whose hash predates a raise of the iteration count).
func (u *Users) Login(ctx context.Context, name, password, addr string) (auth.Identity, error) {
	u.init()
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if ok, wait := u.Limiter.Allow(host, u.now()); !ok {
		u.Log.Warn("user login refused: too many attempts", "source", host, "user", name)
		return auth.Identity{}, fmt.Errorf("%w: too many attempts from %s, try again in %s", ErrBadCredentials, host, wait.Round(time.Millisecond))
	}
	stored, known := u.dummy, false
	rec, err := u.DB.GetUser(ctx, name)
	switch {
	case err == nil:
		stored, known = rec.PasswordHash, true
	case !errors.Is(err, errdefs.ErrNotFound):
		return auth.Identity{}, fmt.Errorf("login: %w", err)
	}
	ok, err := verifyPassword(stored, password)
	if err != nil {
		return auth.Identity{}, fmt.Errorf("login %q: stored password: %w", name, err)
	}
	if !ok || !known {
		u.Log.Info("user login failed", "source", host, "user", name, "known", known)
		return auth.Identity{}, ErrBadCredentials
	}
	return auth.Identity{Kind: auth.KindUser, Name: name}, nil
}

// ErrBadCredentials is a login that failed: unknown user or wrong
// password, or too many attempts.
var ErrBadCredentials = errdefs.Forbidden("invalid username or password")

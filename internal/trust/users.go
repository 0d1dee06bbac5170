package trust

import (
	"context"
	"time"

	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// CONTRACT (issue 16/17): the users helper replaces this file's bodies.
// Local users log in to the dialects that have logins (the virt JSON-RPC
// auth.login, the /v/ user login): a name and a password, stored only as
// a PBKDF2 hash (HashPassword). What a user may do is what the auth
// groups that name it (Member{Method: auth.MethodUser, ID: name}) grant.

// User is a local user's record; the password is never kept.
type User struct {
	Name        string
	Description string
	CreatedAt   time.Time
}

// Users creates, lists, deletes and checks local users.
type Users struct{}

// Create adds a user. A bad name or an empty password is errdefs.Invalid,
// a name in use errdefs.Conflict.
func (u *Users) Create(ctx context.Context, name, password, description string) (User, error) {
	return User{}, errdefs.NotImplemented("users are not built yet")
}

// SetPassword replaces a user's password.
func (u *Users) SetPassword(ctx context.Context, name, password string) error {
	return errdefs.NotImplemented("users are not built yet")
}

// List returns every user, by name.
func (u *Users) List(ctx context.Context) ([]User, error) {
	return nil, errdefs.NotImplemented("users are not built yet")
}

// Get returns one user; an unknown one is errdefs.NotFound.
func (u *Users) Get(ctx context.Context, name string) (User, error) {
	return User{}, errdefs.NotImplemented("users are not built yet")
}

// Delete removes a user; an unknown one is errdefs.NotFound.
func (u *Users) Delete(ctx context.Context, name string) error {
	return errdefs.NotImplemented("users are not built yet")
}

// Login checks name and password and returns the identity the user acts
// as ({Kind: auth.KindUser, Name: name} with its groups). Attempts are
// rate-limited per source address (addr). Every failure is
// ErrBadCredentials, never saying whether the name exists.
func (u *Users) Login(ctx context.Context, name, password, addr string) (auth.Identity, error) {
	return auth.Identity{}, errdefs.NotImplemented("users are not built yet")
}

// ErrBadCredentials is a login that failed: unknown user or wrong
// password, or too many attempts.
var ErrBadCredentials = errdefs.Forbidden("invalid username or password")

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// User is a local user's stored record. The password itself is never
// stored: PasswordHash is its PBKDF2 hash (trust.HashPassword).
type User struct {
	Name         string
	Description  string
	PasswordHash string
	CreatedAt    time.Time
}

// UserUpdate changes a user: each field set (non-nil) replaces the
// stored one, the others stay.
type UserUpdate struct {
	Description  *string
	PasswordHash *string
}

const userSelect = `SELECT name, description, password_hash, created_at FROM users`

func scanUser(row rowScanner) (User, error) {
	var (
		u       User
		created string
	)
	if err := row.Scan(&u.Name, &u.Description, &u.PasswordHash, &created); err != nil {
		return User{}, err
	}
	var err error
	if u.CreatedAt, err = parseTime(created); err != nil {
		return User{}, fmt.Errorf("user %q: %w", u.Name, err)
	}
	return u, nil
}

// CreateUser stores a new user. A name already used is ErrConflict, an
// empty name or a password hash of another form ErrInvalidArgument.
func (q *Queries) CreateUser(ctx context.Context, u User) error {
	return q.atomic(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			"INSERT INTO users (name, description, password_hash, created_at) VALUES (?, ?, ?, ?)",
			u.Name, u.Description, u.PasswordHash, fmtTime(u.CreatedAt))
		switch {
		case isUnique(err):
			return errdefs.Conflict("user %q already exists", u.Name)
		case isCheck(err):
			return errdefs.Invalid("create user %q: %v", u.Name, err)
		case err != nil:
			return fmt.Errorf("create user %q: %w", u.Name, err)
		}
		return nil
	})
}

// GetUser returns the user called name, with its password hash; none is
// ErrNotFound.
func (q *Queries) GetUser(ctx context.Context, name string) (User, error) {
	u, err := scanUser(q.reader().QueryRowContext(ctx, userSelect+" WHERE name = ?", name))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return User{}, errdefs.NotFound("user %q not found", name)
	case err != nil:
		return User{}, fmt.Errorf("get user %q: %w", name, err)
	}
	return u, nil
}

// ListUsers returns every user, by name.
func (q *Queries) ListUsers(ctx context.Context) ([]User, error) {
	return listRows(ctx, q.reader(), "users", scanUser, userSelect+" ORDER BY name")
}

// UpdateUser applies up to the user called name; none is ErrNotFound.
func (q *Queries) UpdateUser(ctx context.Context, name string, up UserUpdate) error {
	return q.atomic(ctx, func(tx *sql.Tx) error {
		// coalesce keeps a column whose new value is NULL (not given).
		var desc, hash any
		if up.Description != nil {
			desc = *up.Description
		}
		if up.PasswordHash != nil {
			hash = *up.PasswordHash
		}
		res, err := tx.ExecContext(ctx,
			"UPDATE users SET description = coalesce(?, description), password_hash = coalesce(?, password_hash) WHERE name = ?",
			desc, hash, name)
		switch {
		case isCheck(err):
			return errdefs.Invalid("update user %q: %v", name, err)
		case err != nil:
			return fmt.Errorf("update user %q: %w", name, err)
		}
		return oneRow(res, "user %q not found", name)
	})
}

// DeleteUser removes the user called name and, in the same transaction,
// every auth group membership that names it (method "user"): a user
// created later under the same name starts in no group. None is
// ErrNotFound.
func (q *Queries) DeleteUser(ctx context.Context, name string) error {
	return q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM users WHERE name = ?", name)
		if err != nil {
			return fmt.Errorf("delete user %q: %w", name, err)
		}
		if err := oneRow(res, "user %q not found", name); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM auth_identity_groups WHERE method = ? AND identifier = ?", auth.MethodUser, name); err != nil {
			return fmt.Errorf("delete user %q: group memberships: %w", name, err)
		}
		return nil
	})
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// APIToken is a bearer token's stored record. The secret itself is never
// stored: SecretHash is its SHA-256.
type APIToken struct {
	ID         int64
	Name       string
	SecretHash []byte
	Project    string // "" for the whole server
	Role       string // "admin", "operator" or "viewer"
	CreatedAt  time.Time
	ExpiresAt  time.Time // zero: never
}

const apiTokenSelect = `SELECT id, name, secret_hash, coalesce(project, ''), role, created_at, expires_at FROM api_tokens`

func scanAPIToken(row rowScanner) (APIToken, error) {
	var (
		t                APIToken
		created, expires string
	)
	if err := row.Scan(&t.ID, &t.Name, &t.SecretHash, &t.Project, &t.Role, &created, &expires); err != nil {
		return APIToken{}, err
	}
	var err error
	if t.CreatedAt, err = parseTime(created); err != nil {
		return APIToken{}, fmt.Errorf("api token %q: %w", t.Name, err)
	}
	if expires != "" {
		if t.ExpiresAt, err = parseTime(expires); err != nil {
			return APIToken{}, fmt.Errorf("api token %q: %w", t.Name, err)
		}
	}
	return t, nil
}

// CreateAPIToken stores a new token and returns its id. A name already
// used is ErrConflict, an unknown project ErrNotFound.
func (q *Queries) CreateAPIToken(ctx context.Context, t APIToken) (int64, error) {
	var project any
	if t.Project != "" {
		project = t.Project
	}
	expires := ""
	if !t.ExpiresAt.IsZero() {
		expires = fmtTime(t.ExpiresAt)
	}
	var id int64
	err := q.atomic(ctx, func(tx *sql.Tx) error {
		if project != nil {
			var one int
			switch err := tx.QueryRowContext(ctx, "SELECT 1 FROM projects WHERE name = ?", project).Scan(&one); {
			case errors.Is(err, sql.ErrNoRows):
				return errdefs.NotFound("project %q not found", t.Project)
			case err != nil:
				return fmt.Errorf("create api token %q: look up project: %w", t.Name, err)
			}
		}
		res, err := tx.ExecContext(ctx,
			"INSERT INTO api_tokens (name, secret_hash, project, role, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
			t.Name, t.SecretHash, project, t.Role, fmtTime(t.CreatedAt), expires)
		switch {
		case isUnique(err):
			return errdefs.Conflict("api token %q already exists", t.Name)
		case isCheck(err):
			return errdefs.Invalid("create api token %q: %v", t.Name, err)
		case err != nil:
			return fmt.Errorf("create api token %q: %w", t.Name, err)
		}
		if id, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("create api token %q: %w", t.Name, err)
		}
		return nil
	})
	return id, err
}

// GetAPIToken returns the token of id; none is ErrNotFound.
func (q *Queries) GetAPIToken(ctx context.Context, id int64) (APIToken, error) {
	t, err := scanAPIToken(q.reader().QueryRowContext(ctx, apiTokenSelect+" WHERE id = ?", id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return APIToken{}, errdefs.NotFound("api token %d not found", id)
	case err != nil:
		return APIToken{}, fmt.Errorf("get api token %d: %w", id, err)
	}
	return t, nil
}

// ListAPITokens returns every token, by name.
func (q *Queries) ListAPITokens(ctx context.Context) ([]APIToken, error) {
	return listRows(ctx, q.reader(), "api tokens", scanAPIToken, apiTokenSelect+" ORDER BY name")
}

// DeleteAPIToken removes the token called name; none is ErrNotFound.
func (q *Queries) DeleteAPIToken(ctx context.Context, name string) error {
	return q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM api_tokens WHERE name = ?", name)
		if err != nil {
			return fmt.Errorf("delete api token %q: %w", name, err)
		}
		n, err := rowsAffected(res)
		if err != nil {
			return fmt.Errorf("delete api token %q: %w", name, err)
		}
		if n == 0 {
			return errdefs.NotFound("api token %q not found", name)
		}
		return nil
	})
}

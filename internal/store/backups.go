package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// InstanceBackup is an instance backup's stored record; its tarball is a
// file of the core's, named by ID.
type InstanceBackup struct {
	ID               int64
	InstanceID       int64
	Name             string
	CreatedAt        time.Time
	ExpiresAt        time.Time // zero: never
	InstanceOnly     bool
	OptimizedStorage bool
	Compression      string
	// State is "pending" while the tarball is written, then "created".
	State string
}

const backupSelect = `
SELECT id, instance_id, name, created_at, expires_at, instance_only, optimized_storage, compression, state
  FROM instance_backups`

func scanBackup(row rowScanner) (InstanceBackup, error) {
	var (
		b             InstanceBackup
		created, exps string
	)
	if err := row.Scan(&b.ID, &b.InstanceID, &b.Name, &created, &exps, &b.InstanceOnly, &b.OptimizedStorage,
		&b.Compression, &b.State); err != nil {
		return InstanceBackup{}, err
	}
	var err error
	if b.CreatedAt, err = parseTime(created); err != nil {
		return InstanceBackup{}, fmt.Errorf("backup %q: %w", b.Name, err)
	}
	if b.ExpiresAt, err = parseOptionalTime(exps); err != nil {
		return InstanceBackup{}, fmt.Errorf("backup %q: %w", b.Name, err)
	}
	return b, nil
}

// CreateInstanceBackup stores a new backup record and sets b.ID; an
// empty State is "pending". A name the instance has already is
// ErrConflict.
func (q *Queries) CreateInstanceBackup(ctx context.Context, b *InstanceBackup) error {
	if b.State == "" {
		b.State = "pending"
	}
	return q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
INSERT INTO instance_backups (instance_id, name, created_at, expires_at, instance_only, optimized_storage,
                              compression, state)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			b.InstanceID, b.Name, fmtTime(b.CreatedAt), fmtOptionalTime(b.ExpiresAt), b.InstanceOnly,
			b.OptimizedStorage, b.Compression, b.State)
		switch {
		case isUnique(err):
			return errdefs.Conflict("backup %q already exists", b.Name)
		case isCheck(err):
			return errdefs.Invalid("create backup %q: %v", b.Name, err)
		case isForeignKey(err):
			return errdefs.NotFound("create backup %q: instance %d not found", b.Name, b.InstanceID)
		case err != nil:
			return fmt.Errorf("create backup %q: %w", b.Name, err)
		}
		if b.ID, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("create backup %q: %w", b.Name, err)
		}
		return nil
	})
}

// ListInstanceBackups returns an instance's backups, oldest first, in
// every state; instanceID 0 lists every instance's.
func (q *Queries) ListInstanceBackups(ctx context.Context, instanceID int64) ([]InstanceBackup, error) {
	query, args := backupSelect, []any{}
	if instanceID != 0 {
		query += " WHERE instance_id = ?"
		args = append(args, instanceID)
	}
	return listRows(ctx, q.reader(), "backups", scanBackup, query+" ORDER BY instance_id, created_at, id", args...)
}

// GetInstanceBackup returns an instance's backup by name, in any state.
func (q *Queries) GetInstanceBackup(ctx context.Context, instanceID int64, name string) (InstanceBackup, error) {
	b, err := scanBackup(q.reader().QueryRowContext(ctx, backupSelect+" WHERE instance_id = ? AND name = ?", instanceID, name))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return InstanceBackup{}, errdefs.NotFound("backup %q not found", name)
	case err != nil:
		return InstanceBackup{}, fmt.Errorf("get backup %q: %w", name, err)
	}
	return b, nil
}

// UpdateInstanceBackup replaces a backup's name, expiry and state (the
// rest of a backup never changes).
func (q *Queries) UpdateInstanceBackup(ctx context.Context, b InstanceBackup) error {
	return q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			"UPDATE instance_backups SET name = ?, expires_at = ?, state = ? WHERE id = ?",
			b.Name, fmtOptionalTime(b.ExpiresAt), b.State, b.ID)
		switch {
		case isUnique(err):
			return errdefs.Conflict("backup %q already exists", b.Name)
		case isCheck(err):
			return errdefs.Invalid("backup %q: %v", b.Name, err)
		case err != nil:
			return fmt.Errorf("update backup %q: %w", b.Name, err)
		}
		if k, err := rowsAffected(res); err != nil {
			return fmt.Errorf("update backup %q: %w", b.Name, err)
		} else if k == 0 {
			return errdefs.NotFound("backup %q not found", b.Name)
		}
		return nil
	})
}

// DeleteInstanceBackup deletes a backup record; a missing one is not an
// error.
func (q *Queries) DeleteInstanceBackup(ctx context.Context, id int64) error {
	return q.atomic(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM instance_backups WHERE id = ?", id); err != nil {
			return fmt.Errorf("delete backup %d: %w", id, err)
		}
		return nil
	})
}

package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// InstanceSnapshot is an instance snapshot's stored record: the
// instance's record as it was when the snapshot was taken. Its root
// volume's snapshot (a storage volume with a parent) has the same name.
type InstanceSnapshot struct {
	ID          int64
	InstanceID  int64
	Name        string
	Description string
	Config      map[string]string
	Devices     map[string]map[string]string
	Profiles    []string
	Ephemeral   bool
	Stateful    bool
	CreatedAt   time.Time
	ExpiresAt   time.Time // zero: never
}

const snapshotSelect = `
SELECT id, instance_id, name, description, config, devices, profiles, ephemeral, stateful, created_at, expires_at
  FROM instance_snapshots`

func scanSnapshot(row rowScanner) (InstanceSnapshot, error) {
	var (
		sn                                       InstanceSnapshot
		config, devices, profiles, created, exps string
	)
	if err := row.Scan(&sn.ID, &sn.InstanceID, &sn.Name, &sn.Description, &config, &devices, &profiles,
		&sn.Ephemeral, &sn.Stateful, &created, &exps); err != nil {
		return InstanceSnapshot{}, err
	}
	var err error
	if sn.Config, err = decodeStringMap(config); err != nil {
		return InstanceSnapshot{}, fmt.Errorf("snapshot %q config: %w", sn.Name, err)
	}
	if sn.Devices, err = decodeDevices(devices); err != nil {
		return InstanceSnapshot{}, fmt.Errorf("snapshot %q devices: %w", sn.Name, err)
	}
	if err := json.Unmarshal([]byte(profiles), &sn.Profiles); err != nil {
		return InstanceSnapshot{}, fmt.Errorf("snapshot %q profiles: %w", sn.Name, err)
	}
	if sn.Profiles == nil {
		sn.Profiles = []string{}
	}
	if sn.CreatedAt, err = parseTime(created); err != nil {
		return InstanceSnapshot{}, fmt.Errorf("snapshot %q: %w", sn.Name, err)
	}
	if sn.ExpiresAt, err = parseOptionalTime(exps); err != nil {
		return InstanceSnapshot{}, fmt.Errorf("snapshot %q: %w", sn.Name, err)
	}
	return sn, nil
}

// CreateInstanceSnapshot stores a new snapshot record and sets sn.ID. A
// name the instance has already is ErrConflict.
func (q *Queries) CreateInstanceSnapshot(ctx context.Context, sn *InstanceSnapshot) error {
	config, err := marshalMap(sn.Config)
	if err != nil {
		return fmt.Errorf("create snapshot %q config: %w", sn.Name, err)
	}
	devices, err := marshalMap(sn.Devices)
	if err != nil {
		return fmt.Errorf("create snapshot %q devices: %w", sn.Name, err)
	}
	profiles := sn.Profiles
	if profiles == nil {
		profiles = []string{}
	}
	pj, err := json.Marshal(profiles)
	if err != nil {
		return fmt.Errorf("create snapshot %q profiles: %w", sn.Name, err)
	}
	return q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
INSERT INTO instance_snapshots (instance_id, name, description, config, devices, profiles,
                                ephemeral, stateful, created_at, expires_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			sn.InstanceID, sn.Name, sn.Description, config, devices, string(pj),
			sn.Ephemeral, sn.Stateful, fmtTime(sn.CreatedAt), fmtOptionalTime(sn.ExpiresAt))
		switch {
		case isUnique(err):
			return errdefs.Conflict("snapshot %q already exists", sn.Name)
		case isCheck(err):
			return errdefs.Invalid("create snapshot %q: %v", sn.Name, err)
		case err != nil:
			return fmt.Errorf("create snapshot %q: %w", sn.Name, err)
		}
		if sn.ID, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("create snapshot %q: %w", sn.Name, err)
		}
		return nil
	})
}

// ListInstanceSnapshots returns an instance's snapshots, oldest first;
// instanceID 0 lists every instance's.
func (q *Queries) ListInstanceSnapshots(ctx context.Context, instanceID int64) ([]InstanceSnapshot, error) {
	query, args := snapshotSelect, []any{}
	if instanceID != 0 {
		query += " WHERE instance_id = ?"
		args = append(args, instanceID)
	}
	return listRows(ctx, q.reader(), "snapshots", scanSnapshot, query+" ORDER BY instance_id, created_at, id", args...)
}

// GetInstanceSnapshot returns an instance's snapshot by name.
func (q *Queries) GetInstanceSnapshot(ctx context.Context, instanceID int64, name string) (InstanceSnapshot, error) {
	sn, err := scanSnapshot(q.reader().QueryRowContext(ctx, snapshotSelect+" WHERE instance_id = ? AND name = ?", instanceID, name))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return InstanceSnapshot{}, errdefs.NotFound("snapshot %q not found", name)
	case err != nil:
		return InstanceSnapshot{}, fmt.Errorf("get snapshot %q: %w", name, err)
	}
	return sn, nil
}

// UpdateInstanceSnapshot replaces a snapshot's name, description and
// expiry (the rest of a snapshot never changes).
func (q *Queries) UpdateInstanceSnapshot(ctx context.Context, sn InstanceSnapshot) error {
	return q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			"UPDATE instance_snapshots SET name = ?, description = ?, expires_at = ? WHERE id = ?",
			sn.Name, sn.Description, fmtOptionalTime(sn.ExpiresAt), sn.ID)
		switch {
		case isUnique(err):
			return errdefs.Conflict("snapshot %q already exists", sn.Name)
		case isCheck(err):
			return errdefs.Invalid("snapshot %q: %v", sn.Name, err)
		case err != nil:
			return fmt.Errorf("update snapshot %q: %w", sn.Name, err)
		}
		if k, err := rowsAffected(res); err != nil {
			return fmt.Errorf("update snapshot %q: %w", sn.Name, err)
		} else if k == 0 {
			return errdefs.NotFound("snapshot %q not found", sn.Name)
		}
		return nil
	})
}

// DeleteInstanceSnapshot deletes a snapshot record; a missing one is not
// an error.
func (q *Queries) DeleteInstanceSnapshot(ctx context.Context, id int64) error {
	return q.atomic(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM instance_snapshots WHERE id = ?", id); err != nil {
			return fmt.Errorf("delete snapshot %d: %w", id, err)
		}
		return nil
	})
}

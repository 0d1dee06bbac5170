package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Profile is a profile's stored record.
type Profile struct {
	ID int64
	// Project holds the profile; names are unique per project.
	Project     string
	Name        string
	Description string
	Config      map[string]string
	Devices     map[string]map[string]string
}

const profileSelect = `SELECT id, project, name, description, config, devices FROM profiles`

func scanProfile(row rowScanner) (Profile, error) {
	var (
		p               Profile
		config, devices string
	)
	if err := row.Scan(&p.ID, &p.Project, &p.Name, &p.Description, &config, &devices); err != nil {
		return Profile{}, err
	}
	var err error
	if p.Config, err = decodeStringMap(config); err != nil {
		return Profile{}, fmt.Errorf("profile %q config: %w", p.Name, err)
	}
	if p.Devices, err = decodeDevices(devices); err != nil {
		return Profile{}, fmt.Errorf("profile %q devices: %w", p.Name, err)
	}
	return p, nil
}

// CreateProfile stores a new profile and sets p.ID. An existing name is
// ErrConflict.
func (q *Queries) CreateProfile(ctx context.Context, p *Profile) error {
	config, err := marshalMap(p.Config)
	if err != nil {
		return fmt.Errorf("create profile %q config: %w", p.Name, err)
	}
	devices, err := marshalMap(p.Devices)
	if err != nil {
		return fmt.Errorf("create profile %q devices: %w", p.Name, err)
	}
	var id int64
	err = q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			"INSERT INTO profiles (project, name, description, config, devices) VALUES (?, ?, ?, ?, ?)",
			projectOrDefault(p.Project), p.Name, p.Description, config, devices)
		switch {
		case isUnique(err):
			return errdefs.Conflict("profile %q already exists", p.Name)
		case isCheck(err):
			return errdefs.Invalid("create profile %q: %v", p.Name, err)
		case err != nil:
			return fmt.Errorf("create profile %q: %w", p.Name, err)
		}
		if id, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("create profile %q: %w", p.Name, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	p.ID, p.Project = id, projectOrDefault(p.Project)
	return nil
}

// GetProfile returns the profile called name in project.
func (q *Queries) GetProfile(ctx context.Context, project, name string) (Profile, error) {
	p, err := scanProfile(q.reader().QueryRowContext(ctx, profileSelect+" WHERE project = ? AND name = ?", projectOrDefault(project), name))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Profile{}, errdefs.NotFound("profile %q not found", name)
	case err != nil:
		return Profile{}, fmt.Errorf("get profile %q: %w", name, err)
	}
	return p, nil
}

// ListProfiles returns every profile of every project, ordered by project
// and name.
func (q *Queries) ListProfiles(ctx context.Context) ([]Profile, error) {
	rows, err := q.reader().QueryContext(ctx, profileSelect+" ORDER BY project, name")
	if err != nil {
		return nil, fmt.Errorf("list profiles: %w", err)
	}
	defer rows.Close()
	out := []Profile{}
	for rows.Next() {
		p, err := scanProfile(rows)
		if err != nil {
			return nil, fmt.Errorf("list profiles: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list profiles: %w", err)
	}
	return out, nil
}

// UpdateProfile replaces the record with p.ID, name included. Instances refer
// to profiles by ID, so a rename shows in their Profiles at once. A new name
// taken by another profile is ErrConflict.
func (q *Queries) UpdateProfile(ctx context.Context, p Profile) error {
	config, err := marshalMap(p.Config)
	if err != nil {
		return fmt.Errorf("update profile %q config: %w", p.Name, err)
	}
	devices, err := marshalMap(p.Devices)
	if err != nil {
		return fmt.Errorf("update profile %q devices: %w", p.Name, err)
	}
	return q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			"UPDATE profiles SET name = ?, description = ?, config = ?, devices = ? WHERE id = ?",
			p.Name, p.Description, config, devices, p.ID)
		switch {
		case isUnique(err):
			return errdefs.Conflict("profile %q already exists", p.Name)
		case isCheck(err):
			return errdefs.Invalid("update profile %q: %v", p.Name, err)
		case err != nil:
			return fmt.Errorf("update profile %q: %w", p.Name, err)
		}
		n, err := rowsAffected(res)
		if err != nil {
			return fmt.Errorf("update profile %q: %w", p.Name, err)
		}
		if n == 0 {
			return errdefs.NotFound("profile %q (id %d) not found", p.Name, p.ID)
		}
		return nil
	})
}

// DeleteProfile deletes the profile called name in project. A profile
// some instance still lists is ErrConflict: the schema will not leave that
// instance pointing at nothing.
func (q *Queries) DeleteProfile(ctx context.Context, project, name string) error {
	return q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM profiles WHERE project = ? AND name = ?", projectOrDefault(project), name)
		switch {
		case isForeignKey(err):
			return errdefs.Conflict("profile %q is in use by an instance", name)
		case err != nil:
			return fmt.Errorf("delete profile %q: %w", name, err)
		}
		n, err := rowsAffected(res)
		if err != nil {
			return fmt.Errorf("delete profile %q: %w", name, err)
		}
		if n == 0 {
			return errdefs.NotFound("profile %q not found", name)
		}
		return nil
	})
}

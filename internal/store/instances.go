package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/hangar-dev/hangar/internal/cuid"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Instance is an instance's stored record.
type Instance struct {
	// ID is assigned by CreateInstance and never reused, even after the
	// instance is deleted, so it can name the instance's runtime objects.
	ID int64
	// UID is the instance's public id (package cuid's shape): the one
	// given to CreateInstance, or a fresh one when that is empty; fixed
	// for the row's life, so a rename keeps it.
	UID string
	// Project holds the instance; names are unique per project.
	Project string
	// ProfileProject is the project whose profiles the instance's
	// Profiles name: its own when it has features.profiles, else the
	// default project. Derived by the store from the project's config.
	ProfileProject string
	Name           string
	Type           string
	Architecture   string
	Description    string
	Config         map[string]string
	Devices        map[string]map[string]string
	// Profiles in the order they apply; each must name an existing profile.
	Profiles   []string
	Ephemeral  bool
	Stateful   bool
	CreatedAt  time.Time
	LastUsedAt time.Time
}

// Profiles are fetched by a second query over the same rows, in the same
// read transaction, and attached in Go: one extra statement for the whole
// list, where an ordered json_group_array subquery per row doubled the cost
// of ListInstances.
const instanceSelect = `
SELECT i.id, i.uid, i.project, ` + profileProjectOf + `, i.name, i.type, i.architecture, i.description, i.config, i.devices,
       i.ephemeral, i.stateful, i.created_at, i.last_used_at
  FROM instances i`

// profileProjectOf is the project whose profiles instance i uses (LXD
// forbids changing features.profiles on a project with instances, so it
// is stable for an instance's life).
const profileProjectOf = `(SELECT CASE WHEN json_extract(pr.config, '$."features.profiles"') = 'true'
             THEN pr.name ELSE 'default' END FROM projects pr WHERE pr.name = i.project)`

const instanceProfilesSelect = `
SELECT ip.instance_id, p.name
  FROM instances_profiles ip
  JOIN profiles p ON p.id = ip.profile_id
  JOIN instances i ON i.id = ip.instance_id`

func scanInstance(row rowScanner) (Instance, error) {
	var (
		in                     Instance
		config, devices, c, lu string
	)
	if err := row.Scan(&in.ID, &in.UID, &in.Project, &in.ProfileProject, &in.Name, &in.Type, &in.Architecture, &in.Description,
		&config, &devices, &in.Ephemeral, &in.Stateful, &c, &lu); err != nil {
		return Instance{}, err
	}
	var err error
	if in.Config, err = decodeStringMap(config); err != nil {
		return Instance{}, fmt.Errorf("instance %q config: %w", in.Name, err)
	}
	if in.Devices, err = decodeDevices(devices); err != nil {
		return Instance{}, fmt.Errorf("instance %q devices: %w", in.Name, err)
	}
	if in.CreatedAt, err = parseTime(c); err != nil {
		return Instance{}, fmt.Errorf("instance %q: %w", in.Name, err)
	}
	if in.LastUsedAt, err = parseTime(lu); err != nil {
		return Instance{}, fmt.Errorf("instance %q: %w", in.Name, err)
	}
	in.Profiles = []string{}
	return in, nil
}

// loadInstances returns the instances matching where (a condition on i, or
// ""), ordered by name, with their profiles.
func (q *Queries) loadInstances(ctx context.Context, where string, args ...any) ([]Instance, error) {
	if where != "" {
		where = " WHERE " + where
	}
	var out []Instance
	err := q.read(ctx, func(db dbtx) error {
		out = out[:0]
		rows, err := db.QueryContext(ctx, instanceSelect+where+" ORDER BY i.project, i.name", args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		byID := map[int64]int{}
		for rows.Next() {
			in, err := scanInstance(rows)
			if err != nil {
				return err
			}
			byID[in.ID] = len(out)
			out = append(out, in)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(out) == 0 {
			return nil
		}

		prows, err := db.QueryContext(ctx, instanceProfilesSelect+where+" ORDER BY ip.instance_id, ip.apply_order", args...)
		if err != nil {
			return err
		}
		defer prows.Close()
		for prows.Next() {
			var (
				id   int64
				name string
			)
			if err := prows.Scan(&id, &name); err != nil {
				return err
			}
			// The read transaction makes both queries see one snapshot,
			// so every link belongs to a row already read.
			if i, ok := byID[id]; ok {
				out[i].Profiles = append(out[i].Profiles, name)
			}
		}
		return prows.Err()
	})
	return out, err
}

// CreateInstance stores a new instance and sets inst.ID. An existing name is
// ErrConflict; an unknown profile ErrNotFound; a profile listed twice
// ErrInvalidArgument.
func (q *Queries) CreateInstance(ctx context.Context, inst *Instance) error {
	config, err := marshalMap(inst.Config)
	if err != nil {
		return fmt.Errorf("create instance %q config: %w", inst.Name, err)
	}
	devices, err := marshalMap(inst.Devices)
	if err != nil {
		return fmt.Errorf("create instance %q devices: %w", inst.Name, err)
	}
	uid := inst.UID
	if uid == "" {
		uid = cuid.New()
	} else if !cuid.Valid(uid) {
		return errdefs.Invalid("create instance %q: id %q is not 24 characters of [a-z0-9] starting with a letter", inst.Name, uid)
	}
	var (
		id             int64
		profileProject string
	)
	err = q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
INSERT INTO instances (uid, project, name, type, architecture, description, config, devices,
                       ephemeral, stateful, created_at, last_used_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			uid, projectOrDefault(inst.Project), inst.Name, inst.Type, inst.Architecture, inst.Description, config, devices,
			inst.Ephemeral, inst.Stateful, fmtTime(inst.CreatedAt), fmtTime(inst.LastUsedAt))
		switch {
		case isUnique(err) && strings.Contains(err.Error(), "instances.uid"):
			return errdefs.Conflict("create instance %q: id %s is taken", inst.Name, uid)
		case isUnique(err):
			return errdefs.Conflict("instance %q already exists", inst.Name)
		case isForeignKey(err):
			return errdefs.NotFound("project %q not found", inst.Project)
		case isCheck(err):
			return errdefs.Invalid("create instance %q: %v", inst.Name, err)
		case err != nil:
			return fmt.Errorf("create instance %q: %w", inst.Name, err)
		}
		if id, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("create instance %q: %w", inst.Name, err)
		}
		if err := tx.QueryRowContext(ctx, "SELECT "+profileProjectOf+" FROM instances i WHERE i.id = ?", id).Scan(&profileProject); err != nil {
			return fmt.Errorf("create instance %q: %w", inst.Name, err)
		}
		return setInstanceProfiles(ctx, tx, id, inst.Profiles)
	})
	if err != nil {
		return err
	}
	// Only now: a failed create must not leave a plausible-looking ID.
	inst.ID, inst.UID = id, uid
	inst.Project, inst.ProfileProject = projectOrDefault(inst.Project), profileProject
	return nil
}

// sameProfiles tells whether instance id's stored profile list is profiles.
func (q *Queries) sameProfiles(ctx context.Context, tx *sql.Tx, id int64, profiles []string) (bool, error) {
	rows, err := tx.StmtContext(ctx, q.hot.instanceProfiles).QueryContext(ctx, id)
	if err != nil {
		return false, fmt.Errorf("profiles of instance %d: %w", id, err)
	}
	defer rows.Close()
	i := 0
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return false, fmt.Errorf("profiles of instance %d: %w", id, err)
		}
		if i >= len(profiles) || profiles[i] != name {
			return false, rows.Err()
		}
		i++
	}
	return i == len(profiles), rows.Err()
}

// setInstanceProfiles stores the instance's profile list, replacing any.
func setInstanceProfiles(ctx context.Context, tx *sql.Tx, id int64, profiles []string) error {
	if _, err := tx.ExecContext(ctx, "DELETE FROM instances_profiles WHERE instance_id = ?", id); err != nil {
		return fmt.Errorf("clear profiles of instance %d: %w", id, err)
	}
	for i, name := range profiles {
		// Resolving the name inside the INSERT makes "no such profile" a
		// zero-row insert rather than a second query.
		res, err := tx.ExecContext(ctx, `
INSERT INTO instances_profiles (instance_id, profile_id, apply_order)
SELECT i.id, p.id, ? FROM instances i JOIN profiles p
 WHERE i.id = ? AND p.name = ? AND p.project = `+profileProjectOf, i, id, name)
		switch {
		case isUnique(err): // (instance_id, apply_order) cannot collide: it is the profile
			return errdefs.Invalid("profile %q is listed more than once", name)
		case err != nil:
			return fmt.Errorf("add profile %q to instance %d: %w", name, id, err)
		}
		n, err := rowsAffected(res)
		if err != nil {
			return fmt.Errorf("add profile %q to instance %d: %w", name, id, err)
		}
		if n == 0 {
			return errdefs.NotFound("profile %q not found", name)
		}
	}
	return nil
}

// GetInstance returns the instance called name in the default project.
func (q *Queries) GetInstance(ctx context.Context, name string) (Instance, error) {
	list, err := q.loadInstances(ctx, "i.project = 'default' AND i.name = ?", name)
	switch {
	case err != nil:
		return Instance{}, fmt.Errorf("get instance %q: %w", name, err)
	case len(list) == 0:
		return Instance{}, errdefs.NotFound("instance %q not found", name)
	}
	return list[0], nil
}

// ListInstances returns every instance of every project, ordered by
// project and name.
func (q *Queries) ListInstances(ctx context.Context) ([]Instance, error) {
	list, err := q.loadInstances(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	if list == nil {
		list = []Instance{}
	}
	return list, nil
}

// UpdateInstance replaces the record with inst.ID: every field but ID, Type
// and CreatedAt, which are fixed at creation. A new name taken by another
// instance is ErrConflict; profile errors are as for CreateInstance.
func (q *Queries) UpdateInstance(ctx context.Context, inst Instance) error {
	config, err := marshalMap(inst.Config)
	if err != nil {
		return fmt.Errorf("update instance %q config: %w", inst.Name, err)
	}
	devices, err := marshalMap(inst.Devices)
	if err != nil {
		return fmt.Errorf("update instance %q devices: %w", inst.Name, err)
	}
	return q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.StmtContext(ctx, q.hot.updateInstance).ExecContext(ctx,
			inst.Name, inst.Architecture, inst.Description, config, devices,
			inst.Ephemeral, inst.Stateful, fmtTime(inst.LastUsedAt), inst.ID)
		switch {
		case isUnique(err):
			return errdefs.Conflict("instance %q already exists", inst.Name)
		case isCheck(err):
			return errdefs.Invalid("update instance %q: %v", inst.Name, err)
		case err != nil:
			return fmt.Errorf("update instance %q: %w", inst.Name, err)
		}
		n, err := rowsAffected(res)
		if err != nil {
			return fmt.Errorf("update instance %q: %w", inst.Name, err)
		}
		if n == 0 {
			return errdefs.NotFound("instance %q (id %d) not found", inst.Name, inst.ID)
		}
		// Most updates (config, state) keep the profile list: rewriting
		// it costs a delete and an insert per profile.
		same, err := q.sameProfiles(ctx, tx, inst.ID, inst.Profiles)
		if err != nil || same {
			return err
		}
		return setInstanceProfiles(ctx, tx, inst.ID, inst.Profiles)
	})
}

// DeleteInstance deletes the instance with the given ID.
func (q *Queries) DeleteInstance(ctx context.Context, id int64) error {
	return q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM instances WHERE id = ?", id)
		if err != nil {
			return fmt.Errorf("delete instance %d: %w", id, err)
		}
		n, err := rowsAffected(res)
		if err != nil {
			return fmt.Errorf("delete instance %d: %w", id, err)
		}
		if n == 0 {
			return errdefs.NotFound("instance with id %d not found", id)
		}
		return nil
	})
}

// projectOrDefault names the default project for a record that names none.
func projectOrDefault(p string) string {
	if p == "" {
		return "default"
	}
	return p
}

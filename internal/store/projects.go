package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Project is a project's stored record. Parent is "" for a top-level
// project.
type Project struct {
	ID          int64
	Name        string
	Description string
	Config      map[string]string
	Parent      string
}

const projectSelect = `SELECT id, name, description, config, coalesce(parent, '') FROM projects`

func scanProject(row rowScanner) (Project, error) {
	var (
		p      Project
		config string
	)
	if err := row.Scan(&p.ID, &p.Name, &p.Description, &config, &p.Parent); err != nil {
		return Project{}, err
	}
	var err error
	if p.Config, err = decodeStringMap(config); err != nil {
		return Project{}, fmt.Errorf("project %q config: %w", p.Name, err)
	}
	return p, nil
}

// nullParent stores "" as NULL: the column references projects(name), and
// a top-level project has no parent row.
func nullParent(parent string) any {
	if parent == "" {
		return nil
	}
	return parent
}

// CreateProject stores a new project and sets p.ID. With defaultProfile it
// also creates the project's own "default" profile in the same
// transaction (a project with features.profiles, as LXD). An existing name
// is ErrConflict; a parent that does not exist is ErrNotFound.
func (q *Queries) CreateProject(ctx context.Context, p *Project, defaultProfile bool) error {
	config, err := marshalMap(p.Config)
	if err != nil {
		return fmt.Errorf("create project %q config: %w", p.Name, err)
	}
	var id int64
	err = q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			"INSERT INTO projects (name, description, config, parent) VALUES (?, ?, ?, ?)",
			p.Name, p.Description, config, nullParent(p.Parent))
		switch {
		case isUnique(err):
			return errdefs.Conflict("project %q already exists", p.Name)
		case isForeignKey(err):
			return errdefs.NotFound("parent project %q not found", p.Parent)
		case isCheck(err):
			return errdefs.Invalid("create project %q: %v", p.Name, err)
		case err != nil:
			return fmt.Errorf("create project %q: %w", p.Name, err)
		}
		if id, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("create project %q: %w", p.Name, err)
		}
		if defaultProfile {
			return createDefaultProfile(ctx, tx, p.Name)
		}
		return nil
	})
	if err != nil {
		return err
	}
	p.ID = id
	return nil
}

func createDefaultProfile(ctx context.Context, tx *sql.Tx, project string) error {
	_, err := tx.ExecContext(ctx,
		"INSERT INTO profiles (project, name, description) VALUES (?, 'default', ?)",
		project, fmt.Sprintf("Default Hangar profile for project %s", project))
	if err != nil {
		return fmt.Errorf("create default profile of project %q: %w", project, err)
	}
	return nil
}

// GetProject returns the project called name.
func (q *Queries) GetProject(ctx context.Context, name string) (Project, error) {
	p, err := scanProject(q.reader().QueryRowContext(ctx, projectSelect+" WHERE name = ?", name))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Project{}, errdefs.NotFound("project %q not found", name)
	case err != nil:
		return Project{}, fmt.Errorf("get project %q: %w", name, err)
	}
	return p, nil
}

// ListProjects returns every project, ordered by name.
func (q *Queries) ListProjects(ctx context.Context) ([]Project, error) {
	return listRows(ctx, q.reader(), "projects", scanProject, projectSelect+" ORDER BY name")
}

// ProfileChange says what UpdateProject does to the project's own
// "default" profile when features.profiles changes.
type ProfileChange int

// The profile changes UpdateProject makes.
const (
	ProfileKeep ProfileChange = iota
	ProfileCreateDefault
	ProfileDeleteDefault
)

// UpdateProject replaces the description, config and parent of the project
// called p.Name and creates or deletes its "default" profile as profiles
// says, in one transaction.
func (q *Queries) UpdateProject(ctx context.Context, p Project, profiles ProfileChange) error {
	config, err := marshalMap(p.Config)
	if err != nil {
		return fmt.Errorf("update project %q config: %w", p.Name, err)
	}
	return q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			"UPDATE projects SET description = ?, config = ?, parent = ? WHERE name = ?",
			p.Description, config, nullParent(p.Parent), p.Name)
		switch {
		case isForeignKey(err):
			return errdefs.NotFound("parent project %q not found", p.Parent)
		case err != nil:
			return fmt.Errorf("update project %q: %w", p.Name, err)
		}
		n, err := rowsAffected(res)
		if err != nil {
			return fmt.Errorf("update project %q: %w", p.Name, err)
		}
		if n == 0 {
			return errdefs.NotFound("project %q not found", p.Name)
		}
		switch profiles {
		case ProfileCreateDefault:
			return createDefaultProfile(ctx, tx, p.Name)
		case ProfileDeleteDefault:
			_, err := tx.ExecContext(ctx, "DELETE FROM profiles WHERE project = ? AND name = 'default'", p.Name)
			switch {
			case isForeignKey(err):
				return errdefs.Conflict("the default profile of project %q is in use by an instance", p.Name)
			case err != nil:
				return fmt.Errorf("delete default profile of project %q: %w", p.Name, err)
			}
		}
		return nil
	})
}

// RenameProject renames a project. Every row naming it, children's parent
// included, follows through ON UPDATE CASCADE.
func (q *Queries) RenameProject(ctx context.Context, name, newName string) error {
	return q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE projects SET name = ? WHERE name = ?", newName, name)
		switch {
		case isUnique(err):
			return errdefs.Conflict("project %q already exists", newName)
		case isCheck(err):
			return errdefs.Invalid("rename project %q: %v", name, err)
		case err != nil:
			return fmt.Errorf("rename project %q: %w", name, err)
		}
		n, err := rowsAffected(res)
		if err != nil {
			return fmt.Errorf("rename project %q: %w", name, err)
		}
		if n == 0 {
			return errdefs.NotFound("project %q not found", name)
		}
		return nil
	})
}

// DeleteProject deletes the project called name and its "default"
// profile. Anything else still in it (instances, other profiles, aliases,
// images, volumes, networks, children) makes it ErrConflict: the schema
// will not leave rows naming a project that is gone. Callers say what is
// left first (ProjectContents); this is the last guard.
func (q *Queries) DeleteProject(ctx context.Context, name string) error {
	if name == "default" {
		return errdefs.Forbidden("the default project cannot be deleted")
	}
	return q.atomic(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM profiles WHERE project = ? AND name = 'default'", name); err != nil {
			if isForeignKey(err) {
				return errdefs.Conflict("project %q is not empty: its default profile is in use", name)
			}
			return fmt.Errorf("delete project %q: %w", name, err)
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM projects WHERE name = ?", name)
		switch {
		case isForeignKey(err):
			return errdefs.Conflict("project %q is not empty", name)
		case err != nil:
			return fmt.Errorf("delete project %q: %w", name, err)
		}
		n, err := rowsAffected(res)
		if err != nil {
			return fmt.Errorf("delete project %q: %w", name, err)
		}
		if n == 0 {
			return errdefs.NotFound("project %q not found", name)
		}
		return nil
	})
}

// Kinds of ProjectObject.
const (
	ObjectInstance = "instance"
	ObjectProfile  = "profile"
	ObjectImage    = "image"
	ObjectVolume   = "storage-volume"
	ObjectNetwork  = "network"
	ObjectProject  = "project"
)

// ProjectObject is one thing a project holds.
type ProjectObject struct {
	Kind string
	// Name is the instance, profile, network, custom volume or child
	// project name, or an image's fingerprint.
	Name string
	// Type is an instance's type ("container", "virtual-machine").
	Type string
	// Pool is a volume's storage pool.
	Pool string
}

// projectContentsSQL lists what a project holds, one row per object:
// kind, name, type, pool. Volume snapshots go with their volume; the
// images are those image_projects lists for the project.
const projectContentsSQL = `
SELECT 'instance', name, type, '' FROM instances WHERE project = ?1
UNION ALL SELECT 'profile', name, '', '' FROM profiles WHERE project = ?1
UNION ALL SELECT 'image', fingerprint, '', '' FROM image_projects WHERE project = ?1
UNION ALL SELECT 'storage-volume', v.name, '', p.name FROM storage_volumes v JOIN storage_pools p ON p.id = v.pool_id
           WHERE v.project = ?1 AND v.type = 'custom' AND v.parent_id IS NULL
UNION ALL SELECT 'network', name, '', '' FROM networks WHERE project = ?1
UNION ALL SELECT 'project', name, '', '' FROM projects WHERE parent = ?1
ORDER BY 1, 2`

// ProjectContents returns what the project called name holds, by kind then
// name. The default profile is among them.
func (q *Queries) ProjectContents(ctx context.Context, name string) ([]ProjectObject, error) {
	return listRows(ctx, q.reader(), fmt.Sprintf("contents of project %q", name), func(row rowScanner) (ProjectObject, error) {
		var o ProjectObject
		err := row.Scan(&o.Kind, &o.Name, &o.Type, &o.Pool)
		return o, err
	}, projectContentsSQL, name)
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// AuthGroups returns every auth group with its permissions and members,
// ordered by name. The Authorizer reads them once at start and keeps its
// own snapshot, so this is not on any request's path.
func (q *Queries) AuthGroups(ctx context.Context) ([]auth.Group, error) {
	var out []auth.Group
	err := q.read(ctx, func(db dbtx) error {
		byID := map[int64]int{}
		rows, err := db.QueryContext(ctx, "SELECT id, name, description FROM auth_groups ORDER BY name")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				id int64
				g  auth.Group
			)
			if err := rows.Scan(&id, &g.Name, &g.Description); err != nil {
				return err
			}
			byID[id] = len(out)
			out = append(out, g)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()

		perms, err := db.QueryContext(ctx,
			"SELECT group_id, entity_type, project, name, entitlement FROM auth_group_permissions ORDER BY group_id, entity_type, project, name, entitlement")
		if err != nil {
			return err
		}
		defer perms.Close()
		for perms.Next() {
			var (
				id int64
				p  auth.Permission
			)
			if err := perms.Scan(&id, &p.Object.Type, &p.Object.Project, &p.Object.Name, &p.Entitlement); err != nil {
				return err
			}
			out[byID[id]].Permissions = append(out[byID[id]].Permissions, p)
		}
		if err := perms.Err(); err != nil {
			return err
		}
		perms.Close()

		members, err := db.QueryContext(ctx, "SELECT group_id, method, identifier FROM auth_identity_groups ORDER BY group_id, method, identifier")
		if err != nil {
			return err
		}
		defer members.Close()
		for members.Next() {
			var (
				id int64
				m  auth.Member
			)
			if err := members.Scan(&id, &m.Method, &m.ID); err != nil {
				return err
			}
			out[byID[id]].Members = append(out[byID[id]].Members, m)
		}
		return members.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list auth groups: %w", err)
	}
	return out, nil
}

// CreateAuthGroup stores a new group. An existing name is ErrConflict.
func (q *Queries) CreateAuthGroup(ctx context.Context, g auth.Group) error {
	return q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "INSERT INTO auth_groups (name, description) VALUES (?, ?)", g.Name, g.Description)
		switch {
		case isUnique(err):
			return errdefs.Conflict("group %q already exists", g.Name)
		case err != nil:
			return fmt.Errorf("create auth group %q: %w", g.Name, err)
		}
		id, err := res.LastInsertId()
		if err != nil {
			return fmt.Errorf("create auth group %q: %w", g.Name, err)
		}
		return insertGroupRows(ctx, tx, id, g)
	})
}

// UpdateAuthGroup replaces the description, permissions and members of
// the group called name.
func (q *Queries) UpdateAuthGroup(ctx context.Context, name string, g auth.Group) error {
	return q.atomic(ctx, func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, "SELECT id FROM auth_groups WHERE name = ?", name).Scan(&id)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return errdefs.NotFound("group %q not found", name)
		case err != nil:
			return fmt.Errorf("update auth group %q: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, "UPDATE auth_groups SET description = ? WHERE id = ?", g.Description, id); err != nil {
			return fmt.Errorf("update auth group %q: %w", name, err)
		}
		for _, table := range []string{"auth_group_permissions", "auth_identity_groups"} {
			if _, err := tx.ExecContext(ctx, "DELETE FROM "+table+" WHERE group_id = ?", id); err != nil {
				return fmt.Errorf("update auth group %q: %w", name, err)
			}
		}
		return insertGroupRows(ctx, tx, id, g)
	})
}

func insertGroupRows(ctx context.Context, tx *sql.Tx, id int64, g auth.Group) error {
	for _, p := range g.Permissions {
		_, err := tx.ExecContext(ctx,
			"INSERT OR IGNORE INTO auth_group_permissions (group_id, entity_type, project, name, entitlement) VALUES (?, ?, ?, ?, ?)",
			id, string(p.Object.Type), p.Object.Project, p.Object.Name, string(p.Entitlement))
		if err != nil {
			return fmt.Errorf("auth group %q permission %s on %s: %w", g.Name, p.Entitlement, p.Object, err)
		}
	}
	for _, m := range g.Members {
		_, err := tx.ExecContext(ctx,
			"INSERT OR IGNORE INTO auth_identity_groups (group_id, method, identifier) VALUES (?, ?, ?)", id, m.Method, m.ID)
		if err != nil {
			return fmt.Errorf("auth group %q member %s %s: %w", g.Name, m.Method, m.ID, err)
		}
	}
	return nil
}

// RenameAuthGroup renames a group; its rows refer to it by id.
func (q *Queries) RenameAuthGroup(ctx context.Context, name, newName string) error {
	return q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE auth_groups SET name = ? WHERE name = ?", newName, name)
		switch {
		case isUnique(err):
			return errdefs.Conflict("group %q already exists", newName)
		case err != nil:
			return fmt.Errorf("rename auth group %q: %w", name, err)
		}
		return oneRow(res, "group %q not found", name)
	})
}

// DeleteAuthGroup removes a group, its permissions and its members.
func (q *Queries) DeleteAuthGroup(ctx context.Context, name string) error {
	return q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM auth_groups WHERE name = ?", name)
		if err != nil {
			return fmt.Errorf("delete auth group %q: %w", name, err)
		}
		return oneRow(res, "group %q not found", name)
	})
}

func oneRow(res sql.Result, format string, a ...any) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return errdefs.NotFound(format, a...)
	}
	return nil
}

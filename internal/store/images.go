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

// Image is an image's stored record.
type Image struct {
	// Fingerprint is the SHA-256 of the image, 64 lowercase hex digits; the
	// schema refuses anything else (ErrInvalidArgument).
	Fingerprint  string
	Filename     string
	Size         int64
	Architecture string
	Type         string
	Properties   map[string]string
	Public       bool
	AutoUpdate   bool
	Cached       bool
	CreatedAt    time.Time
	UploadedAt   time.Time
	LastUsedAt   time.Time
	ExpiresAt    time.Time
	// Source is free text saying where the image came from, e.g. "file".
	Source string
	// Format names the layout of the image's blob (e.g. "rootfs-tarball"),
	// so the image package knows which source unpacks it. Empty is stored
	// as "rootfs-tarball".
	Format string
	// Projects are the projects holding the image (image_projects), by
	// name. Read only: CreateImage, AddImageProject and RemoveImageProject
	// change them. The image itself (files, properties, public,
	// auto_update) is one, whichever project sees it.
	Projects []string
}

const imageSelect = `
SELECT fingerprint, filename, size, architecture, type, properties,
       public, auto_update, cached, created_at, uploaded_at, last_used_at, expires_at, source, format,
       (SELECT json_group_array(project) FROM
          (SELECT project FROM image_projects ip WHERE ip.fingerprint = images.fingerprint ORDER BY project))
  FROM images`

// inProject is the condition that an image is held by the project given as
// its two arguments, or by any when that is "".
const inProject = ` (? = '' OR EXISTS (SELECT 1 FROM image_projects ip WHERE ip.fingerprint = images.fingerprint AND ip.project = ?))`

func scanImage(row rowScanner) (Image, error) {
	var (
		img                              Image
		props, c, u, lu, expir, projects string
	)
	if err := row.Scan(&img.Fingerprint, &img.Filename, &img.Size, &img.Architecture, &img.Type, &props,
		&img.Public, &img.AutoUpdate, &img.Cached, &c, &u, &lu, &expir, &img.Source, &img.Format, &projects); err != nil {
		return Image{}, err
	}
	var err error
	if img.Properties, err = decodeStringMap(props); err != nil {
		return Image{}, fmt.Errorf("image %s properties: %w", img.Fingerprint, err)
	}
	if err := json.Unmarshal([]byte(projects), &img.Projects); err != nil {
		return Image{}, fmt.Errorf("image %s projects: %w", img.Fingerprint, err)
	}
	for _, t := range []struct {
		dst *time.Time
		src string
	}{{&img.CreatedAt, c}, {&img.UploadedAt, u}, {&img.LastUsedAt, lu}, {&img.ExpiresAt, expir}} {
		if *t.dst, err = parseTime(t.src); err != nil {
			return Image{}, fmt.Errorf("image %s: %w", img.Fingerprint, err)
		}
	}
	return img, nil
}

// CreateImage stores a new image, held by project. An existing fingerprint
// is ErrConflict (AddImageProject gives an image another project); a
// project that does not exist is ErrNotFound.
func (q *Queries) CreateImage(ctx context.Context, img Image, project string) error {
	props, err := marshalMap(img.Properties)
	if err != nil {
		return fmt.Errorf("create image %s properties: %w", img.Fingerprint, err)
	}
	return q.atomic(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
INSERT INTO images (fingerprint, filename, size, architecture, type, properties,
                    public, auto_update, cached, created_at, uploaded_at, last_used_at, expires_at, source, format)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			img.Fingerprint, img.Filename, img.Size, img.Architecture, img.Type, props,
			img.Public, img.AutoUpdate, img.Cached, fmtTime(img.CreatedAt), fmtTime(img.UploadedAt),
			fmtTime(img.LastUsedAt), fmtTime(img.ExpiresAt), img.Source, formatOrDefault(img.Format))
		switch {
		case isUnique(err):
			return errdefs.Conflict("image %q already exists", img.Fingerprint)
		case isCheck(err):
			return errdefs.Invalid("image fingerprint %q is not 64 lowercase hex digits", img.Fingerprint)
		case err != nil:
			return fmt.Errorf("create image %s: %w", img.Fingerprint, err)
		}
		return addImageProject(ctx, tx, img.Fingerprint, project)
	})
}

// AddImageProject makes project hold the stored image fp too. An image the
// project already holds is ErrConflict; a missing image or project is
// ErrNotFound.
func (q *Queries) AddImageProject(ctx context.Context, fp, project string) error {
	return q.atomic(ctx, func(tx *sql.Tx) error { return addImageProject(ctx, tx, fp, project) })
}

func addImageProject(ctx context.Context, tx *sql.Tx, fp, project string) error {
	_, err := tx.ExecContext(ctx, "INSERT INTO image_projects (fingerprint, project) VALUES (?, ?)", fp, project)
	switch {
	case isUnique(err):
		return errdefs.Conflict("image %q already exists in project %q", fp, project)
	case isForeignKey(err):
		return errdefs.NotFound("image %q or project %q not found", fp, project)
	case err != nil:
		return fmt.Errorf("add image %s to project %q: %w", fp, project, err)
	}
	return nil
}

// RemoveImageProject makes project stop holding image fp, with the
// project's aliases of it; the image stays, for the projects still holding
// it (DeleteImage removes it from all). An image the project does not hold
// is ErrNotFound.
func (q *Queries) RemoveImageProject(ctx context.Context, fp, project string) error {
	return q.atomic(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM images_aliases WHERE project = ? AND fingerprint = ?", project, fp); err != nil {
			return fmt.Errorf("remove image %s from project %q: %w", fp, project, err)
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM image_projects WHERE fingerprint = ? AND project = ?", fp, project)
		if err != nil {
			return fmt.Errorf("remove image %s from project %q: %w", fp, project, err)
		}
		n, err := rowsAffected(res)
		if err != nil {
			return fmt.Errorf("remove image %s from project %q: %w", fp, project, err)
		}
		if n == 0 {
			return errdefs.NotFound("image %q not found in project %q", fp, project)
		}
		return nil
	})
}

// GetImage returns the image held by project (any project when it is "")
// whose fingerprint is, or starts with, ref, as LXD resolves fingerprints.
// A prefix matching several of the project's images is ErrInvalidArgument;
// an empty ref matches nothing; an image only other projects hold is
// ErrNotFound.
func (q *Queries) GetImage(ctx context.Context, project, ref string) (Image, error) {
	if ref == "" {
		return Image{}, errdefs.NotFound("image %q not found", ref)
	}
	// Fingerprints are lowercase hex (CHECKed), all below 'g', so the
	// fingerprints in [ref, ref+"g") are exactly those starting with ref,
	// whatever ref holds; unlike LIKE, the range uses the primary key and
	// treats no character of ref as a wildcard.
	rows, err := q.reader().QueryContext(ctx,
		imageSelect+" WHERE fingerprint >= ? AND fingerprint < ? AND"+inProject+" ORDER BY fingerprint LIMIT 2",
		ref, ref+"g", project, project)
	if err != nil {
		return Image{}, fmt.Errorf("get image %q: %w", ref, err)
	}
	defer rows.Close()
	var found []Image
	for rows.Next() {
		img, err := scanImage(rows)
		if err != nil {
			return Image{}, fmt.Errorf("get image %q: %w", ref, err)
		}
		found = append(found, img)
	}
	if err := rows.Err(); err != nil {
		return Image{}, fmt.Errorf("get image %q: %w", ref, err)
	}
	switch len(found) {
	case 0:
		return Image{}, errdefs.NotFound("image %q not found", ref)
	case 1:
		return found[0], nil
	default:
		return Image{}, errdefs.Invalid("image fingerprint prefix %q matches more than one image", ref)
	}
}

// ListImages returns the images project holds (every image when it is ""),
// ordered by fingerprint.
func (q *Queries) ListImages(ctx context.Context, project string) ([]Image, error) {
	rows, err := q.reader().QueryContext(ctx, imageSelect+" WHERE"+inProject+" ORDER BY fingerprint", project, project)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	defer rows.Close()
	out := []Image{}
	for rows.Next() {
		img, err := scanImage(rows)
		if err != nil {
			return nil, fmt.Errorf("list images: %w", err)
		}
		out = append(out, img)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	return out, nil
}

// UpdateImage replaces the record with img.Fingerprint (exact, no prefix).
// Fields that describe the image file itself (Filename, Size, Architecture,
// Type, CreatedAt, UploadedAt) are kept: a different file has a different
// fingerprint and is a different image.
func (q *Queries) UpdateImage(ctx context.Context, img Image) error {
	props, err := marshalMap(img.Properties)
	if err != nil {
		return fmt.Errorf("update image %s properties: %w", img.Fingerprint, err)
	}
	return q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
UPDATE images
   SET properties = ?, public = ?, auto_update = ?, cached = ?,
       last_used_at = ?, expires_at = ?, source = ?
 WHERE fingerprint = ?`,
			props, img.Public, img.AutoUpdate, img.Cached,
			fmtTime(img.LastUsedAt), fmtTime(img.ExpiresAt), img.Source, img.Fingerprint)
		if err != nil {
			return fmt.Errorf("update image %s: %w", img.Fingerprint, err)
		}
		n, err := rowsAffected(res)
		if err != nil {
			return fmt.Errorf("update image %s: %w", img.Fingerprint, err)
		}
		if n == 0 {
			return errdefs.NotFound("image %q not found", img.Fingerprint)
		}
		return nil
	})
}

// DeleteImage deletes the image with the exact fingerprint from every
// project, with all its aliases.
func (q *Queries) DeleteImage(ctx context.Context, fingerprint string) error {
	return q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM images WHERE fingerprint = ?", fingerprint)
		if err != nil {
			return fmt.Errorf("delete image %s: %w", fingerprint, err)
		}
		n, err := rowsAffected(res)
		if err != nil {
			return fmt.Errorf("delete image %s: %w", fingerprint, err)
		}
		if n == 0 {
			return errdefs.NotFound("image %q not found", fingerprint)
		}
		return nil
	})
}

// Alias is an image alias's stored record. Aliases are per project: two
// projects may each have an alias of one name.
type Alias struct {
	Project     string
	Name        string
	Description string
	// Target is the full fingerprint of an existing image.
	Target string
	// Type is the instance type the image is for, as LXD's aliases carry it.
	Type string
}

const aliasSelect = `SELECT project, name, description, fingerprint, type FROM images_aliases`

func scanAlias(row rowScanner) (Alias, error) {
	var a Alias
	err := row.Scan(&a.Project, &a.Name, &a.Description, &a.Target, &a.Type)
	return a, err
}

// CreateAlias stores a new alias in a.Project. A name the project has is
// ErrConflict; a target that is not an image's full fingerprint, or a
// project that does not exist, is ErrNotFound. That the project holds the
// target is the caller's rule.
func (q *Queries) CreateAlias(ctx context.Context, a Alias) error {
	return q.atomic(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			"INSERT INTO images_aliases (project, name, description, fingerprint, type) VALUES (?, ?, ?, ?, ?)",
			a.Project, a.Name, a.Description, a.Target, a.Type)
		switch {
		case isUnique(err):
			return errdefs.Conflict("image alias %q already exists", a.Name)
		case isForeignKey(err):
			return errdefs.NotFound("image %q not found", a.Target)
		case isCheck(err):
			return errdefs.Invalid("create image alias %q: %v", a.Name, err)
		case err != nil:
			return fmt.Errorf("create image alias %q: %w", a.Name, err)
		}
		return nil
	})
}

// GetAlias returns project's alias called name.
func (q *Queries) GetAlias(ctx context.Context, project, name string) (Alias, error) {
	a, err := scanAlias(q.reader().QueryRowContext(ctx, aliasSelect+" WHERE project = ? AND name = ?", project, name))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Alias{}, errdefs.NotFound("image alias %q not found", name)
	case err != nil:
		return Alias{}, fmt.Errorf("get image alias %q: %w", name, err)
	}
	return a, nil
}

// ListAliases returns project's aliases (every project's when it is ""),
// ordered by name, then project.
func (q *Queries) ListAliases(ctx context.Context, project string) ([]Alias, error) {
	rows, err := q.reader().QueryContext(ctx, aliasSelect+" WHERE ? = '' OR project = ? ORDER BY name, project", project, project)
	if err != nil {
		return nil, fmt.Errorf("list image aliases: %w", err)
	}
	defer rows.Close()
	out := []Alias{}
	for rows.Next() {
		a, err := scanAlias(rows)
		if err != nil {
			return nil, fmt.Errorf("list image aliases: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list image aliases: %w", err)
	}
	return out, nil
}

// UpdateAlias replaces the description, target and type of a.Project's
// alias called a.Name. A target that is not an image is ErrNotFound.
func (q *Queries) UpdateAlias(ctx context.Context, a Alias) error {
	return q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			"UPDATE images_aliases SET description = ?, fingerprint = ?, type = ? WHERE project = ? AND name = ?",
			a.Description, a.Target, a.Type, a.Project, a.Name)
		switch {
		case isForeignKey(err):
			return errdefs.NotFound("image %q not found", a.Target)
		case err != nil:
			return fmt.Errorf("update image alias %q: %w", a.Name, err)
		}
		n, err := rowsAffected(res)
		if err != nil {
			return fmt.Errorf("update image alias %q: %w", a.Name, err)
		}
		if n == 0 {
			return errdefs.NotFound("image alias %q not found", a.Name)
		}
		return nil
	})
}

// RenameAlias renames project's alias. A new name the project already uses
// is ErrConflict.
func (q *Queries) RenameAlias(ctx context.Context, project, oldName, newName string) error {
	return q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE images_aliases SET name = ? WHERE project = ? AND name = ?", newName, project, oldName)
		switch {
		case isUnique(err):
			return errdefs.Conflict("image alias %q already exists", newName)
		case isCheck(err):
			return errdefs.Invalid("rename image alias %q: %v", oldName, err)
		case err != nil:
			return fmt.Errorf("rename image alias %q: %w", oldName, err)
		}
		n, err := rowsAffected(res)
		if err != nil {
			return fmt.Errorf("rename image alias %q: %w", oldName, err)
		}
		if n == 0 {
			return errdefs.NotFound("image alias %q not found", oldName)
		}
		return nil
	})
}

// DeleteAlias deletes project's alias called name.
func (q *Queries) DeleteAlias(ctx context.Context, project, name string) error {
	return q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM images_aliases WHERE project = ? AND name = ?", project, name)
		if err != nil {
			return fmt.Errorf("delete image alias %q: %w", name, err)
		}
		n, err := rowsAffected(res)
		if err != nil {
			return fmt.Errorf("delete image alias %q: %w", name, err)
		}
		if n == 0 {
			return errdefs.NotFound("image alias %q not found", name)
		}
		return nil
	})
}

// formatOrDefault is the format stored for an image: records written
// before formats were named are plain root filesystem tarballs.
func formatOrDefault(f string) string {
	if f == "" {
		return "rootfs-tarball"
	}
	return f
}

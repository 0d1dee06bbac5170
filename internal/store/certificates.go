package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Certificate is a trusted client certificate's stored record.
type Certificate struct {
	Fingerprint string // SHA-256 of the DER, lowercase hex
	Name        string
	Type        string // "client" or "metrics"
	Restricted  bool
	Projects    []string
	Certificate string // PEM
	CreatedAt   time.Time
}

const certificateSelect = `SELECT fingerprint, name, type, restricted, projects, certificate, created_at FROM certificates`

func scanCertificate(row rowScanner) (Certificate, error) {
	var (
		c                 Certificate
		projects, created string
	)
	if err := row.Scan(&c.Fingerprint, &c.Name, &c.Type, &c.Restricted, &projects, &c.Certificate, &created); err != nil {
		return Certificate{}, err
	}
	if err := json.Unmarshal([]byte(projects), &c.Projects); err != nil {
		return Certificate{}, fmt.Errorf("certificate %q projects: %w", c.Name, err)
	}
	if c.Projects == nil {
		c.Projects = []string{}
	}
	var err error
	if c.CreatedAt, err = parseTime(created); err != nil {
		return Certificate{}, fmt.Errorf("certificate %q: %w", c.Name, err)
	}
	return c, nil
}

func marshalProjects(p []string) (string, error) {
	if p == nil {
		p = []string{}
	}
	b, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("encode projects: %w", err)
	}
	return string(b), nil
}

// CreateCertificate stores a new trusted certificate. A fingerprint
// already stored is ErrConflict.
func (q *Queries) CreateCertificate(ctx context.Context, c Certificate) error {
	projects, err := marshalProjects(c.Projects)
	if err != nil {
		return fmt.Errorf("create certificate %q: %w", c.Name, err)
	}
	return q.atomic(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			"INSERT INTO certificates (fingerprint, name, type, restricted, projects, certificate, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
			c.Fingerprint, c.Name, c.Type, c.Restricted, projects, c.Certificate, fmtTime(c.CreatedAt))
		switch {
		case isUnique(err):
			return errdefs.Conflict("certificate %s is already in the trust store", c.Fingerprint)
		case isCheck(err):
			return errdefs.Invalid("create certificate %q: %v", c.Name, err)
		case err != nil:
			return fmt.Errorf("create certificate %q: %w", c.Name, err)
		}
		return nil
	})
}

// GetCertificate returns the certificate whose fingerprint starts with
// prefix (at least one character). No match is ErrNotFound, several are
// ErrInvalidArgument.
func (q *Queries) GetCertificate(ctx context.Context, prefix string) (Certificate, error) {
	if prefix == "" || strings.ContainsAny(prefix, `%_\`) {
		return Certificate{}, errdefs.NotFound("certificate %q not found", prefix)
	}
	// Two rows are enough to know the prefix is ambiguous.
	got, err := listRows(ctx, q.reader(), "certificates", scanCertificate,
		certificateSelect+" WHERE fingerprint LIKE ? || '%' ORDER BY fingerprint LIMIT 2", prefix)
	switch {
	case err != nil:
		return Certificate{}, fmt.Errorf("get certificate %q: %w", prefix, err)
	case len(got) == 0:
		return Certificate{}, errdefs.NotFound("certificate %q not found", prefix)
	case len(got) > 1:
		return Certificate{}, errdefs.Invalid("certificate prefix %q matches more than one certificate", prefix)
	}
	return got[0], nil
}

// ListCertificates returns every trusted certificate, by name then
// fingerprint.
func (q *Queries) ListCertificates(ctx context.Context) ([]Certificate, error) {
	return listRows(ctx, q.reader(), "certificates", scanCertificate, certificateSelect+" ORDER BY name, fingerprint")
}

// UpdateCertificate replaces the record of fingerprint fp with c, whose
// fingerprint differs when the certificate itself was replaced. A missing
// fp is ErrNotFound; a new fingerprint already stored is ErrConflict.
func (q *Queries) UpdateCertificate(ctx context.Context, fp string, c Certificate) error {
	projects, err := marshalProjects(c.Projects)
	if err != nil {
		return fmt.Errorf("update certificate %q: %w", c.Name, err)
	}
	return q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			"UPDATE certificates SET fingerprint = ?, name = ?, type = ?, restricted = ?, projects = ?, certificate = ? WHERE fingerprint = ?",
			c.Fingerprint, c.Name, c.Type, c.Restricted, projects, c.Certificate, fp)
		switch {
		case isUnique(err):
			return errdefs.Conflict("certificate %s is already in the trust store", c.Fingerprint)
		case isCheck(err):
			return errdefs.Invalid("update certificate %q: %v", c.Name, err)
		case err != nil:
			return fmt.Errorf("update certificate %q: %w", c.Name, err)
		}
		n, err := rowsAffected(res)
		if err != nil {
			return fmt.Errorf("update certificate %q: %w", c.Name, err)
		}
		if n == 0 {
			return errdefs.NotFound("certificate %q not found", fp)
		}
		return nil
	})
}

// DeleteCertificate removes the certificate of fingerprint fp.
func (q *Queries) DeleteCertificate(ctx context.Context, fp string) error {
	return q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM certificates WHERE fingerprint = ?", fp)
		if err != nil {
			return fmt.Errorf("delete certificate %q: %w", fp, err)
		}
		n, err := rowsAffected(res)
		if err != nil {
			return fmt.Errorf("delete certificate %q: %w", fp, err)
		}
		if n == 0 {
			return errdefs.NotFound("certificate %q not found", fp)
		}
		return nil
	})
}

// MissingProjects returns those of names that are not projects, in the
// order given; empty when all exist. Restricted certificates name the
// projects they are confined to.
func (q *Queries) MissingProjects(ctx context.Context, names []string) ([]string, error) {
	missing := []string{}
	for _, n := range names {
		var one int
		err := q.reader().QueryRowContext(ctx, "SELECT 1 FROM projects WHERE name = ?", n).Scan(&one)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			missing = append(missing, n)
		case err != nil:
			return nil, fmt.Errorf("look up project %q: %w", n, err)
		}
	}
	return missing, nil
}

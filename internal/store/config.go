package store

import (
	"context"
	"database/sql"
	"fmt"
)

// GetServerConfig returns the server configuration; never nil.
func (q *Queries) GetServerConfig(ctx context.Context) (map[string]string, error) {
	rows, err := q.reader().QueryContext(ctx, "SELECT key, value FROM config")
	if err != nil {
		return nil, fmt.Errorf("get server config: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("get server config: %w", err)
		}
		out[k] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("get server config: %w", err)
	}
	return out, nil
}

// SetServerConfig replaces the whole server configuration with cfg, as a
// PUT does: keys missing from cfg are removed.
func (q *Queries) SetServerConfig(ctx context.Context, cfg map[string]string) error {
	return q.atomic(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM config"); err != nil {
			return fmt.Errorf("set server config: %w", err)
		}
		for k, v := range cfg {
			if _, err := tx.ExecContext(ctx, "INSERT INTO config (key, value) VALUES (?, ?)", k, v); err != nil {
				return fmt.Errorf("set server config %q: %w", k, err)
			}
		}
		return nil
	})
}

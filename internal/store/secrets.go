package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// SetInstanceSecrets stores the real values of an instance's credentials,
// by key, replacing those keys' old values and leaving other keys alone.
// An unknown instance is ErrNotFound.
func (q *Queries) SetInstanceSecrets(ctx context.Context, instanceID int64, values map[string]string) error {
	if len(values) == 0 {
		return nil
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return q.atomic(ctx, func(tx *sql.Tx) error {
		for _, k := range keys {
			_, err := tx.ExecContext(ctx,
				"INSERT INTO instance_secrets (instance_id, key, value) VALUES (?, ?, ?) "+
					"ON CONFLICT (instance_id, key) DO UPDATE SET value = excluded.value",
				instanceID, k, values[k])
			switch {
			case isForeignKey(err):
				return errdefs.NotFound("instance %d not found", instanceID)
			case isCheck(err):
				return errdefs.Invalid("instance secret: empty key")
			case err != nil:
				// The value is never part of a message.
				return fmt.Errorf("set instance %d secret %q: %w", instanceID, k, err)
			}
		}
		return nil
	})
}

// InstanceSecrets returns an instance's stored secret values by key (an
// empty map when it has none).
func (q *Queries) InstanceSecrets(ctx context.Context, instanceID int64) (map[string]string, error) {
	rows, err := q.reader().QueryContext(ctx, "SELECT key, value FROM instance_secrets WHERE instance_id = ?", instanceID)
	if err != nil {
		return nil, fmt.Errorf("instance %d secrets: %w", instanceID, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("instance %d secrets: %w", instanceID, err)
		}
		out[k] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("instance %d secrets: %w", instanceID, err)
	}
	return out, nil
}

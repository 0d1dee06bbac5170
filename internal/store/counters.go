package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
)

// Counter returns a named counter's value; 0 when it was never set.
func (q *Queries) Counter(ctx context.Context, name string) (uint64, error) {
	var v int64
	err := q.reader().QueryRowContext(ctx, "SELECT value FROM counters WHERE name = ?", name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read counter %s: %w", name, err)
	}
	return uint64(v), nil
}

// SetCounter sets a named counter.
func (q *Queries) SetCounter(ctx context.Context, name string, v uint64) error {
	if v > math.MaxInt64 {
		return fmt.Errorf("set counter %s: %d does not fit SQLite's integers", name, v)
	}
	return q.atomic(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value", name, int64(v))
		if err != nil {
			return fmt.Errorf("set counter %s: %w", name, err)
		}
		return nil
	})
}

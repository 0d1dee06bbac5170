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

// StoredEvent is one event kept across a restart, encoded by its owner.
type StoredEvent struct {
	Sequence uint64
	Data     []byte
}

// SaveEvents replaces the kept events with evs.
func (q *Queries) SaveEvents(ctx context.Context, evs []StoredEvent) error {
	return q.atomic(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM events"); err != nil {
			return fmt.Errorf("save events: %w", err)
		}
		stmt, err := tx.PrepareContext(ctx, "INSERT INTO events (sequence, event) VALUES (?, ?)")
		if err != nil {
			return fmt.Errorf("save events: %w", err)
		}
		defer stmt.Close()
		for _, e := range evs {
			if e.Sequence == 0 || e.Sequence > math.MaxInt64 {
				return fmt.Errorf("save events: sequence %d out of range", e.Sequence)
			}
			if _, err := stmt.ExecContext(ctx, int64(e.Sequence), e.Data); err != nil {
				return fmt.Errorf("save event %d: %w", e.Sequence, err)
			}
		}
		return nil
	})
}

// TakeEvents returns the kept events in sequence order and forgets them,
// so that they are replayed by one run only.
func (q *Queries) TakeEvents(ctx context.Context) ([]StoredEvent, error) {
	var out []StoredEvent
	err := q.atomic(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, "SELECT sequence, event FROM events ORDER BY sequence")
		if err != nil {
			return fmt.Errorf("take events: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var seq int64
			var data []byte
			if err := rows.Scan(&seq, &data); err != nil {
				return fmt.Errorf("take events: %w", err)
			}
			out = append(out, StoredEvent{Sequence: uint64(seq), Data: data})
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("take events: %w", err)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM events"); err != nil {
			return fmt.Errorf("take events: %w", err)
		}
		return nil
	})
	return out, err
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// busyTimeout is how long a connection waits for another process's lock
// before giving up with SQLITE_BUSY. Within one process writers never meet
// (one writer connection), so this only matters for external tools.
const busyTimeout = 5 * time.Second

// Store is the database. Its methods come from the embedded *Queries: outside
// Atomic, reads use the reader pool and each write is its own transaction.
type Store struct {
	*Queries
	r, w *sql.DB
}

// hotStatements are the writes every config change makes, prepared once on
// the writer connection: SQLite's parser was a sixth of a PATCH's cost, the
// profile list rewrite another eighth (BenchmarkPatchInstance, internal/api/lxd).
type hotStatements struct {
	updateInstance, instanceProfiles *sql.Stmt
}

const (
	updateInstanceSQL = `
UPDATE instances
   SET name = ?, architecture = ?, description = ?, config = ?, devices = ?,
       ephemeral = ?, stateful = ?, last_used_at = ?
 WHERE id = ?`
	instanceProfilesSQL = `
SELECT p.name FROM instances_profiles ip JOIN profiles p ON p.id = ip.profile_id
 WHERE ip.instance_id = ? ORDER BY ip.apply_order`
)

func prepareHot(ctx context.Context, w *sql.DB) (*hotStatements, error) {
	var h hotStatements
	for _, st := range []struct {
		dst   **sql.Stmt
		query string
	}{{&h.updateInstance, updateInstanceSQL}, {&h.instanceProfiles, instanceProfilesSQL}} {
		var err error
		if *st.dst, err = w.PrepareContext(ctx, st.query); err != nil {
			return nil, fmt.Errorf("prepare %q: %w", strings.Fields(st.query)[0], err)
		}
	}
	return &h, nil
}

// Queries runs the store's statements. The Store's own Queries spreads them
// over the connection pools; the one Atomic hands its callback runs them all
// in that transaction, and must not be used after the callback returns or
// from several goroutines at once.
type Queries struct {
	tx   *sql.Tx // set inside Atomic
	r, w *sql.DB // used when tx is nil
	hot  *hotStatements
}

// dbtx is what both *sql.DB and *sql.Tx offer.
type dbtx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Open opens (creating if needed) the database at path and brings its schema
// up to date. path must name a file: an in-memory database cannot be shared
// by the writer and the reader pool.
func Open(ctx context.Context, path string) (*Store, error) {
	// The driver cuts the DSN at the first '?', so such a path would be
	// silently truncated, and reads "file:..." as a URI with its own rules.
	if path == "" || strings.ContainsRune(path, '?') || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("open store: invalid database path %q", path)
	}
	// Create the file ourselves so it is 0600: it holds the server config.
	// SQLite gives the -wal and -shm files the database file's mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	f.Close()

	// SQLite answers SQLITE_BUSY at once, without waiting out
	// busy_timeout, to a connection that opens a file while another is
	// switching it to WAL or recovering its WAL index: a second daemon,
	// or a tool, opening the same fresh file at the same moment. That
	// settles within moments, so the whole open is tried again.
	deadline := time.Now().Add(busyTimeout)
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		st, err := openOnce(ctx, path)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return st, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("open store %s: %w", path, ctx.Err())
		case <-time.After(delay):
		}
	}
}

// openOnce is one attempt at Open, after the file exists.
func openOnce(ctx context.Context, path string) (*Store, error) {
	w, err := sql.Open("sqlite", writerDSN(path))
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	// One writer connection: in-process writers queue here instead of
	// racing for SQLite's lock. Keep it forever; a new connection re-parses
	// the schema.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		w.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	// WAL is what lets readers run beside the writer; some filesystems
	// (network mounts) refuse it, and we would rather fail loudly.
	if !strings.EqualFold(mode, "wal") {
		w.Close()
		return nil, fmt.Errorf("open store %s: journal mode is %q, want wal", path, mode)
	}
	if err := migrate(ctx, w, migrations); err != nil {
		w.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}

	r, err := sql.Open("sqlite", readerDSN(path))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	r.SetConnMaxLifetime(0)
	r.SetConnMaxIdleTime(0)
	if err := r.PingContext(ctx); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	hot, err := prepareHot(ctx, w)
	if err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return &Store{Queries: &Queries{r: r, w: w, hot: hot}, r: r, w: w}, nil
}

// writerDSN configures the writer connection. IMMEDIATE transactions take
// the write lock at BEGIN, where busy_timeout applies; a deferred one that
// reads first and then writes can fail with SQLITE_BUSY_SNAPSHOT at once.
func writerDSN(path string) string {
	return fmt.Sprintf("%s?_busy_timeout=%d&_journal_mode=WAL&_synchronous=NORMAL&_foreign_keys=1&_txlock=immediate",
		path, busyTimeout.Milliseconds())
}

// readerDSN configures the read pool; query_only guards against a write
// slipping onto a reader, where it would bypass the one-writer discipline.
func readerDSN(path string) string {
	return fmt.Sprintf("%s?_busy_timeout=%d&_foreign_keys=1&_query_only=1", path, busyTimeout.Milliseconds())
}

// Close closes the database. The writer goes last so that its close, the
// last on the file, checkpoints the WAL into the database.
func (s *Store) Close() error {
	return errors.Join(s.hot.updateInstance.Close(), s.hot.instanceProfiles.Close(), s.r.Close(), s.w.Close())
}

// Atomic runs fn in one transaction: all its writes commit together, or none
// if fn returns an error (returned as is) or panics. Inside fn use only q;
// see the package documentation. Called on a q inside Atomic, it nests as a
// savepoint.
func (q *Queries) Atomic(ctx context.Context, fn func(q *Queries) error) error {
	return q.atomic(ctx, func(tx *sql.Tx) error { return fn(&Queries{tx: tx, hot: q.hot}) })
}

// atomic runs fn in a transaction, or in a savepoint of the current one.
// The savepoint makes every write method all-or-nothing on its own even
// inside Atomic, so a caller that handles one method's error and goes on
// does not commit half of that method's work.
func (q *Queries) atomic(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if q.tx != nil {
		if _, err := q.tx.ExecContext(ctx, "SAVEPOINT store"); err != nil {
			return fmt.Errorf("savepoint: %w", err)
		}
		if err := fn(q.tx); err != nil {
			// If the rollback fails the transaction is broken anyway and
			// the caller's Atomic will fail to commit.
			_, _ = q.tx.ExecContext(context.WithoutCancel(ctx), "ROLLBACK TO store; RELEASE store")
			return err
		}
		if _, err := q.tx.ExecContext(ctx, "RELEASE store"); err != nil {
			return fmt.Errorf("release savepoint: %w", err)
		}
		return nil
	}
	tx, err := q.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// reader is where reads go: the transaction, so that Atomic sees its own
// writes, or else the reader pool.
func (q *Queries) reader() dbtx {
	if q.tx != nil {
		return q.tx
	}
	return q.r
}

// read runs fn where a read of several statements sees one snapshot: the
// transaction inside Atomic, or else a read-only transaction on the reader
// pool (a plain BEGIN: _txlock applies to the writer only).
func (q *Queries) read(ctx context.Context, fn func(db dbtx) error) error {
	if q.tx != nil {
		return fn(q.tx)
	}
	tx, err := q.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin read: %w", err)
	}
	// Rollback, not Commit: nothing was written, and it cannot fail on a
	// busy lock.
	defer tx.Rollback() //nolint:errcheck // a read transaction has nothing to lose
	return fn(tx)
}

// Constraint classes of SQLite's extended result codes.
func sqliteCode(err error) int {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

func isBusy(err error) bool {
	return sqliteCode(err)&0xff == sqlite3.SQLITE_BUSY
}

func isUnique(err error) bool {
	c := sqliteCode(err)
	return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

func isForeignKey(err error) bool {
	return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

func isCheck(err error) bool {
	c := sqliteCode(err)
	return c == sqlite3.SQLITE_CONSTRAINT_CHECK || c == sqlite3.SQLITE_CONSTRAINT_NOTNULL
}

// rowsAffected reports how many rows a statement changed. SQLite counts rows
// matched by an UPDATE even when no value changed, so 0 means "no such row".
func rowsAffected(res sql.Result) (int64, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("rows affected: %w", err)
	}
	return n, nil
}

// timeLayout is fixed-width so stored times sort as text.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func fmtTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// parseTime reads a stored time; with no zone in the layout, Parse yields UTC.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("stored time %q: %w", s, err)
	}
	return t, nil
}

// fmtOptionalTime stores a time that may be unset (an expiry) as "".
func fmtOptionalTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return fmtTime(t)
}

func parseOptionalTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return parseTime(s)
}

// listRows runs a query and scans every row it gives with scan; what
// names the list in errors. The result is never nil.
func listRows[T any](ctx context.Context, db dbtx, what string, scan func(rowScanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	return out, nil
}

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/cuid"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// rawDB opens path the way Open's writer does, without migrating.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", writerDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

func versionOf(t *testing.T, db *sql.DB) int {
	t.Helper()
	v, err := schemaVersion(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A database written by the previous release (all migrations but the last)
// is upgraded by Open, keeping its data.
func TestMigrateFromPreviousVersion(t *testing.T) {
	if len(migrations) < 2 {
		t.Skip("only one migration")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	old := rawDB(t, path)
	if err := migrate(ctx, old, migrations[:len(migrations)-1]); err != nil {
		t.Fatalf("migrate to N-1: %v", err)
	}
	if v := versionOf(t, old); v != len(migrations)-1 {
		t.Fatalf("version %d, want %d", v, len(migrations)-1)
	}
	// Data as the old release wrote it, through the old schema. Version 1
	// has instances and profiles, which every later version keeps.
	if _, err := old.ExecContext(ctx, `
INSERT INTO instances (name, type, architecture, config, devices, created_at, last_used_at)
VALUES ('c1', 'container', 'x86_64', '{"limits.cpu":"1"}', '{}', ?, ?);
INSERT INTO instances_profiles (instance_id, profile_id, apply_order)
SELECT i.id, p.id, 0 FROM instances i, profiles p WHERE i.name = 'c1' AND p.name = 'default';`,
		fmtTime(time.Unix(1700000000, 0)), fmtTime(time.Time{})); err != nil {
		t.Fatal(err)
	}
	old.Close()

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open old database: %v", err)
	}
	defer s.Close()
	if v := versionOf(t, s.w); v != len(migrations) {
		t.Errorf("version after Open %d, want %d", v, len(migrations))
	}
	c, err := s.GetInstance(ctx, "c1")
	if err != nil {
		t.Fatalf("old instance: %v", err)
	}
	if c.Config["limits.cpu"] != "1" || len(c.Profiles) != 1 || c.Profiles[0] != "default" ||
		!c.CreatedAt.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("old instance read back as %+v", c)
	}
	// What the last migration added works.
	img := Image{Fingerprint: strings.Repeat("a", 64)}
	if err := s.CreateImage(ctx, img, "default"); err != nil {
		t.Errorf("CreateImage after upgrade: %v", err)
	}
	if err := s.CreateAlias(ctx, Alias{Project: "default", Name: "x", Target: img.Fingerprint}); err != nil {
		t.Errorf("CreateAlias after upgrade: %v", err)
	}
}

// Every prefix of the migration list, applied and then completed, gives the
// schema a fresh database gets: a step never depends on being run in one go.
func TestMigrateEveryVersion(t *testing.T) {
	ctx := context.Background()
	fresh := rawDB(t, filepath.Join(t.TempDir(), "fresh.db"))
	if err := migrate(ctx, fresh, migrations); err != nil {
		t.Fatal(err)
	}
	want := schemaSQL(t, fresh)
	for n := range len(migrations) {
		db := rawDB(t, filepath.Join(t.TempDir(), "db.db"))
		if err := migrate(ctx, db, migrations[:n]); err != nil {
			t.Fatalf("to %d: %v", n, err)
		}
		if err := migrate(ctx, db, migrations); err != nil {
			t.Fatalf("from %d: %v", n, err)
		}
		if got := schemaSQL(t, db); got != want {
			t.Errorf("schema upgraded from %d differs:\n%s\nwant:\n%s", n, got, want)
		}
	}
}

func schemaSQL(t *testing.T, db *sql.DB) string {
	t.Helper()
	rows, err := db.Query("SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		b.WriteString(s + ";\n")
	}
	return b.String()
}

// A future migration may rebuild a table other tables reference (SQLite's
// recipe: create new, copy, drop old, rename). That only works with foreign
// keys off, which migrate arranges; the data and the references survive.
func TestMigrateTableRebuild(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	c := Instance{Name: "c1", Type: "container", Profiles: []string{"default"}}
	if err := s.CreateInstance(ctx, &c); err != nil {
		t.Fatal(err)
	}
	s.Close()

	rebuild := `
CREATE TABLE profiles_new (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	name        TEXT NOT NULL UNIQUE CHECK (name <> ''),
	description TEXT NOT NULL DEFAULT '',
	config      TEXT NOT NULL DEFAULT '{}',
	devices     TEXT NOT NULL DEFAULT '{}',
	extra       TEXT NOT NULL DEFAULT ''
) STRICT;
INSERT INTO profiles_new (id, name, description, config, devices)
SELECT id, name, description, config, devices FROM profiles;
DROP TABLE profiles;
ALTER TABLE profiles_new RENAME TO profiles;`
	db := rawDB(t, path)
	if err := migrate(ctx, db, append(migrations[:len(migrations):len(migrations)], rebuild)); err != nil {
		t.Fatalf("rebuild migration: %v", err)
	}
	var fkOn int
	if err := db.QueryRow("PRAGMA foreign_keys").Scan(&fkOn); err != nil || fkOn != 1 {
		t.Errorf("foreign_keys after migrate = %d, %v; want 1", fkOn, err)
	}
	var name string
	if err := db.QueryRow(`SELECT p.name FROM instances_profiles ip JOIN profiles p ON p.id = ip.profile_id`).Scan(&name); err != nil || name != "default" {
		t.Errorf("instance's profile after rebuild = %q, %v", name, err)
	}
	// The reference is still enforced against the rebuilt table.
	if _, err := db.Exec("DELETE FROM profiles WHERE name = 'default'"); !isForeignKey(err) {
		t.Errorf("deleting a used profile after rebuild: %v, want foreign key error", err)
	}
}

// A failing migration leaves the database at the version before it, with
// none of its statements applied.
func TestMigrateFailureRollsBack(t *testing.T) {
	ctx := context.Background()
	db := rawDB(t, filepath.Join(t.TempDir(), "db.db"))
	bad := append(migrations[:len(migrations):len(migrations)], `
CREATE TABLE half_done (x INTEGER);
INSERT INTO no_such_table VALUES (1);`)
	if err := migrate(ctx, db, bad); err == nil {
		t.Fatal("bad migration succeeded")
	}
	if v := versionOf(t, db); v != len(migrations) {
		t.Errorf("version %d, want %d", v, len(migrations))
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM sqlite_schema WHERE name = 'half_done'").Scan(&n); err != nil || n != 0 {
		t.Errorf("half_done tables: %d, %v", n, err)
	}

	// A migration that leaves a dangling reference is refused too.
	dangling := append(migrations[:len(migrations):len(migrations)],
		`INSERT INTO images_aliases (name, fingerprint) VALUES ('x', '`+strings.Repeat("b", 64)+`')`)
	if err := migrate(ctx, db, dangling); err == nil || !strings.Contains(err.Error(), "foreign key") {
		t.Errorf("dangling migration: %v, want foreign key check failure", err)
	}
	if v := versionOf(t, db); v != len(migrations) {
		t.Errorf("version %d, want %d", v, len(migrations))
	}
}

// A database from a newer hangard is refused, not written to.
func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db.db")
	db := rawDB(t, path)
	if err := migrate(ctx, db, append(migrations[:len(migrations):len(migrations)], "CREATE TABLE future (x INTEGER)")); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(ctx, path)
	if err == nil {
		s.Close()
		t.Fatal("Open of a newer schema succeeded")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Errorf("error %v, want it to say newer", err)
	}
}

// Two processes starting on a fresh file at once must not both run
// migration 1 (the second would fail on CREATE TABLE, or insert a second
// default profile).
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db.db")
	const n = 4
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = Open(ctx, path) })
	}
	wg.Wait()
	for i, s := range stores {
		if errs[i] != nil {
			t.Errorf("Open %d: %v", i, errs[i])
			continue
		}
		defer s.Close()
	}
	if t.Failed() {
		return
	}
	ps, err := stores[0].ListProfiles(ctx)
	if err != nil || len(ps) != 1 {
		t.Errorf("profiles = %+v, %v; want the one default", ps, err)
	}
	var rows int
	if err := stores[0].w.QueryRow("SELECT count(*) FROM schema").Scan(&rows); err != nil || rows != len(migrations) {
		t.Errorf("schema rows = %d, %v; want %d", rows, err, len(migrations))
	}
	_, err = stores[0].GetProfile(ctx, "default", "nope")
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("GetProfile(nope) = %v", err)
	}
}

// Migration 13 gives every existing instance an id of its own, in the
// shape new ones get, and the ids stay with renames.
func TestMigrateInstanceUIDs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	old := rawDB(t, path)
	if err := migrate(ctx, old, migrations[:12]); err != nil {
		t.Fatalf("migrate to 12: %v", err)
	}
	for _, name := range []string{"a", "b", "c"} {
		if _, err := old.ExecContext(ctx, `
INSERT INTO instances (name, type, architecture, created_at, last_used_at) VALUES (?, 'container', 'x86_64', ?, ?)`,
			name, fmtTime(time.Unix(1700000000, 0)), fmtTime(time.Time{})); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	list, err := s.ListInstances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, in := range list {
		if !cuid.Valid(in.UID) || seen[in.UID] {
			t.Errorf("instance %s: uid %q after the migration (seen: %v)", in.Name, in.UID, seen)
		}
		seen[in.UID] = true
	}
	if len(seen) != 3 {
		t.Fatalf("%d instances with ids, want 3", len(seen))
	}
	a := list[0]
	a.Name = "renamed"
	if err := s.UpdateInstance(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetInstance(ctx, "renamed")
	if err != nil || got.UID != list[0].UID {
		t.Errorf("after rename: uid %q (%v), want %q", got.UID, err, list[0].UID)
	}
}

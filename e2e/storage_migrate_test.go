package e2e

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/hangar-dev/hangar/internal/cuid"
)

// TestStorageMigration: a data dir from before storage pools (schema 5,
// an instance's overlay layers in the container runtime's directory, no
// pool, a default profile without a root disk) still starts its instance
// after the upgrade, with the files it had: the daemon makes pool default,
// gives the profile its root disk and moves the layers into a volume.
//
// The old layout is made from a new data dir by undoing what storage
// added (the daemon of the previous release is not at hand in CI): the
// volume's layers go back where the container driver kept them, and the
// schema loses migration 6.
func TestStorageMigration(t *testing.T) {
	d := startDaemon(t, "")
	d.importImages()
	d.must("launch", "busybox", "old")
	d.must("exec", "old", "--", "sh", "-c", "echo kept > /root/keep")
	d.must("stop", "-f", "old")
	d.stopClean()

	vols, err := os.ReadDir(filepath.Join(d.dir, "storage-pools", "default", "containers"))
	if err != nil || len(vols) != 1 {
		t.Fatalf("container volumes: %v %v", vols, err)
	}
	id := vols[0].Name()
	from := filepath.Join(d.dir, "storage-pools", "default", "containers", id)
	to := filepath.Join(d.dir, "containers", id)
	if err := os.MkdirAll(to, 0o711); err != nil {
		t.Fatal(err)
	}
	for _, layer := range []string{"upper", "work"} {
		if err := os.Rename(filepath.Join(from, layer), filepath.Join(to, layer)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(filepath.Join(d.dir, "storage-pools")); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", filepath.Join(d.dir, "hangar.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		// What migrations 6 and later made (storage, snapshots, backups,
		// projects, certificates, auth groups, API tokens, instance ids
		// (the instances table's rebuild drops migration 13's uid column
		// and its index), instance secrets): their tables go, and the
		// tables migration 9 rebuilt with a project go back to their
		// schema-5 shape (foreign keys are off on this connection);
		// local users (15).
		"DROP TABLE IF EXISTS users",
		"DROP TABLE IF EXISTS instance_secrets",
		"DROP TABLE IF EXISTS api_tokens",
		"DROP TABLE IF EXISTS auth_identity_groups",
		"DROP TABLE IF EXISTS auth_group_permissions",
		"DROP TABLE IF EXISTS auth_groups",
		"DROP TABLE IF EXISTS certificates",
		"DROP TABLE IF EXISTS image_projects",
		"DROP TABLE IF EXISTS instance_backups",
		"DROP TABLE IF EXISTS instance_snapshots",
		"DROP TABLE storage_volumes",
		"DROP TABLE storage_pools",
		`CREATE TABLE instances_v5 (
			id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE CHECK (name <> ''),
			type TEXT NOT NULL, architecture TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
			config TEXT NOT NULL DEFAULT '{}', devices TEXT NOT NULL DEFAULT '{}',
			ephemeral INTEGER NOT NULL DEFAULT 0 CHECK (ephemeral IN (0, 1)),
			stateful INTEGER NOT NULL DEFAULT 0 CHECK (stateful IN (0, 1)),
			created_at TEXT NOT NULL, last_used_at TEXT NOT NULL) STRICT`,
		`INSERT INTO instances_v5 SELECT id, name, type, architecture, description, config, devices, ephemeral, stateful, created_at, last_used_at FROM instances`,
		"DROP TABLE instances",
		"ALTER TABLE instances_v5 RENAME TO instances",
		`CREATE TABLE profiles_v5 (
			id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE CHECK (name <> ''),
			description TEXT NOT NULL DEFAULT '', config TEXT NOT NULL DEFAULT '{}', devices TEXT NOT NULL DEFAULT '{}') STRICT`,
		"INSERT INTO profiles_v5 SELECT id, name, description, config, devices FROM profiles",
		"DROP TABLE profiles",
		"ALTER TABLE profiles_v5 RENAME TO profiles",
		`CREATE TABLE images_aliases_v5 (
			name TEXT NOT NULL PRIMARY KEY CHECK (name <> ''), description TEXT NOT NULL DEFAULT '',
			fingerprint TEXT NOT NULL REFERENCES images (fingerprint) ON DELETE CASCADE ON UPDATE CASCADE,
			type TEXT NOT NULL DEFAULT '') STRICT`,
		"INSERT INTO images_aliases_v5 SELECT name, description, fingerprint, type FROM images_aliases",
		"DROP TABLE images_aliases",
		"ALTER TABLE images_aliases_v5 RENAME TO images_aliases",
		"CREATE INDEX images_aliases_fingerprint ON images_aliases (fingerprint)",
		`CREATE TABLE networks_v5 (
			id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE CHECK (name <> ''),
			type TEXT NOT NULL CHECK (type <> ''), description TEXT NOT NULL DEFAULT '', config TEXT NOT NULL DEFAULT '{}') STRICT`,
		"INSERT INTO networks_v5 SELECT id, name, type, description, config FROM networks",
		"DROP TABLE networks",
		"ALTER TABLE networks_v5 RENAME TO networks",
		"DROP TABLE projects",
		"DELETE FROM schema WHERE version >= 6",
		"DELETE FROM counters WHERE name = 'storage.default_made'",
		"UPDATE profiles SET devices = json_remove(devices, '$.root') WHERE name = 'default'",
	} {
		if _, err := db.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	d.start()
	if prof := d.must("profile", "show", "default"); !strings.Contains(prof, "pool: default") {
		t.Fatalf("upgraded default profile has no root disk:\n%s", prof)
	}
	// Migration 13 gave the old instance an id.
	db, err = sql.Open("sqlite", filepath.Join(d.dir, "hangar.db"))
	if err != nil {
		t.Fatal(err)
	}
	var uid string
	if err := db.QueryRowContext(context.Background(), "SELECT uid FROM instances WHERE name = 'old'").Scan(&uid); err != nil || !cuid.Valid(uid) {
		t.Fatalf("the upgraded instance's id: %q %v", uid, err)
	}
	db.Close()
	d.must("start", "old")
	if out := d.must("exec", "old", "--", "cat", "/root/keep"); out != "kept\n" {
		t.Fatalf("after the upgrade the instance reads %q", out)
	}
	if got := d.volumesOf("default", "container"); len(got) != 1 || got[0] != "old" {
		t.Fatalf("container volumes on default %v, want [old]", got)
	}
	if _, err := os.Stat(filepath.Join(to, "upper")); err == nil {
		t.Fatal("the old layer stayed in the container runtime's directory")
	}
}

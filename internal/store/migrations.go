package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// migrations is the schema, one step per entry; a database's version is how
// many have been applied. Append only: never edit or reorder an entry once
// it has shipped, since databases in the field already ran it.
var migrations = []string{
	// 1: instances, profiles and server config.
	`
CREATE TABLE instances (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	name         TEXT    NOT NULL UNIQUE CHECK (name <> ''),
	type         TEXT    NOT NULL,
	architecture TEXT    NOT NULL,
	description  TEXT    NOT NULL DEFAULT '',
	config       TEXT    NOT NULL DEFAULT '{}',
	devices      TEXT    NOT NULL DEFAULT '{}',
	ephemeral    INTEGER NOT NULL DEFAULT 0 CHECK (ephemeral IN (0, 1)),
	stateful     INTEGER NOT NULL DEFAULT 0 CHECK (stateful IN (0, 1)),
	created_at   TEXT    NOT NULL,
	last_used_at TEXT    NOT NULL
) STRICT;

CREATE TABLE profiles (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	name        TEXT NOT NULL UNIQUE CHECK (name <> ''),
	description TEXT NOT NULL DEFAULT '',
	config      TEXT NOT NULL DEFAULT '{}',
	devices     TEXT NOT NULL DEFAULT '{}'
) STRICT;

CREATE TABLE instances_profiles (
	instance_id INTEGER NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
	-- NO ACTION (the default), not RESTRICT: the same refusal for
	-- immediate constraints, but reported as SQLITE_CONSTRAINT_FOREIGNKEY;
	-- RESTRICT runs as a trigger and reports SQLITE_CONSTRAINT_TRIGGER.
	profile_id  INTEGER NOT NULL REFERENCES profiles (id),
	apply_order INTEGER NOT NULL,
	PRIMARY KEY (instance_id, apply_order),
	UNIQUE (instance_id, profile_id)
) STRICT, WITHOUT ROWID;

-- Serves the foreign-key check when a profile is deleted.
CREATE INDEX instances_profiles_profile_id ON instances_profiles (profile_id);

CREATE TABLE config (
	key   TEXT NOT NULL PRIMARY KEY,
	value TEXT NOT NULL
) STRICT;

INSERT INTO profiles (name, description, config, devices)
VALUES ('default', 'Default Hangar profile', '{}', '{}');
`,
	// 2: images and their aliases.
	`
CREATE TABLE images (
	fingerprint  TEXT    NOT NULL PRIMARY KEY
	                     CHECK (length(fingerprint) = 64 AND fingerprint NOT GLOB '*[^0-9a-f]*'),
	filename     TEXT    NOT NULL DEFAULT '',
	size         INTEGER NOT NULL DEFAULT 0,
	architecture TEXT    NOT NULL DEFAULT '',
	type         TEXT    NOT NULL DEFAULT '',
	properties   TEXT    NOT NULL DEFAULT '{}',
	public       INTEGER NOT NULL DEFAULT 0 CHECK (public IN (0, 1)),
	auto_update  INTEGER NOT NULL DEFAULT 0 CHECK (auto_update IN (0, 1)),
	cached       INTEGER NOT NULL DEFAULT 0 CHECK (cached IN (0, 1)),
	created_at   TEXT    NOT NULL,
	uploaded_at  TEXT    NOT NULL,
	last_used_at TEXT    NOT NULL,
	expires_at   TEXT    NOT NULL,
	source       TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE TABLE images_aliases (
	name        TEXT NOT NULL PRIMARY KEY CHECK (name <> ''),
	description TEXT NOT NULL DEFAULT '',
	fingerprint TEXT NOT NULL REFERENCES images (fingerprint) ON DELETE CASCADE ON UPDATE CASCADE,
	type        TEXT NOT NULL DEFAULT ''
) STRICT;

-- Serves the cascade when an image is deleted.
CREATE INDEX images_aliases_fingerprint ON images_aliases (fingerprint);
`,
	// 3: the format an image's blob is in, which names the source that
	// unpacks it again (a shifted tree is unpacked from the blob on first
	// use). Images stored before it are plain root filesystem tarballs.
	`
ALTER TABLE images ADD COLUMN format TEXT NOT NULL DEFAULT 'rootfs-tarball' CHECK (format <> '');
`,
	// 4: daemon counters that must never go back across restarts (the
	// event sequence), and the events a clean shutdown leaves for the
	// next run to replay.
	`
CREATE TABLE counters (
	name  TEXT NOT NULL PRIMARY KEY,
	value INTEGER NOT NULL CHECK (value >= 0)
) STRICT;

CREATE TABLE events (
	sequence INTEGER NOT NULL PRIMARY KEY CHECK (sequence > 0),
	event    BLOB NOT NULL
) STRICT;
`,
	// 5: managed networks, the addresses and MACs handed to instance NICs
	// (IPAM: a UNIQUE per network and family means no two NICs ever share
	// one), and network forwards.
	`
CREATE TABLE networks (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	name        TEXT NOT NULL UNIQUE CHECK (name <> ''),
	type        TEXT NOT NULL CHECK (type <> ''),
	description TEXT NOT NULL DEFAULT '',
	config      TEXT NOT NULL DEFAULT '{}'
) STRICT;

CREATE TABLE network_allocations (
	network_id  INTEGER NOT NULL REFERENCES networks (id),
	instance_id INTEGER NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
	device      TEXT    NOT NULL CHECK (device <> ''),
	hwaddr      TEXT    NOT NULL CHECK (hwaddr <> ''),
	ipv4        TEXT,
	ipv6        TEXT,
	PRIMARY KEY (instance_id, device),
	UNIQUE (network_id, hwaddr),
	UNIQUE (network_id, ipv4),
	UNIQUE (network_id, ipv6)
) STRICT;

CREATE TABLE network_forwards (
	network_id     INTEGER NOT NULL REFERENCES networks (id) ON DELETE CASCADE,
	listen_address TEXT    NOT NULL CHECK (listen_address <> ''),
	description    TEXT    NOT NULL DEFAULT '',
	config         TEXT    NOT NULL DEFAULT '{}',
	ports          TEXT    NOT NULL DEFAULT '[]',
	PRIMARY KEY (network_id, listen_address)
) STRICT;
`,
	// 6: storage pools and their volumes. A volume row is written before
	// its volume is made (state pending) and marked created after, and
	// marked deleting before it is removed: a daemon killed in between
	// finds the row at its next start and finishes or undoes the work.
	// Image volumes are one per image and id map on a pool: disk_name
	// tells them apart, name is the fingerprint users see.
	`
CREATE TABLE storage_pools (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	name        TEXT NOT NULL UNIQUE CHECK (name <> ''),
	driver      TEXT NOT NULL CHECK (driver <> ''),
	description TEXT NOT NULL DEFAULT '',
	config      TEXT NOT NULL DEFAULT '{}',
	state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'created'))
) STRICT;

CREATE TABLE storage_volumes (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	pool_id     INTEGER NOT NULL REFERENCES storage_pools (id),
	type        TEXT NOT NULL CHECK (type IN ('container', 'virtual-machine', 'image', 'custom')),
	name        TEXT NOT NULL CHECK (name <> ''),
	disk_name   TEXT NOT NULL CHECK (disk_name <> ''),
	content     TEXT NOT NULL CHECK (content IN ('filesystem', 'block')),
	description TEXT NOT NULL DEFAULT '',
	config      TEXT NOT NULL DEFAULT '{}',
	instance_id INTEGER,
	created_at  TEXT NOT NULL,
	state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'created', 'deleting')),
	UNIQUE (pool_id, type, content, disk_name)
) STRICT;

CREATE UNIQUE INDEX storage_volumes_names ON storage_volumes (pool_id, type, name) WHERE type <> 'image';
CREATE UNIQUE INDEX storage_volumes_instances ON storage_volumes (instance_id) WHERE instance_id IS NOT NULL;
`,
	// 7: snapshots. A volume snapshot is a volume record of its parent's
	// type named "PARENT/SNAP" (as LXD names them, so the names index keeps
	// them unique) with parent_id set: the same pending/created/deleting
	// states, so the start-up reconciliation covers them. An instance
	// snapshot is the instance's record as it was (config, devices,
	// profiles) beside its root volume's snapshot of the same name.
	`
ALTER TABLE storage_volumes ADD COLUMN parent_id INTEGER REFERENCES storage_volumes (id);
ALTER TABLE storage_volumes ADD COLUMN expires_at TEXT NOT NULL DEFAULT '';
CREATE INDEX storage_volumes_parent ON storage_volumes (parent_id) WHERE parent_id IS NOT NULL;

CREATE TABLE instance_snapshots (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	instance_id  INTEGER NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
	name         TEXT    NOT NULL CHECK (name <> '' AND instr(name, '/') = 0),
	description  TEXT    NOT NULL DEFAULT '',
	config       TEXT    NOT NULL DEFAULT '{}',
	devices      TEXT    NOT NULL DEFAULT '{}',
	profiles     TEXT    NOT NULL DEFAULT '[]',
	ephemeral    INTEGER NOT NULL DEFAULT 0 CHECK (ephemeral IN (0, 1)),
	stateful     INTEGER NOT NULL DEFAULT 0 CHECK (stateful IN (0, 1)),
	created_at   TEXT    NOT NULL,
	expires_at   TEXT    NOT NULL DEFAULT '',
	UNIQUE (instance_id, name)
) STRICT;
`,
	// 8: instance backups. A backup is a tarball file of the core's
	// (BackupDir/RUNTIMEID/ID: the id never changes, so renaming the
	// backup or its instance moves nothing) and this row; a row stays
	// 'pending' until its file is whole, and the core removes pending
	// rows and files with no row at start, so a kill leaves nothing.
	`
CREATE TABLE instance_backups (
	id                INTEGER PRIMARY KEY AUTOINCREMENT,
	instance_id       INTEGER NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
	name              TEXT    NOT NULL CHECK (name <> '' AND instr(name, '/') = 0),
	created_at        TEXT    NOT NULL,
	expires_at        TEXT    NOT NULL DEFAULT '',
	instance_only     INTEGER NOT NULL DEFAULT 0 CHECK (instance_only IN (0, 1)),
	optimized_storage INTEGER NOT NULL DEFAULT 0 CHECK (optimized_storage IN (0, 1)),
	compression       TEXT    NOT NULL DEFAULT '',
	state             TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'created')),
	UNIQUE (instance_id, name)
) STRICT;
`,
	// 9: projects. A project is a namespace for instances, profiles,
	// images, custom volumes and networks: names are unique per project.
	// Rows name their project by name (ON UPDATE CASCADE follows a
	// rename). parent makes projects nest (the hangar_project_nesting
	// extension): a child's usage counts against its ancestors' limits.
	// The unique name constraints of instances, profiles and aliases are
	// per project now, which SQLite can only change by rebuilding the
	// table (foreign keys are off while migrating). An image is stored
	// once and belongs to the projects listed in image_projects. Network
	// names stay unique across projects: a bridge is a host interface.
	`
CREATE TABLE projects (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	name        TEXT NOT NULL UNIQUE CHECK (name <> '' AND instr(name, '/') = 0),
	description TEXT NOT NULL DEFAULT '',
	config      TEXT NOT NULL DEFAULT '{}',
	parent      TEXT REFERENCES projects (name) ON UPDATE CASCADE
) STRICT;

INSERT INTO projects (name, description, config) VALUES ('default', 'Default Hangar project',
	'{"features.images":"true","features.networks":"true","features.profiles":"true","features.storage.volumes":"true"}');

CREATE TABLE instances_new (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	project      TEXT    NOT NULL DEFAULT 'default' REFERENCES projects (name) ON UPDATE CASCADE,
	name         TEXT    NOT NULL CHECK (name <> ''),
	type         TEXT    NOT NULL,
	architecture TEXT    NOT NULL,
	description  TEXT    NOT NULL DEFAULT '',
	config       TEXT    NOT NULL DEFAULT '{}',
	devices      TEXT    NOT NULL DEFAULT '{}',
	ephemeral    INTEGER NOT NULL DEFAULT 0 CHECK (ephemeral IN (0, 1)),
	stateful     INTEGER NOT NULL DEFAULT 0 CHECK (stateful IN (0, 1)),
	created_at   TEXT    NOT NULL,
	last_used_at TEXT    NOT NULL,
	UNIQUE (project, name)
) STRICT;
INSERT INTO instances_new (id, name, type, architecture, description, config, devices, ephemeral, stateful, created_at, last_used_at)
	SELECT id, name, type, architecture, description, config, devices, ephemeral, stateful, created_at, last_used_at FROM instances;
DROP TABLE instances;
ALTER TABLE instances_new RENAME TO instances;

CREATE TABLE profiles_new (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	project     TEXT NOT NULL DEFAULT 'default' REFERENCES projects (name) ON UPDATE CASCADE,
	name        TEXT NOT NULL CHECK (name <> ''),
	description TEXT NOT NULL DEFAULT '',
	config      TEXT NOT NULL DEFAULT '{}',
	devices     TEXT NOT NULL DEFAULT '{}',
	UNIQUE (project, name)
) STRICT;
INSERT INTO profiles_new (id, name, description, config, devices)
	SELECT id, name, description, config, devices FROM profiles;
DROP TABLE profiles;
ALTER TABLE profiles_new RENAME TO profiles;

CREATE TABLE images_aliases_new (
	project     TEXT NOT NULL DEFAULT 'default' REFERENCES projects (name) ON UPDATE CASCADE,
	name        TEXT NOT NULL CHECK (name <> ''),
	description TEXT NOT NULL DEFAULT '',
	fingerprint TEXT NOT NULL REFERENCES images (fingerprint) ON DELETE CASCADE ON UPDATE CASCADE,
	type        TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (project, name)
) STRICT;
INSERT INTO images_aliases_new (name, description, fingerprint, type)
	SELECT name, description, fingerprint, type FROM images_aliases;
DROP TABLE images_aliases;
ALTER TABLE images_aliases_new RENAME TO images_aliases;
CREATE INDEX images_aliases_fingerprint ON images_aliases (fingerprint);

CREATE TABLE image_projects (
	fingerprint TEXT NOT NULL REFERENCES images (fingerprint) ON DELETE CASCADE ON UPDATE CASCADE,
	project     TEXT NOT NULL REFERENCES projects (name) ON UPDATE CASCADE,
	PRIMARY KEY (fingerprint, project)
) STRICT, WITHOUT ROWID;
INSERT INTO image_projects (fingerprint, project) SELECT fingerprint, 'default' FROM images;
CREATE INDEX image_projects_project ON image_projects (project);

ALTER TABLE networks ADD COLUMN project TEXT NOT NULL DEFAULT 'default' REFERENCES projects (name) ON UPDATE CASCADE;

ALTER TABLE storage_volumes ADD COLUMN project TEXT NOT NULL DEFAULT 'default' REFERENCES projects (name) ON UPDATE CASCADE;
DROP INDEX storage_volumes_names;
CREATE UNIQUE INDEX storage_volumes_names ON storage_volumes (pool_id, project, type, name) WHERE type <> 'image';
`,
	// 10: the trust store: client certificates allowed over HTTPS. The
	// fingerprint is the SHA-256 of the certificate's DER (64 lowercase
	// hex), which the TLS edge computes from the peer's certificate.
	// projects is a JSON list of project names (meaningful only when
	// restricted); it is not a foreign key, as in LXD, and the trust
	// service checks the names exist when a record is written.
	`
CREATE TABLE certificates (
	fingerprint TEXT    NOT NULL PRIMARY KEY CHECK (length(fingerprint) = 64 AND fingerprint NOT GLOB '*[^0-9a-f]*'),
	name        TEXT    NOT NULL CHECK (name <> ''),
	type        TEXT    NOT NULL CHECK (type IN ('client', 'metrics')),
	restricted  INTEGER NOT NULL DEFAULT 0 CHECK (restricted IN (0, 1)),
	projects    TEXT    NOT NULL DEFAULT '[]',
	certificate TEXT    NOT NULL CHECK (certificate <> ''),
	created_at  TEXT    NOT NULL
) STRICT, WITHOUT ROWID;
`,

	// 11: auth groups: named sets of (entity type, entity, entitlement)
	// and the identities (authentication method, identifier) in them.
	// Identities are not rows of their own: a certificate or token may be
	// named before it is trusted, and outlives nothing when it is revoked.
	`
CREATE TABLE auth_groups (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	name        TEXT NOT NULL UNIQUE CHECK (name <> ''),
	description TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE TABLE auth_group_permissions (
	group_id    INTEGER NOT NULL REFERENCES auth_groups (id) ON DELETE CASCADE,
	entity_type TEXT    NOT NULL CHECK (entity_type <> ''),
	project     TEXT    NOT NULL DEFAULT '',
	name        TEXT    NOT NULL DEFAULT '',
	entitlement TEXT    NOT NULL CHECK (entitlement <> ''),
	PRIMARY KEY (group_id, entity_type, project, name, entitlement)
) STRICT, WITHOUT ROWID;

CREATE TABLE auth_identity_groups (
	group_id   INTEGER NOT NULL REFERENCES auth_groups (id) ON DELETE CASCADE,
	method     TEXT    NOT NULL CHECK (method <> ''),
	identifier TEXT    NOT NULL CHECK (identifier <> ''),
	PRIMARY KEY (group_id, method, identifier)
) STRICT, WITHOUT ROWID;
CREATE INDEX auth_identity_groups_identity ON auth_identity_groups (method, identifier);
`,

	// 12: bearer API tokens. The secret is stored only as the SHA-256 of
	// its 32 random bytes: a slow password hash guards low-entropy
	// secrets against guessing, and 256 random bits cannot be guessed, so
	// it would only add its cost to every request. project is NULL for a
	// token over the whole server (admin); deleting a project revokes its
	// tokens, renaming it carries them along. expires_at '' is never.
	`
CREATE TABLE api_tokens (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	name        TEXT NOT NULL UNIQUE CHECK (name <> ''),
	secret_hash BLOB NOT NULL CHECK (length(secret_hash) = 32),
	project     TEXT REFERENCES projects (name) ON UPDATE CASCADE ON DELETE CASCADE,
	role        TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
	created_at  TEXT NOT NULL,
	expires_at  TEXT NOT NULL DEFAULT ''
) STRICT;
`,

	// 13: an instance's uid, the CUID2 id the instances API (seed 002)
	// names it by: 24 of [a-z0-9], the first a letter. Kept across
	// renames (UpdateInstance never writes it), new for every created
	// row (copies, forks and imports are new rows). Existing instances
	// get a random one here: a letter, then 23 hex digits of 12 random
	// bytes. The unique index makes a row without one ('') a conflict
	// with the next, so the store always sets it.
	`
ALTER TABLE instances ADD COLUMN uid TEXT NOT NULL DEFAULT '';
UPDATE instances SET uid = char(97 + abs(random() % 26)) || substr(lower(hex(randomblob(12))), 1, 23);
CREATE UNIQUE INDEX instances_uid ON instances (uid);
`,

	// 14: the real values of an instance's credentials (seed 002's
	// credentials.*.source.env), keyed by the env key the request sent
	// them under. They are never in the instance's config, so no API
	// that shows config can show them; only the egress proxy reads them.
	// Deleting the instance deletes them.
	`
CREATE TABLE instance_secrets (
	instance_id INTEGER NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
	key         TEXT    NOT NULL CHECK (key <> ''),
	value       TEXT    NOT NULL,
	PRIMARY KEY (instance_id, key)
) STRICT, WITHOUT ROWID;
`,

	// 15: local users, who log in to the dialects with logins (virt
	// auth.login, the /v/ user login) with a name and a password. The
	// password is kept only as its PBKDF2 hash (trust.HashPassword's
	// "pbkdf2-sha256$ITER$SALT$HASH"). What a user may do is what the auth
	// groups naming (method 'user', name) grant: no column here.
	`
CREATE TABLE users (
	name          TEXT NOT NULL PRIMARY KEY CHECK (name <> ''),
	description   TEXT NOT NULL DEFAULT '',
	password_hash TEXT NOT NULL CHECK (password_hash LIKE 'pbkdf2-sha256$%'),
	created_at    TEXT NOT NULL
) STRICT, WITHOUT ROWID;
`,

	// 16: ISO custom volumes (content 'iso'). SQLite cannot change a
	// CHECK in place: the table is rebuilt with every column and index it
	// has from migrations 6, 7 and 9 (foreign keys are off while
	// migrating; ids are kept, so parent_id still points right).
	`
CREATE TABLE storage_volumes_new (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	pool_id     INTEGER NOT NULL REFERENCES storage_pools (id),
	type        TEXT NOT NULL CHECK (type IN ('container', 'virtual-machine', 'image', 'custom')),
	name        TEXT NOT NULL CHECK (name <> ''),
	disk_name   TEXT NOT NULL CHECK (disk_name <> ''),
	content     TEXT NOT NULL CHECK (content IN ('filesystem', 'block', 'iso')),
	description TEXT NOT NULL DEFAULT '',
	config      TEXT NOT NULL DEFAULT '{}',
	instance_id INTEGER,
	created_at  TEXT NOT NULL,
	state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'created', 'deleting')),
	parent_id   INTEGER REFERENCES storage_volumes (id),
	expires_at  TEXT NOT NULL DEFAULT '',
	project     TEXT NOT NULL DEFAULT 'default' REFERENCES projects (name) ON UPDATE CASCADE,
	UNIQUE (pool_id, type, content, disk_name)
) STRICT;
INSERT INTO storage_volumes_new (id, pool_id, type, name, disk_name, content, description, config, instance_id, created_at, state, parent_id, expires_at, project)
	SELECT id, pool_id, type, name, disk_name, content, description, config, instance_id, created_at, state, parent_id, expires_at, project FROM storage_volumes;
DROP TABLE storage_volumes;
ALTER TABLE storage_volumes_new RENAME TO storage_volumes;
CREATE UNIQUE INDEX storage_volumes_names ON storage_volumes (pool_id, project, type, name) WHERE type <> 'image';
CREATE UNIQUE INDEX storage_volumes_instances ON storage_volumes (instance_id) WHERE instance_id IS NOT NULL;
CREATE INDEX storage_volumes_parent ON storage_volumes (parent_id) WHERE parent_id IS NOT NULL;
`,
	// 17: a project's custom volumes by index: every quota check reads
	// them for each project of the tree (limits.disk), and a full scan
	// of every instance's and image's volume cost milliseconds.
	`CREATE INDEX storage_volumes_custom ON storage_volumes (project) WHERE type = 'custom';`,
}

// schemaVersion returns the version recorded in the ledger.
func schemaVersion(ctx context.Context, db dbtx) (int, error) {
	var v int
	if err := db.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// migrate brings db up to len(migs). It is safe against another process
// migrating the same file at once: each step re-reads the version inside its
// IMMEDIATE transaction, which holds the write lock.
func migrate(ctx context.Context, db *sql.DB, migs []string) (err error) {
	// One pinned connection: the foreign_keys pragma is per connection and
	// must be restored on this same one before it returns to the pool.
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()

	// The ledger is not itself a migration: it must exist to say which
	// migrations have run.
	if _, err := conn.ExecContext(ctx,
		`CREATE TABLE IF NOT EXISTS schema (
			version    INTEGER NOT NULL PRIMARY KEY,
			applied_at TEXT    NOT NULL
		) STRICT`); err != nil {
		return fmt.Errorf("migrate: create schema table: %w", err)
	}
	v, err := schemaVersion(ctx, conn)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if v > len(migs) {
		return fmt.Errorf("migrate: database schema version %d is newer than this hangard knows (%d)", v, len(migs))
	}
	if v == len(migs) {
		return nil
	}

	// Foreign keys off while migrating, so a step may rebuild a referenced
	// table (SQLite's ALTER TABLE cannot change most things); each step
	// proves integrity with foreign_key_check before it commits. The pragma
	// is a no-op inside a transaction, hence here.
	if _, err := conn.ExecContext(ctx, "PRAGMA foreign_keys = OFF"); err != nil {
		return fmt.Errorf("migrate: disable foreign keys: %w", err)
	}
	defer func() {
		if _, ferr := conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA foreign_keys = ON"); ferr != nil {
			err = errors.Join(err, fmt.Errorf("migrate: enable foreign keys: %w", ferr))
		}
	}()

	for i, m := range migs {
		if err := applyMigration(ctx, conn, i+1, m); err != nil {
			return err
		}
	}
	return nil
}

// applyMigration runs migration number version, with its ledger row, in one
// transaction, unless the database already has it.
func applyMigration(ctx context.Context, conn *sql.Conn, version int, stmt string) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migration %d: begin: %w", version, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op

	cur, err := schemaVersion(ctx, tx)
	if err != nil {
		return fmt.Errorf("migration %d: %w", version, err)
	}
	if cur >= version {
		return nil
	}
	if cur != version-1 {
		return fmt.Errorf("migration %d: database is at version %d", version, cur)
	}
	if _, err := tx.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("migration %d: %w", version, err)
	}
	if err := foreignKeyCheck(ctx, tx); err != nil {
		return fmt.Errorf("migration %d: %w", version, err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO schema (version, applied_at) VALUES (?, ?)",
		version, fmtTime(time.Now())); err != nil {
		return fmt.Errorf("migration %d: record version: %w", version, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migration %d: commit: %w", version, err)
	}
	return nil
}

// foreignKeyCheck fails if any row references a missing parent.
func foreignKeyCheck(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		return fmt.Errorf("foreign key check: %w", err)
	}
	defer rows.Close()
	if rows.Next() {
		var table, parent string
		var rowid sql.NullInt64
		var fk int
		if err := rows.Scan(&table, &rowid, &parent, &fk); err != nil {
			return fmt.Errorf("foreign key check: %w", err)
		}
		return fmt.Errorf("foreign key check: row %d of %s references a missing %s", rowid.Int64, table, parent)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("foreign key check: %w", err)
	}
	return nil
}

// Package store persists hangard's state in one SQLite database: instances,
// profiles, images, image aliases, the server configuration and the event
// hub's sequence.
//
// # What it owns
//
// Persistence only. The store keeps records and the integrity the schema
// itself can express (unique names, foreign keys, fingerprint shape); it has
// no business rules and validates nothing beyond those constraints. Whether a
// config key is known, whether an instance may be renamed while running,
// whether the default profile may be deleted: all of that is decided by the
// domain packages before they call the store. Constraint violations come
// back as errdefs kinds (ErrNotFound, ErrConflict, ErrInvalidArgument) so the
// HTTP edge maps them without reading messages.
//
// # Schema
//
//	schema              version ledger, one row per applied migration
//	instances           id (AUTOINCREMENT: never reused, it is the runtime id),
//	                    name UNIQUE, type, architecture, description,
//	                    config/devices (JSON), ephemeral, stateful, times
//	profiles            id, name UNIQUE, description, config/devices (JSON)
//	instances_profiles  (instance_id, apply_order) -> profile_id; deleting an
//	                    instance cascades, deleting a profile still in use is
//	                    refused (ErrConflict), renaming a profile is seen by
//	                    every instance because rows point at the profile id
//	                    (a caller caching Instance records must rename there
//	                    too, or its next UpdateInstance names a missing profile)
//	images              fingerprint (64 lowercase hex, CHECKed) PRIMARY KEY,
//	                    file facts, properties (JSON), flags, times, source
//	images_aliases      name PRIMARY KEY -> images.fingerprint, ON DELETE
//	                    CASCADE: deleting an image deletes its aliases
//	config              server configuration, key -> value
//	counters            name -> value that must never go back across
//	                    restarts (the event sequence's reserved high mark)
//	events              sequence -> event (the owner's encoding), left by a
//	                    clean shutdown for the next run, which takes them once
//	certificates        fingerprint (SHA-256 of the DER, 64 hex) PRIMARY KEY,
//	                    name, type (client|metrics), restricted, projects
//	                    (JSON list), certificate (PEM), created_at
//	users               name PRIMARY KEY, description, password_hash (PBKDF2
//	                    only, CHECKed), created_at; DeleteUser also drops the
//	                    user's rows in auth_identity_groups (method "user")
//
// Times are stored as fixed-width UTC text ("2006-01-02T15:04:05.000000000Z"),
// so they read back as UTC, sort as text and stay readable in the sqlite3
// shell; the zero time.Time round-trips unchanged.
//
// # Why JSON columns
//
// Config, devices and image properties are read and written whole: the
// daemon expands an instance's config from its profiles in memory and never
// asks "which instances have key X". A key/value table per map would cost a
// join and a row per key on every read for queries nobody runs. If such a
// query is ever needed, SQLite's json_each can serve it, or a migration can
// split the column out. Lists are read once, at daemon start (the instance
// service serves reads from memory), so plain encoding/json is fast enough.
//
// Instance→profile membership is the exception: it is a relation, with
// referential integrity and rename semantics, so it has its own table.
//
// # Migrations
//
// The schema is the ordered slice migrations; the schema version of a
// database is the number of entries applied to it. Each migration runs in
// its own transaction together with its ledger row, so a crash leaves the
// database at a version boundary. The list is append-only: never edit or
// reorder an applied migration, add a new one instead. A database whose
// version is newer than this binary knows is refused rather than guessed at.
// Migrations run with foreign keys off and are checked with
// PRAGMA foreign_key_check before commit, which is what SQLite's table-rebuild
// procedure (create new, copy, drop, rename) needs.
//
// # Connections
//
// The database runs in WAL mode with synchronous=NORMAL (durable across
// process crashes, may lose the last commits on power loss, which hangard
// tolerates) and foreign_keys on. All writes go through a single connection,
// so writers inside one process queue in database/sql instead of failing
// with SQLITE_BUSY; transactions begin IMMEDIATE and busy_timeout covers
// another process holding the write lock. Reads use a separate pool of
// query-only connections, which WAL lets run alongside the writer.
//
// Several writes become one transaction with Atomic. Inside the callback use
// only the *Queries it is given: calling the Store's own write methods would
// wait for the one writer connection the transaction holds, and deadlock.
package store

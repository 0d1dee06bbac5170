package instance

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hangar-dev/hangar/internal/backup"
	"github.com/hangar-dev/hangar/internal/cuid"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/project"
	"github.com/hangar-dev/hangar/internal/snapshotpolicy"
	"github.com/hangar-dev/hangar/internal/storage"
	"github.com/hangar-dev/hangar/internal/store"
)

// An instance backup is a tarball in LXD's layout (package backup) and a
// row in instance_backups. The file is BackupDir/RUNTIMEID/ID: the ids
// never change, so renaming the backup or its instance moves nothing. A
// row is "pending" until its file is whole; Recover removes pending rows
// and files without a row, so a kill during a backup leaves nothing.
//
// An import (ImportBackup) reads the tarball front to back, as it is
// uploaded: everything that can be checked from the index (name, type,
// pool, config, devices, profiles) is checked before anything is made,
// and the root and its snapshots are made from the archive as it streams
// past. Until the import ends the instance's record carries keyCreating
// (creatingImport), as a copy's does; Recover removes an instance that
// still has it (abandonCreate: the daemon was killed during an import),
// so a kill leaves nothing either.

// creatingImport is keyCreating's value while an import is unfinished.
const creatingImport = "import"

// Backup is an instance backup.
type Backup struct {
	Name             string
	Instance         string
	CreatedAt        time.Time
	ExpiresAt        time.Time // zero: never
	InstanceOnly     bool
	OptimizedStorage bool
	Compression      string
}

// BackupRequest is a new backup.
type BackupRequest struct {
	// Name is the backup's name; "" takes backupN, N one past the
	// highest in use (LXD's rule).
	Name         string
	ExpiresAt    time.Time
	InstanceOnly bool
	// OptimizedStorage asks for the pool's own stream format (btrfs send
	// streams, for a container); a root that has none is written as
	// trees, as LXD does, and the backup says it is not optimized.
	OptimizedStorage bool
	// Compression is gzip (the default, as LXD's), xz, zstd, lzma or none.
	Compression string
}

// ImportOptions override what a backup's index says.
type ImportOptions struct {
	Name string // the new instance's name; "" keeps the backup's
	Pool string // the pool for its root; "" keeps the backup's
}

func backupEntity(project, inst, name string) event.Entity {
	return event.Entity{Kind: event.EntityInstanceBackup, Name: inst + "/" + name, Project: project}
}

func backupOf(inst string, b store.InstanceBackup) Backup {
	return Backup{Name: b.Name, Instance: inst, CreatedAt: b.CreatedAt, ExpiresAt: b.ExpiresAt,
		InstanceOnly: b.InstanceOnly, OptimizedStorage: b.OptimizedStorage, Compression: b.Compression}
}

// backupPath is where a backup's tarball lives.
func (s *Service) backupPath(instanceID, backupID int64) string {
	return filepath.Join(s.cfg.BackupDir, runtimeID(instanceID), strconv.FormatInt(backupID, 10))
}

func validBackupName(name string) error {
	switch {
	case name == "":
		return errdefs.Invalid("backup name is empty")
	case strings.Contains(name, "/"):
		return errdefs.Invalid("backup name %q: backup names may not contain slashes", name)
	case len(name) > 255:
		return errdefs.Invalid("backup name %q: longer than 255 bytes", name)
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f {
			return errdefs.Invalid("backup name %q: contains a control character", name)
		}
	}
	return nil
}

func backupNotFound(err error, name, b string) error {
	if errors.Is(err, errdefs.ErrNotFound) {
		return errdefs.NotFound("backup %q of instance %q not found", b, name)
	}
	return err
}

// createdBackups are an instance's finished backups, oldest first.
func (s *Service) createdBackups(ctx context.Context, instanceID int64) ([]store.InstanceBackup, error) {
	rows, err := s.cfg.DB.ListInstanceBackups(ctx, instanceID)
	if err != nil {
		return nil, err
	}
	out := rows[:0]
	for _, b := range rows {
		if b.State == "created" {
			out = append(out, b)
		}
	}
	return out, nil
}

// createdBackup is one finished backup of an instance.
func (s *Service) createdBackup(ctx context.Context, rec store.Instance, name string) (store.InstanceBackup, error) {
	b, err := s.cfg.DB.GetInstanceBackup(ctx, rec.ID, name)
	if err == nil && b.State != "created" {
		err = errdefs.NotFound("backup %q is being made", name)
	}
	return b, backupNotFound(err, rec.Name, name)
}

// Backups lists an instance's backups, oldest first.
func (s *Service) Backups(ctx context.Context, name string) ([]Backup, error) {
	if err := s.allow(ctx, name, canView); err != nil {
		return nil, err
	}
	in, err := s.lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	rec, _, _ := s.snapshot(in)
	rows, err := s.createdBackups(ctx, rec.ID)
	if err != nil {
		return nil, err
	}
	out := make([]Backup, 0, len(rows))
	for _, b := range rows {
		out = append(out, backupOf(rec.Name, b))
	}
	return out, nil
}

// GetBackup returns one backup of an instance.
func (s *Service) GetBackup(ctx context.Context, name, b string) (Backup, error) {
	if err := s.allow(ctx, name, canView); err != nil {
		return Backup{}, err
	}
	in, err := s.lookup(ctx, name)
	if err != nil {
		return Backup{}, err
	}
	rec, _, _ := s.snapshot(in)
	row, err := s.createdBackup(ctx, rec, b)
	if err != nil {
		return Backup{}, err
	}
	return backupOf(rec.Name, row), nil
}

// OpenBackup opens a backup's tarball for download; the caller closes it.
func (s *Service) OpenBackup(ctx context.Context, name, b string) (*os.File, Backup, error) {
	if err := s.allow(ctx, name, canManageBackups); err != nil {
		return nil, Backup{}, err
	}
	in, err := s.lookup(ctx, name)
	if err != nil {
		return nil, Backup{}, err
	}
	rec, _, _ := s.snapshot(in)
	row, err := s.createdBackup(ctx, rec, b)
	if err != nil {
		return nil, Backup{}, err
	}
	f, err := os.Open(s.backupPath(rec.ID, row.ID))
	if err != nil {
		return nil, Backup{}, fmt.Errorf("open backup %s/%s: %w", rec.Name, b, err)
	}
	return f, backupOf(rec.Name, row), nil
}

// RenameBackup renames a backup (its file keeps its name).
func (s *Service) RenameBackup(ctx context.Context, name, b, newName string) error {
	if err := s.allow(ctx, name, canManageBackups); err != nil {
		return err
	}
	if err := validBackupName(newName); err != nil {
		return err
	}
	in, err := s.lookup(ctx, name)
	if err != nil {
		return err
	}
	rec, _, _ := s.snapshot(in)
	row, err := s.createdBackup(ctx, rec, b)
	if err != nil {
		return err
	}
	row.Name = newName
	if err := s.cfg.DB.UpdateInstanceBackup(ctx, row); err != nil {
		if errors.Is(err, errdefs.ErrConflict) {
			return errdefs.Conflict("backup %q of instance %q already exists", newName, name)
		}
		return err
	}
	s.cfg.Events.Lifecycle(ctx, "instance-backup-renamed", backupEntity(project.Name(ctx), name, newName), map[string]any{"old_name": b})
	return nil
}

// DeleteBackup deletes a backup: its file, then its row.
func (s *Service) DeleteBackup(ctx context.Context, name, b string) error {
	if err := s.allow(ctx, name, canManageBackups); err != nil {
		return err
	}
	in, err := s.lookup(ctx, name)
	if err != nil {
		return err
	}
	rec, _, _ := s.snapshot(in)
	row, err := s.createdBackup(ctx, rec, b)
	if err != nil {
		return err
	}
	if err := s.dropBackup(ctx, rec.ID, row); err != nil {
		return err
	}
	s.cfg.Events.Lifecycle(ctx, "instance-backup-deleted", backupEntity(project.Name(ctx), name, b), nil)
	s.log.Info("backup deleted", "instance", name, "backup", b)
	return nil
}

// dropBackup removes a backup's file and row.
func (s *Service) dropBackup(ctx context.Context, instanceID int64, row store.InstanceBackup) error {
	if err := os.Remove(s.backupPath(instanceID, row.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete backup %s: %w", row.Name, err)
	}
	return s.cfg.DB.DeleteInstanceBackup(ctx, row.ID)
}

// removeBackupFiles removes a deleted instance's backup files (its rows
// went with its record).
func (s *Service) removeBackupFiles(rec store.Instance) {
	if s.cfg.BackupDir == "" {
		return
	}
	if err := os.RemoveAll(filepath.Join(s.cfg.BackupDir, runtimeID(rec.ID))); err != nil {
		s.log.Warn("remove instance backups", "instance", rec.Name, "err", err)
	}
}

// PruneBackups deletes the backups whose expiry has passed and returns
// how many it deleted.
func (s *Service) PruneBackups(ctx context.Context, now time.Time) (int, error) {
	rows, err := s.cfg.DB.ListInstanceBackups(ctx, 0)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, b := range rows {
		if b.State != "created" || b.ExpiresAt.IsZero() || b.ExpiresAt.After(now) {
			continue
		}
		if err := s.dropBackup(ctx, b.InstanceID, b); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
		s.mu.RLock()
		in := s.byRuntime[runtimeID(b.InstanceID)]
		s.mu.RUnlock()
		if in != nil {
			rec, _, _ := s.snapshot(in)
			s.cfg.Events.Lifecycle(ctx, "instance-backup-deleted", backupEntity(rec.Project, rec.Name, b.Name), nil)
		}
	}
	return n, errors.Join(errs...)
}

// reconcileBackups removes what a daemon killed during a backup left: a
// pending row and its file, a file with no row.
func (s *Service) reconcileBackups(ctx context.Context) {
	if s.cfg.BackupDir == "" {
		return
	}
	rows, err := s.cfg.DB.ListInstanceBackups(ctx, 0)
	if err != nil {
		s.log.Error("reconcile backups", "err", err)
		return
	}
	known := map[string]bool{}
	for _, b := range rows {
		if b.State == "created" {
			known[s.backupPath(b.InstanceID, b.ID)] = true
			continue
		}
		if err := s.dropBackup(ctx, b.InstanceID, b); err != nil {
			s.log.Error("remove half-made backup", "backup", b.Name, "err", err)
			continue
		}
		s.log.Info("removed a backup whose create did not finish", "backup", b.Name)
	}
	dirs, _ := os.ReadDir(s.cfg.BackupDir)
	for _, d := range dirs {
		files, _ := os.ReadDir(filepath.Join(s.cfg.BackupDir, d.Name()))
		for _, f := range files {
			p := filepath.Join(s.cfg.BackupDir, d.Name(), f.Name())
			if known[p] {
				continue
			}
			if err := os.RemoveAll(p); err != nil {
				s.log.Error("remove backup file with no record", "path", p, "err", err)
			} else {
				s.log.Info("removed a backup file with no record", "path", p)
			}
		}
		_ = os.Remove(filepath.Join(s.cfg.BackupDir, d.Name())) // only if empty
	}
}

// BackupCreation is a checked backup whose row is made; Run writes it.
type BackupCreation struct {
	s    *Service
	in   *inst
	name string // the instance's, when the backup was asked for
	row  store.InstanceBackup
	done bool
}

// Name is the backup's name.
func (c *BackupCreation) Name() string { return c.row.Name }

// CreateBackup checks a backup request and records the backup as being
// made, so bad input is answered at once; Run then writes it (in an
// operation). The caller must call Run.
func (s *Service) CreateBackup(ctx context.Context, name string, req BackupRequest) (*BackupCreation, error) {
	if err := s.allow(ctx, name, canManageBackups); err != nil {
		return nil, err
	}
	if err := project.AllowBackup(project.From(ctx)); err != nil {
		return nil, err
	}
	if s.cfg.BackupDir == "" {
		return nil, errdefs.NotImplemented("backups: this daemon has no backup directory")
	}
	in, err := s.lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	if req.Compression == "" {
		req.Compression = backup.CompressionGzip
	}
	if _, err := backup.NewWriter(io.Discard, req.Compression); err != nil {
		return nil, fmt.Errorf("compression_algorithm: %w", err)
	}
	rec, _, _ := s.snapshot(in)
	rows, err := s.cfg.DB.ListInstanceBackups(ctx, rec.ID)
	if err != nil {
		return nil, err
	}
	if req.Name == "" {
		// LXD's default, backupN with N one past the highest: the rule
		// of a snapshot pattern's %d.
		names := make([]string, 0, len(rows))
		for _, b := range rows {
			names = append(names, b.Name)
		}
		if req.Name, err = snapshotpolicy.Name("backup%d", nowUTC(), names); err != nil {
			return nil, err
		}
	}
	if err := validBackupName(req.Name); err != nil {
		return nil, err
	}
	if req.OptimizedStorage {
		info, err := s.cfg.Storage.BackupBackend(ctx, rec.ID)
		if err != nil {
			return nil, err
		}
		if !info.Optimized {
			s.log.Info("optimized backup asked: this root is written as trees", "instance", name, "backup", req.Name, "driver", info.Driver, "type", rec.Type)
			req.OptimizedStorage = false
		}
	}
	row := store.InstanceBackup{InstanceID: rec.ID, Name: req.Name, CreatedAt: nowUTC(), ExpiresAt: req.ExpiresAt,
		InstanceOnly: req.InstanceOnly, OptimizedStorage: req.OptimizedStorage, Compression: req.Compression, State: "pending"}
	if err := s.cfg.DB.CreateInstanceBackup(ctx, &row); err != nil {
		if errors.Is(err, errdefs.ErrConflict) {
			return nil, errdefs.Conflict("backup %q of instance %q already exists", req.Name, name)
		}
		return nil, err
	}
	return &BackupCreation{s: s, in: in, name: name, row: row}, nil
}

// Run writes the backup's tarball. On failure, its row and file go.
func (c *BackupCreation) Run(ctx context.Context) (err error) {
	if c.done {
		return errors.New("backup already ran")
	}
	c.done = true
	s, in := c.s, c.in
	path := s.backupPath(c.row.InstanceID, c.row.ID)
	defer func() {
		if err == nil {
			return
		}
		if derr := s.dropBackup(context.WithoutCancel(ctx), c.row.InstanceID, c.row); derr != nil {
			s.log.Error("remove failed backup", "instance", c.name, "backup", c.row.Name, "err", derr)
		}
		err = fmt.Errorf("backup %s: %w", c.name, err)
	}()
	in.op.Lock()
	defer in.op.Unlock()
	s.mu.RLock()
	gone := in.deleted || in.rec.ID != c.row.InstanceID
	s.mu.RUnlock()
	if gone {
		return notFound(c.name)
	}
	rec, status, _ := s.snapshot(in)
	idx, cfg, err := s.backupIndex(ctx, rec, c.row.InstanceOnly, c.row.OptimizedStorage)
	if err != nil {
		return err
	}
	yml, err := backup.MarshalConfig(cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	w, err := backup.NewWriter(bw, c.row.Compression)
	if err != nil {
		return err
	}
	if err := w.WriteIndex(idx); err != nil {
		return err
	}
	req := storage.ExportRequest{Type: idx.Type, Snapshots: idx.Snapshots, Config: yml, Optimized: idx.Optimized}
	if status == StatusRunning {
		// A paused container or VM does not change while its root is
		// read: the backup is one point in time.
		req.Quiesce = func(ctx context.Context, read func(context.Context) error) error {
			return s.whileFrozen(ctx, rec, read)
		}
	}
	if err := s.cfg.Storage.ExportRoot(ctx, rec.ID, w, req); err != nil {
		_ = w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	// Not synced, as tar and LXD do not: a daemon killed from here keeps
	// the written file (the page cache holds it); a host that loses power
	// before writeback may leave it cut short, and an import of a cut
	// tarball is refused as truncated, never half-read. A sync of 1 GiB
	// cost a second, more than the rest of an export.
	if err := f.Close(); err != nil {
		return err
	}
	c.row.State = "created"
	if err := s.cfg.DB.UpdateInstanceBackup(ctx, c.row); err != nil {
		return err
	}
	s.cfg.Events.Lifecycle(ctx, "instance-backup-created", backupEntity(rec.Project, rec.Name, c.row.Name), nil)
	s.log.Info("backup created", "instance", rec.Name, "backup", c.row.Name, "compression", c.row.Compression)
	return nil
}

// backupIndex is a backup's index and backup.yaml, from the instance's
// record and its snapshots' (none when instanceOnly), optimized when
// asked and the root can be.
func (s *Service) backupIndex(ctx context.Context, rec store.Instance, instanceOnly, optimized bool) (*backup.Index, *backup.Config, error) {
	info, err := s.cfg.Storage.BackupBackend(ctx, rec.ID)
	if err != nil {
		return nil, nil, err
	}
	driverName, pool := info.Driver, info.Pool
	optimized = optimized && info.Optimized
	cfg, devs, err := s.expanded(rec)
	if err != nil {
		return nil, nil, err
	}
	typ := backup.TypeContainer
	content := "filesystem"
	if Type(rec.Type) == TypeVM {
		typ, content = backup.TypeVM, "block"
	}
	bc := &backup.Config{
		Instance: &backup.Instance{Name: rec.Name, Type: typ, Architecture: rec.Architecture, Description: rec.Description,
			Config: cloneMap(rec.Config), Devices: cloneDevices(rec.Devices), Profiles: append([]string{}, rec.Profiles...),
			Ephemeral: rec.Ephemeral, CreatedAt: rec.CreatedAt, LastUsedAt: rec.LastUsedAt,
			ExpandedConfig: cfg, ExpandedDevices: devs},
		Pool:   &backup.Pool{Name: pool, Driver: driverName, Config: map[string]string{}},
		Volume: &backup.Volume{Name: rec.Name, Type: typ, ContentType: content, Config: map[string]string{}, CreatedAt: rec.CreatedAt},
	}
	idx := &backup.Index{Name: rec.Name, Backend: driverName, Pool: pool, Type: typ, Config: bc,
		Optimized: optimized, OptimizedHeader: optimized}
	if !instanceOnly {
		rows, err := s.cfg.DB.ListInstanceSnapshots(ctx, rec.ID)
		if err != nil {
			return nil, nil, err
		}
		for _, sn := range rows {
			view := s.snapshotOf(rec, sn)
			idx.Snapshots = append(idx.Snapshots, sn.Name)
			bc.Snapshots = append(bc.Snapshots, &backup.Snapshot{Name: sn.Name, Architecture: rec.Architecture,
				Config: cloneMap(sn.Config), Devices: cloneDevices(sn.Devices), Profiles: append([]string{}, sn.Profiles...),
				Ephemeral: sn.Ephemeral, Stateful: false, CreatedAt: sn.CreatedAt, ExpiresAt: sn.ExpiresAt,
				LastUsedAt: sn.CreatedAt, ExpandedConfig: view.ExpandedConfig, ExpandedDevices: view.ExpandedDevices})
		}
	}
	if optimized {
		// Send streams hold the ids as they are on disk.
		backup.SetLastIDMap(bc, idmapJSON(info.IDMap))
	} else {
		backup.MarkUnshifted(bc)
	}
	return idx, bc, nil
}

// ImportBackup makes a new instance from a backup tarball read from r
// and returns its name. A tarball that is not a whole, well-formed
// backup, or that this daemon cannot hold (its pool, its type, its
// config), is an invalid-argument error and nothing is left.
func (s *Service) ImportBackup(ctx context.Context, r io.Reader, opts ImportOptions) (string, error) {
	if err := s.allowCreate(ctx); err != nil {
		return "", err
	}
	br, err := backup.Open(r)
	if err != nil {
		return "", err
	}
	defer br.Close()
	plan, err := s.planImport(ctx, br.Index, opts)
	if err != nil {
		return "", err
	}
	pcfg, pdevs, err := s.expanded(plan.rec)
	if err != nil {
		return "", err
	}
	if err := s.checkProjectRules(ctx, Type(plan.rec.Type), pcfg, pdevs); err != nil {
		return "", fmt.Errorf("backup: %w", err)
	}
	quota, err := s.reserve(ctx, plan.rec.Project, s.usageOf(Type(plan.rec.Type), pcfg, pdevs))
	if err != nil {
		return "", err
	}
	defer quota.end() // a no-op once the instance is registered
	name, err := s.reserveName(plan.rec.Project, plan.rec.Name)
	if err != nil {
		return "", err
	}
	defer s.releaseName(ref{plan.rec.Project, name})
	rec := plan.rec
	s.profileMu.Lock()
	locked := true
	unlockProfiles := func() {
		if locked {
			locked = false
			s.profileMu.Unlock()
		}
	}
	defer unlockProfiles()
	if err := s.checkWithProfiles(Type(rec.Type), rec.Config, profileRefs(rec)); err != nil {
		return "", err
	}
	if err := s.cfg.DB.CreateInstance(ctx, &rec); err != nil {
		return "", fmt.Errorf("import %s: %w", rec.Name, err)
	}
	in := &inst{rec: rec, status: StatusStopped}
	in.op.Lock()
	defer in.op.Unlock()
	s.mu.Lock()
	s.byName[ref{rec.Project, rec.Name}] = in
	s.byRuntime[runtimeID(rec.ID)] = in
	delete(s.reserved, ref{rec.Project, rec.Name})
	quota.endLocked() // counted as an instance from here on
	s.mu.Unlock()
	unlockProfiles()
	if err := s.importRoot(ctx, in, rec, plan, br); err != nil {
		if derr := s.deleteLocked(context.WithoutCancel(ctx), in, true); derr != nil {
			s.log.Error("roll back failed import", "instance", rec.Name, "err", derr)
		}
		return "", fmt.Errorf("import %s: %w", rec.Name, err)
	}
	s.cfg.Events.Lifecycle(ctx, "instance-created", instanceEntity(rec.Project, rec.Name), map[string]any{"type": rec.Type})
	s.log.Info("instance imported", "instance", rec.Name, "snapshots", len(plan.snaps), "pool", plan.pool)
	return rec.Name, nil
}

// importPlan is an import checked against this daemon.
type importPlan struct {
	rec        store.Instance
	pool       string
	snaps      []store.InstanceSnapshot
	archiveMap backup.IDMap
}

// planImport checks what a backup's index asks for and builds the new
// instance's record, as a copy gets one: the backup's config and devices
// with a new identity (no volatile keys but the base image), its root on
// the pool asked for, the backup's or the default profile's.
func (s *Service) planImport(ctx context.Context, idx *backup.Index, opts ImportOptions) (*importPlan, error) {
	if idx.Config == nil || idx.Config.Instance == nil {
		return nil, errdefs.Invalid("backup: the index holds no instance config (a backup from LXD before 4.0 is not supported)")
	}
	src := idx.Config.Instance
	typ := TypeContainer
	if idx.Type == backup.TypeVM {
		typ = TypeVM
	}
	if s.cfg.Drivers[typ] == nil {
		return nil, errdefs.Invalid("backup: a %s cannot run on this daemon", typ)
	}
	name := opts.Name
	if name == "" {
		name = idx.Name
	}
	if err := validateName(name); err != nil {
		return nil, err
	}
	if src.Architecture != "" && src.Architecture != s.cfg.Architecture {
		return nil, errdefs.Invalid("backup: the instance is for %s and cannot run on this %s host", src.Architecture, s.cfg.Architecture)
	}
	vm := typ == TypeVM
	pool := opts.Pool
	switch {
	case pool != "":
		if err := s.cfg.Storage.CheckRoot(ctx, pool, vm, 0); err != nil {
			if errors.Is(err, errdefs.ErrNotFound) {
				return nil, errdefs.Invalid("storage pool %q not found", pool)
			}
			return nil, err
		}
	case idx.Pool != "" && s.cfg.Storage.CheckRoot(ctx, idx.Pool, vm, 0) == nil:
		pool = idx.Pool
	default:
		// LXD's rule: the default profile's root pool.
		s.mu.RLock()
		p, ok := s.profiles[profileRef(ctx, defaultProfile)]
		s.mu.RUnlock()
		r, err := rootDiskOf(p.Devices)
		if !ok || err != nil {
			return nil, errdefs.Invalid("backup: storage pool %q not found here and the default profile has no root disk", idx.Pool)
		}
		if err := s.cfg.Storage.CheckRoot(ctx, r.Pool, vm, 0); err != nil {
			return nil, errdefs.Invalid("backup: storage pool %q not found here, nor the default profile's %q", idx.Pool, r.Pool)
		}
		pool = r.Pool
	}
	config := map[string]string{}
	for k, v := range src.Config {
		if copiedKey(k) {
			config[k] = v
		}
	}
	devices := cloneDevices(src.Devices)
	profiles := append([]string{}, src.Profiles...)
	profileProject := project.From(ctx).Scope(project.FeatureProfiles)
	prefs := refsIn(profileProject, profiles)
	if err := s.checkProfiles(prefs); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := validateUserConfig(config, config); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := s.validateForType(typ, config); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	// The root disk goes to pool: the instance's own root device moved,
	// or one added over its profiles' when theirs is elsewhere.
	s.mu.RLock()
	views, err := s.profileViewsLocked(prefs)
	s.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	own, _ := rootDiskOf(devices)
	switch expanded, err := rootDiskOf(expandDevices(devices, views)); {
	case err != nil:
		return nil, fmt.Errorf("backup: %w", err)
	case own.Device != "" && devices[own.Device]["path"] == "/":
		devices[own.Device]["pool"] = pool
	case expanded.Pool != pool:
		dev := map[string]string{"type": "disk", "path": "/", "pool": pool}
		if expanded.Device != "" {
			for k, v := range expandDevices(devices, views)[expanded.Device] {
				if k != "pool" {
					dev[k] = v
				}
			}
		}
		name := expanded.Device
		if name == "" {
			name = "root"
		}
		devices[name] = dev
	}
	if err := s.validateDevices(ctx, devices, vm); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := s.checkWithProfiles(typ, config, prefs); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := s.checkRootWithProfiles(ctx, typ, devices, prefs); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	plan := &importPlan{pool: pool}
	if !vm {
		m, err := backup.ParseLXDIDMap(src.Config[backup.KeyLastIDMap])
		if err != nil {
			return nil, errdefs.Invalid("backup: %s: %v", backup.KeyLastIDMap, err)
		}
		plan.archiveMap = m
	}
	now := nowUTC()
	created := src.CreatedAt
	if created.IsZero() {
		created = now
	}
	// An import is a new instance: a new id, never the exported one's.
	rec := store.Instance{UID: cuid.New(), Project: project.Name(ctx), ProfileProject: profileProject, Name: name, Type: string(typ), Architecture: s.cfg.Architecture, Description: src.Description,
		Config: config, Devices: devices, Profiles: profiles, Ephemeral: src.Ephemeral, CreatedAt: created, LastUsedAt: time.Time{}}
	rec.Config[keyUUID] = newUUID()
	s.setIdmapKeys(&rec)
	rec.Config[keyCreating] = creatingImport
	plan.rec = rec
	byName := map[string]*backup.Snapshot{}
	for _, sn := range idx.Config.Snapshots {
		if sn != nil {
			byName[sn.Name] = sn
		}
	}
	for _, n := range idx.Snapshots {
		sn := store.InstanceSnapshot{Name: n, Config: cloneMap(config), Devices: cloneDevices(devices),
			Profiles: append([]string{}, profiles...), CreatedAt: now}
		if b := byName[n]; b != nil {
			sn.Config, sn.Devices, sn.Profiles = cloneMap(b.Config), cloneDevices(b.Devices), append([]string{}, b.Profiles...)
			sn.Ephemeral, sn.CreatedAt, sn.ExpiresAt = b.Ephemeral, b.CreatedAt, b.ExpiresAt
			if sn.Config == nil {
				sn.Config = map[string]string{}
			}
			if sn.Devices == nil {
				sn.Devices = map[string]map[string]string{}
			}
			// The snapshot's root device too lives on the new pool.
			if r, err := rootDiskOf(sn.Devices); err == nil && r.Device != "" {
				sn.Devices[r.Device]["pool"] = pool
			}
		}
		plan.snaps = append(plan.snaps, sn)
	}
	return plan, nil
}

// importRoot makes the imported instance's root and snapshots from the
// archive, then its snapshot records, and clears keyCreating.
func (s *Service) importRoot(ctx context.Context, in *inst, rec store.Instance, plan *importPlan, br *backup.Reader) error {
	cfg, devs, err := s.expanded(rec)
	if err != nil {
		return err
	}
	r, err := rootDiskOf(devs)
	if err != nil {
		return err
	}
	req := storage.ImportRequest{Root: s.rootRequest(rec, cfg, r), ArchiveMap: plan.archiveMap}
	for _, sn := range plan.snaps {
		req.Snapshots = append(req.Snapshots, storage.ImportSnapshot{Name: sn.Name, ExpiresAt: sn.ExpiresAt})
	}
	if err := s.cfg.Storage.ImportRoot(ctx, req, br); err != nil {
		return err
	}
	for _, sn := range plan.snaps {
		sn.InstanceID = rec.ID
		if err := s.cfg.DB.CreateInstanceSnapshot(ctx, &sn); err != nil {
			return err
		}
	}
	return s.updateRecord(ctx, in, func(r *store.Instance) { delete(r.Config, keyCreating) })
}

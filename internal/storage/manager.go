package storage

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/storage/drivers"
	"github.com/hangar-dev/hangar/internal/store"
)

// DefaultPool is the pool made on first start and named by the default
// profile's root disk.
const DefaultPool = "default"

// Store is the persistence the manager needs (*store.Store).
type Store interface {
	CreateStoragePool(ctx context.Context, p *store.StoragePool) error
	GetStoragePool(ctx context.Context, name string) (store.StoragePool, error)
	ListStoragePools(ctx context.Context) ([]store.StoragePool, error)
	UpdateStoragePool(ctx context.Context, p store.StoragePool) error
	DeleteStoragePool(ctx context.Context, name string) error
	CreateStorageVolume(ctx context.Context, v *store.StorageVolume) error
	GetStorageVolume(ctx context.Context, pool, project, typ, name string) (store.StorageVolume, error)
	ListStorageVolumes(ctx context.Context, pool string) ([]store.StorageVolume, error)
	ListProjectCustomVolumes(ctx context.Context, project string) ([]store.StorageVolume, error)
	UpdateStorageVolume(ctx context.Context, v store.StorageVolume) error
	DeleteStorageVolume(ctx context.Context, id int64) error
	GetInstanceVolume(ctx context.Context, instanceID int64) (store.StorageVolume, error)
	GetStorageVolumeByDisk(ctx context.Context, pool, typ, content, diskName string) (store.StorageVolume, error)
	ListVolumeSnapshots(ctx context.Context, parentID int64) ([]store.StorageVolume, error)
	RenameVolumeSnapshots(ctx context.Context, parentID int64, newParent string) error
	Counter(ctx context.Context, name string) (uint64, error)
	SetCounter(ctx context.Context, name string, v uint64) error
}

// Images is what pools ask of the image catalogue (*image.Service).
type Images interface {
	// UnpackTree writes an image's root filesystem into dir, shifted
	// for idmap when not nil.
	UnpackTree(ctx context.Context, fp string, idmap *driver.IDMap, dir string) error
	// Disk is a virtual-machine disk image's file and format; ok is
	// false for an image that is a root filesystem.
	Disk(ctx context.Context, fp string) (path, format string, ok bool, err error)
}

// Emitter publishes lifecycle events.
type Emitter interface {
	Lifecycle(ctx context.Context, action string, e event.Entity, meta map[string]any)
}

// Config wires a Manager.
type Config struct {
	Store  Store
	Images Images
	// Dir holds one directory per pool (DataDir/storage-pools).
	Dir string
	// Users names who uses a pool (volume "") or one custom volume on it,
	// as "instances/NAME" and "profiles/NAME"; the core provides it.
	// Those the caller may not see are left out: the manager asks as the
	// daemon (auth.AsDaemon) when it needs them all.
	Users func(ctx context.Context, pool, volume string) ([]string, error)
	// Authorizer checks every call an edge makes (authz.go); nil allows
	// all, for this package's tests.
	Authorizer Authorizer
	// Quota checks custom volumes' sizes against their project's
	// limits.disk; nil: no limits (tests).
	Quota Quota
	// IDMap is the map unprivileged containers share: a custom
	// filesystem volume not security.shifted is owned by its root.
	IDMap  driver.IDMap
	Events Emitter
	Log    *slog.Logger
	// Tools are the programs VM disks are made with; empty finds them
	// in PATH.
	QEMUImg, Mkfs string
}

// Manager owns the pools and their volumes. Its methods are safe for
// concurrent use: pool changes take mu; work on one volume takes that
// volume's lock (locks), so volumes of different instances never wait on
// each other.
type Manager struct {
	cfg Config

	mu    sync.RWMutex
	pools map[string]*pool

	locks keyedLocks
	// quotaMu orders limits.disk checks with the volume writes they
	// guard.
	quotaMu sync.Mutex
}

// pool is a loaded pool: its record and its driver.
type pool struct {
	rec    store.StoragePool
	drv    drivers.Driver
	status string // "Created" or "Unavailable"
	err    error  // why it is unavailable
}

// New makes a Manager; Start loads and mounts the pools.
func New(cfg Config) *Manager {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Users == nil {
		cfg.Users = func(context.Context, string, string) ([]string, error) { return nil, nil }
	}
	return &Manager{cfg: cfg, pools: map[string]*pool{}}
}

func (m *Manager) emit(ctx context.Context, action, kind, name string, meta map[string]any) {
	if m.cfg.Events != nil {
		m.cfg.Events.Lifecycle(ctx, action, event.Entity{Kind: kind, Name: name}, meta)
	}
}

func (m *Manager) poolDir(name string) string { return filepath.Join(m.cfg.Dir, name) }

func (m *Manager) load(rec store.StoragePool) (drivers.Driver, error) {
	return drivers.Load(rec.Driver, drivers.Pool{Name: rec.Name, Config: rec.Config,
		Dir: m.poolDir(rec.Name), Log: m.cfg.Log.With("pool", rec.Name)})
}

// Start mounts every pool and reconciles its volumes with the records;
// on the first start ever it makes the pool "default" (dir) and says so,
// so the caller can give the default profile its root disk. A pool that
// cannot be mounted is marked unavailable; the others work.
func (m *Manager) Start(ctx context.Context) (created bool, err error) {
	if err := os.MkdirAll(m.cfg.Dir, 0o711); err != nil {
		return false, fmt.Errorf("storage: %w", err)
	}
	m.sweepViews()
	recs, err := m.cfg.Store.ListStoragePools(ctx)
	if err != nil {
		return false, err
	}
	for _, rec := range recs {
		if rec.State == "pending" {
			// A create killed half-way: undo it.
			m.undoPendingPool(ctx, rec)
			continue
		}
		p := &pool{rec: rec, status: "Created"}
		if p.drv, err = m.load(rec); err == nil {
			err = p.drv.Mount(ctx)
		}
		if err != nil {
			m.cfg.Log.Error("storage pool unavailable", "pool", rec.Name, "err", err)
			p.status, p.err = "Unavailable", err
		}
		m.mu.Lock()
		m.pools[rec.Name] = p
		m.mu.Unlock()
		if p.err == nil {
			if err := m.reconcile(ctx, p); err != nil {
				m.cfg.Log.Error("reconcile storage pool", "pool", rec.Name, "err", err)
			}
		}
	}
	n, err := m.cfg.Store.Counter(ctx, counterDefaultMade)
	if err != nil || n > 0 {
		return false, err
	}
	if len(recs) == 0 {
		if err := m.CreatePool(ctx, CreatePoolRequest{Name: DefaultPool, Driver: "dir"}); err != nil {
			return false, fmt.Errorf("create default storage pool: %w", err)
		}
		created = true
	}
	return created, m.cfg.Store.SetCounter(ctx, counterDefaultMade, 1)
}

// counterDefaultMade records that the default pool was made once, so a
// user who deletes it does not see it come back.
const counterDefaultMade = "storage.default_made"

// undoPendingPool removes what a pool create killed half-way made.
func (m *Manager) undoPendingPool(ctx context.Context, rec store.StoragePool) {
	if drv, err := m.load(rec); err == nil {
		if err := drv.Delete(ctx); err != nil {
			m.cfg.Log.Warn("remove half-made storage pool", "pool", rec.Name, "err", err)
		}
	}
	if err := m.cfg.Store.DeleteStoragePool(ctx, rec.Name); err != nil {
		m.cfg.Log.Error("forget half-made storage pool", "pool", rec.Name, "err", err)
		return
	}
	m.cfg.Log.Info("removed a storage pool whose create did not finish", "pool", rec.Name)
}

// reconcile finishes or undoes volume work a killed daemon left: pending
// volumes and those being deleted are removed with their records, and
// volumes on disk without a record are removed.
func (m *Manager) reconcile(ctx context.Context, p *pool) error {
	recs, err := m.cfg.Store.ListStorageVolumes(ctx, p.rec.Name)
	if err != nil {
		return err
	}
	known := map[drivers.Volume]bool{}
	for _, v := range recs {
		dv := diskVolume(v)
		if v.State == "created" {
			known[dv] = true
			if !volumeExists(p, dv) {
				// Nothing to repair it from: said loudly, kept, so its
				// instance's start fails with a clear error.
				m.cfg.Log.Error("volume missing from its pool", "pool", p.rec.Name, "type", v.Type, "volume", v.Name, "path", p.drv.Path(dv))
			}
			continue
		}
		if v.State == "pending" && v.Config[keyAdopting] == "true" && adopted(p, dv) {
			// Files moved in from before pools: the only copy, kept.
			delete(v.Config, keyAdopting)
			v.State = "created"
			if err := m.cfg.Store.UpdateStorageVolume(ctx, v); err != nil {
				return err
			}
			known[dv] = true
			continue
		}
		if err := p.drv.DeleteVolume(ctx, dv); err != nil {
			m.cfg.Log.Error("remove half-made volume", "pool", p.rec.Name, "volume", v.Name, "err", err)
			continue
		}
		if err := m.cfg.Store.DeleteStorageVolume(ctx, v.ID); err != nil {
			return err
		}
		m.cfg.Log.Info("removed a volume whose create or delete did not finish", "pool", p.rec.Name, "type", v.Type, "volume", v.Name, "state", v.State)
	}
	// What a killed create or delete left under temporary names.
	if err := p.drv.Sweep(ctx); err != nil {
		m.cfg.Log.Warn("sweep storage pool", "pool", p.rec.Name, "err", err)
	}
	onDisk, err := p.drv.Volumes(ctx)
	if err != nil {
		return err
	}
	for _, dv := range onDisk {
		if known[dv] {
			continue
		}
		if err := p.drv.DeleteVolume(ctx, dv); err != nil {
			m.cfg.Log.Error("remove unrecorded volume", "pool", p.rec.Name, "volume", dv.Name, "err", err)
			continue
		}
		m.cfg.Log.Info("removed a volume with no record", "pool", p.rec.Name, "type", dv.Type, "volume", dv.Name)
	}
	return nil
}

func volumeExists(p *pool, dv drivers.Volume) bool {
	_, err := os.Lstat(p.drv.Path(dv))
	return err == nil
}

// diskVolume is the driver's name for a recorded volume.
func diskVolume(v store.StorageVolume) drivers.Volume {
	return drivers.Volume{Type: drivers.VolumeType(v.Type), Name: v.DiskName, Content: drivers.ContentType(v.Content)}
}

// get returns a loaded, usable pool.
func (m *Manager) get(name string) (*pool, error) {
	m.mu.RLock()
	p := m.pools[name]
	m.mu.RUnlock()
	if p == nil {
		return nil, errdefs.NotFound("storage pool %q not found", name)
	}
	if p.err != nil {
		return nil, errdefs.Conflict("storage pool %q is unavailable: %v", name, p.err)
	}
	return p, nil
}

// keyedLocks is a mutex per key, made on first use and dropped when no
// one holds or waits for it.
type keyedLocks struct {
	mu sync.Mutex
	m  map[string]*keyedLock
}

type keyedLock struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedLocks) lock(key string) func() {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedLock{}
	}
	l := k.m[key]
	if l == nil {
		l = &keyedLock{}
		k.m[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}

package storage

import (
	"context"
	"errors"
	"fmt"
	"github.com/hangar-dev/hangar/internal/auth"
	"maps"
	"regexp"
	"sort"
	"strings"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/revert"
	"github.com/hangar-dev/hangar/internal/storage/drivers"
	"github.com/hangar-dev/hangar/internal/store"
)

// validName is a pool or custom volume name: it becomes a directory and a
// URL path segment.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

func checkName(kind, name string) error {
	if !validName.MatchString(name) || strings.HasSuffix(name, ".") {
		return errdefs.Invalid("%s name %q: 1 to 63 letters, digits, '-', '_' or '.', starting with a letter or digit and not ending with '.'", kind, name)
	}
	return nil
}

// Pools lists every pool, by name.
func (m *Manager) Pools(ctx context.Context) ([]Pool, error) {
	m.mu.RLock()
	names := make([]string, 0, len(m.pools))
	for n := range m.pools {
		if m.canViewPool(ctx, n) {
			names = append(names, n)
		}
	}
	m.mu.RUnlock()
	sort.Strings(names)
	out := make([]Pool, 0, len(names))
	for _, n := range names {
		p, err := m.Pool(ctx, n)
		if errors.Is(err, errdefs.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Pool returns one pool.
func (m *Manager) Pool(ctx context.Context, name string) (Pool, error) {
	if err := m.allowPool(ctx, name, auth.CanView); err != nil {
		return Pool{}, err
	}
	m.mu.RLock()
	p := m.pools[name]
	m.mu.RUnlock()
	if p == nil {
		return Pool{}, errdefs.NotFound("storage pool %q not found", name)
	}
	users, err := m.poolUsers(ctx, name)
	if err != nil {
		return Pool{}, err
	}
	return Pool{Name: p.rec.Name, Driver: p.rec.Driver, Description: p.rec.Description,
		Config: maps.Clone(p.rec.Config), Status: p.status, UsedBy: users}, nil
}

// poolUsers are the instances and profiles using a pool, then its custom
// volumes and images, as LXD lists them.
func (m *Manager) poolUsers(ctx context.Context, name string) ([]string, error) {
	users, err := m.cfg.Users(ctx, name, "")
	if err != nil {
		return nil, err
	}
	out := append([]string{}, users...)
	vols, err := m.cfg.Store.ListStorageVolumes(ctx, name)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, v := range vols {
		var u string
		switch v.Type {
		case string(drivers.TypeCustom):
			if !m.canViewVolume(ctx, Volume{Pool: name, Project: v.Project, Type: v.Type, Name: v.Name}) {
				continue // another project's, which the caller may not see
			}
			u = "storage-pools/" + name + "/volumes/custom/" + v.Name + projectQuery(v.Project)
		case string(drivers.TypeImage):
			u = "images/" + v.Name
		default:
			continue
		}
		if !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	return out, nil
}

// CreatePool makes a pool: its record (pending), its backing store, then
// the record with the config the driver filled in (created). A daemon
// killed in between finds the pending record at its next start and
// removes what was made.
func (m *Manager) CreatePool(ctx context.Context, req CreatePoolRequest) error {
	if err := m.allowServer(ctx, auth.CanEdit); err != nil {
		return err
	}
	if err := checkName("storage pool", req.Name); err != nil {
		return err
	}
	if req.Config == nil {
		req.Config = map[string]string{}
	}
	if err := drivers.ValidatePoolConfig(req.Driver, req.Config); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pools[req.Name] != nil {
		return errdefs.Conflict("storage pool %q already exists", req.Name)
	}
	rec := store.StoragePool{Name: req.Name, Driver: req.Driver, Description: req.Description,
		Config: maps.Clone(req.Config), State: "pending"}
	drv, err := m.load(rec)
	if err != nil {
		return err
	}
	r := revert.New()
	defer r.Fail()
	if err := m.cfg.Store.CreateStoragePool(ctx, &rec); err != nil {
		return err
	}
	r.Add(func() {
		if err := m.cfg.Store.DeleteStoragePool(context.WithoutCancel(ctx), rec.Name); err != nil {
			m.cfg.Log.Error("forget failed storage pool", "pool", rec.Name, "err", err)
		}
	})
	cfg, err := drv.Create(ctx)
	if err != nil {
		return fmt.Errorf("create storage pool %q: %w", req.Name, err)
	}
	r.Add(func() {
		if err := drv.Delete(context.WithoutCancel(ctx)); err != nil {
			m.cfg.Log.Error("remove failed storage pool", "pool", rec.Name, "err", err)
		}
	})
	if err := drv.Mount(ctx); err != nil {
		return fmt.Errorf("mount storage pool %q: %w", req.Name, err)
	}
	rec.Config, rec.State = cfg, "created"
	// The driver saw the config it filled in only through Create: load it
	// again with what is recorded, as the next start will.
	if drv, err = m.load(rec); err != nil {
		return err
	}
	if err := m.cfg.Store.UpdateStoragePool(ctx, rec); err != nil {
		return err
	}
	r.Success()
	m.pools[rec.Name] = &pool{rec: rec, drv: drv, status: "Created"}
	m.cfg.Log.Info("storage pool created", "pool", rec.Name, "driver", rec.Driver)
	m.emit(ctx, "storage-pool-created", event.EntityStoragePool, rec.Name, nil)
	return nil
}

// UpdatePool replaces a pool's writable part (PUT): keys not given are
// unset, except those the driver filled in at create (source, size),
// which LXD keeps too.
func (m *Manager) UpdatePool(ctx context.Context, name string, put PoolPut) error {
	if err := m.allowPool(ctx, name, auth.CanEdit); err != nil {
		return err
	}
	return m.updatePool(ctx, name, put, true)
}

// PatchPool merges into a pool's writable part (PATCH).
func (m *Manager) PatchPool(ctx context.Context, name string, put PoolPut) error {
	if err := m.allowPool(ctx, name, auth.CanEdit); err != nil {
		return err
	}
	return m.updatePool(ctx, name, put, false)
}

// fixedPoolKeys cannot change once a pool exists.
var fixedPoolKeys = map[string]bool{"source": true}

func (m *Manager) updatePool(ctx context.Context, name string, put PoolPut, replace bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.pools[name]
	if p == nil {
		return errdefs.NotFound("storage pool %q not found", name)
	}
	next := maps.Clone(p.rec.Config)
	if replace {
		next = map[string]string{}
		for k := range fixedPoolKeys {
			if v, ok := p.rec.Config[k]; ok {
				next[k] = v
			}
		}
		if v, ok := p.rec.Config["size"]; ok {
			next["size"] = v
		}
	}
	for k, v := range put.Config {
		if v == "" {
			delete(next, k)
			continue
		}
		next[k] = v
	}
	if err := drivers.ValidatePoolConfig(p.rec.Driver, next); err != nil {
		return err
	}
	changed := map[string]string{}
	for k, v := range next {
		if p.rec.Config[k] != v {
			changed[k] = v
		}
	}
	for k := range p.rec.Config {
		if _, ok := next[k]; !ok {
			changed[k] = ""
		}
	}
	for k := range changed {
		if fixedPoolKeys[k] {
			return errdefs.Invalid("storage pool %q: %s cannot change once the pool exists", name, k)
		}
	}
	if len(changed) > 0 {
		if p.err != nil {
			return errdefs.Conflict("storage pool %q is unavailable: %v", name, p.err)
		}
		if err := p.drv.Update(ctx, changed); err != nil {
			return fmt.Errorf("update storage pool %q: %w", name, err)
		}
	}
	rec := p.rec
	rec.Config = next
	if put.Description != "" || replace {
		rec.Description = put.Description
	}
	if err := m.cfg.Store.UpdateStoragePool(ctx, rec); err != nil {
		return err
	}
	p.rec = rec
	if len(changed) > 0 {
		if drv, err := m.load(rec); err == nil {
			p.drv = drv
		}
	}
	m.emit(ctx, "storage-pool-updated", event.EntityStoragePool, name, nil)
	return nil
}

// DeletePool removes a pool no instance, profile or custom volume uses;
// its image volumes go with it.
func (m *Manager) DeletePool(ctx context.Context, name string) error {
	if err := m.allowPool(ctx, name, auth.CanDelete); err != nil {
		return err
	}
	users, shown, err := m.users(ctx, name, "")
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return errdefs.Conflict("storage pool %q is in use by %s", name, inUse(users, shown))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.pools[name]
	if p == nil {
		return errdefs.NotFound("storage pool %q not found", name)
	}
	vols, err := m.cfg.Store.ListStorageVolumes(ctx, name)
	if err != nil {
		return err
	}
	var held []string
	for _, v := range vols {
		if v.Type != string(drivers.TypeImage) {
			held = append(held, v.Type+"/"+v.Name)
		}
	}
	if len(held) > 0 {
		return errdefs.Conflict("storage pool %q still has volumes: %s", name, strings.Join(held, ", "))
	}
	if p.err == nil {
		for _, v := range vols {
			if err := m.deleteVolumeRecord(ctx, p, v); err != nil {
				return err
			}
		}
	}
	drv := p.drv
	if drv == nil {
		if drv, err = m.load(p.rec); err != nil {
			return err
		}
	}
	if err := drv.Delete(ctx); err != nil {
		return fmt.Errorf("delete storage pool %q: %w", name, err)
	}
	if p.err != nil {
		// An unavailable pool's image caches cannot be reached to be
		// removed: their records go with the pool, which the store
		// would otherwise refuse to forget.
		for _, v := range vols {
			if err := m.cfg.Store.DeleteStorageVolume(ctx, v.ID); err != nil {
				return err
			}
		}
	}
	if err := m.cfg.Store.DeleteStoragePool(ctx, name); err != nil {
		return err
	}
	delete(m.pools, name)
	m.cfg.Log.Info("storage pool deleted", "pool", name)
	m.emit(ctx, "storage-pool-deleted", event.EntityStoragePool, name, nil)
	return nil
}

// PoolResources is a pool's space, read from its filesystem.
func (m *Manager) PoolResources(ctx context.Context, name string) (Resources, error) {
	if err := m.allowPool(ctx, name, auth.CanView); err != nil {
		return Resources{}, err
	}
	p, err := m.get(name)
	if err != nil {
		return Resources{}, err
	}
	u, err := p.drv.Usage(ctx)
	if err != nil {
		return Resources{}, fmt.Errorf("storage pool %q: %w", name, err)
	}
	return Resources{Space: u}, nil
}

// deleteVolumeRecord removes a volume the way a crash can always finish:
// mark it deleting, remove it from the pool, drop the record.
func (m *Manager) deleteVolumeRecord(ctx context.Context, p *pool, v store.StorageVolume) error {
	state := v.State
	v.State = "deleting"
	if err := m.cfg.Store.UpdateStorageVolume(ctx, v); err != nil {
		return err
	}
	if err := p.drv.DeleteVolume(ctx, diskVolume(v)); err != nil {
		// A delete the driver refused before it began (the volume is
		// mounted) leaves the volume whole: it stays as it was, not
		// hidden and then removed by the next start's reconciliation.
		if volumeExists(p, diskVolume(v)) {
			v.State = state
			if uerr := m.cfg.Store.UpdateStorageVolume(context.WithoutCancel(ctx), v); uerr != nil {
				m.cfg.Log.Error("restore volume after a refused delete", "pool", p.rec.Name, "volume", v.Name, "err", uerr)
			}
		}
		return fmt.Errorf("delete volume %s/%s: %w", v.Type, v.Name, err)
	}
	return m.cfg.Store.DeleteStorageVolume(ctx, v.ID)
}

// PoolExists says whether a pool exists (usable or not).
func (m *Manager) PoolExists(ctx context.Context, name string) error {
	_, err := m.pool(name)
	return err
}

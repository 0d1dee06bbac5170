package daemon

import (
	"context"
	"log/slog"
	"maps"
	"path/filepath"

	"github.com/hangar-dev/hangar/internal/image"
	"github.com/hangar-dev/hangar/internal/instance"
	"github.com/hangar-dev/hangar/internal/storage"
	"github.com/hangar-dev/hangar/internal/store"
)

// newStorage builds the storage manager; users names who uses a pool or
// volume (the instance service, set once it exists).
func newStorage(dataDir string, st *store.Store, images *image.Service, users func(ctx context.Context, pool, volume string) ([]string, error), authz storage.Authorizer, quota storage.Quota, events storage.Emitter, log *slog.Logger) *storage.Manager {
	return storage.New(storage.Config{
		Store:      st,
		Images:     images,
		Dir:        filepath.Join(dataDir, "storage-pools"),
		Users:      users,
		Authorizer: authz,
		Quota:      quota,
		IDMap:      instance.DefaultIDMap,
		Events:     events,
		Log:        log.With("component", "storage"),
	})
}

// legacyRoots says where instances made before storage pools existed keep
// their roots: the runtimes' directories as they were laid out then.
func legacyRoots(dataDir string) func(runtimeID string, vm bool) storage.LegacyRoot {
	return func(id string, vm bool) storage.LegacyRoot {
		if vm {
			return storage.LegacyRoot{Disk: filepath.Join(dataDir, "vms", id, "root.qcow2")}
		}
		dir := filepath.Join(dataDir, "containers", id)
		return storage.LegacyRoot{Upper: filepath.Join(dir, "upper"), Work: filepath.Join(dir, "work")}
	}
}

// ensureDefaultRoot gives the default profile the root disk LXD clients
// expect (root: disk at / on pool default) when it has no root disk.
func ensureDefaultRoot(ctx context.Context, svc *instance.Service) error {
	return addDefaultDevice(ctx, svc, "root", map[string]string{"type": "disk", "path": "/", "pool": storage.DefaultPool},
		func(d map[string]string) bool { return d["type"] == "disk" && d["path"] == "/" })
}

// addDefaultDevice adds dev as name to the default profile, unless a
// device there already is one (has) or holds the name.
func addDefaultDevice(ctx context.Context, svc *instance.Service, name string, dev map[string]string, has func(map[string]string) bool) error {
	p, err := svc.Profile(ctx, "default")
	if err != nil {
		return err
	}
	for _, d := range p.Devices {
		if has(d) {
			return nil
		}
	}
	if _, ok := p.Devices[name]; ok {
		return nil // a device of the user's own has the name
	}
	devs := maps.Clone(p.Devices)
	if devs == nil {
		devs = map[string]map[string]string{}
	}
	devs[name] = dev
	return svc.UpdateProfile(ctx, "default", instance.ProfilePut{Description: p.Description, Config: p.Config, Devices: devs}, nil)
}

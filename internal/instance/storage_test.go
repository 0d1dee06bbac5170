package instance

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/storage"
)

// fakeStorage keeps roots in memory: pool "default" (no quotas) and
// "quota" (quotas) exist; Root gives a bind of /roots/ID.
type fakeStorage struct {
	mu      sync.Mutex
	roots   map[int64]storage.RootRequest
	resized map[int64]int64
	// snaps are each root's snapshots by name, oldest first; restored
	// is the snapshot each root was last restored from.
	snaps    map[int64][]string
	restored map[int64]string
	// beforeCopy runs as CopyRoot begins (a test's crash point).
	beforeCopy func()
	// firmware makes every VM root a UEFI disk.
	firmware bool
	// quiesced: the last ExportRoot was given a Quiesce (backup_test.go).
	quiesced bool
}

func (f *fakeStorage) CheckRoot(ctx context.Context, pool string, vm bool, size int64) error {
	switch pool {
	case "default":
		if size > 0 && !vm {
			return errdefs.Invalid("size: storage pool %q cannot limit a container's root", pool)
		}
		return nil
	case "quota":
		return nil
	}
	return errdefs.NotFound("storage pool %q not found", pool)
}

func (f *fakeStorage) CreateRoot(ctx context.Context, req storage.RootRequest) error {
	if err := f.CheckRoot(ctx, req.Pool, req.VM, req.Size); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.roots == nil {
		f.roots = map[int64]storage.RootRequest{}
	}
	f.roots[req.InstanceID] = req
	return nil
}

func (f *fakeStorage) Root(ctx context.Context, req storage.RootRequest) (driver.Root, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.roots[req.InstanceID]; !ok {
		return driver.Root{}, errdefs.NotFound("instance %d has no root volume", req.InstanceID)
	}
	if req.VM {
		return driver.Root{Disk: &driver.Disk{Name: "root", Path: "/roots/" + req.RuntimeID, Format: "raw"}, Firmware: f.firmware}, nil
	}
	return driver.Root{Mounts: []driver.Mount{{Type: "bind", Source: "/roots/" + req.RuntimeID}}}, nil
}

func (f *fakeStorage) HasRoot(ctx context.Context, id int64) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.roots[id]
	return ok, nil
}

func (f *fakeStorage) AdoptRoot(ctx context.Context, req storage.RootRequest, legacy storage.LegacyRoot) error {
	return f.CreateRoot(ctx, req)
}

func (f *fakeStorage) DeleteRoot(ctx context.Context, id int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.roots, id)
	return nil
}

func (f *fakeStorage) RenameRoot(ctx context.Context, id int64, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.roots[id]
	r.Name = name
	f.roots[id] = r
	return nil
}

func (f *fakeStorage) ResizeRoot(ctx context.Context, id int64, vm bool, size int64, grown bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.resized == nil {
		f.resized = map[int64]int64{}
	}
	f.resized[id] = size
	return nil
}

func TestRootDiskOf(t *testing.T) {
	type devs = map[string]map[string]string
	for _, tc := range []struct {
		name    string
		devs    devs
		want    rootDisk
		wantErr error
	}{
		{"none: the default pool", devs{}, rootDisk{Pool: storage.DefaultPool}, nil},
		{"root with size", devs{"root": {"type": "disk", "path": "/", "pool": "fast", "size": "2GiB"}}, rootDisk{Device: "root", Pool: "fast", Size: 2 << 30}, nil},
		{"other name", devs{"sys": {"type": "disk", "path": "/", "pool": "p"}, "data": {"type": "disk", "path": "/data", "source": "/x"}}, rootDisk{Device: "sys", Pool: "p"}, nil},
		{"no pool", devs{"root": {"type": "disk", "path": "/"}}, rootDisk{}, errdefs.ErrInvalidArgument},
		{"bad size", devs{"root": {"type": "disk", "path": "/", "pool": "p", "size": "huge"}}, rootDisk{}, errdefs.ErrInvalidArgument},
		{"two roots", devs{"a": {"type": "disk", "path": "/", "pool": "p"}, "b": {"type": "disk", "path": "/", "pool": "p"}}, rootDisk{}, errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rootDiskOf(tc.devs)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("rootDiskOf = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// TestRootLifecycle: a create makes the root on the root device's pool
// (a size the pool cannot hold is refused before anything is made); a
// start hands the runtime storage's root; a size change resizes; the pool
// cannot change; a rename follows; a delete removes it.
func TestRootLifecycle(t *testing.T) {
	s, drv, _, _ := newTestService(t)
	st := s.cfg.Storage.(*fakeStorage)
	ctx := context.Background()
	quota := map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "quota", "size": "1GiB"}}
	if _, err := s.Create(ctx, CreateRequest{Name: "c0", Source: Source{Type: SourceImage, Alias: "busybox"},
		Devices: map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "default", "size": "1GiB"}}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("a size on a pool without quotas: %v", err)
	}
	if _, err := s.Create(ctx, CreateRequest{Name: "c0", Source: Source{Type: SourceImage, Alias: "busybox"},
		Devices: map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "nope"}}}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("a missing pool: %v", err)
	}
	c, err := s.Create(ctx, CreateRequest{Name: "c1", Source: Source{Type: SourceImage, Alias: "busybox"}, Devices: quota})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(ctx); err != nil {
		t.Fatal(err)
	}
	rec, _, _ := s.snapshot(s.byName[ref{"default", "c1"}])
	req := st.roots[rec.ID]
	if req.Pool != "quota" || req.Size != 1<<30 || req.Image != fakeFP || req.IDMap == nil {
		t.Fatalf("root made as %+v", req)
	}
	if err := s.Start(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if got := drv.lastSpec().Root.Mounts; len(got) != 1 || got[0].Source != "/roots/"+runtimeID(rec.ID) {
		t.Fatalf("runtime got root %+v", got)
	}
	if st, err := s.State(ctx, "c1"); err != nil || st.Disk["root"] != (DiskState{Usage: 4096, Total: 1 << 30}) {
		t.Fatalf("state's disk %+v, %v", st.Disk, err)
	}
	put := func(devs map[string]map[string]string) error {
		return s.Update(ctx, "c1", Put{Config: rec.Config, Devices: devs, Profiles: rec.Profiles}, nil)
	}
	if err := put(map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "quota", "size": "2GiB"}}); err != nil {
		t.Fatal(err)
	}
	if st.resized[rec.ID] != 2<<30 {
		t.Fatalf("resized to %d", st.resized[rec.ID])
	}
	if err := put(map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "default"}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("pool change: %v", err)
	}
	if err := s.Stop(ctx, "c1", StopOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.Rename(ctx, "c1", "c2"); err != nil {
		t.Fatal(err)
	}
	if st.roots[rec.ID].Name != "c2" {
		t.Fatalf("root not renamed: %+v", st.roots[rec.ID])
	}
	if err := s.Delete(ctx, "c2"); err != nil {
		t.Fatal(err)
	}
	if _, ok := st.roots[rec.ID]; ok {
		t.Fatal("root outlived its instance")
	}
}

func (f *fakeStorage) RootUsage(ctx context.Context, id int64) (storage.Usage, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.roots[id]; !ok {
		return storage.Usage{}, false, errdefs.NotFound("instance %d has no root volume", id)
	}
	return storage.Usage{Used: 4096, Total: 1 << 30}, true, nil
}

package storage

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/storage/drivers"
	"github.com/hangar-dev/hangar/internal/store"
)

func poolNames(t *testing.T, e *env) []string {
	t.Helper()
	ps, err := e.m.Pools(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, p := range ps {
		out = append(out, p.Name+":"+p.Status)
	}
	return out
}

// TestStart: the pool default is made on the first start only; what a
// killed pool create left is removed; a pool that cannot be mounted is
// Unavailable and the others work.
func TestStart(t *testing.T) {
	tests := []struct {
		name string
		// before runs on a started env; then the daemon restarts.
		before func(t *testing.T, e *env)
		want   []string // pools after the restart, name:status
		after  func(t *testing.T, e *env)
	}{
		{
			name:   "a second start does not make default again",
			before: func(t *testing.T, e *env) {},
			want:   []string{"default:Created"},
			after: func(t *testing.T, e *env) {
				p, err := e.m.Pool(e.ctx, DefaultPool)
				if err != nil {
					t.Fatal(err)
				}
				if p.Driver != "dir" || p.Config["source"] != filepath.Join(e.poolsDir(), DefaultPool) {
					t.Errorf("default pool is %s on %q, want dir on the data dir", p.Driver, p.Config["source"])
				}
			},
		},
		{
			name: "a deleted default does not come back",
			before: func(t *testing.T, e *env) {
				if err := e.m.DeletePool(e.ctx, DefaultPool); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{},
			after: func(t *testing.T, e *env) {
				if exists(filepath.Join(e.poolsDir(), DefaultPool)) {
					t.Error("the deleted default pool's directory is back")
				}
			},
		},
		{
			name: "a pending pool is removed",
			before: func(t *testing.T, e *env) {
				// A create killed after the record and the directory.
				rec := store.StoragePool{Name: "half", Driver: "dir", Config: map[string]string{}, State: "pending"}
				if err := e.st.CreateStoragePool(e.ctx, &rec); err != nil {
					t.Fatal(err)
				}
				if err := os.MkdirAll(filepath.Join(e.poolsDir(), "half", "custom"), 0o711); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"default:Created"},
			after: func(t *testing.T, e *env) {
				if _, err := e.st.GetStoragePool(e.ctx, "half"); !errors.Is(err, errdefs.ErrNotFound) {
					t.Errorf("half-made pool's record: %v, want it gone", err)
				}
				if exists(filepath.Join(e.poolsDir(), "half")) {
					t.Error("half-made pool's directory left")
				}
			},
		},
		{
			name: "a btrfs pool whose create was killed before its record was complete",
			before: func(t *testing.T, e *env) {
				e.btrfsPool("half", map[string]string{"size": "200MiB"})
				// As the record was before the create's last update.
				rec, err := e.st.GetStoragePool(e.ctx, "half")
				if err != nil {
					t.Fatal(err)
				}
				rec.State, rec.Config = "pending", map[string]string{"size": "200MiB"}
				if err := e.st.UpdateStoragePool(e.ctx, rec); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"default:Created"},
			after: func(t *testing.T, e *env) {
				if _, err := e.st.GetStoragePool(e.ctx, "half"); !errors.Is(err, errdefs.ErrNotFound) {
					t.Errorf("half-made pool's record: %v, want it gone", err)
				}
				for _, p := range []string{filepath.Join(e.poolsDir(), "half"), filepath.Join(e.base, "data", "disks", "half.img")} {
					if exists(p) {
						t.Errorf("half-made pool's %s left", p)
					}
				}
				if ms := mountPoints(e.base); len(ms) != 0 {
					t.Errorf("left mounted: %v", ms)
				}
			},
		},
		{
			name: "a pool whose source vanished is unavailable while the others work",
			before: func(t *testing.T, e *env) {
				src := filepath.Join(e.base, "src")
				if err := os.Mkdir(src, 0o755); err != nil {
					t.Fatal(err)
				}
				e.dirPool("ext", map[string]string{"source": src})
				// An image cached there (its instance is gone).
				if err := e.m.CreateRoot(e.ctx, RootRequest{InstanceID: 1, RuntimeID: "r1", Name: "c1", Pool: "ext", Image: treeImage, IDMap: &testMap}); err != nil {
					t.Fatal(err)
				}
				if err := e.m.DeleteRoot(e.ctx, 1); err != nil {
					t.Fatal(err)
				}
				// The host loses the source: unmounted, then gone.
				if err := unix.Unmount(filepath.Join(e.poolsDir(), "ext"), 0); err != nil {
					t.Fatal(err)
				}
				if err := os.RemoveAll(src); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"default:Created", "ext:Unavailable"},
			after: func(t *testing.T, e *env) {
				err := e.m.CreateVolume(e.ctx, CreateVolumeRequest{Pool: "ext", Name: "v"})
				wantErr(t, "volume on the unavailable pool", err, errdefs.ErrConflict, `"ext" is unavailable`)
				_, err = e.m.PoolResources(e.ctx, "ext")
				wantErr(t, "resources of the unavailable pool", err, errdefs.ErrConflict, "unavailable")
				if err := e.m.CreateVolume(e.ctx, CreateVolumeRequest{Pool: DefaultPool, Name: "v"}); err != nil {
					t.Errorf("volume on default beside an unavailable pool: %v", err)
				}
				if _, err := e.m.PoolResources(e.ctx, DefaultPool); err != nil {
					t.Errorf("resources of default: %v", err)
				}
				// The user gives up on it: it can be deleted, with the
				// records of what was on it.
				if err := e.m.DeletePool(e.ctx, "ext"); err != nil {
					t.Fatalf("delete the unavailable pool: %v", err)
				}
				if got := poolNames(t, e); !slices.Equal(got, []string{"default:Created"}) {
					t.Errorf("pools after deleting the unavailable one: %v", got)
				}
				if got := e.records("ext"); len(got) != 0 {
					t.Errorf("records left: %v", got)
				}
				if exists(filepath.Join(e.poolsDir(), "ext")) {
					t.Error("the unavailable pool's directory is left")
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			tt.before(t, e)
			if created := e.restart(); created {
				t.Error("a later start said it made the default pool")
			}
			if got := poolNames(t, e); !slices.Equal(got, tt.want) {
				t.Errorf("pools %v, want %v", got, tt.want)
			}
			tt.after(t, e)
		})
	}
}

// TestReconcile: what a killed daemon left on a pool is finished or undone
// at the next start, on each driver.
func TestReconcile(t *testing.T) {
	for _, drv := range []string{"dir", "btrfs"} {
		t.Run(drv, func(t *testing.T) {
			e := newEnv(t)
			if drv == "btrfs" {
				e.btrfsPool("p", nil)
			} else {
				e.dirPool("p", nil)
			}
			if err := e.m.CreateVolume(e.ctx, CreateVolumeRequest{Pool: "p", Name: "kept"}); err != nil {
				t.Fatal(err)
			}
			if err := e.m.CreateRoot(e.ctx, RootRequest{InstanceID: 1, RuntimeID: "r1", Name: "c1", Pool: "p", Image: treeImage, IDMap: &testMap}); err != nil {
				t.Fatal(err)
			}
			p, err := e.m.get("p")
			if err != nil {
				t.Fatal(err)
			}
			// Volumes as a killed daemon leaves them: made but pending,
			// being deleted, made with no record, a record whose volume
			// was never made, adoptions killed after and before their move, and a
			// .tmp- leftover.
			made := func(name string, state string, cfg map[string]string) {
				t.Helper()
				rec := store.StorageVolume{Pool: "p", Type: "custom", Name: name, DiskName: name, Content: "filesystem", Config: cfg, State: state}
				if err := e.st.CreateStorageVolume(e.ctx, &rec); err != nil {
					t.Fatal(err)
				}
			}
			onDisk := func(name string) {
				t.Helper()
				if err := p.drv.CreateVolume(e.ctx, drivers.Volume{Type: drivers.TypeCustom, Name: name, Content: drivers.ContentFilesystem}, 0, false, nil); err != nil {
					t.Fatal(err)
				}
			}
			// An adoption: its record, and its volume with the moved
			// upper or, killed before the move, without.
			adopting := func(id int64, name string, volume, moved bool) {
				t.Helper()
				rec := store.StorageVolume{Pool: "p", Type: "container", Name: name, DiskName: name, Content: "filesystem",
					InstanceID: id, Config: map[string]string{keyAdopting: "true"}, State: "pending"}
				if err := e.st.CreateStorageVolume(e.ctx, &rec); err != nil {
					t.Fatal(err)
				}
				if !volume {
					return
				}
				if err := p.drv.CreateVolume(e.ctx, diskVolume(rec), 0, false, func(dir string) error {
					if moved {
						return os.Mkdir(filepath.Join(dir, "upper"), 0o755)
					}
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			made("pending", "pending", nil)
			onDisk("pending")
			made("deleting", "deleting", nil)
			onDisk("deleting")
			onDisk("orphan")
			made("never", "pending", nil)
			adopting(2, "adopted", true, true)
			adopting(3, "adopt-unmoved", true, false)
			adopting(4, "adopt-lost", false, false)
			if err := os.Mkdir(filepath.Join(e.poolsDir(), "p", "custom", ".tmp-killed-abc"), 0o700); err != nil {
				t.Fatal(err)
			}

			e.restart()

			wantRecs := []string{
				"container/adopted/adopted created",
				"container/c1/r1 created",
				"custom/kept/kept created",
				"image/" + treeImage + "/" + treeName(treeImage, &testMap) + " created",
			}
			if got := e.records("p"); !slices.Equal(got, wantRecs) {
				t.Errorf("records after restart:\n%q\nwant\n%q", got, wantRecs)
			}
			wantDisk := []string{"containers/adopted", "containers/r1", "custom/kept", "images/" + treeName(treeImage, &testMap)}
			if got := e.onDisk("p"); !slices.Equal(got, wantDisk) {
				t.Errorf("on disk after restart:\n%q\nwant\n%q", got, wantDisk)
			}
			v, err := e.m.Volume(e.ctx, "p", "container", "adopted")
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := v.Config[keyAdopting]; ok {
				t.Errorf("adopted volume still marked %s", keyAdopting)
			}
			// The instance's root survived and still works.
			if _, err := e.m.Root(e.ctx, RootRequest{InstanceID: 1, Name: "c1", IDMap: &testMap}); err != nil {
				t.Errorf("root after restart: %v", err)
			}
		})
	}
}

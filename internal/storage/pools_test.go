package storage

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// TestCreatePoolRefused: bad input is a 4xx and leaves neither a record
// nor a directory.
func TestCreatePoolRefused(t *testing.T) {
	e := newEnv(t)
	e.dirPool("taken", nil)
	e.events.take()
	full := filepath.Join(e.base, "full")
	if err := os.MkdirAll(filepath.Join(full, "someone's"), 0o755); err != nil {
		t.Fatal(err)
	}
	btrfsOK, noBtrfs := hasBtrfs()
	tests := []struct {
		name string
		req  CreatePoolRequest
		kind error
		says []string
	}{
		{"empty name", CreatePoolRequest{Name: "", Driver: "dir"}, errdefs.ErrInvalidArgument, []string{"storage pool name"}},
		{"leading dash", CreatePoolRequest{Name: "-p", Driver: "dir"}, errdefs.ErrInvalidArgument, []string{`"-p"`}},
		{"slash", CreatePoolRequest{Name: "a/b", Driver: "dir"}, errdefs.ErrInvalidArgument, []string{`"a/b"`}},
		{"dot dot", CreatePoolRequest{Name: "..", Driver: "dir"}, errdefs.ErrInvalidArgument, []string{`".."`}},
		{"trailing dot", CreatePoolRequest{Name: "p.", Driver: "dir"}, errdefs.ErrInvalidArgument, []string{`"p."`}},
		{"space", CreatePoolRequest{Name: "a b", Driver: "dir"}, errdefs.ErrInvalidArgument, []string{`"a b"`}},
		{"64 characters", CreatePoolRequest{Name: strings.Repeat("a", 64), Driver: "dir"}, errdefs.ErrInvalidArgument, []string{"63"}},
		{"unknown driver", CreatePoolRequest{Name: "p", Driver: "floppy"}, errdefs.ErrInvalidArgument, []string{`"floppy"`, "dir", "btrfs"}},
		{"no driver", CreatePoolRequest{Name: "p"}, errdefs.ErrInvalidArgument, []string{"unknown storage driver"}},
		{"lvm", CreatePoolRequest{Name: "p", Driver: "lvm"}, errdefs.ErrInvalidArgument, []string{`"lvm"`}},
		{"zfs", CreatePoolRequest{Name: "p", Driver: "zfs"}, errdefs.ErrInvalidArgument, []string{`"zfs"`}},
		{"unknown key", CreatePoolRequest{Name: "p", Driver: "dir", Config: map[string]string{"zfs.pool_name": "x"}}, errdefs.ErrInvalidArgument, []string{`"zfs.pool_name"`}},
		{"btrfs key on dir", CreatePoolRequest{Name: "p", Driver: "dir", Config: map[string]string{"size": "1GiB"}}, errdefs.ErrInvalidArgument, []string{`"size"`}},
		{"unknown volume key", CreatePoolRequest{Name: "p", Driver: "dir", Config: map[string]string{"volume.block.filesystem": "ext4"}}, errdefs.ErrInvalidArgument, []string{"volume.block.filesystem"}},
		{"bad volume default", CreatePoolRequest{Name: "p", Driver: "dir", Config: map[string]string{"volume.security.shifted": "maybe"}}, errdefs.ErrInvalidArgument, []string{"volume.security.shifted"}},
		{"relative source", CreatePoolRequest{Name: "p", Driver: "dir", Config: map[string]string{"source": "rel/dir"}}, errdefs.ErrInvalidArgument, []string{"absolute"}},
		{"source inside the data dir", CreatePoolRequest{Name: "p", Driver: "dir", Config: map[string]string{"source": filepath.Join(e.base, "data", "inside")}}, errdefs.ErrInvalidArgument, []string{"data directory"}},
		{"btrfs size too small", CreatePoolRequest{Name: "p", Driver: "btrfs", Config: map[string]string{"size": "1MiB"}}, errdefs.ErrInvalidArgument, []string{"size"}},
		{"existing name", CreatePoolRequest{Name: "taken", Driver: "dir"}, errdefs.ErrConflict, []string{`"taken" already exists`}},
		{"source not empty", CreatePoolRequest{Name: "p", Driver: "dir", Config: map[string]string{"source": full}}, errdefs.ErrInvalidArgument, []string{full}},
		{"btrfs mount options the kernel refuses", CreatePoolRequest{Name: "p", Driver: "btrfs", Config: map[string]string{"size": "200MiB", "btrfs.mount_options": "no_such_option"}},
			errdefs.ErrInvalidArgument, []string{"btrfs.mount_options", "no_such_option"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.req.Driver == "btrfs" && !btrfsOK {
				t.Skip(noBtrfs)
			}
			err := e.m.CreatePool(e.ctx, tt.req)
			wantErr(t, "create", err, tt.kind, tt.says...)
		})
	}
	if got := poolNames(t, e); !slices.Equal(got, []string{"default:Created", "taken:Created"}) {
		t.Errorf("pools after refused creates: %v", got)
	}
	ents, err := os.ReadDir(e.poolsDir())
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, de := range ents {
		dirs = append(dirs, de.Name())
	}
	if !slices.Equal(dirs, []string{"default", "taken"}) {
		t.Errorf("pool directories after refused creates: %v", dirs)
	}
	if exists(filepath.Join(e.base, "data", "inside")) {
		t.Error("a refused source inside the data dir was made")
	}
	if exists(filepath.Join(e.base, "data", "disks", "p.img")) {
		t.Error("a refused btrfs pool left its loop file")
	}
	if ms := mountPoints(e.base); len(ms) != 0 {
		t.Errorf("refused creates left mounts: %v", ms)
	}
	if ents, _ := os.ReadDir(filepath.Join(full)); len(ents) != 1 {
		t.Errorf("a refused source was changed: %v", ents)
	}
	if got := e.events.take(); len(got) != 0 {
		t.Errorf("refused creates emitted %v", got)
	}
}

// TestUpdatePool: PATCH merges, PUT replaces (keeping what the driver
// filled in), source never changes, bad keys are refused.
func TestUpdatePool(t *testing.T) {
	e := newEnv(t)
	e.dirPool("p", map[string]string{"user.keep": "1"})
	source := filepath.Join(e.poolsDir(), "p")
	e.events.take()
	steps := []struct {
		name     string
		put      PoolPut
		replace  bool
		kind     error
		says     []string
		wantDesc string
		wantCfg  map[string]string
	}{
		{
			name:     "patch adds a user key and a description",
			put:      PoolPut{Description: "first", Config: map[string]string{"user.a": "x"}},
			wantDesc: "first", wantCfg: map[string]string{"source": source, "user.keep": "1", "user.a": "x"},
		},
		{
			name:     "patch without description keeps it, unsets a key",
			put:      PoolPut{Config: map[string]string{"user.keep": ""}},
			wantDesc: "first", wantCfg: map[string]string{"source": source, "user.a": "x"},
		},
		{
			name:     "patch a volume default",
			put:      PoolPut{Config: map[string]string{"volume.security.shifted": "true"}},
			wantDesc: "first", wantCfg: map[string]string{"source": source, "user.a": "x", "volume.security.shifted": "true"},
		},
		{
			name: "put replaces, keeping source", replace: true,
			put:      PoolPut{Config: map[string]string{"user.b": "y"}},
			wantDesc: "", wantCfg: map[string]string{"source": source, "user.b": "y"},
		},
		{
			name: "patch source", put: PoolPut{Config: map[string]string{"source": "/elsewhere"}},
			kind: errdefs.ErrInvalidArgument, says: []string{"source cannot change"},
		},
		{
			name: "put source", replace: true, put: PoolPut{Config: map[string]string{"source": "/elsewhere"}},
			kind: errdefs.ErrInvalidArgument, says: []string{"source cannot change"},
		},
		{
			name: "patch source unset", put: PoolPut{Config: map[string]string{"source": ""}},
			kind: errdefs.ErrInvalidArgument, says: []string{"source cannot change"},
		},
		{
			name: "unknown key", put: PoolPut{Config: map[string]string{"lvm.vg_name": "vg"}},
			kind: errdefs.ErrInvalidArgument, says: []string{`"lvm.vg_name"`},
		},
		{
			name: "bad volume default", put: PoolPut{Config: map[string]string{"volume.size": "lots"}},
			kind: errdefs.ErrInvalidArgument, says: []string{"volume.size"},
		},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			before, err := e.m.Pool(e.ctx, "p")
			if err != nil {
				t.Fatal(err)
			}
			if s.replace {
				err = e.m.UpdatePool(e.ctx, "p", s.put)
			} else {
				err = e.m.PatchPool(e.ctx, "p", s.put)
			}
			wantErr(t, "update", err, s.kind, s.says...)
			after, gerr := e.m.Pool(e.ctx, "p")
			if gerr != nil {
				t.Fatal(gerr)
			}
			events := e.events.take()
			if s.kind != nil {
				if !mapsEqual(after.Config, before.Config) || after.Description != before.Description {
					t.Errorf("a refused update changed the pool: %v %q", after.Config, after.Description)
				}
				if len(events) != 0 {
					t.Errorf("a refused update emitted %v", events)
				}
				return
			}
			if after.Description != s.wantDesc || !mapsEqual(after.Config, s.wantCfg) {
				t.Errorf("pool is %q %v, want %q %v", after.Description, after.Config, s.wantDesc, s.wantCfg)
			}
			if !slices.Equal(events, []string{"storage-pool-updated storage-pool p"}) {
				t.Errorf("events %v", events)
			}
		})
	}
	// What was recorded is what the next start loads.
	e.restart()
	p, err := e.m.Pool(e.ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	if !mapsEqual(p.Config, map[string]string{"source": source, "user.b": "y"}) {
		t.Errorf("after restart the pool's config is %v", p.Config)
	}
	err = e.m.PatchPool(e.ctx, "nope", PoolPut{Description: "x"})
	wantErr(t, "patch a missing pool", err, errdefs.ErrNotFound, `"nope"`)
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestDeletePool: refused while anything uses the pool or a custom volume
// is on it; its image volumes go with it.
func TestDeletePool(t *testing.T) {
	e := newEnv(t)
	e.dirPool("p", nil)
	if err := e.m.CreateVolume(e.ctx, CreateVolumeRequest{Pool: "p", Name: "v1"}); err != nil {
		t.Fatal(err)
	}
	// An image volume, left by an instance that is gone (the image is
	// still in the catalogue, so the instance's delete kept it).
	if err := e.m.CreateRoot(e.ctx, RootRequest{InstanceID: 7, RuntimeID: "r7", Name: "c7", Pool: "p", Image: treeImage, IDMap: &testMap}); err != nil {
		t.Fatal(err)
	}
	if err := e.m.DeleteRoot(e.ctx, 7); err != nil {
		t.Fatal(err)
	}
	img := e.path("p", "image", treeName(treeImage, &testMap), "filesystem")
	if !exists(img) {
		t.Fatal("the image volume went with the root while its image is in the catalogue")
	}
	p, err := e.m.Pool(e.ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"storage-pools/p/volumes/custom/v1", "images/" + treeImage}; !slices.Equal(p.UsedBy, want) {
		t.Errorf("used by %v, want %v", p.UsedBy, want)
	}
	e.events.take()

	steps := []struct {
		name  string
		setup func()
		kind  error
		says  []string
	}{
		{
			name:  "in use by an instance and a profile",
			setup: func() { e.users.set("p", "", "instances/c1", "profiles/default") },
			kind:  errdefs.ErrConflict, says: []string{"instances/c1", "profiles/default"},
		},
		{
			name:  "a custom volume on it",
			setup: func() { e.users.set("p", "") },
			kind:  errdefs.ErrConflict, says: []string{"custom/v1"},
		},
		{
			name: "deleted with its image volume",
			setup: func() {
				if err := e.m.DeleteVolume(e.ctx, "p", "custom", "v1"); err != nil {
					t.Fatal(err)
				}
				e.events.take()
			},
		},
		{
			name: "gone", setup: func() {},
			kind: errdefs.ErrNotFound, says: []string{`"p" not found`},
		},
	}
	for _, s := range steps {
		s.setup()
		err := e.m.DeletePool(e.ctx, "p")
		wantErr(t, s.name, err, s.kind, s.says...)
		events := e.events.take()
		if s.kind != nil {
			if len(events) != 0 {
				t.Errorf("%s: events %v", s.name, events)
			}
			continue
		}
		if !slices.Equal(events, []string{"storage-pool-deleted storage-pool p"}) {
			t.Errorf("%s: events %v", s.name, events)
		}
	}
	if exists(filepath.Join(e.poolsDir(), "p")) {
		t.Error("the deleted pool's directory is left")
	}
	if _, err := e.st.GetStoragePool(e.ctx, "p"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("the deleted pool's record: %v", err)
	}
	vols, err := e.st.ListStorageVolumes(e.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vols {
		if v.Pool == "p" {
			t.Errorf("volume record left: %+v", v)
		}
	}
	// The name is free again.
	e.dirPool("p", nil)
}

// TestPoolEventsAndResources: a pool made and deleted says so, with its
// name; its space is read from its filesystem.
func TestPoolEventsAndResources(t *testing.T) {
	e := newEnv(t)
	if got := e.events.take(); !slices.Equal(got, []string{"storage-pool-created storage-pool default"}) {
		t.Errorf("first start emitted %v", got)
	}
	e.dirPool("p", map[string]string{"user.x": "1"})
	res, err := e.m.PoolResources(e.ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	if res.Space.Total <= 0 || res.Space.Used <= 0 || res.Space.Used > res.Space.Total {
		t.Errorf("dir pool space %+v: want the filesystem's used and total", res.Space)
	}
	_, err = e.m.PoolResources(e.ctx, "nope")
	wantErr(t, "resources of a missing pool", err, errdefs.ErrNotFound)
	wantErr(t, "exists", e.m.PoolExists(e.ctx, "p"), nil)
	wantErr(t, "exists missing", e.m.PoolExists(e.ctx, "nope"), errdefs.ErrNotFound)
	if err := e.m.DeletePool(e.ctx, "p"); err != nil {
		t.Fatal(err)
	}
	want := []string{"storage-pool-created storage-pool p", "storage-pool-deleted storage-pool p"}
	if got := e.events.take(); !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
}

// TestUpdateBtrfsPool: a loop pool grows through its size and never
// shrinks; its mount options change by a remount.
func TestUpdateBtrfsPool(t *testing.T) {
	e := newEnv(t)
	e.btrfsPool("b", map[string]string{"size": "200MiB"})
	total := func() int64 {
		t.Helper()
		r, err := e.m.PoolResources(e.ctx, "b")
		if err != nil {
			t.Fatal(err)
		}
		return r.Space.Total
	}
	before := total()
	steps := []struct {
		name    string
		put     PoolPut
		replace bool
		kind    error
		says    []string
		grows   bool
	}{
		{name: "grow", put: PoolPut{Config: map[string]string{"size": "300MiB"}}, grows: true},
		{name: "shrink", put: PoolPut{Config: map[string]string{"size": "200MiB"}}, kind: errdefs.ErrInvalidArgument, says: []string{"cannot shrink"}},
		{name: "put keeps the size", replace: true, put: PoolPut{Config: map[string]string{"user.x": "1"}}},
		{name: "mount options", put: PoolPut{Config: map[string]string{"btrfs.mount_options": "user_subvol_rm_allowed,noatime"}}},
		{name: "bad mount options", put: PoolPut{Config: map[string]string{"btrfs.mount_options": "no_such_option"}}, kind: errdefs.ErrInvalidArgument, says: []string{"no_such_option"}},
	}
	for _, s := range steps {
		var err error
		if s.replace {
			err = e.m.UpdatePool(e.ctx, "b", s.put)
		} else {
			err = e.m.PatchPool(e.ctx, "b", s.put)
		}
		wantErr(t, s.name, err, s.kind, s.says...)
		now := total()
		if s.grows && now <= before {
			t.Errorf("%s: pool of %d bytes, was %d", s.name, now, before)
		}
		if !s.grows && now != before {
			t.Errorf("%s: pool of %d bytes, was %d", s.name, now, before)
		}
		before = now
	}
	p, err := e.m.Pool(e.ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if p.Config["size"] != "300MiB" || p.Config["user.x"] != "1" || p.Config["btrfs.mount_options"] != "user_subvol_rm_allowed,noatime" {
		t.Errorf("config %v", p.Config)
	}
	// What is recorded mounts at the next start.
	if err := e.m.CreateVolume(e.ctx, CreateVolumeRequest{Pool: "b", Name: "v", Config: map[string]string{"size": "16MiB"}}); err != nil {
		t.Fatal(err)
	}
	e.restart()
	if got := poolNames(t, e); !slices.Equal(got, []string{"b:Created", "default:Created"}) {
		t.Errorf("pools after restart %v", got)
	}
	if st, err := e.m.VolumeState(e.ctx, "b", "custom", "v"); err != nil || st.Usage.Total != 16<<20 {
		t.Errorf("volume after restart %+v %v", st, err)
	}
}

package storage

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/storage/drivers"
)

// hasBtrfs says whether btrfs pools can be made here; rows that need one
// are skipped, with the reason, when not.
func hasBtrfs() (bool, string) {
	for _, tool := range []string{"mkfs.btrfs", "blkid"} {
		if _, err := exec.LookPath(tool); err != nil {
			return false, "needs " + tool
		}
	}
	if _, err := os.Stat("/sys/fs/btrfs"); err != nil {
		return false, "this kernel has no btrfs"
	}
	return true, ""
}

func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// TestCreateVolume: filesystem and block volumes, the pool's volume.*
// defaults, sizes where the pool can and cannot honour them, bad input.
func TestCreateVolume(t *testing.T) {
	e := newEnv(t)
	e.dirPool("d", nil)
	e.dirPool("dsh", map[string]string{"volume.security.shifted": "true"})
	e.dirPool("dsz", map[string]string{"volume.size": "64MiB"})
	btrfsOK, noBtrfs := hasBtrfs()
	if btrfsOK {
		e.btrfsPool("b", nil)
		e.btrfsPool("bsz", map[string]string{"volume.size": "48MiB"})
	}
	// why is the reason a dir pool gives for having no quotas.
	why := func(pool string) string {
		p, err := e.m.get(pool)
		if err != nil {
			t.Fatal(err)
		}
		w := p.drv.Info().QuotaUnsupported
		if w == "" {
			t.Fatalf("dir pool %s gives no reason it has no quotas", pool)
		}
		return w
	}
	if err := e.m.CreateVolume(e.ctx, CreateVolumeRequest{Pool: "d", Name: "taken"}); err != nil {
		t.Fatal(err)
	}
	e.events.take()

	tests := []struct {
		name  string
		btrfs bool
		req   CreateVolumeRequest
		kind  error
		says  []string
		// wantCfg is the volume's recorded config.
		wantCfg map[string]string
		check   func(t *testing.T, a Attachment)
	}{
		{
			name: "filesystem owned by the id map's root", req: CreateVolumeRequest{Pool: "d", Name: "fs"},
			wantCfg: map[string]string{},
			check: func(t *testing.T, a Attachment) {
				if a.Path != e.path("d", "custom", "fs", "filesystem") || a.Block || a.Shifted {
					t.Errorf("attachment %+v", a)
				}
				if o := owner(t, a.Path); o != int(testMap.HostID) {
					t.Errorf("owner %d, want the id map's root %d", o, testMap.HostID)
				}
			},
		},
		{
			name: "shifted filesystem owned by root", req: CreateVolumeRequest{Pool: "d", Name: "sh", Config: map[string]string{"security.shifted": "true", "user.x": "1"}},
			wantCfg: map[string]string{"security.shifted": "true", "user.x": "1"},
			check: func(t *testing.T, a Attachment) {
				if !a.Shifted || a.Block {
					t.Errorf("attachment %+v, want shifted", a)
				}
				if o := owner(t, a.Path); o != 0 {
					t.Errorf("owner %d, want 0: a shifted volume holds unshifted ids", o)
				}
			},
		},
		{
			name: "block of the default size", req: CreateVolumeRequest{Pool: "d", Name: "blk", ContentType: "block"},
			wantCfg: map[string]string{"size": "10GiB"},
			check: func(t *testing.T, a Attachment) {
				if !a.Block || a.Path != filepath.Join(e.path("d", "custom", "blk", "block"), drivers.BlockFile) {
					t.Errorf("attachment %+v", a)
				}
				if n := fileSize(t, a.Path); n != 10<<30 {
					t.Errorf("block file of %d bytes, want 10GiB", n)
				}
			},
		},
		{
			name: "block of a size", req: CreateVolumeRequest{Pool: "d", Name: "blk64", ContentType: "block", Config: map[string]string{"size": "64MiB"}},
			wantCfg: map[string]string{"size": "64MiB"},
			check: func(t *testing.T, a Attachment) {
				if n := fileSize(t, a.Path); n != 64<<20 {
					t.Errorf("block file of %d bytes, want 64MiB", n)
				}
			},
		},
		{
			name: "shifted from the pool's default", req: CreateVolumeRequest{Pool: "dsh", Name: "fs"},
			wantCfg: map[string]string{"security.shifted": "true"},
			check: func(t *testing.T, a Attachment) {
				if !a.Shifted || owner(t, a.Path) != 0 {
					t.Errorf("attachment %+v owned by %d, want shifted and root's", a, owner(t, a.Path))
				}
			},
		},
		{
			name: "a block volume takes no shifted default", req: CreateVolumeRequest{Pool: "dsh", Name: "blk", ContentType: "block", Config: map[string]string{"size": "1MiB"}},
			wantCfg: map[string]string{"size": "1MiB"},
		},
		{
			name: "the given key beats the pool's default", req: CreateVolumeRequest{Pool: "dsh", Name: "unsh", Config: map[string]string{"security.shifted": "false"}},
			wantCfg: map[string]string{"security.shifted": "false"},
			check: func(t *testing.T, a Attachment) {
				if a.Shifted || owner(t, a.Path) != int(testMap.HostID) {
					t.Errorf("attachment %+v, want not shifted", a)
				}
			},
		},
		{
			name: "block size from the pool's default", req: CreateVolumeRequest{Pool: "dsz", Name: "blk", ContentType: "block"},
			wantCfg: map[string]string{"size": "64MiB"},
			check: func(t *testing.T, a Attachment) {
				if n := fileSize(t, a.Path); n != 64<<20 {
					t.Errorf("block file of %d bytes, want the pool's 64MiB", n)
				}
			},
		},
		{
			// The pool's volume.size sizes its block volumes; a filesystem
			// volume on a pool without quotas is made without it.
			name: "no filesystem size from the pool's default on dir", req: CreateVolumeRequest{Pool: "dsz", Name: "fs"},
			wantCfg: map[string]string{},
		},
		{
			name: "filesystem size on dir", req: CreateVolumeRequest{Pool: "d", Name: "sized", Config: map[string]string{"size": "1GiB"}},
			kind: errdefs.ErrInvalidArgument, says: []string{"cannot limit a filesystem volume's size", why("d")},
		},
		{
			name: "filesystem size on btrfs", btrfs: true, req: CreateVolumeRequest{Pool: "b", Name: "sized", Config: map[string]string{"size": "32MiB"}},
			wantCfg: map[string]string{"size": "32MiB"},
			check: func(t *testing.T, a Attachment) {
				st, err := e.m.VolumeState(e.ctx, "b", "custom", "sized")
				if err != nil {
					t.Fatal(err)
				}
				if st.Usage.Total != 32<<20 {
					t.Errorf("quota %d, want 32MiB", st.Usage.Total)
				}
			},
		},
		{
			name: "filesystem size from the pool's default on btrfs", btrfs: true, req: CreateVolumeRequest{Pool: "bsz", Name: "fs"},
			wantCfg: map[string]string{"size": "48MiB"},
			check: func(t *testing.T, a Attachment) {
				st, err := e.m.VolumeState(e.ctx, "bsz", "custom", "fs")
				if err != nil {
					t.Fatal(err)
				}
				if st.Usage.Total != 48<<20 {
					t.Errorf("quota %d, want the pool's 48MiB", st.Usage.Total)
				}
			},
		},
		{
			name: "block on btrfs", btrfs: true, req: CreateVolumeRequest{Pool: "b", Name: "blk", ContentType: "block", Config: map[string]string{"size": "16MiB"}},
			wantCfg: map[string]string{"size": "16MiB"},
			check: func(t *testing.T, a Attachment) {
				if n := fileSize(t, a.Path); n != 16<<20 {
					t.Errorf("block file of %d bytes, want 16MiB", n)
				}
			},
		},
		{
			name: "shifted block", req: CreateVolumeRequest{Pool: "d", Name: "x", ContentType: "block", Config: map[string]string{"security.shifted": "true"}},
			kind: errdefs.ErrInvalidArgument, says: []string{"security.shifted"},
		},
		{
			name: "zero-sized block", req: CreateVolumeRequest{Pool: "d", Name: "x", ContentType: "block", Config: map[string]string{"size": "0"}},
			kind: errdefs.ErrInvalidArgument, says: []string{"size"},
		},
		{
			name: "bad size", req: CreateVolumeRequest{Pool: "d", Name: "x", ContentType: "block", Config: map[string]string{"size": "lots"}},
			kind: errdefs.ErrInvalidArgument, says: []string{"size"},
		},
		{
			name: "unknown key", req: CreateVolumeRequest{Pool: "d", Name: "x", Config: map[string]string{"block.filesystem": "xfs"}},
			kind: errdefs.ErrInvalidArgument, says: []string{`"block.filesystem"`},
		},
		{
			name: "bad content type", req: CreateVolumeRequest{Pool: "d", Name: "x", ContentType: "tape"},
			kind: errdefs.ErrInvalidArgument, says: []string{`"tape"`},
		},
		{
			name: "bad name", req: CreateVolumeRequest{Pool: "d", Name: "../x"},
			kind: errdefs.ErrInvalidArgument, says: []string{`"../x"`},
		},
		{
			name: "existing name", req: CreateVolumeRequest{Pool: "d", Name: "taken"},
			kind: errdefs.ErrConflict, says: []string{"taken"},
		},
		{
			name: "existing name as block", req: CreateVolumeRequest{Pool: "d", Name: "taken", ContentType: "block", Config: map[string]string{"size": "1MiB"}},
			kind: errdefs.ErrConflict, says: []string{"taken"},
		},
		{
			name: "missing pool", req: CreateVolumeRequest{Pool: "nope", Name: "x"},
			kind: errdefs.ErrNotFound, says: []string{`"nope"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.btrfs && !btrfsOK {
				t.Skip(noBtrfs)
			}
			before := e.onDisk(tt.req.Pool)
			beforeRecs := e.records(tt.req.Pool)
			err := e.m.CreateVolume(e.ctx, tt.req)
			wantErr(t, "create", err, tt.kind, tt.says...)
			events := e.events.take()
			if tt.kind != nil {
				if got := e.onDisk(tt.req.Pool); !slices.Equal(got, before) {
					t.Errorf("a refused create left %v (before: %v)", got, before)
				}
				if got := e.records(tt.req.Pool); !slices.Equal(got, beforeRecs) {
					t.Errorf("a refused create left records %v (before: %v)", got, beforeRecs)
				}
				if len(events) != 0 {
					t.Errorf("a refused create emitted %v", events)
				}
				return
			}
			if err != nil {
				return
			}
			if want := []string{"storage-volume-created storage-volume " + tt.req.Pool + "/custom/" + tt.req.Name}; !slices.Equal(events, want) {
				t.Errorf("events %v, want %v", events, want)
			}
			v, err := e.m.Volume(e.ctx, tt.req.Pool, "custom", tt.req.Name)
			if err != nil {
				t.Fatal(err)
			}
			content := tt.req.ContentType
			if content == "" {
				content = "filesystem"
			}
			if v.ContentType != content || v.Type != "custom" || !mapsEqual(v.Config, tt.wantCfg) {
				t.Errorf("volume %s %s %v, want custom %s %v", v.Type, v.ContentType, v.Config, content, tt.wantCfg)
			}
			a, err := e.m.Attach(e.ctx, tt.req.Pool, tt.req.Name)
			if err != nil {
				t.Fatal(err)
			}
			if !exists(a.Path) {
				t.Errorf("attachment path %s does not exist", a.Path)
			}
			if tt.check != nil {
				tt.check(t, a)
			}
		})
	}
}

// TestVolumeLifecycle: change, measure, rename and delete a custom
// volume; what is in use is refused naming its users.
func TestVolumeLifecycle(t *testing.T) {
	for _, drv := range []string{"dir", "btrfs"} {
		t.Run(drv, func(t *testing.T) {
			e := newEnv(t)
			if drv == "btrfs" {
				e.btrfsPool("p", nil)
			} else {
				e.dirPool("p", nil)
			}
			for _, req := range []CreateVolumeRequest{
				{Pool: "p", Name: "v1", Description: "first"},
				{Pool: "p", Name: "other"},
				{Pool: "p", Name: "blk", ContentType: "block", Config: map[string]string{"size": "8MiB"}},
			} {
				if err := e.m.CreateVolume(e.ctx, req); err != nil {
					t.Fatal(err)
				}
			}
			a, err := e.m.Attach(e.ctx, "p", "v1")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(a.Path, "data"), make([]byte, 1<<20), 0o644); err != nil {
				t.Fatal(err)
			}
			st, err := e.m.VolumeState(e.ctx, "p", "custom", "v1")
			if err != nil {
				t.Fatal(err)
			}
			if st.Usage.Used < 1<<20 {
				t.Errorf("used %d after writing 1MiB", st.Usage.Used)
			}
			e.users.set("p", "v1", "instances/c1", "profiles/shared")
			e.events.take()
			blkFile := filepath.Join(e.path("p", "custom", "blk", "block"), drivers.BlockFile)

			type step struct {
				name string
				do   func() error
				kind error
				says []string
				// event is what a step that works emits.
				event string
			}
			// A filesystem volume's size: refused on dir, a quota on btrfs.
			sizeStep := step{
				name: "size on a filesystem volume",
				do: func() error {
					return e.m.PatchVolume(e.ctx, "p", "custom", "v1", VolumePut{Config: map[string]string{"size": "32MiB"}})
				},
				kind: errdefs.ErrInvalidArgument, says: []string{"cannot limit"},
			}
			if drv == "btrfs" {
				sizeStep.kind, sizeStep.says, sizeStep.event = nil, nil, "storage-volume-updated storage-volume p/custom/v1"
			}
			steps := []step{
				{
					name: "patch a user key",
					do: func() error {
						return e.m.PatchVolume(e.ctx, "p", "custom", "v1", VolumePut{Config: map[string]string{"user.a": "1"}})
					},
					event: "storage-volume-updated storage-volume p/custom/v1",
				},
				{
					name: "shift while in use",
					do: func() error {
						return e.m.PatchVolume(e.ctx, "p", "custom", "v1", VolumePut{Config: map[string]string{"security.shifted": "true"}})
					},
					kind: errdefs.ErrConflict, says: []string{"security.shifted", "instances/c1", "profiles/shared"},
				},
				sizeStep,
				{
					name: "unknown key",
					do: func() error {
						return e.m.PatchVolume(e.ctx, "p", "custom", "v1", VolumePut{Config: map[string]string{"zfs.remove_snapshots": "true"}})
					},
					kind: errdefs.ErrInvalidArgument, says: []string{`"zfs.remove_snapshots"`},
				},
				{
					name: "rename in use",
					do:   func() error { return e.m.RenameVolume(e.ctx, "p", "custom", "v1", "v2") },
					kind: errdefs.ErrConflict, says: []string{`"v1" is in use by instances/c1, profiles/shared`},
				},
				{
					name: "delete in use",
					do:   func() error { return e.m.DeleteVolume(e.ctx, "p", "custom", "v1") },
					kind: errdefs.ErrConflict, says: []string{`"v1" is in use by instances/c1, profiles/shared`},
				},
				{
					name: "no longer in use: shift",
					do: func() error {
						e.users.set("p", "v1")
						return e.m.PatchVolume(e.ctx, "p", "custom", "v1", VolumePut{Config: map[string]string{"security.shifted": "true"}})
					},
					event: "storage-volume-updated storage-volume p/custom/v1",
				},
				{
					name: "rename to a bad name",
					do:   func() error { return e.m.RenameVolume(e.ctx, "p", "custom", "v1", "a/b") },
					kind: errdefs.ErrInvalidArgument, says: []string{`"a/b"`},
				},
				{
					name: "rename onto another volume",
					do:   func() error { return e.m.RenameVolume(e.ctx, "p", "custom", "v1", "other") },
					kind: errdefs.ErrConflict, says: []string{"other", "already exists"},
				},
				{
					name: "rename a missing volume",
					do:   func() error { return e.m.RenameVolume(e.ctx, "p", "custom", "nope", "v9") },
					kind: errdefs.ErrNotFound,
				},
				{
					name:  "rename",
					do:    func() error { return e.m.RenameVolume(e.ctx, "p", "custom", "v1", "v2") },
					event: "storage-volume-renamed storage-volume p/custom/v2",
				},
				{
					name: "put replaces config and description",
					do: func() error {
						return e.m.UpdateVolume(e.ctx, "p", "custom", "v2", VolumePut{Config: map[string]string{"user.b": "2"}})
					},
					event: "storage-volume-updated storage-volume p/custom/v2",
				},
				{
					name: "grow a block volume",
					do: func() error {
						return e.m.PatchVolume(e.ctx, "p", "custom", "blk", VolumePut{Config: map[string]string{"size": "16MiB"}})
					},
					event: "storage-volume-updated storage-volume p/custom/blk",
				},
				{
					name: "shrink a block volume",
					do: func() error {
						return e.m.PatchVolume(e.ctx, "p", "custom", "blk", VolumePut{Config: map[string]string{"size": "4MiB"}})
					},
					kind: errdefs.ErrInvalidArgument,
				},
				{
					name: "unset a block volume's size",
					do: func() error {
						return e.m.PatchVolume(e.ctx, "p", "custom", "blk", VolumePut{Config: map[string]string{"size": ""}})
					},
					kind: errdefs.ErrInvalidArgument, says: []string{"always has a size"},
				},
				{
					name: "patch a missing volume",
					do: func() error {
						return e.m.PatchVolume(e.ctx, "p", "custom", "v1", VolumePut{Description: "x"})
					},
					kind: errdefs.ErrNotFound,
				},
				{
					name:  "delete",
					do:    func() error { return e.m.DeleteVolume(e.ctx, "p", "custom", "v2") },
					event: "storage-volume-deleted storage-volume p/custom/v2",
				},
				{
					name: "delete again",
					do:   func() error { return e.m.DeleteVolume(e.ctx, "p", "custom", "v2") },
					kind: errdefs.ErrNotFound,
				},
			}
			for _, s := range steps {
				err := s.do()
				wantErr(t, s.name, err, s.kind, s.says...)
				var want []string
				if s.kind == nil {
					want = []string{s.event}
				}
				if got := e.events.take(); !slices.Equal(got, want) {
					t.Errorf("%s: events %v, want %v", s.name, got, want)
				}
				if t.Failed() {
					t.FailNow()
				}
				switch s.name {
				case "rename in use":
					if exists(e.path("p", "custom", "v2", "filesystem")) {
						t.Error("a refused rename moved the volume")
					}
				case "no longer in use: shift":
					v, _ := e.m.Volume(e.ctx, "p", "custom", "v1")
					if v.Config["security.shifted"] != "true" || v.Config["user.a"] != "1" || v.Description != "first" {
						t.Errorf("after patch: %q %v", v.Description, v.Config)
					}
				case "rename":
					_, err := e.m.Volume(e.ctx, "p", "custom", "v1")
					wantErr(t, "old name after rename", err, errdefs.ErrNotFound)
					_, err = e.m.Attach(e.ctx, "p", "v1")
					wantErr(t, "attach the old name", err, errdefs.ErrNotFound)
					v, err := e.m.Volume(e.ctx, "p", "custom", "v2")
					if err != nil {
						t.Fatal(err)
					}
					if v.Description != "first" || v.Config["security.shifted"] != "true" {
						t.Errorf("renamed volume lost its record: %q %v", v.Description, v.Config)
					}
					a, err := e.m.Attach(e.ctx, "p", "v2")
					if err != nil {
						t.Fatal(err)
					}
					if a.Path != e.path("p", "custom", "v2", "filesystem") || !a.Shifted || !exists(filepath.Join(a.Path, "data")) {
						t.Errorf("renamed volume attaches as %+v", a)
					}
					if exists(e.path("p", "custom", "v1", "filesystem")) {
						t.Error("the old directory is left")
					}
					if st, err := e.m.VolumeState(e.ctx, "p", "custom", "v2"); err != nil || st.Usage.Used < 1<<20 {
						t.Errorf("state after rename: %+v %v", st, err)
					}
				case "size on a filesystem volume":
					st, err := e.m.VolumeState(e.ctx, "p", "custom", "v1")
					want := int64(0)
					if drv == "btrfs" {
						want = 32 << 20
					}
					if err != nil || st.Usage.Total != want {
						t.Errorf("limit after patching size: %+v %v, want %d", st, err, want)
					}
				case "put replaces config and description":
					v, _ := e.m.Volume(e.ctx, "p", "custom", "v2")
					if v.Description != "" || !mapsEqual(v.Config, map[string]string{"user.b": "2"}) {
						t.Errorf("after put: %q %v", v.Description, v.Config)
					}
					// The size went with the put: no limit any more.
					if st, err := e.m.VolumeState(e.ctx, "p", "custom", "v2"); err != nil || st.Usage.Total != 0 {
						t.Errorf("limit after put without size: %+v %v", st, err)
					}
				case "grow a block volume", "shrink a block volume", "unset a block volume's size":
					if n := fileSize(t, blkFile); n != 16<<20 {
						t.Errorf("block file is %d bytes, want 16MiB", n)
					}
					if v, _ := e.m.Volume(e.ctx, "p", "custom", "blk"); v.Config["size"] != "16MiB" {
						t.Errorf("block volume records size %q", v.Config["size"])
					}
				case "delete":
					if exists(e.path("p", "custom", "v2", "filesystem")) {
						t.Error("deleted volume's directory left")
					}
					if _, err := e.st.GetStorageVolume(e.ctx, "p", "default", "custom", "v2"); !errors.Is(err, errdefs.ErrNotFound) {
						t.Errorf("deleted volume's record: %v", err)
					}
				}
			}
			// After a restart the reconciliation keeps every volume.
			e.restart()
			want := []string{"custom/blk.block", "custom/other"}
			if got := e.onDisk("p"); !slices.Equal(got, want) {
				t.Errorf("on disk after restart %v, want %v", got, want)
			}
		})
	}
}

// TestVolumeTypes: only custom volumes change through the volume API;
// a type that is none is a 400 everywhere.
func TestVolumeTypes(t *testing.T) {
	e := newEnv(t)
	e.dirPool("p", nil)
	if err := e.m.CreateRoot(e.ctx, RootRequest{InstanceID: 1, RuntimeID: "r1", Name: "c1", Pool: "p", Image: treeImage, IDMap: &testMap}); err != nil {
		t.Fatal(err)
	}
	ops := map[string]func(typ, name string) error{
		"patch": func(typ, name string) error {
			return e.m.PatchVolume(e.ctx, "p", typ, name, VolumePut{Description: "x"})
		},
		"put": func(typ, name string) error {
			return e.m.UpdateVolume(e.ctx, "p", typ, name, VolumePut{Description: "x"})
		},
		"rename": func(typ, name string) error { return e.m.RenameVolume(e.ctx, "p", typ, name, "new") },
		"delete": func(typ, name string) error { return e.m.DeleteVolume(e.ctx, "p", typ, name) },
	}
	tests := []struct {
		typ, name string
		says      []string
	}{
		{"container", "c1", []string{"only custom volumes"}},
		{"virtual-machine", "c1", []string{"only custom volumes"}},
		{"image", treeImage, []string{"only custom volumes"}},
		{"bogus", "c1", []string{`"bogus"`, "custom, container, virtual-machine or image"}},
		{"", "c1", []string{"custom, container"}},
	}
	for _, tt := range tests {
		for op, do := range ops {
			t.Run(op+" "+tt.typ, func(t *testing.T) {
				wantErr(t, op, do(tt.typ, tt.name), errdefs.ErrInvalidArgument, tt.says...)
			})
		}
	}
	for _, typ := range []string{"bogus", ""} {
		_, err := e.m.Volume(e.ctx, "p", typ, "c1")
		wantErr(t, "get "+typ, err, errdefs.ErrInvalidArgument, "custom, container")
		_, err = e.m.VolumeState(e.ctx, "p", typ, "c1")
		wantErr(t, "state "+typ, err, errdefs.ErrInvalidArgument, "custom, container")
	}
	// The root is still there, untouched, and readable as a volume.
	v, err := e.m.Volume(e.ctx, "p", "container", "c1")
	if err != nil {
		t.Fatal(err)
	}
	if v.Description != "" || !slices.Equal(v.UsedBy, []string{"instances/c1"}) {
		t.Errorf("root volume %q used by %v", v.Description, v.UsedBy)
	}
	if _, err := e.m.VolumeState(e.ctx, "p", "container", "c1"); err != nil {
		t.Errorf("state of a root: %v", err)
	}
	_, err = e.m.Volume(e.ctx, "p", "custom", "c1")
	wantErr(t, "a root as a custom volume", err, errdefs.ErrNotFound)
	_, err = e.m.Attach(e.ctx, "p", "c1")
	wantErr(t, "attach a root", err, errdefs.ErrNotFound)
	_, err = e.m.Volume(e.ctx, "nope", "custom", "c1")
	wantErr(t, "a volume on a missing pool", err, errdefs.ErrNotFound, `"nope"`)
}

// TestVolumesList: one entry per image however many id maps it is cached
// for, each entry with who uses it; pending volumes are not listed.
func TestVolumesList(t *testing.T) {
	e := newEnv(t)
	e.dirPool("p", nil)
	for i, m := range []*RootRequest{
		{InstanceID: 1, RuntimeID: "r1", Name: "c1", Pool: "p", Image: treeImage, IDMap: &testMap},
		{InstanceID: 2, RuntimeID: "r2", Name: "c2", Pool: "p", Image: treeImage, IDMap: &otherMap},
	} {
		if err := e.m.CreateRoot(e.ctx, *m); err != nil {
			t.Fatalf("root %d: %v", i, err)
		}
	}
	if err := e.m.CreateVolume(e.ctx, CreateVolumeRequest{Pool: "p", Name: "v"}); err != nil {
		t.Fatal(err)
	}
	e.users.set("p", "v", "instances/c1")
	vols, err := e.m.Volumes(e.ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vols {
		got = append(got, v.Type+"/"+v.Name+" "+v.ContentType+" "+slicesString(v.UsedBy))
	}
	slices.Sort(got)
	want := []string{
		"container/c1 filesystem [instances/c1]",
		"container/c2 filesystem [instances/c2]",
		"custom/v filesystem [instances/c1]",
		"image/" + treeImage + " filesystem [images/" + treeImage + "]",
	}
	if !slices.Equal(got, want) {
		t.Errorf("volumes\n%q\nwant\n%q", got, want)
	}
	_, err = e.m.Volumes(e.ctx, "nope")
	wantErr(t, "volumes of a missing pool", err, errdefs.ErrNotFound)
}

func slicesString(s []string) string {
	out := "["
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out + "]"
}

// TestDeleteRefusedByDriver: a delete the driver refuses before removing
// anything (the volume is a mount point: a process holds it) is a 409 and
// leaves the volume as it was: listed, usable, and kept by the next
// start's reconciliation, which removes only what a delete had begun.
func TestDeleteRefusedByDriver(t *testing.T) {
	e := newEnv(t)
	e.dirPool("p", nil)
	if err := e.m.CreateVolume(e.ctx, CreateVolumeRequest{Pool: "p", Name: "v"}); err != nil {
		t.Fatal(err)
	}
	if err := e.m.CreateRoot(e.ctx, RootRequest{InstanceID: 1, RuntimeID: "r1", Name: "c1", Pool: "p", IDMap: &testMap}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		path   string
		delete func() error
		// present says the volume is there through the API.
		present func() error
	}{
		{
			name: "custom volume", path: e.path("p", "custom", "v", "filesystem"),
			delete: func() error { return e.m.DeleteVolume(e.ctx, "p", "custom", "v") },
			present: func() error {
				_, err := e.m.Attach(e.ctx, "p", "v")
				return err
			},
		},
		{
			name: "instance root", path: e.path("p", "container", "r1", "filesystem"),
			delete: func() error { return e.m.DeleteRoot(e.ctx, 1) },
			present: func() error {
				_, err := e.m.Root(e.ctx, RootRequest{InstanceID: 1, IDMap: &testMap})
				return err
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(tt.path, "keep"), []byte("data"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := unix.Mount(tt.path, tt.path, "", unix.MS_BIND, ""); err != nil {
				t.Fatal(err)
			}
			mounted := true
			defer func() {
				if mounted {
					_ = unix.Unmount(tt.path, 0)
				}
			}()
			wantErr(t, "delete a mounted volume", tt.delete(), errdefs.ErrConflict, "mounted")
			wantErr(t, "the volume after a refused delete", tt.present(), nil)
			if err := unix.Unmount(tt.path, 0); err != nil {
				t.Fatal(err)
			}
			mounted = false
			e.restart()
			wantErr(t, "the volume after a restart", tt.present(), nil)
			if got := readFile(t, filepath.Join(tt.path, "keep")); got != "data" {
				t.Errorf("volume content %q after restart", got)
			}
			wantErr(t, "delete once unmounted", tt.delete(), nil)
			if exists(tt.path) {
				t.Error("deleted volume left on disk")
			}
		})
	}
	if got := e.records("p"); len(got) != 0 {
		t.Errorf("records left: %v", got)
	}
}

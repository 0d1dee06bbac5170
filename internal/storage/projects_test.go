package storage

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/project"
	"github.com/hangar-dev/hangar/internal/storage/drivers"
)

// addProjects stores project rows beside default, as the projects domain
// would (the store's own methods for them are the projects domain's).
func (e *env) addProjects(names ...string) {
	e.t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(e.base, "hangar.db"))
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	for _, n := range names {
		if _, err := db.ExecContext(e.ctx, "INSERT INTO projects (name) VALUES (?)", n); err != nil {
			e.t.Fatalf("add project %s: %v", n, err)
		}
	}
}

// inProject is ctx acting in project name, with its own custom volumes
// when volumes is set.
func inProject(ctx context.Context, name string, volumes bool) context.Context {
	cfg := map[string]string{}
	if volumes {
		cfg[project.FeatureStorageVolumes] = "true"
	}
	return project.WithProject(ctx, project.Project{Name: name, Config: cfg})
}

// TestVolumeProjects: custom volumes belong to the scope project (names
// per project, LXD's PROJECT_NAME on disk), instance roots to their
// instance's project; each project sees only its own.
func TestVolumeProjects(t *testing.T) {
	e := newEnv(t)
	e.addProjects("p1", "p2")
	def := e.ctx
	p1 := inProject(e.ctx, "p1", true)
	p2 := inProject(e.ctx, "p2", false) // Uses the default project's volumes.

	for _, tt := range []struct {
		name    string
		ctx     context.Context
		vol     string
		wantErr error
	}{
		{"default v1", def, "v1", nil},
		{"p1 v1: same name, another project", p1, "v1", nil},
		{"p1 v1 again", p1, "v1", errdefs.ErrConflict},
		{"p2 without the feature shares default's names", p2, "v1", errdefs.ErrConflict},
		{"p2 makes a default-project volume", p2, "v2", nil},
		{"default p1_v3 leaves p1's v3 its disk name", def, "p1_v3", nil},
		{"p1 v3 would share that directory", p1, "v3", errdefs.ErrConflict},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := e.m.CreateVolume(tt.ctx, CreateVolumeRequest{Pool: "default", Name: tt.vol})
			wantErr(t, "create", err, tt.wantErr)
		})
	}
	if !exists(e.path("default", drivers.TypeCustom, "v1", drivers.ContentFilesystem)) ||
		!exists(e.path("default", drivers.TypeCustom, "p1_v1", drivers.ContentFilesystem)) {
		t.Errorf("on disk %v: want custom/v1 and custom/p1_v1", e.onDisk("default"))
	}

	// Two instances called c1, in two projects.
	for i, ctx := range []context.Context{def, inProject(e.ctx, "p1", false)} {
		req := RootRequest{InstanceID: int64(i + 1), RuntimeID: "r" + string(rune('1'+i)), Name: "c1", Pool: "default", IDMap: &testMap}
		if err := e.m.CreateRoot(ctx, req); err != nil {
			t.Fatalf("root of c1 in %s: %v", project.Name(ctx), err)
		}
	}
	list := func(ctx context.Context) []string {
		vols, err := e.m.Volumes(ctx, "default")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, v := range vols {
			out = append(out, v.Type+"/"+v.Name+" "+slicesString(v.UsedBy))
		}
		slices.Sort(out)
		return out
	}
	for _, tt := range []struct {
		name string
		ctx  context.Context
		want []string
	}{
		{"default", def, []string{"container/c1 [instances/c1]", "custom/p1_v3 []", "custom/v1 []", "custom/v2 []"}},
		{"p1", p1, []string{"container/c1 [instances/c1?project=p1]", "custom/v1 []"}},
		{"p2 sees default's custom volumes, its own instances", p2, []string{"custom/p1_v3 []", "custom/v1 []", "custom/v2 []"}},
	} {
		if got := list(tt.ctx); !slices.Equal(got, tt.want) {
			t.Errorf("%s lists\n%q\nwant\n%q", tt.name, got, tt.want)
		}
	}

	// Another project's volume is not found, whatever the verb.
	for _, tt := range []struct {
		name string
		do   func() error
	}{
		{"get", func() error { _, err := e.m.Volume(p1, "default", "custom", "v2"); return err }},
		{"update", func() error { return e.m.UpdateVolume(p1, "default", "custom", "v2", VolumePut{}) }},
		{"rename", func() error { return e.m.RenameVolume(p1, "default", "custom", "v2", "v9") }},
		{"delete", func() error { return e.m.DeleteVolume(p1, "default", "custom", "v2") }},
		{"snapshot", func() error { return e.m.CreateVolumeSnapshot(p1, "default", "custom", "v2", "s", SnapshotPut{}) }},
		{"snapshots", func() error { _, err := e.m.VolumeSnapshots(p1, "default", "custom", "v2"); return err }},
		{"attach", func() error { _, err := e.m.Attach(p1, "default", "v2"); return err }},
		{"another project's root", func() error {
			_, err := e.m.Volume(inProject(e.ctx, "p2", false), "default", "container", "c1")
			return err
		}},
	} {
		t.Run("other project's: "+tt.name, func(t *testing.T) {
			wantErr(t, tt.name, tt.do(), errdefs.ErrNotFound)
		})
	}

	// p1's v1 lives its own life: snapshot, rename, delete; default's v1 stays.
	if err := e.m.CreateVolumeSnapshot(p1, "default", "custom", "v1", "s1", SnapshotPut{}); err != nil {
		t.Fatalf("snapshot p1's v1: %v", err)
	}
	if snaps, err := e.m.VolumeSnapshots(def, "default", "custom", "v1"); err != nil || len(snaps) != 0 {
		t.Errorf("default's v1 snapshots %v, %v; want none", snaps, err)
	}
	if err := e.m.RenameVolume(p1, "default", "custom", "v1", "w1"); err != nil {
		t.Fatalf("rename p1's v1: %v", err)
	}
	if !exists(e.path("default", drivers.TypeCustom, "p1_w1", drivers.ContentFilesystem)) {
		t.Errorf("on disk after the rename %v: want custom/p1_w1", e.onDisk("default"))
	}
	if err := e.m.DeleteVolume(p1, "default", "custom", "w1"); err != nil {
		t.Fatalf("delete p1's w1: %v", err)
	}
	if _, err := e.m.Volume(def, "default", "custom", "v1"); err != nil {
		t.Errorf("default's v1 after p1's went: %v", err)
	}
	pool, err := e.m.Pool(def, "default")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pool.UsedBy, "storage-pools/default/volumes/custom/v1") {
		t.Errorf("pool used_by %v", pool.UsedBy)
	}
}

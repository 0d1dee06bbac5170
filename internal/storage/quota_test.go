package storage

import (
	"context"
	"errors"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/project"
	"github.com/hangar-dev/hangar/internal/store"
)

// fakeQuota is a limits.disk of limit bytes per project, over the
// manager's own usage (custom volumes' sizes).
type fakeQuota struct {
	m     *Manager
	limit int64
}

func (q fakeQuota) CheckAdd(ctx context.Context, p string, delta project.Usage) error {
	u, err := q.m.ProjectUsage(ctx, p)
	if err != nil {
		return err
	}
	if u.Disk+delta.Disk > q.limit {
		return errdefs.Forbidden("project %q: limits.disk exceeded", p)
	}
	return nil
}

// Custom volumes' sizes count against their project's limits.disk: a
// create or a resize past it is refused and changes nothing; snapshots
// and other projects' volumes do not count.
func TestVolumeDiskQuota(t *testing.T) {
	e := newEnv(t)
	e.dirPool("p", nil)
	e.m.cfg.Quota = fakeQuota{m: e.m, limit: 3 << 30}
	block := func(ctx context.Context, name, size string) error {
		return e.m.CreateVolume(ctx, CreateVolumeRequest{Pool: "p", Name: name, ContentType: "block", Config: map[string]string{"size": size}})
	}
	if err := block(e.ctx, "a", "2GiB"); err != nil {
		t.Fatal(err)
	}
	cfg := map[string]string{project.FeatureStorageVolumes: "true"}
	if err := e.st.CreateProject(e.ctx, &store.Project{Name: "other", Config: cfg}, false); err != nil {
		t.Fatal(err)
	}
	other := project.WithProject(e.ctx, project.Project{Name: "other", Config: cfg})
	if err := block(other, "a", "2GiB"); err != nil {
		t.Fatalf("another project's volume: %v", err)
	}
	if err := block(e.ctx, "b", "2GiB"); !errors.Is(err, errdefs.ErrForbidden) {
		t.Errorf("a create past the limit: %v, want refused", err)
	}
	if _, err := e.m.Volume(e.ctx, "p", "custom", "b"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("the refused volume exists: %v", err)
	}
	if err := e.m.UpdateVolume(e.ctx, "p", "custom", "a", VolumePut{Config: map[string]string{"size": "4GiB"}}); !errors.Is(err, errdefs.ErrForbidden) {
		t.Errorf("a resize past the limit: %v, want refused", err)
	}
	if err := block(e.ctx, "b", "1GiB"); err != nil {
		t.Errorf("a create that fits: %v", err)
	}
	u, err := e.m.ProjectUsage(e.ctx, project.Default)
	if err != nil || u.Disk != 3<<30 {
		t.Errorf("default's usage %+v, %v; want 3 GiB", u, err)
	}
}

package storage

import (
	"errors"

	"context"
	"net/url"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/units"

	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/project"
	"github.com/hangar-dev/hangar/internal/storage/drivers"
)

// volumeProject is the project whose volumes of type typ ctx sees: custom
// volumes are its scope project's (features.storage.volumes, else the
// default project's), instance roots its own project's (instances are
// always per project), image volumes the default project's (an image is
// cached once per pool whichever projects hold it).
func volumeProject(ctx context.Context, typ string) string {
	switch drivers.VolumeType(typ) {
	case drivers.TypeCustom:
		return project.From(ctx).Scope(project.FeatureStorageVolumes)
	case drivers.TypeContainer, drivers.TypeVM:
		return project.Name(ctx)
	}
	return project.Default
}

// customDiskName is the on-disk name of project's custom volume name:
// LXD's PROJECT_NAME outside the default project, so two projects' "v1"
// never share a directory (project names have no "/"; "_" in them cannot
// make two disk names meet, as a volume name is unique per project and a
// default-project volume's disk name could clash only by naming itself
// "p_v", which CreateStorageVolume's disk-name uniqueness refuses).
func customDiskName(proj, name string) string {
	if proj == project.Default || proj == "" {
		return name
	}
	return proj + "_" + name
}

// customLockKey is the lock of one project's custom volume.
func customLockKey(pool, proj, name string) string {
	return "custom/" + pool + "/" + proj + "/" + name
}

// projectQuery is the ?project= suffix of a used_by entry naming an
// object of proj, as LXD writes it outside the default project.
func projectQuery(proj string) string {
	if proj == "" || proj == project.Default {
		return ""
	}
	return "?project=" + url.QueryEscape(proj)
}

// emitIn publishes a lifecycle event about an object of proj.
func (m *Manager) emitIn(ctx context.Context, proj, action, kind, name string, meta map[string]any) {
	if m.cfg.Events != nil {
		m.cfg.Events.Lifecycle(ctx, action, event.Entity{Kind: kind, Name: name, Project: proj}, meta)
	}
}

// diskNameFree refuses a custom volume disk name already on the pool with
// either content: the default project's "p1_v" and project p1's "v" would
// share one directory (the store keeps disk names unique per content
// only).
func (m *Manager) diskNameFree(ctx context.Context, pool, disk string) error {
	for _, c := range []drivers.ContentType{drivers.ContentFilesystem, drivers.ContentBlock} {
		v, err := m.cfg.Store.GetStorageVolumeByDisk(ctx, pool, string(drivers.TypeCustom), string(c), disk)
		switch {
		case err == nil:
			return errdefs.Conflict("storage volume name %q is taken on pool %q (by %s in project %q)", disk, pool, v.Name, v.Project)
		case !errors.Is(err, errdefs.ErrNotFound):
			return err
		}
	}
	return nil
}

// Quota checks growth against project limits (project.Service.CheckAdd).
type Quota interface {
	CheckAdd(ctx context.Context, project string, delta project.Usage) error
}

// checkDisk checks that project p may take grow more bytes of disk
// (limits.disk); the caller holds quotaMu.
func (m *Manager) checkDisk(ctx context.Context, p string, grow int64) error {
	if m.cfg.Quota == nil || grow <= 0 {
		return nil
	}
	return m.cfg.Quota.CheckAdd(ctx, p, project.Usage{Disk: grow})
}

// ProjectUsage is the disk project p's custom volumes take (their sizes):
// the storage part of its limits.disk (instances' root disks are the
// core's).
func (m *Manager) ProjectUsage(ctx context.Context, p string) (project.Usage, error) {
	vols, err := m.cfg.Store.ListProjectCustomVolumes(ctx, p)
	if err != nil {
		return project.Usage{}, err
	}
	var u project.Usage
	for _, v := range vols {
		if n, err := units.ParseByteSize(v.Config["size"]); err == nil {
			u.Disk += n
		}
	}
	return u, nil
}

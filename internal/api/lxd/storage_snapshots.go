package lxd

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/snapshotpolicy"
	"github.com/hangar-dev/hangar/internal/storage"
)

// Storage volume snapshots,
// /1.0/storage-pools/{pool}/volumes/{type}/{name}/snapshots, as LXD 5.0.2
// serves them: any volume's are listed (an instance root's too), only a
// custom volume's are made, renamed or deleted here (operations) or
// updated (sync). A restore is a PUT of the volume naming one
// (putVolume). The ETag covers the description and the expiry.

// VolumeSnapshots is what the edge needs of the manager's volume
// snapshots.
type VolumeSnapshots interface {
	VolumeSnapshots(ctx context.Context, pool, typ, name string) ([]storage.Snapshot, error)
	VolumeSnapshot(ctx context.Context, pool, typ, name, snap string) (storage.Snapshot, error)
	CreateVolumeSnapshot(ctx context.Context, pool, typ, name, snap string, put storage.SnapshotPut) error
	UpdateVolumeSnapshot(ctx context.Context, pool, typ, name, snap string, put storage.SnapshotPut) error
	RenameVolumeSnapshot(ctx context.Context, pool, typ, name, snap, newName string) error
	DeleteVolumeSnapshot(ctx context.Context, pool, typ, name, snap string) error
	RestoreVolume(ctx context.Context, pool, typ, name, snap string) error
}

func volumeSnapshotURL(pool, typ, name, snap string) string {
	return volumeURL(pool, typ, name) + "/snapshots/" + url.PathEscape(snap)
}

// volumeSnapshotResources names the volume of a snapshot operation. LXD
// writes "/1.0/storage_volumes/NAME" (its resource key joined to the bare
// name); the volume's own URL under the same key says more.
func volumeSnapshotResources(key, pool, typ, name string) map[string][]string {
	return map[string][]string{key: {volumeURL(pool, typ, name)}}
}

func toAPIVolumeSnapshot(sn storage.Snapshot, always bool) api.StorageVolumeSnapshot {
	out := api.StorageVolumeSnapshot{
		StorageVolumeSnapshotPut: api.StorageVolumeSnapshotPut{Description: sn.Description},
		Name:                     sn.Name,
		Config:                   nonNilConfig(sn.Config),
		ContentType:              sn.ContentType,
		CreatedAt:                sn.CreatedAt,
	}
	if out.ContentType == "" {
		out.ContentType = api.StorageContentTypeFilesystem
	}
	// LXD's listing leaves a never-expiring snapshot's expires_at out;
	// its GET of one shows the zero time.
	if e := sn.ExpiresAt; always || !e.IsZero() {
		out.ExpiresAt = &e
	}
	return out
}

func volumeSnapshotETag(sn storage.Snapshot) string {
	return etagJSON([]any{sn.Description, sn.ExpiresAt})
}

// customVolumeType is the path's volume type, which must be custom: the
// snapshots of an instance's volume are the instance's.
func customVolumeType(r *http.Request) (string, error) {
	typ, err := volumeType(r)
	if err != nil {
		return "", err
	}
	if typ != api.StorageVolumeTypeCustom {
		return "", errdefs.Invalid("Invalid storage volume type %q: only custom volumes' snapshots are managed here (use the instance's snapshots)", typ)
	}
	return typ, nil
}

func (s *Server) listVolumeSnapshots(w http.ResponseWriter, r *http.Request) {
	typ, err := volumeType(r)
	if err != nil {
		writeError(w, err)
		return
	}
	rec, _ := recursion(r)
	pool, name := r.PathValue("pool"), r.PathValue("name")
	snaps, err := s.Storage.VolumeSnapshots(r.Context(), pool, typ, name)
	if err != nil {
		writeError(w, err)
		return
	}
	if rec == 0 {
		urls := make([]string, len(snaps))
		for i, sn := range snaps {
			urls[i] = volumeSnapshotURL(pool, typ, name, sn.Name)
		}
		writeSync(w, urls, "")
		return
	}
	out := make([]api.StorageVolumeSnapshot, len(snaps))
	for i, sn := range snaps {
		out[i] = toAPIVolumeSnapshot(sn, false)
	}
	writeSync(w, out, "")
}

func (s *Server) createVolumeSnapshot(w http.ResponseWriter, r *http.Request) {
	typ, err := customVolumeType(r)
	if err != nil {
		writeError(w, err)
		return
	}
	pool, name := r.PathValue("pool"), r.PathValue("name")
	if checked(w, s.allow(r, customVolumeObject(r, pool, name), auth.CanEdit)) {
		return
	}
	vol, err := s.Storage.Volume(r.Context(), pool, typ, name)
	if err != nil {
		writeError(w, err)
		return
	}
	var req api.StorageVolumeSnapshotsPost
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	snaps, err := s.Storage.VolumeSnapshots(r.Context(), pool, typ, name)
	if err != nil {
		writeError(w, err)
		return
	}
	names := make([]string, len(snaps))
	for i, sn := range snaps {
		names[i] = sn.Name
	}
	now := time.Now().UTC()
	if req.Name == "" {
		// LXD's default for volumes: the first free snap%d.
		if req.Name, err = snapshotpolicy.Name("snap%d", now, names); err != nil {
			writeError(w, err)
			return
		}
	}
	if err := snapshotName(req.Name); err != nil {
		writeError(w, err)
		return
	}
	for _, n := range names {
		if n == req.Name {
			writeError(w, errdefs.Conflict("Snapshot %q already in use", req.Name))
			return
		}
	}
	put := storage.SnapshotPut{}
	if req.ExpiresAt != nil {
		put.ExpiresAt = *req.ExpiresAt
	} else {
		e, err := snapshotpolicy.ParseExpiry(vol.Config["snapshots.expiry"])
		if err != nil {
			writeError(w, err)
			return
		}
		put.ExpiresAt = e.After(now)
	}
	snap := req.Name
	s.startOp(w, r, "Creating storage volume snapshot", volumeSnapshotResources("storage_volumes", pool, typ, name), func(ctx context.Context) error {
		return s.Storage.CreateVolumeSnapshot(ctx, pool, typ, name, snap, put)
	})
}

// volumeSnapshotOf reads the snapshot the path names.
func (s *Server) volumeSnapshotOf(r *http.Request, typ string) (storage.Snapshot, error) {
	return s.Storage.VolumeSnapshot(r.Context(), r.PathValue("pool"), typ, r.PathValue("name"), r.PathValue("snap"))
}

func (s *Server) getVolumeSnapshot(w http.ResponseWriter, r *http.Request) {
	typ, err := volumeType(r)
	if err != nil {
		writeError(w, err)
		return
	}
	sn, err := s.volumeSnapshotOf(r, typ)
	if err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, toAPIVolumeSnapshot(sn, true), volumeSnapshotETag(sn))
}

// updateVolumeSnapshot is PUT (the body replaces description and expiry:
// absent, they are cleared) and PATCH (absent fields are kept), as LXD.
func (s *Server) updateVolumeSnapshot(w http.ResponseWriter, r *http.Request) {
	typ, err := customVolumeType(r)
	if err != nil {
		writeError(w, err)
		return
	}
	cur, err := s.volumeSnapshotOf(r, typ)
	if err != nil {
		writeError(w, err)
		return
	}
	if m := ifMatch(r); m != "" && m != volumeSnapshotETag(cur) {
		writeError(w, errdefs.PreconditionFailed("snapshot %q changed since it was read (ETag mismatch)", cur.Name))
		return
	}
	var req api.StorageVolumeSnapshotPut
	if r.Method == http.MethodPatch {
		e := cur.ExpiresAt
		req = api.StorageVolumeSnapshotPut{Description: cur.Description, ExpiresAt: &e}
	}
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	put := storage.SnapshotPut{Description: req.Description}
	if req.ExpiresAt != nil {
		put.ExpiresAt = *req.ExpiresAt
	}
	if err := s.Storage.UpdateVolumeSnapshot(r.Context(), r.PathValue("pool"), typ, r.PathValue("name"), cur.Name, put); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}

func (s *Server) deleteVolumeSnapshot(w http.ResponseWriter, r *http.Request) {
	typ, err := customVolumeType(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if checked(w, s.allow(r, customVolumeObject(r, r.PathValue("pool"), r.PathValue("name")), auth.CanEdit)) {
		return
	}
	sn, err := s.volumeSnapshotOf(r, typ)
	if err != nil {
		writeError(w, err)
		return
	}
	pool, name := r.PathValue("pool"), r.PathValue("name")
	s.startOp(w, r, "Deleting storage volume snapshot", volumeSnapshotResources("storage_volume_snapshots", pool, typ, name), func(ctx context.Context) error {
		return s.Storage.DeleteVolumeSnapshot(ctx, pool, typ, name, sn.Name)
	})
}

func (s *Server) renameVolumeSnapshot(w http.ResponseWriter, r *http.Request) {
	typ, err := customVolumeType(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if checked(w, s.allow(r, customVolumeObject(r, r.PathValue("pool"), r.PathValue("name")), auth.CanEdit)) {
		return
	}
	sn, err := s.volumeSnapshotOf(r, typ)
	if err != nil {
		writeError(w, err)
		return
	}
	var req api.StorageVolumeSnapshotPost
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	switch {
	case req.Name == "":
		err = errdefs.Invalid("No name provided")
	case strings.Contains(req.Name, "/"):
		err = errdefs.Invalid("Storage volume names may not contain slashes")
	default:
		err = snapshotName(req.Name)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	pool, name := r.PathValue("pool"), r.PathValue("name")
	if _, err := s.Storage.VolumeSnapshot(r.Context(), pool, typ, name, req.Name); err == nil {
		writeError(w, errdefs.Conflict("Snapshot %q already in use", req.Name))
		return
	}
	s.startOp(w, r, "Renaming storage volume snapshot", volumeSnapshotResources("storage_volume_snapshots", pool, typ, name), func(ctx context.Context) error {
		return s.Storage.RenameVolumeSnapshot(ctx, pool, typ, name, sn.Name, req.Name)
	})
}

// restoreVolume restores a custom volume from its snapshot named in a
// PUT's "restore" ("SNAP", or "VOLUME/SNAP"); as LXD, it is done before
// the answer.
func (s *Server) restoreVolume(ctx context.Context, pool, typ, name, snap string) error {
	if typ != api.StorageVolumeTypeCustom {
		return errdefs.Invalid("storage volumes of type %q are restored through their instance", typ)
	}
	if parent, rest, ok := strings.Cut(snap, "/"); ok {
		if parent != name || strings.Contains(rest, "/") {
			return errdefs.Invalid("restore: %q is not a snapshot of volume %q", snap, name)
		}
		snap = rest
	}
	return s.Storage.RestoreVolume(ctx, pool, typ, name, snap)
}

package lxd

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/instance"
	"github.com/hangar-dev/hangar/internal/snapshotpolicy"
)

// Instance snapshots, /1.0/instances/{name}/snapshots, as LXD 5.0.2
// serves them: create, rename, delete and update are operations (update
// and restore are applied before the answer, as a PUT of an instance is,
// so that bad input is a 4xx and not a failed operation); GET carries an
// ETag over the expiry, which is all a PUT can change.

func snapshotURL(inst, snap string) string { return instanceURL(inst) + "/snapshots/" + snap }

// snapshotResources names a snapshot operation's instance as LXD does
// (its instance, not the snapshot).
func (s *Server) snapshotResources(ctx context.Context, name string) map[string][]string {
	return instanceResources(s.typeOf(ctx, name), name)
}

func toAPISnapshot(sn instance.Snapshot) api.InstanceSnapshot {
	return api.InstanceSnapshot{
		InstanceSnapshotPut: api.InstanceSnapshotPut{ExpiresAt: sn.ExpiresAt},
		Architecture:        sn.Architecture,
		Config:              nonNilConfig(sn.Config),
		CreatedAt:           sn.CreatedAt,
		Devices:             nonNilDevices(sn.Devices),
		Ephemeral:           sn.Ephemeral,
		ExpandedConfig:      sn.ExpandedConfig,
		ExpandedDevices:     sn.ExpandedDevices,
		// A snapshot is never used: LXD shows the zero time too.
		Name:     sn.Name,
		Profiles: nonNilStrings(sn.Profiles),
		Stateful: sn.Stateful,
		// LXD's "not measured"; no pool here counts a snapshot's own
		// blocks cheaply.
		Size: -1,
	}
}

func nonNilDevices(d map[string]map[string]string) map[string]map[string]string {
	if d == nil {
		return map[string]map[string]string{}
	}
	return d
}

func nonNilStrings(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

// snapshotETag is LXD's: the expiry alone.
func snapshotETag(sn instance.Snapshot) string {
	return etagJSON([]any{sn.ExpiresAt})
}

// snapshotsOf is the recursion=2 view of an instance's snapshots; an
// instance deleted since it was listed has none.
func (s *Server) snapshotsOf(ctx context.Context, name string) ([]api.InstanceSnapshot, error) {
	snaps, err := s.Instances.Snapshots(ctx, name)
	if errors.Is(err, errdefs.ErrNotFound) {
		return []api.InstanceSnapshot{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]api.InstanceSnapshot, len(snaps))
	for i, sn := range snaps {
		out[i] = toAPISnapshot(sn)
	}
	return out, nil
}

// instanceName is the {name} of the path; a snapshot's "NAME/SNAP" (an
// escaped slash) is not an instance, as in LXD.
func instanceName(r *http.Request) (string, error) {
	name := r.PathValue("name")
	if strings.Contains(name, "/") {
		return "", errdefs.Invalid("Invalid instance name")
	}
	return name, nil
}

// snapshotName checks a snapshot name given in a request.
func snapshotName(name string) error {
	if err := snapshotpolicy.ValidateName(name); err != nil {
		return errdefs.Invalid("Invalid snapshot name: %v", err)
	}
	return nil
}

func (s *Server) listSnapshots(w http.ResponseWriter, r *http.Request) {
	name, err := instanceName(r)
	if err != nil {
		writeError(w, err)
		return
	}
	rec, _ := recursion(r)
	snaps, err := s.Instances.Snapshots(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	if rec == 0 {
		// LXD names them under /1.0/instances whatever the prefix.
		urls := make([]string, len(snaps))
		for i, sn := range snaps {
			urls[i] = snapshotURL(name, sn.Name)
		}
		writeSync(w, urls, "")
		return
	}
	out := make([]api.InstanceSnapshot, len(snaps))
	for i, sn := range snaps {
		out[i] = toAPISnapshot(sn)
	}
	writeSync(w, out, "")
}

func (s *Server) createSnapshot(w http.ResponseWriter, r *http.Request) {
	name, err := instanceName(r)
	if err != nil {
		writeError(w, err)
		return
	}
	// As LXD: a missing instance is a 404 before a bad body is a 400.
	inst, err := s.Instances.Get(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	var req api.InstanceSnapshotsPost
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.Name != "" {
		if err := snapshotName(req.Name); err != nil {
			writeError(w, err)
			return
		}
	}
	sreq := instance.SnapshotRequest{Name: req.Name, Stateful: req.Stateful, ExpiresAt: req.ExpiresAt}
	if err := s.Instances.CheckSnapshot(r.Context(), name, sreq); err != nil {
		writeError(w, err)
		return
	}
	s.startOp(w, r, "Snapshotting instance", instanceResources(string(inst.Type), name), func(ctx context.Context) error {
		_, err := s.Instances.CreateSnapshot(ctx, name, sreq)
		return err
	})
}

// snapshotOf reads the snapshot the path names.
func (s *Server) snapshotOf(r *http.Request) (name string, sn instance.Snapshot, err error) {
	if name, err = instanceName(r); err != nil {
		return "", instance.Snapshot{}, err
	}
	sn, err = s.Instances.GetSnapshot(r.Context(), name, r.PathValue("snap"))
	return name, sn, err
}

func (s *Server) getSnapshot(w http.ResponseWriter, r *http.Request) {
	_, sn, err := s.snapshotOf(r)
	if err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, toAPISnapshot(sn), snapshotETag(sn))
}

// snapshotExpiryBody is a PUT or PATCH body: LXD changes the expiry only
// when the body names it.
type snapshotExpiryBody struct {
	ExpiresAt *time.Time `json:"expires_at"`
}

// putSnapshot sets a snapshot's expiry (PUT and PATCH alike, as LXD). The
// If-Match check and the change are two steps: it catches a change made
// since the client read, not one racing this request.
func (s *Server) putSnapshot(w http.ResponseWriter, r *http.Request) {
	// Checked whether or not the body changes anything.
	if checked(w, s.allowInstance(r, r.PathValue("name"), auth.CanManageSnapshots)) {
		return
	}
	name, cur, err := s.snapshotOf(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if m := ifMatch(r); m != "" && m != snapshotETag(cur) {
		writeError(w, errdefs.PreconditionFailed("snapshot %q of instance %q changed since it was read (ETag mismatch)", cur.Name, name))
		return
	}
	var body snapshotExpiryBody
	if err := decode(r, &body); err != nil {
		writeError(w, err)
		return
	}
	if body.ExpiresAt != nil {
		put := instance.SnapshotPut{Description: cur.Description, ExpiresAt: *body.ExpiresAt}
		if err := s.Instances.UpdateSnapshot(r.Context(), name, cur.Name, put); err != nil {
			writeError(w, err)
			return
		}
	}
	s.startOp(w, r, "Updating snapshot", s.snapshotResources(r.Context(), name), func(context.Context) error { return nil })
}

func (s *Server) deleteSnapshot(w http.ResponseWriter, r *http.Request) {
	if checked(w, s.allowInstance(r, r.PathValue("name"), auth.CanManageSnapshots)) {
		return
	}
	name, sn, err := s.snapshotOf(r)
	if err != nil {
		writeError(w, err)
		return
	}
	s.startOp(w, r, "Deleting snapshot", s.snapshotResources(r.Context(), name), func(ctx context.Context) error {
		return s.Instances.DeleteSnapshot(ctx, name, sn.Name)
	})
}

// renameSnapshot is POST on a snapshot: a rename. LXD's other use of it,
// a migration of the snapshot to another server, is refused.
func (s *Server) renameSnapshot(w http.ResponseWriter, r *http.Request) {
	if checked(w, s.allowInstance(r, r.PathValue("name"), auth.CanManageSnapshots)) {
		return
	}
	name, sn, err := s.snapshotOf(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var req api.InstanceSnapshotPost
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	switch {
	case req.Migration || req.Live || req.Target != nil:
		err = errdefs.Invalid("hangard does not migrate snapshots: only a rename (field \"name\") is supported")
	case req.Name == "":
		err = errdefs.Invalid("no new snapshot name given (field \"name\")")
	default:
		err = snapshotName(req.Name)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	if _, err := s.Instances.GetSnapshot(r.Context(), name, req.Name); err == nil {
		writeError(w, errdefs.Conflict("Name '%s/%s' already in use", name, req.Name))
		return
	}
	s.startOp(w, r, "Renaming snapshot", s.snapshotResources(r.Context(), name), func(ctx context.Context) error {
		return s.Instances.RenameSnapshot(ctx, name, sn.Name, req.Name)
	})
}

// restoreSnapshot is a PUT of an instance naming a snapshot in "restore"
// (lxc restore sends "NAME/SNAP"; a bare "SNAP" works too). As LXD, the
// rest of the body is ignored and the restore is an operation; the
// snapshot's existence, the stateful flag and the ETag are checked first.
func (s *Server) restoreSnapshot(w http.ResponseWriter, r *http.Request, name string, put api.InstancePut) {
	snap := put.Restore
	if parent, rest, ok := strings.Cut(snap, "/"); ok {
		if parent != name || strings.Contains(rest, "/") {
			writeError(w, errdefs.Invalid("restore: %q is not a snapshot of instance %q", snap, name))
			return
		}
		snap = rest
	}
	if checked(w, s.allowInstance(r, name, auth.CanManageSnapshots)) {
		return
	}
	inst, err := s.Instances.Get(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	if m := ifMatch(r); m != "" && m != instanceETag(inst) {
		writeError(w, errdefs.PreconditionFailed("instance %q changed since it was read (ETag mismatch)", name))
		return
	}
	sn, err := s.Instances.GetSnapshot(r.Context(), name, snap)
	if err != nil {
		writeError(w, err)
		return
	}
	if put.Stateful && !sn.Stateful {
		writeError(w, errdefs.Invalid("snapshot %q of %q holds no state: restore it without stateful", snap, name))
		return
	}
	s.startOp(w, r, "Restoring snapshot", instanceResources(string(inst.Type), name), func(ctx context.Context) error {
		return s.Instances.RestoreSnapshot(ctx, name, snap, put.Stateful)
	})
}

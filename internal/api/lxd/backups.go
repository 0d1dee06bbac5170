package lxd

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/instance"
)

// Instance backups, as LXD 5.0 serves them (lxd/instance_backup.go):
// create, rename and delete are operations; export is the tarball; an
// import is POST /1.0/instances with an application/octet-stream body.

func backupURL(inst, name string) string {
	return instanceURL(inst) + "/backups/" + url.PathEscape(name)
}

func toAPIBackup(b instance.Backup) api.InstanceBackup {
	return api.InstanceBackup{Name: b.Name, CreatedAt: b.CreatedAt, ExpiresAt: b.ExpiresAt,
		InstanceOnly: b.InstanceOnly, ContainerOnly: b.InstanceOnly, OptimizedStorage: b.OptimizedStorage}
}

// lxdNoExpiry is LXD's "never" as a client may send it (year 1, UTC, or
// any zone): the zero time.
func noExpiry(t time.Time) time.Time {
	if t.Year() <= 1 {
		return time.Time{}
	}
	return t.UTC()
}

func (s *Server) listBackups(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	rec, err := recursion(r)
	if err != nil {
		writeError(w, err)
		return
	}
	list, err := s.Instances.Backups(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	if rec >= 1 {
		out := make([]api.InstanceBackup, 0, len(list))
		for _, b := range list {
			out = append(out, toAPIBackup(b))
		}
		writeSync(w, out, "")
		return
	}
	out := make([]string, 0, len(list))
	for _, b := range list {
		out = append(out, backupURL(name, b.Name))
	}
	writeSync(w, out, "")
}

func (s *Server) createBackup(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req api.InstanceBackupsPost
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			writeError(w, err)
			return
		}
	}
	c, err := s.Instances.CreateBackup(r.Context(), name, instance.BackupRequest{
		Name: req.Name, ExpiresAt: noExpiry(req.ExpiresAt), InstanceOnly: req.InstanceOnly || req.ContainerOnly,
		OptimizedStorage: req.OptimizedStorage, Compression: req.CompressionAlgorithm})
	if err != nil {
		writeError(w, err)
		return
	}
	res := instanceResources(s.typeOf(r.Context(), name), name)
	res["backups"] = []string{c.Name()} // the name, as LXD gives it (lxc export reads it)
	s.startOp(w, r, "Backing up instance", res, c.Run)
}

func (s *Server) getBackup(w http.ResponseWriter, r *http.Request) {
	b, err := s.Instances.GetBackup(r.Context(), r.PathValue("name"), r.PathValue("backup"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, toAPIBackup(b), "")
}

// renameBackup renames a backup. It is done before the answer, so a bad
// name is a 400 here; the operation reports the done rename, as LXD's.
func (s *Server) renameBackup(w http.ResponseWriter, r *http.Request) {
	name, b := r.PathValue("name"), r.PathValue("backup")
	var req api.InstanceBackupPost
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if err := s.Instances.RenameBackup(r.Context(), name, b, req.Name); err != nil {
		writeError(w, err)
		return
	}
	s.startOp(w, r, "Renaming instance backup", instanceResources(s.typeOf(r.Context(), name), name), func(context.Context) error { return nil })
}

func (s *Server) deleteBackup(w http.ResponseWriter, r *http.Request) {
	name, b := r.PathValue("name"), r.PathValue("backup")
	// Before the lookup: a missing backup is no answer to a caller that
	// may not delete one.
	if checked(w, s.allowInstance(r, name, auth.CanManageBackups)) {
		return
	}
	if _, err := s.Instances.GetBackup(r.Context(), name, b); err != nil {
		writeError(w, err)
		return
	}
	s.startOp(w, r, "Deleting instance backup", instanceResources(s.typeOf(r.Context(), name), name), func(ctx context.Context) error {
		return s.Instances.DeleteBackup(ctx, name, b)
	})
}

// exportBackup sends a backup's tarball.
func (s *Server) exportBackup(w http.ResponseWriter, r *http.Request) {
	f, b, err := s.Instances.OpenBackup(r.Context(), r.PathValue("name"), r.PathValue("backup"))
	if err != nil {
		writeError(w, err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", "inline;filename="+strconv.Quote(b.Name+".tar.gz"))
	http.ServeContent(w, r, "", st.ModTime(), f)
}

// importBackup makes an instance from an uploaded backup (LXD's
// createFromBackup, with its X-LXD-name and X-LXD-pool headers). The
// upload is read and the instance made before the answer, so a backup
// that is bad in any way (cut short, a path out of its volume, a pool
// that does not exist) is a 400 and leaves nothing; the operation then
// reports the done import, which is what lxc import waits for.
func (s *Server) importBackup(w http.ResponseWriter, r *http.Request) {
	upload := &uploadBody{ReadCloser: r.Body}
	r.Body = upload
	name, err := s.Instances.ImportBackup(r.Context(), upload, instance.ImportOptions{
		Name: r.Header.Get("X-LXD-name"), Pool: r.Header.Get("X-LXD-pool")})
	if err != nil {
		if aerr := upload.aborted(r.Context()); aerr != nil {
			err = errdefs.Invalid("backup upload did not arrive whole: %v", aerr)
		}
		s.refuseUpload(w, upload, err)
		return
	}
	s.startOp(w, r, "Creating instance from backup", instanceResources(s.typeOf(r.Context(), name), name), func(context.Context) error { return nil })
}

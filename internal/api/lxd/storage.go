package lxd

import (
	"cmp"
	"context"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/project"
	"github.com/hangar-dev/hangar/internal/storage"
)

// Storage is what the edge needs of the storage manager
// (*storage.Manager).
type Storage interface {
	Pools(ctx context.Context) ([]storage.Pool, error)
	Pool(ctx context.Context, name string) (storage.Pool, error)
	CreatePool(ctx context.Context, req storage.CreatePoolRequest) error
	UpdatePool(ctx context.Context, name string, put storage.PoolPut) error
	PatchPool(ctx context.Context, name string, put storage.PoolPut) error
	DeletePool(ctx context.Context, name string) error
	PoolResources(ctx context.Context, name string) (storage.Resources, error)
	Volumes(ctx context.Context, pool string) ([]storage.Volume, error)
	Volume(ctx context.Context, pool, typ, name string) (storage.Volume, error)
	CreateVolume(ctx context.Context, req storage.CreateVolumeRequest) error
	ImportISO(ctx context.Context, req storage.ImportISORequest) error
	UpdateVolume(ctx context.Context, pool, typ, name string, put storage.VolumePut) error
	PatchVolume(ctx context.Context, pool, typ, name string, put storage.VolumePut) error
	RenameVolume(ctx context.Context, pool, typ, name, newName string) error
	DeleteVolume(ctx context.Context, pool, typ, name string) error
	VolumeState(ctx context.Context, pool, typ, name string) (storage.VolumeState, error)
	VolumeSnapshots // storage_snapshots.go
}

// The manager is what the daemon gives the edge.
var _ Storage = (*storage.Manager)(nil)

// storageRoutes are the storage endpoints, below /1.0/storage-pools. LXD
// 5.0 has no pool rename: POST on a pool is "not implemented", as for any
// method an endpoint lacks.
func (s *Server) storageRoutes() []struct {
	method, path string
	h            http.HandlerFunc
} {
	const vol = "/{pool}/volumes/{type}/{name}"
	return []struct {
		method, path string
		h            http.HandlerFunc
	}{
		{"GET", "", s.listPools},
		{"POST", "", s.createPool},
		{"GET", "/{pool}", s.getPool},
		{"PUT", "/{pool}", s.putPool},
		{"PATCH", "/{pool}", s.patchPool},
		{"DELETE", "/{pool}", s.deletePool},
		{"GET", "/{pool}/resources", s.getPoolResources},
		{"GET", "/{pool}/volumes", s.listVolumes},
		{"POST", "/{pool}/volumes", s.createVolume},
		{"GET", "/{pool}/volumes/{type}", s.listVolumes},
		{"POST", "/{pool}/volumes/{type}", s.createVolume},
		{"GET", vol, s.getVolume},
		{"PUT", vol, s.putVolume},
		{"PATCH", vol, s.patchVolume},
		{"POST", vol, s.renameVolume},
		{"DELETE", vol, s.deleteVolume},
		{"GET", vol + "/state", s.getVolumeState},
		{"GET", vol + "/snapshots", s.listVolumeSnapshots},
		{"POST", vol + "/snapshots", s.createVolumeSnapshot},
		{"GET", vol + "/snapshots/{snap}", s.getVolumeSnapshot},
		{"PUT", vol + "/snapshots/{snap}", s.updateVolumeSnapshot},
		{"PATCH", vol + "/snapshots/{snap}", s.updateVolumeSnapshot},
		{"POST", vol + "/snapshots/{snap}", s.renameVolumeSnapshot},
		{"DELETE", vol + "/snapshots/{snap}", s.deleteVolumeSnapshot},
	}
}

func poolURL(name string) string { return "/1.0/storage-pools/" + url.PathEscape(name) }

func volumeURL(pool, typ, name string) string {
	return poolURL(pool) + "/volumes/" + url.PathEscape(typ) + "/" + url.PathEscape(name)
}

// storageUsedByURL turns the manager's relative users ("instances/c1",
// "storage-pools/p/volumes/custom/v1", either with "?project=P" outside
// the default project, as LXD writes them) into LXD's URLs, each segment
// escaped on its own and the query kept.
func storageUsedByURL(u string) string {
	if strings.HasPrefix(u, "/1.0/") {
		return u
	}
	path, query := cutUsedByQuery(u)
	parts := strings.Split(path, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return "/1.0/" + strings.Join(parts, "/") + query
}

// cutUsedByQuery splits a relative used_by entry from its "?project=P"
// suffix (kept, with its "?"), which must not be path-escaped.
func cutUsedByQuery(u string) (path, query string) {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i], u[i:]
	}
	return u, ""
}

func storageUsedBy(used []string) []string {
	out := make([]string, len(used))
	for i, u := range used {
		out[i] = storageUsedByURL(u)
	}
	return out
}

func nonNilConfig(cfg map[string]string) map[string]string {
	if cfg == nil {
		return map[string]string{}
	}
	return cfg
}

func toAPIPool(p storage.Pool) api.StoragePool {
	return api.StoragePool{
		StoragePoolPut: api.StoragePoolPut{Config: nonNilConfig(p.Config), Description: p.Description},
		Name:           p.Name,
		Driver:         p.Driver,
		UsedBy:         storageUsedBy(p.UsedBy),
		Status:         p.Status,
		// LXD lists the members a pool is on; hangard is one, "none".
		Locations: []string{location},
	}
}

// poolETag hashes what LXD's pool ETag covers (name, driver, config) and
// the description, so that a change of the description alone also makes
// an earlier read stale.
func poolETag(p storage.Pool) string {
	return etagJSON([]any{p.Name, p.Driver, p.Description, nonNilConfig(p.Config)})
}

// checkPoolETag refuses a change made from a stale read. As for networks,
// the check and the change are two steps: it catches a change made since
// the client read, not one racing this request.
func (s *Server) checkPoolETag(r *http.Request, name string) (storage.Pool, error) {
	cur, err := s.Storage.Pool(r.Context(), name)
	if err != nil {
		return storage.Pool{}, err
	}
	if m := ifMatch(r); m != "" && m != poolETag(cur) {
		return storage.Pool{}, errdefs.PreconditionFailed("storage pool %q changed since it was read (ETag mismatch)", name)
	}
	return cur, nil
}

func (s *Server) listPools(w http.ResponseWriter, r *http.Request) {
	rec, err := recursion(r)
	if err != nil {
		writeError(w, err)
		return
	}
	pools, err := s.Storage.Pools(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	if rec == 0 {
		urls := make([]string, len(pools))
		for i, p := range pools {
			urls[i] = poolURL(p.Name)
		}
		writeSync(w, urls, "")
		return
	}
	out := make([]api.StoragePool, len(pools))
	for i, p := range pools {
		out[i] = toAPIPool(p)
	}
	writeSync(w, out, "")
}

func (s *Server) createPool(w http.ResponseWriter, r *http.Request) {
	var req api.StoragePoolsPost
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	switch {
	case req.Name == "":
		writeError(w, errdefs.Invalid("no storage pool name given (field \"name\")"))
		return
	case strings.Contains(req.Name, "/"):
		writeError(w, errdefs.Invalid("storage pool name %q: names may not contain slashes", req.Name))
		return
	case req.Driver == "":
		writeError(w, errdefs.Invalid("no storage pool driver given (field \"driver\")"))
		return
	}
	err := s.Storage.CreatePool(r.Context(), storage.CreatePoolRequest{
		Name: req.Name, Driver: req.Driver, Description: req.Description, Config: req.Config,
	})
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Location", poolURL(req.Name))
	writeSync(w, map[string]any{}, "")
}

func (s *Server) getPool(w http.ResponseWriter, r *http.Request) {
	p, err := s.Storage.Pool(r.Context(), r.PathValue("pool"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, toAPIPool(p), poolETag(p))
}

func (s *Server) putPool(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("pool")
	var put api.StoragePoolPut
	if err := decode(r, &put); err != nil {
		writeError(w, err)
		return
	}
	if _, err := s.checkPoolETag(r, name); err != nil {
		writeError(w, err)
		return
	}
	if err := s.Storage.UpdatePool(r.Context(), name, storage.PoolPut{Description: put.Description, Config: put.Config}); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}

// writablePatch is the body of a PATCH of a pool or volume: the config
// keys to merge (an empty value removes one) and, when given, the new
// description.
type writablePatch struct {
	Config      map[string]string `json:"config"`
	Description *string           `json:"description"`
}

// merged is the config a patch that clears the description is sent with:
// such a patch is a replace (Update) of the merged whole, since the
// manager's Patch keeps the description on "", which is how a Put says
// "not given".
func (p writablePatch) merged(cur map[string]string) map[string]string {
	cfg := maps.Clone(cur)
	if cfg == nil {
		cfg = map[string]string{}
	}
	for k, v := range p.Config {
		if v == "" {
			delete(cfg, k)
		} else {
			cfg[k] = v
		}
	}
	return cfg
}

// clearsDescription reports whether the patch empties a description that
// is set.
func (p writablePatch) clearsDescription(cur string) bool {
	return p.Description != nil && *p.Description == "" && cur != ""
}

func (p writablePatch) description() string {
	if p.Description == nil {
		return ""
	}
	return *p.Description
}

// patchPool merges the keys given into the pool's config and replaces the
// description when given.
func (s *Server) patchPool(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("pool")
	var patch writablePatch
	if err := decode(r, &patch); err != nil {
		writeError(w, err)
		return
	}
	cur, err := s.checkPoolETag(r, name)
	if err != nil {
		writeError(w, err)
		return
	}
	if patch.clearsDescription(cur.Description) {
		err = s.Storage.UpdatePool(r.Context(), name, storage.PoolPut{Config: patch.merged(cur.Config)})
	} else {
		err = s.Storage.PatchPool(r.Context(), name, storage.PoolPut{Description: patch.description(), Config: patch.Config})
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}

func (s *Server) deletePool(w http.ResponseWriter, r *http.Request) {
	if err := s.Storage.DeletePool(r.Context(), r.PathValue("pool")); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}

// unsigned is a count the manager gives as int64 (negative: unknown) in
// LXD's unsigned field.
func unsigned(n int64) uint64 {
	if n < 0 {
		return 0
	}
	return uint64(n)
}

func (s *Server) getPoolResources(w http.ResponseWriter, r *http.Request) {
	res, err := s.Storage.PoolResources(r.Context(), r.PathValue("pool"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, api.StoragePoolResources{
		Space:  api.StoragePoolSpace{Used: unsigned(res.Space.Used), Total: unsigned(res.Space.Total)},
		Inodes: api.StoragePoolInodes{Used: unsigned(res.Inodes.Used), Total: unsigned(res.Inodes.Total)},
	}, "")
}

// volumeTypeOrder is the order LXD lists a pool's volumes in: by its
// database's type codes, then by name.
var volumeTypeOrder = []string{
	api.StorageVolumeTypeContainer, api.StorageVolumeTypeImage,
	api.StorageVolumeTypeCustom, api.StorageVolumeTypeVM,
}

// volumeType is the {type} of the request's path, one of LXD's four.
func volumeType(r *http.Request) (string, error) {
	t := r.PathValue("type")
	if !slices.Contains(volumeTypeOrder, t) {
		return "", errdefs.Invalid("invalid storage volume type %q (custom, container, virtual-machine or image)", t)
	}
	return t, nil
}

func toAPIVolume(v storage.Volume) api.StorageVolume {
	ct := v.ContentType
	if ct == "" {
		ct = api.StorageContentTypeFilesystem
	}
	return api.StorageVolume{
		StorageVolumePut: api.StorageVolumePut{Config: nonNilConfig(v.Config), Description: v.Description},
		Name:             v.Name,
		Type:             v.Type,
		UsedBy:           storageUsedBy(v.UsedBy),
		Location:         location,
		ContentType:      ct,
		Project:          cmp.Or(v.Project, project.Default),
		CreatedAt:        v.CreatedAt,
	}
}

// volumeETag hashes what LXD's volume ETag covers (name, type, config) and
// the description, as poolETag.
func volumeETag(v storage.Volume) string {
	return etagJSON([]any{v.Name, v.Type, v.Description, nonNilConfig(v.Config)})
}

func (s *Server) checkVolumeETag(r *http.Request, pool, typ, name string) (storage.Volume, error) {
	cur, err := s.Storage.Volume(r.Context(), pool, typ, name)
	if err != nil {
		return storage.Volume{}, err
	}
	if m := ifMatch(r); m != "" && m != volumeETag(cur) {
		return storage.Volume{}, errdefs.PreconditionFailed("storage volume %s/%s changed since it was read (ETag mismatch)", typ, name)
	}
	return cur, nil
}

// volumeFields returns a volume's filterable fields, by JSON name.
func volumeFields(v api.StorageVolume) func(string) string {
	return func(field string) string {
		if k, ok := strings.CutPrefix(field, "config."); ok {
			return v.Config[k]
		}
		switch field {
		case "name":
			return v.Name
		case "type":
			return v.Type
		case "description":
			return v.Description
		case "content_type":
			return v.ContentType
		case "location":
			return v.Location
		case "project":
			return v.Project
		}
		return ""
	}
}

// listVolumes lists a pool's volumes, of every type or of the path's,
// kept by ?filter=.
func (s *Server) listVolumes(w http.ResponseWriter, r *http.Request) {
	rec, err := recursion(r)
	if err != nil {
		writeError(w, err)
		return
	}
	typ := ""
	if r.PathValue("type") != "" {
		if typ, err = volumeType(r); err != nil {
			writeError(w, err)
			return
		}
	}
	f, err := parseFilter(r.URL.Query().Get("filter"))
	if err != nil {
		writeError(w, err)
		return
	}
	pool := r.PathValue("pool")
	vols, err := s.Storage.Volumes(r.Context(), pool)
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]api.StorageVolume, 0, len(vols))
	for _, v := range vols {
		if typ != "" && v.Type != typ {
			continue
		}
		if av := toAPIVolume(v); f.match(volumeFields(av)) {
			out = append(out, av)
		}
	}
	slices.SortStableFunc(out, func(a, b api.StorageVolume) int {
		return cmp.Or(
			cmp.Compare(slices.Index(volumeTypeOrder, a.Type), slices.Index(volumeTypeOrder, b.Type)),
			strings.Compare(a.Name, b.Name))
	})
	if rec == 0 {
		urls := make([]string, len(out))
		for i, v := range out {
			urls[i] = volumeURL(pool, v.Type, v.Name)
		}
		writeSync(w, urls, "")
		return
	}
	writeSync(w, out, "")
}

// createVolume makes a custom volume. As in LXD it answers when the
// volume exists (sync); copies and migrations, LXD's operations, are
// refused.
func (s *Server) createVolume(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Content-Type") == "application/octet-stream" {
		if r.Header.Get("X-LXD-type") == api.StorageContentTypeISO {
			s.importISO(w, r)
			return
		}
		writeError(w, errdefs.NotImplemented("hangard does not import storage volume backups (an ISO image is imported with X-LXD-type: iso)"))
		return
	}
	var req api.StorageVolumesPost
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if r.PathValue("type") != "" {
		t, err := volumeType(r)
		if err != nil {
			writeError(w, err)
			return
		}
		req.Type = t
	}
	if req.ContentType == "" {
		req.ContentType = api.StorageContentTypeFilesystem
	}
	pool := r.PathValue("pool")
	var err error
	switch {
	case req.Name == "":
		err = errdefs.Invalid("no storage volume name given (field \"name\")")
	case strings.Contains(req.Name, "/"):
		err = errdefs.Invalid("storage volume name %q: names may not contain slashes", req.Name)
	case req.Type == "":
		err = errdefs.Invalid("no storage volume type given (field \"type\")")
	case req.Type != api.StorageVolumeTypeCustom:
		err = errdefs.Invalid("only custom storage volumes can be created, not %q", req.Type)
	case req.ContentType == api.StorageContentTypeISO:
		err = errdefs.Invalid("content_type iso: an ISO volume is imported from its image (the image as the body, X-LXD-type: iso; lxc storage volume import POOL FILE NAME --type=iso), not created empty")
	case req.ContentType != api.StorageContentTypeFilesystem && req.ContentType != api.StorageContentTypeBlock:
		err = errdefs.Invalid("invalid storage volume content type %q (filesystem or block)", req.ContentType)
	case req.Source.Type == "copy" || req.Source.Type == "migration" || (req.Source.Type == "" && req.Source.Name != ""):
		err = errdefs.NotImplemented("hangard does not copy or migrate storage volumes")
	case req.Source.Type != "":
		err = errdefs.Invalid("unknown storage volume source type %q", req.Source.Type)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	err = s.Storage.CreateVolume(r.Context(), storage.CreateVolumeRequest{
		Pool: pool, Name: req.Name, ContentType: req.ContentType, Description: req.Description, Config: req.Config,
	})
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Location", volumeURL(pool, req.Type, req.Name))
	writeSync(w, map[string]any{}, "")
}

// importISO makes an ISO volume of the image in the request's body
// (LXD's custom_volume_iso: X-LXD-name names it, X-LXD-type is iso). As
// importBackup, the image is read and the volume made before the answer,
// so what is not an ISO image (or a name taken, a full pool) is the
// client's 400 (409, 507) and leaves nothing; the answer is then LXD's
// operation, already done, which lxc waits for.
func (s *Server) importISO(w http.ResponseWriter, r *http.Request) {
	upload := &uploadBody{ReadCloser: r.Body}
	r.Body = upload
	pool, name := r.PathValue("pool"), r.Header.Get("X-LXD-name")
	var err error
	switch t := r.PathValue("type"); {
	case t != "" && t != api.StorageVolumeTypeCustom:
		err = errdefs.Invalid("ISO images are imported as custom volumes, not %q", t)
	case name == "":
		err = errdefs.Invalid("no storage volume name given (header X-LXD-name)")
	case strings.Contains(name, "/"):
		err = errdefs.Invalid("storage volume name %q: names may not contain slashes", name)
	}
	if err == nil {
		err = s.Storage.ImportISO(r.Context(), storage.ImportISORequest{Pool: pool, Name: name, Image: upload})
		if err != nil {
			if aerr := upload.aborted(r.Context()); aerr != nil {
				err = errdefs.Invalid("ISO upload did not arrive whole after %d bytes: %v", upload.n, aerr)
			}
		}
	}
	if err != nil {
		s.refuseUpload(w, upload, err)
		return
	}
	s.startOp(w, r, "Creating storage volume", volumeSnapshotResources("storage_volumes", pool, api.StorageVolumeTypeCustom, name),
		func(context.Context) error { return nil })
}

func (s *Server) getVolume(w http.ResponseWriter, r *http.Request) {
	typ, err := volumeType(r)
	if err != nil {
		writeError(w, err)
		return
	}
	pool := r.PathValue("pool")
	v, err := s.Storage.Volume(r.Context(), pool, typ, r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, toAPIVolume(v), volumeETag(v))
}

func (s *Server) putVolume(w http.ResponseWriter, r *http.Request) {
	typ, err := volumeType(r)
	if err != nil {
		writeError(w, err)
		return
	}
	pool, name := r.PathValue("pool"), r.PathValue("name")
	var put api.StorageVolumePut
	if err := decode(r, &put); err != nil {
		writeError(w, err)
		return
	}
	if _, err := s.checkVolumeETag(r, pool, typ, name); err != nil {
		writeError(w, err)
		return
	}
	if put.Restore != "" {
		if err := s.restoreVolume(r.Context(), pool, typ, name, put.Restore); err != nil {
			writeError(w, err)
			return
		}
		// As LXD: a restore changes the config only when the body
		// gives one.
		if put.Config == nil {
			writeSync(w, map[string]any{}, "")
			return
		}
	}
	if err := s.Storage.UpdateVolume(r.Context(), pool, typ, name, storage.VolumePut{Description: put.Description, Config: put.Config}); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}

// patchVolume merges the keys given into the volume's config and replaces
// the description when given.
func (s *Server) patchVolume(w http.ResponseWriter, r *http.Request) {
	typ, err := volumeType(r)
	if err != nil {
		writeError(w, err)
		return
	}
	pool, name := r.PathValue("pool"), r.PathValue("name")
	var patch writablePatch
	if err := decode(r, &patch); err != nil {
		writeError(w, err)
		return
	}
	cur, err := s.checkVolumeETag(r, pool, typ, name)
	if err != nil {
		writeError(w, err)
		return
	}
	if patch.clearsDescription(cur.Description) {
		err = s.Storage.UpdateVolume(r.Context(), pool, typ, name, storage.VolumePut{Config: patch.merged(cur.Config)})
	} else {
		err = s.Storage.PatchVolume(r.Context(), pool, typ, name, storage.VolumePut{Description: patch.description(), Config: patch.Config})
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}

// renameVolume renames a custom volume within its pool. LXD's other uses
// of this POST (a move to another pool or project, a migration) are
// refused.
func (s *Server) renameVolume(w http.ResponseWriter, r *http.Request) {
	typ, err := volumeType(r)
	if err != nil {
		writeError(w, err)
		return
	}
	pool, name := r.PathValue("pool"), r.PathValue("name")
	var req api.StorageVolumePost
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	switch {
	case req.Migration:
		err = errdefs.NotImplemented("hangard does not migrate storage volumes")
	case req.Name == "":
		err = errdefs.Invalid("no new storage volume name given (field \"name\")")
	case strings.Contains(req.Name, "/"):
		err = errdefs.Invalid("storage volume name %q: names may not contain slashes", req.Name)
	case typ != api.StorageVolumeTypeCustom:
		err = errdefs.Invalid("storage volumes of type %q cannot be renamed (only custom ones)", typ)
	case req.Pool != "" && req.Pool != pool:
		err = errdefs.NotImplemented("hangard does not move storage volumes between pools (%s to %s)", pool, req.Pool)
	case req.Project != "" && req.Project != project.From(r.Context()).Scope(project.FeatureStorageVolumes):
		err = errdefs.NotImplemented("hangard does not move storage volumes between projects (to %q)", req.Project)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	if err := s.Storage.RenameVolume(r.Context(), pool, typ, name, req.Name); err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Location", volumeURL(pool, typ, req.Name))
	writeSync(w, map[string]any{}, "")
}

// deleteVolume deletes a volume. An instance's volume goes with its
// instance, never through the storage API (LXD's rule).
func (s *Server) deleteVolume(w http.ResponseWriter, r *http.Request) {
	typ, err := volumeType(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if typ == api.StorageVolumeTypeContainer || typ == api.StorageVolumeTypeVM {
		writeError(w, errdefs.Invalid("storage volumes of type %q cannot be deleted with the storage API (delete the instance)", typ))
		return
	}
	if err := s.Storage.DeleteVolume(r.Context(), r.PathValue("pool"), typ, r.PathValue("name")); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}

// getVolumeState is a volume's usage: instance and custom volumes, as in
// LXD (an image volume has none).
func (s *Server) getVolumeState(w http.ResponseWriter, r *http.Request) {
	typ, err := volumeType(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if typ == api.StorageVolumeTypeImage {
		writeError(w, errdefs.Invalid("storage volumes of type %q have no state", typ))
		return
	}
	st, err := s.Storage.VolumeState(r.Context(), r.PathValue("pool"), typ, r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	total := st.Usage.Total
	if total < 0 {
		total = 0
	}
	writeSync(w, api.StorageVolumeState{Usage: &api.StorageVolumeStateUsage{Used: unsigned(st.Usage.Used), Total: total}}, "")
}

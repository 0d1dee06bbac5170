package lxd

import (
	"context"
	"maps"
	"net/http"
	"net/url"
	"strconv"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/project"
)

// withProject resolves the project a request acts in (?project=NAME, the
// default project without it) into its context. An unknown project is
// answered 404 here, and nil returned.
func (s *Server) withProject(w http.ResponseWriter, r *http.Request) *http.Request {
	name := r.URL.Query().Get("project")
	var (
		p   project.Project
		err error
	)
	switch {
	case s.Projects != nil:
		p, err = s.Projects.Resolve(r.Context(), name)
	case name == "" || name == project.Default:
		p = project.Project{Name: project.Default}
	default:
		err = errdefs.NotFound("project %q not found", name)
	}
	if errorsIsNotFound(err) {
		// The same words for every endpoint, whatever the store said.
		err = errdefs.NotFound("project %q not found", name)
	}
	if err != nil {
		writeError(w, err)
		return nil
	}
	ctx := project.WithProject(r.Context(), p)
	// LXD's all-projects lists instances, operations and events of every
	// project the identity may see.
	if all, _ := strconv.ParseBool(r.URL.Query().Get("all-projects")); all {
		ctx = project.WithAll(ctx)
	}
	return r.WithContext(ctx)
}

func errorsIsNotFound(err error) bool { return err != nil && statusOf(err) == http.StatusNotFound }

// projectRoutes are the routes under /1.0/projects.
func (s *Server) projectRoutes() []struct {
	method, path string
	h            http.HandlerFunc
} {
	return []struct {
		method, path string
		h            http.HandlerFunc
	}{
		{"GET", "", s.listProjects},
		{"POST", "", s.createProject},
		{"GET", "/{name}", s.getProject},
		{"PUT", "/{name}", s.putProject},
		{"PATCH", "/{name}", s.patchProject},
		{"POST", "/{name}", s.renameProject},
		{"DELETE", "/{name}", s.deleteProject},
		{"GET", "/{name}/state", s.getProjectState},
	}
}

// projectAuthz wraps a project route with its check: creating needs
// can_create_projects on the server, the rest an entitlement on the
// project named (listing filters instead).
func (s *Server) projectAuthz(method, path string, h http.HandlerFunc) http.HandlerFunc {
	named := func(r *http.Request) auth.Object { return auth.Project(r.PathValue("name")) }
	switch {
	case path == "" && method == "GET":
		return h
	case path == "":
		return s.Requires(auth.CanCreateProjects, h)
	case method == "GET":
		return s.RequiresOn(named, auth.CanView, h)
	case method == "DELETE":
		return s.RequiresOn(named, auth.CanDelete, h)
	}
	return s.RequiresOn(named, auth.CanEdit, h)
}

func projectURL(name string) string { return "/1.0/projects/" + url.PathEscape(name) }

// projectObjectURL is the API path of something a project holds, with the
// project in the query as LXD writes it (none for the default project).
func projectObjectURL(proj string, o project.Object) string {
	var path string
	switch o.Kind {
	case project.KindInstance:
		path = "/1.0/instances/" + url.PathEscape(o.Name)
	case project.KindProfile:
		path = "/1.0/profiles/" + url.PathEscape(o.Name)
	case project.KindImage:
		path = "/1.0/images/" + url.PathEscape(o.Name)
	case project.KindVolume:
		path = "/1.0/storage-pools/" + url.PathEscape(o.Pool) + "/volumes/custom/" + url.PathEscape(o.Name)
	case project.KindNetwork:
		path = "/1.0/networks/" + url.PathEscape(o.Name)
	case project.KindProject:
		return projectURL(o.Name)
	}
	if proj != project.Default {
		path += "?project=" + url.QueryEscape(proj)
	}
	return path
}

// toAPIProject is p as LXD shows it, with its used_by list.
func (s *Server) toAPIProject(r *http.Request, p project.Project) (api.Project, error) {
	objs, err := s.Projects.Contents(r.Context(), p.Name)
	if err != nil {
		return api.Project{}, err
	}
	out := api.Project{
		Name:       p.Name,
		ProjectPut: api.ProjectPut{Description: p.Description, Config: p.Config},
		UsedBy:     make([]string, 0, len(objs)),
	}
	if out.Config == nil {
		out.Config = map[string]string{}
	}
	if p.Parent != "" {
		parent := p.Parent
		out.Parent = &parent
	}
	for _, o := range objs {
		out.UsedBy = append(out.UsedBy, projectObjectURL(p.Name, o))
	}
	return out, nil
}

// projectETag covers the writable part, as LXD's (description, config),
// and the parent.
func projectETag(p project.Project) string {
	return etagJSON([]any{p.Description, p.Config, p.Parent})
}

// projectMatch checks an If-Match ETag against the project as it is when
// the update applies.
func projectMatch(etag string) project.Precondition {
	if etag == "" {
		return nil
	}
	return func(cur project.Project) error {
		if projectETag(cur) != etag {
			return errdefs.PreconditionFailed("project %q changed since it was read (ETag mismatch)", cur.Name)
		}
		return nil
	}
}

// needProjects answers 501 for h's route when the server has no project
// service.
func (s *Server) needProjects(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.Projects == nil {
			writeError(w, errdefs.NotImplemented("hangard does not support projects yet"))
			return
		}
		h(w, r)
	}
}

func (s *Server) listProjects(w http.ResponseWriter, r *http.Request) {
	rec, err := recursion(r)
	if err != nil {
		writeError(w, err)
		return
	}
	listed, err := s.Projects.List(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	// Only the projects the identity may see (a restricted client's own).
	all := listed[:0]
	for _, p := range listed {
		if s.Auth == nil || s.Auth.CanView(r.Context(), auth.Project(p.Name)) {
			all = append(all, p)
		}
	}
	if rec == 0 {
		urls := make([]string, len(all))
		for i, p := range all {
			urls[i] = projectURL(p.Name)
		}
		writeSync(w, urls, "")
		return
	}
	out := make([]api.Project, len(all))
	for i, p := range all {
		if out[i], err = s.toAPIProject(r, p); err != nil {
			writeError(w, err)
			return
		}
	}
	writeSync(w, out, "")
}

func (s *Server) createProject(w http.ResponseWriter, r *http.Request) {
	var req api.ProjectsPost
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	p := project.Project{Name: req.Name, Description: req.Description, Config: req.Config}
	if req.Parent != nil {
		p.Parent = *req.Parent
	}
	if err := s.Projects.Create(r.Context(), p); err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Location", projectURL(req.Name))
	writeSync(w, map[string]any{}, "")
}

func (s *Server) getProject(w http.ResponseWriter, r *http.Request) {
	p, err := s.Projects.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	out, err := s.toAPIProject(r, p)
	if err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, out, projectETag(p))
}

func (s *Server) putProject(w http.ResponseWriter, r *http.Request) {
	var put api.ProjectPut
	if err := decode(r, &put); err != nil {
		writeError(w, err)
		return
	}
	err := s.Projects.Update(r.Context(), r.PathValue("name"),
		project.Put{Description: put.Description, Config: put.Config, Parent: put.Parent}, projectMatch(ifMatch(r)))
	if err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}

// patchProject merges config into the project's and replaces the
// description and parent when the body has them.
func (s *Server) patchProject(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	// A missing or null parent is no change; "" makes the project
	// top-level.
	var patch struct {
		Config      map[string]string `json:"config"`
		Description *string           `json:"description"`
		Parent      *string           `json:"parent"`
	}
	if err := decode(r, &patch); err != nil {
		writeError(w, err)
		return
	}
	cur, err := s.Projects.Get(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	etag := projectETag(cur)
	if m := ifMatch(r); m != "" {
		etag = m
	}
	put := project.Put{Description: cur.Description, Config: maps.Clone(cur.Config), Parent: patch.Parent}
	if put.Config == nil {
		put.Config = map[string]string{}
	}
	for k, v := range patch.Config {
		put.Config[k] = v
	}
	if patch.Description != nil {
		put.Description = *patch.Description
	}
	if err := s.Projects.Update(r.Context(), name, put, projectMatch(etag)); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}

// renameProject renames in an operation, as LXD (lxc waits for one).
func (s *Server) renameProject(w http.ResponseWriter, r *http.Request) {
	var req api.ProjectPost
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	name := r.PathValue("name")
	// Refuse what can be refused at once with the request's own status,
	// rather than as a failed operation.
	if name == project.Default {
		writeError(w, errdefs.Forbidden("the default project cannot be renamed"))
		return
	}
	if err := project.ValidateName(req.Name); err != nil {
		writeError(w, err)
		return
	}
	if _, err := s.Projects.Get(r.Context(), name); err != nil {
		writeError(w, err)
		return
	}
	s.startOp(w, r, "Renaming project", map[string][]string{"projects": {projectURL(name)}}, func(ctx context.Context) error {
		return s.Projects.Rename(ctx, name, req.Name)
	})
}

func (s *Server) deleteProject(w http.ResponseWriter, r *http.Request) {
	if err := s.Projects.Delete(r.Context(), r.PathValue("name")); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}

func (s *Server) getProjectState(w http.ResponseWriter, r *http.Request) {
	res, err := s.Projects.State(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	out := api.ProjectState{Resources: make(map[string]api.ProjectStateResource, len(res))}
	for k, v := range res {
		out.Resources[k] = api.ProjectStateResource{Limit: v.Limit, Usage: v.Usage}
	}
	writeSync(w, out, "")
}

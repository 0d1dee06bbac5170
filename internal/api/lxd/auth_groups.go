package lxd

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// authRoutes serves /1.0/auth/groups; the Authorizer checks who may.
func (s *Server) authRoutes(route func(string, func(http.ResponseWriter, *http.Request))) {
	route("GET /1.0/auth/groups", s.withAuth(s.listGroups))
	route("POST /1.0/auth/groups", s.withAuth(s.createGroup))
	route("GET /1.0/auth/groups/{name}", s.withAuth(s.getGroup))
	route("PUT /1.0/auth/groups/{name}", s.withAuth(s.putGroup))
	route("POST /1.0/auth/groups/{name}", s.withAuth(s.renameGroup))
	route("DELETE /1.0/auth/groups/{name}", s.withAuth(s.deleteGroup))
}

func (s *Server) withAuth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.Auth == nil {
			writeError(w, errdefs.NotImplemented("hangard serves no access management here"))
			return
		}
		h(w, r)
	}
}

func groupURL(name string) string { return "/1.0/auth/groups/" + url.PathEscape(name) }

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request) {
	rec, err := recursion(r)
	if err != nil {
		writeError(w, err)
		return
	}
	gs, err := s.Auth.Groups(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	if rec == 0 {
		urls := make([]string, len(gs))
		for i, g := range gs {
			urls[i] = groupURL(g.Name)
		}
		writeSync(w, urls, "")
		return
	}
	out := make([]api.AuthGroup, len(gs))
	for i, g := range gs {
		out[i] = toAPIGroup(g)
	}
	writeSync(w, out, "")
}

func (s *Server) getGroup(w http.ResponseWriter, r *http.Request) {
	g, err := s.Auth.Group(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, toAPIGroup(g), etagJSON(toAPIGroup(g).Writable()))
}

func (s *Server) createGroup(w http.ResponseWriter, r *http.Request) {
	var req api.AuthGroupsPost
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	g, err := fromGroupPut(req.Name, req.AuthGroupPut)
	if err == nil {
		err = s.Auth.CreateGroup(r.Context(), g)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}

func (s *Server) putGroup(w http.ResponseWriter, r *http.Request) {
	var put api.AuthGroupPut
	if err := decode(r, &put); err != nil {
		writeError(w, err)
		return
	}
	g, err := fromGroupPut(r.PathValue("name"), put)
	if err == nil {
		err = s.Auth.UpdateGroup(r.Context(), r.PathValue("name"), g)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}

func (s *Server) renameGroup(w http.ResponseWriter, r *http.Request) {
	var req api.AuthGroupPost
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if err := s.Auth.RenameGroup(r.Context(), r.PathValue("name"), req.Name); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}

func (s *Server) deleteGroup(w http.ResponseWriter, r *http.Request) {
	if err := s.Auth.DeleteGroup(r.Context(), r.PathValue("name")); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}

func toAPIGroup(g auth.Group) api.AuthGroup {
	out := api.AuthGroup{Name: g.Name, Description: g.Description, Permissions: []api.Permission{}, Identities: map[string][]string{}}
	for _, p := range g.Permissions {
		out.Permissions = append(out.Permissions, api.Permission{
			EntityType: string(p.Object.Type), EntityReference: permissionURL(p.Object), Entitlement: string(p.Entitlement)})
	}
	for _, m := range g.Members {
		out.Identities[m.Method] = append(out.Identities[m.Method], m.ID)
	}
	return out
}

func fromGroupPut(name string, put api.AuthGroupPut) (auth.Group, error) {
	g := auth.Group{Name: name, Description: put.Description}
	for _, p := range put.Permissions {
		o, err := entityFromURL(auth.ObjectType(p.EntityType), p.EntityReference)
		if err != nil {
			return auth.Group{}, err
		}
		g.Permissions = append(g.Permissions, auth.Permission{Object: o, Entitlement: auth.Entitlement(p.Entitlement)})
	}
	methods := make([]string, 0, len(put.Identities))
	for m := range put.Identities {
		methods = append(methods, m)
	}
	slices.Sort(methods)
	for _, m := range methods {
		for _, id := range put.Identities[m] {
			g.Members = append(g.Members, auth.Member{Method: m, ID: id})
		}
	}
	return g, g.Validate()
}

// entityCollections maps an entity type to its collection below /1.0.
var entityCollections = map[auth.ObjectType]string{
	auth.TypeProject: "projects", auth.TypeInstance: "instances", auth.TypeImage: "images",
	auth.TypeNetwork: "networks", auth.TypeProfile: "profiles", auth.TypeStoragePool: "storage-pools",
	auth.TypeCertificate: "certificates",
}

// permissionURL is the LXD URL of o, as LXD 5.21 names entities.
func permissionURL(o auth.Object) string {
	switch o.Type {
	case auth.TypeServer:
		return "/1.0"
	case auth.TypeProject, auth.TypeStoragePool, auth.TypeCertificate:
		return "/1.0/" + entityCollections[o.Type] + "/" + url.PathEscape(o.Name)
	case auth.TypeStorageVolume:
		parts := strings.SplitN(o.Name, "/", 3)
		if len(parts) == 3 {
			return "/1.0/storage-pools/" + url.PathEscape(parts[0]) + "/volumes/" + url.PathEscape(parts[1]) + "/" +
				url.PathEscape(parts[2]) + "?project=" + url.QueryEscape(o.Project)
		}
	}
	return "/1.0/" + entityCollections[o.Type] + "/" + url.PathEscape(o.Name) + "?project=" + url.QueryEscape(o.Project)
}

// entityFromURL parses an entity URL of type t; a missing ?project= is
// the default project, as in LXD.
func entityFromURL(t auth.ObjectType, ref string) (auth.Object, error) {
	bad := func() (auth.Object, error) {
		return auth.Object{}, errdefs.Invalid("entity URL %q does not name a %s", ref, t)
	}
	u, err := url.Parse(ref)
	if err != nil {
		return bad()
	}
	proj := u.Query().Get("project")
	if proj == "" {
		proj = "default"
	}
	var parts []string
	for _, p := range strings.Split(strings.Trim(u.EscapedPath(), "/"), "/") {
		q, err := url.PathUnescape(p)
		if err != nil || q == "" {
			return bad()
		}
		parts = append(parts, q)
	}
	if len(parts) == 0 || parts[0] != "1.0" {
		return bad()
	}
	parts = parts[1:]
	switch t {
	case auth.TypeServer:
		if len(parts) != 0 {
			return bad()
		}
		return auth.Server(), nil
	case auth.TypeStorageVolume:
		if len(parts) != 5 || parts[0] != "storage-pools" || parts[2] != "volumes" {
			return bad()
		}
		return auth.StorageVolume(proj, parts[1], parts[3], parts[4]), nil
	}
	coll, ok := entityCollections[t]
	if !ok || len(parts) != 2 || parts[0] != coll {
		return bad()
	}
	switch t {
	case auth.TypeProject:
		return auth.Project(parts[1]), nil
	case auth.TypeStoragePool:
		return auth.StoragePool(parts[1]), nil
	case auth.TypeCertificate:
		return auth.Certificate(parts[1]), nil
	}
	return auth.Object{Type: t, Project: proj, Name: parts[1]}, nil
}

package lxd

import (
	"context"
	"net/http"
	"net/url"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/trust"
)

// Users is what the edge needs of the local users (trust.Users).
type Users interface {
	Create(ctx context.Context, name, password, description string) (trust.User, error)
	Get(ctx context.Context, name string) (trust.User, error)
	List(ctx context.Context) ([]trust.User, error)
	Update(ctx context.Context, name string, up trust.UserUpdate) error
	Delete(ctx context.Context, name string) error
}

// userRoutes are /1.0/users (hangar_users). Every route needs can_edit on
// the server, as the API tokens' do. Creating a user, setting a password
// and deleting one need admin besides: a user holds what the groups
// naming it grant, and a group may name a user before it exists, so the
// password is the key to those rights (can_edit would be a way up to
// them); deleting one rewrites groups, which only admin may.
func (s *Server) userRoutes(route func(string, func(http.ResponseWriter, *http.Request))) {
	need := func(h http.HandlerFunc) http.HandlerFunc {
		return s.Requires(auth.CanEdit, func(w http.ResponseWriter, r *http.Request) {
			if s.Users == nil {
				writeError(w, errdefs.NotImplemented("hangard serves no local users here"))
				return
			}
			h(w, r)
		})
	}
	route("GET /1.0/users", need(s.listUsers))
	route("POST /1.0/users", need(s.createUser))
	route("GET /1.0/users/{name}", need(s.getUser))
	route("PUT /1.0/users/{name}", need(func(w http.ResponseWriter, r *http.Request) { s.updateUser(w, r, true) }))
	route("PATCH /1.0/users/{name}", need(func(w http.ResponseWriter, r *http.Request) { s.updateUser(w, r, false) }))
	route("DELETE /1.0/users/{name}", need(s.deleteUser))
}

func userURL(name string) string { return "/1.0/users/" + url.PathEscape(name) }

func toAPIUser(u trust.User) api.User {
	return api.User{Name: u.Name, Description: u.Description, CreatedAt: u.CreatedAt}
}

func userETag(u trust.User) string { return etagJSON(toAPIUser(u).Writable()) }

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	rec, err := recursion(r)
	if err != nil {
		writeError(w, err)
		return
	}
	us, err := s.Users.List(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	if rec == 0 {
		urls := make([]string, len(us))
		for i, u := range us {
			urls[i] = userURL(u.Name)
		}
		writeSync(w, urls, "")
		return
	}
	out := make([]api.User, len(us))
	for i, u := range us {
		out[i] = toAPIUser(u)
	}
	writeSync(w, out, "")
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	u, err := s.Users.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, toAPIUser(u), userETag(u))
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	var req api.UsersPost
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if err := s.allow(r, auth.Server(), auth.Admin); err != nil {
		writeError(w, err)
		return
	}
	u, err := s.Users.Create(r.Context(), req.Name, req.Password, req.Description)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Location", userURL(u.Name))
	writeSync(w, map[string]any{}, "")
}

// userWrite is a PUT or PATCH body: pointers tell a field not sent from
// one sent empty (an empty password is refused, not ignored).
type userWrite struct {
	Description *string `json:"description"`
	Password    *string `json:"password"`
}

// updateUser is PUT (the description is replaced, "" when not sent) and
// PATCH (only the fields sent change). Either changes the password when
// the body has one.
func (s *Server) updateUser(w http.ResponseWriter, r *http.Request, replace bool) {
	name := r.PathValue("name")
	var req userWrite
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.Password != nil {
		if err := s.allow(r, auth.Server(), auth.Admin); err != nil {
			writeError(w, err)
			return
		}
	}
	if m := ifMatch(r); m != "" {
		cur, err := s.Users.Get(r.Context(), name)
		if err != nil {
			writeError(w, err)
			return
		}
		if e := userETag(cur); e != m {
			writeError(w, errdefs.PreconditionFailed("user %q changed since it was read (ETag mismatch)", name))
			return
		}
	}
	if replace && req.Description == nil {
		req.Description = new(string)
	}
	if err := s.Users.Update(r.Context(), name, trust.UserUpdate{Description: req.Description, Password: req.Password}); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) {
	if err := s.allow(r, auth.Server(), auth.Admin); err != nil {
		writeError(w, err)
		return
	}
	if err := s.Users.Delete(r.Context(), r.PathValue("name")); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}

package lxd

import (
	"context"
	"net/http"

	"github.com/hangar-dev/hangar/internal/auth"
)

// Authorizer is what the edge asks for the server-level endpoints (the
// core's services check their own objects) and what serves
// /1.0/auth/groups. *auth.Authorizer implements it; nil allows all, for
// this package's tests only.
type Authorizer interface {
	Check(ctx context.Context, o auth.Object, e auth.Entitlement) error
	CanView(ctx context.Context, o auth.Object) bool
	Groups(ctx context.Context) ([]auth.Group, error)
	Group(ctx context.Context, name string) (auth.Group, error)
	CreateGroup(ctx context.Context, g auth.Group) error
	UpdateGroup(ctx context.Context, name string, g auth.Group) error
	RenameGroup(ctx context.Context, name, newName string) error
	DeleteGroup(ctx context.Context, name string) error
}

// allow checks e on o for the request's identity.
func (s *Server) allow(r *http.Request, o auth.Object, e auth.Entitlement) error {
	if s.Auth == nil {
		return nil
	}
	return s.Auth.Check(r.Context(), o, e)
}

// Requires wraps h so that it runs only when the request's identity holds
// e on the server: the check for server-level routes whose handlers live
// elsewhere (certificates, projects, metrics), e.g.
// route("GET /1.0/metrics", s.Requires(auth.CanViewMetrics, s.getMetrics)).
func (s *Server) Requires(e auth.Entitlement, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.allow(r, auth.Server(), e); err != nil {
			writeError(w, err)
			return
		}
		h(w, r)
	}
}

// RequiresOn is Requires on an object the request names, such as the
// project in /1.0/projects/{name}: obj builds it from the request.
func (s *Server) RequiresOn(obj func(*http.Request) auth.Object, e auth.Entitlement, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.allow(r, obj(r), e); err != nil {
			writeError(w, err)
			return
		}
		h(w, r)
	}
}

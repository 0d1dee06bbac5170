package lxd

import (
	"context"
	"net/http"

	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/project"
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

// The synchronous checks of requests an operation carries out. The core
// checks again inside the operation, as the caller, but LXD answers a
// denied caller 403 (or 404 where the object is not its to see) at once,
// not 202 and a failed operation: each handler that starts one asks
// first.

// allowInstance checks e on the instance name in the request's project.
func (s *Server) allowInstance(r *http.Request, name string, e auth.Entitlement) error {
	return s.allow(r, auth.Instance(project.Name(r.Context()), name), e)
}

// allowInProject checks e on the project that holds the request's objects
// of feature (project.FeatureImages...; "" the request's own project).
func (s *Server) allowInProject(r *http.Request, feature string, e auth.Entitlement) error {
	p := project.From(r.Context())
	if feature == "" {
		return s.allow(r, auth.Project(p.Name), e)
	}
	return s.allow(r, auth.Project(p.Scope(feature)), e)
}

// imageObject is the image fp as the request's project holds it.
func imageObject(r *http.Request, fp string) auth.Object {
	return auth.Image(project.From(r.Context()).Scope(project.FeatureImages), fp)
}

// profileObject is the profile name as the request's project holds it.
func profileObject(r *http.Request, name string) auth.Object {
	return auth.Profile(project.From(r.Context()).Scope(project.FeatureProfiles), name)
}

// checked writes err and tells whether there was one: for the checks at
// the top of a handler.
func checked(w http.ResponseWriter, err error) bool {
	if err != nil {
		writeError(w, err)
		return true
	}
	return false
}

// customVolumeObject is the custom volume name on pool as the request's
// project holds it.
func customVolumeObject(r *http.Request, pool, name string) auth.Object {
	return auth.StorageVolume(project.From(r.Context()).Scope(project.FeatureStorageVolumes), pool, "custom", name)
}

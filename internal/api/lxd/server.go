package lxd

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/edge"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/image"
	"github.com/hangar-dev/hangar/internal/instance"
	"github.com/hangar-dev/hangar/internal/operation"
	"github.com/hangar-dev/hangar/internal/project"
)

// Images is what the edge needs of the image store.
type Images interface {
	Import(ctx context.Context, r io.Reader, meta image.ImportMeta) (api.Image, error)
	Get(ctx context.Context, fpOrPrefix string) (api.Image, error)
	List(ctx context.Context) ([]api.Image, error)
	Update(ctx context.Context, fp string, put api.ImagePut) error
	Delete(ctx context.Context, fp string, inUseBy []string) error
	CreateAlias(ctx context.Context, req api.ImageAliasesPost) error
	GetAlias(ctx context.Context, name string) (api.ImageAliasesEntry, error)
	ListAliases(ctx context.Context) ([]api.ImageAliasesEntry, error)
	UpdateAlias(ctx context.Context, name string, put api.ImageAliasesEntryPut) error
	RenameAlias(ctx context.Context, old, new string) error
	DeleteAlias(ctx context.Context, name string) error
	Export(ctx context.Context, fp string) (*image.Export, error)
}

// Server serves the LXD REST API 1.0 over the core services. Handlers
// decode and validate the request's shape, call one service method and
// encode the answer; the meaning lives in the services.
type Server struct {
	Instances *instance.Service
	Images    Images
	OCI       OCIImages // nil: no registry pulls (images_oci.go)
	Networks  Networks  // nil: no networks (networks.go)
	Storage   Storage   // nil: no storage pools (storage.go)
	// Projects owns projects; nil: only the default project (projects.go).
	Projects *project.Service
	// Roots and Publisher publish instances as images; either nil: not
	// supported (images_publish.go).
	Roots     RootReader
	Publisher Publisher
	Ops       *operation.Registry
	Events    *event.Hub
	Info      func() api.Server
	// Config is the server configuration; nil refuses every key.
	Config ServerConfig
	// Auth answers the server-level checks and serves /1.0/auth; nil
	// allows all (package tests only: the daemon always sets it).
	Auth Authorizer
	// Authn says who each request is (authn.go); nil: every request is
	// the unix socket's root, as on a daemon with no network listener.
	Authn edge.Identifier
	// Trust is the trust store (certificates.go); nil: no certificates.
	Trust Trust
	// Tokens are the bearer API tokens (auth_tokens.go); nil: none.
	Tokens Tokens
	// Users are the local users (users.go); nil: none.
	Users Users
	// Metrics serves /1.0/metrics and times requests; nil: neither.
	Metrics Metrics
	Log     *slog.Logger // slog.Default() when nil

	routes []string // every pattern Handler registered, in order (Routes)

	sockets sockets // websocket operations' streams, by operation ID
}

// Handler returns the HTTP handler of the API.
func (s *Server) Handler() http.Handler {
	if s.Log == nil {
		s.Log = slog.Default()
	}
	mux := http.NewServeMux()
	s.routes = nil
	// Every route goes through here, so Routes lists them all and the
	// authorization table test (authz_test.go) cannot miss one.
	route := func(pattern string, h func(http.ResponseWriter, *http.Request)) {
		s.routes = append(s.routes, pattern)
		mux.HandleFunc(pattern, h)
	}
	route("GET /{$}", s.getRoot)
	route("GET /1.0", s.getServer)
	route("PUT /1.0", s.Requires(auth.CanEdit, s.putServer))
	route("PATCH /1.0", s.Requires(auth.CanEdit, s.patchServer))

	// LXD 5.0 serves every instance endpoint under three prefixes: the
	// aliases /1.0/containers and /1.0/virtual-machines see only their
	// type (prefix.go).
	instanceRoutes := []struct {
		method, path string
		h            http.HandlerFunc
	}{
		{"GET", "", s.listInstances},
		{"POST", "", s.createInstance},
		{"GET", "/{name}", s.getInstance},
		{"PUT", "/{name}", s.putInstance},
		{"PATCH", "/{name}", s.patchInstance},
		{"DELETE", "/{name}", s.deleteInstance},
		{"POST", "/{name}", s.renameInstance},
		{"GET", "/{name}/state", s.getInstanceState},
		{"PUT", "/{name}/state", s.putInstanceState},
		{"GET", "/{name}/console", s.getConsoleLog},
		{"DELETE", "/{name}/console", s.deleteConsoleLog},
		{"POST", "/{name}/console", s.attachConsole},
		{"POST", "/{name}/exec", s.execInstance},
		{"POST", "/{name}/fork", s.forkInstance},
		{"GET", "/{name}/files", s.getInstanceFile},
		{"POST", "/{name}/files", s.postInstanceFile},
		{"DELETE", "/{name}/files", s.deleteInstanceFile},
		{"GET", "/{name}/snapshots", s.listSnapshots},
		{"POST", "/{name}/snapshots", s.createSnapshot},
		{"GET", "/{name}/snapshots/{snap}", s.getSnapshot},
		{"PUT", "/{name}/snapshots/{snap}", s.putSnapshot},
		{"PATCH", "/{name}/snapshots/{snap}", s.putSnapshot},
		{"DELETE", "/{name}/snapshots/{snap}", s.deleteSnapshot},
		{"POST", "/{name}/snapshots/{snap}", s.renameSnapshot},
		{"GET", "/{name}/backups", s.listBackups},
		{"POST", "/{name}/backups", s.createBackup},
		{"GET", "/{name}/backups/{backup}", s.getBackup},
		{"POST", "/{name}/backups/{backup}", s.renameBackup},
		{"DELETE", "/{name}/backups/{backup}", s.deleteBackup},
		{"GET", "/{name}/backups/{backup}/export", s.exportBackup},
		{"GET", "/{name}/logs", s.listLogs},
		{"GET", "/{name}/logs/{file}", s.getLog},
		{"DELETE", "/{name}/logs/{file}", s.deleteLog},
		{"GET", "/{name}/logs/exec-output", s.listExecOutputs},
		{"GET", "/{name}/logs/exec-output/{file}", s.getExecOutput},
		{"DELETE", "/{name}/logs/exec-output/{file}", s.deleteExecOutput},
	}
	for _, p := range instancePrefixes {
		for _, rt := range instanceRoutes {
			route(rt.method+" /1.0/"+p.path+rt.path, s.typed(p.typ, rt.h))
		}
	}

	ops := func(h http.HandlerFunc) http.HandlerFunc {
		return s.RequiresOn(requestProject, auth.CanViewOperations, h)
	}
	route("GET /1.0/operations", ops(s.listOperations))
	route("GET /1.0/operations/{id}", ops(s.getOperation))
	route("GET /1.0/operations/{id}/wait", ops(s.waitOperation))
	// Cancelling work and joining an exec's or console's streams act on
	// the project's instances: more than viewing.
	route("DELETE /1.0/operations/{id}", s.RequiresOn(requestProject, auth.Operator, s.cancelOperation))
	route("GET /1.0/operations/{id}/websocket", s.RequiresOn(requestProject, auth.Operator, s.getOperationWebsocket))
	route("GET /1.0/events", s.RequiresOn(requestProject, auth.CanViewEvents, s.getEvents))
	route("GET /1.0/metrics", s.Requires(auth.CanViewMetrics, s.getMetrics))

	route("GET /1.0/profiles", s.listProfiles)
	route("POST /1.0/profiles", s.createProfile)
	route("GET /1.0/profiles/{name}", s.getProfile)
	route("PUT /1.0/profiles/{name}", s.putProfile)
	route("PATCH /1.0/profiles/{name}", s.patchProfile)
	route("POST /1.0/profiles/{name}", s.renameProfile)
	route("DELETE /1.0/profiles/{name}", s.deleteProfile)

	route("GET /1.0/images", s.listImages)
	route("POST /1.0/images", s.createImage)
	route("GET /1.0/images/aliases", s.listAliases)
	route("POST /1.0/images/aliases", s.createAlias)
	route("GET /1.0/images/aliases/{name...}", s.getAlias)
	route("PUT /1.0/images/aliases/{name...}", s.putAlias)
	route("PATCH /1.0/images/aliases/{name...}", s.patchAlias)
	route("POST /1.0/images/aliases/{name...}", s.renameAlias)
	route("DELETE /1.0/images/aliases/{name...}", s.deleteAlias)
	route("GET /1.0/images/{fp}", s.getImage)
	route("PUT /1.0/images/{fp}", s.putImage)
	route("PATCH /1.0/images/{fp}", s.patchImage)
	route("DELETE /1.0/images/{fp}", s.deleteImage)
	// One route for all below an image: a pattern like {fp}/export would
	// overlap aliases/{name...} with neither more specific.
	route("GET /1.0/images/{path...}", s.getImageSubresource)

	for _, rt := range s.networkRoutes() {
		route(rt.method+" /1.0/networks"+rt.path, s.withManager(func() bool { return s.Networks != nil }, "network", "name", rt.h))
	}

	for _, rt := range s.storageRoutes() {
		route(rt.method+" /1.0/storage-pools"+rt.path, s.withManager(func() bool { return s.Storage != nil }, "storage pool", "pool", rt.h))
	}

	for _, rt := range s.certificateRoutes() {
		route(rt.method+" /1.0/certificates"+rt.path, s.certificateAuthz(rt.method, s.withManager(func() bool { return s.Trust != nil }, "certificate", "fp", rt.h)))
	}

	// Collections hangard has none of yet list as empty, which is true
	// and what lxc asks for during ordinary commands; everything else under
	// them, and the parts with no honest empty answer, is a clear 501.
	route("GET /1.0/warnings", s.Requires(auth.CanView, s.emptyCollection))
	s.authRoutes(route)
	s.tokenRoutes(route)
	s.userRoutes(route)
	for _, rt := range s.projectRoutes() {
		route(rt.method+" /1.0/projects"+rt.path, s.projectAuthz(rt.method, rt.path, s.needProjects(rt.h)))
	}
	for _, c := range []string{"cluster", "warnings"} {
		route("/1.0/"+c, s.notYet(c))
		route("/1.0/"+c+"/", s.notYet(c))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// LXD's words: an endpoint that exists answers another method
		// with 501 "not implemented", anything else is 404 "not found".
		if servedWithOtherMethod(mux, r) {
			writeError(w, errdefs.NotImplemented("not implemented"))
			return
		}
		writeError(w, errdefs.NotFound("not found"))
	})
	return s.authn(s.middleware(mux))
}

// Routes returns every pattern Handler registered, in order.
func (s *Server) Routes() []string { return s.routes }

// requestProject is the project the request acts in.
func requestProject(r *http.Request) auth.Object { return auth.Project(project.Name(r.Context())) }

// servedWithOtherMethod reports whether some route serves r's path with
// another method than r's.
func servedWithOtherMethod(mux *http.ServeMux, r *http.Request) bool {
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodPatch} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "/" && pattern != "" {
			return true
		}
	}
	return false
}

// middleware resolves the request's project (404 for an unknown one) and
// logs each request.
func (s *Server) middleware(next http.Handler) http.Handler {
	next = s.timed(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if r = s.withProject(w, r); r == nil {
			return
		}
		next.ServeHTTP(w, r)
		if s.Log.Enabled(r.Context(), slog.LevelDebug) {
			s.Log.Debug("request", "method", r.Method, "path", r.URL.Path, "took", time.Since(start))
		}
	})
}

// notYet answers for the parts of the LXD API that later work brings, with
// LXD's kind of clear error rather than a 404 that looks like a typo.
func (s *Server) notYet(what string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errdefs.NotImplemented("hangard does not support %s yet", what))
	}
}

// emptyCollection answers a top-level collection hangard has none of.
func (s *Server) emptyCollection(w http.ResponseWriter, r *http.Request) {
	if _, err := recursion(r); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, []any{}, "")
}

func (s *Server) getRoot(w http.ResponseWriter, r *http.Request) {
	writeSync(w, []string{"/1.0"}, "")
}

func (s *Server) getServer(w http.ResponseWriter, r *http.Request) {
	if !auth.From(r.Context()).Trusted() {
		writeSync(w, s.untrustedServer(), "")
		return
	}
	info := s.serverInfo()
	s.remoteInfo(&info)
	// The project the client asked about, and an ETag over the writable
	// config, as LXD.
	info.Environment.Project = project.Name(r.Context())
	writeSync(w, info, etagJSON(info.Config))
}
